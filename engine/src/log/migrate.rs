//! `allot store migrate`: a data folder's log into a PostgreSQL store, and back, verifying as it
//! goes: every entry against the chain (and, from a folder, the tree's stored leaf), the tree
//! rebuilt from the leaves against the source's head and its signed checkpoint, the blobs
//! against their digests. A migration that stopped part way resumes where the target ends
//! (once its entries are checked to be the source's).

use std::path::Path;

use super::backend::{Backend as _, BackendError};
use super::merkle::{Frontier, Hash};
use super::postgres::PgStore;
use super::store::{CHAIN_SEED, RawEntry};
use super::{Error, Log, LogOptions, Result, SigningKey, TreeHead};
use crate::blobs::BlobStore;
use crate::fs::DataDir;
use crate::log::Digest;

/// Entries copied per transaction (and per progress report).
const CHUNK: u64 = 10_000;

/// What a migration copied and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Entries the target held before (a resumed migration).
    pub already: u64,
    /// Entries copied now.
    pub copied: u64,
    pub blobs: u64,
    /// The head both sides now have.
    pub head: TreeHead,
    /// The size of the signed checkpoint that was checked against the tree, if any.
    pub checkpoint: Option<u64>,
}

impl Migrated {
    /// One JSON object: what `allot store migrate` prints.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "entries": self.head.size,
            "already_there": self.already,
            "copied": self.copied,
            "blobs": self.blobs,
            "root": hex::encode(self.head.root),
            "checkpoint_checked": self.checkpoint,
        })
        .to_string()
    }
}

fn conflict(store: &PgStore, index: u64, reason: String) -> Error {
    Error::Backend(BackendError::Conflict {
        store: store.describe(),
        index,
        reason,
    })
}

/// Copies the log of the data folder `data` into `store` (which must be empty or hold a prefix
/// of it), with the folder's blobs. `progress(done, total)` is called after each chunk.
pub fn folder_to_store(
    data: &Path,
    store: &PgStore,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Migrated> {
    let log = Log::open_read_only(data)?;
    let key = format!("{}\n", log.verifier_key().to_text());
    let stored = store.meta_or_insert("verifier-key", key.as_bytes())?;
    if stored != key.as_bytes() {
        return Err(conflict(
            store,
            0,
            format!(
                "the store holds the log of {}, not of {}",
                String::from_utf8_lossy(&stored).trim(),
                key.trim()
            ),
        ));
    }
    let head = log.head()?;
    let already = store.size()?;
    if already > head.size {
        return Err(conflict(
            store,
            head.size,
            format!(
                "the store holds {already} entries, the folder {}: it is not this folder's",
                head.size
            ),
        ));
    }
    let blobs = copy_blobs_to_store(data, store)?;
    let mut frontier = Frontier::new();
    let mut previous = CHAIN_SEED;
    let mut chunk = Vec::new();
    let mut copied = 0;
    for raw in log.entries(0..head.size)? {
        let raw = raw?;
        frontier.push(raw.leaf_hash(), |_| {});
        if raw.index < already {
            if raw.index + 1 == already && store.chain_at(Some(raw.index))? != Some(raw.chain) {
                return Err(conflict(
                    store,
                    raw.index,
                    "the store's entries are not this folder's (their chains differ)".into(),
                ));
            }
            previous = raw.chain;
            continue;
        }
        chunk.push(raw);
        if chunk.len() as u64 == CHUNK {
            copied += flush(store, &mut previous, &mut chunk)?;
            progress(already + copied, head.size);
        }
    }
    copied += flush(store, &mut previous, &mut chunk)?;
    progress(already + copied, head.size);
    let checkpoint = check_tree(&log, &frontier, &head)?;
    // Read back: the store's log, checked as any reader checks it, ends at the same chain.
    if store.chain_at(head.size.checked_sub(1))? != Some(head.chain) {
        return Err(conflict(
            store,
            head.size,
            "read back, the store's chain does not end at the folder's".into(),
        ));
    }
    Ok(Migrated {
        already,
        copied,
        blobs,
        head,
        checkpoint,
    })
}

fn flush(store: &PgStore, previous: &mut Hash, chunk: &mut Vec<RawEntry>) -> Result<u64> {
    let Some(last) = chunk.last().map(|e| e.chain) else {
        return Ok(0);
    };
    store.import(previous, chunk)?;
    *previous = last;
    let n = chunk.len() as u64;
    chunk.clear();
    Ok(n)
}

/// The tree rebuilt from the leaves read is the source's, and its signed checkpoint agrees.
fn check_tree(log: &Log, frontier: &Frontier, head: &TreeHead) -> Result<Option<u64>> {
    if frontier.size() != head.size || frontier.root() != head.root {
        return Err(Error::Internal(format!(
            "the tree rebuilt from the {} entries read has root {}, the log's head says {}",
            frontier.size(),
            hex::encode(frontier.root()),
            hex::encode(head.root)
        )));
    }
    let Some(signed) = log.checkpoint() else {
        return Ok(None);
    };
    let cp = &signed.checkpoint;
    if log.root_at(cp.size)? != cp.root {
        return Err(Error::Internal(format!(
            "the signed checkpoint of size {} does not match the tree",
            cp.size
        )));
    }
    Ok(Some(cp.size))
}

fn copy_blobs_to_store(data: &Path, store: &PgStore) -> Result<u64> {
    let blobs = BlobStore::new(data);
    let digests = blobs.digests()?;
    for digest in &digests {
        // Read through the blob store, which checks the digest.
        store.put_blob(&digest.to_string(), &blobs.get(digest)?)?;
    }
    Ok(digests.len() as u64)
}

/// Copies the log of `store` into a new data folder `data` (empty, or holding a prefix of the
/// store's log), with the blobs its entries refer to. `key` is the log's signing key (kept
/// outside the store).
pub fn store_to_folder(
    store: &PgStore,
    data: &Path,
    key: SigningKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Migrated> {
    let stored_key = store.meta("verifier-key")?.unwrap_or_default();
    let ours = format!("{}\n", key.verifier().to_text());
    if stored_key != ours.as_bytes() {
        return Err(conflict(
            store,
            0,
            format!(
                "the store's log is signed by {}, the key given is {}",
                String::from_utf8_lossy(&stored_key).trim(),
                ours.trim()
            ),
        ));
    }
    let log = Log::open(
        data,
        LogOptions {
            signing_key: Some(key),
            ..LogOptions::default()
        },
    )?;
    let total = store.size()?;
    let already = log.size();
    if already > 0 && store.chain_at(Some(already - 1))? != Some(log.head()?.chain) {
        return Err(conflict(
            store,
            already - 1,
            format!(
                "the folder {} is not a copy of this store's log",
                data.display()
            ),
        ));
    }
    let mut copied = 0;
    loop {
        let previous = log.head()?.chain;
        let entries = store.read(log.size(), CHUNK, &previous)?;
        if entries.is_empty() {
            break;
        }
        copied += entries.len() as u64;
        log.submit_replicated(entries)?.wait()?;
        progress(log.size(), total);
    }
    let head = log.head()?;
    // The tree the folder derived, rebuilt independently from its leaves.
    let mut frontier = Frontier::new();
    for raw in log.entries(0..head.size)? {
        frontier.push(raw?.leaf_hash(), |_| {});
    }
    check_tree(&log, &frontier, &head)?;
    let blobs = copy_blobs_from_store(store, &DataDir::new(data))?;
    let signed = log.sign_checkpoint()?;
    log.close()?;
    Ok(Migrated {
        already,
        copied,
        blobs,
        head,
        checkpoint: Some(signed.checkpoint.size),
    })
}

/// The store's blobs (the inputs of runs and loaded schedules), each checked by its digest.
fn copy_blobs_from_store(store: &PgStore, data: &DataDir) -> Result<u64> {
    let digests = store.blob_digests()?;
    let folder = BlobStore::new(data.clone());
    let mut copied = 0;
    for name in digests {
        let Some(digest) = Digest::parse_hex(&name) else {
            continue;
        };
        if let Some(bytes) = store.get_blob(&name)?
            && Digest::of(&bytes) == digest
        {
            folder.put(&bytes)?;
            copied += 1;
        }
    }
    Ok(copied)
}
