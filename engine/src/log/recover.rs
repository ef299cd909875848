//! Opening a log folder: loading derived data, re-deriving what follows its watermark from the
//! segments, and recovering the tail of the last segment after a crash or a power cut.
//!
//! A version 2 segment holds *groups*: the records of one write and one `fdatasync`, closed by a
//! commit trailer with the group's length and CRC32C. Appenders are acknowledged only after that
//! fsync, and the writer starts the next group only after it, so at most the last group of the
//! last segment can be unacknowledged. A power cut during its write can leave any of its pages
//! unwritten: zeros, then data, then zeros again. Recovery therefore drops the last group when
//! it is incomplete (its trailer missing, damaged or not matching its bytes) and nothing valid
//! follows it: no complete group (a trailer whose CRC matches the bytes before it) anywhere
//! after the damage. Damage followed by a complete group was acknowledged data: a hard error
//! naming the file, the entry index and the byte offset. Nothing is skipped.
//!
//! Version 1 segments (no trailers) are read with the rules they were written under: only a
//! last record cut short or failing its checksum, followed by nothing or zeros, or records of a
//! batch whose last record is missing, are crash leftovers. A writer never appends to a version
//! 1 segment: it starts a version 2 one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::entry::{ENTRY_VERSION, Entry};
use super::error::{Error, Result, io};
use super::frame::{
    COMMIT_MARKER, FRAME_HEADER_BYTES, FRAME_OVERHEAD, FrameError, HeaderError,
    SEGMENT_HEADER_BYTES, SEGMENT_VERSION_1, TRAILER_BYTES, Trailer, parse_frame,
    parse_segment_header, segment_header,
};
use super::merkle::{Frontier, Hash, leaf_hash};
use super::store::{
    CHAIN_SEED, Derived, Paths, Segment, View, chain_hash, list_segments, load_derived, read_record,
};
use crate::fs::{File, OpenOptions, SyncPoint};

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
    /// The first record that is cut short or fails its checksum (for an unfinished group of
    /// complete records, the index after them), and its byte offset.
    pub bad_index: u64,
    pub bad_offset: u64,
    /// Complete, valid records dropped with their unfinished group (or, in a version 1
    /// segment, batch).
    pub unfinished_group: u64,
    pub reason: String,
    /// False for a read-only open, which leaves the file alone.
    pub truncated: bool,
}

impl fmt::Display for TornTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} bytes at byte {} of {} ({} at byte {}); entries from index {} on were never \
             acknowledged",
            if self.truncated {
                "truncated"
            } else {
                "ignored"
            },
            self.bytes,
            self.offset,
            self.path.display(),
            self.reason,
            self.bad_offset,
            self.first_index
        )?;
        if self.unfinished_group > 0 {
            write!(
                f,
                " ({} complete records of an unfinished group)",
                self.unfinished_group
            )?;
        }
        Ok(())
    }
}

/// The segment a writer appends to.
#[derive(Debug)]
pub(crate) struct Active {
    pub path: PathBuf,
    pub file: Arc<dyn File>,
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

    let fs = paths.fs();
    let mut listed = list_segments(&paths)?;
    if writable && crate::fs::exists(fs, &paths.spare()) {
        // A spare from an earlier run may be incomplete; the writer prepares a new one.
        fs.remove_file(&paths.spare())
            .map_err(io("removing", paths.spare()))?;
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
        view.segments
            .push(Segment::open(&paths, *first, path.clone())?);
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
        let bytes = fs.read(path).map_err(io("reading", path))?;
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
        // A version 1 segment is never appended to: an empty one is re-initialised as version
        // 2, a non-empty one is followed by a new segment.
        let old_version = scan.version == Some(SEGMENT_VERSION_1);
        let reinitialise = scan.header_torn || (old_version && scan.end_index == *first);
        if let Some(mut torn) = scan.torn {
            torn.truncated = writable;
            report.torn_tail = Some(torn);
        }
        if writable && (report.torn_tail.is_some() || reinitialise) && is_last {
            let file = fs
                .open(path, OpenOptions::write())
                .map_err(io("opening", path))?;
            // Not synced here: the writer zero-fills from the valid end and syncs before its
            // first group, and until then a crash leaves the same tail to recover again.
            file.set_len(scan.valid_end)
                .map_err(io("truncating", path))?;
            if reinitialise {
                file.write_all_at(&segment_header(*first), 0)
                    .map_err(io("writing", path))?;
            }
        }
        view.segments
            .push(Segment::open(&paths, *first, path.clone())?);
        if is_last && writable {
            let (path, file, len) = if old_version && !reinitialise {
                let path = create_segment(&paths, next)?;
                view.segments
                    .push(Segment::open(&paths, next, path.clone())?);
                let file = fs
                    .open(&path, OpenOptions::write())
                    .map_err(io("opening", &path))?;
                (path, file, SEGMENT_HEADER_BYTES as u64)
            } else {
                let file = fs
                    .open(path, OpenOptions::write())
                    .map_err(io("opening", path))?;
                // A re-initialised segment holds its header and nothing else.
                (
                    path.clone(),
                    file,
                    scan.valid_end.max(SEGMENT_HEADER_BYTES as u64),
                )
            };
            active = Some(Active { path, file, len });
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
    /// The segment's format version (`None` if its header was never written).
    version: Option<u16>,
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
        version: walk.version,
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
/// sequence and group (or batch) boundaries, and the crash leftovers at its end.
pub(crate) struct Walk {
    pub version: Option<u16>,
    pub frames: Vec<FrameAt>,
    /// How many of `frames` are in complete groups (the rest belong to an unfinished one).
    pub committed: usize,
    /// Byte offset where the committed records (and their trailer) end.
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
    let mut walk = Walk {
        version: None,
        frames: Vec::new(),
        committed: 0,
        valid_end: SEGMENT_HEADER_BYTES as u64,
        torn: None,
        header_torn: false,
    };
    // What follows the valid records up to the last non-zero byte (zeros are preallocated space).
    let written_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    match parse_segment_header(bytes) {
        Ok(header) if header.first == first => walk.version = Some(header.version),
        Ok(header) => {
            return Err(Error::BadFile {
                path: path.to_owned(),
                reason: format!(
                    "the header says the segment starts at index {}",
                    header.first
                ),
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
            walk.torn = Some(TornTail {
                path: path.to_owned(),
                offset: 0,
                bytes: written_end as u64,
                first_index: first,
                bad_index: first,
                bad_offset: 0,
                unfinished_group: 0,
                reason: "the segment header was never completely written".into(),
                truncated: false,
            });
            return Ok(walk);
        }
        Err(e) => {
            return Err(Error::BadFile {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    }
    let mut walker = Walker {
        path,
        bytes,
        first,
        is_last,
        written_end,
        walk,
    };
    if walker.walk.version == Some(SEGMENT_VERSION_1) {
        walker.records_v1()?;
    } else {
        walker.groups()?;
    }
    Ok(walker.walk)
}

/// The smallest unit a disk writes whole (a sector): a torn write loses whole ones.
const ZERO_BLOCK: usize = 512;

struct Walker<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    first: u64,
    is_last: bool,
    written_end: usize,
    walk: Walk,
}

/// Something wrong at a byte offset: a hard error, or crash leftovers if the caller decides so.
struct Problem {
    offset: usize,
    reason: String,
    /// The bytes were written as they are (checksums match): never crash leftovers.
    hard: bool,
}

impl Walker<'_> {
    fn index(&self) -> u64 {
        self.first + self.walk.frames.len() as u64
    }

    fn corrupt(&self, index: u64, offset: usize, reason: String) -> Error {
        Error::Corrupt {
            path: self.path.to_owned(),
            index,
            offset: offset as u64,
            reason,
        }
    }

    /// Records crash leftovers from `start` (where the committed data ends) on.
    fn torn(&mut self, start: usize, bad_offset: usize, reason: String) {
        let first_index = self.first + self.walk.committed as u64;
        self.walk.torn = Some(TornTail {
            path: self.path.to_owned(),
            offset: start as u64,
            bytes: self.written_end.saturating_sub(start) as u64,
            first_index,
            bad_index: self.index(),
            bad_offset: bad_offset as u64,
            unfinished_group: self.index() - first_index,
            reason,
            truncated: false,
        });
        self.walk.frames.truncate(self.walk.committed);
    }

    /// The record at `pos`, checked (checksums, entry version, index).
    fn record(&self, pos: usize) -> std::result::Result<(FrameAt, bool), Problem> {
        let frame = parse_frame(&self.bytes[pos..]).map_err(|e| Problem {
            offset: pos,
            reason: e.to_string(),
            hard: false,
        })?;
        let hard = |reason: String| Problem {
            offset: pos,
            reason,
            hard: true,
        };
        if frame.body[0] != ENTRY_VERSION {
            return Err(hard(format!(
                "entry version {} is not supported (this build reads version {ENTRY_VERSION})",
                frame.body[0]
            )));
        }
        match Entry::peek_index(frame.body) {
            Some(stored) if stored == self.index() => {}
            stored => return Err(hard(format!("the record holds index {stored:?}"))),
        }
        let at = FrameAt {
            offset: pos,
            len: frame.len,
            chain: frame.chain,
        };
        Ok((at, frame.end_of_batch))
    }

    /// Version 2: groups of records, each closed by a commit trailer.
    fn groups(&mut self) -> Result<()> {
        let mut pos = SEGMENT_HEADER_BYTES;
        let mut group_start = pos;
        let mut last_ends_batch = false;
        while pos < self.written_end {
            if self.bytes[pos..].starts_with(&COMMIT_MARKER) {
                if let Err(problem) = self.trailer(pos, group_start, last_ends_batch) {
                    return self.problem(group_start, problem);
                }
                pos += TRAILER_BYTES;
                self.walk.committed = self.walk.frames.len();
                self.walk.valid_end = pos as u64;
                group_start = pos;
                continue;
            }
            match self.record(pos) {
                Ok((frame, end_of_batch)) => {
                    last_ends_batch = end_of_batch;
                    self.walk.frames.push(frame);
                    pos += frame.len;
                }
                Err(problem) => return self.problem(group_start, problem),
            }
        }
        if self.walk.frames.len() > self.walk.committed {
            let problem = Problem {
                offset: pos,
                reason: "the last group has no commit trailer".into(),
                hard: false,
            };
            return self.problem(group_start, problem);
        }
        Ok(())
    }

    /// Checks the trailer at `pos` against the group that started at `group_start`.
    fn trailer(
        &self,
        pos: usize,
        group_start: usize,
        last_ends_batch: bool,
    ) -> std::result::Result<(), Problem> {
        let soft = |reason: String| Problem {
            offset: pos,
            reason,
            hard: false,
        };
        let trailer = Trailer::parse(&self.bytes[pos..]).map_err(|e| soft(e.to_string()))?;
        let records = self.walk.frames.len() - self.walk.committed;
        let group = &self.bytes[group_start..pos];
        if trailer.bytes as usize != group.len() || trailer.crc != crc32c::crc32c(group) {
            return Err(soft(
                "the group's bytes do not match its commit trailer".into(),
            ));
        }
        if trailer.records as usize != records || records == 0 || !last_ends_batch {
            return Err(Problem {
                offset: pos,
                reason: format!(
                    "the commit trailer closes {} records, the group holds {records}{}",
                    trailer.records,
                    if last_ends_batch {
                        ""
                    } else {
                        " and its last batch is not finished"
                    }
                ),
                hard: true,
            });
        }
        Ok(())
    }

    /// Decides what a problem in the group starting at `group_start` is: crash leftovers of an
    /// unacknowledged write (the last segment, and no complete group after it), or damage.
    fn problem(&mut self, group_start: usize, problem: Problem) -> Result<()> {
        let index = self.index();
        if problem.hard || !self.is_last {
            return Err(self.corrupt(index, problem.offset, problem.reason));
        }
        if let Some(later) = self.complete_group_after(group_start, problem.offset) {
            let reason = format!(
                "{}; a complete group follows at byte {later}, so this was acknowledged data",
                problem.reason
            );
            return Err(self.corrupt(index, problem.offset, reason));
        }
        // A torn write leaves the group cut short (no trailer), or a block of it as it was
        // before: zeros, since the writer only writes over zero-filled space. A group whose
        // trailer is intact and that misses no block was written whole: it is damaged.
        if let Some(trailer) = self.closing_trailer(group_start, problem.offset)
            && !self.has_zero_block(group_start, trailer)
        {
            let reason = format!(
                "{}; the group's commit trailer at byte {trailer} is intact and no block of \
                 the group is missing, so this is damage, not a write cut short",
                problem.reason
            );
            return Err(self.corrupt(index, problem.offset, reason));
        }
        self.torn(group_start, problem.offset, problem.reason);
        Ok(())
    }

    /// Where the intact trailer of the group starting at `group_start` is, if it is there (at
    /// or after `from`).
    fn closing_trailer(&self, group_start: usize, from: usize) -> Option<usize> {
        let finder = memchr::memmem::Finder::new(&COMMIT_MARKER);
        let rest = self.bytes.get(from..)?;
        finder.find_iter(rest).map(|at| from + at).find(|&pos| {
            Trailer::parse(&self.bytes[pos..])
                .is_ok_and(|t| pos.checked_sub(t.bytes as usize) == Some(group_start))
        })
    }

    /// Whether some aligned block of `[start, end)` holds only zeros (as a block the disk never
    /// got would).
    fn has_zero_block(&self, start: usize, end: usize) -> bool {
        let mut block = start / ZERO_BLOCK * ZERO_BLOCK;
        while block < end {
            let lo = block.max(start);
            let hi = (block + ZERO_BLOCK).min(end);
            if self.bytes[lo..hi].iter().all(|&b| b == 0) {
                return true;
            }
            block += ZERO_BLOCK;
        }
        false
    }

    /// The offset of a complete group (a trailer whose CRC matches the bytes it closes) that
    /// starts at or after `group_start` and ends after `offset`, if there is one.
    fn complete_group_after(&self, group_start: usize, offset: usize) -> Option<usize> {
        let finder = memchr::memmem::Finder::new(&COMMIT_MARKER);
        let from = offset + 1;
        let rest = self.bytes.get(from..)?;
        finder.find_iter(rest).find_map(|at| {
            let pos = from + at;
            let trailer = Trailer::parse(&self.bytes[pos..]).ok()?;
            let start = pos.checked_sub(trailer.bytes as usize)?;
            (start >= group_start
                && trailer.records > 0
                && crc32c::crc32c(&self.bytes[start..pos]) == trailer.crc)
                .then_some(start)
        })
    }

    /// Version 1: records and batches, no trailers.
    fn records_v1(&mut self) -> Result<()> {
        let mut pos = SEGMENT_HEADER_BYTES;
        let mut batch_start = pos;
        while pos < self.written_end {
            let index = self.index();
            let (frame, end_of_batch) = match self.record(pos) {
                Ok(found) => found,
                Err(problem) if problem.hard => {
                    return Err(self.corrupt(index, pos, problem.reason));
                }
                Err(problem) => {
                    let rest = &self.bytes[pos..];
                    // A write cut short leaves a bad last record, followed by nothing or by
                    // the zeros of preallocated space.
                    let extent = match parse_frame(rest) {
                        Err(FrameError::Truncated { .. }) => rest.len(),
                        Err(FrameError::BadChecksum) => {
                            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                            FRAME_OVERHEAD + len as usize
                        }
                        _ => FRAME_HEADER_BYTES,
                    };
                    if self.is_last && pos + extent >= self.written_end {
                        self.torn(batch_start, pos, problem.reason);
                        return Ok(());
                    }
                    return Err(self.corrupt(index, pos, problem.reason));
                }
            };
            self.walk.frames.push(frame);
            pos += frame.len;
            if end_of_batch {
                self.walk.committed = self.walk.frames.len();
                self.walk.valid_end = pos as u64;
                batch_start = pos;
            }
        }
        if self.walk.committed != self.walk.frames.len() {
            let index = self.first + self.walk.committed as u64;
            if !self.is_last {
                return Err(self.corrupt(
                    index,
                    batch_start,
                    "the segment ends inside a batch".into(),
                ));
            }
            self.torn(
                batch_start,
                pos,
                "the last batch has no end-of-batch record".into(),
            );
        }
        Ok(())
    }
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
    let fs = paths.fs();
    let file = fs
        .open(&path, OpenOptions::create_new())
        .map_err(io("creating", &path))?;
    // The header is made durable by the first group's fdatasync (a crash before it leaves
    // zeros, which recovery re-initialises); the name must be durable now.
    file.write_all_at(&segment_header(first), 0)
        .map_err(io("writing", &path))?;
    fs.sync_dir(&paths.segments, SyncPoint::LogSegmentName)
        .map_err(io("syncing folder", &paths.segments))?;
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
