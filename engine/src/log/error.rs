//! The decision log's errors. Each names what failed and where: the file, the entry index and the
//! byte offset.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::codec::DecodeError;
use super::entry::EntryTooLarge;
use super::note::NoteError;
use super::proof::ProofError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "the decision log in {} is open for writing by another process{} (lock {}); \
         stop it, or use a read-only command",
        dir.display(),
        holder.as_deref().map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        lock.display()
    )]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        holder: Option<String>,
    },

    #[error("there is no decision log in {} (no {} folder)", dir.display(), expected.display())]
    NotFound { dir: PathBuf, expected: PathBuf },

    #[error("{}: entry {index} at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        index: u64,
        offset: u64,
        reason: String,
    },

    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },

    #[error("entry {index}: {source}")]
    Decode {
        index: u64,
        #[source]
        source: DecodeError,
    },

    #[error(transparent)]
    TooLarge(#[from] EntryTooLarge),

    #[error("a batch of {entries} entries is {bytes} bytes, above the limit of {max}")]
    BatchTooLarge {
        entries: usize,
        bytes: usize,
        max: usize,
    },

    #[error("entry {index} does not exist: the log has {size} entries")]
    OutOfRange { index: u64, size: u64 },

    #[error("a tree of size {size} does not exist: the log has {available} entries")]
    SizeOutOfRange { size: u64, available: u64 },

    #[error("{0}")]
    BadRequest(String),

    #[error(
        "the log has {size} entries but its signed checkpoint ({}) covers {signed}: \
         entries were lost or removed",
        path.display()
    )]
    BehindCheckpoint {
        path: PathBuf,
        size: u64,
        signed: u64,
    },

    #[error(
        "the log's tree of size {size} has root {actual}, but the signed checkpoint ({}) says \
         {signed}: the log was rewritten",
        path.display()
    )]
    CheckpointMismatch {
        path: PathBuf,
        size: u64,
        signed: String,
        actual: String,
    },

    #[error(
        "refusing to sign size {new}: it is not consistent with the signed size {old}: {source}"
    )]
    Inconsistent {
        old: u64,
        new: u64,
        #[source]
        source: ProofError,
    },

    #[error("{}: {source}", path.display())]
    Note {
        path: PathBuf,
        #[source]
        source: NoteError,
    },

    #[error("the log is open read-only")]
    ReadOnly,

    #[error("the log stopped accepting writes after an earlier failure: {0}")]
    Failed(Arc<Error>),

    #[error("the log is closed")]
    Closed,

    #[error(transparent)]
    Backend(#[from] super::backend::BackendError),

    #[error("internal error in the decision log: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::fs::FsError> for Error {
    fn from(e: crate::fs::FsError) -> Self {
        Error::Io {
            what: e.what,
            path: e.path,
            source: e.source,
        }
    }
}

/// `map_err` helper: wraps an `io::Error` with what was being done and to which path.
pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}
