//! The `Audit` answers as people read them: an entry, one line per entry, a verified folder, and
//! proofs as the proof files `allot audit verify-proof` checks offline.

use std::fmt::Write as _;

use allot_engine::log::proof_file::{Claim, ProofFile};
use allot_engine::log::verify::VerifyReport;
use allot_engine::log::{self, Entry, Hash, RawEntry};
use tonic::Status;

use crate::proto::v1 as pb;

/// An entry, field by field, with its hashes.
pub fn entry(raw: &RawEntry) -> log::Result<String> {
    let entry = raw.decode()?;
    let record = &entry.record;
    let kind = record.decision.kind();
    let mut out = format!(
        "index       {}\ntime        {}\nkind        {} (0x{:04x})\nactor       {:?}\nsubject     {:?}\n",
        entry.index,
        record.time,
        record.decision.name(),
        kind.0,
        record.actor,
        record.subject
    );
    for (field, value) in record.decision.fields() {
        let _ = writeln!(out, "  {field:<13} {value}");
    }
    let _ = write!(
        out,
        "bytes       {}\nleaf hash   {}\nchain hash  {}\n",
        raw.bytes.len(),
        hex::encode(raw.leaf_hash()),
        hex::encode(raw.chain)
    );
    Ok(out)
}

/// `INDEX TIME KIND "ACTOR" "SUBJECT"`.
pub fn entry_line(entry: &Entry) -> String {
    let r = &entry.record;
    format!(
        "{} {} {} {:?} {:?}",
        entry.index,
        r.time,
        r.decision.name(),
        r.actor,
        r.subject
    )
}

/// `INDEX HEX` and a line break, HEX being the entry's bytes, built in `line` (reused from one
/// entry to the next: an export writes millions).
pub fn export_line<'a>(line: &'a mut Vec<u8>, index: u64, bytes: &[u8]) -> &'a [u8] {
    line.clear();
    line.extend_from_slice(index.to_string().as_bytes());
    line.push(b' ');
    let start = line.len();
    line.resize(start + bytes.len() * 2, 0);
    // The room is exactly twice the bytes: encoding cannot fail.
    let _ = hex::encode_to_slice(bytes, &mut line[start..]);
    line.push(b'\n');
    line
}

/// What re-deriving a data folder's log found.
pub fn verified(report: &VerifyReport) -> String {
    let checkpoint = match &report.checkpoint {
        Some((origin, size)) => format!("{origin} at size {size}: signature and root match"),
        None => "none signed yet".to_owned(),
    };
    format!(
        "size        {}\nroot        {}\nchain head  {}\nsegments    {}\ncheckpoint  {checkpoint}\n\
         derived     interior hashes and offsets of {} entries match\nok\n",
        report.size,
        hex::encode(report.root),
        hex::encode(report.chain),
        report.segments,
        report.derived_checked
    )
}

/// A streamed entry as the log stores it.
pub fn raw_entry(entry: pb::LogEntry) -> Result<RawEntry, Status> {
    Ok(RawEntry {
        index: entry.index,
        chain: hash(&entry.chain_hash, "chain hash")?,
        bytes: entry.data,
    })
}

/// An inclusion proof answer as a proof file, under the log's verifier key `key`.
pub fn inclusion_proof(
    proof: pb::GetInclusionProofResponse,
    key: String,
) -> Result<ProofFile, Status> {
    let entry = proof
        .entry
        .ok_or_else(|| Status::internal("the answer has no entry"))?;
    Ok(ProofFile {
        claim: Claim::Inclusion {
            index: entry.index,
            entry: entry.data,
        },
        size: proof.tree_size,
        root: hash(&proof.root_hash, "root hash")?,
        path: hashes(&proof.path)?,
        key: Some(key),
        checkpoint: proof.checkpoint.map(|c| c.note),
    })
}

/// A consistency proof answer as a proof file, under the log's verifier key `key`.
pub fn consistency_proof(
    proof: pb::GetConsistencyProofResponse,
    key: String,
) -> Result<ProofFile, Status> {
    Ok(ProofFile {
        claim: Claim::Consistency {
            old_size: proof.old_size,
            old_root: hash(&proof.old_root_hash, "old root hash")?,
        },
        size: proof.new_size,
        root: hash(&proof.new_root_hash, "new root hash")?,
        path: hashes(&proof.path)?,
        key: Some(key),
        checkpoint: proof.checkpoint.map(|c| c.note),
    })
}

fn hash(bytes: &[u8], what: &str) -> Result<Hash, Status> {
    crate::rpc::bytes32(bytes, what)
}

fn hashes(path: &[Vec<u8>]) -> Result<Vec<Hash>, Status> {
    path.iter().map(|h| hash(h, "proof hash")).collect()
}

/// What a verified tlog-proof shows: the entry, where it is, and who signed the checkpoint.
pub fn tlog_proof_verdict(
    proof: &log::tlog_proof::TlogProof,
    trusted: &log::Trusted,
) -> Result<String, log::DecodeError> {
    let cp = &trusted.checkpoint;
    let mut out = format!(
        "ok: entry {} is in the tree of size {} signed by {}\n",
        proof.index, cp.size, cp.origin
    );
    for (witness, time) in &trusted.cosigned_by {
        out.push_str(&format!(
            "cosigned by {witness} at {time} (POSIX seconds)\n"
        ));
    }
    if let Some(bytes) = &proof.extra {
        let entry = Entry::decode(bytes)?;
        out.push_str(&format!("entry: {}\n", entry_line(&entry)));
    }
    Ok(out)
}

/// What a verified proof file shows: the statement, who signed it (and where the key came from),
/// the entry.
pub fn proof_verdict(verdict: &log::proof_file::Verdict, key_source: &str) -> String {
    let mut out = format!("ok: {}\n", verdict.statement);
    if let Some(origin) = &verdict.signed_by {
        out.push_str(&format!("signed by {origin} (key from {key_source})\n"));
    }
    if let Some(entry) = &verdict.entry {
        out.push_str(&format!("entry: {}\n", entry_line(entry)));
    }
    out
}
