//! Opening a log folder: loading derived data, re-deriving what follows its watermark from the
//! segments, and recovering the tail of the last segment after a crash.
//!
//! The only damage recovery repairs is what a crash leaves at the end of the last segment: a
//! record cut short, a last record whose bytes did not all reach the disk (its checksum fails and
//! it ends at the end of the file, or only zero bytes follow), and complete records of a batch
//! whose last record is missing (a batch is all-or-nothing). None of these were acknowledged, as
//! acknowledgement follows the fsync of the whole write. Anything else is a hard error naming the
//! file, the entry index and the byte offset: nothing is skipped.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::entry::{ENTRY_VERSION, Entry};
use super::error::{Error, Result, io};
use super::frame::{
    FRAME_HEADER_BYTES, FRAME_OVERHEAD, FrameError, HeaderError, SEGMENT_HEADER_BYTES, parse_frame,
    parse_segment_header, segment_header,
};
use super::fsutil::sync_dir;
use super::merkle::{Frontier, Hash, leaf_hash};
use super::store::{
    CHAIN_SEED, Derived, Paths, Segment, View, chain_hash, list_segments, load_derived, read_record,
};

/// What opening found and did. The CLI prints it; nothing in it is silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub entries: u64,
    /// The crash leftovers removed from (or, read-only, ignored at) the end of the log.
    pub torn_tail: Option<TornTail>,
    /// Why the derived data (interior hashes, offsets) was rebuilt from the segments, if it was.
    pub derived_rebuilt: Option<String>,
    /// Entries re-derived from the segments (those after the derived-data watermark).
    pub rescanned: u64,
    /// Things worth an operator's attention that did not stop the open.
    pub warnings: Vec<String>,
}

/// Unacknowledged bytes at the end of the last segment, left by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the valid log ends.
    pub offset: u64,
    pub bytes: u64,
    /// The index the first dropped record would have had.
    pub first_index: u64,
    /// The first record that is cut short or fails its checksum (for an unfinished batch of
    /// complete records, the index after them), and its byte offset.
    pub bad_index: u64,
    pub bad_offset: u64,
    /// Complete records dropped because their batch's last record is missing.
    pub incomplete_batch: u64,
    pub reason: String,
    /// False for a read-only open, which leaves the file alone.
    pub truncated: bool,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} bytes at byte {} of {} ({}); entries from index {} on were never acknowledged",
            if self.truncated {
                "truncated"
            } else {
                "ignored"
            },
            self.bytes,
            self.offset,
            self.path.display(),
            self.reason,
            self.first_index
        )?;
        if self.incomplete_batch > 0 {
            write!(
                f,
                " ({} complete records of an unfinished batch)",
                self.incomplete_batch
            )?;
        }
        Ok(())
    }
}

/// The segment a writer appends to.
#[derive(Debug)]
pub(crate) struct Active {
    pub path: PathBuf,
    pub file: fs::File,
    pub len: u64,
}

pub(crate) struct Opened {
    pub view: View,
    pub frontier: Frontier,
    pub active: Option<Active>,
    pub report: OpenReport,
}

pub(crate) fn open_store(paths: Arc<Paths>, writable: bool) -> Result<Opened> {
    let (derived, mut frontier) = load_derived(&paths, writable)?;
    let Derived {
        flushed,
        levels,
        level_files,
        offsets_file,
        discarded,
    } = derived;
    let mut view = View {
        size: flushed,
        chain_head: CHAIN_SEED,
        flushed,
        levels,
        offsets: Vec::new(),
        segments: Vec::new(),
        level_files,
        offsets_file,
        paths: paths.clone(),
    };
    let mut report = OpenReport {
        derived_rebuilt: discarded,
        ..OpenReport::default()
    };

    let mut listed = list_segments(&paths)?;
    if writable && paths.spare().exists() {
        // A spare from an earlier run may be incomplete; the writer prepares a new one.
        fs::remove_file(paths.spare()).map_err(io("removing", paths.spare()))?;
    }
    if listed.is_empty() {
        if flushed > 0 {
            return Err(Error::BadFile {
                path: paths.segments.clone(),
                reason: format!("no segments, but derived data covers {flushed} entries"),
            });
        }
        if !writable {
            return Ok(Opened {
                view,
                frontier,
                active: None,
                report,
            });
        }
        listed.push((0, create_segment(&paths, 0)?));
    }
    if listed[0].0 != 0 {
        return Err(Error::BadFile {
            path: listed[0].1.clone(),
            reason: "the first segment does not start at index 0".into(),
        });
    }
    // Segments wholly before the watermark are trusted as flushed (`verify` reads them all).
    let start = listed
        .partition_point(|(first, _)| *first <= flushed)
        .max(1)
        - 1;
    for (first, path) in &listed[..start] {
        view.segments.push(Segment::open(*first, path.clone())?);
    }

    let mut next = listed[start].0;
    // The chain hash before entry `next`, once known.
    let mut chain = None;
    let mut active = None;
    for (i, (first, path)) in listed.iter().enumerate().skip(start) {
        let is_last = i + 1 == listed.len();
        if *first != next {
            return Err(Error::BadFile {
                path: path.clone(),
                reason: format!(
                    "the segment starts at index {first}, but the previous one ends at {next}"
                ),
            });
        }
        if chain.is_none() && next == flushed {
            chain = Some(chain_before(&view, next)?);
        }
        let bytes = fs::read(path).map_err(io("reading", path))?;
        let scan = scan_segment(path, &bytes, *first, flushed, chain, is_last)?;
        let mut nodes = Vec::with_capacity(scan.records.len() * 2);
        for record in &scan.records {
            frontier.push(record.leaf, |node| nodes.push(node));
            view.offsets.push(record.offset);
        }
        for node in nodes {
            view.push_node(node)?;
        }
        report.rescanned += scan.records.len() as u64;
        view.size = view.size.max(scan.end_index);
        next = scan.end_index;
        chain = scan.chain;
        if let Some(mut torn) = scan.torn {
            torn.truncated = writable;
            if writable {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io("opening", path))?;
                file.set_len(scan.valid_end)
                    .map_err(io("truncating", path))?;
                if scan.header_torn {
                    file.write_all_at(&segment_header(*first), 0)
                        .map_err(io("writing", path))?;
                }
                file.sync_all().map_err(io("syncing", path))?;
            }
            report.torn_tail = Some(torn);
        }
        view.segments.push(Segment::open(*first, path.clone())?);
        if is_last && writable {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io("opening", path))?;
            // A re-initialised segment holds its header and nothing else.
            let len = scan.valid_end.max(SEGMENT_HEADER_BYTES as u64);
            active = Some(Active {
                path: path.clone(),
                file,
                len,
            });
        }
    }
    if next < flushed {
        return Err(Error::BadFile {
            path: paths.segments.clone(),
            reason: format!(
                "the segments hold {next} entries, but derived data covers {flushed}: \
                 entries are missing"
            ),
        });
    }
    view.chain_head = match (chain, next) {
        (Some(chain), _) => chain,
        (None, 0) => CHAIN_SEED,
        (None, _) => return Err(Error::Internal("no chain hash after opening".into())),
    };
    report.entries = view.size;
    Ok(Opened {
        view,
        frontier,
        active,
        report,
    })
}

/// A committed record at or after the derived-data watermark.
struct Scanned {
    leaf: Hash,
    offset: u64,
}

/// One segment's records, checked, with the crash leftovers at its end (last segment only).
struct SegmentScan {
    /// Records at or after the watermark, in complete batches.
    records: Vec<Scanned>,
    /// Index after the last record of the last complete batch.
    end_index: u64,
    /// Chain hash after that record (the incoming chain if there is none).
    chain: Option<Hash>,
    /// Byte offset where that record ends.
    valid_end: u64,
    torn: Option<TornTail>,
    /// The header itself was never completely written: the file is to be re-initialised.
    header_torn: bool,
}

/// Checks a segment's records and re-derives leaf and chain hashes from the watermark on.
/// `chain` is the chain hash before the segment's first entry, if known; it must be known by the
/// first entry at or after `flushed`.
fn scan_segment(
    path: &Path,
    bytes: &[u8],
    first: u64,
    flushed: u64,
    chain: Option<Hash>,
    is_last: bool,
) -> Result<SegmentScan> {
    let walk = walk_segment(path, bytes, first, is_last)?;
    let mut chain = chain;
    let mut records = Vec::new();
    for (i, frame) in walk.committed().iter().enumerate() {
        let index = first + i as u64;
        if index >= flushed {
            let previous = chain
                .ok_or_else(|| Error::Internal(format!("no chain hash before entry {index}")))?;
            let leaf = leaf_hash(frame.body(bytes));
            if chain_hash(&previous, &leaf) != frame.chain {
                return Err(Error::Corrupt {
                    path: path.to_owned(),
                    index,
                    offset: frame.offset as u64,
                    reason: "the stored chain hash does not match".into(),
                });
            }
            records.push(Scanned {
                leaf,
                offset: frame.offset as u64,
            });
        }
        chain = Some(frame.chain);
    }
    Ok(SegmentScan {
        records,
        end_index: first + walk.committed as u64,
        chain,
        valid_end: walk.valid_end,
        torn: walk.torn,
        header_torn: walk.header_torn,
    })
}

/// Where a record sits in its segment's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameAt {
    pub offset: usize,
    pub len: usize,
    pub chain: Hash,
}

impl FrameAt {
    /// The entry's canonical bytes within the segment's bytes.
    pub fn body<'a>(&self, segment: &'a [u8]) -> &'a [u8] {
        &segment[self.offset + FRAME_HEADER_BYTES..self.offset + self.len - 36]
    }
}

/// A segment's structure: its framed records, checked for checksums, entry version, index
/// sequence and batch boundaries, and the crash leftovers at its end.
pub(crate) struct Walk {
    pub frames: Vec<FrameAt>,
    /// How many of `frames` are in complete batches (the rest belong to an unfinished one).
    pub committed: usize,
    /// Byte offset where the committed records end.
    pub valid_end: u64,
    pub torn: Option<TornTail>,
    pub header_torn: bool,
}

impl Walk {
    pub fn committed(&self) -> &[FrameAt] {
        &self.frames[..self.committed]
    }
}

/// Walks a segment's records. Only the last segment may end in crash leftovers (see the module
/// documentation); anything else wrong is an error naming the entry index and byte offset.
pub(crate) fn walk_segment(path: &Path, bytes: &[u8], first: u64, is_last: bool) -> Result<Walk> {
    let corrupt = |index: u64, offset: usize, reason: String| Error::Corrupt {
        path: path.to_owned(),
        index,
        offset: offset as u64,
        reason,
    };
    let mut walk = Walk {
        frames: Vec::new(),
        committed: 0,
        valid_end: SEGMENT_HEADER_BYTES as u64,
        torn: None,
        header_torn: false,
    };
    // What follows the valid records up to the last non-zero byte (zeros are preallocated space).
    let written_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let torn = |offset: usize, first_index: u64, bad: (u64, usize), reason: String| TornTail {
        path: path.to_owned(),
        offset: offset as u64,
        bytes: written_end.saturating_sub(offset) as u64,
        first_index,
        bad_index: bad.0,
        bad_offset: bad.1 as u64,
        incomplete_batch: bad.0 - first_index,
        reason,
        truncated: false,
    };
    match parse_segment_header(bytes) {
        Ok(declared) if declared == first => {}
        Ok(declared) => {
            return Err(Error::BadFile {
                path: path.to_owned(),
                reason: format!("the header says the segment starts at index {declared}"),
            });
        }
        Err(HeaderError::Short(_) | HeaderError::BadMagic)
            if is_last
                && (bytes.len() < SEGMENT_HEADER_BYTES
                    || bytes[..SEGMENT_HEADER_BYTES].iter().all(|&b| b == 0)) =>
        {
            // Created by a roll that crashed before its header was durable.
            walk.header_torn = true;
            walk.valid_end = 0;
            let reason = "the segment header was never completely written".into();
            walk.torn = Some(torn(0, first, (first, 0), reason));
            return Ok(walk);
        }
        Err(e) => {
            return Err(Error::BadFile {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    }

    let mut pos = SEGMENT_HEADER_BYTES;
    let mut batch_start = pos;
    while pos < written_end {
        let index = first + walk.frames.len() as u64;
        let frame = match parse_frame(&bytes[pos..]) {
            Ok(frame) => frame,
            Err(e) => {
                let rest = &bytes[pos..];
                // A write cut short leaves a bad last record, followed by nothing or by the
                // zeros of preallocated space.
                let extent = match e {
                    FrameError::Truncated { .. } => rest.len(),
                    FrameError::BadChecksum => {
                        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                        FRAME_OVERHEAD + len as usize
                    }
                    _ => FRAME_HEADER_BYTES,
                };
                let crash_leftover = pos + extent >= written_end;
                if is_last && crash_leftover {
                    let first_index = first + walk.committed as u64;
                    walk.torn = Some(torn(batch_start, first_index, (index, pos), e.to_string()));
                    return Ok(walk);
                }
                return Err(corrupt(index, pos, e.to_string()));
            }
        };
        if frame.body[0] != ENTRY_VERSION {
            let reason = format!(
                "entry version {} is not supported (this build reads version {ENTRY_VERSION})",
                frame.body[0]
            );
            return Err(corrupt(index, pos, reason));
        }
        match Entry::peek_index(frame.body) {
            Some(stored) if stored == index => {}
            stored => {
                return Err(corrupt(
                    index,
                    pos,
                    format!("the record holds index {stored:?}"),
                ));
            }
        }
        walk.frames.push(FrameAt {
            offset: pos,
            len: frame.len,
            chain: frame.chain,
        });
        pos += frame.len;
        if frame.end_of_batch {
            walk.committed = walk.frames.len();
            walk.valid_end = pos as u64;
            batch_start = pos;
        }
    }
    if walk.committed != walk.frames.len() {
        let index = first + walk.committed as u64;
        if !is_last {
            return Err(corrupt(
                index,
                batch_start,
                "the segment ends inside a batch".into(),
            ));
        }
        let end = (first + walk.frames.len() as u64, pos);
        let reason = "the last batch has no end-of-batch record".into();
        walk.torn = Some(torn(batch_start, index, end, reason));
    }
    Ok(walk)
}

/// The chain hash stored with entry `index - 1` (which must be in the view), or the seed for 0.
fn chain_before(view: &View, index: u64) -> Result<Hash> {
    let Some(previous) = index.checked_sub(1) else {
        return Ok(CHAIN_SEED);
    };
    let (segment, offset) = view.locate(previous)?;
    Ok(read_record(segment, offset, previous)?.chain)
}

pub(crate) fn create_segment(paths: &Paths, first: u64) -> Result<PathBuf> {
    let path = paths.segment(first);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io("creating", &path))?;
    file.write_all_at(&segment_header(first), 0)
        .map_err(io("writing", &path))?;
    file.sync_all().map_err(io("syncing", &path))?;
    sync_dir(&paths.segments)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::frame::encode_frame;
    use proptest::prelude::*;

    proptest! {
        /// The segment walker gets arbitrary bytes (fuzzing, damaged disks): it answers with
        /// frames or an error, never a panic, for the last segment and any other.
        #[test]
        fn walking_arbitrary_bytes_never_panics(
            tail in proptest::collection::vec(any::<u8>(), 0..400),
            with_header: bool,
            with_record: bool,
            is_last: bool,
        ) {
            let mut bytes = if with_header { segment_header(7).to_vec() } else { Vec::new() };
            if with_record {
                let mut body = vec![ENTRY_VERSION];
                body.extend_from_slice(&7u64.to_be_bytes());
                body.extend_from_slice(b"rest");
                encode_frame(&mut bytes, &body, &[0; 32], true);
            }
            bytes.extend_from_slice(&tail);
            let path = Path::new("segment");
            if let Ok(walk) = walk_segment(path, &bytes, 7, is_last) {
                prop_assert!(walk.committed <= walk.frames.len());
                prop_assert!(walk.valid_end as usize <= bytes.len());
                for frame in walk.committed() {
                    prop_assert!(!frame.body(&bytes).is_empty());
                }
            }
        }
    }
}
