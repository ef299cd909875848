//! A transparency-log witness (c2sp.org/tlog-witness): it checks that each checkpoint a log
//! submits is consistent with the latest one it cosigned for that log, records the new one
//! durably, and only then answers with a timestamped v1 cosignature (c2sp.org/tlog-cosignature).
//!
//! It works for any log in the C2SP formats, not only allot's: a log is known by its origin line
//! and trusted by its verifier key(s). Its state is one small file per log in `DIR/state/`,
//! named by the SHA-256 of the origin, holding the latest cosigned checkpoint note; it is
//! replaced atomically (temporary file, fsync, rename, folder fsync) while the log's lock is
//! held, so a crash leaves the old or the new checkpoint and two requests can never both pass
//! the check against the same old size (the race the spec describes).
//!
//! The HTTP face (`allot witness serve`) lives in the service crate; this module does no
//! network I/O.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::fs::{DataDir, FsError, SyncPoint, create_dirs, read_optional, write_atomic};
use crate::log::merkle::{Hash, empty_root};
use crate::log::note::{Checkpoint, KeyKind, SigningKey, VerifierKey, split_note};
use crate::log::proof::verify_consistency;

/// The spec's limit on consistency proof lines.
pub const MAX_PROOF_LINES: usize = 63;
/// The content type of a 409 answer's body (the witness's size).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why a witness refused a checkpoint; each maps to the HTTP status the spec names.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("unknown log origin {origin:?}")]
    UnknownLog { origin: String },
    #[error("no signature by a trusted key of {origin:?} verifies")]
    Forbidden { origin: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The witness's latest size for the log is `size` (the old size did not match, or the
    /// same size came with another root).
    #[error("the witness's latest checkpoint of this log has size {size}{}", if *.same_size { " and another root hash" } else { "" })]
    Conflict { size: u64, same_size: bool },
    #[error("the consistency proof from size {old} to {new} does not verify: {reason}")]
    BadProof { old: u64, new: u64, reason: String },
    #[error("witness storage: {0}")]
    Storage(#[from] FsError),
    #[error("witness state {}: {reason}", path.display())]
    BadState { path: PathBuf, reason: String },
}

impl WitnessError {
    /// The HTTP status code c2sp.org/tlog-witness gives this refusal.
    pub fn status(&self) -> u16 {
        match self {
            WitnessError::UnknownLog { .. } => 404,
            WitnessError::Forbidden { .. } => 403,
            WitnessError::BadRequest(_) => 400,
            WitnessError::Conflict { .. } => 409,
            WitnessError::BadProof { .. } => 422,
            WitnessError::Storage(_) | WitnessError::BadState { .. } => 500,
        }
    }
}

/// An `add-checkpoint` request body, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint<'a> {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub note: &'a str,
}

impl<'a> AddCheckpoint<'a> {
    /// The request body: `old <size>`, the proof lines, a blank line, the note.
    pub fn to_body(old_size: u64, proof: &[Hash], note: &str) -> String {
        let mut body = format!("old {old_size}\n");
        for hash in proof {
            body.push_str(&B64.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(note);
        body
    }

    pub fn parse(body: &'a [u8]) -> Result<AddCheckpoint<'a>, WitnessError> {
        let bad = |why: String| WitnessError::BadRequest(why);
        let body = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
        let (first, mut rest) = body
            .split_once('\n')
            .ok_or_else(|| bad("no old size line".into()))?;
        let old = first
            .strip_prefix("old ")
            .ok_or_else(|| bad("the first line is not `old <size>`".into()))?;
        let old_size = parse_decimal(old).ok_or_else(|| {
            bad(format!(
                "old size {:?} is not a decimal number",
                crate::input::clip(old)
            ))
        })?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad(format!(
                    "more than {MAX_PROOF_LINES} consistency proof lines"
                )));
            }
            let hash: Hash = B64
                .decode(line)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| {
                    bad(format!(
                        "proof line {} is not a base64 SHA-256 hash",
                        proof.len() + 2
                    ))
                })?;
            proof.push(hash);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: rest,
        })
    }
}

/// A decimal with no leading zeros (but `0`), as the C2SP specs write sizes.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// A log a witness knows: its origin line and a key it signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    pub origin: String,
    pub key: VerifierKey,
}

impl LogKey {
    /// A log whose origin is its key's name (allot's logs, most C2SP logs).
    pub fn named_by_key(key: &VerifierKey) -> LogKey {
        LogKey {
            origin: key.name().to_owned(),
            key: key.clone(),
        }
    }

    /// `KEY` (the origin is the key's name) or `ORIGIN KEY` (the key is the last word: keys
    /// hold no spaces, origins may).
    pub fn parse(text: &str) -> Result<LogKey, crate::log::NoteError> {
        let text = text.trim();
        match text.rsplit_once(' ') {
            Some((origin, key)) if !origin.trim().is_empty() => Ok(LogKey {
                origin: origin.trim().to_owned(),
                key: VerifierKey::parse(key)?,
            }),
            _ => VerifierKey::parse(text).map(|key| LogKey::named_by_key(&key)),
        }
    }
}

/// What the witness last cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub size: u64,
    pub root: Hash,
    /// The checkpoint note as the log submitted it.
    pub note: String,
}

#[derive(Debug)]
struct KnownLog {
    keys: Vec<VerifierKey>,
    state_path: PathBuf,
    /// Held across check and persist: the spec's atomicity.
    seen: Mutex<Option<Seen>>,
}

/// A witness: its cosigning key, the logs it knows, and its state folder.
#[derive(Debug)]
pub struct Witness {
    key: SigningKey,
    logs: HashMap<String, Arc<KnownLog>>,
    dir: DataDir,
}

impl Witness {
    /// The key file in a witness's folder.
    pub fn key_path(dir: &Path) -> PathBuf {
        dir.join("witness.key")
    }

    /// Opens the witness in `dir` (creating its cosigning key, named `name`, on first start) for
    /// the logs whose verifier keys are given, each log's origin being its key's name, and
    /// loads each log's state.
    pub fn open(
        dir: impl Into<DataDir>,
        name: &str,
        log_keys: &[VerifierKey],
    ) -> Result<Witness, WitnessError> {
        let logs: Vec<LogKey> = log_keys.iter().map(LogKey::named_by_key).collect();
        Self::open_logs(dir, name, &logs)
    }

    /// [`Witness::open`] for logs whose origin may differ from their key's name (Go's checksum
    /// database signs `go.sum database tree` with the key `sum.golang.org`).
    pub fn open_logs(
        dir: impl Into<DataDir>,
        name: &str,
        log_keys: &[LogKey],
    ) -> Result<Witness, WitnessError> {
        let dir = dir.into();
        let fs = dir.fs().clone();
        create_dirs(&*fs, &dir.join("state"))?;
        let key_path = Self::key_path(dir.path());
        let bad = |path: &Path, reason: String| WitnessError::BadState {
            path: path.to_owned(),
            reason,
        };
        let key = match read_optional(&*fs, &key_path).map_err(FsError::at("reading", &key_path))? {
            Some(bytes) => {
                let key = SigningKey::parse(&String::from_utf8_lossy(&bytes))
                    .map_err(|e| bad(&key_path, e.to_string()))?;
                if key.kind() != KeyKind::CosignatureV1 {
                    return Err(bad(&key_path, "not a cosigning (type 4) key".into()));
                }
                key
            }
            None => {
                let key = SigningKey::generate_kind(name, KeyKind::CosignatureV1)
                    .map_err(|e| bad(&key_path, e.to_string()))?;
                let text = format!("{}\n", key.to_text());
                write_atomic(
                    &*fs,
                    &key_path,
                    text.as_bytes(),
                    0o600,
                    SyncPoint::WitnessKey,
                    Some(SyncPoint::WitnessKeyName),
                )?;
                key
            }
        };
        let mut logs: HashMap<String, KnownLog> = HashMap::new();
        for LogKey {
            origin,
            key: log_key,
        } in log_keys
        {
            if log_key.kind() != KeyKind::Ed25519 {
                return Err(WitnessError::BadRequest(format!(
                    "{} is a cosigning key, not a log's key",
                    log_key.name()
                )));
            }
            let origin = origin.clone();
            if let Some(known) = logs.get_mut(&origin) {
                known.keys.push(log_key.clone());
                continue;
            }
            let state_path = dir.join("state").join(state_file_name(&origin));
            let seen = load_seen(&dir, &state_path, &origin)?;
            logs.insert(
                origin,
                KnownLog {
                    keys: vec![log_key.clone()],
                    state_path,
                    seen: Mutex::new(seen),
                },
            );
        }
        Ok(Witness {
            key,
            logs: logs.into_iter().map(|(o, l)| (o, Arc::new(l))).collect(),
            dir,
        })
    }

    /// The witness's verifier key (type 4), for logs' and clients' policies.
    pub fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }

    /// What the witness last cosigned for `origin`.
    pub fn seen(&self, origin: &str) -> Option<Seen> {
        let log = self.logs.get(origin)?;
        lock(&log.seen).clone()
    }

    /// The `add-checkpoint` call: checks the request, records the checkpoint durably and
    /// returns the cosignature line(s), timestamped `now` (POSIX seconds).
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let split =
            split_note(request.note).map_err(|e| WitnessError::BadRequest(e.to_string()))?;
        let checkpoint = Checkpoint::parse_body(split.text)
            .map_err(|e| WitnessError::BadRequest(e.to_string()))?;
        let origin = &checkpoint.origin;
        let log = self
            .logs
            .get(origin)
            .ok_or_else(|| WitnessError::UnknownLog {
                origin: crate::input::clip(origin),
            })?;
        // Signatures by keys the witness does not trust are ignored; one trusted one must verify.
        let signed = split.signatures.iter().any(|(name, raw)| {
            log.keys
                .iter()
                .any(|k| k.claims(name, raw) && k.verify(split.text, raw).is_ok())
        });
        if !signed {
            return Err(WitnessError::Forbidden {
                origin: origin.clone(),
            });
        }
        let (old, size) = (request.old_size, checkpoint.size);
        if old > size {
            return Err(WitnessError::BadRequest(format!(
                "old size {old} is beyond the checkpoint's size {size}"
            )));
        }
        let mut seen = lock(&log.seen);
        let (latest, latest_root) = seen
            .as_ref()
            .map_or((0, empty_root()), |s| (s.size, s.root));
        if old != latest {
            return Err(WitnessError::Conflict {
                size: latest,
                same_size: false,
            });
        }
        if old == size {
            if checkpoint.root != latest_root {
                return Err(WitnessError::Conflict {
                    size: latest,
                    same_size: true,
                });
            }
            if !request.proof.is_empty() {
                return Err(WitnessError::BadProof {
                    old,
                    new: size,
                    reason: "the sizes are equal, so the proof must be empty".into(),
                });
            }
        } else if old == 0 {
            if !request.proof.is_empty() {
                return Err(WitnessError::BadRequest(
                    "the consistency proof must be empty when the old size is 0".into(),
                ));
            }
        } else {
            verify_consistency(old, size, &latest_root, &checkpoint.root, &request.proof).map_err(
                |e| WitnessError::BadProof {
                    old,
                    new: size,
                    reason: e.to_string(),
                },
            )?;
        }
        let cosignature = self
            .key
            .cosign(split.text, now)
            .map_err(|e| WitnessError::BadRequest(e.to_string()))?;
        if old != size || seen.is_none() {
            write_atomic(
                &**self.dir.fs(),
                &log.state_path,
                request.note.as_bytes(),
                0o644,
                SyncPoint::WitnessState,
                Some(SyncPoint::WitnessStateName),
            )?;
            *seen = Some(Seen {
                size,
                root: checkpoint.root,
                note: request.note.to_owned(),
            });
        }
        Ok(cosignature)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A state file's name: the SHA-256 of the origin, hex (origins may hold any character).
fn state_file_name(origin: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(origin.as_bytes()))
}

fn load_seen(dir: &DataDir, path: &Path, origin: &str) -> Result<Option<Seen>, WitnessError> {
    let bad = |reason: String| WitnessError::BadState {
        path: path.to_owned(),
        reason,
    };
    let Some(bytes) = read_optional(&**dir.fs(), path).map_err(FsError::at("reading", path))?
    else {
        return Ok(None);
    };
    let note = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let split = split_note(&note).map_err(|e| bad(e.to_string()))?;
    let checkpoint = Checkpoint::parse_body(split.text).map_err(|e| bad(e.to_string()))?;
    if checkpoint.origin != origin {
        return Err(bad(format!(
            "holds a checkpoint of {:?}, not {origin:?}",
            checkpoint.origin
        )));
    }
    Ok(Some(Seen {
        size: checkpoint.size,
        root: checkpoint.root,
        note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::merkle::{self, MemTree};

    /// A log of `n` leaves built with the engine's Merkle code, its key, and its checkpoints.
    struct TestLog {
        key: SigningKey,
        leaves: Vec<Hash>,
    }

    impl TestLog {
        fn new(name: &str, seed: u8) -> TestLog {
            TestLog {
                key: SigningKey::from_seed(name, [seed; 32]).unwrap(),
                leaves: Vec::new(),
            }
        }

        fn grow(&mut self, n: usize, salt: u8) {
            for _ in 0..n {
                let data = [
                    salt,
                    self.leaves.len() as u8,
                    (self.leaves.len() >> 8) as u8,
                ];
                self.leaves.push(merkle::leaf_hash(&data));
            }
        }

        fn tree(&self, size: usize) -> MemTree {
            let mut tree = MemTree::new();
            for leaf in &self.leaves[..size] {
                tree.push(*leaf);
            }
            tree
        }

        fn root(&self, size: usize) -> Hash {
            self.tree(size).root()
        }

        fn proof(&self, old: usize, size: usize) -> Vec<Hash> {
            merkle::consistency_path(&self.tree(size), old as u64, size as u64).unwrap()
        }

        fn note(&self, size: usize) -> String {
            let body = Checkpoint {
                origin: self.key.name().to_owned(),
                size: size as u64,
                root: self.root(size),
                extensions: Vec::new(),
            }
            .body();
            self.key.sign_note(&body).unwrap()
        }

        fn body(&self, old: usize, size: usize) -> String {
            AddCheckpoint::to_body(old as u64, &self.proof(old, size), &self.note(size))
        }
    }

    fn check(witness: &Witness, body: &str, expect: Result<(), u16>) {
        let got = witness.add_checkpoint(body.as_bytes(), 1_700_000_000);
        match (&got, expect) {
            (Ok(line), Ok(())) => {
                let note = body.split_once("\n\n").unwrap().1;
                let cosigned = format!("{note}{line}");
                witness.verifier().open(&cosigned).unwrap();
            }
            (Err(e), Err(status)) => assert_eq!(e.status(), status, "{e}"),
            _ => panic!("expected {expect:?}, got {got:?}"),
        }
    }

    #[test]
    fn add_checkpoint_follows_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TestLog::new("example.com/log", 1);
        let stranger = TestLog::new("example.com/other", 2);
        let mut impostor = TestLog::new("example.com/log", 3);
        impostor.grow(5, 0);
        let witness = Witness::open(dir.path(), "w.example/1", &[log.key.verifier()]).unwrap();
        log.grow(10, 0);
        check(&witness, &log.body(0, 5), Ok(()));
        check(&witness, &log.body(0, 7), Err(409));
        check(&witness, &stranger.body(0, 0), Err(404));
        check(&witness, &impostor.body(5, 5), Err(403));
        check(&witness, &log.body(7, 5), Err(400));
        check(&witness, "old 05\n\n", Err(400));
        check(&witness, &log.body(5, 5), Ok(()));
        check(&witness, &log.body(5, 10), Ok(()));
        // A proof for the wrong sizes, and a fork of the same size.
        let wrong = log.body(10, 10).replace(
            "old 10\n",
            "old 10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        );
        check(&witness, &wrong, Err(422));
        let mut fork = TestLog::new("example.com/log", 1);
        fork.grow(3, 0);
        fork.grow(9, 9);
        check(&witness, &fork.body(10, 10), Err(409));
        let forged_proof = AddCheckpoint::to_body(10, &fork.proof(10, 12), &fork.note(12));
        check(&witness, &forged_proof, Err(422));
        // The state survives a restart.
        drop(witness);
        let witness = Witness::open(dir.path(), "ignored", &[log.key.verifier()]).unwrap();
        assert_eq!(witness.seen("example.com/log").unwrap().size, 10);
        log.grow(100, 1);
        check(&witness, &log.body(10, 110), Ok(()));
    }

    /// c2sp.org/tlog-witness's example request body.
    #[test]
    fn the_spec_example_request_parses() {
        let note = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\
                    \u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
                    \u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";
        let body = format!(
            "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
             jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
             /6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\n{note}"
        );
        let request = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(request.old_size, 20_852_014);
        assert_eq!(request.proof.len(), 4);
        assert_eq!(request.note, note);
        assert_eq!(
            AddCheckpoint::to_body(request.old_size, &request.proof, note),
            body
        );
        let split = split_note(request.note).unwrap();
        assert_eq!(Checkpoint::parse_body(split.text).unwrap().size, 20_852_163);
        assert_eq!(split.signatures.len(), 2);
    }

    /// Another log than allot's: Go's checksum database, whose origin is not its key's name. A
    /// checkpoint it published (sum.golang.org/latest, quoted in trillian-examples'
    /// witness/golang/cmd/addrwitness/README.md) under its published key.
    #[test]
    fn go_checksum_database_checkpoint_is_cosigned() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogKey::parse(
            "go.sum database tree sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
        )
        .unwrap();
        assert_eq!(log.origin, "go.sum database tree");
        let witness = Witness::open_logs(dir.path(), "w.example/1", &[log]).unwrap();
        let note = "go.sum database tree\n15067302\ngJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI=\n\n\
                    \u{2014} sum.golang.org Az3grp1rvWOs5NKlr/xR4GLN/CDyzzakmt1o61uSxYKpK1SerqOP2ClbX/peKUZjYnyomH5Xz7GZG3TpB7OeKn4E2ww=\n";
        check(&witness, &AddCheckpoint::to_body(0, &[], note), Ok(()));
        assert_eq!(
            witness.seen("go.sum database tree").unwrap().size,
            15_067_302
        );
        let changed = note.replace("15067302", "15067303");
        check(
            &witness,
            &AddCheckpoint::to_body(15_067_302, &[], &changed),
            Err(403),
        );
    }

    #[test]
    fn a_witness_key_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = Witness::open(dir.path(), "w.example/1", &[])
            .unwrap()
            .verifier();
        let again = Witness::open(dir.path(), "other", &[]).unwrap().verifier();
        assert_eq!(first, again);
        assert_eq!(first.kind(), KeyKind::CosignatureV1);
    }
}
