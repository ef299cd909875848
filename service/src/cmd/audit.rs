//! `allot audit ...`: verify the decision log, read it, prove entries, sign and show checkpoints.
//!
//! `checkpoint`, `pubkey`, `show`, `export`, `prove`, `consistency` and `tail` are calls to the
//! `Audit` API: in process over the data folder (read without its writer lock, so they work while
//! a server writes), or on a server with `--server` (role `auditor`), printing the same. Every
//! proof is checked against its root before it is printed. `checkpoint` signs the current tree
//! head, which needs the folder's writer lock; while another process holds it, it prints the last
//! checkpoint that process signed. `verify` re-reads the folder's files and runs only where the
//! data is; `verify-proof` is offline and never asks anyone.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use allot_engine::log::proof_file::ProofFile;
use allot_engine::log::tlog_proof::TlogProof;
use allot_engine::log::verify::verify;
use allot_engine::log::{Error, Log, TrustPolicy};
use allot_service::proto::v1 as pb;
use allot_service::render::audit as render;
use allot_service::rpc::session::OpenError;
use allot_service::{keys, monitor};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::api::{self, Flag, Local, RemoteArgs, Session};

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
        /// Prove it in the newest checkpoint the log's witnesses cosigned.
        #[arg(long, conflicts_with = "size")]
        cosigned: bool,
        /// Write a c2sp.org/tlog-proof (with the entry's bytes as extra data): a receipt anyone
        /// verifies offline with the log's and the witnesses' keys.
        #[arg(long)]
        tlog_proof: bool,
    },

    /// Follow a log served in the tlog-tiles layout: check each checkpoint's signatures and its
    /// consistency with the last one verified, rebuilding the tree from the entry bundles. Exits
    /// 3 naming the evidence (two checkpoints that cannot both be true) on a rewrite or a split
    /// view, 1 on any other failure (a checkpoint short of the witnesses' quorum, say).
    Monitor {
        /// The log's tiles prefix (where `/checkpoint` and `/tile/...` are).
        #[arg(long, value_name = "URL")]
        log: String,
        /// The log's verifier key (the text, or a file holding it).
        #[arg(long, value_name = "KEY")]
        log_key: String,
        /// A witness's cosigning verifier key (the text, or a file); repeat for each.
        #[arg(long = "witness-key", value_name = "KEY")]
        witness_keys: Vec<String>,
        /// Cosignatures a checkpoint needs [default: a majority of the witness keys].
        #[arg(long, value_name = "K")]
        quorum: Option<usize>,
        /// The monitor's own state [default: DIR/monitor].
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Check again this often, for ever; without it, check once and exit.
        #[arg(long, value_name = "SECONDS")]
        every: Option<f64>,
    },

    /// Make a signing key for a log (or with --witness, a witness's cosigning key) in a new file
    /// readable only by its owner, to keep outside the data folder (`signing_key_file`); prints
    /// its verifier key.
    Keygen {
        /// The key's name: a log's origin, or a witness's name.
        #[arg(long, value_name = "NAME")]
        name: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long)]
        witness: bool,
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
        /// For a tlog-proof: a witness's cosigning key (the text, or a file); repeat for each.
        #[arg(long = "witness-key", value_name = "KEY")]
        witness_keys: Vec<String>,
        /// For a tlog-proof: cosignatures needed [default: a majority of the witness keys].
        #[arg(long, value_name = "K")]
        quorum: Option<usize>,
    },

    /// Show the last entries, one line each.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        count: u64,
    },
}

/// The request fields of the audit calls, by the arguments they came from.
const FLAGS: &[Flag] = &[
    ("request.index", ""),
    ("request.tree_size", "--size"),
    ("request.old_size", ""),
    ("request.new_size", ""),
    ("request.start", "--from"),
    ("request.end", "--to"),
];

pub fn run(args: AuditArgs, data: &Path, remote: &RemoteArgs) -> Result<()> {
    let open = |local| Ok::<_, anyhow::Error>(api::open(remote, data, local)?.names(FLAGS));
    match args.command {
        AuditCommand::Verify => {
            remote.refuse(
                "`allot audit verify` re-derives the log from the data folder's files: run it \
                 where the data is",
            )?;
            verify_log(data)
        }
        AuditCommand::VerifyProof {
            file,
            key,
            witness_keys,
            quorum,
            ..
        } if read_text(&file)?.starts_with("c2sp.org/tlog-proof@v1\n") => {
            let policy = policy(data, key.as_deref(), &witness_keys, quorum)?;
            let proof = TlogProof::parse(&read_text(&file)?)
                .with_context(|| format!("{}", file.display()))?;
            let trusted = (proof.verify(&policy, None))
                .with_context(|| format!("{} does not verify", file.display()))?;
            print!("{}", render::tlog_proof_verdict(&proof, &trusted)?);
            Ok(())
        }
        AuditCommand::Monitor {
            log,
            log_key,
            witness_keys,
            quorum,
            state,
            every,
        } => {
            let policy = policy(data, Some(&log_key), &witness_keys, quorum)?;
            let state = state.unwrap_or_else(|| data.join("monitor"));
            Ok(monitor::run(&log, policy, &state, every)?)
        }
        AuditCommand::Keygen { name, out, witness } => {
            println!("{}", keys::new_key_file(&name, &out, witness)?.to_text());
            Ok(())
        }
        AuditCommand::VerifyProof {
            file,
            key,
            checkpoint,
            old_checkpoint,
            ..
        } => verify_proof(
            data,
            &file,
            key.as_deref(),
            checkpoint.as_deref(),
            old_checkpoint.as_deref(),
        ),
        AuditCommand::Checkpoint { stored } => checkpoint(remote, data, stored),
        AuditCommand::Pubkey => {
            let session = open(Local::READ)?;
            println!("{}", checkpoint_answer(&session, false)?.verifier_key);
            Ok(())
        }
        AuditCommand::Show { index } => {
            let session = open(Local::READ)?;
            let request = pb::GetEntryRequest { index };
            let answer = session.call(session.api().audit().get_entry(request))?;
            let entry = answer.entry.context("the answer has no entry")?;
            let raw = render::raw_entry(entry).map_err(|s| session.error(s))?;
            print!("{}", render::entry(&raw)?);
            Ok(())
        }
        AuditCommand::Export { from, to } => {
            let session = open(Local::READ)?;
            let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            let mut line = Vec::new();
            let request = pb::StreamEntriesRequest {
                start: from,
                end: to,
                follow: false,
                raw: true,
            };
            let open = stream(&session, request, |entry| {
                // False when stdout is closed (`| head`): the export ends quietly.
                Ok(out
                    .write_all(render::export_line(&mut line, entry.index, &entry.data))
                    .is_ok())
            })?;
            if open { flush_quietly(out) } else { Ok(()) }
        }
        AuditCommand::Tail { count } => {
            let session = open(Local::READ)?;
            let size = checkpoint_answer(&session, false)?.log_size;
            let mut out = BufWriter::new(io::stdout().lock());
            let request = pb::StreamEntriesRequest {
                start: size.saturating_sub(count),
                end: Some(size),
                follow: false,
                raw: true,
            };
            let open = stream(&session, request, |entry| {
                let raw = render::raw_entry(entry).map_err(|s| session.error(s))?;
                // False when stdout is closed (`| head`): the command ends quietly.
                Ok(writeln!(out, "{}", render::entry_line(&raw.decode()?)).is_ok())
            })?;
            if open { flush_quietly(out) } else { Ok(()) }
        }
        AuditCommand::Prove {
            index,
            size,
            out,
            cosigned,
            tlog_proof,
        } => {
            let session = open(Local::READ)?;
            let key = checkpoint_answer(&session, false)?.verifier_key;
            let request = pb::GetInclusionProofRequest {
                index,
                tree_size: size,
                cosigned,
            };
            let proof = session.call(session.api().audit().get_inclusion_proof(request))?;
            if tlog_proof {
                return write_text(&proof.tlog_proof, out.as_deref(), "the tlog-proof");
            }
            let file = render::inclusion_proof(proof, key).map_err(|s| session.error(s))?;
            let what = format!("the inclusion proof of entry {index} in size {}", file.size);
            write_proof(&file, out.as_deref(), &what)
        }
        AuditCommand::Consistency { old, new, out } => {
            let session = open(Local::READ)?;
            let key = checkpoint_answer(&session, false)?.verifier_key;
            let request = pb::GetConsistencyProofRequest {
                old_size: old,
                new_size: Some(new),
            };
            let proof = session.call(session.api().audit().get_consistency_proof(request))?;
            let file = render::consistency_proof(proof, key).map_err(|s| session.error(s))?;
            let what = format!("the consistency proof from size {old} to {new}");
            write_proof(&file, out.as_deref(), &what)
        }
    }
}

/// `checkpoint`: signs the current tree head (or, with `stored`, shows the last one). On the
/// data folder while another process holds its writer lock, shows the last one that process
/// signed.
fn checkpoint(remote: &RemoteArgs, data: &Path, stored: bool) -> Result<()> {
    if remote.server.is_none() && !Log::exists(data) {
        bail!(Error::NotFound {
            dir: data.to_owned(),
            expected: data.join("log/segments")
        });
    }
    let writer = Local {
        write: !stored,
        ..Local::READ
    };
    let answer = match api::open(remote, data, writer) {
        Ok(session) => checkpoint_answer(&session, !stored)?,
        Err(e)
            if e.downcast_ref::<OpenError>()
                .is_some_and(OpenError::is_locked) =>
        {
            let session = api::open(remote, data, Local::READ)?;
            let answer = checkpoint_answer(&session, false)?;
            let size = answer.checkpoint.as_ref().map_or(0, |c| c.tree_size);
            eprintln!(
                "note: another process is writing the log; this is the last checkpoint it \
                 signed (size {size}; the log has {} entries)",
                answer.log_size
            );
            answer
        }
        Err(e) => return Err(e),
    };
    let Some(signed) = answer.checkpoint else {
        bail!("no checkpoint has been signed yet")
    };
    print!("{}", signed.note);
    Ok(())
}

fn checkpoint_answer(session: &Session, refresh: bool) -> Result<pb::GetCheckpointResponse> {
    let request = pb::GetCheckpointRequest { refresh };
    Ok(session.call(session.api().audit().get_checkpoint(request))?)
}

/// Feeds the streamed entries to `each` until it returns false (stdout closed); returns whether
/// the output is still open.
fn stream(
    session: &Session,
    request: pb::StreamEntriesRequest,
    mut each: impl FnMut(pb::LogEntry) -> Result<bool>,
) -> Result<bool> {
    let mut audit = session.api().audit();
    let mut entries = session.call(audit.stream_entries(request))?;
    while let Some(batch) = session
        .run(entries.message())
        .map_err(|s| session.error(s))?
    {
        for entry in batch.entries {
            if !each(entry)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn verify_log(data: &Path) -> Result<()> {
    let report = verify(data).context("verify failed")?;
    print!("{}", render::verified(&report));
    Ok(())
}

fn flush_quietly(mut out: impl Write) -> Result<()> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Checks a proof against its root (under the key the answer named; the reader checks the key
/// against one they trust), then prints or saves it.
fn write_proof(file: &ProofFile, out: Option<&Path>, what: &str) -> Result<()> {
    file.check(None, None, None)
        .map(|_| ())
        .context("the proof does not verify")?;
    write_text(&file.to_text(), out, what)?;
    if file.checkpoint.is_none() {
        eprintln!(
            "note: no checkpoint is signed at size {}; check the root against one you trust",
            file.size
        );
    }
    Ok(())
}

fn write_text(text: &str, out: Option<&Path>, what: &str) -> Result<()> {
    if text.is_empty() {
        bail!("the server has no signed checkpoint for {what}");
    }
    match out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {what} to {}", path.display());
        }
    }
    Ok(())
}

/// The policy of `--key` (default: the data folder's key), `--witness-key` and `--quorum`.
fn policy(
    data: &Path,
    key: Option<&str>,
    witnesses: &[String],
    q: Option<usize>,
) -> Result<TrustPolicy> {
    let folder_key = data.join("log/verifier.key").to_string_lossy().into_owned();
    Ok(keys::policy(key.unwrap_or(&folder_key), witnesses, q)?)
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
    // --key, else the data folder's key, else (none trusted) the key the proof names.
    let folder_key = data.join("log/verifier.key");
    let (trusted, source) = match key {
        Some(key) => (Some(keys::verifier_key_arg(key)?), "--key".to_owned()),
        None if folder_key.is_file() => {
            let source = folder_key.display().to_string();
            (Some(keys::verifier_key_arg(&source)?), source)
        }
        None => (None, "the proof file".to_owned()),
    };
    let external = checkpoint.map(read_text).transpose()?;
    let old = old_checkpoint.map(read_text).transpose()?;
    let verdict = proof
        .check(trusted.as_ref(), external.as_deref(), old.as_deref())
        .with_context(|| format!("{} does not verify", file.display()))?;
    print!("{}", render::proof_verdict(&verdict, &source));
    Ok(())
}
