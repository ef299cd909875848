//! One replica of a log kept in PostgreSQL: its data folder is a cache of the store's log,
//! checked against it when opened and kept current by copying what the leader commits.
//!
//! Roles: every replica starts as a follower. A follower tails the store (the leader's
//! notifications, and a look every [`Replica::poll`] in case one is missed) and takes the lease
//! once it has expired by the database's clock; it then catches up with everything committed
//! under the earlier terms (nothing more can be, since the store refuses their writes) before
//! it writes under its own term. A leader renews its lease every third of its length; when it
//! cannot, it stops writing before the lease runs out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::BackendError;
use super::postgres::{Lease, PgStore};
use super::{Error, Log, Result};

/// Entries read from the store at a time while catching up.
const CATCH_UP_CHUNK: u64 = 16_384;

/// How a replica takes part.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// This process, in the lease (random per start).
    pub holder: String,
    /// Where this replica serves clients: followers name it in their refusals.
    pub address: String,
    /// How long a lease lasts unless renewed. A leader that died is replaced after at most this
    /// long (plus one poll).
    pub lease: Duration,
    /// How often a follower looks at the store when no notification came.
    pub poll: Duration,
}

impl ReplicaOptions {
    pub fn new(address: impl Into<String>) -> Self {
        use rand::TryRng as _;
        let mut tag = [0u8; 8];
        let _ = rand::rngs::SysRng.try_fill_bytes(&mut tag);
        ReplicaOptions {
            holder: hex::encode(tag),
            address: address.into(),
            lease: Duration::from_secs(2),
            poll: Duration::from_millis(100),
        }
    }
}

/// What a replica is doing now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Follower {
        leader: Option<String>,
    },
    /// Took the lease and copied the log: the caller brings its state up to the log's size and
    /// then calls [`Replica::lead`]. Writes are refused until then.
    Elected {
        term: u64,
    },
    Leader {
        term: u64,
    },
}

/// A replica: the store, this process's place in the lease, and when it last renewed.
#[derive(Debug)]
pub struct Replica {
    pub store: Arc<PgStore>,
    pub options: ReplicaOptions,
    /// When the lease runs out by this process's clock (a leader stops writing before it).
    deadline: Option<Instant>,
}

impl Replica {
    pub fn new(store: Arc<PgStore>, options: ReplicaOptions) -> Self {
        Replica {
            store,
            options,
            deadline: None,
        }
    }

    /// Checks that `log`'s folder is a cache of this store's log (same key; its entries a
    /// prefix of the store's) and copies what it lacks. Returns the entries copied.
    pub fn open(&self, log: &Log) -> Result<u64> {
        let key = format!("{}\n", log.verifier_key().to_text());
        let stored = self.store.meta_or_insert("verifier-key", key.as_bytes())?;
        if stored != key.as_bytes() {
            return Err(Error::Backend(BackendError::Conflict {
                store: self.store_name(),
                index: 0,
                reason: format!(
                    "the store's log is signed by {}, this replica's key is {}: every replica \
                     needs the same signing key",
                    String::from_utf8_lossy(&stored).trim(),
                    key.trim()
                ),
            }));
        }
        let size = log.size();
        if size > 0 {
            let head = log.head()?;
            match self.store.chain_at(Some(size - 1))? {
                Some(chain) if chain == head.chain => {}
                Some(_) => {
                    return Err(Error::Backend(BackendError::Conflict {
                        store: self.store_name(),
                        index: size - 1,
                        reason: format!(
                            "the data folder {} is not a copy of this store's log (their \
                             chains differ); give each replica a folder of its own, empty or \
                             copied from this store",
                            log.data_dir().path().display()
                        ),
                    }));
                }
                None => {
                    return Err(Error::Backend(BackendError::Conflict {
                        store: self.store_name(),
                        index: size - 1,
                        reason: format!(
                            "the data folder {} holds {size} entries, the store fewer: it is \
                             not this store's cache (migrate a folder with `allot store \
                             migrate`)",
                            log.data_dir().path().display()
                        ),
                    }));
                }
            }
        }
        let copied = self.catch_up(log)?;
        // Learns who leads, for the refusals of writes.
        self.store.lease()?;
        Ok(copied)
    }

    fn store_name(&self) -> String {
        use super::backend::Backend as _;
        self.store.describe()
    }

    /// Copies into the folder what the store holds beyond it; returns how many entries.
    pub fn catch_up(&self, log: &Log) -> Result<u64> {
        let mut copied = 0;
        loop {
            let previous = log.head()?.chain;
            let entries = self.store.read(log.size(), CATCH_UP_CHUNK, &previous)?;
            let n = entries.len() as u64;
            if n == 0 {
                return Ok(copied);
            }
            log.submit_replicated(entries)?.wait()?;
            copied += n;
            if n < CATCH_UP_CHUNK {
                return Ok(copied);
            }
        }
    }

    /// One step of the role: a leader renews its lease (and steps down if it cannot); a
    /// follower takes an expired lease, catching up first. Returns the role after the step.
    /// Errors are the store's (unreachable): a leader that cannot renew before its deadline
    /// steps down.
    pub fn step(&mut self, log: &Log) -> Result<Role> {
        let ttl = self.options.lease;
        if let Some(term) = self.store.term() {
            if self.expired() {
                // Not renewed in time (the store was slow or unreachable): another replica may
                // take the lease any moment, so stop writing first.
                self.store.step_down();
                self.deadline = None;
            } else {
                match self.store.renew(term, ttl) {
                    Ok(true) => {
                        self.deadline = Some(Instant::now() + ttl - ttl / 4);
                        return Ok(Role::Leader { term });
                    }
                    Ok(false) => {
                        self.store.step_down();
                        self.deadline = None;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let mut lease = self.store.lease()?;
        if lease.as_ref().is_none_or(|l: &Lease| !l.live) {
            let started = Instant::now();
            if let Some(term) =
                self.store
                    .try_acquire(&self.options.holder, &self.options.address, ttl)?
            {
                // Nothing more can be committed under earlier terms: copy what was.
                self.catch_up(log)?;
                self.deadline = Some(started + ttl - ttl / 4);
                return Ok(Role::Elected { term });
            }
            // Another replica took it first: see whom.
            lease = self.store.lease()?;
        }
        let leader = lease.filter(|l| l.live).map(|l| l.address);
        Ok(Role::Follower { leader })
    }

    /// Starts writing under `term` (after [`Role::Elected`]), unless the lease ran out
    /// meanwhile; returns whether it leads.
    pub fn lead(&mut self, term: u64) -> Result<bool> {
        if !self.store.renew(term, self.options.lease)? {
            self.deadline = None;
            return Ok(false);
        }
        self.deadline = Some(Instant::now() + self.options.lease - self.options.lease / 4);
        self.store.lead(term);
        Ok(true)
    }

    /// Whether a leader's lease is about to run out by this process's clock without a renewal
    /// (it then stops writing).
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}
