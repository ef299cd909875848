//! The file-system seam. Every durable store (log segments, derived hashes, keys, checkpoints,
//! blobs, snapshots, application windows, output folders) does its file operations through
//! [`FileSystem`], so that a test can put them on a file system that loses power
//! ([`powercut::PowerCutFs`]) while production uses the operating system's ([`OsFs`]).
//!
//! The seam is narrow on purpose: positional reads and writes, length, `fsync`, directory
//! entries, and a folder `fsync`. Every `fsync` names its [`SyncPoint`], the place in the code
//! that needs it, so a test can remove exactly one and show that something is then lost.

pub mod powercut;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

macro_rules! sync_points {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A place in the code that makes data durable: each call of [`File::sync_data`],
        /// [`File::sync_all`] and [`FileSystem::sync_dir`] names one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SyncPoint {
            $($(#[doc = $doc])* $name,)*
        }

        impl SyncPoint {
            /// Every sync point, for tests that remove them one at a time.
            pub const ALL: &'static [SyncPoint] = &[$(SyncPoint::$name,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(SyncPoint::$name => stringify!($name),)*
                }
            }
        }
    };
}

sync_points! {
    /// A group of log records written to the active segment: the acknowledgement's fsync. It
    /// also makes a new segment's header and a recovered tail's truncation durable.
    LogGroup,
    /// The segments folder after a segment was created or renamed from the spare.
    LogSegmentName,
    /// Zeros written ahead into a segment (and over a recovered tail): a group's fdatasync then
    /// flushes data, not the file's size and allocation, and a torn group write leaves zeros
    /// where its pages were lost, which recovery relies on to tell a torn write from damage.
    LogPreallocate,
    /// Derived tree levels and entry offsets, before the watermark moves past them.
    LogDerivedData,
    /// The derived folder after a level or offsets file was created.
    LogDerivedName,
    /// The derived-data watermark's content (its name need not be durable: an older watermark
    /// only means re-deriving more on open).
    LogDerivedMeta,
    /// The signing key's content, made on first start.
    LogSigningKey,
    /// The signing key's name in the log folder.
    LogSigningKeyName,
    /// The verifier key's content (its name need not be durable: it is re-made from the
    /// signing key).
    LogVerifierKey,
    /// A signed checkpoint's content.
    LogCheckpoint,
    /// A signed checkpoint's name.
    LogCheckpointName,
    /// The latest cosigned checkpoint of a log, kept by `allot serve`.
    LogCosigned,
    /// Its name in the log folder.
    LogCosignedName,
    /// A line appended to the log's history of cosigned checkpoints.
    LogCosignedHistory,
    /// A monitor's state: the last checkpoint it verified and the tree's right edge.
    MonitorState,
    /// A witness's cosigning key, made on first start.
    WitnessKey,
    /// Its name in the witness folder.
    WitnessKeyName,
    /// A witness's record of the latest checkpoint it cosigned for a log, before it answers.
    WitnessState,
    /// Its name in the witness's state folder.
    WitnessStateName,
    /// A folder created by `create_dirs` (in its parent).
    NewFolder,
    /// A blob's content, before any decision refers to it.
    Blob,
    /// A blob's name in its folder.
    BlobName,
    /// An appointment snapshot's content, before its `SnapshotTaken` is logged.
    SnapshotFile,
    /// A snapshot renamed to its final name (after its `SnapshotTaken` is logged).
    SnapshotName,
    /// A result file of an allocation's output folder.
    OutputFile,
    /// The names of the files in an output folder, before it is renamed into place.
    OutputFolder,
    /// An output folder renamed into place.
    OutputName,
}

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    pub write: bool,
    /// Create it if missing.
    pub create: bool,
    /// Fail if it exists.
    pub create_new: bool,
    pub truncate: bool,
    /// Permission bits of a created file.
    pub mode: Option<u32>,
}

impl OpenOptions {
    pub fn read() -> Self {
        OpenOptions::default()
    }

    pub fn write() -> Self {
        OpenOptions {
            write: true,
            ..OpenOptions::default()
        }
    }

    /// Read, write, create if missing.
    pub fn create() -> Self {
        OpenOptions {
            write: true,
            create: true,
            ..OpenOptions::default()
        }
    }

    /// Read, write, create, fail if it exists.
    pub fn create_new() -> Self {
        OpenOptions {
            write: true,
            create: true,
            create_new: true,
            ..OpenOptions::default()
        }
    }

    /// Read, write, create or empty.
    pub fn replace(mode: u32) -> Self {
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            mode: Some(mode),
            ..OpenOptions::default()
        }
    }
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub is_dir: bool,
    pub len: u64,
    /// Permission bits.
    pub mode: u32,
}

/// An open file. Shared between threads (`Arc<dyn File>`); positional reads and writes need no
/// cursor.
#[allow(clippy::len_without_is_empty)] // a file's length is a metadata read, not a collection's
pub trait File: Send + Sync + fmt::Debug {
    /// Reads into `buf` at `offset`; returns the bytes read (0 at the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: the data and what is needed to read it back (the length).
    fn sync_data(&self, point: SyncPoint) -> io::Result<()>;
    /// `fsync`: data and metadata.
    fn sync_all(&self, point: SyncPoint) -> io::Result<()>;
    /// Takes an exclusive advisory lock without waiting; `false` if another holder has it.
    /// Released when the file is closed (or the process exits).
    fn try_lock(&self) -> io::Result<bool>;
}

/// A file system. Paths are ordinary paths; what a relative one means is the implementation's.
pub trait FileSystem: Send + Sync + fmt::Debug {
    fn open(&self, path: &Path, options: OpenOptions) -> io::Result<Arc<dyn File>>;
    /// The path's metadata (following symbolic links); `NotFound` when it does not exist.
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// The names in a folder, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// Creates one folder; its parent must exist. Not durable until the parent is synced.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Renames (replacing `to` if it is a file, or an empty folder). Atomic; not durable until
    /// the folders are synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes the folder's entries (files created, renamed or removed in it) durable.
    fn sync_dir(&self, path: &Path, point: SyncPoint) -> io::Result<()>;

    /// A whole file's bytes.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path, OpenOptions::read())?;
        let mut out = vec![0u8; file.len()? as usize];
        let mut got = 0;
        while got < out.len() {
            match file.read_at(&mut out[got..], got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        out.truncate(got);
        Ok(out)
    }
}

/// The operating system's file system: what allot uses outside tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

#[derive(Debug)]
struct OsFile(std::fs::File);

impl File for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match std::os::unix::fs::FileExt::read_at(&self.0, buf, offset) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self, _: SyncPoint) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self, _: SyncPoint) -> io::Result<()> {
        self.0.sync_all()
    }
    fn try_lock(&self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl FileSystem for OsFs {
    fn open(&self, path: &Path, o: OpenOptions) -> io::Result<Arc<dyn File>> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = std::fs::OpenOptions::new();
        options
            .read(true)
            .write(o.write)
            .create(o.create && !o.create_new)
            .create_new(o.create_new)
            .truncate(o.truncate);
        if let Some(mode) = o.mode {
            options.mode(mode);
        }
        Ok(Arc::new(OsFile(options.open(path)?)))
    }
    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(path)?;
        Ok(Metadata {
            is_dir: m.is_dir(),
            len: m.len(),
            mode: m.permissions().mode() & 0o7777,
        })
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path, _: SyncPoint) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// A data folder on a file system: where the log, blobs, snapshots and windows live.
#[derive(Clone)]
pub struct DataDir {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
}

impl fmt::Debug for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

impl DataDir {
    /// A folder on the operating system's file system.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DataDir {
            path: path.into(),
            fs: Arc::new(OsFs),
        }
    }

    /// A folder on another file system (tests).
    pub fn on(fs: Arc<dyn FileSystem>, path: impl Into<PathBuf>) -> Self {
        DataDir {
            path: path.into(),
            fs,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path.join(relative)
    }

    pub fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// Another folder on the same file system.
    pub fn sibling(&self, path: impl Into<PathBuf>) -> DataDir {
        DataDir {
            path: path.into(),
            fs: self.fs.clone(),
        }
    }
}

impl From<&Path> for DataDir {
    fn from(path: &Path) -> Self {
        DataDir::new(path)
    }
}

impl From<&PathBuf> for DataDir {
    fn from(path: &PathBuf) -> Self {
        DataDir::new(path)
    }
}

impl From<PathBuf> for DataDir {
    fn from(path: PathBuf) -> Self {
        DataDir::new(path)
    }
}

impl From<&DataDir> for DataDir {
    fn from(dir: &DataDir) -> Self {
        dir.clone()
    }
}

/// Whether `path` exists (an error reading it counts as not existing).
pub fn exists(fs: &dyn FileSystem, path: &Path) -> bool {
    fs.metadata(path).is_ok()
}

/// Whether `path` is a folder.
pub fn is_dir(fs: &dyn FileSystem, path: &Path) -> bool {
    fs.metadata(path).is_ok_and(|m| m.is_dir)
}

/// Reads a whole file, or `None` if it does not exist.
pub fn read_optional(fs: &dyn FileSystem, path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs.read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
pub fn read_up_to(file: &dyn File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The folder a path is in (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// What failed in a durable write, and on which path.
#[derive(Debug)]
pub struct FsError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl FsError {
    pub(crate) fn at(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FsError {
        let path = path.to_owned();
        move |source| FsError { what, path, source }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path.display(), self.source)
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same folder, fsync
/// (`content`), rename over `path`, and fsync of the folder (`name`). A crash leaves the old or
/// the new content, never a mix. Once this returns, the new content survives a power cut; with
/// no `name` point, the old content may come back instead (for files that are only hints or
/// that are re-made on open).
pub fn write_atomic(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
    mode: u32,
    content: SyncPoint,
    name: Option<SyncPoint>,
) -> Result<(), FsError> {
    replace(fs, path, bytes, mode, Some(content))?;
    match name {
        Some(point) => {
            let dir = parent_of(path);
            fs.sync_dir(dir, point)
                .map_err(FsError::at("syncing folder", dir))
        }
        None => Ok(()),
    }
}

/// Replaces `path` with `bytes` without syncing anything: for hints that are checked when read
/// and re-made when wrong. A crash may leave the old content, the new one, or neither whole.
pub fn write_hint(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    replace(fs, path, bytes, 0o644, None)
}

/// Writes `bytes` to a temporary file beside `path` (synced at `sync`, if given) and renames it
/// over `path`.
fn replace(
    fs: &dyn FileSystem,
    path: &Path,
    bytes: &[u8],
    mode: u32,
    sync: Option<SyncPoint>,
) -> Result<(), FsError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = parent_of(path).join(format!(".{file_name}.tmp"));
    let file = fs
        .open(&tmp, OpenOptions::replace(mode))
        .map_err(FsError::at("creating", &tmp))?;
    file.write_all_at(bytes, 0)
        .map_err(FsError::at("writing", &tmp))?;
    if let Some(point) = sync {
        file.sync_all(point).map_err(FsError::at("syncing", &tmp))?;
    }
    drop(file);
    fs.rename(&tmp, path)
        .map_err(FsError::at("renaming into place", path))
}

/// Creates `dir` and its parents, fsyncing each parent whose content changed.
pub fn create_dirs(fs: &dyn FileSystem, dir: &Path) -> Result<(), FsError> {
    if is_dir(fs, dir) {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(fs, parent)?;
    }
    match fs.create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(FsError::at("creating folder", dir)(e)),
    }
    let parent = parent_of(dir);
    fs.sync_dir(parent, SyncPoint::NewFolder)
        .map_err(FsError::at("syncing folder", parent))
}
