//! The gate every call passes before and after its handler, as one tower layer around the
//! router:
//!
//! 1. **Authentication and roles**: `authorization: Bearer <token>` is looked up (by hash) in the
//!    token table and checked against the method's row in [`METHODS`]. The caller is put in the
//!    request's extensions as `Arc<Caller>` for the handler (domain services log its name as the
//!    decision's actor). A path outside the table is UNIMPLEMENTED.
//! 2. **Load shedding**: a server-wide semaphore of `max_concurrent_calls` permits, taken without
//!    waiting: when none is left the call fails at once with RESOURCE_EXHAUSTED. A permit is held
//!    until the response ends (the last message of a stream), except by long-lived watches.
//! 3. **Deadlines**: `grpc-timeout` (and `max_call_seconds`) bound the whole call, streams
//!    included: past it the handler is dropped, or the stream ended, with DEADLINE_EXCEEDED.
//! 4. **Metrics and logs**: when the call ends, its status code and latency are counted per
//!    method, and a `tracing` event is emitted (debug; warn for server-side failures).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::access::{Access, METHODS, Method};
use super::config::{Caller, TokenTable};
use super::metrics::{Metrics, code_name};

/// What the gate and the metrics service share.
#[derive(Debug)]
pub struct GateState {
    tokens: TokenTable,
    index: HashMap<&'static str, usize>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    max_call: Option<Duration>,
    pub metrics: Metrics,
    /// A replica's role: followers refuse the methods that write.
    role: Option<tokio::sync::watch::Receiver<super::replica::ReplicaRole>>,
}

impl GateState {
    pub fn new(tokens: TokenTable, max_in_flight: usize, max_call: Option<Duration>) -> Self {
        GateState {
            tokens,
            index: METHODS
                .iter()
                .enumerate()
                .map(|(i, m)| (m.path, i))
                .collect(),
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            max_call,
            metrics: Metrics::default(),
            role: None,
        }
    }

    /// Makes the gate refuse writes while `role` says this replica follows.
    pub fn with_role(
        mut self,
        role: tokio::sync::watch::Receiver<super::replica::ReplicaRole>,
    ) -> Self {
        self.role = Some(role);
        self
    }

    /// UNAVAILABLE naming the leader, for a write on a follower.
    fn refuse_write(&self, method: &Method) -> Option<Status> {
        self.role.as_ref()?.borrow().refusal(method.path)
    }

    /// Calls holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The caller a bearer token names in the table, if any.
    pub fn caller(&self, token: &str) -> Option<Arc<Caller>> {
        self.tokens.lookup(token).cloned()
    }

    fn authenticate(
        &self,
        headers: &HeaderMap,
        method: Option<&'static str>,
        access: Option<Access>,
    ) -> Result<Option<Arc<Caller>>, Status> {
        let required = match access {
            Some(Access::Public) => return Ok(None),
            Some(Access::AnyOf(roles)) => Some(roles),
            None => None,
        };
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "no token: send the metadata `authorization: Bearer <token>`",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata is not `Bearer <token>`")
            })?;
        let caller = self
            .tokens
            .lookup(token)
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        match (required, method) {
            (Some(roles), Some(path)) if !caller.roles.intersects(roles) => {
                Err(Status::permission_denied(format!(
                    "the token {:?} has the role(s) {}; {path} needs {}",
                    caller.name, caller.roles, roles
                )))
            }
            (Some(_), _) => Ok(Some(caller.clone())),
            (None, _) => Err(Status::unimplemented(
                "no such method on this server (see its reflection service for what it serves)",
            )),
        }
    }
}

/// The layer that puts a [`Gate`] in front of the router.
#[derive(Debug, Clone)]
pub struct GateLayer {
    state: Arc<GateState>,
}

impl GateLayer {
    pub fn new(state: Arc<GateState>) -> Self {
        GateLayer { state }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            state: self.state.clone(),
        }
    }
}

/// See the module's documentation.
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
    state: Arc<GateState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Gate<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let state = self.state.clone();
        // The ready service goes with the call; a clone stays for the next one (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let index = state.index.get(request.uri().path()).copied();
        let method = index.map(|i| &METHODS[i]);
        let mut call = Completion {
            state: state.clone(),
            index,
            started,
            caller: None,
            permit: None,
            done: false,
        };
        Box::pin(async move {
            let checked = state.authenticate(
                request.headers(),
                method.map(|m| m.path),
                method.map(|m| m.access),
            );
            let caller = match checked {
                Ok(caller) => caller,
                Err(status) => return Ok(call.reject(status)),
            };
            if let Some(status) = method
                .filter(|m| m.writes)
                .and_then(|m| state.refuse_write(m))
            {
                return Ok(call.reject(status));
            }
            let long_lived = method.is_some_and(|m| m.long_lived);
            if !long_lived {
                match state.permits.clone().try_acquire_owned() {
                    Ok(permit) => call.permit = Some(permit),
                    Err(_) => {
                        state.metrics.record_shed();
                        let status = Status::resource_exhausted(format!(
                            "the server is serving its limit of {} calls; retry with backoff",
                            state.max_in_flight
                        ));
                        return Ok(call.reject(status));
                    }
                }
            }
            let timeout = match grpc_timeout(request.headers()) {
                Ok(timeout) => timeout,
                Err(status) => return Ok(call.reject(status)),
            };
            let limit = if long_lived { None } else { state.max_call };
            let budget = match (timeout, limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let deadline = budget.map(|b| started + b);
            if let Some(caller) = &caller {
                request.extensions_mut().insert(caller.clone());
            }
            call.caller = caller;
            let handled = inner.call(request);
            let response = match deadline {
                None => handled.await?,
                Some(deadline) => match tokio::time::timeout_at(deadline, handled).await {
                    Ok(response) => response?,
                    Err(_) => return Ok(call.reject(deadline_status(budget))),
                },
            };
            let (parts, body) = response.into_parts();
            if let Some(code) = header_code(&parts.headers) {
                // A trailers-only answer: the call is over.
                if let Some(status) = too_large(code, &parts.headers) {
                    return Ok(call.reject(status));
                }
                call.finish(code);
                return Ok(Response::from_parts(parts, body));
            }
            let body = GateBody {
                inner: body,
                call,
                deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                budget,
                ended: false,
            };
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

fn deadline_status(budget: Option<Duration>) -> Status {
    Status::deadline_exceeded(format!(
        "the deadline of {:?} passed before the call finished",
        budget.unwrap_or_default()
    ))
}

/// tonic refuses a request message above the size limit with OUT_OF_RANGE; gRPC's convention
/// (and this API's documentation) is RESOURCE_EXHAUSTED.
fn too_large(code: Code, headers: &HeaderMap) -> Option<Status> {
    if code != Code::OutOfRange {
        return None;
    }
    let status = Status::from_header_map(headers)?;
    let detail = status
        .message()
        .strip_prefix("Error, decoded message length too large: ")?;
    Some(Status::resource_exhausted(format!(
        "request: the message is too large: {detail} (the server's limits.max_request_bytes)"
    )))
}

/// The status code in a header map's `grpc-status`, if there is one.
fn header_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(Code::from_bytes(value.as_bytes()))
}

/// The `grpc-timeout` header: 1 to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn grpc_timeout(headers: &HeaderMap) -> Result<Option<Duration>, Status> {
    let Some(value) = headers.get("grpc-timeout") else {
        return Ok(None);
    };
    let bad = || {
        Status::invalid_argument(format!(
            "metadata grpc-timeout: {value:?} is not a gRPC timeout (1 to 8 digits and a unit: \
             H, M, S, m, u or n)"
        ))
    };
    let text = value.to_str().map_err(|_| bad())?;
    if !(2..=9).contains(&text.len()) || !text.is_char_boundary(text.len() - 1) {
        return Err(bad());
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let duration = match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(bad()),
    };
    Ok(Some(duration))
}

/// One call's bookkeeping: counted once, when it ends; a call dropped before it ended (the
/// client went away) counts as CANCELLED.
struct Completion {
    state: Arc<GateState>,
    index: Option<usize>,
    started: Instant,
    caller: Option<Arc<Caller>>,
    permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl Completion {
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.permit = None;
        let elapsed = self.started.elapsed();
        self.state.metrics.record(self.index, code, elapsed);
        let method = self.index.map_or("(unknown)", |i| METHODS[i].path);
        let caller = self.caller.as_ref().map_or("-", |c| c.name.as_str());
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        match code {
            Code::Unknown | Code::Internal | Code::DataLoss | Code::Unavailable => {
                tracing::warn!(
                    method,
                    caller,
                    code = code_name(code),
                    micros,
                    "call failed"
                )
            }
            _ => tracing::debug!(method, caller, code = code_name(code), micros, "call"),
        }
    }

    /// Ends the call here with `status`, as a trailers-only response.
    fn reject(mut self, status: Status) -> Response<Body> {
        self.finish(status.code());
        status.into_http()
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

/// The response body, watched: its trailers end the call's bookkeeping, and a deadline that
/// passes mid-stream ends it with DEADLINE_EXCEEDED trailers.
struct GateBody {
    inner: Body,
    call: Completion,
    deadline: Option<Pin<Box<Sleep>>>,
    budget: Option<Duration>,
    ended: bool,
}

impl http_body::Body for GateBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.ended = true;
            let status = deadline_status(this.budget);
            this.call.finish(status.code());
            let mut trailers = HeaderMap::new();
            if status.add_header(&mut trailers).is_err() {
                trailers.insert("grpc-status", http::HeaderValue::from_static("4"));
            }
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.ended = true;
                    this.call
                        .finish(header_code(trailers).unwrap_or(Code::Unknown));
                }
            }
            Poll::Ready(Some(Err(status))) => {
                this.ended = true;
                this.call.finish(status.code());
            }
            Poll::Ready(None) => {
                this.ended = true;
                this.call.finish(Code::Unknown);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::access::{Role, Roles};

    /// A handler that takes `delay` and answers OK (trailers-only).
    #[derive(Clone)]
    struct Slow {
        delay: Duration,
    }

    impl Service<Request<Body>> for Slow {
        type Response = Response<Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Result<Response<Body>, std::convert::Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            let delay = self.delay;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(Status::new(Code::Ok, "").into_http())
            })
        }
    }

    const TOKEN: &str = "allot_auditor";

    fn gate(max_in_flight: usize, delay: Duration) -> (Gate<Slow>, Arc<GateState>) {
        let mut tokens = TokenTable::default();
        tokens.insert_token(
            TOKEN,
            Caller {
                name: "audit".into(),
                roles: Roles::of(&[Role::Auditor]),
            },
        );
        let state = Arc::new(GateState::new(tokens, max_in_flight, None));
        (GateLayer::new(state.clone()).layer(Slow { delay }), state)
    }

    fn request(path: &str, timeout: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder()
            .uri(format!("http://localhost{path}"))
            .header("authorization", format!("Bearer {TOKEN}"));
        if let Some(t) = timeout {
            builder = builder.header("grpc-timeout", t);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn code(response: &Response<Body>) -> Code {
        header_code(response.headers()).unwrap()
    }

    const ENTRY: &str = "/allot.v1.Audit/GetEntry";

    #[tokio::test(start_paused = true)]
    async fn a_slow_unary_call_ends_at_its_deadline() {
        let (mut gate, state) = gate(4, Duration::from_secs(5));
        let started = Instant::now();
        let response = gate.call(request(ENTRY, Some("250m"))).await.unwrap();
        assert_eq!(code(&response), Code::DeadlineExceeded);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(252),
            "{took:?}"
        );
        let response = gate.call(request(ENTRY, Some("6S"))).await.unwrap();
        assert_eq!(code(&response), Code::Ok);
        let snap = state.metrics.snapshot();
        assert_eq!(snap[0].calls["DEADLINE_EXCEEDED"], 1);
        assert_eq!(snap[0].calls["OK"], 1);
        assert_eq!(state.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_limit_are_shed_at_once_and_permits_come_back() {
        let (mut gate, state) = gate(1, Duration::from_secs(1));
        let first = tokio::spawn(gate.call(request(ENTRY, None)));
        tokio::task::yield_now().await;
        assert_eq!(state.in_flight(), 1);
        let started = Instant::now();
        let shed = gate.call(request(ENTRY, None)).await.unwrap();
        assert_eq!(code(&shed), Code::ResourceExhausted);
        assert_eq!(started.elapsed(), Duration::ZERO, "shedding must not wait");
        assert_eq!(code(&first.await.unwrap().unwrap()), Code::Ok);
        assert_eq!(state.in_flight(), 0);
        assert_eq!(
            code(&gate.call(request(ENTRY, None)).await.unwrap()),
            Code::Ok
        );
        assert_eq!(state.metrics.shed(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_midway_counts_as_cancelled_and_frees_its_permit() {
        let (mut gate, state) = gate(1, Duration::from_secs(1));
        let call = gate.call(request(ENTRY, None));
        let abandoned = tokio::time::timeout(Duration::from_millis(10), call).await;
        assert!(abandoned.is_err());
        assert_eq!(state.in_flight(), 0);
        assert_eq!(state.metrics.snapshot()[0].calls["CANCELLED"], 1);
    }

    #[tokio::test]
    async fn tokens_and_roles() {
        let (mut gate, _) = gate(4, Duration::ZERO);
        let mut check = async |path: &str, auth: Option<&str>, expect: Code| {
            let mut builder = Request::builder().uri(format!("http://localhost{path}"));
            if let Some(auth) = auth {
                builder = builder.header("authorization", auth);
            }
            let response = gate
                .call(builder.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(code(&response), expect, "{path} {auth:?}");
        };
        let bearer = format!("Bearer {TOKEN}");
        let lower = format!("bearer {TOKEN}");
        check(ENTRY, Some(&bearer), Code::Ok).await;
        check(ENTRY, Some(&lower), Code::Ok).await;
        check(ENTRY, None, Code::Unauthenticated).await;
        check(ENTRY, Some("Bearer nope"), Code::Unauthenticated).await;
        check(ENTRY, Some(TOKEN), Code::Unauthenticated).await;
        check(
            "/allot.v1.Fairs/RunAllocation",
            Some(&bearer),
            Code::PermissionDenied,
        )
        .await;
        check("/grpc.health.v1.Health/Check", None, Code::Ok).await;
        check("/allot.v1.Nothing/Here", Some(&bearer), Code::Unimplemented).await;
        check("/allot.v1.Nothing/Here", None, Code::Unauthenticated).await;
    }

    #[test]
    fn grpc_timeouts_parse_or_are_refused() {
        check("100m", Ok(Some(Duration::from_millis(100))));
        check("2S", Ok(Some(Duration::from_secs(2))));
        check("1H", Ok(Some(Duration::from_secs(3600))));
        check("99999999n", Ok(Some(Duration::from_nanos(99_999_999))));
        check("5u", Ok(Some(Duration::from_micros(5))));
        check("3M", Ok(Some(Duration::from_secs(180))));
        for bad in ["", "m", "100", "100x", "123456789m", "-1S", "1.5S", "１S"] {
            check(bad, Err(()));
        }

        fn check(value: &str, expect: Result<Option<Duration>, ()>) {
            let mut headers = HeaderMap::new();
            headers.insert(
                "grpc-timeout",
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
            let got = grpc_timeout(&headers).map_err(|s| {
                assert_eq!(s.code(), Code::InvalidArgument);
                assert!(s.message().starts_with("metadata grpc-timeout: "));
            });
            assert_eq!(got, expect, "{value:?}");
        }
    }
}
