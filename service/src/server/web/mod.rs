//! The web console, served by `allot serve` itself (`--web-listen`, or `web_listen`): pages for
//! officials over the same service layer as gRPC, in Russian and English.
//!
//! - **Sessions**: `POST /sign-in` with a bearer token of the server's table (in the body, never
//!   a URL) opens a server-side session; the browser gets only its random id, in a cookie that is
//!   `HttpOnly`, `SameSite=Strict` and, under TLS, `Secure`. The token is kept in the session
//!   and never written to a page, a URL or a log.
//! - **CSRF**: every form of a signed-in page carries the session's own random token; a POST
//!   without it is refused (403) before anything is done.
//! - **Calls**: a page calls the gRPC methods through the server's gate in memory (as the FHIR
//!   face does) with the session's token, so roles and limits are the API's: a page whose call
//!   is PERMISSION_DENIED answers 403.
//! - **Public pages** (`/results`, `/cutoffs`): a citizen's lookup of their own application and
//!   the published cutoffs, through the API's public methods (`LookUp`, `GetCutoffs`), no
//!   session. The results page checks its receipt in the browser (`assets/verify.js`).
//! - **Assets** are embedded in the binary; no external resource; the one script is the
//!   receipt check.

mod clinics;
mod fairs;
mod i18n;
mod pages;
mod planning;
mod public;
mod schools;
mod windows;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};
use tokio::sync::watch;

use super::config::Caller;
use super::gate::GateState;
pub(super) use super::local::GatedChannel;
use super::{AppState, Limits, ServeError};
pub use i18n::Lang;

/// How long a session lives without being used.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// The session cookie's name.
const COOKIE: &str = "allot_session";
/// The language cookie's name.
const LANG_COOKIE: &str = "allot_lang";

/// A signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    /// The bearer token the pages call with (never sent back to the browser).
    token: String,
    caller: Arc<Caller>,
    /// The token every form of this session carries.
    csrf: String,
    last_used: Instant,
}

/// What the console's handlers share.
pub struct Web {
    channel: GatedChannel,
    /// For the city's time zone (the clinics' pages read and show local times).
    state: Arc<AppState>,
    gate: Arc<GateState>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Simulations started from the planners' page.
    simulations: Mutex<planning::Simulations>,
    /// Cookies get `Secure` under TLS.
    secure: bool,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").finish_non_exhaustive()
    }
}

/// 32 random bytes as hex: a session id or a CSRF token.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// One cookie of a `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

impl Web {
    pub fn new(state: &Arc<AppState>, gate: Arc<GateState>, limits: &Limits, tls: bool) -> Web {
        Web {
            channel: super::local::gated(state, gate.clone(), limits),
            state: state.clone(),
            gate,
            sessions: Mutex::default(),
            simulations: Mutex::default(),
            secure: tls,
        }
    }

    /// Opens a session for `token` if the server's table knows it: the session id.
    fn sign_in(&self, token: &str) -> Option<(String, Arc<Caller>)> {
        let caller = self.gate.caller(token)?;
        let id = random_token();
        let session = Session {
            token: token.to_owned(),
            caller: caller.clone(),
            csrf: random_token(),
            last_used: Instant::now(),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.last_used.elapsed() < IDLE);
        sessions.insert(id.clone(), session);
        Some((id, caller))
    }

    /// The request's live session, if any (its idle clock restarted).
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.get_mut(id)?;
        if session.last_used.elapsed() >= IDLE {
            sessions.remove(id);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.clone())
    }

    fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.remove(id);
        }
    }

    /// The `Set-Cookie` value of a session id (empty and expired to end it).
    fn session_cookie(&self, id: Option<&str>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let value = match id {
            Some(id) => format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}"),
            None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
        };
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
    }

    /// The city's time zone, when a schedule is loaded.
    fn zone(&self) -> Option<allot_engine::appointments::Zone> {
        Some(self.state.appointments.as_ref()?.schedule().zone.clone())
    }

    /// A city's local time as a form sends it (`YYYY-MM-DDTHH:MM`), as a protobuf time.
    fn local_timestamp(&self, text: &str) -> Option<prost_types::Timestamp> {
        super::appointments::local_timestamp(&self.state, text.trim())
    }

    /// `message` as a call carrying the session's token.
    fn request<T>(&self, session: &Session, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {}", session.token).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

/// The console's routes.
pub fn routes(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", post(pages::sign_in))
        .route("/sign-out", post(pages::sign_out))
        .route("/audit", get(pages::audit))
        .route("/clinics", get(pages::clinics))
        .route("/fairs", get(fairs::windows))
        .route(
            "/fairs/submit",
            post(fairs::submit).layer(axum::extract::DefaultBodyLimit::max(fairs::MAX_UPLOAD)),
        )
        .route("/fairs/window", get(fairs::window))
        .route("/fairs/close", post(windows::close::<fairs::FairPages>))
        .route("/fairs/run", get(fairs::run_page).post(fairs::run))
        .route(
            "/fairs/compare",
            get(fairs::compare).post(fairs::compare_run),
        )
        .route(
            "/fairs/download",
            get(windows::download::<fairs::FairPages>),
        )
        .route("/fairs/verify", get(windows::verify::<fairs::FairPages>))
        .route(
            "/fairs/withdraw",
            post(windows::withdraw::<fairs::FairPages>),
        )
        .route("/schools", get(schools::windows))
        .route(
            "/schools/submit",
            post(schools::submit).layer(axum::extract::DefaultBodyLimit::max(fairs::MAX_UPLOAD)),
        )
        .route("/schools/window", get(schools::window))
        .route(
            "/schools/close",
            post(windows::close::<schools::SchoolPages>),
        )
        .route("/schools/run", get(schools::run_page).post(schools::run))
        .route(
            "/schools/compare",
            get(schools::compare).post(schools::compare_run),
        )
        .route(
            "/schools/download",
            get(windows::download::<schools::SchoolPages>),
        )
        .route(
            "/schools/verify",
            get(windows::verify::<schools::SchoolPages>),
        )
        .route(
            "/schools/withdraw",
            post(windows::withdraw::<schools::SchoolPages>),
        )
        .route("/clinics/actions", get(clinics::actions))
        .route("/clinics/absence", post(clinics::absence))
        .route(
            "/clinics/rebalance",
            post(clinics::rebalance)
                .layer(axum::extract::DefaultBodyLimit::max(clinics::MAX_QUEUE)),
        )
        .route("/planning", get(planning::planning))
        .route(
            "/planning/run",
            post(planning::run).layer(axum::extract::DefaultBodyLimit::max(
                planning::MAX_SCENARIO + 64 * 1024,
            )),
        )
        .route("/planning/simulation", get(planning::simulation))
        .route("/planning/report", get(planning::report))
        .route("/planning/compare", get(planning::compare))
        .route("/results", get(public::results_form).post(public::results))
        .route("/cutoffs", get(public::cutoffs))
        .route("/assets/style.css", get(pages::style))
        .route("/assets/verify.js", get(pages::verify_js))
        .route("/favicon.ico", get(pages::favicon))
        .fallback(pages::not_found)
        .with_state(web)
}

/// Serves the console at `at` until `stop`; the address bound.
pub async fn serve(
    web: Arc<Web>,
    at: SocketAddr,
    tls: Option<&super::config::TlsIdentity>,
    stop: watch::Receiver<bool>,
) -> Result<SocketAddr, ServeError> {
    super::http::serve(routes(web), at, tls, stop, "the web console").await
}
