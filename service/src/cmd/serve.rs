//! `allot serve`: the gRPC server over the data folder's decision log.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use allot_service::keys;
use allot_service::process::{LogFormat, StopSignal, init_logs};
use allot_service::server::config::ServerConfig;
use allot_service::server::{dev, folder};
use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Debug, Args)]
#[command(
    about = "Serve the gRPC API over the data folder",
    long_about = "Serve the gRPC API (package allot.v1) over the data folder, with the gRPC \
                  health and reflection services.\n\n\
                  Prints `listening on URL` on stdout once it accepts calls. Every call needs a \
                  bearer token from the configuration file (`allot token new` mints them); \
                  without --dev the server refuses to start with none. SIGTERM or SIGINT stops \
                  it gracefully: health turns NOT_SERVING, calls in flight finish (within the \
                  grace period), a last checkpoint is signed and the log is closed; then it \
                  exits 0. Logs go to stderr (RUST_LOG sets the level, default info)."
)]
pub struct ServeArgs {
    /// The address to listen on [default: the configuration's `listen`, else 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Also serve the log over HTTP at this address in the C2SP tlog-tiles layout (`/checkpoint`,
    /// `/tile/...`), to anyone [default: the configuration's `tiles_listen`, else not served].
    #[arg(long, value_name = "ADDR")]
    tiles_listen: Option<SocketAddr>,
    /// Publish every signed checkpoint with its tiles as static files in DATA/tiles/ (the
    /// tlog-tiles layout: any web server or CDN can serve the folder).
    #[arg(long)]
    publish_tiles: bool,
    /// The configuration file (TOML): tokens, limits, TLS (annotated example:
    /// `examples/serve/allot.toml`).
    #[arg(long, env = "ALLOT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Development mode: mint a token with every role and print it (in addition to any
    /// configured tokens), so the server starts with no configuration; on an empty data folder,
    /// first load a generated city (appointments at Moscow scale from today, an open fair
    /// window and an open school intake) so that every service can be called at once.
    #[arg(long)]
    dev: bool,
    /// With --dev on an empty data folder: the generated city's size relative to Moscow.
    #[arg(long, default_value_t = 1.0, value_name = "SCALE", requires = "dev")]
    dev_scale: f64,
    /// The format of the logs on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

pub fn run(args: ServeArgs, data: &Path, remote: &super::api::RemoteArgs) -> Result<()> {
    init_logs(args.log_format);
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.tiles_listen {
        config.tiles_listen = Some(listen);
    }
    config.publish_tiles |= args.publish_tiles;
    let dev_token = args
        .dev
        .then(|| config.tokens.mint_dev_token())
        .transpose()?;
    if config.tokens.is_empty() {
        bail!(
            "no tokens are configured, so no call could be authorised: mint one with \
             `allot token new --role ROLE --append-to FILE` and start with --config FILE, or \
             start with --dev for a development token"
        );
    }
    let signing_key = match (config.signing_key.take(), &remote.signing_key) {
        (Some(key), _) => Some(key),
        (None, path) => path.as_deref().map(keys::read_signing_key).transpose()?,
    };
    let opened = folder::open(data, args.dev.then_some(args.dev_scale), signing_key)?;
    let (log, domains, dev_city) = (opened.log, opened.domains, opened.dev_example);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let tls = config.tls.is_some();
    let stopped = runtime.block_on(async {
        // Before anything is printed: a SIGTERM sent right after the banner must stop the
        // server gracefully, not kill it with the default action.
        let stop = StopSignal::listen().context("listening for SIGTERM and SIGINT")?;
        let handle = allot_service::server::start_with(config, log, domains).await?;
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", handle.local_addr());
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {url}")?;
        if let Some(tiles) = handle.tiles_addr() {
            writeln!(out, "tiles on http://{tiles}")?;
        }
        if let Some(token) = &dev_token {
            writeln!(out, "development token (all roles): {token}")?;
            out.flush()?;
            // Help for a person at a terminal: a reader that stopped after the banner (a script,
            // a test) must not stop the server.
            let calls = dev::first_calls(&url, handle.local_addr(), tls, token, dev_city.as_ref());
            let _ = write!(out, "{calls}");
        }
        let _ = out.flush();
        drop(out);
        stop.received().await;
        handle.shutdown();
        anyhow::Ok(handle.wait().await?)
    });
    // Connections cut off after the grace period still hold the state; end them first.
    runtime.shutdown_timeout(Duration::from_secs(2));
    let stopped = stopped?;
    match Arc::try_unwrap(stopped.log) {
        Ok(log) => log.close().context("closing the decision log")?,
        Err(_) => tracing::warn!(
            "the decision log is still in use by a call that was cut off; every acknowledged \
             decision is durable, and the next start checks the rest"
        ),
    }
    tracing::info!(cut_off = stopped.cut_off, "stopped");
    Ok(())
}
