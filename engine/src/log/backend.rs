//! The storage seam of the decision log: where an acknowledged entry must be before its
//! appender hears back.
//!
//! Two implementations. The embedded data folder (the default, no backend): the segment files are
//! the store and an entry is acknowledged once its group is fsynced there. PostgreSQL
//! ([`super::postgres::PgStore`]): the database is the store, shared by several replicas, and an
//! entry is acknowledged once the transaction holding its group has committed; each replica's
//! data folder is then a verified cache of the database's log, from which proofs, tiles and
//! replay are served, and which can be removed and fetched again at any time.
//!
//! The log calls the backend from its syncer thread, once per group commit, before the group is
//! written to the folder: the folder never holds an entry the store does not.

use std::fmt;

use super::merkle::Hash;

/// One entry as stored: its index, its canonical bytes (which hold the index too) and the chain
/// hash after it.
#[derive(Debug, Clone, Copy)]
pub struct StoredEntry<'a> {
    pub index: u64,
    pub body: &'a [u8],
    pub chain: Hash,
}

/// Why a backend did not store a group, or refused a writer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// This replica does not hold the write lease. `leader` is the address the leader
    /// advertises, when there is one.
    #[error("this replica follows{}: writes go to the leader", leader.as_deref().map(|l| format!(" {l}")).unwrap_or_default())]
    NotLeader { leader: Option<String> },

    /// Another replica took the lease: this one's writes are fenced off.
    #[error(
        "this replica was deposed: it wrote under term {ours}, the store's lease is at term \
         {current}{}",
        leader.as_deref().map(|l| format!(" (leader {l})")).unwrap_or_default()
    )]
    Fenced {
        ours: u64,
        current: u64,
        leader: Option<String>,
    },

    /// The store did not answer, or failed: whether the group was stored is unknown, so the
    /// log stops and is reopened from the store.
    #[error("{store}: {reason}")]
    Unavailable { store: String, reason: String },

    /// The store holds something else at these indices: a gap, or another chain.
    #[error("{store}: entry {index}: {reason}")]
    Conflict {
        store: String,
        index: u64,
        reason: String,
    },
}

/// A store of acknowledged entries besides the data folder (see the module's documentation).
pub trait Backend: Send + Sync + fmt::Debug {
    /// Where it is, for messages (never with a password).
    fn describe(&self) -> String;

    /// Whether this process may write now: checked before a batch is queued, so a follower
    /// refuses writes without touching its log. The store checks again in every transaction.
    fn check_writer(&self) -> Result<(), BackendError>;

    /// Stores consecutive entries, the first following the stored entry whose chain hash is
    /// `previous` (the seed for entry 0), all or none, under this writer's fencing term;
    /// returns once they are durable.
    fn append(&self, previous: &Hash, entries: &[StoredEntry<'_>]) -> Result<(), BackendError>;

    /// Stores a blob (an input a decision refers to by digest) durably, before the decision is
    /// logged; storing one twice keeps the first.
    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), BackendError>;

    /// The blob stored under `digest` (unchecked: the caller checks the digest).
    fn get_blob(&self, digest: &str) -> Result<Option<Vec<u8>>, BackendError>;
}
