//! The FHIR R4 face: IHE ITI Scheduling's `$find`, `$hold` and `$book` (ITI-115..117), ITI-118,
//! and reads and searches of `Appointment`, `Slot`, `Schedule`, `Practitioner` and `Location`,
//! as JSON over HTTP/1.1 (axum), on an address of its own.
//!
//! Every interaction is a face over one `allot.v1.Appointments` method: the request is turned
//! into that method's message and called through the same gate and handlers as gRPC (in memory,
//! like the CLI's [`super::local`]), with the caller's `Authorization: Bearer` token. So the
//! roles, load shedding, deadlines, metrics, a follower's refusal of writes and every check of
//! the request are the gRPC ones; this module only translates, and maps a gRPC status to an
//! HTTP status and an `OperationOutcome` naming the FHIR element at fault.

mod ops;
mod read;
pub mod resources;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;
use tonic::{Code, Status};

use super::gate::GateState;
use super::local::GatedChannel;
use super::{AppState, Limits, ServeError};
use crate::proto::v1::appointments_client::AppointmentsClient;
use resources::outcome;

/// The media type of every answer.
const FHIR_JSON: &str = "application/fhir+json";

/// What the FHIR handlers share.
pub struct Fhir {
    channel: GatedChannel,
    state: Arc<AppState>,
    /// The most bytes a request body may have.
    max_body: usize,
    /// `https` under TLS.
    scheme: &'static str,
}

impl Fhir {
    /// The face over `state`, calling through `gate` (the gRPC server's, so that limits and
    /// metrics are shared).
    pub fn new(state: Arc<AppState>, gate: Arc<GateState>, limits: &Limits, tls: bool) -> Fhir {
        let channel = super::local::gated(&state, gate, limits);
        Fhir {
            channel,
            state,
            max_body: limits.max_request_bytes,
            scheme: if tls { "https" } else { "http" },
        }
    }

    /// The Appointments service, through the gate.
    fn appointments(&self) -> AppointmentsClient<GatedChannel> {
        AppointmentsClient::new(self.channel.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// `[base]`, as the client reached it (`Host`), for `fullUrl`s and links.
    fn base(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("{}://{host}/fhir", self.scheme)
    }

    /// `message` as a call carrying the HTTP request's bearer token.
    fn request<T>(&self, headers: &HeaderMap, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

impl std::fmt::Debug for Fhir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fhir").finish_non_exhaustive()
    }
}

/// A FHIR error: an HTTP status and an OperationOutcome.
#[derive(Debug)]
pub struct FhirError {
    status: StatusCode,
    body: Value,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl FhirError {
    /// `status` with one issue of `code`, naming `expression` when given.
    pub fn new(
        status: StatusCode,
        code: &str,
        text: impl AsRef<str>,
        expression: Option<&str>,
    ) -> Self {
        FhirError {
            status,
            body: outcome("error", code, text.as_ref(), expression),
            headers: Vec::new(),
        }
    }

    /// 400: the element at `expression` is malformed.
    pub fn invalid(expression: &str, text: impl AsRef<str>) -> Self {
        FhirError::new(StatusCode::BAD_REQUEST, "invalid", text, Some(expression))
    }

    /// The gRPC status `status` of a call made for a FHIR request: `element` turns the field
    /// path of a bad request (`request.slot_id`, or "" when the status names none) into the
    /// FHIR element it came from.
    pub fn of_status(status: &Status, element: &dyn Fn(&str) -> Option<String>) -> Self {
        let violation = tonic_types::StatusExt::get_details_bad_request(status)
            .and_then(|b| b.field_violations.into_iter().next());
        // Without a field path (an engine error), `element("")` may still know the element.
        let expression = element(violation.as_ref().map_or("", |v| v.field.as_str()));
        // The problem without the gRPC field path, which means nothing to a FHIR client.
        let text = match (&violation, &expression) {
            (Some(v), Some(_)) => v.description.as_str(),
            _ => status.message(),
        };
        let (http, code) = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => (StatusCode::BAD_REQUEST, "invalid"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "login"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden"),
            Code::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            Code::AlreadyExists => (StatusCode::PRECONDITION_FAILED, "duplicate"),
            Code::Aborted => (StatusCode::CONFLICT, "conflict"),
            Code::FailedPrecondition => (StatusCode::UNPROCESSABLE_ENTITY, "business-rule"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
            Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "not-supported"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
        };
        let mut error = FhirError::new(http, code, text, expression.as_deref());
        match status.code() {
            Code::Unauthenticated => error.headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"allot\""),
            )),
            Code::ResourceExhausted => error
                .headers
                .push((header::RETRY_AFTER, HeaderValue::from_static("1"))),
            Code::Unavailable => {
                if let Some(leader) = status.metadata().get("allot-leader")
                    && let Ok(value) = HeaderValue::from_bytes(leader.as_bytes())
                {
                    error
                        .headers
                        .push((header::HeaderName::from_static("allot-leader"), value));
                }
                error
                    .headers
                    .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        error
    }

    /// 409 for a slot that is no longer free, with the fresh proposals the engine made: each a
    /// contained `proposed` Appointment, referenced from the issue (extension `alternative`).
    fn slot_taken(status: &Status, patient: Option<&str>) -> Option<Self> {
        let taken = super::appointments::slot_taken_detail(status)?;
        let mut error = FhirError::new(StatusCode::CONFLICT, "conflict", status.message(), None);
        let mut contained = Vec::new();
        let mut refs = Vec::new();
        for (i, p) in taken.alternatives.iter().enumerate() {
            let mut a = resources::proposal(p, patient);
            let id = format!("alternative-{}", i + 1);
            refs.push(resources::Extension::allot("alternative").referring(format!("#{id}")));
            a.id = Some(id);
            contained.push(a);
        }
        if !contained.is_empty() {
            error.body["contained"] = serde_json::to_value(contained).unwrap_or_default();
            error.body["issue"][0]["extension"] = serde_json::to_value(refs).unwrap_or_default();
        }
        Some(error)
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let mut response = fhir_json(self.status, &self.body);
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// `body` as `application/fhir+json` with `status`.
fn fhir_json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

type Answer = Result<Response, FhirError>;

/// The routes of the FHIR face, under `/fhir`.
pub fn routes(fhir: Arc<Fhir>) -> Router {
    Router::new()
        .route("/fhir/metadata", get(capability))
        .route("/fhir/Appointment/$find", post(ops::find))
        .route("/fhir/Appointment/$hold", post(ops::hold))
        .route("/fhir/Appointment/$book", post(ops::book))
        .route("/fhir/Appointment", get(read::appointments))
        .route("/fhir/Appointment/{id}", get(read::appointment))
        .route("/fhir/Slot", get(read::slots))
        .route("/fhir/Slot/{id}", get(read::slot))
        .route("/fhir/Schedule", get(read::schedules))
        .route("/fhir/Schedule/{id}", get(read::schedule))
        .route("/fhir/Practitioner", get(read::practitioners))
        .route("/fhir/Practitioner/{id}", get(read::practitioner))
        .route("/fhir/Location", get(read::locations))
        .route("/fhir/Location/{id}", get(read::location))
        .fallback(unknown)
        .with_state(fhir)
}

async fn unknown(request: Request) -> FhirError {
    FhirError::new(
        StatusCode::NOT_FOUND,
        "not-supported",
        format!(
            "{} {} is not served here (GET /fhir/metadata lists what is)",
            request.method(),
            request.uri().path()
        ),
        None,
    )
}

/// The body of a POST, at most `max_body` bytes, as JSON of `resourceType` `kind`.
async fn resource_body(
    fhir: &Fhir,
    headers: &HeaderMap,
    body: Body,
    kind: &str,
) -> Result<Value, FhirError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = media.split(';').next().unwrap_or("").trim();
    if !matches!(essence, "application/fhir+json" | "application/json") {
        return Err(FhirError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!(
                "send the {kind} as application/fhir+json (got '{}')",
                allot_engine::input::clip(media)
            ),
            None,
        ));
    }
    let bytes = read_body(body, fhir.max_body).await.map_err(|read| {
        FhirError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-long",
            format!(
                "the body is larger than {} bytes ({read} read)",
                fhir.max_body
            ),
            Some(kind),
        )
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            "structure",
            format!("the body is not JSON: {e}"),
            Some(kind),
        )
    })?;
    match value.get("resourceType").and_then(Value::as_str) {
        Some(k) if k == kind => Ok(value),
        Some(other) => Err(FhirError::invalid(
            &format!("{kind}.resourceType"),
            format!(
                "expected a {kind}, got a {}",
                allot_engine::input::clip(other)
            ),
        )),
        None => Err(FhirError::invalid(
            &format!("{kind}.resourceType"),
            format!("expected a {kind} resource (a JSON object with \"resourceType\": \"{kind}\")"),
        )),
    }
}

/// The body, up to `max` bytes; beyond, the bytes read when giving up. A body too large is
/// still read (and dropped) up to a bound, so that the client, still sending, reads the 413
/// instead of a broken connection.
async fn read_body(body: Body, max: usize) -> Result<bytes::Bytes, usize> {
    use http_body_util::BodyExt as _;
    const DRAINED: usize = 64 << 20;
    let mut body = body;
    let mut kept = bytes::BytesMut::new();
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            read += data.len();
            if read <= max {
                kept.extend_from_slice(&data);
            } else if read > DRAINED {
                break;
            }
        }
    }
    if read > max {
        Err(read)
    } else {
        Ok(kept.freeze())
    }
}

/// `GET /fhir/metadata`: what this server serves.
async fn capability(State(fhir): State<Arc<Fhir>>, headers: HeaderMap) -> Response {
    let base = fhir.base(&headers);
    let op = |name: &str| {
        json!({
            "name": name,
            "definition": format!(
                "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-{name}"
            ),
        })
    };
    let search = |params: &[(&str, &str)]| -> Vec<Value> {
        params
            .iter()
            .map(|(name, kind)| json!({ "name": name, "type": kind }))
            .collect()
    };
    let read_search = |kind: &str, params: &[(&str, &str)]| {
        json!({
            "type": kind,
            "interaction": [{ "code": "read" }, { "code": "search-type" }],
            "searchParam": search(params),
        })
    };
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": jiff::Timestamp::now().to_string()[..10].to_owned(),
        "publisher": "allot",
        "kind": "instance",
        "instantiates": ["https://profiles.ihe.net/ITI/Scheduling/CapabilityStatement/IHE.Scheduling.server"],
        "software": { "name": "allot", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "allot: appointment slots across clinics, load balanced, every decision in a tamper-evident log", "url": base },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "description": "Authorization: Bearer TOKEN, a token of the server's table with the role clinic-system (the same tokens as gRPC)",
                "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR" }] }],
            },
            "resource": [
                {
                    "type": "Appointment",
                    "supportedProfile": [resources::IHE_APPOINTMENT],
                    "interaction": [{ "code": "read" }, { "code": "search-type" }],
                    "searchParam": search(&[("patient", "reference"), ("date", "date"), ("status", "token"), ("_count", "number")]),
                    "operation": [op("find"), op("hold"), op("book")],
                },
                read_search("Slot", &[("schedule", "reference"), ("start", "date"), ("status", "token"), ("specialty", "token"), ("_count", "number")]),
                read_search("Schedule", &[("_id", "token"), ("actor", "reference"), ("specialty", "token"), ("_count", "number")]),
                read_search("Practitioner", &[("_id", "token"), ("_count", "number")]),
                read_search("Location", &[("_id", "token"), ("_count", "number")]),
            ],
        }],
    });
    fhir_json(StatusCode::OK, &body)
}

/// Serves the FHIR face at `at` until `stop` (TLS when `tls` is given, as for gRPC); the address
/// bound.
pub async fn serve(
    fhir: Arc<Fhir>,
    at: SocketAddr,
    tls: Option<&super::config::TlsIdentity>,
    stop: watch::Receiver<bool>,
) -> Result<SocketAddr, ServeError> {
    super::http::serve(routes(fhir), at, tls, stop, "FHIR").await
}
