//! `allot audit ...`: verify the decision log, read it, prove entries, sign and show checkpoints.
//!
//! Everything but `checkpoint` reads the folder without its writer lock, so it works while a
//! server writes. `checkpoint` signs the current tree head, which needs the lock; while another
//! process holds it, it prints the last checkpoint that process signed.
//!
//! With `--server URL` (remote mode) `checkpoint`, `pubkey`, `show`, `export`, `prove`,
//! `consistency` and `tail` ask a running `allot serve` (role `auditor`) and print exactly what
//! they print locally; proofs are then always against a checkpoint the server signed. `verify`
//! re-reads the folder's files and runs only where the data is; `verify-proof` is offline and
//! never asks a server.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use allot_engine::log::proof_file::{Claim, ProofFile};
use allot_engine::log::verify::verify;
use allot_engine::log::{
    Entry, Error, Hash, Log, LogOptions, RawEntry, SignedCheckpoint, VerifierKey,
};
use allot_service::proto::v1 as pb;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::remote::{Remote, RemoteArgs, status_error};

#[derive(Debug, Args)]
#[command(
    about = "Audit the decision log: verify it, read it, prove entries, sign checkpoints",
    long_about = "Audit the decision log: verify it, read it, prove entries, sign checkpoints.\n\n\
                  The log is an append-only, hash-chained RFC 6962 Merkle tree; tree heads are \
                  published as C2SP signed-note checkpoints (Ed25519)."
)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Re-derive the hash chain and the Merkle tree from the entry bytes; check every record,
    /// every stored hash and the signed checkpoint. Prints size, root and chain head; on damage,
    /// names the first bad entry and exits non-zero.
    Verify,

    /// Show entry N: its fields, leaf hash and chain hash.
    Show {
        /// Entry index (from 0).
        index: u64,
    },

    /// Print entries as `INDEX HEX` lines, HEX being the entry's canonical bytes (the RFC 6962
    /// leaf data): anyone can rebuild the tree from them.
    Export {
        /// First entry to print.
        #[arg(long, value_name = "N", default_value_t = 0)]
        from: u64,
        /// Stop before this entry (so `--to M` gives the leaves of the tree of size M).
        #[arg(long, value_name = "M")]
        to: Option<u64>,
    },

    /// Print the signed checkpoint (C2SP tlog-checkpoint, signed-note) of the current tree head,
    /// signing a new one if the log has grown.
    Checkpoint {
        /// Print the last signed checkpoint without signing a new one.
        #[arg(long)]
        stored: bool,
    },

    /// Print the log's verifier key: `name+hex(key id)+base64(0x01 || Ed25519 public key)`.
    Pubkey,

    /// Inclusion proof of entry N, as a proof file (see `verify-proof`).
    Prove {
        /// Entry index.
        index: u64,
        /// Tree size to prove against (default: the last signed checkpoint's size, whose note
        /// is then included).
        #[arg(long, value_name = "M")]
        size: Option<u64>,
        /// Write the proof file here instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Consistency proof that the tree of size OLD is a prefix of the tree of size NEW.
    Consistency {
        old: u64,
        new: u64,
        /// Write the proof file here instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Check a proof file offline: the proof against its root, and the root against a signed
    /// checkpoint (the one in the file or --checkpoint) under a trusted key.
    VerifyProof {
        /// A file written by `prove` or `consistency`.
        file: PathBuf,
        /// The log's verifier key (the text, or a file holding it). Default: the key in
        /// DIR/log/verifier.key if there is one, else the key in the proof file.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// A signed checkpoint to check the proof's root against, instead of the file's.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// For a consistency proof: a signed checkpoint that must match its old size and root.
        #[arg(long, value_name = "FILE")]
        old_checkpoint: Option<PathBuf>,
    },

    /// Show the last entries, one line each.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        count: u64,
    },
}

pub fn run(args: AuditArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    if !matches!(args.command, AuditCommand::VerifyProof { .. })
        && let Some(remote) = remote.connect()?
    {
        return run_remote(args.command, &remote);
    }
    match args.command {
        AuditCommand::Verify => verify_log(data),
        AuditCommand::Show { index } => show(data, index),
        AuditCommand::Export { from, to } => export(data, from, to),
        AuditCommand::Checkpoint { stored } => checkpoint(data, stored),
        AuditCommand::Pubkey => {
            let log = read(data)?;
            println!("{}", log.verifier_key().to_text());
            Ok(())
        }
        AuditCommand::Prove { index, size, out } => prove(data, index, size, out.as_deref()),
        AuditCommand::Consistency { old, new, out } => consistency(data, old, new, out.as_deref()),
        AuditCommand::VerifyProof {
            file,
            key,
            checkpoint,
            old_checkpoint,
        } => verify_proof(
            data,
            &file,
            key.as_deref(),
            checkpoint.as_deref(),
            old_checkpoint.as_deref(),
        ),
        AuditCommand::Tail { count } => tail(data, count),
    }
}

/// Opens the log read-only, telling the operator about anything opening found.
fn read(data: &Path) -> Result<Log> {
    let log = Log::open_read_only(data)?;
    report(&log);
    Ok(log)
}

fn report(log: &Log) {
    let report = log.report();
    if let Some(torn) = &report.torn_tail {
        eprintln!("note: {torn}");
    }
    if let Some(why) = &report.derived_rebuilt {
        eprintln!("note: derived data rebuilt from the segments: {why}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
}

fn verify_log(data: &Path) -> Result<()> {
    let report = verify(data).context("verify failed")?;
    println!("size        {}", report.size);
    println!("root        {}", hex::encode(report.root));
    println!("chain head  {}", hex::encode(report.chain));
    println!("segments    {}", report.segments);
    match &report.checkpoint {
        Some((origin, size)) => {
            println!("checkpoint  {origin} at size {size}: signature and root match")
        }
        None => println!("checkpoint  none signed yet"),
    }
    println!(
        "derived     interior hashes and offsets of {} entries match",
        report.derived_checked
    );
    println!("ok");
    Ok(())
}

fn show(data: &Path, index: u64) -> Result<()> {
    let log = read(data)?;
    print_entry(&log.read(index)?)
}

fn print_entry(raw: &RawEntry) -> Result<()> {
    let entry = raw.decode()?;
    let record = &entry.record;
    let kind = record.decision.kind();
    println!("index       {}", entry.index);
    println!("time        {}", record.time);
    println!("kind        {} (0x{:04x})", record.decision.name(), kind.0);
    println!("actor       {:?}", record.actor);
    println!("subject     {:?}", record.subject);
    for (field, value) in record.decision.fields() {
        println!("  {field:<13} {value}");
    }
    println!("bytes       {}", raw.bytes.len());
    println!("leaf hash   {}", hex::encode(raw.leaf_hash()));
    println!("chain hash  {}", hex::encode(raw.chain));
    Ok(())
}

fn one_line(entry: &Entry) -> String {
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

fn tail(data: &Path, count: u64) -> Result<()> {
    let log = read(data)?;
    let size = log.size();
    let mut out = BufWriter::new(io::stdout().lock());
    for raw in log.entries(size.saturating_sub(count)..size)? {
        if !write_tail_line(&mut out, &raw?)? {
            return Ok(());
        }
    }
    flush_quietly(out)
}

/// False when stdout is closed (`| head`): the command ends quietly.
fn write_tail_line(out: &mut impl Write, raw: &RawEntry) -> Result<bool> {
    Ok(writeln!(out, "{}", one_line(&raw.decode()?)).is_ok())
}

fn export(data: &Path, from: u64, to: Option<u64>) -> Result<()> {
    let log = read(data)?;
    let end = to.unwrap_or(u64::MAX);
    if let Some(to) = to
        && to > log.size()
    {
        bail!("--to {to} is beyond the log's {} entries", log.size());
    }
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut line = Vec::new();
    for raw in log.entries(from..end)? {
        let raw = raw?;
        if !write_export_line(&mut out, &mut line, raw.index, &raw.bytes)? {
            return Ok(());
        }
    }
    flush_quietly(out)
}

/// Writes `INDEX HEX`; false when stdout is closed (`| head`): the export ends quietly.
fn write_export_line(
    out: &mut impl Write,
    line: &mut Vec<u8>,
    index: u64,
    bytes: &[u8],
) -> Result<bool> {
    line.clear();
    line.extend_from_slice(index.to_string().as_bytes());
    line.push(b' ');
    let start = line.len();
    line.resize(start + bytes.len() * 2, 0);
    hex::encode_to_slice(bytes, &mut line[start..]).context("hex encoding")?;
    line.push(b'\n');
    Ok(out.write_all(line).is_ok())
}

fn flush_quietly(mut out: impl Write) -> Result<()> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn checkpoint(data: &Path, stored: bool) -> Result<()> {
    if !Log::exists(data) {
        bail!(Error::NotFound {
            dir: data.to_owned(),
            expected: data.join("log/segments")
        });
    }
    let signed = if stored {
        read(data)?.checkpoint()
    } else {
        match Log::open(data, LogOptions::default()) {
            Ok(log) => {
                report(&log);
                let signed = log.sign_checkpoint()?;
                log.close()?;
                Some(signed)
            }
            Err(Error::Locked { .. }) => {
                let log = read(data)?;
                let signed = log.checkpoint();
                let size = signed.as_ref().map_or(0, |s| s.checkpoint.size);
                eprintln!(
                    "note: another process is writing the log; this is the last checkpoint it \
                     signed (size {size}; the log has {} entries)",
                    log.size()
                );
                signed
            }
            Err(e) => return Err(e.into()),
        }
    };
    let Some(signed) = signed else {
        bail!("no checkpoint has been signed yet")
    };
    print!("{}", signed.note);
    Ok(())
}

/// The last signed checkpoint if it is for `size`.
fn checkpoint_at(log: &Log, size: u64) -> Option<SignedCheckpoint> {
    log.checkpoint().filter(|c| c.checkpoint.size == size)
}

fn write_proof(file: &ProofFile, out: Option<&Path>, what: &str) -> Result<()> {
    let text = file.to_text();
    match out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {what} to {}", path.display());
        }
    }
    if file.checkpoint.is_none() {
        eprintln!(
            "note: no checkpoint is signed at size {}; check the root against one you trust",
            file.size
        );
    }
    Ok(())
}

fn prove(data: &Path, index: u64, size: Option<u64>, out: Option<&Path>) -> Result<()> {
    let log = read(data)?;
    let size = match size {
        Some(size) => size,
        None => {
            let Some(signed) = log.checkpoint() else {
                bail!(
                    "no checkpoint has been signed yet: run `allot audit checkpoint`, or give --size"
                );
            };
            let size = signed.checkpoint.size;
            if index >= size {
                bail!(
                    "entry {index} is not covered by the last signed checkpoint (size {size}): \
                     run `allot audit checkpoint` to sign the current tree head, or give --size"
                );
            }
            size
        }
    };
    let proof = log.inclusion_proof(index, size)?;
    let file = ProofFile {
        claim: Claim::Inclusion {
            index,
            entry: log.read(index)?.bytes,
        },
        size,
        root: log.root_at(size)?,
        path: proof.path,
        key: Some(log.verifier_key().to_text()),
        checkpoint: checkpoint_at(&log, size).map(|c| c.note),
    };
    write_proof(
        &file,
        out,
        &format!("the inclusion proof of entry {index} in size {size}"),
    )
}

fn consistency(data: &Path, old: u64, new: u64, out: Option<&Path>) -> Result<()> {
    let log = read(data)?;
    let proof = log.consistency_proof(old, new)?;
    let file = ProofFile {
        claim: Claim::Consistency {
            old_size: old,
            old_root: log.root_at(old)?,
        },
        size: new,
        root: log.root_at(new)?,
        path: proof.path,
        key: Some(log.verifier_key().to_text()),
        checkpoint: checkpoint_at(&log, new).map(|c| c.note),
    };
    write_proof(
        &file,
        out,
        &format!("the consistency proof from size {old} to {new}"),
    )
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn verify_proof(
    data: &Path,
    file: &Path,
    key: Option<&str>,
    checkpoint: Option<&Path>,
    old_checkpoint: Option<&Path>,
) -> Result<()> {
    let proof =
        ProofFile::parse(&read_text(file)?).with_context(|| format!("{}", file.display()))?;
    let (trusted, source) = match key {
        Some(key) => {
            let text = if Path::new(key).is_file() {
                read_text(Path::new(key))?
            } else {
                key.to_owned()
            };
            (Some(VerifierKey::parse(text.trim())?), "--key".to_owned())
        }
        None => {
            let path = data.join("log/verifier.key");
            match std::fs::read_to_string(&path) {
                Ok(text) => (
                    Some(
                        VerifierKey::parse(text.trim())
                            .with_context(|| format!("{}", path.display()))?,
                    ),
                    path.display().to_string(),
                ),
                Err(_) => (None, "the proof file".to_owned()),
            }
        }
    };
    let external = checkpoint.map(read_text).transpose()?;
    let old = old_checkpoint.map(read_text).transpose()?;
    let verdict = proof
        .check(trusted.as_ref(), external.as_deref(), old.as_deref())
        .with_context(|| format!("{} does not verify", file.display()))?;
    println!("ok: {}", verdict.statement);
    if let Some(origin) = verdict.signed_by {
        println!("signed by {origin} (key from {source})");
    }
    if let Some(entry) = verdict.entry {
        println!("entry: {}", one_line(&entry));
    }
    Ok(())
}

fn run_remote(command: AuditCommand, remote: &Remote) -> Result<()> {
    match command {
        AuditCommand::Verify => bail!(
            "`allot audit verify` re-derives the log from the data folder's files: run it where \
             the data is, without --server"
        ),
        AuditCommand::VerifyProof { .. } => bail!("`allot audit verify-proof` is offline"),
        AuditCommand::Show { index } => {
            let answer =
                remote.block_on(remote.audit().get_entry(pb::GetEntryRequest { index }))?;
            let entry = answer
                .into_inner()
                .entry
                .context("the server sent no entry")?;
            print_entry(&raw_entry(entry)?)
        }
        AuditCommand::Checkpoint { stored } => {
            let answer = remote_checkpoint(remote, !stored)?;
            let signed = answer.checkpoint.context("the server sent no checkpoint")?;
            print!("{}", signed.note);
            Ok(())
        }
        AuditCommand::Pubkey => {
            println!("{}", remote_checkpoint(remote, false)?.verifier_key);
            Ok(())
        }
        AuditCommand::Export { from, to } => {
            let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            let mut line = Vec::new();
            let request = pb::StreamEntriesRequest {
                start: from,
                end: to,
                follow: false,
                raw: true,
            };
            let open = remote_stream(remote, request, |entry| {
                write_export_line(&mut out, &mut line, entry.index, &entry.data)
            })?;
            if open { flush_quietly(out) } else { Ok(()) }
        }
        AuditCommand::Tail { count } => {
            let size = remote_checkpoint(remote, false)?.log_size;
            let mut out = BufWriter::new(io::stdout().lock());
            let request = pb::StreamEntriesRequest {
                start: size.saturating_sub(count),
                end: Some(size),
                follow: false,
                raw: true,
            };
            let open = remote_stream(remote, request, |entry| {
                write_tail_line(&mut out, &raw_entry(entry)?)
            })?;
            if open { flush_quietly(out) } else { Ok(()) }
        }
        AuditCommand::Prove { index, size, out } => {
            let key = remote_checkpoint(remote, false)?.verifier_key;
            let request = pb::GetInclusionProofRequest {
                index,
                tree_size: size,
            };
            let proof = remote
                .block_on(remote.audit().get_inclusion_proof(request))?
                .into_inner();
            let entry = proof.entry.context("the server sent no entry")?;
            let file = ProofFile {
                claim: Claim::Inclusion {
                    index: entry.index,
                    entry: entry.data,
                },
                size: proof.tree_size,
                root: hash(&proof.root_hash, "root hash")?,
                path: hashes(&proof.path)?,
                key: Some(key),
                checkpoint: proof.checkpoint.map(|c| c.note),
            };
            check_remote_proof(&file)?;
            write_proof(
                &file,
                out.as_deref(),
                &format!("the inclusion proof of entry {index} in size {}", file.size),
            )
        }
        AuditCommand::Consistency { old, new, out } => {
            let key = remote_checkpoint(remote, false)?.verifier_key;
            let request = pb::GetConsistencyProofRequest {
                old_size: old,
                new_size: Some(new),
            };
            let proof = remote
                .block_on(remote.audit().get_consistency_proof(request))?
                .into_inner();
            let file = ProofFile {
                claim: Claim::Consistency {
                    old_size: proof.old_size,
                    old_root: hash(&proof.old_root_hash, "old root hash")?,
                },
                size: proof.new_size,
                root: hash(&proof.new_root_hash, "new root hash")?,
                path: hashes(&proof.path)?,
                key: Some(key),
                checkpoint: proof.checkpoint.map(|c| c.note),
            };
            check_remote_proof(&file)?;
            write_proof(
                &file,
                out.as_deref(),
                &format!("the consistency proof from size {old} to {new}"),
            )
        }
    }
}

fn remote_checkpoint(remote: &Remote, refresh: bool) -> Result<pb::GetCheckpointResponse> {
    let request = pb::GetCheckpointRequest { refresh };
    Ok(remote
        .block_on(remote.audit().get_checkpoint(request))?
        .into_inner())
}

/// Feeds the streamed entries to `each` until it returns false (stdout closed); returns whether
/// the output is still open.
fn remote_stream(
    remote: &Remote,
    request: pb::StreamEntriesRequest,
    mut each: impl FnMut(pb::LogEntry) -> Result<bool>,
) -> Result<bool> {
    remote.run(async {
        let mut stream = remote
            .audit()
            .stream_entries(request)
            .await
            .map_err(status_error)?
            .into_inner();
        while let Some(batch) = stream.message().await.map_err(status_error)? {
            for entry in batch.entries {
                if !each(entry)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })
}

fn raw_entry(entry: pb::LogEntry) -> Result<RawEntry> {
    Ok(RawEntry {
        index: entry.index,
        chain: hash(&entry.chain_hash, "chain hash")?,
        bytes: entry.data,
    })
}

fn hash(bytes: &[u8], what: &str) -> Result<Hash> {
    bytes
        .try_into()
        .with_context(|| format!("the server sent a {what} of {} bytes", bytes.len()))
}

fn hashes(path: &[Vec<u8>]) -> Result<Vec<Hash>> {
    path.iter().map(|h| hash(h, "proof hash")).collect()
}

/// A proof from a server is checked before it is printed: against the checkpoint it came with,
/// under the key the server named (the reader checks the key against one they trust).
fn check_remote_proof(file: &ProofFile) -> Result<()> {
    file.check(None, None, None)
        .map(|_| ())
        .context("the server's proof does not verify")
}
