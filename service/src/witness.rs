//! c2sp.org/tlog-witness over HTTP: the witness's face (`allot witness serve`: `POST
//! /add-checkpoint`) and the client a log uses to ask a witness for a cosignature.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use allot_engine::log::{Log, SignedCheckpoint, Timestamp, VerifierKey};
use allot_engine::witness::{AddCheckpoint, LogKey, SIZE_CONTENT_TYPE, Witness};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The largest request body: 63 proof lines and a checkpoint with many signatures fit easily.
const MAX_BODY_BYTES: usize = 64 << 10;

/// The witness's routes.
pub fn routes(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(witness)
}

/// Serves `witness` on `listener` until `stop` turns true.
pub async fn serve(
    witness: Arc<Witness>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    axum::serve(listener, routes(witness))
        .with_graceful_shutdown(stopped)
        .await
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    // The check-and-persist fsyncs: off the async threads.
    let answer = tokio::task::spawn_blocking(move || {
        witness.add_checkpoint(&body, Timestamp::now().unix_seconds())
    })
    .await;
    let refusal = match answer {
        Ok(Ok(cosignature)) => {
            let mut response = cosignature.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return response;
        }
        Ok(Err(refusal)) => refusal,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(error = %refusal, "add-checkpoint");
    } else {
        tracing::info!(status = status.as_u16(), reason = %refusal, "add-checkpoint refused");
    }
    if let allot_engine::witness::WitnessError::Conflict { size, .. } = refusal {
        let mut response = (status, format!("{size}\n")).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SIZE_CONTENT_TYPE),
        );
        return response;
    }
    (status, format!("{refusal}\n")).into_response()
}

/// An HTTP client for witnesses and logs: keep-alive, rustls with the ring provider, and a
/// timeout on every request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    // Whichever of tonic and reqwest gets here first installs it; the second call is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| e.to_string())
}

/// A witness as a log sees it: where to reach it, its cosigning key, and the size it last
/// cosigned for this log (learnt from its answers; 0 until then).
#[derive(Debug)]
pub struct WitnessClient {
    pub url: String,
    pub key: VerifierKey,
    known_size: AtomicU64,
    http: reqwest::Client,
}

/// Why a witness gave no cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    #[error("{url}: unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The witness refused: its status and what it said.
    #[error("{url}: refused with {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: its answer has no valid cosignature by {key}: {reason}")]
    BadAnswer {
        url: String,
        key: String,
        reason: String,
    },
    #[error("{url}: has cosigned size {size}, beyond this log's {ours}: the log lost entries")]
    Ahead { url: String, size: u64, ours: u64 },
    #[error("making the consistency proof: {0}")]
    Proof(String),
}

impl WitnessClient {
    pub fn new(url: &str, key: VerifierKey, http: reqwest::Client) -> WitnessClient {
        WitnessClient {
            url: url.trim_end_matches('/').to_owned(),
            key,
            known_size: AtomicU64::new(0),
            http,
        }
    }

    /// The size this witness last cosigned, as far as this log knows.
    pub fn known_size(&self) -> u64 {
        self.known_size.load(Ordering::Relaxed)
    }

    /// Asks for a cosignature on `signed` with a consistency proof from the witness's size
    /// (learning that size from a 409 and retrying, twice at most: replicas of one log share
    /// their witnesses, so the size may move between two asks); returns the cosignature line.
    pub async fn cosign(
        &self,
        log: &Arc<Log>,
        signed: &SignedCheckpoint,
    ) -> Result<String, CosignError> {
        let size = signed.checkpoint.size;
        for attempt in 0..3 {
            let old = self.known_size().min(size);
            let proof = match old {
                0 => Vec::new(),
                old if old == size => Vec::new(),
                old => {
                    let log = log.clone();
                    tokio::task::spawn_blocking(move || log.consistency_proof(old, size))
                        .await
                        .map_err(|e| CosignError::Proof(e.to_string()))?
                        .map_err(|e| CosignError::Proof(e.to_string()))?
                        .path
                }
            };
            let body = AddCheckpoint::to_body(old, &proof, &signed.note);
            let response = self
                .http
                .post(format!("{}/add-checkpoint", self.url))
                .body(body)
                .send()
                .await
                .map_err(|e| CosignError::Unreachable {
                    url: self.url.clone(),
                    reason: error_chain(&e),
                })?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            match status {
                200 => {
                    let line = self.check_answer(&signed.note, &text)?;
                    self.known_size.store(size, Ordering::Relaxed);
                    return Ok(line);
                }
                409 if attempt < 2 => {
                    let theirs: u64 =
                        text.trim_end().parse().map_err(|_| CosignError::Refused {
                            url: self.url.clone(),
                            status,
                            body: allot_engine::input::clip(&text),
                        })?;
                    if theirs > size {
                        return Err(CosignError::Ahead {
                            url: self.url.clone(),
                            size: theirs,
                            ours: size,
                        });
                    }
                    if theirs == old {
                        // Same size, another root: the witness holds a different history.
                        return Err(CosignError::Refused {
                            url: self.url.clone(),
                            status,
                            body: text.trim_end().to_owned(),
                        });
                    }
                    self.known_size.store(theirs, Ordering::Relaxed);
                }
                _ => {
                    return Err(CosignError::Refused {
                        url: self.url.clone(),
                        status,
                        body: allot_engine::input::clip(text.trim_end()),
                    });
                }
            }
        }
        Err(CosignError::Refused {
            url: self.url.clone(),
            status: 409,
            body: "the witness's size changed while asking".into(),
        })
    }

    /// The witness's cosignature line among those it answered, verified on the checkpoint.
    fn check_answer(&self, note: &str, answer: &str) -> Result<String, CosignError> {
        let bad = |reason: String| CosignError::BadAnswer {
            url: self.url.clone(),
            key: self.key.to_text(),
            reason,
        };
        let text = allot_engine::log::note::split_note(note)
            .map_err(|e| bad(e.to_string()))?
            .text;
        let lines = allot_engine::log::note::parse_signature_lines(answer)
            .map_err(|e| bad(e.to_string()))?;
        for (line, (name, raw)) in answer.lines().zip(lines) {
            if self.key.claims(name, &raw) {
                self.key
                    .verify(text, &raw)
                    .map_err(|e| bad(e.to_string()))?;
                return Ok(format!("{line}\n"));
            }
        }
        Err(bad("no line carries its key".into()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `allot witness serve`: opens the witness in `data` for the logs `log_keys`, serves it on
/// `listen` and prints `witness <verifier key>` and `listening on <URL>`; returns after SIGTERM
/// or SIGINT.
pub fn run(
    data: &std::path::Path,
    name: &str,
    log_keys: &[LogKey],
    listen: SocketAddr,
) -> Result<(), String> {
    use std::io::Write as _;
    crate::process::init_logs(crate::process::LogFormat::Text);
    let witness = Witness::open_logs(data, name, log_keys)
        .map_err(|e| format!("opening the witness in {}: {e}", data.display()))?;
    let witness = Arc::new(witness);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("the async runtime: {e}"))?;
    runtime.block_on(async {
        let stop = crate::process::StopSignal::listen().map_err(|e| format!("signals: {e}"))?;
        let (listener, addr) = bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        let banner = format!(
            "witness {}\nlistening on http://{addr}\n",
            witness.verifier().to_text()
        );
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
        drop(out);
        tracing::info!(%addr, logs = log_keys.len(), "witness serving");
        let (stop_tx, stop_rx) = watch::channel(false);
        let served = tokio::spawn(serve(witness, listener, stop_rx));
        stop.received().await;
        let _ = stop_tx.send(true);
        match served.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("serving: {e}")),
            Err(e) => Err(format!("serving: {e}")),
        }
    })
}

/// Binds `at` for a witness; the address (with the port the OS chose for port 0).
pub async fn bind(at: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(at).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
