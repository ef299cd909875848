//! The gRPC server behind `allot serve`.
//!
//! ```text
//!  TCP (+ TLS) ─▶ tonic transport (HTTP/2 limits) ─▶ gate (token → role, load shedding,
//!                 deadlines, metrics, logs) ─▶ router ─▶ services ─▶ AppState (log, engines)
//! ```
//!
//! - [`config`]: the TOML file, limits, TLS, the token table (hashed tokens).
//! - [`access`]: the roles and the table giving every method its access rule (one place).
//! - [`gate`]: the tower layer every call passes.
//! - [`validate`]: field paths and the checks that turn bad requests into INVALID_ARGUMENT.
//! - [`state`]: [`AppState`], what the handlers share; [`status`]: engine errors as statuses.
//! - [`appointments`], [`fairs`], [`schools`] (with [`windows`], the application windows kept in
//!   the data folder), [`scenarios`], [`audit`], [`metrics_service`]: the services; health and
//!   reflection come from tonic. [`replies`]: answers kept for retries with a `request_id`.
//!
//! # Plugging in a domain service
//!
//! Every method of every proto has a row in [`access::METHODS`]; a service is served once it is
//! registered in [`start_with`] and listed in [`SERVED`]. The domain services (`Appointments`,
//! `Fairs`, `Schools`, `Scenarios`) follow one recipe; to add another (say `Fairs`):
//! 1. give [`AppState`] a field for the engine (built in [`start`] from the data folder, sharing
//!    `AppState::log`);
//! 2. write `server/fairs.rs` implementing `proto::v1::fairs_server::Fairs`, converting each
//!    request with the [`validate`] helpers (`FieldPath`, `FieldError`) and engine errors with
//!    a `status.rs` mapping, and taking the caller from `request.extensions().get::<Arc<Caller>>()`
//!    (its name is the decision's actor);
//! 3. register it in [`start_with`] next to `AuditServer` (with the message-size limits) and list its
//!    name in [`SERVED`] (health and reflection advertise what is listed there);
//! 4. check its rows in [`access::METHODS`].

pub mod access;
pub mod allocation;
pub mod appointments;
pub mod audit;
pub mod city;
pub mod config;
pub mod conn;
pub mod cosign;
pub mod dev;
pub mod fhir;
pub mod folder;
pub mod gate;
pub mod http;
pub mod listing;
pub mod local;
pub mod metrics;
pub mod metrics_service;
pub mod replica;
pub mod replies;
pub mod run;
pub mod scenarios;
pub mod state;
pub mod status;
pub mod tiles;
pub mod validate;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use allot_engine::log::{Log, SignedCheckpoint, TrustPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::RoutesBuilder;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic_health::ServingStatus;

pub use config::{Caller, Limits, ServerConfig};
pub use state::{AppState, Domains};

use crate::witness::WitnessClient;

use crate::proto::v1::appointments_server::AppointmentsServer;
use crate::proto::v1::audit_server::AuditServer;
use crate::proto::v1::fairs_server::FairsServer;
use crate::proto::v1::metrics_server::MetricsServer;
use crate::proto::v1::scenarios_server::ScenariosServer;
use crate::proto::v1::schools_server::SchoolsServer;
use allocation::fairs::FairsService;
use allocation::schools::SchoolsService;
use appointments::AppointmentsService;
use audit::AuditService;
use gate::{GateLayer, GateState};
use metrics_service::MetricsService;
use scenarios::ScenariosService;

/// The services this server registers, by full name (health reports on each of them, and
/// reflection lists them with the health and reflection services).
pub const SERVED: &[&str] = &[
    "allot.v1.Appointments",
    "allot.v1.Fairs",
    "allot.v1.Schools",
    "allot.v1.Scenarios",
    "allot.v1.Audit",
    "allot.v1.Metrics",
];

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("signing the first checkpoint: {0}")]
    Checkpoint(String),
    #[error("opening the domains of the data folder: {0}")]
    Domains(String),
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("the server's task failed: {0}")]
    Panicked(String),
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    tiles_addr: Option<SocketAddr>,
    fhir_addr: Option<SocketAddr>,
    web_addr: Option<SocketAddr>,
    cosigned: watch::Receiver<Option<SignedCheckpoint>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<Stopped, ServeError>>,
    restart: Option<watch::Receiver<Option<String>>>,
}

/// How the server ended.
#[derive(Debug)]
pub struct Stopped {
    /// The log, for the caller to close once nothing else holds it.
    pub log: Arc<Log>,
    /// Whether calls were still running when the grace period ended (they were cut off).
    pub cut_off: bool,
}

impl ServerHandle {
    /// The address the server listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the tiles are served on, if they are.
    pub fn tiles_addr(&self) -> Option<SocketAddr> {
        self.tiles_addr
    }

    /// The address the FHIR face is served on, if it is.
    pub fn fhir_addr(&self) -> Option<SocketAddr> {
        self.fhir_addr
    }

    /// The address the web console is served on, if it is.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_addr
    }

    /// Follows the checkpoints the witnesses' quorum cosigned (none without witnesses).
    pub fn cosigned(&self) -> watch::Receiver<Option<SignedCheckpoint>> {
        self.cosigned.clone()
    }

    /// Resolves when a replica must be reopened from its store (its log or engine failed), with
    /// why; never for a server on a data folder alone.
    pub async fn must_reopen(&self) -> String {
        let Some(mut restart) = self.restart.clone() else {
            return std::future::pending().await;
        };
        match restart.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Begins a graceful stop: health turns NOT_SERVING, no new connection or call is taken,
    /// following streams end with UNAVAILABLE, and calls in flight get the grace period to finish.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the server has stopped; then signs a last checkpoint of what was logged.
    pub async fn wait(self) -> Result<Stopped, ServeError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ServeError::Panicked(e.to_string())),
        }
    }
}

/// Starts serving `log` as `config` says, with the domains its data folder holds (the
/// appointment inventory is rebuilt from the log); returns once the socket is bound and the
/// first checkpoint is signed.
pub async fn start(config: ServerConfig, log: Arc<Log>) -> Result<ServerHandle, ServeError> {
    let opened = log.clone();
    let domains = tokio::task::spawn_blocking(move || Domains::open(&opened))
        .await
        .map_err(|e| ServeError::Panicked(e.to_string()))?
        .map_err(|e| ServeError::Domains(e.to_string()))?;
    start_with(config, log, domains).await
}

/// [`start`] with domains the caller opened (or created) on `log`.
pub async fn start_with(
    config: ServerConfig,
    log: Arc<Log>,
    domains: Domains,
) -> Result<ServerHandle, ServeError> {
    start_replica(config, log, domains, None).await
}

/// [`start_with`] for a replica on a PostgreSQL store (`replication`), or a server on its data
/// folder alone (`None`).
pub async fn start_replica(
    config: ServerConfig,
    log: Arc<Log>,
    domains: Domains,
    replication: Option<Arc<replica::Replication>>,
) -> Result<ServerHandle, ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut state = AppState::with_domains(log, stop_rx.clone(), domains);
    state.replication = replication.clone();
    let witnesses = cosigning(&config, &mut state).await?;
    let state = Arc::new(state);
    state
        .checkpoints
        .publish_tiles(config.publish_tiles, !witnesses.is_empty());
    state
        .checkpoints
        .sign(&state.log)
        .await
        .map_err(|s| ServeError::Checkpoint(s.message().to_owned()))?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;

    let limits = config.limits.clone();
    let incoming = conn::incoming(
        listener,
        limits.max_connections,
        limits.handshake_timeout,
        state.connections.clone(),
    );
    let mut gate = GateState::new(
        config.tokens.clone(),
        limits.max_concurrent_calls,
        limits.max_call,
    );
    if let Some(replication) = &replication {
        gate = gate.with_role(replication.role());
    }
    let gate = Arc::new(gate);

    let (health, health_service) = tonic_health::server::health_reporter();
    for name in SERVED {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    health.set_service_status("", ServingStatus::Serving).await;
    let replicating = replication.as_ref().map(|replication| {
        let mut role = replication.role();
        let reporter = health.clone();
        let reporting = tokio::spawn(async move {
            loop {
                let leads = role.borrow_and_update().writes();
                let status = if leads {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                reporter
                    .set_service_status(replica::LEADER_SERVICE, status)
                    .await;
                if role.changed().await.is_err() {
                    return;
                }
            }
        });
        let (looping, replication) = (state.clone(), replication.clone());
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let advertised = Some(replication.options.address.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let loop_task =
            tokio::task::spawn_blocking(move || replica::run(looping, replication, advertised));
        (reporting, loop_task)
    });

    let mut routes = api_routes(&state, &gate, &limits);
    routes
        .add_service(health_service)
        .add_service(reflection_v1()?)
        .add_service(reflection_v1alpha()?);
    let routes = routes.routes();

    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let router = builder
        .layer(GateLayer::new(gate.clone()))
        .add_routes(routes);

    let tiles_addr = match config.tiles_listen {
        Some(at) => Some(serve_tiles(&state, at, stop_rx.clone()).await?),
        None => None,
    };
    let fhir_addr = match config.fhir_listen {
        Some(at) => {
            let face = fhir::Fhir::new(state.clone(), gate.clone(), &limits, config.tls.is_some());
            Some(fhir::serve(Arc::new(face), at, config.tls.as_ref(), stop_rx.clone()).await?)
        }
        None => None,
    };
    let web_addr = match config.web_listen {
        Some(at) => {
            let console = web::Web::new(&state, gate.clone(), &limits, config.tls.is_some());
            Some(web::serve(Arc::new(console), at, config.tls.as_ref(), stop_rx.clone()).await?)
        }
        None => None,
    };
    let signer = tokio::spawn(sign_periodically(state.clone(), config.checkpoint_interval));
    let cosigners = cosign::start(&state, witnesses);
    let cosigned_rx = state.cosigned.subscribe();
    let mut stop = stop_rx;
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let health_on_stop = health.clone();
    let signal = async move {
        let _ = stop.wait_for(|stop| *stop).await;
        tracing::info!("stopping: health NOT_SERVING, draining calls");
        for name in SERVED {
            health_on_stop
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        health_on_stop
            .set_service_status("", ServingStatus::NotServing)
            .await;
        let _ = stopping_tx.send(true);
    };
    let grace = limits.shutdown_grace;
    let task = tokio::spawn(async move {
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        let mut stopping = stopping_rx;
        let mut serve = std::pin::pin!(serve);
        let mut cut_off = false;
        tokio::select! {
            result = &mut serve => result?,
            _ = async {
                let _ = stopping.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "grace period over: cutting off the calls still running");
                cut_off = true;
            }
        }
        signer.abort();
        let _ = signer.await;
        if let Some((reporting, loop_task)) = replicating {
            reporting.abort();
            let _ = loop_task.await;
        }
        // Every call finished: the windows hold exactly what the log does (a call cut off may
        // have logged what it did not note yet, so then no snapshot).
        if !cut_off {
            let snapshots = state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                snapshots.fairs.save_snapshot(&snapshots.log);
                snapshots.schools.save_snapshot(&snapshots.log);
            })
            .await;
        }
        match state.checkpoints.sign(&state.log).await {
            Ok(signed) => {
                tracing::info!(size = signed.checkpoint.size, "signed the last checkpoint");
                if state.cosigned.policy().is_some() {
                    let size = signed.checkpoint.size;
                    match state.cosigned.wait_for(size, Duration::from_secs(2)).await {
                        Some(_) => tracing::info!(size, "the witnesses cosigned it"),
                        None => tracing::warn!(size, "not cosigned within 2 s"),
                    }
                }
            }
            Err(status) => tracing::error!(error = status.message(), "signing the last checkpoint"),
        }
        for task in &cosigners {
            task.abort();
        }
        for task in cosigners {
            let _ = task.await;
        }
        drop(health);
        Ok(Stopped {
            log: state.log.clone(),
            cut_off,
        })
    });
    tracing::info!(%addr, tls = config.tls.is_some(), "serving");
    Ok(ServerHandle {
        addr,
        tiles_addr,
        fhir_addr,
        web_addr,
        cosigned: cosigned_rx,
        stop: stop_tx,
        task,
        restart: replication.map(|r| r.restart()),
    })
}

/// Serves the log's tiles over HTTP/1.1 at `at` until `stop`; the address bound.
async fn serve_tiles(
    state: &Arc<AppState>,
    at: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> Result<SocketAddr, ServeError> {
    let bind = |source| ServeError::Bind { addr: at, source };
    let listener = TcpListener::bind(at).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let app = tiles::routes(state.clone());
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let served = axum::serve(listener, app).with_graceful_shutdown(stopped);
        if let Err(e) = served.await {
            tracing::error!(error = %e, "the tiles server failed");
        }
    });
    tracing::info!(%addr, "serving the log's tiles");
    Ok(addr)
}

/// The routes of the allot services (health and reflection apart), each with the message-size
/// limits: what `allot serve` serves and what the CLI calls in process ([`local`]).
fn api_routes(state: &Arc<AppState>, gate: &Arc<GateState>, limits: &Limits) -> RoutesBuilder {
    let mut routes = RoutesBuilder::default();
    routes
        .add_service(
            AppointmentsServer::new(AppointmentsService::new(state.clone()))
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        )
        .add_service(
            FairsServer::new(FairsService::new(state.clone()).limits(limits))
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        )
        .add_service(
            SchoolsServer::new(SchoolsService::new(state.clone()).limits(limits))
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        )
        .add_service(
            ScenariosServer::new(ScenariosService::new(state.clone()))
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        )
        .add_service(
            AuditServer::new(AuditService::new(state.clone()))
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        )
        .add_service(
            MetricsServer::new(MetricsService::new(gate.clone(), state.clone()))
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        );
    routes
}

/// Checks the log against the newest cosigned checkpoint its folder kept (refusing a log that
/// lost entries or disagrees with it) and, with witnesses, sets up the cosigning policy; returns
/// the witnesses' clients.
async fn cosigning(
    config: &ServerConfig,
    state: &mut AppState,
) -> Result<Vec<Arc<WitnessClient>>, ServeError> {
    let log = state.log.clone();
    let policy = TrustPolicy {
        log: log.verifier_key().clone(),
        witnesses: config.witnesses.iter().map(|w| w.key.clone()).collect(),
        quorum: config.witness_quorum,
    };
    let checked = policy.clone();
    let kept = tokio::task::spawn_blocking(move || log.cosigned(&checked))
        .await
        .map_err(|e| ServeError::Panicked(e.to_string()))?
        .map_err(|e| ServeError::Checkpoint(format!("refusing to serve this log: {e}")))?;
    if let Some((_, trusted)) = &kept {
        tracing::info!(
            size = trusted.checkpoint.size,
            "the log agrees with its newest cosigned checkpoint"
        );
    }
    if config.witnesses.is_empty() {
        return Ok(Vec::new());
    }
    let http = crate::witness::http_client(Duration::from_secs(10))
        .map_err(|e| ServeError::Checkpoint(format!("the witnesses' HTTP client: {e}")))?;
    let kept = kept.map(|(note, trusted)| SignedCheckpoint {
        checkpoint: trusted.checkpoint,
        note,
    });
    state.cosigned = cosign::Cosigned::new(policy, kept);
    tracing::info!(
        witnesses = config.witnesses.len(),
        quorum = config.witness_quorum,
        "checkpoints are published once cosigned"
    );
    Ok(config
        .witnesses
        .iter()
        .map(|w| Arc::new(WitnessClient::new(&w.url, w.key.clone(), http.clone())))
        .collect())
}

/// Signs a checkpoint every `interval` while the log grows.
async fn sign_periodically(state: Arc<AppState>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let signed = state.checkpoints.latest().map_or(0, |c| c.checkpoint.size);
        if state.log.size() > signed
            && let Err(status) = state.checkpoints.sign(&state.log).await
        {
            tracing::error!(error = status.message(), "signing a checkpoint");
        }
    }
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in SERVED {
        builder = builder.with_service_name(*name);
    }
    builder
}

fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    ServeError,
> {
    reflection_builder()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))
}

fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    ServeError,
> {
    reflection_builder()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message as _;
    use prost_types::FileDescriptorSet;

    use super::access::METHODS;

    fn methods_of(encoded: &[u8]) -> Vec<String> {
        let set = FileDescriptorSet::decode(encoded).expect("a descriptor set");
        let mut out = Vec::new();
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    out.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        out
    }

    /// Every method of every proto the server compiles or serves has exactly one access rule,
    /// and the table names no method that does not exist.
    #[test]
    fn the_method_table_covers_exactly_the_api() {
        let mut api: BTreeSet<String> = BTreeSet::new();
        for set in [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            api.extend(methods_of(set));
        }
        let table: BTreeSet<String> = METHODS.iter().map(|m| m.path.to_owned()).collect();
        assert_eq!(table.len(), METHODS.len(), "a path is listed twice");
        let missing: Vec<_> = api.difference(&table).collect();
        let extra: Vec<_> = table.difference(&api).collect();
        assert!(
            missing.is_empty(),
            "methods without an access rule: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "rules for methods that do not exist: {extra:?}"
        );
    }

    /// Every served service is in the API, and its methods have rows.
    #[test]
    fn served_services_exist() {
        for name in super::SERVED {
            let prefix = format!("/{name}/");
            assert!(
                METHODS.iter().any(|m| m.path.starts_with(&prefix)),
                "{name} has no rows"
            );
        }
    }
}
