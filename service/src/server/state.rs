//! What the services share: the decision log (one writer per data folder), the signed
//! checkpoints, and whether the server is stopping.
//!
//! Domain engines plug in here as further fields (see `server/mod.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use allot_engine::appointments::{
    Clock, Engine, EngineOptions, Error as AppointmentsError, SystemClock,
};
use allot_engine::fair::Fairs;
use allot_engine::log::{Log, SignedCheckpoint};
use allot_engine::school::Schools;
use tokio::sync::watch;
use tonic::Status;

use super::allocation::windows::Windows;
use super::replies::Replies;
use super::status::{blocking, log_status};

/// The domain engines a server runs, built from its data folder before it starts.
#[derive(Debug, Default)]
pub struct Domains {
    /// The city's appointments; `None` when no city is loaded in the data folder (the
    /// Appointments methods then answer FAILED_PRECONDITION).
    pub appointments: Option<Engine>,
}

impl Domains {
    /// Reopens what the data folder of `log` holds: the appointment inventory is rebuilt from
    /// the log (and its latest snapshot) when a city was loaded. Warnings go to the logs.
    pub fn open(log: &Arc<Log>) -> Result<Domains, AppointmentsError> {
        let (domains, warnings) = Self::open_with(log, Arc::new(SystemClock))?;
        for warning in &warnings {
            tracing::warn!("appointments: {warning}");
        }
        if let Some(engine) = &domains.appointments {
            tracing::info!(
                slots = engine.schedule().slot_count(),
                "appointments: inventory rebuilt from the log"
            );
        }
        Ok(domains)
    }

    /// [`Domains::open`] on `clock` (the CLI's `--now`), returning the warnings of rebuilding the
    /// inventory for the caller to show.
    pub fn open_with(
        log: &Arc<Log>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Domains, Vec<String>), AppointmentsError> {
        match Engine::open_with_log(log.clone(), EngineOptions::default(), clock) {
            Ok((engine, report)) => Ok((
                Domains {
                    appointments: Some(engine),
                },
                report.warnings,
            )),
            Err(AppointmentsError::NotLoaded(_)) => Ok((Domains::default(), Vec::new())),
            Err(e) => Err(e),
        }
    }
}

/// The data folder of a log (the log lives in `DATA/log`).
pub fn data_dir(log: &Log) -> PathBuf {
    log.dir()
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The state every service handler reaches through an `Arc`.
#[derive(Debug)]
pub struct AppState {
    /// The decision log, open for writing: the server holds the data folder's writer lock.
    pub log: Arc<Log>,
    /// The data folder (blobs, application windows, snapshots).
    pub data_dir: PathBuf,
    /// Checkpoints signed while this server runs.
    pub checkpoints: Checkpoints,
    /// Checkpoints its witnesses cosigned (when it has witnesses).
    pub cosigned: super::cosign::Cosigned,
    /// The appointment engine, when a city is loaded.
    pub appointments: Option<Engine>,
    /// Fair application windows and runs.
    pub fairs: Windows<Fairs>,
    /// School application windows and runs.
    pub schools: Windows<Schools>,
    /// Answers remembered for retries with a `request_id`.
    pub replies: Replies,
    /// Connections refused at the limit or closed for silence.
    pub connections: Arc<super::conn::ConnectionCounts>,
    /// This server's part in a replica set on PostgreSQL (`None`: the data folder is the store).
    pub replication: Option<Arc<super::replica::Replication>>,
    stopping: watch::Receiver<bool>,
}

impl AppState {
    pub fn new(log: Arc<Log>, stopping: watch::Receiver<bool>) -> AppState {
        Self::with_domains(log, stopping, Domains::default())
    }

    pub fn with_domains(
        log: Arc<Log>,
        stopping: watch::Receiver<bool>,
        domains: Domains,
    ) -> AppState {
        let checkpoints = Checkpoints::new(log.checkpoint());
        let data_dir = data_dir(&log);
        AppState {
            fairs: Windows::default(),
            schools: Windows::default(),
            data_dir,
            log,
            checkpoints,
            cosigned: super::cosign::Cosigned::default(),
            appointments: domains.appointments,
            replies: Replies::default(),
            connections: Arc::default(),
            replication: None,
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
    /// Whether each checkpoint is also published with its tiles in `DATA/tiles/` when signed
    /// (with witnesses, it is published once cosigned instead).
    publish_tiles: std::sync::atomic::AtomicBool,
    publish_on_sign: std::sync::atomic::AtomicBool,
    /// The latest signed checkpoint, for the witnesses' workers.
    signed: watch::Sender<Option<SignedCheckpoint>>,
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
        let size = signed.checkpoint.size;
        held.insert(size, signed.clone());
        while held.len() > HELD_CHECKPOINTS {
            held.pop_first();
        }
        drop(held);
        self.signed.send_if_modified(|latest| {
            let newer = latest.as_ref().is_none_or(|l| l.checkpoint.size < size);
            if newer {
                *latest = Some(signed);
            }
            newer
        });
    }

    /// Follows the latest signed checkpoint.
    pub fn subscribe(&self) -> watch::Receiver<Option<SignedCheckpoint>> {
        self.signed.subscribe()
    }

    /// The latest signed checkpoint.
    pub fn latest(&self) -> Option<SignedCheckpoint> {
        self.held().last_key_value().map(|(_, c)| c.clone())
    }

    /// The signed checkpoint of tree size `size`, if held.
    pub fn at(&self, size: u64) -> Option<SignedCheckpoint> {
        self.held().get(&size).cloned()
    }

    /// Publishes each checkpoint from now on with its tiles, as static files in `DATA/tiles/`
    /// (c2sp.org/tlog-tiles): when signed, or (`once_cosigned`) when its witnesses' quorum
    /// cosigned it.
    pub fn publish_tiles(&self, publish: bool, once_cosigned: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.publish_tiles.store(publish, Relaxed);
        self.publish_on_sign
            .store(publish && !once_cosigned, Relaxed);
    }

    /// Whether checkpoints are published with their tiles in `DATA/tiles/`.
    pub fn publishes_tiles(&self) -> bool {
        self.publish_tiles
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Signs a checkpoint of the log's current head (the latest one if the log has not grown)
    /// and holds it (and publishes it with its tiles, if asked to: a failure there is logged,
    /// the checkpoint stands).
    pub async fn sign(&self, log: &Arc<Log>) -> Result<SignedCheckpoint, Status> {
        let log = log.clone();
        let publish = self
            .publish_on_sign
            .load(std::sync::atomic::Ordering::Relaxed);
        let signed = blocking(move || {
            let signed = log.sign_checkpoint().map_err(log_status)?;
            if publish {
                let size = signed.checkpoint.size;
                if let Err(e) = log.publish_tiles(&signed.note, size) {
                    tracing::warn!(error = %e, size, "publishing the tiles");
                }
            }
            Ok(signed)
        })
        .await?;
        self.hold(signed.clone());
        Ok(signed)
    }
}
