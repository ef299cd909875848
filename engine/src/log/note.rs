//! Signed checkpoints: C2SP `tlog-checkpoint` bodies in C2SP `signed-note` envelopes, signed with
//! Ed25519, the key formats of golang.org/x/mod/sumdb/note (which witnesses understand), and
//! witnesses' C2SP `tlog-cosignature` v1 (Ed25519, timestamped) on those checkpoints.
//!
//! A note is its text (ending in a newline), a blank line, and signature lines
//! `— <name> <base64(key id || signature)>`. A log's signature covers the text including its
//! final newline; its key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public
//! key). A cosignature covers `cosignature/v1\ntime <t>\n` followed by the text, carries the
//! timestamp (u64, big-endian) between key id and signature, and its key id hashes 0x04 in
//! place of 0x01.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest as _, Sha256};

use super::merkle::Hash;

const SIG_PREFIX: &str = "\u{2014} ";
/// As golang.org/x/mod/sumdb/note: more signatures than this make a note malformed.
const MAX_SIGNATURES: usize = 100;

/// What a key signs: a note (a log's checkpoints) or cosignatures (a witness's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// signed-note Ed25519 (signature type 0x01).
    Ed25519,
    /// tlog-cosignature v1, Ed25519 over a timestamped message (signature type 0x04).
    CosignatureV1,
}

impl KeyKind {
    fn byte(self) -> u8 {
        match self {
            KeyKind::Ed25519 => 0x01,
            KeyKind::CosignatureV1 => 0x04,
        }
    }

    fn from_byte(byte: u8) -> Option<KeyKind> {
        match byte {
            0x01 => Some(KeyKind::Ed25519),
            0x04 => Some(KeyKind::CosignatureV1),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    BadKey(String),
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("the note has no signature by {name}+{id}")]
    NotSigned { name: String, id: String },
    #[error("the signature by {name}+{id} does not verify")]
    InvalidSignature { name: String, id: String },
    #[error("malformed checkpoint, line {line}: {reason}")]
    BadCheckpoint { line: usize, reason: String },
    #[error(
        "the checkpoint carries {have} valid cosignature(s) of the {need} required{}",
        if names.is_empty() { String::new() } else { format!(" (by {})", names.join(", ")) }
    )]
    NoQuorum {
        have: usize,
        need: usize,
        names: Vec<String>,
    },
}

/// A key name: non-empty, no whitespace, no `+` (which separates key fields).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn key_id(name: &str, kind: KeyKind, public: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', kind.byte()])
        .chain_update(public);
    let digest: [u8; 32] = digest.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The message a v1 cosignature signs.
fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// An Ed25519 signing key and its name: a log's (the checkpoint origin) or a witness's.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    kind: KeyKind,
    key: ed25519_dalek::SigningKey,
    id: [u8; 4],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        write!(f, "SigningKey({}+{})", self.name, hex::encode(self.id))
    }
}

impl SigningKey {
    /// A log's key (signed-note Ed25519).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        Self::of_kind(name, KeyKind::Ed25519, seed)
    }

    pub fn of_kind(name: &str, kind: KeyKind, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey(format!("invalid key name {name:?}")));
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, kind, key.verifying_key().as_bytes());
        Ok(SigningKey {
            name: name.to_owned(),
            kind,
            key,
            id,
        })
    }

    /// A new log key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        Self::generate_kind(name, KeyKind::Ed25519)
    }

    /// A new key of `kind` from the operating system's random source.
    pub fn generate_kind(name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        use rand::TryRng as _;
        let mut seed = [0u8; 32];
        rand::rngs::SysRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| NoteError::BadKey(format!("no randomness for a new key: {e}")))?;
        Self::of_kind(name, kind, seed)
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadKey(why.to_owned());
        let rest = text.trim_end_matches('\n');
        let rest = rest
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("no PRIVATE+KEY+ prefix"))?;
        let (name, id, kind, seed) = split_key(rest, "seed")?;
        let key = Self::of_kind(name, kind, seed)?;
        if key.id != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(key)
    }

    pub fn to_text(&self) -> String {
        let mut key = vec![self.kind.byte()];
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(key)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            kind: self.kind,
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// Signs `text` (which must end with a newline) and returns the whole note.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        if self.kind != KeyKind::Ed25519 {
            return Err(NoteError::BadKey(format!(
                "{} is a cosigning key: it signs cosignatures, not notes",
                self.name
            )));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(raw)
        ))
    }

    /// A v1 cosignature line (ending with a newline) on a note's `text`, at `timestamp` (POSIX
    /// seconds).
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<String, NoteError> {
        check_text(text)?;
        if self.kind != KeyKind::CosignatureV1 || timestamp > i64::MAX as u64 {
            return Err(NoteError::BadKey(format!(
                "{} cannot cosign (not a cosigning key, or a timestamp beyond 2^63 - 1)",
                self.name
            )));
        }
        let signature = self.key.sign(cosigned_message(text, timestamp).as_bytes());
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&signature.to_bytes());
        Ok(format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw)))
    }
}

/// A key's fields: name, key id, signature type, key material.
type KeyParts<'a> = (&'a str, [u8; 4], KeyKind, [u8; 32]);

/// Splits `<name>+<hex key id>+<base64(type || 32 bytes)>` and checks the signature type and the
/// length of the key material (`what`: a seed or a public key).
fn split_key<'a>(text: &'a str, what: &str) -> Result<KeyParts<'a>, NoteError> {
    let bad = |why: &str| NoteError::BadKey(why.to_owned());
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected <name>+<key id>+<key>"));
    };
    if !valid_name(name) {
        return Err(bad(&format!("invalid key name {name:?}")));
    }
    let id: [u8; 4] = hex::decode(id)
        .ok()
        .and_then(|id| id.try_into().ok())
        .ok_or_else(|| bad("key id is not 8 hex digits"))?;
    let key = B64
        .decode(key)
        .map_err(|e| bad(&format!("key is not base64: {e}")))?;
    let [alg, material @ ..] = key.as_slice() else {
        return Err(bad("empty key"));
    };
    let kind = KeyKind::from_byte(*alg).ok_or_else(|| {
        bad(&format!(
            "unknown signature type {alg} (1, Ed25519, and 4, cosignature/v1, are known)"
        ))
    })?;
    let material: [u8; 32] = material
        .try_into()
        .map_err(|_| bad(&format!("the Ed25519 {what} is not 32 bytes")))?;
    Ok((name, id, kind, material))
}

/// A note's text: valid UTF-8 without control characters but newlines, ending with a newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the text does not end with a newline".into(),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed(
            "the text has control characters".into(),
        ));
    }
    Ok(())
}

/// A note split into its text and its signature lines (`name`, decoded `key id || signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitNote<'a> {
    pub text: &'a str,
    pub signatures: Vec<(&'a str, Vec<u8>)>,
}

/// Checks a note's syntax (as golang.org/x/mod/sumdb/note) and splits it.
pub fn split_note(note: &str) -> Result<SplitNote<'_>, NoteError> {
    let malformed = |why: &str| NoteError::Malformed(why.to_owned());
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(malformed("control characters"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(malformed("no signature lines after the blank line"));
    }
    if !sigs.ends_with('\n') {
        return Err(malformed("the signature block does not end with a newline"));
    }
    let mut signatures = Vec::new();
    for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(malformed("more than 100 signatures"));
        }
        signatures.push(signature_line(line)?);
    }
    Ok(SplitNote { text, signatures })
}

/// One signature line without its newline: `— <name> <base64>`.
fn signature_line(line: &str) -> Result<(&str, Vec<u8>), NoteError> {
    let malformed = |why: &str| NoteError::Malformed(why.to_owned());
    let line = line
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| malformed("a signature line does not start with an em dash"))?;
    let (name, b64) = line
        .split_once(' ')
        .ok_or_else(|| malformed("a signature line has no space"))?;
    let raw = B64
        .decode(b64)
        .map_err(|_| malformed("a signature is not base64"))?;
    if !valid_name(name) || raw.len() < 5 {
        return Err(malformed("a signature line is invalid"));
    }
    Ok((name, raw))
}

/// Parses signature lines on their own (a witness's answer): each `— <name> <base64>\n`.
pub fn parse_signature_lines(lines: &str) -> Result<Vec<(&str, Vec<u8>)>, NoteError> {
    let Some(body) = lines.strip_suffix('\n') else {
        return Err(NoteError::Malformed(
            "signature lines do not end with a newline".into(),
        ));
    };
    body.split('\n').map(signature_line).collect()
}

/// A verifier key: `<name>+<hex key id>+<base64(type || public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: KeyKind,
    key: ed25519_dalek::VerifyingKey,
    id: [u8; 4],
}

impl VerifierKey {
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, kind, public) = split_key(text.trim_end_matches('\n'), "public key")?;
        let bad = |why: &str| NoteError::BadKey(why.to_owned());
        if key_id(name, kind, &public) != id {
            return Err(bad("key id does not match the key"));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|e| bad(&format!("not an Ed25519 public key: {e}")))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            kind,
            key,
            id,
        })
    }

    pub fn to_text(&self) -> String {
        let mut key = vec![self.kind.byte()];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Whether a signature line (`name`, `key id || ...`) claims to be by this key.
    pub fn claims(&self, name: &str, raw: &[u8]) -> bool {
        name == self.name && raw.get(..4) == Some(&self.id[..])
    }

    /// Checks one signature (`key id || signature`, with the timestamp between them for a
    /// cosignature) on a note's `text`; returns the cosignature's timestamp (0 for a note
    /// signature).
    pub fn verify(&self, text: &str, raw: &[u8]) -> Result<u64, NoteError> {
        let invalid = || NoteError::InvalidSignature {
            name: self.name.clone(),
            id: hex::encode(self.id),
        };
        if raw.get(..4) != Some(&self.id[..]) {
            return Err(invalid());
        }
        let (timestamp, signature, message) = match self.kind {
            KeyKind::Ed25519 => (0, &raw[4..], std::borrow::Cow::Borrowed(text)),
            KeyKind::CosignatureV1 => {
                let stamp: [u8; 8] = raw
                    .get(4..12)
                    .and_then(|t| t.try_into().ok())
                    .ok_or_else(invalid)?;
                let timestamp = u64::from_be_bytes(stamp);
                if timestamp > i64::MAX as u64 {
                    return Err(invalid());
                }
                let message = cosigned_message(text, timestamp);
                (timestamp, &raw[12..], std::borrow::Cow::Owned(message))
            }
        };
        let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid())?;
        self.key
            .verify(message.as_bytes(), &signature)
            .map_err(|_| invalid())?;
        Ok(timestamp)
    }

    /// Checks a note's syntax and this key's signature on it; returns the signed text. Signatures
    /// by other keys are allowed (witness cosignatures) and ignored.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split = split_note(note)?;
        let mut verified = false;
        for (name, raw) in &split.signatures {
            if self.claims(name, raw) {
                self.verify(split.text, raw)?;
                verified = true;
            }
        }
        if verified {
            Ok(split.text)
        } else {
            Err(NoteError::NotSigned {
                name: self.name.clone(),
                id: hex::encode(self.id),
            })
        }
    }
}

/// Whom a reader trusts: the log's key and `quorum` of the witnesses' cosigning keys.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    pub log: VerifierKey,
    pub witnesses: Vec<VerifierKey>,
    pub quorum: usize,
}

/// A checkpoint that satisfied a [`TrustPolicy`], and who cosigned it when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub checkpoint: Checkpoint,
    /// The witnesses whose cosignatures verified, with their timestamps.
    pub cosigned_by: Vec<(String, u64)>,
}

impl TrustPolicy {
    /// The default quorum of `witnesses` witnesses: a majority (none without witnesses).
    pub fn majority(witnesses: usize) -> usize {
        witnesses / 2 + usize::from(witnesses > 0)
    }

    /// Checks the log's signature and at least `quorum` valid cosignatures by distinct
    /// witnesses (a witness's invalid cosignature is an error: it claims to be theirs).
    pub fn check(&self, note: &str) -> Result<Trusted, NoteError> {
        let text = self.log.open(note)?;
        let checkpoint = Checkpoint::parse_body(text)?;
        let split = split_note(note)?;
        let mut cosigned_by = Vec::new();
        for witness in &self.witnesses {
            let mut stamp = None;
            for (name, raw) in &split.signatures {
                if witness.claims(name, raw) {
                    stamp = Some(witness.verify(split.text, raw)?);
                }
            }
            if let Some(stamp) = stamp {
                cosigned_by.push((witness.name().to_owned(), stamp));
            }
        }
        if cosigned_by.len() < self.quorum {
            return Err(NoteError::NoQuorum {
                have: cosigned_by.len(),
                need: self.quorum,
                names: cosigned_by.into_iter().map(|(n, _)| n).collect(),
            });
        }
        Ok(Trusted {
            checkpoint,
            cosigned_by,
        })
    }
}

/// A C2SP `tlog-checkpoint`: origin, tree size and root hash (extension lines are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n` and any extension lines.
    pub fn body(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    pub fn parse_body(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |line: usize, reason: &str| NoteError::BadCheckpoint {
            line,
            reason: reason.into(),
        };
        let Some(text) = text.strip_suffix('\n') else {
            return Err(bad(0, "does not end with a newline"));
        };
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad(1, "empty origin"));
        }
        let size = lines.next().ok_or_else(|| bad(2, "missing tree size"))?;
        let canonical_decimal = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = match size.parse::<u64>() {
            Ok(n) if canonical_decimal => n,
            _ => {
                return Err(bad(
                    2,
                    &format!("tree size {size:?} is not a decimal number"),
                ));
            }
        };
        let root = lines.next().ok_or_else(|| bad(3, "missing root hash"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad(3, "root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if let Some(i) = extensions.iter().position(String::is_empty) {
            return Err(bad(4 + i, "empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// A checkpoint and the note text that signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

impl SignedCheckpoint {
    pub fn sign(checkpoint: Checkpoint, key: &SigningKey) -> Result<Self, NoteError> {
        let note = key.sign_note(&checkpoint.body())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Parses a signed checkpoint note and checks `key`'s signature on it.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Self, NoteError> {
        let text = key.open(note)?;
        let checkpoint = Checkpoint::parse_body(text)?;
        Ok(SignedCheckpoint {
            checkpoint,
            note: note.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note, note_test.go: TestNewVerifier, TestNewSigner, TestSign.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    // TestOpen: a second signer's line, which Peter's key must ignore.
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    #[test]
    fn published_signed_note_example() {
        let signer = SigningKey::parse(PETER_SKEY).unwrap();
        assert_eq!(signer.to_text(), PETER_SKEY);
        assert_eq!(signer.verifier().to_text(), PETER_VKEY);
        let note = signer.sign_note(TEXT).unwrap();
        assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));

        let verifier = VerifierKey::parse(PETER_VKEY).unwrap();
        assert_eq!(hex::encode(verifier.id()), "c74f20a3");
        check(&format!("{TEXT}\n{PETER_SIG}"), Ok(TEXT));
        check(&format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}"), Ok(TEXT));
        check(
            &format!("{TEXT}\n{ENOCH_SIG}"),
            Err("the note has no signature by PeterNeumann+c74f20a3"),
        );
        let forged = PETER_SIG.replacen("x08go/ZJ", "x08go/ZK", 1);
        check(
            &format!("{TEXT}\n{forged}"),
            Err("the signature by PeterNeumann+c74f20a3 does not verify"),
        );
        let other_text = TEXT.replace("problem,", "problem;");
        check(
            &format!("{other_text}\n{PETER_SIG}"),
            Err("the signature by PeterNeumann+c74f20a3 does not verify"),
        );
        // TestOpen's malformed messages.
        check(TEXT, Err("malformed note: no blank line before signatures"));
        check(
            &format!("{TEXT}\n"),
            Err("malformed note: no signature lines after the blank line"),
        );
        check(
            &format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            Err("malformed note: the signature block does not end with a newline"),
        );
        check(
            &format!("\x01{TEXT}\n{PETER_SIG}"),
            Err("malformed note: control characters"),
        );
        check(
            &format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            Err("malformed note: a signature line does not start with an em dash"),
        );
        check(
            &format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
            Err("malformed note: more than 100 signatures"),
        );

        fn check(note: &str, expect: Result<&str, &str>) {
            let verifier = VerifierKey::parse(PETER_VKEY).unwrap();
            assert_eq!(
                verifier.open(note).map_err(|e| e.to_string()),
                expect.map_err(str::to_owned)
            );
        }
    }

    /// c2sp.org/tlog-cosignature's example: the signature line carries key id, then the
    /// timestamp of the example's signed message, which is the header, the time line and the
    /// checkpoint body.
    #[test]
    fn the_spec_cosignature_example() {
        let line = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
        let parsed = parse_signature_lines(line).unwrap();
        let (name, raw) = &parsed[0];
        assert_eq!(*name, "witness.example.com/w1");
        assert_eq!(raw.len(), 4 + 8 + 64);
        let stamp = u64::from_be_bytes(raw[4..12].try_into().unwrap());
        assert_eq!(stamp, 1_679_315_147);
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(
            cosigned_message(body, stamp),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n\
             CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        // Our own cosignatures have that shape and verify; another time or body does not.
        let witness = SigningKey::of_kind("w.example/1", KeyKind::CosignatureV1, [5; 32]).unwrap();
        let ours = witness.cosign(body, stamp).unwrap();
        let (_, raw) = &parse_signature_lines(&ours).unwrap()[0];
        let verifier = witness.verifier();
        assert!(verifier.to_text().starts_with("w.example/1+"));
        assert_eq!(verifier.verify(body, raw).unwrap(), stamp);
        let mut later = raw.clone();
        later[11] ^= 1;
        assert!(verifier.verify(body, &later).is_err());
        assert!(
            verifier
                .verify(&body.replace("20852163", "20852164"), raw)
                .is_err()
        );
        assert!(
            witness.sign_note(body).is_err(),
            "a cosigning key signs no notes"
        );
    }

    #[test]
    fn mangled_keys_are_rejected() {
        // As TestNewVerifier: every proper substring and every single-byte change fails.
        let b = PETER_VKEY.as_bytes();
        for i in 0..b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    let s = String::from_utf8_lossy(&b[i..j]);
                    assert!(VerifierKey::parse(&s).is_err(), "accepted {s:?}");
                }
            }
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            let s = String::from_utf8_lossy(&m);
            assert!(VerifierKey::parse(&s).is_err(), "accepted {s:?}");
        }
        let b = PETER_SKEY.as_bytes();
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            let s = String::from_utf8_lossy(&m);
            assert!(SigningKey::parse(&s).is_err(), "accepted {s:?}");
        }
        // Wrong key length and unknown algorithm, with adjusted key ids (from TestNewVerifier).
        for k in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(VerifierKey::parse(k).is_err(), "accepted {k}");
        }
    }

    #[test]
    fn checkpoint_bodies() {
        let root = B64.encode([7u8; 32]);
        check(&format!("example.com/log\n42\n{root}\n"), Ok(42));
        check(&format!("example.com/log\n0\n{root}\nextension\n"), Ok(0));
        check(&format!("example.com/log\n042\n{root}\n"), Err(2));
        check(&format!("example.com/log\n+42\n{root}\n"), Err(2));
        check(
            &format!("example.com/log\n18446744073709551616\n{root}\n"),
            Err(2),
        );
        check(&format!("\n42\n{root}\n"), Err(1));
        check("example.com/log\n42\nAAAA\n", Err(3));
        check(&format!("example.com/log\n42\n{root}"), Err(0));
        check(&format!("example.com/log\n42\n{root}\n\n"), Err(4));

        fn check(body: &str, expect: Result<u64, usize>) {
            let got = Checkpoint::parse_body(body)
                .map(|c| c.size)
                .map_err(|e| match e {
                    NoteError::BadCheckpoint { line, .. } => line,
                    other => panic!("{other}"),
                });
            assert_eq!(got, expect, "{body:?}");
            if let Ok(c) = Checkpoint::parse_body(body) {
                assert_eq!(c.body(), body, "round trip");
            }
        }
    }
}
