//! `allot.v1.Audit` over the engine's decision log.
//!
//! Reads go through `spawn_blocking` (they read segment and derived files) and take the log's
//! view lock only for a moment, so they never hold up the committer's appends. Every proof is
//! checked against the signed root before it is sent: a proof that would fail the client's check
//! (damaged derived data) is DATA_LOSS here instead.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use allot_engine::log::proof::{verify_consistency, verify_inclusion};
use allot_engine::log::tlog_proof::TlogProof;
use allot_engine::log::{Entry, Log, RawEntry, SignedCheckpoint, TrustPolicy};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::state::AppState;
use super::status::{blocking, log_status};
use super::validate::{FieldError, FieldPath};
use crate::proto::v1 as pb;
use crate::proto::v1::audit_server::Audit;

/// Entries per `StreamEntries` message, at most.
pub const STREAM_BATCH_ENTRIES: usize = 1024;
/// Bytes of entry data per `StreamEntries` message, about (a single larger entry goes alone).
pub const STREAM_BATCH_BYTES: usize = 1 << 20;
/// How often a following stream looks for new entries.
pub const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// The Audit service.
#[derive(Debug, Clone)]
pub struct AuditService {
    state: Arc<AppState>,
}

impl AuditService {
    pub fn new(state: Arc<AppState>) -> Self {
        AuditService { state }
    }

    fn log(&self) -> &Arc<Log> {
        &self.state.log
    }

    /// The latest checkpoint; one is signed when a server starts, so on a server this always
    /// succeeds (the CLI's in-process service reads the folder's last one, if any).
    fn latest(&self) -> Result<SignedCheckpoint, Status> {
        self.state.checkpoints.latest().ok_or_else(|| {
            Status::failed_precondition(
                "no checkpoint has been signed yet: sign one (`allot audit checkpoint`), or give \
                 a tree size",
            )
        })
    }

    /// `request.index` names an entry of the log.
    fn existing(&self, index: u64) -> Result<(), Status> {
        let size = self.log().size();
        if index >= size {
            return Err(FieldError::out_of_range(
                &FieldPath::request().field("index"),
                format!("entry {index} does not exist: the log has {size} entries"),
            )
            .into());
        }
        Ok(())
    }

    /// The newest cosigned checkpoint covering `index`: the witnesses' latest (waiting for one up
    /// to 5 s), or without witnesses the one the log folder kept.
    async fn cosigned_covering(&self, index: u64, path: &FieldPath) -> Result<Tree, Status> {
        self.existing(index)?;
        let cosigned = &self.state.cosigned;
        let signed = if cosigned.policy().is_some() {
            cosigned
                .wait_for(index + 1, Duration::from_secs(5))
                .await
                .ok_or_else(|| {
                    Status::unavailable(format!(
                        "no checkpoint covering entry {index} reached the witnesses' quorum \
                         within 5 s; retry"
                    ))
                })?
        } else {
            let log = self.log().clone();
            let policy = TrustPolicy {
                log: log.verifier_key().clone(),
                witnesses: Vec::new(),
                quorum: 0,
            };
            let kept = blocking(move || log.cosigned(&policy).map_err(log_status)).await?;
            let (note, trusted) = kept.ok_or_else(|| {
                FieldError::failed_precondition(
                    path,
                    "this log has no witnesses and no cosigned checkpoint".to_owned(),
                )
            })?;
            SignedCheckpoint {
                checkpoint: trusted.checkpoint,
                note,
            }
        };
        let size = signed.checkpoint.size;
        if index >= size {
            return Err(FieldError::failed_precondition(
                path,
                format!("entry {index} is not in the newest cosigned checkpoint (size {size})"),
            )
            .into());
        }
        Ok(signed.into())
    }

    /// The tree of `size` (a request's field at `path`): its root, and its signed checkpoint if
    /// one is held. A size without one gets a proof all the same, which its reader must check
    /// against a root they trust.
    fn tree(&self, size: u64, path: &FieldPath) -> Result<Tree, Status> {
        let log_size = self.log().size();
        if size > log_size {
            let problem = format!("{size} is beyond the log's {log_size} entries");
            return Err(FieldError::out_of_range(path, problem).into());
        }
        if size == 0 {
            return Err(FieldError::invalid(path, "must be at least 1").into());
        }
        let signed = self.state.checkpoints.at(size);
        let root = match &signed {
            Some(c) => c.checkpoint.root,
            None => self.log().root_at(size).map_err(log_status)?,
        };
        Ok(Tree { size, root, signed })
    }
}

/// A tree a proof is made in.
struct Tree {
    size: u64,
    root: allot_engine::log::Hash,
    signed: Option<SignedCheckpoint>,
}

impl From<SignedCheckpoint> for Tree {
    fn from(signed: SignedCheckpoint) -> Self {
        Tree {
            size: signed.checkpoint.size,
            root: signed.checkpoint.root,
            signed: Some(signed),
        }
    }
}

/// A receipt for entry `index` against the latest signed checkpoint (no proof when it does not
/// cover the entry yet: a public caller never makes the server sign).
pub fn public_receipt(state: &AppState, index: u64) -> Result<pb::PublicReceipt, Status> {
    let log = &state.log;
    let mut receipt = pb::PublicReceipt {
        log_index: index,
        tlog_proof: String::new(),
        verifier_key: log.verifier_key().to_text(),
    };
    let Some(signed) = state.checkpoints.latest() else {
        return Ok(receipt);
    };
    let size = signed.checkpoint.size;
    if index >= size {
        return Ok(receipt);
    }
    let proof = log.inclusion_proof(index, size).map_err(log_status)?;
    let raw = log.read(index).map_err(log_status)?;
    receipt.tlog_proof = TlogProof {
        extra: Some(raw.bytes.to_vec()),
        index,
        path: proof.path,
        checkpoint: signed.note.clone(),
    }
    .to_text();
    Ok(receipt)
}

/// A signed checkpoint as a message.
pub fn signed_checkpoint(signed: &SignedCheckpoint) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        note: signed.note.clone(),
        origin: signed.checkpoint.origin.clone(),
        tree_size: signed.checkpoint.size,
        root_hash: signed.checkpoint.root.to_vec(),
    }
}

/// A stored entry as a message; `raw` leaves out the leaf hash and the decoded view.
pub fn log_entry(raw: RawEntry, raw_only: bool) -> pb::LogEntry {
    let (leaf_hash, decoded) = if raw_only {
        (Vec::new(), None)
    } else {
        let decoded = match Entry::decode(&raw.bytes) {
            Ok(entry) => Some(decoded_entry(&entry)),
            Err(e) => {
                // Sent without a decoded view: the client sees the same error decoding `data`.
                tracing::warn!(index = raw.index, error = %e, "entry does not decode");
                None
            }
        };
        (raw.leaf_hash().to_vec(), decoded)
    };
    pb::LogEntry {
        index: raw.index,
        leaf_hash,
        chain_hash: raw.chain.to_vec(),
        data: raw.bytes,
        decoded,
    }
}

fn decoded_entry(entry: &Entry) -> pb::DecodedEntry {
    let r = &entry.record;
    let micros = r.time.unix_micros();
    pb::DecodedEntry {
        time: Some(prost_types::Timestamp {
            seconds: i64::try_from(micros / 1_000_000).unwrap_or(i64::MAX),
            nanos: ((micros % 1_000_000) * 1000) as i32,
        }),
        kind: u32::from(r.decision.kind().0),
        kind_name: r.decision.name().to_owned(),
        actor: r.actor.clone(),
        subject: r.subject.clone(),
        fields: r
            .decision
            .fields()
            .into_iter()
            .map(|(name, value)| pb::EntryField {
                name: name.to_owned(),
                value,
            })
            .collect(),
    }
}

/// Reads entries `start..end` (end within the log), stopping early at the batch limits.
fn read_batch(
    log: &Log,
    start: u64,
    end: u64,
    raw_only: bool,
) -> Result<Vec<pb::LogEntry>, Status> {
    let end = end.min(start.saturating_add(STREAM_BATCH_ENTRIES as u64));
    let mut out = Vec::new();
    let mut bytes = 0;
    for raw in log.entries(start..end).map_err(log_status)? {
        let raw = raw.map_err(log_status)?;
        bytes += raw.bytes.len();
        out.push(log_entry(raw, raw_only));
        if bytes >= STREAM_BATCH_BYTES {
            break;
        }
    }
    Ok(out)
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<pb::StreamEntriesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Audit for AuditService {
    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::GetCheckpointResponse>, Status> {
        let signed = if request.get_ref().refresh {
            Some(self.state.checkpoints.sign(self.log()).await?)
        } else {
            self.state.checkpoints.latest()
        };
        let cosigned = self.state.cosigned.latest().as_ref().map(signed_checkpoint);
        Ok(Response::new(pb::GetCheckpointResponse {
            checkpoint: signed.as_ref().map(signed_checkpoint),
            log_size: self.log().size(),
            verifier_key: self.log().verifier_key().to_text(),
            cosigned,
        }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::GetEntryResponse>, Status> {
        let index = request.get_ref().index;
        self.existing(index)?;
        let log = self.log().clone();
        let raw = blocking(move || log.read(index).map_err(log_status)).await?;
        Ok(Response::new(pb::GetEntryResponse {
            entry: Some(log_entry(raw, false)),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::GetInclusionProofResponse>, Status> {
        let request = request.into_inner();
        let at = FieldPath::request();
        let index = request.index;
        let tree = match request.tree_size {
            _ if request.cosigned => {
                if request.tree_size.is_some() {
                    return Err(FieldError::invalid(
                        &at.field("tree_size"),
                        "give a tree size or ask for the cosigned checkpoint, not both",
                    )
                    .into());
                }
                self.cosigned_covering(index, &at.field("cosigned")).await?
            }
            Some(size) => {
                let tree = self.tree(size, &at.field("tree_size"))?;
                if index >= size {
                    return Err(FieldError::invalid(
                        &at.field("index"),
                        format!("entry {index} is not in the tree of size {size}"),
                    )
                    .into());
                }
                tree
            }
            None => {
                let latest = self.latest()?;
                let covered = latest.checkpoint.size;
                let size = self.log().size();
                if index < covered {
                    latest.into()
                } else if index >= size {
                    return Err(FieldError::out_of_range(
                        &at.field("index"),
                        format!("entry {index} does not exist: the log has {size} entries"),
                    )
                    .into());
                } else if self.log().is_read_only() {
                    return Err(FieldError::failed_precondition(
                        &at.field("index"),
                        format!(
                            "entry {index} is not covered by the last signed checkpoint (size \
                             {covered}): sign the current tree head (`allot audit checkpoint`), \
                             or give a tree size"
                        ),
                    )
                    .into());
                } else {
                    // Not covered yet: sign the current head, which covers it.
                    self.state.checkpoints.sign(self.log()).await?.into()
                }
            }
        };
        let log = self.log().clone();
        let (size, root) = (tree.size, tree.root);
        let (raw, path) = blocking(move || {
            let proof = log.inclusion_proof(index, size).map_err(log_status)?;
            let raw = log.read(index).map_err(log_status)?;
            verify_inclusion(&raw.leaf_hash(), index, size, &proof.path, &root).map_err(|e| {
                tracing::error!(index, size, error = %e, "inclusion proof fails against the signed root");
                Status::data_loss(format!(
                    "the inclusion proof of entry {index} in size {size} made from the stored \
                     hashes does not verify against the signed root ({e}); the server's data \
                     needs `allot audit verify`"
                ))
            })?;
            Ok((raw, proof.path))
        })
        .await?;
        let tlog_proof = tree.signed.as_ref().map_or_else(String::new, |signed| {
            TlogProof {
                extra: Some(raw.bytes.to_vec()),
                index,
                path: path.clone(),
                checkpoint: signed.note.clone(),
            }
            .to_text()
        });
        Ok(Response::new(pb::GetInclusionProofResponse {
            entry: Some(log_entry(raw, false)),
            tree_size: size,
            root_hash: root.to_vec(),
            path: path.iter().map(|h| h.to_vec()).collect(),
            checkpoint: tree.signed.as_ref().map(signed_checkpoint),
            tlog_proof,
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::GetConsistencyProofResponse>, Status> {
        let request = request.into_inner();
        let at = FieldPath::request();
        let old = request.old_size;
        if old == 0 {
            return Err(FieldError::invalid(
                &at.field("old_size"),
                "must be at least 1: the empty tree has no consistency proof (RFC 9162 2.1.4)",
            )
            .into());
        }
        // The newer tree is one this server signed: the proof extends what a reader trusts.
        let tree: Tree = match request.new_size {
            Some(size) => self.state.checkpoints.at(size).ok_or_else(|| {
                let latest = self.state.checkpoints.latest();
                FieldError::failed_precondition(
                    &at.field("new_size"),
                    format!(
                        "this server holds no signed checkpoint of size {size} (the latest is of \
                         size {}); leave it out to use the latest",
                        latest.map_or(0, |c| c.checkpoint.size)
                    ),
                )
            })?,
            None => self.latest()?,
        }
        .into();
        let new = tree.size;
        if old > new {
            let problem = format!("{old} is above the new size {new}");
            return Err(FieldError::invalid(&at.field("old_size"), problem).into());
        }
        let log = self.log().clone();
        let new_root = tree.root;
        let (old_root, path) = blocking(move || {
            let proof = log.consistency_proof(old, new).map_err(log_status)?;
            let old_root = log.root_at(old).map_err(log_status)?;
            verify_consistency(old, new, &old_root, &new_root, &proof.path).map_err(|e| {
                tracing::error!(old, new, error = %e, "consistency proof fails against the signed root");
                Status::data_loss(format!(
                    "the consistency proof from size {old} to {new} made from the stored hashes \
                     does not verify against the signed root ({e}); the server's data needs \
                     `allot audit verify`"
                ))
            })?;
            Ok((old_root, proof.path))
        })
        .await?;
        let old_checkpoint = self.state.checkpoints.at(old);
        if let Some(c) = &old_checkpoint
            && c.checkpoint.root != old_root
        {
            return Err(Status::data_loss(format!(
                "the log's tree of size {old} does not have the root its signed checkpoint says"
            )));
        }
        Ok(Response::new(pb::GetConsistencyProofResponse {
            old_size: old,
            new_size: new,
            old_root_hash: old_root.to_vec(),
            new_root_hash: new_root.to_vec(),
            path: path.iter().map(|h| h.to_vec()).collect(),
            checkpoint: tree.signed.as_ref().map(signed_checkpoint),
            old_checkpoint: old_checkpoint.as_ref().map(signed_checkpoint),
        }))
    }

    type StreamEntriesStream = EntryStream;

    async fn stream_entries(
        &self,
        request: Request<pb::StreamEntriesRequest>,
    ) -> Result<Response<EntryStream>, Status> {
        let request = request.into_inner();
        let at = FieldPath::request();
        let size = self.log().size();
        if let Some(end) = request.end {
            if end < request.start {
                let problem = format!("{end} is below request.start ({})", request.start);
                return Err(FieldError::invalid(&at.field("end"), problem).into());
            }
            if !request.follow && end > size {
                let problem = format!(
                    "{end} is beyond the log's {size} entries (set follow to wait for them)"
                );
                return Err(FieldError::out_of_range(&at.field("end"), problem).into());
            }
        }
        // Without follow, the stream ends at the size the log had when it was asked.
        let end = match (request.end, request.follow) {
            (Some(end), _) => Some(end),
            (None, false) => Some(size),
            (None, true) => None,
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(send_entries(
            self.state.clone(),
            request.start,
            end,
            request.follow,
            request.raw,
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Feeds a `StreamEntries` call: reads batches off the async threads, waits for new entries when
/// following, and ends when the range is sent or the client goes away. When the server stops, a
/// following stream ends at once with UNAVAILABLE (naming where to resume); a stream over
/// existing entries is a call in flight and runs to its end (within the grace period).
async fn send_entries(
    state: Arc<AppState>,
    start: u64,
    end: Option<u64>,
    follow: bool,
    raw_only: bool,
    tx: mpsc::Sender<Result<pb::StreamEntriesResponse, Status>>,
) {
    let mut next = start;
    let mut stopping = state.stopping();
    loop {
        if end.is_some_and(|end| next >= end) {
            return;
        }
        if follow && state.is_stopping() {
            let _ = tx
                .send(Err(Status::unavailable(format!(
                    "the server is stopping; resume from entry {next}"
                ))))
                .await;
            return;
        }
        let available = state.log.size();
        let until = end.map_or(available, |end| end.min(available));
        if next < until {
            let log = state.log.clone();
            match blocking(move || read_batch(&log, next, until, raw_only)).await {
                Ok(entries) => {
                    next += entries.len() as u64;
                    if tx
                        .send(Ok(pb::StreamEntriesResponse { entries }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            changed = stopping.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}
