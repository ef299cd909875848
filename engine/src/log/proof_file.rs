//! Proof files: an inclusion or consistency proof with everything needed to check it offline —
//! the entry, the roots, the log's verifier key and, when one is signed at the proof's size, the
//! signed checkpoint. Text, one field per line, in a fixed order:
//!
//! ```text
//! allot proof v1
//! inclusion                           | consistency
//! index <decimal>                     | old-size <decimal>
//! entry <hex of the entry's bytes>    | old-root <base64>
//! size <decimal>
//! root <base64>
//! path <base64>                       (one line per hash, deepest first; none for an empty path)
//! key <verifier key>                  (optional)
//!                                     (optional: a blank line, then the signed checkpoint note)
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::entry::Entry;
use super::merkle::{Hash, leaf_hash};
use super::note::{NoteError, SignedCheckpoint, VerifierKey};
use super::proof::{ProofError, verify_consistency, verify_inclusion};

const HEADER: &str = "allot proof v1";

/// What a proof file proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// `entry` (its canonical bytes) is entry `index` of the tree.
    Inclusion { index: u64, entry: Vec<u8> },
    /// The tree of `old_size` entries with root `old_root` is a prefix of the tree.
    Consistency { old_size: u64, old_root: Hash },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    pub claim: Claim,
    /// The tree the proof is against.
    pub size: u64,
    pub root: Hash,
    pub path: Vec<Hash>,
    /// The log's verifier key, for convenience; a verifier should trust a key it got elsewhere.
    pub key: Option<String>,
    /// A signed checkpoint of `size` and `root`.
    pub checkpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("the proof does not verify: {0}")]
    Proof(#[from] ProofError),
    #[error("the entry bytes do not decode: {0}")]
    Entry(String),
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("{0}")]
    Mismatch(String),
}

/// The outcome of checking a proof file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// One sentence: what was proven.
    pub statement: String,
    /// Origin of the checkpoint that signs the root, if one did.
    pub signed_by: Option<String>,
    /// The decoded entry, for an inclusion proof.
    pub entry: Option<Entry>,
}

impl ProofFile {
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        match &self.claim {
            Claim::Inclusion { index, entry } => {
                out += &format!("inclusion\nindex {index}\nentry {}\n", hex::encode(entry));
            }
            Claim::Consistency { old_size, old_root } => {
                out += &format!(
                    "consistency\nold-size {old_size}\nold-root {}\n",
                    B64.encode(old_root)
                );
            }
        }
        out += &format!("size {}\nroot {}\n", self.size, B64.encode(self.root));
        for hash in &self.path {
            out += &format!("path {}\n", B64.encode(hash));
        }
        if let Some(key) = &self.key {
            out += &format!("key {key}\n");
        }
        if let Some(checkpoint) = &self.checkpoint {
            out.push('\n');
            out += checkpoint;
        }
        out
    }

    pub fn parse(text: &str) -> Result<ProofFile, ProofFileError> {
        let (head, checkpoint) = match text.split_once("\n\n") {
            Some((head, cp)) => (format!("{head}\n"), Some(cp.to_owned())),
            None => (text.to_owned(), None),
        };
        let mut lines = Lines {
            lines: head.lines().collect(),
            at: 0,
        };
        match lines.next_line()? {
            HEADER => {}
            other => {
                let reason = match other.strip_prefix("allot proof v") {
                    Some(v) => {
                        format!("proof format version {v} is not supported (this build reads v1)")
                    }
                    None => "not an allot proof file (expected \"allot proof v1\")".to_owned(),
                };
                return Err(ProofFileError::Syntax { line: 1, reason });
            }
        }
        let claim = match lines.next_line()? {
            "inclusion" => {
                let index = lines.number("index")?;
                let entry = lines.field("entry", |v| hex::decode(v).ok())?;
                Claim::Inclusion { index, entry }
            }
            "consistency" => {
                let old_size = lines.number("old-size")?;
                let old_root = lines.hash("old-root")?;
                Claim::Consistency { old_size, old_root }
            }
            other => {
                return Err(lines.error(format!(
                    "expected \"inclusion\" or \"consistency\", found {other:?}"
                )));
            }
        };
        let size = lines.number("size")?;
        let root = lines.hash("root")?;
        let mut path = Vec::new();
        while lines.peek_key() == Some("path") {
            path.push(lines.hash("path")?);
        }
        let key = match lines.peek_key() {
            Some("key") => Some(lines.field("key", |v| Some(v.to_owned()))?),
            _ => None,
        };
        if lines.at < lines.lines.len() {
            lines.at += 1;
            return Err(lines.error(format!("unexpected line {:?}", lines.lines[lines.at - 1])));
        }
        if checkpoint.as_deref() == Some("") {
            return Err(lines.error("a blank line but no checkpoint after it".into()));
        }
        Ok(ProofFile {
            claim,
            size,
            root,
            path,
            key,
            checkpoint,
        })
    }

    /// Checks the proof offline. The checkpoint (`external`, or else the one in the file) is
    /// checked with `trusted` (or else the key in the file) and must sign this proof's size and
    /// root. For a consistency proof, `old_checkpoint` (if given) must sign its old size and root.
    pub fn check(
        &self,
        trusted: Option<&VerifierKey>,
        external: Option<&str>,
        old_checkpoint: Option<&str>,
    ) -> Result<Verdict, ProofFileError> {
        let root_hex = hex::encode(self.root);
        let (mut statement, entry) = match &self.claim {
            Claim::Inclusion { index, entry } => {
                verify_inclusion(&leaf_hash(entry), *index, self.size, &self.path, &self.root)?;
                let decoded =
                    Entry::decode(entry).map_err(|e| ProofFileError::Entry(e.to_string()))?;
                if decoded.index != *index {
                    return Err(ProofFileError::Mismatch(format!(
                        "the entry says index {}, the proof {index}",
                        decoded.index
                    )));
                }
                (
                    format!(
                        "entry {index} is in the log of size {} with root {root_hex}",
                        self.size
                    ),
                    Some(decoded),
                )
            }
            Claim::Consistency { old_size, old_root } => {
                verify_consistency(*old_size, self.size, old_root, &self.root, &self.path)?;
                (
                    format!(
                        "the log of size {old_size} with root {} is a prefix of the log of size {} \
                         with root {root_hex}",
                        hex::encode(old_root),
                        self.size
                    ),
                    None,
                )
            }
        };
        let embedded = self.key.as_deref().map(VerifierKey::parse).transpose()?;
        let key = trusted.or(embedded.as_ref());
        let note = external.or(self.checkpoint.as_deref());
        let signed_by = match note {
            None => {
                statement +=
                    "; no signed checkpoint covers this root: compare it with one you trust";
                None
            }
            Some(note) => {
                let key = key.ok_or_else(|| {
                    ProofFileError::Mismatch(
                        "no key to check the checkpoint's signature with".into(),
                    )
                })?;
                let signed = SignedCheckpoint::open(note, key)?;
                let cp = &signed.checkpoint;
                if (cp.size, cp.root) != (self.size, self.root) {
                    return Err(ProofFileError::Mismatch(format!(
                        "the checkpoint signs size {} root {}, the proof is for size {} root {root_hex}",
                        cp.size,
                        hex::encode(cp.root),
                        self.size
                    )));
                }
                if trusted.is_none() {
                    statement += " (signature checked with the key in the proof file: compare it with the log's published key)";
                }
                Some(cp.origin.clone())
            }
        };
        if let (Some(note), Claim::Consistency { old_size, old_root }) =
            (old_checkpoint, &self.claim)
        {
            let key = key.ok_or_else(|| {
                ProofFileError::Mismatch(
                    "no key to check the old checkpoint's signature with".into(),
                )
            })?;
            let old = SignedCheckpoint::open(note, key)?;
            if (old.checkpoint.size, old.checkpoint.root) != (*old_size, *old_root) {
                return Err(ProofFileError::Mismatch(format!(
                    "the old checkpoint signs size {}, root {}; the proof starts from size {old_size}, root {}",
                    old.checkpoint.size,
                    hex::encode(old.checkpoint.root),
                    hex::encode(old_root)
                )));
            }
        }
        Ok(Verdict {
            statement,
            signed_by,
            entry,
        })
    }
}

struct Lines<'a> {
    lines: Vec<&'a str>,
    at: usize,
}

impl<'a> Lines<'a> {
    fn error(&self, reason: String) -> ProofFileError {
        ProofFileError::Syntax {
            line: self.at.max(1),
            reason,
        }
    }

    fn next_line(&mut self) -> Result<&'a str, ProofFileError> {
        let line = self.lines.get(self.at).copied();
        self.at += 1;
        line.ok_or_else(|| self.error("the file ends early".into()))
    }

    fn peek_key(&self) -> Option<&'a str> {
        self.lines
            .get(self.at)
            .map(|l| l.split_once(' ').map_or(*l, |(k, _)| k))
    }

    fn field<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ProofFileError> {
        let line = self.next_line()?;
        let value = line
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| self.error(format!("expected \"{key} ...\", found {line:?}")))?;
        parse(value).ok_or_else(|| self.error(format!("{key}: cannot read {value:?}")))
    }

    fn number(&mut self, key: &str) -> Result<u64, ProofFileError> {
        self.field(key, |v| {
            v.parse()
                .ok()
                .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
        })
    }

    fn hash(&mut self, key: &str) -> Result<Hash, ProofFileError> {
        let line = self.at + 1;
        let raw = self.field(key, |v| B64.decode(v).ok())?;
        let len = raw.len();
        raw.try_into().map_err(|_| ProofFileError::Syntax {
            line,
            reason: format!("{key}: a hash of {len} bytes (hashes are 32 bytes)"),
        })
    }
}
