//! Where the log lives on disk and the in-memory view readers share.
//!
//! Source of truth: the segment files. Derived, rebuildable data: the interior hashes (one file per
//! tree level) and the entry offsets, both fsynced up to a watermark recorded in `derived/meta`;
//! entries after the watermark have their nodes and offsets in memory only, and are re-derived
//! from the segments on open. Levels from [`CACHED_LEVEL`] up are also kept whole in memory
//! (about one byte per entry), so a proof reads at most a handful of lower nodes from files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::decision::DecisionKind;
use super::entry::{ENTRY_VERSION, Entry};
use super::error::{Error, Result, io};
use super::frame::{FrameError, parse_frame};
use super::merkle::{self, Hash, NewNode, NodeSource};
use crate::fs::{DataDir, File, FileSystem, OpenOptions, SyncPoint, read_optional, write_atomic};

/// The spare segment's file name (among the segments, skipped when listing them).
const SPARE: &str = ".spare";

/// Levels at or above this one are held whole in memory.
pub(crate) const CACHED_LEVEL: u32 = 6;

/// chain_{-1}: the chain starts from 32 zero bytes.
pub const CHAIN_SEED: Hash = [0u8; 32];

/// chain_i = SHA-256(chain_{i-1} || leaf_hash_i).
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    Sha256::new()
        .chain_update(previous)
        .chain_update(leaf)
        .finalize()
        .into()
}

/// The files of a log folder (`DATA/log`), on their file system.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub fs: Arc<dyn FileSystem>,
    pub root: PathBuf,
    pub segments: PathBuf,
    pub derived: PathBuf,
}

impl Paths {
    pub fn new(data_dir: &DataDir) -> Self {
        let root = data_dir.join("log");
        Paths {
            fs: data_dir.fs().clone(),
            segments: root.join("segments"),
            derived: root.join("derived"),
            root,
        }
    }

    pub fn fs(&self) -> &dyn FileSystem {
        &*self.fs
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join("LOCK")
    }
    pub fn signing_key(&self) -> PathBuf {
        self.root.join("signing.key")
    }
    pub fn verifier_key(&self) -> PathBuf {
        self.root.join("verifier.key")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// A zero-filled segment prepared ahead of the next roll.
    pub fn spare(&self) -> PathBuf {
        self.segments.join(SPARE)
    }
    pub fn segment(&self, first: u64) -> PathBuf {
        self.segments.join(format!("{first:020}.seg"))
    }
    pub fn level(&self, level: u32) -> PathBuf {
        self.derived.join(format!("level-{level:02}.hashes"))
    }
    pub fn offsets(&self) -> PathBuf {
        self.derived.join("offsets")
    }
    pub fn meta(&self) -> PathBuf {
        self.derived.join("meta")
    }
}

/// Segment files by first index, checked to be named as the writer names them.
pub(crate) fn list_segments(paths: &Paths) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let names = paths
        .fs()
        .list_dir(&paths.segments)
        .map_err(io("listing", &paths.segments))?;
    for name in names {
        let path = paths.segments.join(&name);
        let name = name.to_string_lossy();
        if name == SPARE {
            continue;
        }
        let first = name
            .strip_suffix(".seg")
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok());
        match first {
            Some(first) => out.push((first, path)),
            None => {
                return Err(Error::BadFile {
                    path,
                    reason: "unexpected file among the segments (expected <20 digits>.seg)".into(),
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub first: u64,
    pub path: PathBuf,
    pub file: Arc<dyn File>,
}

impl Segment {
    pub fn open(paths: &Paths, first: u64, path: PathBuf) -> Result<Self> {
        let file = paths
            .fs()
            .open(&path, OpenOptions::read())
            .map_err(io("opening", &path))?;
        Ok(Segment { first, path, file })
    }
}

/// Reads exactly `buf.len()` bytes at `offset`; a short file is an error naming the path.
pub(crate) fn read_exact_at(
    file: &dyn File,
    buf: &mut [u8],
    offset: u64,
    path: &Path,
) -> Result<()> {
    let got = read_up_to(file, buf, offset, path)?;
    if got < buf.len() {
        return Err(Error::BadFile {
            path: path.to_owned(),
            reason: format!("ends before byte {}", offset + buf.len() as u64),
        });
    }
    Ok(())
}

/// The nodes of one level held in memory: indices `[start, start + nodes.len())`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LevelMem {
    pub start: u64,
    pub nodes: Vec<Hash>,
}

/// What readers see: everything up to `size` is durable and consistent.
#[derive(Debug)]
pub(crate) struct View {
    pub size: u64,
    pub chain_head: Hash,
    /// Derived files hold nodes and offsets for entries `[0, flushed)`.
    pub flushed: u64,
    pub levels: Vec<LevelMem>,
    /// Segment-relative offsets of entries `[flushed, size)`.
    pub offsets: Vec<u64>,
    pub segments: Vec<Segment>,
    pub level_files: Vec<Arc<dyn File>>,
    pub offsets_file: Option<Arc<dyn File>>,
    pub paths: Arc<Paths>,
}

impl View {
    pub fn push_node(&mut self, node: NewNode) -> Result<()> {
        let level = node.level as usize;
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, LevelMem::default);
            self.levels[level].start = node.index;
        }
        let mem = &mut self.levels[level];
        if mem.start + mem.nodes.len() as u64 != node.index {
            return Err(Error::Internal(format!(
                "node ({}, {}) appended after {} nodes from {}",
                node.level,
                node.index,
                mem.nodes.len(),
                mem.start
            )));
        }
        mem.nodes.push(node.hash);
        Ok(())
    }

    pub fn root(&self) -> Result<Hash> {
        merkle::root(self, self.size)
    }

    pub fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size {
            return Err(Error::SizeOutOfRange {
                size,
                available: self.size,
            });
        }
        Ok(())
    }

    /// The stored leaf hashes (level 0 of the tree) of the entries in `range`.
    pub fn leaves(&self, range: std::ops::Range<u64>) -> Result<Vec<Hash>> {
        self.check_size(range.end)?;
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let on_file = range.start..range.end.min(self.flushed);
        if !on_file.is_empty() {
            let file = self
                .level_files
                .first()
                .ok_or_else(|| Error::Internal("no file for tree level 0".into()))?;
            let mut raw = vec![0u8; (on_file.end - on_file.start) as usize * 32];
            read_exact_at(&**file, &mut raw, on_file.start * 32, &self.paths.level(0))?;
            out.extend(raw.chunks_exact(32).map(|c| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(c);
                hash
            }));
        }
        for index in range.start.max(self.flushed)..range.end {
            out.push(self.node(0, index)?);
        }
        Ok(out)
    }

    /// The segment holding `index` and the entry's byte offset in it.
    pub fn locate(&self, index: u64) -> Result<(&Segment, u64)> {
        if index >= self.size {
            return Err(Error::OutOfRange {
                index,
                size: self.size,
            });
        }
        let offset =
            match index.checked_sub(self.flushed) {
                Some(i) => self.offsets.get(i as usize).copied().ok_or_else(|| {
                    Error::Internal(format!("no offset for entry {index} in memory"))
                })?,
                None => {
                    let file = self.offsets_file.as_ref().ok_or_else(|| {
                        Error::Internal("no offsets file for flushed entries".into())
                    })?;
                    let mut raw = [0u8; 8];
                    read_exact_at(&**file, &mut raw, index * 8, &self.paths.offsets())?;
                    u64::from_be_bytes(raw)
                }
            };
        let at = self.segments.partition_point(|s| s.first <= index);
        let segment = at
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .ok_or_else(|| Error::Internal(format!("no segment holds entry {index}")))?;
        Ok((segment, offset))
    }
}

impl NodeSource for View {
    type Error = Error;
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        if let Some(mem) = self.levels.get(level as usize)
            && let Some(i) = index.checked_sub(mem.start)
            && let Some(hash) = mem.nodes.get(i as usize)
        {
            return Ok(*hash);
        }
        if (u128::from(index) + 1) << level <= u128::from(self.flushed) {
            let file = self
                .level_files
                .get(level as usize)
                .ok_or_else(|| Error::Internal(format!("no file for tree level {level}")))?;
            let mut hash = [0u8; 32];
            read_exact_at(&**file, &mut hash, index * 32, &self.paths.level(level))?;
            return Ok(hash);
        }
        Err(Error::Internal(format!(
            "tree node ({level}, {index}) is not stored"
        )))
    }
}

/// A stored record: the entry's canonical bytes and the chain hash after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    pub chain: Hash,
}

impl RawEntry {
    /// The decision kind, read without decoding the rest (layout in `FORMAT.md`: version `u8`,
    /// index `u64`, time `u64`, kind `u16`); `None` for another encoding version.
    pub fn kind(&self) -> Option<DecisionKind> {
        if self.bytes.first() != Some(&ENTRY_VERSION) {
            return None;
        }
        let code = self.bytes.get(17..19)?;
        Some(DecisionKind(u16::from_be_bytes([code[0], code[1]])))
    }

    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.bytes)
    }

    pub fn decode(&self) -> Result<Entry> {
        Entry::decode(&self.bytes).map_err(|source| Error::Decode {
            index: self.index,
            source,
        })
    }
}

/// Reads and checks the record of entry `index` at `offset` of a segment.
pub(crate) fn read_record(segment: &Segment, offset: u64, index: u64) -> Result<RawEntry> {
    let corrupt = |reason: String| Error::Corrupt {
        path: segment.path.clone(),
        index,
        offset,
        reason,
    };
    // Most entries are small: one read usually gets the whole frame.
    let mut buf = vec![0u8; 1024];
    let got = read_up_to(&*segment.file, &mut buf, offset, &segment.path)?;
    buf.truncate(got);
    let frame = match parse_frame(&buf) {
        Err(FrameError::Truncated {
            need: Some(len), ..
        }) if got == 1024 => {
            buf.resize(len, 0);
            read_exact_at(&*segment.file, &mut buf, offset, &segment.path)?;
            parse_frame(&buf)
        }
        other => other,
    }
    .map_err(|e| corrupt(e.to_string()))?;
    match Entry::peek_index(frame.body) {
        Some(i) if i == index => {}
        other => return Err(corrupt(format!("the record holds index {other:?}"))),
    }
    Ok(RawEntry {
        index,
        bytes: frame.body.to_vec(),
        chain: frame.chain,
    })
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_up_to(
    file: &dyn File,
    buf: &mut [u8],
    offset: u64,
    path: &Path,
) -> Result<usize> {
    crate::fs::read_up_to(file, buf, offset).map_err(io("reading", path))
}

/// The derived-data watermark: nodes and offsets of entries `[0, size)` are in the files, fsynced,
/// and `root` is the tree head at `size` (a cheap check that the files are the ones meant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub size: u64,
    pub root: Hash,
}

const META_HEADER: &str = "allot-derived v1";

impl Meta {
    pub fn to_text(&self) -> String {
        format!(
            "{META_HEADER}\nsize {}\nroot {}\n",
            self.size,
            hex::encode(self.root)
        )
    }

    pub fn parse(text: &str) -> Option<Meta> {
        let mut lines = text.lines();
        if lines.next()? != META_HEADER {
            return None;
        }
        let size = lines.next()?.strip_prefix("size ")?.parse().ok()?;
        let root = hex::decode(lines.next()?.strip_prefix("root ")?)
            .ok()?
            .try_into()
            .ok()?;
        Some(Meta { size, root })
    }

    pub fn write(&self, paths: &Paths) -> Result<()> {
        let text = self.to_text();
        // An older watermark after a crash only means re-deriving more on open.
        write_atomic(
            paths.fs(),
            &paths.meta(),
            text.as_bytes(),
            0o644,
            SyncPoint::LogDerivedMeta,
            None,
        )?;
        Ok(())
    }
}

/// Derived data as found on open.
#[derive(Debug)]
pub(crate) struct Derived {
    pub flushed: u64,
    pub levels: Vec<LevelMem>,
    pub level_files: Vec<Arc<dyn File>>,
    pub offsets_file: Option<Arc<dyn File>>,
    /// Why the derived data was discarded, if it was.
    pub discarded: Option<String>,
}

/// Number of levels with nodes in a tree of `size` leaves.
pub(crate) fn level_count(size: u64) -> u32 {
    64 - size.leading_zeros()
}

/// Node source over the derived files only, for entries `[0, size)`.
struct FileNodes<'a> {
    files: &'a [Arc<dyn File>],
    paths: &'a Paths,
}

impl NodeSource for FileNodes<'_> {
    type Error = Error;
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let file = self
            .files
            .get(level as usize)
            .ok_or_else(|| Error::Internal(format!("no file for tree level {level}")))?;
        let mut hash = [0u8; 32];
        read_exact_at(&**file, &mut hash, index * 32, &self.paths.level(level))?;
        Ok(hash)
    }
}

/// Opens the derived files and checks them against the watermark. Anything wrong (missing meta,
/// short files, another root) discards them: they are rebuilt from the segments. A writer also
/// trims bytes a crashed flush left beyond the watermark.
pub(crate) fn load_derived(paths: &Paths, writable: bool) -> Result<(Derived, merkle::Frontier)> {
    let meta =
        match read_optional(paths.fs(), &paths.meta()).map_err(io("reading", paths.meta()))? {
            None => Ok(Meta {
                size: 0,
                root: merkle::empty_root(),
            }),
            Some(bytes) => String::from_utf8(bytes)
                .ok()
                .and_then(|t| Meta::parse(&t))
                .ok_or_else(|| "derived/meta is not an allot-derived v1 file".to_owned()),
        };
    let attempt = match meta {
        Err(reason) => Err(reason),
        Ok(meta) => open_derived(paths, writable, &meta)?.map(|d| (d, meta)),
    };
    let (mut derived, meta) = match attempt {
        Ok(found) => found,
        Err(reason) => {
            let empty = Meta {
                size: 0,
                root: merkle::empty_root(),
            };
            let mut derived = match open_derived(paths, writable, &empty)? {
                Ok(d) => d,
                Err(reason) => {
                    return Err(Error::BadFile {
                        path: paths.derived.clone(),
                        reason,
                    });
                }
            };
            derived.discarded = Some(reason);
            (derived, empty)
        }
    };
    let frontier = merkle::Frontier::load(
        &FileNodes {
            files: &derived.level_files,
            paths,
        },
        meta.size,
    )?;
    // Upper levels whole in memory; lower levels start after the flushed nodes.
    for level in 0..level_count(meta.size) {
        let count = meta.size >> level;
        let mem = if level >= CACHED_LEVEL {
            let mut raw = vec![0u8; count as usize * 32];
            read_exact_at(
                &*derived.level_files[level as usize],
                &mut raw,
                0,
                &paths.level(level),
            )?;
            let nodes = raw
                .chunks_exact(32)
                .map(|c| c.try_into().unwrap_or([0u8; 32]))
                .collect();
            LevelMem { start: 0, nodes }
        } else {
            LevelMem {
                start: count,
                nodes: Vec::new(),
            }
        };
        derived.levels.push(mem);
    }
    Ok((derived, frontier))
}

/// Opens the files for watermark `meta`; `Ok(Err(reason))` if they do not hold what it says.
fn open_derived(
    paths: &Paths,
    writable: bool,
    meta: &Meta,
) -> Result<std::result::Result<Derived, String>> {
    let fs = paths.fs();
    let open = |path: &Path| -> Result<Option<Arc<dyn File>>> {
        let options = if writable {
            OpenOptions::create()
        } else {
            OpenOptions::read()
        };
        match fs.open(path, options) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !writable => Ok(None),
            Err(e) => Err(io("opening", path)(e)),
        }
    };
    let file_len = |file: &dyn File, path: &Path| -> Result<u64> {
        file.len().map_err(io("reading metadata of", path))
    };
    let size = meta.size;
    let mut level_files = Vec::new();
    for level in 0..level_count(size) {
        let path = paths.level(level);
        // Saturating: `size` comes from a file, and a damaged one must not overflow.
        let need = (size >> level).saturating_mul(32);
        let Some(file) = open(&path)? else {
            return Ok(Err(format!("{} is missing", path.display())));
        };
        let len = file_len(&*file, &path)?;
        if len < need {
            return Ok(Err(format!(
                "{} has {len} bytes, the watermark needs {need}",
                path.display()
            )));
        }
        if writable && len > need {
            file.set_len(need).map_err(io("trimming", &path))?;
        }
        level_files.push(file);
    }
    if writable {
        // Levels above the watermark's tree hold nothing yet.
        for level in level_count(size)..64 {
            let path = paths.level(level);
            if crate::fs::exists(fs, &path) {
                fs.remove_file(&path).map_err(io("removing", &path))?;
            }
        }
    }
    let offsets_path = paths.offsets();
    let offsets_file = match open(&offsets_path)? {
        Some(file) => {
            let len = file_len(&*file, &offsets_path)?;
            if len < size.saturating_mul(8) {
                return Ok(Err(format!(
                    "{} has {len} bytes, the watermark needs {}",
                    offsets_path.display(),
                    size.saturating_mul(8)
                )));
            }
            if writable && len > size.saturating_mul(8) {
                file.set_len(size.saturating_mul(8))
                    .map_err(io("trimming", &offsets_path))?;
            }
            Some(file)
        }
        None if size == 0 => None,
        None => return Ok(Err(format!("{} is missing", offsets_path.display()))),
    };
    let root = merkle::root(
        &FileNodes {
            files: &level_files,
            paths,
        },
        size,
    )?;
    if root != meta.root {
        return Ok(Err(format!(
            "the stored tree of size {size} has root {}, derived/meta says {}",
            hex::encode(root),
            hex::encode(meta.root)
        )));
    }
    Ok(Ok(Derived {
        flushed: size,
        levels: Vec::new(),
        level_files,
        offsets_file,
        discarded: None,
    }))
}
