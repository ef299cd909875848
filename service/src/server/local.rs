//! The API served inside this process: what the `allot` CLI calls without `--server`.
//!
//! A call goes through the same gate, routes and handlers as on `allot serve`, over an in-memory
//! tower service instead of a socket, so the CLI has one implementation per command whether it
//! works on the data folder or on a server. The caller holds every role (whoever can read the
//! data folder can do anything with it) and is named after the command's actor, which the
//! domain services log as the decisions' actor. Messages are not size-limited: the files are the
//! user's own. No checkpoint is signed on opening (a read-only command leaves the folder as it
//! was).

use std::sync::Arc;

use allot_engine::log::Log;
use tokio::sync::watch;
use tower::{Layer as _, ServiceExt as _};

use super::access::Roles;
use super::config::{Caller, Limits, TokenTable};
use super::gate::{GateLayer, GateState};
use super::{AppState, Domains, api_routes};
use crate::rpc::client::{Api, ApiChannel, Bearer};

/// The token the in-process caller presents (the table it is looked up in exists only here).
const TOKEN: &str = "in-process";

/// The API over a log this process opened.
#[derive(Debug)]
pub struct InProcess {
    state: Arc<AppState>,
    api: Api,
    /// Kept so that the state never reads as stopping.
    _running: watch::Sender<bool>,
}

impl InProcess {
    /// Serves `log` (read-only or writable) with `domains`, calls made as `actor`.
    pub fn new(log: Arc<Log>, domains: Domains, actor: &str) -> InProcess {
        let (running, stopping) = watch::channel(false);
        let state = Arc::new(AppState::with_domains(log, stopping, domains));
        let unlimited = Limits {
            max_request_bytes: usize::MAX,
            max_response_bytes: usize::MAX,
            max_upload_bytes: usize::MAX,
            ..Limits::default()
        };
        let mut tokens = TokenTable::default();
        tokens.insert_token(
            TOKEN,
            Caller {
                name: actor.to_owned(),
                roles: Roles::ALL,
            },
        );
        let gate = Arc::new(GateState::new(tokens, unlimited.max_concurrent_calls, None));
        let routes = api_routes(&state, &gate, &unlimited).routes();
        let service = tonic::service::interceptor::InterceptedService::new(
            GateLayer::new(gate).layer(routes),
            Bearer::new(Some(TOKEN)).unwrap_or_default(),
        );
        let channel = ApiChannel::new(
            service
                .map_response(|r| r.map(tonic::body::Body::new))
                .map_err(|never| match never {}),
        );
        InProcess {
            state,
            api: Api::new(channel),
            _running: running,
        }
    }

    /// The clients.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The log the calls work on.
    pub fn log(&self) -> &Arc<Log> {
        &self.state.log
    }
}

/// A channel to the API's handlers in memory, through a server's own gate (its tokens, roles,
/// load shedding and metrics): what the HTTP faces (FHIR, the web console) call the service
/// layer with, passing their caller's bearer token as metadata. Its error type is `Infallible`
/// (not a boxed error) so that the clients' futures are provably `Send` in axum's handlers.
pub type GatedChannel = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    std::convert::Infallible,
>;

/// The [`GatedChannel`] to `state`'s handlers through `gate`.
pub fn gated(state: &Arc<AppState>, gate: Arc<GateState>, limits: &Limits) -> GatedChannel {
    let routes = api_routes(state, &gate, limits).routes();
    tower::util::BoxCloneSyncService::new(
        GateLayer::new(gate)
            .layer(routes)
            .map_response(|r| r.map(tonic::body::Body::new))
            .map_err(|never| match never {}),
    )
}
