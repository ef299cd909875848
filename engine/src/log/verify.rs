//! Full verification of a log folder from its bytes: every record's checksums, entry encoding
//! (decoded completely), index sequence and batch boundaries; the hash chain against the stored
//! chain hashes; the Merkle tree against the stored interior hashes and offsets; the last signed
//! checkpoint against the re-derived root at its size. Read-only and lock-free.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::entry::Entry;
use super::error::{Error, Result, io};
use super::merkle::{Frontier, Hash, NewNode, empty_root, leaf_hash};
use super::note::SignedCheckpoint;
use super::recover::walk_segment;
use super::store::{CHAIN_SEED, Meta, Paths, chain_hash, list_segments};
use crate::fs::{DataDir, File, OpenOptions};

/// What verification found; any damage is an `Err` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub size: u64,
    pub root: Hash,
    /// The chain hash of the last entry (the seed for an empty log).
    pub chain: Hash,
    pub segments: usize,
    /// The last signed checkpoint, which matched the re-derived tree.
    pub checkpoint: Option<(String, u64)>,
    /// Entries whose stored interior hashes and offsets were compared with re-derived ones.
    pub derived_checked: u64,
}

/// Streams one derived file, comparing it with re-derived values in order.
struct Stored {
    path: PathBuf,
    file: Arc<dyn File>,
    buf: Vec<u8>,
    /// Where `buf` starts in the file, and how far it has been consumed.
    buf_at: u64,
    used: usize,
}

impl Stored {
    fn open(paths: &Paths, path: PathBuf) -> Result<Option<Stored>> {
        match paths.fs().open(&path, OpenOptions::read()) {
            Ok(file) => Ok(Some(Stored {
                file,
                path,
                buf: Vec::new(),
                buf_at: 0,
                used: 0,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("opening", &path)(e)),
        }
    }

    fn next<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.used + N > self.buf.len() {
            let at = self.buf_at + self.used as u64;
            self.buf.resize(1 << 16, 0);
            let got = crate::fs::read_up_to(&*self.file, &mut self.buf, at)
                .map_err(io("reading", &self.path))?;
            self.buf.truncate(got);
            self.buf_at = at;
            self.used = 0;
            if got < N {
                return Err(Error::BadFile {
                    path: self.path.clone(),
                    reason: format!("ends before byte {}", at + N as u64),
                });
            }
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.used..self.used + N]);
        self.used += N;
        Ok(out)
    }
}

/// Verifies the log in `data_dir`. The first damage found is an error naming the file, the entry
/// index and the byte offset.
pub fn verify(data_dir: impl Into<DataDir>) -> Result<VerifyReport> {
    let data_dir = data_dir.into();
    let paths = Paths::new(&data_dir);
    let fs = paths.fs();
    if !crate::fs::is_dir(fs, &paths.segments) {
        return Err(Error::NotFound {
            dir: data_dir.path().to_owned(),
            expected: paths.segments,
        });
    }
    let checkpoint = load_checkpoint(&paths)?;
    // Derived data is compared up to its watermark, if it has a readable one.
    let meta = crate::fs::read_optional(fs, &paths.meta())
        .map_err(io("reading", paths.meta()))?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| Meta::parse(&t))
        .unwrap_or(Meta {
            size: 0,
            root: empty_root(),
        });
    let mut levels: Vec<Option<Stored>> = Vec::new();
    let mut offsets = Stored::open(&paths, paths.offsets())?;
    if meta.size > 0 && offsets.is_none() {
        return Err(Error::BadFile {
            path: paths.offsets(),
            reason: format!("missing, but derived/meta covers {} entries", meta.size),
        });
    }
    for level in 0..super::store::level_count(meta.size) {
        let stored = Stored::open(&paths, paths.level(level))?;
        if stored.is_none() {
            return Err(Error::BadFile {
                path: paths.level(level),
                reason: format!("missing, but derived/meta covers {} entries", meta.size),
            });
        }
        levels.push(stored);
    }

    let listed = list_segments(&paths)?;
    let mut frontier = Frontier::new();
    let mut chain = CHAIN_SEED;
    let mut next = 0u64;
    let mut roots_at = Vec::new();
    // One buffer for all segments: fresh 64 MiB allocations cost a page fault per 4 KiB.
    let mut bytes = Vec::new();
    for (i, (first, path)) in listed.iter().enumerate() {
        if *first != next {
            return Err(Error::BadFile {
                path: path.clone(),
                reason: format!(
                    "the segment starts at index {first}, but the log so far ends at {next}"
                ),
            });
        }
        // Into the same buffer each time.
        let file = fs
            .open(path, OpenOptions::read())
            .map_err(io("reading", path))?;
        bytes.resize(file.len().map_err(io("reading", path))? as usize, 0);
        let got = crate::fs::read_up_to(&*file, &mut bytes, 0).map_err(io("reading", path))?;
        bytes.truncate(got);
        let walk = walk_segment(path, &bytes, *first, i + 1 == listed.len())?;
        let frames = walk.committed();
        // Hash and decode in parallel; the first failure by index wins.
        let leaves: Vec<Result<Hash>> = frames
            .par_iter()
            .enumerate()
            .map(|(k, frame)| {
                let index = first + k as u64;
                let body = frame.body(&bytes);
                Entry::decode(body).map_err(|source| Error::Decode { index, source })?;
                Ok(leaf_hash(body))
            })
            .collect();
        for (k, (frame, leaf)) in frames.iter().zip(leaves).enumerate() {
            let index = first + k as u64;
            let leaf = leaf?;
            chain = chain_hash(&chain, &leaf);
            if chain != frame.chain {
                return Err(Error::Corrupt {
                    path: path.clone(),
                    index,
                    offset: frame.offset as u64,
                    reason: "the stored chain hash does not match the re-derived one".into(),
                });
            }
            if index < meta.size
                && let Some(stored) = offsets.as_mut()
                && u64::from_be_bytes(stored.next::<8>()?) != frame.offset as u64
            {
                return Err(derived_damage(
                    &paths.offsets(),
                    format!("offset of entry {index}"),
                ));
            }
            let mut mismatch = None;
            frontier.push(leaf, |node: NewNode| {
                let covered = (u128::from(node.index) + 1) << node.level <= u128::from(meta.size);
                if covered
                    && mismatch.is_none()
                    && let Some(Some(stored)) = levels.get_mut(node.level as usize)
                {
                    match stored.next::<32>() {
                        Ok(hash) if hash == node.hash => {}
                        Ok(_) => mismatch = Some(Ok((node.level, node.index))),
                        Err(e) => mismatch = Some(Err(e)),
                    }
                }
            });
            match mismatch {
                None => {}
                Some(Ok((level, node))) => {
                    return Err(derived_damage(
                        &paths.level(level),
                        format!("interior hash (level {level}, index {node})"),
                    ));
                }
                Some(Err(e)) => return Err(e),
            }
            roots_at_size(&frontier, &meta, checkpoint.as_ref(), &mut roots_at);
        }
        next = first + frames.len() as u64;
        if let Some(torn) = walk.torn {
            // Strict: a crash's leftovers are still bytes that are not a valid log.
            return Err(Error::Corrupt {
                path: torn.path.clone(),
                index: torn.bad_index,
                offset: torn.bad_offset,
                reason: format!(
                    "{}; if a crash cut this write short it was never acknowledged, and opening \
                     the log for writing removes it",
                    torn.reason
                ),
            });
        }
    }
    if meta.size == 0 || checkpoint.as_ref().is_some_and(|c| c.checkpoint.size == 0) {
        roots_at.push((0, empty_root()));
    }
    let size = frontier.size();
    let root = frontier.root();
    if meta.size > size {
        return Err(Error::BadFile {
            path: paths.meta(),
            reason: format!(
                "derived data covers {} entries, the segments hold {size}",
                meta.size
            ),
        });
    }
    if roots_at
        .iter()
        .any(|(s, r)| *s == meta.size && *r != meta.root)
    {
        return Err(derived_damage(
            &paths.meta(),
            "the root at its watermark".into(),
        ));
    }
    let checkpoint = match checkpoint {
        None => None,
        Some(signed) => {
            let cp = &signed.checkpoint;
            if cp.size > size {
                return Err(Error::BehindCheckpoint {
                    path: paths.checkpoint(),
                    size,
                    signed: cp.size,
                });
            }
            let actual = roots_at
                .iter()
                .find(|(s, _)| *s == cp.size)
                .map(|(_, r)| *r);
            if actual != Some(cp.root) {
                return Err(Error::CheckpointMismatch {
                    path: paths.checkpoint(),
                    size: cp.size,
                    signed: hex::encode(cp.root),
                    actual: actual.map(hex::encode).unwrap_or_default(),
                });
            }
            Some((cp.origin.clone(), cp.size))
        }
    };
    Ok(VerifyReport {
        size,
        root,
        chain,
        segments: listed.len(),
        checkpoint,
        derived_checked: meta.size,
    })
}

/// Records the root when the tree reaches the derived watermark or the checkpoint's size.
fn roots_at_size(
    frontier: &Frontier,
    meta: &Meta,
    checkpoint: Option<&SignedCheckpoint>,
    out: &mut Vec<(u64, Hash)>,
) {
    let size = frontier.size();
    if size == meta.size || checkpoint.is_some_and(|c| c.checkpoint.size == size) {
        out.push((size, frontier.root()));
    }
}

fn derived_damage(path: &Path, what: String) -> Error {
    Error::BadFile {
        path: path.to_owned(),
        reason: format!(
            "the stored {what} differs from the one re-derived from the entries: the derived data \
             is damaged (the segments are not); remove the derived folder to have it rebuilt"
        ),
    }
}

fn load_checkpoint(paths: &Paths) -> Result<Option<SignedCheckpoint>> {
    let path = paths.checkpoint();
    let Some(note) = crate::fs::read_optional(paths.fs(), &path).map_err(io("reading", &path))?
    else {
        return Ok(None);
    };
    let key = super::load_verifier(paths)?;
    SignedCheckpoint::open(&String::from_utf8_lossy(&note), &key)
        .map(Some)
        .map_err(|source| Error::Note { path, source })
}
