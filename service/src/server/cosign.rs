//! The cosigning policy: each signed checkpoint goes, with a consistency proof, to every
//! configured witness (c2sp.org/tlog-witness); once `quorum` of them cosigned one, it is kept in
//! `DATA/log/cosigned` (and appended to the history), published with its tiles, and used for
//! offline proofs.
//!
//! Each witness has its own worker that always submits the newest signed checkpoint and never
//! has two requests in flight, so a slow or dead witness only falls behind (backing off up to
//! 30 s between attempts) and delays nothing while a quorum of the others answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use allot_engine::log::{Log, SignedCheckpoint, TrustPolicy};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::state::AppState;
use crate::witness::{CosignError, WitnessClient};

/// The server's cosigning state: its policy (none without witnesses) and the latest checkpoint
/// that carries its witnesses' quorum (its note: the log's signature, then the cosignatures).
#[derive(Debug, Default)]
pub struct Cosigned {
    policy: Option<TrustPolicy>,
    latest: watch::Sender<Option<SignedCheckpoint>>,
    /// Requests to witnesses that gave no cosignature, for the metrics.
    failures: std::sync::atomic::AtomicU64,
}

impl Cosigned {
    /// With witnesses: `policy` and the newest cosigned checkpoint the log folder kept.
    pub fn new(policy: TrustPolicy, kept: Option<SignedCheckpoint>) -> Cosigned {
        Cosigned {
            policy: Some(policy),
            latest: watch::Sender::new(kept),
            failures: Default::default(),
        }
    }

    /// Requests to witnesses that gave no cosignature so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The policy checkpoints must meet to be published (none: every signed one is).
    pub fn policy(&self) -> Option<&TrustPolicy> {
        self.policy.as_ref()
    }

    /// The latest cosigned checkpoint.
    pub fn latest(&self) -> Option<SignedCheckpoint> {
        self.latest.borrow().clone()
    }

    /// Follows the latest cosigned checkpoint.
    pub fn subscribe(&self) -> watch::Receiver<Option<SignedCheckpoint>> {
        self.latest.subscribe()
    }

    /// Waits (up to `timeout`) for a cosigned checkpoint of at least `size` entries.
    pub async fn wait_for(&self, size: u64, timeout: Duration) -> Option<SignedCheckpoint> {
        let mut rx = self.subscribe();
        let reached = rx.wait_for(|c| c.as_ref().is_some_and(|c| c.checkpoint.size >= size));
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(c)) => c.clone(),
            _ => None,
        }
    }
}

/// Starts one worker per witness and the task that gathers their cosignatures; the server
/// aborts them once it has stopped.
pub fn start(state: &Arc<AppState>, witnesses: Vec<Arc<WitnessClient>>) -> Vec<JoinHandle<()>> {
    let Some(policy) = state.cosigned.policy().cloned() else {
        return Vec::new();
    };
    let (tx, rx) = mpsc::channel(64);
    let mut tasks: Vec<JoinHandle<()>> = witnesses
        .iter()
        .enumerate()
        .map(|(index, witness)| {
            tokio::spawn(worker(state.clone(), witness.clone(), index, tx.clone()))
        })
        .collect();
    tasks.push(tokio::spawn(gather(
        state.clone(),
        policy,
        witnesses.len(),
        rx,
    )));
    tasks
}

/// A cosignature line from witness `index` on `signed`.
type Cosignature = (usize, SignedCheckpoint, String);

async fn worker(
    state: Arc<AppState>,
    witness: Arc<WitnessClient>,
    index: usize,
    tx: mpsc::Sender<Cosignature>,
) {
    let mut signed = state.checkpoints.subscribe();
    let mut done: Option<u64> = None;
    let mut backoff = Duration::from_millis(100);
    let mut last_error: Option<CosignError> = None;
    loop {
        let latest = signed.borrow_and_update().clone();
        let Some(latest) = latest.filter(|c| done.is_none_or(|d| c.checkpoint.size > d)) else {
            if signed.changed().await.is_err() {
                return;
            }
            continue;
        };
        match witness.cosign(&state.log, &latest).await {
            Ok(line) => {
                if last_error.take().is_some() {
                    tracing::info!(witness = witness.url, "the witness cosigns again");
                }
                done = Some(latest.checkpoint.size);
                backoff = Duration::from_millis(100);
                if tx.send((index, latest, line)).await.is_err() {
                    return;
                }
                // Nothing newer yet: wait for the next checkpoint.
                if signed.has_changed().is_ok_and(|c| !c) && signed.changed().await.is_err() {
                    return;
                }
            }
            // The witness has cosigned a larger tree of this log that this server holds too:
            // another replica (the leader) got there first. Not a failure: wait for a newer
            // checkpoint of our own. (Beyond our log, it is one: this log lost entries.)
            Err(CosignError::Ahead { size, .. }) if size <= state.log.size() => {
                done = Some(latest.checkpoint.size);
                if signed.has_changed().is_ok_and(|c| !c) && signed.changed().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                (state.cosigned.failures).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if last_error.as_ref() != Some(&e) {
                    match &e {
                        CosignError::Refused { status, .. } if *status != 503 => {
                            tracing::error!(size = latest.checkpoint.size, error = %e, "a witness refuses the log's checkpoint")
                        }
                        _ => {
                            tracing::warn!(size = latest.checkpoint.size, error = %e, "no cosignature")
                        }
                    }
                    last_error = Some(e);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn gather(
    state: Arc<AppState>,
    policy: TrustPolicy,
    witnesses: usize,
    mut rx: mpsc::Receiver<Cosignature>,
) {
    let mut pending: BTreeMap<u64, (SignedCheckpoint, Vec<Option<String>>)> = BTreeMap::new();
    while let Some((index, signed, line)) = rx.recv().await {
        let size = signed.checkpoint.size;
        let published = state.cosigned.latest().map_or(0, |c| c.checkpoint.size);
        if size <= published && published > 0 {
            continue;
        }
        let (_, lines) = pending
            .entry(size)
            .or_insert_with(|| (signed, vec![None; witnesses]));
        lines[index] = Some(line);
        if lines.iter().flatten().count() < policy.quorum {
            continue;
        }
        let Some((signed, lines)) = pending.remove(&size) else {
            continue;
        };
        pending.retain(|s, _| *s > size);
        let mut note = signed.note.clone();
        for line in lines.into_iter().flatten() {
            note.push_str(&line);
        }
        if let Err(e) = keep(&state, &policy, note).await {
            tracing::error!(size, error = %e, "keeping a cosigned checkpoint");
        }
    }
}

/// Checks `note` against the policy, keeps it durably in the log folder, publishes it.
async fn keep(state: &Arc<AppState>, policy: &TrustPolicy, note: String) -> Result<(), String> {
    let trusted = policy.check(&note).map_err(|e| e.to_string())?;
    let log: Arc<Log> = state.log.clone();
    let publish = state.checkpoints.publishes_tiles();
    let size = trusted.checkpoint.size;
    let checkpoint = trusted.checkpoint.clone();
    let kept = note.clone();
    tokio::task::spawn_blocking(move || {
        let now = allot_engine::log::Timestamp::now().unix_seconds();
        log.keep_cosigned(&kept, &trusted, now)
            .map_err(|e| e.to_string())?;
        if publish && let Err(e) = log.publish_tiles(&kept, size) {
            tracing::warn!(error = %e, size, "publishing the tiles");
        }
        Ok::<_, String>(())
    })
    .await
    .map_err(|e| e.to_string())??;
    state
        .cosigned
        .latest
        .send_replace(Some(SignedCheckpoint { checkpoint, note }));
    Ok(())
}
