//! The PostgreSQL backend: the database sequences and stores the log's entries; replicas share
//! it under a write lease with a fencing term.
//!
//! ```text
//! allot_entries (idx bigint PRIMARY KEY, body bytea, chain bytea)   one row per entry
//! allot_lease   (one row: term, holder, address, expires)             the write lease
//! allot_blobs   (digest text PRIMARY KEY, bytes bytea)                inputs decisions refer to
//! allot_meta    (name text PRIMARY KEY, value bytea)                  the log's verifier key
//! ```
//!
//! - A group is one transaction: it locks the lease row (`FOR SHARE`, so a takeover waits for it
//!   and it waits for a takeover), checks that the term is still this writer's, that its first
//!   index follows the last stored entry and that its chain continues that entry's, inserts the
//!   rows and notifies `allot_log`. A deposed leader's transaction fails at the term check even
//!   if it has not noticed that it was deposed; the index being the primary key makes a second
//!   writer at one index impossible even without the check.
//! - The lease's expiry is the database's clock (`clock_timestamp()`), so replicas' clocks do not
//!   matter. A replica takes an expired lease by raising the term.
//! - Reads check each row: its index is the next one, the index inside its bytes is its own,
//!   and its chain hash follows from the one before and its leaf hash.
//!
//! The client is the synchronous `postgres` crate (tokio-postgres driven by its own runtime):
//! the log's syncer and the followers' tailers are plain threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, Config, NoTls};

use super::backend::{Backend, BackendError, StoredEntry};
use super::entry::Entry;
use super::merkle::{Hash, leaf_hash};
use super::store::{CHAIN_SEED, RawEntry, chain_hash};

const SCHEMA: &str = "
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS allot_entries (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    body bytea NOT NULL,
    chain bytea NOT NULL CHECK (length(chain) = 32)
);
CREATE TABLE IF NOT EXISTS allot_lease (
    id int PRIMARY KEY CHECK (id = 1),
    term bigint NOT NULL,
    holder text NOT NULL,
    address text NOT NULL,
    expires timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS allot_blobs (digest text PRIMARY KEY, bytes bytea NOT NULL);
CREATE TABLE IF NOT EXISTS allot_meta (name text PRIMARY KEY, value bytea NOT NULL);
";

/// A group's insert (see [`PgStore::import`] and the backend's `append`): the rows of
/// `unnest($1, $2, $3)` if the lease's term is `$4` (or `$4` is null: a migration), the store
/// holds `$5` entries and the chain of entry `$5 - 1` is `$6` (the seed for entry 0); notifies
/// `$7` (the new size) on [`CHANNEL`]. Answers how many rows it inserted.
const APPEND: &str = "
WITH lease AS (SELECT term FROM allot_lease WHERE id = 1 FOR SHARE),
ins AS (
    INSERT INTO allot_entries (idx, body, chain)
    SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])
    WHERE ($4::bigint IS NULL OR (SELECT term FROM lease) = $4::bigint)
      AND (SELECT coalesce(max(idx) + 1, 0) FROM allot_entries) = $5::bigint
      AND coalesce((SELECT chain FROM allot_entries WHERE idx = $5::bigint - 1),
                   '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
          = $6::bytea
    RETURNING 1
)
SELECT count(*), pg_notify('allot_log', $7::text) FROM ins";

/// The channel a leader notifies after each group, with the new size as payload.
pub const CHANNEL: &str = "allot_log";

/// The lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub term: u64,
    /// The holding process (a random id per start).
    pub holder: String,
    /// Where the holder serves (what followers name to clients).
    pub address: String,
    /// Whether the lease is still running by the database's clock.
    pub live: bool,
}

/// A log store in a PostgreSQL database, shared by the replicas that open it.
pub struct PgStore {
    config: Config,
    shown: String,
    /// For appends (the syncer), with the append statement prepared on it.
    appender: Mutex<Option<(Client, postgres::Statement)>>,
    /// For blobs and metadata.
    writer: Mutex<Option<Client>>,
    /// For the lease (renewals must not queue behind a large group).
    lease: Mutex<Option<Client>>,
    /// For catching up.
    reader: Mutex<Option<Client>>,
    /// The term this process writes under; 0 when it does not lead.
    term: AtomicU64,
    /// The leader's address as last seen, for followers' refusals.
    leader: Mutex<Option<String>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("store", &self.shown)
            .field("term", &self.term())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or key=value) and makes the tables if
    /// they are missing.
    pub fn connect(url: &str) -> Result<Arc<PgStore>, BackendError> {
        let mut config: Config = url.parse().map_err(|e| BackendError::Unavailable {
            store: "the PostgreSQL store".into(),
            reason: format!("not a PostgreSQL connection string: {}", pg_error_text(&e)),
        })?;
        config
            .connect_timeout(Duration::from_secs(3))
            .keepalives_idle(Duration::from_secs(5))
            .application_name("allot");
        let shown = describe(&config);
        let store = Arc::new(PgStore {
            config,
            shown,
            appender: Mutex::default(),
            writer: Mutex::default(),
            lease: Mutex::default(),
            reader: Mutex::default(),
            term: AtomicU64::new(0),
            leader: Mutex::default(),
        });
        store.with(&store.writer, |c| c.batch_execute(SCHEMA))?;
        Ok(store)
    }

    /// A new connection of its own (for LISTEN).
    pub fn client(&self) -> Result<Client, BackendError> {
        self.config.connect(NoTls).map_err(|e| self.unavailable(e))
    }

    fn unavailable(&self, e: postgres::Error) -> BackendError {
        BackendError::Unavailable {
            store: self.shown.clone(),
            reason: pg_error_text(&e),
        }
    }

    /// Runs `f` on the connection in `slot`, connecting first if it is missing or closed; a
    /// connection that failed is dropped so the next call reconnects.
    fn with<T>(
        &self,
        slot: &Mutex<Option<Client>>,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, BackendError> {
        let mut slot = lock(slot);
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.client()?);
        }
        let client = slot.as_mut().expect("connected above");
        match f(client) {
            Ok(t) => Ok(t),
            Err(e) => {
                if client.is_closed() || e.as_db_error().is_none() {
                    *slot = None;
                }
                Err(self.unavailable(e))
            }
        }
    }

    /// Number of stored entries.
    pub fn size(&self) -> Result<u64, BackendError> {
        let row = self.with(&self.reader, |c| {
            c.query_one("SELECT coalesce(max(idx) + 1, 0) FROM allot_entries", &[])
        })?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Up to `limit` entries from `start`, each checked against `previous` (the chain hash of
    /// entry `start - 1`, the seed for 0) and the entries before it.
    pub fn read(
        &self,
        start: u64,
        limit: u64,
        previous: &Hash,
    ) -> Result<Vec<RawEntry>, BackendError> {
        let rows = self.with(&self.reader, |c| {
            c.query(
                "SELECT idx, body, chain FROM allot_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
                &[&(start as i64), &(limit as i64)],
            )
        })?;
        let mut chain = *previous;
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.into_iter().enumerate() {
            let index = start + i as u64;
            let conflict = |reason: &str| BackendError::Conflict {
                store: self.shown.clone(),
                index,
                reason: reason.into(),
            };
            if row.get::<_, i64>(0) as u64 != index {
                return Err(conflict("missing: the stored log has a gap"));
            }
            let bytes: Vec<u8> = row.get(1);
            let stored: Vec<u8> = row.get(2);
            if Entry::peek_index(&bytes) != Some(index) {
                return Err(conflict("its bytes hold another index"));
            }
            chain = chain_hash(&chain, &leaf_hash(&bytes));
            if stored[..] != chain[..] {
                return Err(conflict(
                    "its chain hash does not follow from the entry and the one before: the \
                     stored log was changed",
                ));
            }
            out.push(RawEntry {
                index,
                bytes,
                chain,
            });
        }
        Ok(out)
    }

    /// The stored chain hash after entry `index` (the seed before entry 0), unchecked: for
    /// comparing a cache's head with the store.
    pub fn chain_at(&self, index: Option<u64>) -> Result<Option<Hash>, BackendError> {
        let Some(index) = index else {
            return Ok(Some(CHAIN_SEED));
        };
        let row = self.with(&self.reader, |c| {
            c.query_opt(
                "SELECT chain FROM allot_entries WHERE idx = $1",
                &[&(index as i64)],
            )
        })?;
        Ok(row.and_then(|r| r.get::<_, Vec<u8>>(0).try_into().ok()))
    }

    /// The lease, if any replica ever took it.
    pub fn lease(&self) -> Result<Option<Lease>, BackendError> {
        let row = self.with(&self.lease, |c| {
            c.query_opt(
                "SELECT term, holder, address, expires > clock_timestamp() FROM allot_lease",
                &[],
            )
        })?;
        let lease = row.map(|r| Lease {
            term: r.get::<_, i64>(0) as u64,
            holder: r.get(1),
            address: r.get(2),
            live: r.get(3),
        });
        *lock(&self.leader) = lease
            .as_ref()
            .filter(|l| l.live && !l.address.is_empty())
            .map(|l| l.address.clone());
        Ok(lease)
    }

    /// Takes the lease for `ttl` if it is free or expired, raising the term; returns the new
    /// term. Writes stay refused until [`PgStore::lead`].
    pub fn try_acquire(
        &self,
        holder: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, BackendError> {
        let ms = ttl.as_millis() as f64;
        let row = self.with(&self.lease, |c| {
            c.query_opt(
                "INSERT INTO allot_lease AS l VALUES \
                   (1, 1, $1, $2, clock_timestamp() + $3 * interval '1 millisecond') \
                 ON CONFLICT (id) DO UPDATE \
                   SET term = l.term + 1, holder = $1, address = $2, \
                       expires = clock_timestamp() + $3 * interval '1 millisecond' \
                   WHERE l.expires < clock_timestamp() \
                 RETURNING term",
                &[&holder, &address, &ms],
            )
        })?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Extends the lease of `term` by `ttl` from now; `false` if another replica holds it.
    pub fn renew(&self, term: u64, ttl: Duration) -> Result<bool, BackendError> {
        let ms = ttl.as_millis() as f64;
        let row = self.with(&self.lease, |c| {
            c.query_opt(
                "UPDATE allot_lease SET expires = clock_timestamp() + $2 * interval '1 millisecond' \
                 WHERE id = 1 AND term = $1 RETURNING term",
                &[&(term as i64), &ms],
            )
        })?;
        Ok(row.is_some())
    }

    /// Gives the lease up (it expires now), so a follower takes over without waiting.
    pub fn release(&self, term: u64) -> Result<(), BackendError> {
        self.step_down();
        self.with(&self.lease, |c| {
            c.execute(
                "UPDATE allot_lease SET expires = clock_timestamp() WHERE id = 1 AND term = $1",
                &[&(term as i64)],
            )
        })?;
        Ok(())
    }

    /// Writes from now on go under `term` (taken with [`PgStore::try_acquire`], after catching
    /// up with the store).
    pub fn lead(&self, term: u64) {
        self.term.store(term, Ordering::SeqCst);
    }

    /// Stops writing (the store's check would refuse the writes anyway).
    pub fn step_down(&self) {
        self.term.store(0, Ordering::SeqCst);
    }

    /// The leader's address as last read with [`PgStore::lease`] (while its lease was live).
    pub fn leader(&self) -> Option<String> {
        lock(&self.leader).clone()
    }

    /// The term this process writes under, if it leads.
    pub fn term(&self) -> Option<u64> {
        Some(self.term.load(Ordering::SeqCst)).filter(|&t| t > 0)
    }

    /// Stores `value` under `name` unless a value is there; returns the stored one.
    pub fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, BackendError> {
        let row = self.with(&self.writer, |c| {
            c.execute(
                "INSERT INTO allot_meta VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )?;
            c.query_one("SELECT value FROM allot_meta WHERE name = $1", &[&name])
        })?;
        Ok(row.get(0))
    }

    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let row = self.with(&self.reader, |c| {
            c.query_opt("SELECT value FROM allot_meta WHERE name = $1", &[&name])
        })?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The digests of every stored blob.
    pub fn blob_digests(&self) -> Result<Vec<String>, BackendError> {
        let rows = self.with(&self.reader, |c| {
            c.query("SELECT digest FROM allot_blobs ORDER BY digest", &[])
        })?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Stores entries read elsewhere (`allot store migrate`), in one transaction per call,
    /// without a lease: the caller has checked them and the store must hold fewer.
    pub fn import(&self, previous: &Hash, entries: &[RawEntry]) -> Result<(), BackendError> {
        let stored: Vec<StoredEntry<'_>> = entries
            .iter()
            .map(|e| StoredEntry {
                index: e.index,
                body: &e.bytes,
                chain: e.chain,
            })
            .collect();
        self.insert(None, previous, &stored)
    }

    fn insert(
        &self,
        term: Option<u64>,
        previous: &Hash,
        entries: &[StoredEntry<'_>],
    ) -> Result<(), BackendError> {
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        let mut indices = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        let mut chains = Vec::with_capacity(entries.len());
        for e in entries {
            indices.push(e.index as i64);
            bodies.push(e.body);
            chains.push(&e.chain[..]);
        }
        let last = first + entries.len() as u64;
        enum Refused {
            Fenced(u64, Option<String>),
            Gap(u64),
            Chain,
        }
        // One statement, so one round trip and one commit: it locks the lease row (`FOR SHARE`:
        // a takeover's update waits for this commit, or this waits for the takeover and then
        // sees its term) and inserts only if the term is this writer's, the first index follows
        // the stored log and the chain continues it.
        let term_param = term.map(|t| t as i64);
        let inserted = {
            let mut slot = lock(&self.appender);
            if slot.as_ref().is_none_or(|(c, _)| c.is_closed()) {
                let mut client = self.client()?;
                let statement = client.prepare(APPEND).map_err(|e| self.unavailable(e))?;
                *slot = Some((client, statement));
            }
            let (client, statement) = slot.as_mut().expect("connected above");
            let params: [&(dyn postgres::types::ToSql + Sync); 7] = [
                &indices,
                &bodies,
                &chains,
                &term_param,
                &(first as i64),
                &&previous[..],
                &last.to_string(),
            ];
            match client.query_one(&*statement, &params) {
                Ok(row) => row.get::<_, i64>(0) as usize,
                Err(e) => {
                    if client.is_closed() || e.as_db_error().is_none() {
                        *slot = None;
                    }
                    return Err(self.unavailable(e));
                }
            }
        };
        if inserted == entries.len() {
            return Ok(());
        }
        // Refused: find out why.
        let outcome = self.with(&self.writer, |c| {
            let check = c.query_one(
                "SELECT (SELECT term FROM allot_lease WHERE id = 1), \
                        (SELECT address FROM allot_lease WHERE id = 1), \
                        (SELECT coalesce(max(idx) + 1, 0) FROM allot_entries)",
                &[],
            )?;
            let current = check.get::<_, Option<i64>>(0).unwrap_or(0) as u64;
            if let Some(term) = term
                && current != term
            {
                return Ok(Refused::Fenced(current, check.get(1)));
            }
            let size = check.get::<_, i64>(2) as u64;
            if size != first {
                return Ok(Refused::Gap(size));
            }
            Ok(Refused::Chain)
        })?;
        Err(outcome).map_err(|refused| match refused {
            Refused::Fenced(current, leader) => {
                self.step_down();
                BackendError::Fenced {
                    ours: term.unwrap_or(0),
                    current,
                    leader,
                }
            }
            Refused::Gap(size) => BackendError::Conflict {
                store: self.shown.clone(),
                index: first,
                reason: format!("the store holds {size} entries, not {first}"),
            },
            Refused::Chain => BackendError::Conflict {
                store: self.shown.clone(),
                index: first,
                reason: "it does not continue the stored chain".into(),
            },
        })
    }
}

impl Backend for PgStore {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn check_writer(&self) -> Result<(), BackendError> {
        match self.term() {
            Some(_) => Ok(()),
            None => Err(BackendError::NotLeader {
                leader: self.leader(),
            }),
        }
    }

    fn append(&self, previous: &Hash, entries: &[StoredEntry<'_>]) -> Result<(), BackendError> {
        let term = self.term().ok_or_else(|| BackendError::NotLeader {
            leader: self.leader(),
        })?;
        self.insert(Some(term), previous, entries)
    }

    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.with(&self.writer, |c| {
            c.execute(
                "INSERT INTO allot_blobs VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&digest, &bytes],
            )
        })?;
        Ok(())
    }

    fn get_blob(&self, digest: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let row = self.with(&self.reader, |c| {
            c.query_opt(
                "SELECT bytes FROM allot_blobs WHERE digest = $1",
                &[&digest],
            )
        })?;
        Ok(row.map(|r| r.get(0)))
    }
}

/// `postgresql://user@host:port/db`, without the password.
fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgresql://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// A postgres error with the server's message or the causes (its own text is often just "db
/// error" or "error connecting to server").
pub(crate) fn pg_error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}
