//! Signed checkpoints: C2SP `tlog-checkpoint` bodies in C2SP `signed-note` envelopes, signed with
//! Ed25519, and the key formats of golang.org/x/mod/sumdb/note (which witnesses understand).
//!
//! A note is its text (ending in a newline), a blank line, and signature lines
//! `— <name> <base64(key id || signature)>`; the signature covers the text including its final
//! newline. Key id = the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), 0x01
//! naming Ed25519.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest as _, Sha256};

use super::merkle::Hash;

const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";
/// As golang.org/x/mod/sumdb/note: more signatures than this make a note malformed.
const MAX_SIGNATURES: usize = 100;

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
}

/// A key name: non-empty, no whitespace, no `+` (which separates key fields).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(public);
    let digest: [u8; 32] = digest.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The log's Ed25519 signing key and its name (the checkpoint origin).
#[derive(Clone)]
pub struct SigningKey {
    name: String,
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
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey(format!("invalid key name {name:?}")));
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(SigningKey {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// A new key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        use rand::TryRng as _;
        let mut seed = [0u8; 32];
        rand::rngs::SysRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| NoteError::BadKey(format!("no randomness for a new key: {e}")))?;
        Self::from_seed(name, seed)
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadKey(why.to_owned());
        let rest = text.trim_end_matches('\n');
        let rest = rest
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("no PRIVATE+KEY+ prefix"))?;
        let (name, id, seed) = split_key(rest, "seed")?;
        let key = Self::from_seed(name, seed)?;
        if key.id != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(key)
    }

    pub fn to_text(&self) -> String {
        let mut key = vec![ALG_ED25519];
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

    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            id: self.id,
        }
    }

    /// Signs `text` (which must end with a newline) and returns the whole note.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(raw)
        ))
    }
}

/// Splits `<name>+<hex key id>+<base64(0x01 || 32 bytes)>` and checks the algorithm byte (Ed25519)
/// and the length of the key material (`what`: a seed or a public key).
fn split_key<'a>(text: &'a str, what: &str) -> Result<(&'a str, [u8; 4], [u8; 32]), NoteError> {
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
    if *alg != ALG_ED25519 {
        return Err(bad(&format!("unknown algorithm {alg} (only 1, Ed25519)")));
    }
    let material: [u8; 32] = material
        .try_into()
        .map_err(|_| bad(&format!("the Ed25519 {what} is not 32 bytes")))?;
    Ok((name, id, material))
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

/// A verifier key: `<name>+<hex key id>+<base64(0x01 || public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key: ed25519_dalek::VerifyingKey,
    id: [u8; 4],
}

impl VerifierKey {
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, public) = split_key(text.trim_end_matches('\n'), "public key")?;
        let bad = |why: &str| NoteError::BadKey(why.to_owned());
        if key_id(name, &public) != id {
            return Err(bad("key id does not match the key"));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|e| bad(&format!("not an Ed25519 public key: {e}")))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key,
            id,
        })
    }

    pub fn to_text(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// Checks a note's syntax and this key's signature on it; returns the signed text. Signatures
    /// by other keys are allowed (witness cosignatures) and ignored.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
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
        let mut verified = false;
        for (count, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(malformed("more than 100 signatures"));
            }
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
            if name != self.name || raw[..4] != self.id {
                continue;
            }
            let signature = ed25519_dalek::Signature::from_slice(&raw[4..]).map_err(|_| {
                NoteError::InvalidSignature {
                    name: name.to_owned(),
                    id: hex::encode(self.id),
                }
            })?;
            self.key.verify(text.as_bytes(), &signature).map_err(|_| {
                NoteError::InvalidSignature {
                    name: name.to_owned(),
                    id: hex::encode(self.id),
                }
            })?;
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::NotSigned {
                name: self.name.clone(),
                id: hex::encode(self.id),
            })
        }
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
