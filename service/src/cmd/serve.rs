//! `allot serve`: the gRPC server over the data folder's decision log.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use allot_engine::log::{Log, LogOptions};
use allot_service::server::access::Roles;
use allot_service::server::config::{Caller, ServerConfig, mint_token};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn run(args: ServeArgs, data: &Path) -> Result<()> {
    init_logs(args.log_format);
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let dev_token = if args.dev {
        let token = mint_token()?;
        config.tokens.insert_token(
            &token,
            Caller {
                name: "dev".to_owned(),
                roles: Roles::ALL,
            },
        );
        Some(token)
    } else {
        None
    };
    if config.tokens.is_empty() {
        bail!(
            "no tokens are configured, so no call could be authorised: mint one with \
             `allot token new --role ROLE --append-to FILE` and start with --config FILE, or \
             start with --dev for a development token"
        );
    }
    let log = Log::open(data, LogOptions::default())
        .with_context(|| format!("opening the decision log in {}", data.display()))?;
    let report = log.report();
    if let Some(torn) = &report.torn_tail {
        tracing::warn!("{torn}");
    }
    if let Some(why) = &report.derived_rebuilt {
        tracing::warn!("derived data rebuilt from the segments: {why}");
    }
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(data = %data.display(), entries = log.size(), origin = log.origin(), "decision log open");
    let log = Arc::new(log);
    let started = std::time::Instant::now();
    let (domains, dev_city) = if args.dev && log.size() == 0 {
        tracing::info!(
            scale = args.dev_scale,
            "empty data folder: generating a city (--dev)"
        );
        let city = super::dev::generate_city(&log, args.dev_scale, 1)?;
        tracing::info!(
            clinics = city.clinics,
            doctors = city.doctors,
            slots = city.slots,
            fair_applicants = city.fair_applicants,
            school_students = city.school_students,
            seconds = started.elapsed().as_secs_f64(),
            "generated city loaded"
        );
        let example = city.example.clone();
        (city.domains, Some(example))
    } else {
        let domains = allot_service::server::Domains::open(&log)
            .with_context(|| format!("reopening the appointments of {}", data.display()))?;
        (domains, None)
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let tls = config.tls.is_some();
    let stopped = runtime.block_on(async {
        // Before anything is printed: a SIGTERM sent right after the banner must stop the
        // server gracefully, not kill it with the default action.
        let stop = StopSignal::listen()?;
        let handle = allot_service::server::start_with(config, log, domains).await?;
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", handle.local_addr());
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {url}")?;
        if let Some(token) = &dev_token {
            writeln!(out, "development token (all roles): {token}")?;
            out.flush()?;
            // Help for a person at a terminal: a reader that stopped after the banner (a script,
            // a test) must not stop the server.
            let _ = first_calls(
                &mut out,
                &url,
                handle.local_addr(),
                tls,
                token,
                dev_city.as_ref(),
            );
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

/// What to try first, printed under --dev.
fn first_calls(
    out: &mut impl std::io::Write,
    url: &str,
    addr: SocketAddr,
    tls: bool,
    token: &str,
    city: Option<&super::dev::Example>,
) -> std::io::Result<()> {
    let plain = if tls { "" } else { "-plaintext " };
    writeln!(out)?;
    writeln!(out, "First calls (in another terminal):")?;
    writeln!(out, "  export ALLOT_SERVER={url} ALLOT_TOKEN={token}")?;
    writeln!(
        out,
        "  grpcurl {plain}{addr} list                      # every service, by reflection"
    )?;
    let (specialty, lat, lon) = city.map_or(("therapist", 55.7558, 37.6173), |c| {
        (c.specialty.as_str(), c.lat, c.lon)
    });
    writeln!(
        out,
        "  grpcurl {plain}-H \"authorization: Bearer $ALLOT_TOKEN\" -d '{{\"patient\": {{\"id\": \"P1\", \"home\": {{\"lat\": {lat}, \"lon\": {lon}}}}}, \"specialty\": \"{specialty}\", \"count\": 3}}' {addr} allot.v1.Appointments/FindSlots"
    )?;
    writeln!(
        out,
        "  allot appointments find --specialty {specialty} --home {lat},{lon} --count 3"
    )?;
    writeln!(
        out,
        "  allot appointments book --patient P1 --slot SLOT_ID_FROM_FIND"
    )?;
    if city.is_some() {
        writeln!(
            out,
            "  allot fair run-window --window {} --beacon 00112233445566778899aabbccddeeff",
            super::dev::DEV_FAIR_WINDOW
        )?;
        writeln!(
            out,
            "  allot school run-window --window {} --beacon 00112233445566778899aabbccddeeff",
            super::dev::DEV_SCHOOL_WINDOW
        )?;
    }
    writeln!(out, "  allot audit checkpoint")?;
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment `listen` returns.
struct StopSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn listen() -> Result<StopSignal> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM"),
            _ = self.int.recv() => tracing::info!("SIGINT"),
        }
    }
}
