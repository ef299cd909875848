//! The decision log: an append-only, hash-chained RFC 6962 Merkle tree of every decision, stored
//! durably in segment files and published as signed C2SP checkpoints.
//!
//! ```text
//!  domains ──Record──▶ submit ──channel──▶ committer thread ──staged group──▶ syncer thread
//!                        │                  leaf, chain, nodes      write, fdatasync │
//!                     Ticket ◀── slot ◀── completer thread ◀── publish to View ◀─────┘
//!                     (wait / .await)                          background thread: derived/
//!  readers ──▶ View (RwLock): size, tree nodes (memory + files),  level files, offsets, meta
//!              offsets
//! ```
//!
//! - [`Record`] and [`Decision`] are what domains log; [`Entry`] adds the index. Bytes: `FORMAT.md`.
//! - [`Log::append`] and [`Log::append_batch`] return once the entries are fsynced; concurrent
//!   appenders share one fsync. A batch is all-or-nothing across crashes.
//! - Proofs ([`Log::inclusion_proof`], [`Log::consistency_proof`]) read O(log n) stored nodes;
//!   [`proof`] verifies them as RFC 9162 says. [`Log::sign_checkpoint`] signs tree heads and never
//!   signs two that are inconsistent.
//! - [`verify::verify`] re-derives everything from the segment bytes.

pub mod backend;
pub mod codec;
mod cosigned;
pub mod decision;
#[doc = include_str!("FORMAT.md")]
pub mod format {}
pub mod entry;
mod error;
pub mod frame;
pub mod merkle;
pub mod migrate;
pub mod note;
pub mod postgres;
pub mod proof;
pub mod proof_file;
pub(crate) mod recover;
pub mod replica;
mod store;
pub mod tiles;
pub mod tlog_proof;
pub mod verify;
mod writer;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use codec::{Bytes, DecodeError, Digest, Parameters};
pub use decision::{Decision, DecisionKind};
pub use entry::{ENTRY_VERSION, Entry, EntryTooLarge, MAX_ENTRY_BYTES, Record, Timestamp};
pub use error::{Error, Result};
pub use merkle::Hash;
pub use note::{
    Checkpoint, KeyKind, NoteError, SignedCheckpoint, SigningKey, TrustPolicy, Trusted, VerifierKey,
};
pub use proof::{ConsistencyProof, InclusionProof, ProofError};
pub use recover::{OpenReport, TornTail};
pub use store::{CHAIN_SEED, RawEntry, chain_hash};
pub use writer::{Leaves, Stats, Ticket};

use crate::fs::{DataDir, File, OpenOptions, SyncPoint, create_dirs, write_atomic};
use error::io;
use frame::{COMMIT_MARKER, FrameError, SEGMENT_HEADER_BYTES, TRAILER_BYTES, parse_frame};
use store::{Paths, Segment, View};
use writer::{Background, Message};

/// How a writer behaves. The defaults suit a server; tests shrink the sizes to exercise rolls.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Key name and checkpoint origin for a new log (ignored once the key exists). Default:
    /// `allot.local/log/<8 random hex digits>`.
    pub origin: Option<String>,
    /// How long a group may wait for more appenders to share its fsync, while it holds fewer
    /// entries than the previous group (so a lone appender never waits). Zero (the default):
    /// commit what has arrived as soon as the previous fsync is done. Fsyncs that follow each
    /// other closely keep half the appenders on their way to disk while the other half comes
    /// back, and a disk that idles between fsyncs may answer the next one slower: on the
    /// development machine a gap of 100 us made an fdatasync take 250 us instead of 55 us, and a
    /// 200 us wait cut 64 writers from 280,000 to 175,000 entries/s (`log_load --max-wait-us`).
    pub max_group_wait: Duration,
    /// A group stops taking batches beyond this many bytes (a single larger batch goes alone).
    pub max_group_bytes: usize,
    /// A new segment starts once the current one would exceed this.
    pub segment_bytes: u64,
    /// Interior hashes and offsets are written to the derived files (and dropped from memory)
    /// every this many entries.
    pub flush_entries: u64,
    /// Largest batch accepted, in framed bytes.
    pub max_batch_bytes: usize,
    /// The signing key, when it is kept outside the data folder (a path or an environment
    /// variable in the server's configuration): then none is read from or made in
    /// `DATA/log/signing.key`, and the folder must not hold one.
    pub signing_key: Option<SigningKey>,
    /// Where an entry must be stored before it is acknowledged, besides this folder (which is
    /// then the store's cache): see [`backend`]. `None`: the folder is the store.
    pub backend: Option<Arc<dyn backend::Backend>>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            origin: None,
            max_group_wait: Duration::ZERO,
            max_group_bytes: 8 << 20,
            segment_bytes: 64 << 20,
            flush_entries: 1 << 18,
            max_batch_bytes: 256 << 20,
            signing_key: None,
            backend: None,
        }
    }
}

/// The tree head at one size: root hash and the chain hash of its last entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
    pub chain: Hash,
}

pub(crate) struct Shared {
    paths: Arc<Paths>,
    options: LogOptions,
    view: RwLock<View>,
    /// To the committer; `None` when read-only.
    sender: Option<std::sync::mpsc::Sender<Message>>,
    /// Why the log stopped accepting writes, once it has.
    failed: std::sync::OnceLock<Arc<Error>>,
    background: Mutex<Background>,
    background_cv: Condvar,
    verifier: VerifierKey,
    signer: Option<SigningKey>,
    checkpoint: Mutex<Option<SignedCheckpoint>>,
    stats: writer::Counters,
    /// Held (flock) for a writer's lifetime.
    _lock: Option<Arc<dyn File>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.paths.root)
            .finish_non_exhaustive()
    }
}

/// Locks ignoring poisoning: no code here panics while holding a lock, and a reader must not be
/// cut off from the log by an unrelated panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }
}

// The log is shared by threads and async tasks, and tickets travel between them.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    fn sent<T: Send>() {}
    shared::<Log>();
    sent::<Ticket>();
};

/// The decision log of one data folder (`DATA/log/`). `Send + Sync`: share it (e.g. in an `Arc`)
/// between threads and async tasks.
#[derive(Debug)]
pub struct Log {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    report: OpenReport,
}

impl Log {
    /// Opens (creating if needed) the log in `data_dir` for writing: takes the folder's lock,
    /// recovers a torn tail, re-derives data after the derived-data watermark, makes the signing
    /// key on first start, and checks the last signed checkpoint against the log.
    pub fn open(data_dir: impl Into<DataDir>, options: LogOptions) -> Result<Log> {
        let data_dir = data_dir.into();
        let paths = Arc::new(Paths::new(&data_dir));
        for dir in [&paths.segments, &paths.derived] {
            create_dirs(paths.fs(), dir)?;
        }
        let lock = take_lock(&paths, data_dir.path())?;
        let opened = recover::open_store(paths.clone(), true)?;
        let mut report = opened.report;
        let signer = load_or_make_signer(&paths, &options, opened.view.size, &mut report)?;
        let verifier = signer.verifier();
        let checkpoint = load_checkpoint(&paths, &verifier, &opened.view)?;
        let active = opened
            .active
            .ok_or_else(|| Error::Internal("a writable open found no active segment".into()))?;
        let chain = opened.view.chain_head;
        let (sender, receiver) = writer::channel();
        let shared = Arc::new(Shared {
            paths,
            options,
            view: RwLock::new(opened.view),
            sender: Some(sender),
            failed: std::sync::OnceLock::new(),
            background: Mutex::new(Background::default()),
            background_cv: Condvar::new(),
            verifier,
            signer: Some(signer),
            checkpoint: Mutex::new(checkpoint),
            stats: writer::Counters::default(),
            _lock: Some(lock),
        });
        let threads = writer::start(&shared, receiver, active, opened.frontier, chain)?;
        Ok(Log {
            shared,
            threads,
            report,
        })
    }

    /// Opens the log in `data_dir` for reading only, without the writer's lock: a snapshot as of
    /// now that never changes the files (a torn tail is reported and left alone). Works while a
    /// writer runs.
    pub fn open_read_only(data_dir: impl Into<DataDir>) -> Result<Log> {
        let data_dir = data_dir.into();
        let paths = Arc::new(Paths::new(&data_dir));
        if !crate::fs::is_dir(paths.fs(), &paths.segments) {
            return Err(Error::NotFound {
                dir: data_dir.path().to_owned(),
                expected: paths.segments.clone(),
            });
        }
        let opened = recover::open_store(paths.clone(), false)?;
        let verifier = load_verifier(&paths)?;
        let checkpoint = load_checkpoint(&paths, &verifier, &opened.view)?;
        let shared = Arc::new(Shared {
            paths,
            options: LogOptions::default(),
            view: RwLock::new(opened.view),
            sender: None,
            failed: std::sync::OnceLock::new(),
            background: Mutex::new(Background::default()),
            background_cv: Condvar::new(),
            verifier,
            signer: None,
            checkpoint: Mutex::new(checkpoint),
            stats: writer::Counters::default(),
            _lock: None,
        });
        Ok(Log {
            shared,
            threads: Vec::new(),
            report: opened.report,
        })
    }

    /// Whether `data_dir` holds a log.
    pub fn exists(data_dir: impl Into<DataDir>) -> bool {
        let paths = Paths::new(&data_dir.into());
        crate::fs::is_dir(paths.fs(), &paths.segments)
    }

    /// The data folder the log is in (and its file system).
    pub fn data_dir(&self) -> DataDir {
        let root = &self.shared.paths.root;
        DataDir::on(self.shared.paths.fs.clone(), root.parent().unwrap_or(root))
    }

    /// What opening found and repaired.
    pub fn report(&self) -> &OpenReport {
        &self.report
    }

    pub fn is_read_only(&self) -> bool {
        self.shared.signer.is_none()
    }

    /// The log's folder (`DATA/log`).
    pub fn dir(&self) -> &Path {
        &self.shared.paths.root
    }

    /// Appends one decision; returns its index once it is durable. Blocks the calling thread:
    /// async code awaits [`Log::submit`] instead.
    pub fn append(&self, record: &Record) -> Result<u64> {
        Ok(self.submit(std::slice::from_ref(record))?.wait()?.start)
    }

    /// Appends decisions as one all-or-nothing batch with consecutive indices; returns them once
    /// all are durable. After a crash either all of them are in the log or none is.
    pub fn append_batch(&self, records: &[Record]) -> Result<Range<u64>> {
        self.submit(records)?.wait()
    }

    /// Queues a batch and returns at once; the [`Ticket`] resolves when it is durable (block with
    /// [`Ticket::wait`] or `.await` it). Encoding errors are returned here, before anything is
    /// queued.
    pub fn submit(&self, records: &[Record]) -> Result<Ticket> {
        writer::submit(&self.shared, records.iter())
    }

    /// Appends entries read from the log's store (a follower catching up with its leader): each
    /// must carry the next index and the chain hash it gets here. Returns once they are in the
    /// folder. They are not sent to the store, which holds them already.
    pub fn submit_replicated(&self, entries: Vec<RawEntry>) -> Result<Ticket> {
        writer::submit_replicated(&self.shared, entries)
    }

    /// Why the log stopped accepting writes, once it has (it must then be reopened).
    pub fn failure(&self) -> Option<Arc<Error>> {
        self.shared.failed.get().cloned()
    }

    /// The store besides the folder, if any.
    pub fn backend(&self) -> Option<&Arc<dyn backend::Backend>> {
        self.shared.options.backend.as_ref()
    }

    /// [`Log::submit`] for records made one by one: each is encoded and dropped before the next
    /// is made, so a batch of a million holds its encodings only.
    pub fn submit_each(&self, records: impl ExactSizeIterator<Item = Record>) -> Result<Ticket> {
        writer::submit(&self.shared, records)
    }

    /// Counters since the log was opened.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Number of durable entries.
    pub fn size(&self) -> u64 {
        self.shared.view().size
    }

    /// The current tree head.
    pub fn head(&self) -> Result<TreeHead> {
        let view = self.shared.view();
        Ok(TreeHead {
            size: view.size,
            root: view.root()?,
            chain: view.chain_head,
        })
    }

    /// The root of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let view = self.shared.view();
        view.check_size(size)?;
        merkle::root(&*view, size)
    }

    /// Entry `index`'s stored bytes and chain hash.
    pub fn read(&self, index: u64) -> Result<RawEntry> {
        let (segment, offset) = {
            let view = self.shared.view();
            let (segment, offset) = view.locate(index)?;
            (segment.clone(), offset)
        };
        store::read_record(&segment, offset, index)
    }

    /// Entry `index`, decoded.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        self.read(index)?.decode()
    }

    /// Entries in `range` (clipped to the log's size), read sequentially. Each is checked
    /// against the chain (its stored chain hash follows from the one before and its leaf hash)
    /// and against the tree (its leaf hash is the stored one), so an entry edited in place is
    /// an error, not a silent change of history.
    pub fn entries(&self, range: Range<u64>) -> Result<Entries> {
        let start = range.start.min(range.end).min(self.size());
        let chain = match start.checked_sub(1) {
            None => CHAIN_SEED,
            Some(previous) => self.read(previous)?.chain,
        };
        let view = self.shared.view();
        let end = range.end.min(view.size);
        let start = start.min(end);
        let position = if start < end {
            let (segment, offset) = view.locate(start)?;
            Some((
                view.segments
                    .iter()
                    .position(|s| s.first == segment.first)
                    .unwrap_or(0),
                offset,
            ))
        } else {
            None
        };
        let (seg, pos) = position.unwrap_or((0, 0));
        Ok(Entries {
            shared: self.shared.clone(),
            segments: view.segments.clone(),
            seg,
            pos,
            next: start,
            end,
            buf: Vec::new(),
            buf_pos: 0,
            buf_eof: false,
            chain,
            leaves: Vec::new(),
            leaves_start: start,
        })
    }

    /// Proof that entry `index` is in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        let view = self.shared.view();
        view.check_size(size)?;
        if index >= size {
            return Err(Error::OutOfRange { index, size });
        }
        let path = merkle::inclusion_path(&*view, index, size)?;
        Ok(InclusionProof { index, size, path })
    }

    /// Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof> {
        if old_size == 0 {
            return Err(Error::BadRequest(
                "a consistency proof from the empty tree is not defined (RFC 9162 2.1.4)".into(),
            ));
        }
        if old_size > new_size {
            return Err(Error::BadRequest(format!(
                "the old size {old_size} is above the new size {new_size}"
            )));
        }
        let view = self.shared.view();
        view.check_size(new_size)?;
        let path = merkle::consistency_path(&*view, old_size, new_size)?;
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }

    /// The log's checkpoint origin (its key name).
    pub fn origin(&self) -> &str {
        self.shared.verifier.name()
    }

    pub fn verifier_key(&self) -> &VerifierKey {
        &self.shared.verifier
    }

    /// The last signed checkpoint, if any.
    pub fn checkpoint(&self) -> Option<SignedCheckpoint> {
        lock(&self.shared.checkpoint).clone()
    }

    /// Signs a checkpoint of the current tree head (or returns the last one if the log has not
    /// grown), after checking that it is consistent with the last signed one, and stores it
    /// atomically before returning it.
    pub fn sign_checkpoint(&self) -> Result<SignedCheckpoint> {
        let signer = self.shared.signer.as_ref().ok_or(Error::ReadOnly)?;
        let mut last = lock(&self.shared.checkpoint);
        let (size, root, proof) = {
            let view = self.shared.view();
            let size = view.size;
            let proof = match last.as_ref() {
                Some(prev) if prev.checkpoint.size > 0 && prev.checkpoint.size < size => Some(
                    merkle::consistency_path(&*view, prev.checkpoint.size, size)?,
                ),
                _ => None,
            };
            (size, view.root()?, proof)
        };
        if let Some(prev) = last.as_ref() {
            let old = &prev.checkpoint;
            let path = self.shared.paths.checkpoint();
            if old.size > size {
                return Err(Error::BehindCheckpoint {
                    path,
                    size,
                    signed: old.size,
                });
            }
            if old.size == size {
                if old.root != root {
                    return Err(Error::CheckpointMismatch {
                        path,
                        size,
                        signed: hex::encode(old.root),
                        actual: hex::encode(root),
                    });
                }
                return Ok(prev.clone());
            }
            if let Some(proof) = proof {
                proof::verify_consistency(old.size, size, &old.root, &root, &proof).map_err(
                    |source| Error::Inconsistent {
                        old: old.size,
                        new: size,
                        source,
                    },
                )?;
            }
        }
        let checkpoint = Checkpoint {
            origin: signer.name().to_owned(),
            size,
            root,
            extensions: Vec::new(),
        };
        let path = self.shared.paths.checkpoint();
        let signed = SignedCheckpoint::sign(checkpoint, signer).map_err(|source| Error::Note {
            path: path.clone(),
            source,
        })?;
        write_atomic(
            self.shared.paths.fs(),
            &path,
            signed.note.as_bytes(),
            0o644,
            SyncPoint::LogCheckpoint,
            Some(SyncPoint::LogCheckpointName),
        )?;
        *last = Some(signed.clone());
        Ok(signed)
    }

    /// Stops accepting appends, waits for queued ones to become durable, and writes the derived
    /// data so the next open is quick. Dropping the log does the same, ignoring errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.threads.is_empty() {
            return Ok(());
        }
        writer::stop(&self.shared, std::mem::take(&mut self.threads));
        match self.shared.failed.get().cloned() {
            Some(e) => Err(Error::Failed(e)),
            None => Ok(()),
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A sequential reader of stored entries, each checked against the chain and the tree (see
/// [`Log::entries`]).
#[derive(Debug)]
pub struct Entries {
    shared: Arc<Shared>,
    segments: Vec<Segment>,
    seg: usize,
    pos: u64,
    next: u64,
    end: u64,
    buf: Vec<u8>,
    buf_pos: u64,
    buf_eof: bool,
    /// The chain hash after entry `next - 1`.
    chain: Hash,
    /// Stored leaf hashes of entries from `leaves_start`, read ahead in blocks.
    leaves: Vec<Hash>,
    leaves_start: u64,
}

/// Leaf hashes read from the tree at a time.
const LEAF_BLOCK: u64 = 4096;

impl Entries {
    /// The tree's stored leaf hash of entry `index` (`index >= leaves_start`).
    fn stored_leaf(&mut self, index: u64) -> Result<Hash> {
        let ahead = index - self.leaves_start;
        if ahead >= self.leaves.len() as u64 {
            self.leaves_start = index;
            let end = self.end.min(index + LEAF_BLOCK);
            self.leaves = self.shared.view().leaves(index..end)?;
        }
        let at = (index - self.leaves_start) as usize;
        self.leaves
            .get(at)
            .copied()
            .ok_or_else(|| Error::Internal(format!("no stored leaf for entry {index}")))
    }

    /// Checks an entry read from its segment against the chain and the tree.
    fn check(&mut self, raw: &RawEntry) -> std::result::Result<(), String> {
        let leaf = raw.leaf_hash();
        let stored = self.stored_leaf(raw.index).map_err(|e| e.to_string())?;
        if leaf != stored {
            return Err(
                "its leaf hash is not the tree's: the entry was changed after it was \
                        written"
                    .into(),
            );
        }
        let chain = chain_hash(&self.chain, &leaf);
        if chain != raw.chain {
            return Err(
                "the stored chain hash does not follow from the entry and the one \
                        before: the log was changed after it was written"
                    .into(),
            );
        }
        self.chain = chain;
        Ok(())
    }

    fn fail(&mut self, reason: String) -> Option<Result<RawEntry>> {
        let index = self.next;
        self.next = self.end;
        let path = self
            .segments
            .get(self.seg)
            .map(|s| s.path.clone())
            .unwrap_or_default();
        Some(Err(Error::Corrupt {
            path,
            index,
            offset: self.pos,
            reason,
        }))
    }
}

impl Iterator for Entries {
    type Item = Result<RawEntry>;

    fn next(&mut self) -> Option<Result<RawEntry>> {
        if self.next >= self.end {
            return None;
        }
        while self
            .segments
            .get(self.seg + 1)
            .is_some_and(|s| s.first <= self.next)
        {
            self.seg += 1;
            self.pos = SEGMENT_HEADER_BYTES as u64;
            self.buf.clear();
            self.buf_eof = false;
        }
        let segment = self.segments.get(self.seg)?.clone();
        loop {
            let in_buf = self
                .pos
                .checked_sub(self.buf_pos)
                .and_then(|rel| self.buf.get(rel as usize..))
                .filter(|rest| !rest.is_empty());
            if in_buf.is_some_and(|rest| rest.starts_with(&COMMIT_MARKER)) {
                // A group's commit trailer (checked when the log was opened): skip it.
                self.pos += TRAILER_BYTES as u64;
                continue;
            }
            let need = match in_buf.map(parse_frame) {
                Some(Ok(frame)) => Ok((
                    frame.len,
                    Entry::peek_index(frame.body),
                    RawEntry {
                        index: self.next,
                        bytes: frame.body.to_vec(),
                        chain: frame.chain,
                    },
                )),
                Some(Err(FrameError::Truncated { need, .. })) if !self.buf_eof => {
                    Err(need.unwrap_or(0))
                }
                Some(Err(e)) => return self.fail(e.to_string()),
                None if self.buf_eof => return self.fail("the segment ends early".into()),
                None => Err(0),
            };
            let need = match need {
                Ok((len, index, out)) => {
                    if index != Some(self.next) {
                        return self.fail("the record holds another index".into());
                    }
                    if let Err(reason) = self.check(&out) {
                        return self.fail(reason);
                    }
                    self.pos += len as u64;
                    self.next += 1;
                    return Some(Ok(out));
                }
                Err(need) => need,
            };
            let want = need.max(1 << 20);
            self.buf.resize(want, 0);
            let got =
                match store::read_up_to(&*segment.file, &mut self.buf, self.pos, &segment.path) {
                    Ok(got) => got,
                    Err(e) => {
                        self.next = self.end;
                        return Some(Err(e));
                    }
                };
            self.buf.truncate(got);
            self.buf_pos = self.pos;
            self.buf_eof = got < want;
        }
    }
}

/// How long a writer waits for the folder's lock before reporting it held.
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Takes the folder's writer lock (flock, released when the process exits, even by SIGKILL).
fn take_lock(paths: &Paths, data_dir: &Path) -> Result<Arc<dyn File>> {
    let path = paths.lock();
    let file = paths
        .fs()
        .open(&path, OpenOptions::create())
        .map_err(io("opening", &path))?;
    // A lock can be held for a moment by a process that is exiting, or by a child process
    // between fork and exec (it shares the open file until exec closes it): wait a little.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    while !file.try_lock().map_err(io("locking", &path))? {
        if std::time::Instant::now() >= deadline {
            let mut holder = vec![0u8; 64];
            let n = crate::fs::read_up_to(&*file, &mut holder, 0).unwrap_or(0);
            let holder = String::from_utf8_lossy(&holder[..n]).trim().to_owned();
            return Err(Error::Locked {
                dir: data_dir.to_owned(),
                lock: path,
                holder: Some(holder).filter(|h| !h.is_empty()),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Only for the error message of a second writer; the lock itself is the flock.
    file.set_len(0).map_err(io("writing", &path))?;
    file.write_all_at(std::process::id().to_string().as_bytes(), 0)
        .map_err(io("writing", &path))?;
    Ok(file)
}

fn load_or_make_signer(
    paths: &Paths,
    options: &LogOptions,
    size: u64,
    report: &mut OpenReport,
) -> Result<SigningKey> {
    let fs = paths.fs();
    let path = paths.signing_key();
    let in_folder = read_optional(paths, &path)?;
    let signer = match (in_folder, &options.signing_key) {
        (Some(_), Some(_)) => {
            return Err(Error::BadFile {
                path,
                reason: "a signing key is configured outside the data folder, but the folder \
                         holds one too: keep only one (remove this file once the configured key \
                         is this log's)"
                    .into(),
            });
        }
        (None, Some(external)) if external.kind() != KeyKind::Ed25519 => {
            return Err(Error::Internal(format!(
                "the configured signing key {} is a witness's cosigning key, not a log's",
                external.name()
            )));
        }
        (None, Some(external)) => {
            let vpath = paths.verifier_key();
            let known = read_optional(paths, &vpath)?;
            let ours = format!("{}\n", external.verifier().to_text());
            if let Some(known) = known.filter(|_| size > 0)
                && known != ours.as_bytes()
            {
                return Err(Error::BadFile {
                    path: vpath,
                    reason: format!(
                        "the configured signing key ({}) is not this log's key",
                        external.verifier().to_text()
                    ),
                });
            }
            external.clone()
        }
        (Some(bytes), None) => {
            let mode = fs
                .metadata(&path)
                .map_err(io("reading metadata of", &path))?
                .mode;
            if mode & 0o077 != 0 {
                report.warnings.push(format!(
                    "{} is readable by others (mode {:o}); it should be 0600",
                    path.display(),
                    mode & 0o777
                ));
            }
            let text = String::from_utf8(bytes).map_err(|_| Error::BadFile {
                path: path.clone(),
                reason: "not UTF-8".into(),
            })?;
            SigningKey::parse(&text).map_err(|source| Error::Note {
                path: path.clone(),
                source,
            })?
        }
        (None, None) if size > 0 => {
            return Err(Error::BadFile {
                path,
                reason: format!("missing, but the log has {size} entries: it cannot sign"),
            });
        }
        (None, None) => {
            let origin = match &options.origin {
                Some(origin) => origin.clone(),
                None => {
                    let mut tag = [0u8; 4];
                    use rand::TryRng as _;
                    rand::rngs::SysRng.try_fill_bytes(&mut tag).map_err(|e| {
                        Error::Internal(format!("no randomness for the log's name: {e}"))
                    })?;
                    format!("allot.local/log/{}", hex::encode(tag))
                }
            };
            let signer = SigningKey::generate(&origin).map_err(|source| Error::Note {
                path: path.clone(),
                source,
            })?;
            let text = format!("{}\n", signer.to_text());
            write_atomic(
                fs,
                &path,
                text.as_bytes(),
                0o600,
                SyncPoint::LogSigningKey,
                Some(SyncPoint::LogSigningKeyName),
            )?;
            signer
        }
    };
    let vpath = paths.verifier_key();
    let vtext = format!("{}\n", signer.verifier().to_text());
    if read_optional(paths, &vpath)?.as_deref() != Some(vtext.as_bytes()) {
        // Re-made from the signing key whenever it is missing or wrong: its name need not be
        // durable, but a reader must never find it half-written.
        write_atomic(
            fs,
            &vpath,
            vtext.as_bytes(),
            0o644,
            SyncPoint::LogVerifierKey,
            None,
        )?;
    }
    Ok(signer)
}

pub(crate) fn load_verifier(paths: &Paths) -> Result<VerifierKey> {
    let vpath = paths.verifier_key();
    if let Some(bytes) = read_optional(paths, &vpath)? {
        let text = String::from_utf8_lossy(&bytes);
        return VerifierKey::parse(&text).map_err(|source| Error::Note {
            path: vpath,
            source,
        });
    }
    let path = paths.signing_key();
    match read_optional(paths, &path)? {
        Some(bytes) => SigningKey::parse(&String::from_utf8_lossy(&bytes))
            .map(|s| s.verifier())
            .map_err(|source| Error::Note { path, source }),
        None => Err(Error::BadFile {
            path: vpath,
            reason: "missing (and no signing key)".into(),
        }),
    }
}

fn load_checkpoint(
    paths: &Paths,
    verifier: &VerifierKey,
    view: &View,
) -> Result<Option<SignedCheckpoint>> {
    let path = paths.checkpoint();
    let Some(bytes) = read_optional(paths, &path)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::BadFile {
        path: path.clone(),
        reason: "not UTF-8".into(),
    })?;
    let signed = SignedCheckpoint::open(&text, verifier).map_err(|source| Error::Note {
        path: path.clone(),
        source,
    })?;
    tree_agrees(view, &signed.checkpoint, path)?;
    Ok(Some(signed))
}

/// Whether the tree of `view` holds `cp`'s size with its root; the error names `path` (the
/// checkpoint's file) and says whether the log lost entries or was rewritten.
pub(crate) fn tree_agrees(view: &View, cp: &Checkpoint, path: PathBuf) -> Result<()> {
    if cp.size > view.size {
        return Err(Error::BehindCheckpoint {
            path,
            size: view.size,
            signed: cp.size,
        });
    }
    let root = merkle::root(view, cp.size)?;
    if root != cp.root {
        return Err(Error::CheckpointMismatch {
            path,
            size: cp.size,
            signed: hex::encode(cp.root),
            actual: hex::encode(root),
        });
    }
    Ok(())
}

/// Reads a whole small file of the log folder, or `None` if it does not exist.
fn read_optional(paths: &Paths, path: &Path) -> Result<Option<Vec<u8>>> {
    crate::fs::read_optional(paths.fs(), path).map_err(io("reading", path))
}
