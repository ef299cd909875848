//! Application windows of the allocation domains (fairs, schools), kept durably in the data
//! folder, and the runs made on them.
//!
//! A window lives in `DATA/windows/<domain>/<hex of its name>/`: `applications.jsonl` has one
//! line per accepted `SubmitApplications` call (appended and fsynced before the call answers; a
//! torn last line from a crash is ignored, since that call was never acknowledged), and
//! `closed.json` the commitment once `CloseApplications` logged it. The canonical application set
//! is rebuilt from the lines (through the same CSV readers as the command line, so a window and
//! its files validate alike), which is deterministic: `RunAllocation` after a restart sees the set
//! that was committed, and checks it by its digest.
//!
//! Every change to a domain's windows and runs holds that domain's lock (the calls are rare and
//! each is one fsync or one allocation); reads of runs share a lock per run.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use allot_engine::allocation::{
    self, Allocation, Beacon, Closed, Loaded, LoggedRun, LoggedRunOf, close_with_log,
    load_with_log, run_closed,
};
use allot_engine::log::{Digest, Log, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::server::validate::{FieldError, FieldPath};

/// An allocation domain whose applications arrive over the API.
pub trait WindowKind: Allocation + Sized + 'static {
    /// The folder under `DATA/windows/`.
    const FOLDER: &'static str;
    /// What one call adds.
    type Chunk: Serialize + DeserializeOwned + Default + Send + 'static;
    /// The keys that must be unique in a window, of every item of a chunk (e.g. `applicant:ID`).
    fn keys(chunk: &Self::Chunk) -> Vec<String>;
    /// Items per kind in a chunk (e.g. pools, applicants, 0).
    fn counts(chunk: &Self::Chunk) -> [u64; 3];
    /// The canonical application set of a window's chunks, or what is wrong with it.
    fn input(chunks: &[Self::Chunk]) -> Result<Self::Input, String>;
}

/// The commitment of a closed window, as kept in `closed.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClosedFile {
    set_digest: String,
    applications: u64,
    index: u64,
}

/// A window's stored chunks and whether it is closed.
struct Stored<C> {
    chunks: Vec<C>,
    closed: Option<Closed>,
}

/// A run held for reads, and for changes under the domain's lock.
pub type HeldRun<A> = Arc<RwLock<Loaded<A>>>;

/// A domain's windows and the runs read so far.
pub struct Windows<A: WindowKind> {
    root: PathBuf,
    lock: Mutex<()>,
    runs: Mutex<HashMap<[u8; 32], HeldRun<A>>>,
    /// The input of the window closed last, for the run that usually follows (rebuilding a
    /// national window's input from its applications takes seconds).
    last_closed: Mutex<Option<(String, A::Input)>>,
}

impl<A: WindowKind> std::fmt::Debug for Windows<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "{what}");
    Status::internal(format!("{what}: {e}"))
}

/// An allocation error as a status.
pub fn allocation_status(e: allocation::Error) -> Status {
    match e {
        allocation::Error::Input(e) => Status::invalid_argument(e.to_string()),
        allocation::Error::Log(e) => crate::server::status::log_status(e),
        allocation::Error::Request(m) | allocation::Error::Unsupported(m) => {
            Status::failed_precondition(m)
        }
        e @ allocation::Error::StoredInput { .. } => {
            tracing::error!(error = %e, "a stored input is damaged");
            Status::data_loss(e.to_string())
        }
        e => internal("allocation", e),
    }
}

/// What a submission added and the window's totals after it.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    pub added: [u64; 3],
    pub total: [u64; 3],
}

impl<A: WindowKind> Windows<A> {
    pub fn new(data_dir: &Path) -> Self {
        Windows {
            root: data_dir.join("windows").join(A::FOLDER),
            lock: Mutex::new(()),
            runs: Mutex::new(HashMap::new()),
            last_closed: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn folder(&self, window: &str) -> PathBuf {
        self.root.join(hex::encode(window.as_bytes()))
    }

    fn read(&self, window: &str) -> Result<Option<Stored<A::Chunk>>, Status> {
        let folder = self.folder(window);
        let path = folder.join("applications.jsonl");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(internal("reading a window", e)),
        };
        let mut chunks = Vec::new();
        let lines: Vec<String> = std::io::BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| internal("reading a window", e))?;
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str(line) {
                Ok(chunk) => chunks.push(chunk),
                // A torn last line: that call was never acknowledged.
                Err(_) if i == last => break,
                Err(e) => {
                    return Err(Status::data_loss(format!(
                        "{}: line {}: {e}",
                        path.display(),
                        i + 1
                    )));
                }
            }
        }
        let closed = match std::fs::read(folder.join("closed.json")) {
            Ok(bytes) => {
                let c: ClosedFile = serde_json::from_slice(&bytes)
                    .map_err(|e| internal("reading a window's commitment", e))?;
                let digest: [u8; 32] = hex::decode(&c.set_digest)
                    .ok()
                    .and_then(|d| d.try_into().ok())
                    .ok_or_else(|| internal("reading a window's commitment", "a bad digest"))?;
                Some(Closed {
                    set_digest: Digest(digest),
                    applications: c.applications,
                    index: c.index,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(internal("reading a window's commitment", e)),
        };
        Ok(Some(Stored { chunks, closed }))
    }

    /// Adds a chunk to an open window (creating it); `keys` are the chunk's unique keys with the
    /// request paths that name them. Durable when it returns.
    pub fn submit(
        &self,
        window: &str,
        window_path: &FieldPath,
        chunk: A::Chunk,
        keys: Vec<(String, FieldPath)>,
    ) -> Result<Totals, Status> {
        let _guard = self.lock();
        let stored = self.read(window)?.unwrap_or(Stored {
            chunks: Vec::new(),
            closed: None,
        });
        if stored.closed.is_some() {
            return Err(FieldError::failed_precondition(
                window_path,
                format!("window '{window}' is closed: it accepts no more applications"),
            )
            .into());
        }
        let mut seen: HashSet<String> = stored.chunks.iter().flat_map(A::keys).collect();
        for (key, path) in keys {
            if !seen.insert(key.clone()) {
                let (kind, id) = key.split_once(':').unwrap_or(("item", &key));
                return Err(FieldError::invalid(
                    &path,
                    format!("{kind} '{id}' is already in window '{window}'"),
                )
                .into());
            }
        }
        let mut total = [0u64; 3];
        for c in &stored.chunks {
            add(&mut total, A::counts(c));
        }
        let added = A::counts(&chunk);
        add(&mut total, added);
        let folder = self.folder(window);
        std::fs::create_dir_all(&folder).map_err(|e| internal("creating a window", e))?;
        let mut line = serde_json::to_vec(&chunk).map_err(|e| internal("encoding", e))?;
        line.push(b'\n');
        let path = folder.join("applications.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| internal("opening a window", e))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| internal("writing a window", e))?;
        if stored.chunks.is_empty() {
            sync_folder(&folder)?;
            sync_folder(&self.root)?;
        }
        Ok(Totals { added, total })
    }

    /// Closes a window: logs the commitment (or returns the one logged before).
    pub fn close(
        &self,
        log: &Log,
        window: &str,
        window_path: &FieldPath,
        actor: &str,
    ) -> Result<Closed, Status> {
        let _guard = self.lock();
        let stored = self.stored(window, window_path)?;
        if let Some(closed) = stored.closed {
            return Ok(closed);
        }
        let input = A::input(&stored.chunks).map_err(|problem| {
            Status::failed_precondition(format!("window '{window}' cannot be closed: {problem}"))
        })?;
        let closed = close_with_log::<A>(log, &input, actor, window).map_err(allocation_status)?;
        let file = ClosedFile {
            set_digest: hex::encode(closed.set_digest.0),
            applications: closed.applications,
            index: closed.index,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| internal("encoding", e))?;
        write_durably(&self.folder(window).join("closed.json"), &bytes)?;
        *self.last_closed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((window.to_owned(), input));
        Ok(closed)
    }

    fn stored(&self, window: &str, window_path: &FieldPath) -> Result<Stored<A::Chunk>, Status> {
        self.read(window)?.ok_or_else(|| {
            FieldError::not_found(
                window_path,
                format!("no window '{window}': submit applications to it first"),
            )
            .into()
        })
    }

    /// Runs an allocation on a closed window and logs it; the run is then held for reads.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        log: &Log,
        window: &str,
        window_path: &FieldPath,
        params: &A::Params,
        beacon: Option<&Beacon>,
        actor: &str,
    ) -> Result<(LoggedRunOf<()>, HeldRun<A>), Status>
    where
        A::Params: Clone,
    {
        let _guard = self.lock();
        let stored = self.stored(window, window_path)?;
        let Some(closed) = stored.closed else {
            return Err(FieldError::failed_precondition(
                window_path,
                format!("window '{window}' is still open: close it first (CloseApplications)"),
            )
            .into());
        };
        let cached = self
            .last_closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_if(|(name, _)| name == window);
        let input = match cached {
            Some((_, input)) => input,
            None => A::input(&stored.chunks).map_err(|problem| {
                Status::data_loss(format!("window '{window}' no longer reads: {problem}"))
            })?,
        };
        let started = std::time::Instant::now();
        let logged = run_closed::<A>(log, &input, params, &closed, beacon, actor, window)
            .map_err(allocation_status)?;
        let LoggedRunOf {
            solved,
            mut info,
            entries,
        } = logged;
        info.solve_seconds = started.elapsed().as_secs_f64();
        let loaded = Loaded {
            run: LoggedRun {
                index: info.index,
                id: info.id,
                run: info.run.clone(),
                time: Timestamp::now(),
                actor: actor.to_owned(),
                window: window.to_owned(),
            },
            input,
            params: params.clone(),
            seed: info.run.seed.map(|d| allot_solvers::matching::Seed(d.0)),
            solved,
            changes: Vec::new(),
        };
        let loaded = Arc::new(RwLock::new(loaded));
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(info.id.0, loaded.clone());
        Ok((
            LoggedRunOf {
                solved: (),
                info,
                entries,
            },
            loaded,
        ))
    }

    /// The run with this id (held, or read back from the log and re-run).
    pub fn loaded(&self, log: &Log, run_id: &[u8], path: &FieldPath) -> Result<HeldRun<A>, Status> {
        let id: [u8; 32] = run_id.try_into().map_err(|_| {
            FieldError::invalid(path, format!("is {} bytes; a run id has 32", run_id.len()))
        })?;
        if let Some(run) = self.runs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(run.clone());
        }
        let _guard = self.lock();
        if let Some(run) = self.runs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(run.clone());
        }
        let loaded = load_with_log::<A>(log, Some(&hex::encode(id))).map_err(|e| match e {
            allocation::Error::Request(m) if m.starts_with("no ") => {
                FieldError::not_found(path, m).into()
            }
            e => allocation_status(e),
        })?;
        let loaded = Arc::new(RwLock::new(loaded));
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, loaded.clone());
        Ok(loaded)
    }

    /// Holds the domain's lock while `f` changes a run (a withdrawal).
    pub fn changing<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.lock();
        f()
    }
}

fn add(total: &mut [u64; 3], more: [u64; 3]) {
    for (t, m) in total.iter_mut().zip(more) {
        *t += m;
    }
}

fn sync_folder(folder: &Path) -> Result<(), Status> {
    std::fs::File::open(folder)
        .and_then(|d| d.sync_all())
        .map_err(|e| internal("syncing a window's folder", e))
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Status> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| internal("writing", e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| internal("writing", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| internal("writing", e))?;
    sync_folder(path.parent().unwrap_or(Path::new(".")))
}

/// Appends a CSV row of fields, written by the `csv` crate.
pub fn csv_row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    let mut row = allot_engine::input::CsvText::without_header();
    row.row(fields);
    out.push_str(&row.finish());
}
