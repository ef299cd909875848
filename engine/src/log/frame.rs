//! Segment files' byte layout: a header, then framed records (layouts in `FORMAT.md`). Pure
//! functions over byte slices, so they can be fuzzed; every input gives a value or an error.

use super::entry::MAX_STORED_ENTRY_BYTES;
use super::merkle::Hash;

pub const SEGMENT_MAGIC: [u8; 8] = *b"ALLOTLOG";
/// The version new segments are written in: records grouped by commit trailers.
pub const SEGMENT_VERSION: u16 = 2;
/// Version 1 segments have no commit trailers; they are read, never appended to.
pub const SEGMENT_VERSION_1: u16 = 1;
pub const SEGMENT_HEADER_BYTES: usize = 24;

/// A commit trailer's first four bytes, where a record has its length (never this large).
pub const COMMIT_MARKER: [u8; 4] = [0xff; 4];
/// Marker, group bytes, records, group CRC, the trailer's own CRC.
pub const TRAILER_BYTES: usize = 20;

/// Frame header (length, flags, padding, header CRC).
pub const FRAME_HEADER_BYTES: usize = 12;
/// Header, chain hash and record CRC around the entry bytes.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_BYTES + 32 + 4;

/// Set on the last record of a batch; a batch without it at the end of the log never committed.
pub const FLAG_END_OF_BATCH: u8 = 0x01;

pub fn segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    segment_header_version(first_index, SEGMENT_VERSION)
}

/// A segment header of a given version (tests write old segments with it).
pub fn segment_header_version(first_index: u64, version: u16) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..10].copy_from_slice(&version.to_be_bytes());
    h[12..20].copy_from_slice(&first_index.to_be_bytes());
    let crc = crc32c::crc32c(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_be_bytes());
    h
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the segment header is cut short ({0} of 24 bytes)")]
    Short(usize),
    #[error("not an allot log segment (bad magic)")]
    BadMagic,
    #[error("segment format version {0} is not supported (this build reads versions 1 and 2)")]
    UnknownVersion(u16),
    #[error("the segment header's checksum does not match")]
    BadChecksum,
}

/// What a segment header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The index of the segment's first entry.
    pub first: u64,
    pub version: u16,
}

/// Parses a segment header.
pub fn parse_segment_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err(HeaderError::Short(bytes.len()));
    };
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u16::from_be_bytes([h[8], h[9]]);
    if version != SEGMENT_VERSION && version != SEGMENT_VERSION_1 {
        return Err(HeaderError::UnknownVersion(version));
    }
    let crc = u32::from_be_bytes([h[20], h[21], h[22], h[23]]);
    if crc != crc32c::crc32c(&h[0..20]) || h[10..12] != [0, 0] {
        return Err(HeaderError::BadChecksum);
    }
    let first = u64::from_be_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]);
    Ok(SegmentHeader { first, version })
}

/// One piece of a well-formed segment: a record (with its entry index) or a commit trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub offset: usize,
    pub len: usize,
    /// The record's entry index; `None` for a commit trailer.
    pub index: Option<u64>,
}

/// The records and trailers of a segment's bytes, up to the first thing that is neither (zeros
/// of preallocated space, or damage): for tests and tools that look at the layout. Checks
/// nothing beyond the framing.
pub fn layout(bytes: &[u8]) -> Vec<Piece> {
    let Ok(header) = parse_segment_header(bytes) else {
        return Vec::new();
    };
    let mut index = header.first;
    let mut pos = SEGMENT_HEADER_BYTES;
    let mut out = Vec::new();
    loop {
        let rest = &bytes[pos..];
        if rest.starts_with(&COMMIT_MARKER) && Trailer::parse(rest).is_ok() {
            out.push(Piece {
                offset: pos,
                len: TRAILER_BYTES,
                index: None,
            });
            pos += TRAILER_BYTES;
        } else if let Ok(frame) = parse_frame(rest) {
            out.push(Piece {
                offset: pos,
                len: frame.len,
                index: Some(index),
            });
            index += 1;
            pos += frame.len;
        } else {
            return out;
        }
    }
}

/// A group's commit trailer: the group's records are the `bytes` before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Bytes of the group's records (from its first record to the trailer).
    pub bytes: u32,
    pub records: u32,
    /// CRC32C of those bytes.
    pub crc: u32,
}

impl Trailer {
    /// The trailer of the group `records` framed in `group`.
    pub fn of(group: &[u8], records: usize) -> Trailer {
        Trailer {
            // A group is at most one batch of at most `max_batch_bytes` (far below 4 GiB).
            bytes: group.len() as u32,
            records: records as u32,
            crc: crc32c::crc32c(group),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&COMMIT_MARKER);
        out.extend_from_slice(&self.bytes.to_be_bytes());
        out.extend_from_slice(&self.records.to_be_bytes());
        out.extend_from_slice(&self.crc.to_be_bytes());
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// Parses the trailer at the start of `buf` (which starts with the marker).
    pub fn parse(buf: &[u8]) -> Result<Trailer, FrameError> {
        let Some(t) = buf.get(..TRAILER_BYTES) else {
            return Err(FrameError::Truncated {
                have: buf.len(),
                need: Some(TRAILER_BYTES),
            });
        };
        let word = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        if t[..4] != COMMIT_MARKER || word(16) != crc32c::crc32c(&t[..16]) {
            return Err(FrameError::BadTrailer);
        }
        Ok(Trailer {
            bytes: word(4),
            records: word(8),
            crc: word(12),
        })
    }
}

/// Appends one framed record to `out`.
pub fn encode_frame(out: &mut Vec<u8>, body: &[u8], chain: &Hash, end_of_batch: bool) {
    let start = out.len();
    // Bodies are at most MAX_ENTRY_BYTES (checked when encoded), so the length fits in u32.
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.push(if end_of_batch { FLAG_END_OF_BATCH } else { 0 });
    out.extend_from_slice(&[0, 0, 0]);
    let header_crc = crc32c::crc32c(&out[start..start + 8]);
    out.extend_from_slice(&header_crc.to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(chain);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A parsed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The entry's canonical bytes.
    pub body: &'a [u8],
    /// The chain hash stored after the entry.
    pub chain: Hash,
    pub end_of_batch: bool,
    /// Bytes the whole frame takes.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes end inside the frame: `have` of `need` bytes are there (`need` is only known
    /// once the header is complete and valid).
    #[error("the record is cut short: {have} of {} bytes", need.map_or("at least 12".into(), |n| n.to_string()))]
    Truncated { have: usize, need: Option<usize> },
    #[error("the record header's checksum does not match")]
    BadHeader,
    #[error("the record header declares {0} entry bytes (allowed: 1 to {MAX_STORED_ENTRY_BYTES})")]
    BadLength(u32),
    #[error("the record header has unknown flags 0x{0:02x}")]
    BadFlags(u8),
    #[error("the record's checksum does not match")]
    BadChecksum,
    #[error("the group's commit trailer is damaged")]
    BadTrailer,
}

/// Parses the frame at the start of `buf`.
pub fn parse_frame(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    let Some(h) = buf.get(..FRAME_HEADER_BYTES) else {
        return Err(FrameError::Truncated {
            have: buf.len(),
            need: None,
        });
    };
    let header_crc = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    if header_crc != crc32c::crc32c(&h[..8]) {
        return Err(FrameError::BadHeader);
    }
    let body_len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    if body_len == 0 || body_len as usize > MAX_STORED_ENTRY_BYTES {
        return Err(FrameError::BadLength(body_len));
    }
    let flags = h[4];
    if flags & !FLAG_END_OF_BATCH != 0 || h[5..8] != [0, 0, 0] {
        return Err(FrameError::BadFlags(flags));
    }
    let body_len = body_len as usize;
    let len = FRAME_OVERHEAD + body_len;
    let Some(frame) = buf.get(..len) else {
        return Err(FrameError::Truncated {
            have: buf.len(),
            need: Some(len),
        });
    };
    let crc_at = len - 4;
    let crc = u32::from_be_bytes([
        frame[crc_at],
        frame[crc_at + 1],
        frame[crc_at + 2],
        frame[crc_at + 3],
    ]);
    if crc != crc32c::crc32c(&frame[..crc_at]) {
        return Err(FrameError::BadChecksum);
    }
    let body = &frame[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + body_len];
    let mut chain = [0u8; 32];
    chain.copy_from_slice(&frame[FRAME_HEADER_BYTES + body_len..crc_at]);
    Ok(Frame {
        body,
        chain,
        end_of_batch: flags & FLAG_END_OF_BATCH != 0,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trip_and_rejections() {
        let h = segment_header(42);
        let v2 = SegmentHeader {
            first: 42,
            version: 2,
        };
        assert_eq!(parse_segment_header(&h), Ok(v2));
        let v1 = segment_header_version(42, 1);
        assert_eq!(
            parse_segment_header(&v1),
            Ok(SegmentHeader { version: 1, ..v2 })
        );
        check(&h[..10], Err(HeaderError::Short(10)));
        let mut bad = h;
        bad[0] = b'X';
        check(&bad, Err(HeaderError::BadMagic));
        let newer = segment_header_version(42, 3);
        check(&newer, Err(HeaderError::UnknownVersion(3)));
        let mut flipped = h;
        flipped[15] ^= 1;
        check(&flipped, Err(HeaderError::BadChecksum));

        fn check(input: &[u8], expect: Result<SegmentHeader, HeaderError>) {
            assert_eq!(parse_segment_header(input), expect);
        }
    }

    #[test]
    fn frame_layout() {
        let mut out = Vec::new();
        encode_frame(&mut out, b"abc", &[9u8; 32], true);
        assert_eq!(out.len(), FRAME_OVERHEAD + 3);
        assert_eq!(hex::encode(&out[..8]), "0000000301000000");
        assert_eq!(&out[12..15], b"abc");
        let f = parse_frame(&out).unwrap();
        assert_eq!(
            (f.body, f.chain, f.end_of_batch, f.len),
            (&b"abc"[..], [9u8; 32], true, 51)
        );
    }

    #[test]
    fn trailer_layout_and_damage() {
        let mut out = Vec::new();
        let t = Trailer::of(b"records", 3);
        t.encode(&mut out);
        assert_eq!(out.len(), TRAILER_BYTES);
        assert_eq!(hex::encode(&out[..12]), "ffffffff0000000700000003");
        assert_eq!(Trailer::parse(&out), Ok(t));
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Trailer::parse(&bad).is_err(), "bit {bit}");
        }
        assert!(matches!(
            Trailer::parse(&out[..19]),
            Err(FrameError::Truncated { .. })
        ));
    }

    proptest! {
        /// Any single flipped bit in a frame is caught; any cut is reported as truncation.
        #[test]
        fn frames_detect_damage(body in proptest::collection::vec(any::<u8>(), 1..300),
                                bit in 0usize..10_000, cut in 0usize..10_000, end: bool) {
            let mut out = Vec::new();
            encode_frame(&mut out, &body, &[7u8; 32], end);
            let bit = bit % (out.len() * 8);
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(parse_frame(&bad).is_err());
            let cut = cut % out.len();
            let is_truncated = matches!(parse_frame(&out[..cut]), Err(FrameError::Truncated { .. }));
            prop_assert!(is_truncated);
        }

        /// Arbitrary bytes never panic the parsers.
        #[test]
        fn arbitrary_bytes_are_safe(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_frame(&bytes);
            let _ = parse_segment_header(&bytes);
            let _ = Trailer::parse(&bytes);
        }
    }
}
