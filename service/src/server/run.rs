//! `allot serve` from an opened configuration to the end: open the data folder (or the replica
//! of a PostgreSQL store), serve until SIGTERM or SIGINT, close. A replica whose log or engine
//! failed is reopened from its store on the same address (see [`super::replica`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use allot_engine::log::SigningKey;
use allot_engine::log::replica::ReplicaOptions;

use super::config::ServerConfig;
use super::folder::{self, OpenError};
use super::{ServeError, dev, replica};
use crate::process::StopSignal;
use tokio::sync::watch;

/// What `allot serve` was asked to serve.
#[derive(Debug)]
pub struct Run {
    pub data: PathBuf,
    /// `--dev`: generate a city of this scale in an empty folder.
    pub dev_scale: Option<f64>,
    /// `--dev`: the token minted, printed with the first calls.
    pub dev_token: Option<String>,
    pub signing_key: Option<SigningKey>,
}

/// The gRPC address and the HTTP faces' (FHIR, the web console), as bound.
type Bound = (
    std::net::SocketAddr,
    Option<std::net::SocketAddr>,
    Option<std::net::SocketAddr>,
);

/// The port `offset` after `listen`'s; any free one when `listen`'s is 0 or that one is taken
/// (the banner says which).
fn dev_port(listen: std::net::SocketAddr, offset: u16) -> std::net::SocketAddr {
    let mut at = listen;
    let next = at.port().checked_add(offset).filter(|_| at.port() != 0);
    at.set_port(next.unwrap_or(0));
    if std::net::TcpListener::bind(at).is_err() {
        at.set_port(0);
    }
    at
}

/// Why `allot serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Open(Box<OpenError>),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("{0}")]
    Io(String),
}

impl From<OpenError> for RunError {
    fn from(e: OpenError) -> Self {
        RunError::Open(Box::new(e))
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |e| RunError::Io(format!("{what}: {e}"))
}

impl Run {
    /// Serves until SIGTERM or SIGINT; prints `listening on URL` (and with `--dev` the token and
    /// first calls) on stdout once calls are taken.
    pub fn serve(self, mut config: ServerConfig) -> Result<(), RunError> {
        if self.dev_token.is_some() {
            // `--dev` serves FHIR and the console too, on the ports after gRPC's.
            config.fhir_listen = config.fhir_listen.or(Some(dev_port(config.listen, 1)));
            config.web_listen = config.web_listen.or(Some(dev_port(config.listen, 2)));
        }
        // Caught from here to the end, across reopenings (a signal handler, once installed,
        // stays: a reopening replica must still stop on SIGTERM).
        let stop = listen_for_stop()?;
        let mut first = true;
        loop {
            let (opened, replication) = match &config.store {
                Some(url) => {
                    // Without `advertise`, the address bound (known once it is) is advertised.
                    let at = config.advertise.clone().unwrap_or_default();
                    let mut options = ReplicaOptions::new(at);
                    options.lease = config.lease;
                    let key = self.signing_key.clone();
                    match replica::open(&self.data, url, key, options) {
                        Ok((opened, replication)) => (opened, Some(replication)),
                        // Reopening while the store is down: wait for it.
                        Err(e) if !first && unreachable(&e) => {
                            tracing::warn!(error = %e, "the store is unreachable; retrying in 1 s");
                            if wait_or_stop(&stop, Duration::from_secs(1)) {
                                return Ok(());
                            }
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                None => (
                    folder::open(&self.data, self.dev_scale, self.signing_key.clone())?,
                    None,
                ),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(io("starting the async runtime"))?;
            let cycle = self.cycle(config.clone(), opened, replication, first, stop.clone());
            let outcome = runtime.block_on(cycle);
            // Connections cut off after the grace period still hold the state; end them first.
            runtime.shutdown_timeout(Duration::from_secs(2));
            let (stopped, reopen, (addr, fhir_addr, web_addr)) = outcome?;
            match Arc::try_unwrap(stopped.log) {
                Ok(log) => match log.close() {
                    Err(e) if reopen.is_none() => {
                        return Err(RunError::Io(format!("closing the decision log: {e}")));
                    }
                    Err(e) => tracing::warn!(error = %e, "closing the decision log"),
                    Ok(()) => {}
                },
                Err(_) => tracing::warn!(
                    "the decision log is still in use by a call that was cut off; every \
                     acknowledged decision is durable, and the next start checks the rest"
                ),
            }
            let Some(why) = reopen else {
                tracing::info!(cut_off = stopped.cut_off, "stopped");
                return Ok(());
            };
            tracing::warn!(why, "reopening the replica from its store in 1 s");
            // The same port again, so clients and the other replicas find this one where it was.
            config.listen = addr;
            config.fhir_listen = fhir_addr;
            config.web_listen = web_addr;
            first = false;
            if wait_or_stop(&stop, Duration::from_secs(1)) {
                return Ok(());
            }
        }
    }

    /// One server's life: until a stop signal, or a replica's failure (`Some(why)`).
    async fn cycle(
        &self,
        config: ServerConfig,
        opened: folder::Opened,
        replication: Option<Arc<replica::Replication>>,
        first: bool,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(super::Stopped, Option<String>, Bound), RunError> {
        let tls = config.tls.is_some();
        let (log, domains, dev_city) = (opened.log, opened.domains, opened.dev_example);
        let handle = super::start_replica(config, log, domains, replication).await?;
        if first {
            let scheme = if tls { "https" } else { "http" };
            let url = format!("{scheme}://{}", handle.local_addr());
            let mut out = std::io::stdout().lock();
            let print = io("writing to stdout");
            writeln!(out, "listening on {url}").map_err(print)?;
            // The token second, where scripts have read it since `--dev` printed it.
            if let Some(token) = &self.dev_token {
                let _ = writeln!(out, "development token (all roles): {token}");
            }
            if let Some(tiles) = handle.tiles_addr() {
                let _ = writeln!(out, "tiles on http://{tiles}");
            }
            let fhir = handle.fhir_addr().map(|a| format!("{scheme}://{a}/fhir"));
            if let Some(fhir) = &fhir {
                let _ = writeln!(out, "fhir on {fhir}");
            }
            if let Some(web) = handle.web_addr() {
                let _ = writeln!(out, "web console on {scheme}://{web}/");
            }
            if let Some(token) = &self.dev_token {
                let _ = out.flush();
                // Help for a person at a terminal: a reader that stopped after the banner (a
                // script, a test) must not stop the server.
                let calls = dev::first_calls(
                    &url,
                    handle.local_addr(),
                    tls,
                    token,
                    dev_city.as_ref(),
                    fhir.as_deref(),
                );
                let _ = write!(out, "{calls}");
            }
            let _ = out.flush();
        }
        let reopen = tokio::select! {
            _ = stop.wait_for(|s| *s) => None,
            why = handle.must_reopen() => Some(why),
        };
        let addr = (handle.local_addr(), handle.fhir_addr(), handle.web_addr());
        handle.shutdown();
        Ok((handle.wait().await?, reopen, addr))
    }
}

/// Whether opening failed only because the store did not answer.
fn unreachable(e: &OpenError) -> bool {
    use allot_engine::log::backend::BackendError;
    matches!(
        e,
        OpenError::Log {
            source: allot_engine::log::Error::Backend(BackendError::Unavailable { .. }),
            ..
        }
    )
}

/// SIGTERM and SIGINT, caught on a thread of their own from when this returns (before anything
/// is printed: a SIGTERM right after the banner stops the server gracefully): the receiver
/// turns `true` at the first.
fn listen_for_stop() -> Result<watch::Receiver<bool>, RunError> {
    let (tx, rx) = watch::channel(false);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("allot-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            runtime.block_on(async move {
                match StopSignal::listen() {
                    Ok(signal) => {
                        let _ = ready_tx.send(Ok(()));
                        signal.received().await;
                        let _ = tx.send(true);
                    }
                    Err(e) => drop(ready_tx.send(Err(e))),
                }
            });
        })
        .map_err(io("starting the signal thread"))?;
    match ready.recv() {
        Ok(Ok(())) => Ok(rx),
        Ok(Err(e)) => Err(io("listening for SIGTERM and SIGINT")(e)),
        Err(_) => Err(RunError::Io("the signal thread stopped".into())),
    }
}

/// Sleeps `total` unless a stop signal comes first; whether it came.
fn wait_or_stop(stop: &watch::Receiver<bool>, total: Duration) -> bool {
    let until = std::time::Instant::now() + total;
    while std::time::Instant::now() < until {
        if *stop.borrow() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    *stop.borrow()
}
