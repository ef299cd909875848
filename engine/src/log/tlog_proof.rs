//! c2sp.org/tlog-proof: an offline-verifiable proof that an entry is in a log, as text:
//! `c2sp.org/tlog-proof@v1`, optionally `extra <base64>` (allot puts the entry's bytes there, so
//! the proof is a self-contained receipt), `index <n>`, the inclusion path (one base64 hash per
//! line, from the leaf's sibling up), a blank line, and the (co)signed checkpoint verbatim.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::merkle::{Hash, leaf_hash};
use super::note::{NoteError, TrustPolicy, Trusted};
use super::proof::{ProofError, verify_inclusion};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<Hash>,
    /// The checkpoint note, with its signatures.
    pub checkpoint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlogProofError {
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("the inclusion proof: {0}")]
    Inclusion(#[from] ProofError),
    #[error("no entry to prove: the proof has no extra data and none was given")]
    NoEntry,
}

impl TlogProof {
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            text.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.path {
            text.push_str(&B64.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    pub fn parse(text: &str) -> Result<TlogProof, TlogProofError> {
        let bad = |line: usize, reason: &str| TlogProofError::Malformed {
            line,
            reason: reason.to_owned(),
        };
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad(0, "no blank line before the checkpoint"))?;
        let mut lines = head
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .peekable();
        if lines.next().map(|(_, l)| l) != Some(HEADER) {
            return Err(bad(1, &format!("the first line is not {HEADER}")));
        }
        let mut extra = None;
        if let Some((n, line)) = lines.peek().copied()
            && let Some(data) = line.strip_prefix("extra ")
        {
            extra = Some(
                B64.decode(data)
                    .map_err(|_| bad(n, "extra is not base64"))?,
            );
            lines.next();
        }
        let (n, line) = lines.next().ok_or_else(|| bad(2, "no index line"))?;
        let index = line
            .strip_prefix("index ")
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .filter(|d| *d == "0" || !d.starts_with('0'))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| bad(n, "expected `index <decimal>`"))?;
        let path = lines
            .map(|(n, line)| {
                B64.decode(line)
                    .ok()
                    .and_then(|h| Hash::try_from(h).ok())
                    .ok_or_else(|| bad(n, "not a base64 SHA-256 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies the proof under `policy`: the checkpoint's signatures, then the inclusion of
    /// `entry` (default: the extra data) at `index` in its tree.
    pub fn verify(
        &self,
        policy: &TrustPolicy,
        entry: Option<&[u8]>,
    ) -> Result<Trusted, TlogProofError> {
        let trusted = policy.check(&self.checkpoint)?;
        let entry = entry
            .or(self.extra.as_deref())
            .ok_or(TlogProofError::NoEntry)?;
        let cp = &trusted.checkpoint;
        verify_inclusion(&leaf_hash(entry), self.index, cp.size, &self.path, &cp.root)?;
        Ok(trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// c2sp.org/tlog-proof's example (its signatures elided there, so only the layout is read).
    #[test]
    fn the_spec_example_parses_and_round_trips() {
        let text = "c2sp.org/tlog-proof@v1\n\
                    extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n\
                    index 73894\n\
                    gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\
                    B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\
                    EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n\
                    RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n\
                    AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n\n\
                    example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n\
                    \u{2014} example.com/fancylog hI2DJw[...]1roloI=\n";
        let proof = TlogProof::parse(text).unwrap();
        assert_eq!(proof.index, 73_894);
        assert_eq!(proof.path.len(), 5);
        assert!(
            proof
                .extra
                .as_ref()
                .unwrap()
                .starts_with(b"age-v1.2.1-darwin-arm64.tar.gz")
        );
        assert!(
            proof
                .checkpoint
                .starts_with("example.com/fancylog\n109482\n")
        );
        assert_eq!(proof.to_text(), text);
        for bad in [
            text.replace("index 73894", "index 073894"),
            text.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
            text.replace("AHCioX9n", "AHCio!9n"),
            text.replace("\n\nexample.com", "\nexample.com"),
        ] {
            assert!(TlogProof::parse(&bad).is_err(), "{bad}");
        }
    }
}
