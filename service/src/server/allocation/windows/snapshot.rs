//! Snapshots of a domain's windows: a hint that saves reading the whole log on start.
//!
//! A snapshot is the windows' state as of the log's first `covers` entries, saved when the
//! server stops gracefully (nothing is then waiting to be made durable): its SHA-256 is logged
//! first (`WindowsSaved`, at entry `covers` or just after), then the file is written. It is read
//! only if that decision is in this log and the file's digest is the logged one, so a file
//! changed by hand, torn, or copied from another folder is not trusted; the entries after it
//! are then read as usual. Anything else is ignored with a warning and the windows are read from
//! the whole log, which stays the only source of truth.
//!
//! ```text
//! "allot windows snapshot v1\n"
//! u8   domain (2 fairs, 3 schools)
//! u64  covers: the entries the state includes
//! body: JSON, the windows (items with their entries, counts, commitment, runs, acceptances)
//! ```
//!
//! The digest is SHA-256 of the whole file.

use std::path::PathBuf;
use std::sync::Arc;

use allot_engine::allocation::Closed;
use allot_engine::fs::{read_optional, write_hint};
use allot_engine::log::decision::WindowsSaved;
use allot_engine::log::{Decision, Digest, Log, Record, Timestamp};
use foldhash::{HashMap, HashMapExt as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Acceptance, Held, Window, WindowKind, WindowMap};

const MAGIC: &[u8] = b"allot windows snapshot v1\n";
const HEADER: usize = MAGIC.len() + 1 + 8;
/// How far after `covers` its `WindowsSaved` may be (the other domain's comes first at a stop).
const SAVED_WITHIN: u64 = 8;

/// (key, first entry, later entries, the item unless withdrawn).
type ItemRow<S, I> = (S, u64, Vec<u64>, Option<I>);

/// A window, written with borrowed strings and items (`S = &str`, `I = &Item`), read owned.
#[derive(Serialize, Deserialize)]
struct WindowRow<S, I> {
    name: S,
    counts: [u64; 3],
    /// (set digest, applications, entry).
    closed: Option<([u8; 32], u64, u64)>,
    runs: Vec<(u64, [u8; 32])>,
    accepted: Vec<(S, Vec<Acceptance>)>,
    items: Vec<ItemRow<S, I>>,
}

fn path<A: WindowKind>(log: &Log) -> (allot_engine::fs::DataDir, PathBuf) {
    let data = log.data_dir();
    let name = format!("{}-windows.snapshot", A::DOMAIN.name());
    let path = data.join(name.to_lowercase());
    (data, path)
}

/// Writes the snapshot of `windows`, which hold exactly the log's first `covers` entries; not
/// when a step is still waiting for its entry.
pub(super) fn save<A: WindowKind>(
    log: &Log,
    windows: &WindowMap<A::Item>,
    covers: u64,
) -> Result<(), String> {
    if covers == 0 {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(windows.len());
    for (name, w) in windows {
        let mut items = Vec::with_capacity(w.items.len());
        for (key, held) in &w.items {
            let Some(first) = held.first else {
                return Err(format!("item {key} of window {name} is not durable yet"));
            };
            let later: Option<Vec<u64>> = held.later.iter().copied().collect();
            let later = later.ok_or_else(|| format!("a step of {key} is not durable yet"))?;
            items.push((key.as_str(), first, later, held.item.as_deref()));
        }
        rows.push(WindowRow {
            name: name.as_str(),
            counts: w.counts,
            closed: w.closed.map(|c| (c.set_digest.0, c.applications, c.index)),
            runs: w.runs.clone(),
            accepted: (w.accepted.iter())
                .map(|(id, a)| (id.as_str(), a.clone()))
                .collect(),
            items,
        });
    }
    let body = serde_json::to_vec(&rows).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.push(A::DOMAIN.code());
    bytes.extend_from_slice(&covers.to_be_bytes());
    bytes.extend_from_slice(&body);
    let saved = WindowsSaved {
        domain: A::DOMAIN,
        covers,
        digest: Digest(Sha256::digest(&bytes).into()),
    };
    let record = Record::new(Timestamp::now(), "allot", "windows", saved);
    log.append_batch(&[record]).map_err(|e| e.to_string())?;
    let (data, path) = path::<A>(log);
    write_hint(&**data.fs(), &path, &bytes).map_err(|e| e.to_string())
}

/// The windows of the latest snapshot that belongs to this log, and the entries it covers.
pub(super) fn load<A: WindowKind>(log: &Log) -> Option<(WindowMap<A::Item>, u64)> {
    let (data, path) = path::<A>(log);
    let bytes = match read_optional(&**data.fs(), &path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the windows snapshot does not read");
            return None;
        }
    };
    match parse::<A>(log, &bytes) {
        Ok(loaded) => Some(loaded),
        Err(why) => {
            tracing::warn!(path = %path.display(), why, "the windows snapshot is ignored");
            None
        }
    }
}

fn parse<A: WindowKind>(log: &Log, bytes: &[u8]) -> Result<(WindowMap<A::Item>, u64), String> {
    if bytes.len() < HEADER || !bytes.starts_with(MAGIC) {
        return Err("not a windows snapshot of this version".into());
    }
    let at = MAGIC.len();
    if bytes[at] != A::DOMAIN.code() {
        return Err("a snapshot of another domain".into());
    }
    let covers = u64::from_be_bytes(bytes[at + 1..at + 9].try_into().expect("8 bytes"));
    let digest = Digest(Sha256::digest(bytes).into());
    let logged = (covers..log.size().min(covers.saturating_add(SAVED_WITHIN))).any(|index| {
        matches!(
            log.entry(index).map(|e| e.record.decision),
            Ok(Decision::WindowsSaved(s)) if s.domain == A::DOMAIN && s.covers == covers
                && s.digest == digest
        )
    });
    if !logged {
        return Err(format!(
            "no WindowsSaved decision of this log at entry {covers} names its digest"
        ));
    }
    let body = &bytes[HEADER..];
    let rows: Vec<WindowRow<String, A::Item>> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut windows = HashMap::with_capacity(rows.len());
    for row in rows {
        let mut items = HashMap::with_capacity(row.items.len());
        for (key, first, later, item) in row.items {
            let held = Held {
                item: item.map(Arc::new),
                first: Some(first),
                later: later.into_iter().map(Some).collect(),
            };
            items.insert(key, held);
        }
        let w = Window {
            items,
            counts: row.counts,
            closed: row.closed.map(|(digest, applications, index)| Closed {
                set_digest: Digest(digest),
                applications,
                index,
            }),
            runs: row.runs,
            accepted: row.accepted.into_iter().collect(),
        };
        windows.insert(row.name, w);
    }
    Ok((windows, covers))
}

#[cfg(test)]
mod tests {
    use allot_engine::fair::Fairs;
    use allot_engine::log::decision::{ApplicationSubmitted, ApplicationWithdrawn, Domain};
    use allot_engine::log::{Bytes, LogOptions};

    use super::super::read_windows;
    use super::*;

    /// Every window as plain data, keys sorted: what two states are compared by.
    fn dump<I: Serialize>(windows: &WindowMap<I>) -> String {
        let mut names: Vec<&String> = windows.keys().collect();
        names.sort();
        let mut out = String::new();
        for name in names {
            let w = &windows[name];
            let mut items: Vec<_> = (w.items.iter())
                .map(|(k, h)| {
                    (
                        k,
                        h.first,
                        &h.later,
                        serde_json::to_string(&h.item.as_deref()),
                    )
                })
                .map(|(k, f, l, i)| format!("{k} {f:?} {l:?} {}", i.unwrap()))
                .collect();
            items.sort();
            let mut accepted: Vec<_> = w.accepted.iter().collect();
            accepted.sort();
            out += &format!(
                "{name} {:?} {:?} {:?} {accepted:?}\n{}\n",
                w.counts,
                w.closed,
                w.runs,
                items.join("\n")
            );
        }
        out
    }

    fn apply(log: &Log, k: u32, withdraw: bool) {
        let key = format!("applicant:A{k}");
        let decision: Decision = if withdraw {
            ApplicationWithdrawn {
                domain: Domain::Fairs,
                window: "w".into(),
            }
            .into()
        } else {
            let item = format!(
                r#"{{"applicant":{{"id":"A{k}","category":"food","tier":{},"lottery":{k},"choices":["F1"]}}}}"#,
                k % 3
            );
            ApplicationSubmitted {
                domain: Domain::Fairs,
                window: "w".into(),
                item: Bytes(item.into_bytes()),
            }
            .into()
        };
        let record = Record::new(Timestamp::now(), "t", key, decision);
        log.append_batch(&[record]).unwrap();
    }

    /// A saved state reads back equal; with entries after it, reading from it equals reading
    /// the whole log; a changed file, or one copied from another log, is not read.
    #[test]
    fn snapshots_read_back_only_when_their_digest_is_logged() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        for k in 0..40 {
            apply(&log, k % 30, k >= 30 && k % 2 == 0);
        }
        let before = read_windows::<Fairs>(&log).unwrap();
        save::<Fairs>(&log, &before, log.size()).unwrap();
        let (loaded, covers) = load::<Fairs>(&log).expect("the snapshot is read");
        assert_eq!(covers, 40);
        assert_eq!(dump(&loaded), dump(&before));

        for k in 40..60 {
            apply(&log, k % 35, k % 3 == 0);
        }
        let from_snapshot = dump(&read_windows::<Fairs>(&log).unwrap());
        let (_, file) = path::<Fairs>(&log);
        let saved = std::fs::read(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        let whole = dump(&read_windows::<Fairs>(&log).unwrap());
        assert_eq!(from_snapshot, whole);

        // An applicant's tier changed (still a valid snapshot but for its digest): not read.
        let mut changed = saved.clone();
        let at = (changed.windows(8))
            .position(|w| w == b"\"tier\":0")
            .unwrap();
        changed[at + 7] = b'2';
        std::fs::write(&file, &changed).unwrap();
        assert!(load::<Fairs>(&log).is_none());
        assert_eq!(dump(&read_windows::<Fairs>(&log).unwrap()), whole);

        // The same file in another log with the same entries but no `WindowsSaved`.
        let other = tempfile::tempdir().unwrap();
        let other_log = Log::open(other.path(), LogOptions::default()).unwrap();
        for k in 0..41 {
            apply(&other_log, k % 30, k >= 30 && k % 2 == 0);
        }
        std::fs::write(path::<Fairs>(&other_log).1, &saved).unwrap();
        assert!(load::<Fairs>(&other_log).is_none());
    }
}
