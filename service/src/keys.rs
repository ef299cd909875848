//! Keys as people hand them to the CLI: a verifier key as its text or a file holding it, a
//! signing key from a file, a trust policy from keys and a quorum, and new key files.

use std::path::{Path, PathBuf};

use allot_engine::log::{KeyKind, NoteError, SigningKey, TrustPolicy, VerifierKey};
use allot_engine::witness::LogKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Bad { what: String, source: NoteError },
    #[error("--quorum {quorum} is more than the {keys} witness key(s)")]
    Quorum { quorum: usize, keys: usize },
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A verifier key given as its text or as a file holding it.
pub fn verifier_key_arg(arg: &str) -> Result<VerifierKey, KeyError> {
    match VerifierKey::parse(arg) {
        Ok(key) => Ok(key),
        Err(_) if Path::new(arg).is_file() => VerifierKey::parse(read(Path::new(arg))?.trim())
            .map_err(|source| KeyError::Bad {
                what: format!("the key in {arg}"),
                source,
            }),
        Err(source) => Err(KeyError::Bad {
            what: format!(
                "{:?} is neither a key nor a file",
                allot_engine::input::clip(arg)
            ),
            source,
        }),
    }
}

/// A log a witness knows: `KEY`, `ORIGIN KEY` (for a log whose origin is not its key's name),
/// or a file holding either.
pub fn log_key_arg(arg: &str) -> Result<LogKey, KeyError> {
    let bad = |what: String| move |source| KeyError::Bad { what, source };
    match LogKey::parse(arg) {
        Ok(key) => Ok(key),
        Err(_) if Path::new(arg).is_file() => {
            LogKey::parse(&read(Path::new(arg))?).map_err(bad(format!("the key in {arg}")))
        }
        Err(e) => Err(bad(format!(
            "{:?} is neither a key nor a file",
            allot_engine::input::clip(arg)
        ))(e)),
    }
}

/// A log's signing key from a file (`PRIVATE+KEY+...`).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    SigningKey::parse(read(path)?.trim()).map_err(|source| KeyError::Bad {
        what: format!("the signing key in {}", path.display()),
        source,
    })
}

/// The log's key and the witnesses' keys (texts or files) with a quorum, by default a majority.
pub fn policy(
    log: &str,
    witnesses: &[String],
    quorum: Option<usize>,
) -> Result<TrustPolicy, KeyError> {
    let log = verifier_key_arg(log)?;
    let witnesses = witnesses
        .iter()
        .map(|k| verifier_key_arg(k))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = witnesses.len();
    let quorum = quorum.unwrap_or(TrustPolicy::majority(keys));
    if quorum > keys {
        return Err(KeyError::Quorum { quorum, keys });
    }
    Ok(TrustPolicy {
        log,
        witnesses,
        quorum,
    })
}

/// Makes a key (a witness's cosigning key with `witness`) in a new file `out` readable by its
/// owner only, synced; returns its verifier key.
pub fn new_key_file(name: &str, out: &Path, witness: bool) -> Result<VerifierKey, KeyError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let kind = [KeyKind::Ed25519, KeyKind::CosignatureV1][usize::from(witness)];
    let key = SigningKey::generate_kind(name, kind).map_err(|source| KeyError::Bad {
        what: format!("a key named {name:?}"),
        source,
    })?;
    let io = |source| KeyError::Io {
        path: out.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(io)?;
    writeln!(file, "{}", key.to_text()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key.verifier())
}
