//! Log entries: what a domain submits ([`Record`]), what the log stores ([`Entry`]) and the
//! versioned canonical encoding of an entry, whose bytes are the Merkle tree's leaf data.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::codec::{Canonical, DecodeError, Problem, Reader, Writer};
use super::decision::{Decision, DecisionKind};

/// The entry encoding this build writes and reads.
pub const ENTRY_VERSION: u8 = 1;

/// The largest canonical entry, in bytes; bigger ones are refused before anything is logged.
/// c2sp.org/tlog-tiles entry bundles prefix each entry with a 16-bit length, so an entry that
/// anyone can fetch from the tiles is at most 65,535 bytes. Bulk data (run inputs, results,
/// snapshots) goes to blobs named by their digest, which the entry holds.
pub const MAX_ENTRY_BYTES: usize = 65_535;

/// The largest record body a segment may hold: logs written before entries were capped at
/// 65,535 bytes hold entries up to 16 MiB, and stay readable.
pub const MAX_STORED_ENTRY_BYTES: usize = 16 << 20;

/// Byte offset of the index in an encoded entry (after the version byte).
pub(crate) const INDEX_OFFSET: usize = 1;

/// A point in time: microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_unix_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    pub const fn unix_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (POSIX time, as C2SP cosignatures write it).
    pub const fn unix_seconds(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The current time (the Unix epoch if the clock is before it).
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// RFC 3339 in UTC with microseconds, e.g. `2025-03-01T09:30:00.000000Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Beyond jiff's range (year 9999) only a corrupt entry goes: shown as its number.
        match i64::try_from(self.0)
            .ok()
            .and_then(|micros| jiff::Timestamp::from_microsecond(micros).ok())
        {
            Some(t) => write!(f, "{}", t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ")),
            None => write!(f, "@{}us", self.0),
        }
    }
}

impl Canonical for Timestamp {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.u64(field).map(Timestamp)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// A decision as a domain submits it; the log gives it its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the decision was made (the caller's clock; the log does not reorder by time).
    pub time: Timestamp,
    /// Who asked: a client, an operator, or allot itself (e.g. `umias`, `fair-admin:ivanova`).
    pub actor: String,
    /// Whom or what the decision is about; each decision kind says which.
    pub subject: String,
    pub decision: Decision,
}

impl Record {
    pub fn new(
        time: Timestamp,
        actor: impl Into<String>,
        subject: impl Into<String>,
        decision: impl Into<Decision>,
    ) -> Self {
        Record {
            time,
            actor: actor.into(),
            subject: subject.into(),
            decision: decision.into(),
        }
    }

    pub fn kind(&self) -> DecisionKind {
        self.decision.kind()
    }

    /// The canonical bytes of this record as entry `index`.
    pub fn encode(&self, index: u64) -> Result<Vec<u8>, EntryTooLarge> {
        let mut w = Writer::with_capacity(64 + self.actor.len() + self.subject.len());
        w.u8(ENTRY_VERSION);
        w.u64(index);
        self.time.encode(&mut w);
        w.u16(self.decision.kind().0);
        self.actor.encode(&mut w);
        self.subject.encode(&mut w);
        self.decision.encode_payload(&mut w);
        match w.len() {
            size if size > MAX_ENTRY_BYTES => Err(EntryTooLarge { size }),
            _ => Ok(w.into_bytes()),
        }
    }
}

/// An entry's encoding would exceed [`MAX_ENTRY_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the entry's encoding is {size} bytes, above the limit of {MAX_ENTRY_BYTES}")]
pub struct EntryTooLarge {
    pub size: usize,
}

/// A logged decision: its index and the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub record: Record,
}

impl Entry {
    pub fn encode(&self) -> Result<Vec<u8>, EntryTooLarge> {
        self.record.encode(self.index)
    }

    /// Decodes canonical entry bytes; anything else (another version, an unknown kind, a
    /// non-canonical field, trailing bytes) is an error naming the byte and the field.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != ENTRY_VERSION {
            return Err(DecodeError {
                offset: 0,
                field: "version",
                problem: Problem::UnknownVersion {
                    found: version,
                    supported: ENTRY_VERSION,
                },
            });
        }
        let index = r.u64("index")?;
        let time = Timestamp::decode(&mut r, "time")?;
        let kind = r.u16("kind")?;
        let actor = String::decode(&mut r, "actor")?;
        let subject = String::decode(&mut r, "subject")?;
        let decision = Decision::decode_payload(kind, &mut r)?;
        r.finish(decision.name())?;
        Ok(Entry {
            index,
            record: Record {
                time,
                actor,
                subject,
                decision,
            },
        })
    }

    /// The index stored in entry bytes, without decoding the rest (for the segment scanner).
    pub(crate) fn peek_index(bytes: &[u8]) -> Option<u64> {
        let raw = bytes.get(INDEX_OFFSET..INDEX_OFFSET + 8)?;
        Some(u64::from_be_bytes(raw.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339() {
        check(0, "1970-01-01T00:00:00.000000Z");
        check(951_782_400_000_001, "2000-02-29T00:00:00.000001Z");
        check(1_740_821_400_123_456, "2025-03-01T09:30:00.123456Z");
        check(4_102_444_799_999_999, "2099-12-31T23:59:59.999999Z");

        fn check(micros: u64, expect: &str) {
            assert_eq!(Timestamp::from_unix_micros(micros).to_string(), expect);
        }
    }
}
