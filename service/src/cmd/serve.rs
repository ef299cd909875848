//! `allot serve`: the gRPC server over the data folder's decision log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use allot_service::keys;
use allot_service::process::{LogFormat, init_logs};
use allot_service::server::config::ServerConfig;
use allot_service::server::run::Run;
use anyhow::{Result, bail};
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
    /// Also serve the FHIR R4 face (IHE Scheduling `$find`, `$hold`, `$book`) at this address,
    /// same tokens and TLS [default: the configuration's `fhir_listen`; with --dev the port
    /// after --listen's; else not served].
    #[arg(long, value_name = "ADDR")]
    fhir_listen: Option<SocketAddr>,
    /// Also serve the web console at this address [default: `web_listen`; --dev: port + 2].
    #[arg(long, value_name = "ADDR")]
    web_listen: Option<SocketAddr>,
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
    /// Keep the log in this PostgreSQL database, shared with other replicas (one leads, the
    /// others follow and answer reads); the data folder is then this replica's cache [default:
    /// the configuration's `store`, else the data folder is the store].
    #[arg(long, env = "ALLOT_STORE", value_name = "postgres://USER@HOST:PORT/DB")]
    store: Option<String>,
    /// With --store: the address followers name to clients for writes while this replica
    /// leads [default: the configuration's `advertise`, else http://LISTEN].
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
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
    config.listen = args.listen.unwrap_or(config.listen);
    config.tiles_listen = args.tiles_listen.or(config.tiles_listen);
    config.fhir_listen = args.fhir_listen.or(config.fhir_listen);
    config.web_listen = args.web_listen.or(config.web_listen);
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
    config.store = args.store.or(config.store.take());
    config.advertise = args.advertise.or(config.advertise.take());
    let run = Run {
        data: data.to_owned(),
        dev_scale: args.dev.then_some(args.dev_scale),
        dev_token,
        signing_key,
    };
    Ok(run.serve(config)?)
}
