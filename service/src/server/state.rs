//! What the services share: the decision log (one writer per data folder), the signed
//! checkpoints, and whether the server is stopping.
//!
//! Domain engines plug in here as further fields (see `server/mod.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use allot_engine::log::{Log, SignedCheckpoint};
use tokio::sync::watch;
use tonic::Status;

use super::status::{blocking, log_status};

/// The state every service handler reaches through an `Arc`.
#[derive(Debug)]
pub struct AppState {
    /// The decision log, open for writing: the server holds the data folder's writer lock.
    pub log: Arc<Log>,
    /// Checkpoints signed while this server runs.
    pub checkpoints: Checkpoints,
    stopping: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(log: Arc<Log>, stopping: watch::Receiver<bool>) -> AppState {
        let checkpoints = Checkpoints::new(log.checkpoint());
        AppState {
            log,
            checkpoints,
            stopping,
        }
    }

    /// Whether the server has begun to stop (streams that would run on should end).
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// A receiver that changes when the server begins to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }
}

/// How many signed checkpoints a server keeps in memory for proofs at older sizes.
pub const HELD_CHECKPOINTS: usize = 4096;

/// The checkpoints the server signed since it started (and the one it found on disk), by tree
/// size: proofs are made for these sizes, so each answer can carry its signed checkpoint. Only
/// the latest is also kept in the data folder.
#[derive(Debug, Default)]
pub struct Checkpoints {
    held: Mutex<BTreeMap<u64, SignedCheckpoint>>,
}

impl Checkpoints {
    pub fn new(initial: Option<SignedCheckpoint>) -> Self {
        let book = Checkpoints::default();
        if let Some(c) = initial {
            book.hold(c);
        }
        book
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SignedCheckpoint>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hold(&self, signed: SignedCheckpoint) {
        let mut held = self.held();
        held.insert(signed.checkpoint.size, signed);
        while held.len() > HELD_CHECKPOINTS {
            held.pop_first();
        }
    }

    /// The latest signed checkpoint.
    pub fn latest(&self) -> Option<SignedCheckpoint> {
        self.held().last_key_value().map(|(_, c)| c.clone())
    }

    /// The signed checkpoint of tree size `size`, if held.
    pub fn at(&self, size: u64) -> Option<SignedCheckpoint> {
        self.held().get(&size).cloned()
    }

    /// Signs a checkpoint of the log's current head (the latest one if the log has not grown)
    /// and holds it.
    pub async fn sign(&self, log: &Arc<Log>) -> Result<SignedCheckpoint, Status> {
        let log = log.clone();
        let signed = blocking(move || log.sign_checkpoint().map_err(log_status)).await?;
        self.hold(signed.clone());
        Ok(signed)
    }
}
