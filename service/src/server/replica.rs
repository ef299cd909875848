//! `allot serve --store postgres://...`: several replicas on one PostgreSQL database.
//!
//! ```text
//!  leader:   calls ─▶ engines ─▶ log ─▶ one transaction per group (term checked) ─▶ ack
//!                                       └─▶ NOTIFY allot_log
//!  follower: LISTEN allot_log (or a look every poll) ─▶ copy entries into its folder (chain
//!            checked) ─▶ apply them to its engines ─▶ answer reads; writes: UNAVAILABLE + leader
//! ```
//!
//! Each replica keeps its own data folder as a cache of the store's log (proofs, tiles and
//! replay come from it). Roles change in [`run`], a loop on a blocking thread: a follower takes an
//! expired lease, catches up, brings its engines up to the log and only then writes; a leader
//! renews every quarter of the lease and releases it when it stops. A replica whose log or
//! engine failed (a group whose commit was refused or whose outcome is unknown) cannot trust
//! its memory: it asks to be reopened from the store ([`Replication::restart`]).
//!
//! Writes on a follower are refused with UNAVAILABLE naming the leader rather than forwarded:
//! a forwarded call would hold a follower's connection for the leader's answer and hide from
//! the client which replica decided, while a client that retries on UNAVAILABLE (as gRPC
//! clients are told to) finds the leader in one round trip, and the health service tells load
//! balancers which replica takes writes (`allot.v1.Leader` SERVING on the leader only).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allot_engine::log::postgres::{CHANNEL, PgStore};
use allot_engine::log::replica::{Replica, ReplicaOptions, Role};
use allot_engine::log::{self, Log, LogOptions};
use tokio::sync::watch;
use tonic::Status;

use super::Domains;
use super::folder::{OpenError, Opened};
use super::state::AppState;
use crate::rpc::session::open_notes;

/// The health service name that is SERVING on the leader only (and NOT_SERVING on followers).
pub const LEADER_SERVICE: &str = "allot.v1.Leader";

/// What a replica is doing, as the gate and health see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaRole {
    Leader { term: u64 },
    Follower { leader: Option<String> },
}

impl ReplicaRole {
    pub fn name(&self) -> &'static str {
        match self {
            ReplicaRole::Leader { .. } => "leader",
            ReplicaRole::Follower { .. } => "follower",
        }
    }

    pub fn writes(&self) -> bool {
        !matches!(self, ReplicaRole::Follower { .. })
    }

    /// The answer to a write on this replica, when it does not take writes.
    pub fn refusal(&self, method: &str) -> Option<Status> {
        let ReplicaRole::Follower { leader } = self else {
            return None;
        };
        let text = match leader {
            Some(leader) => {
                format!("this replica follows; {method} writes, so call the leader at {leader}")
            }
            None => format!(
                "this replica follows and no leader holds the lease right now (a failover takes \
                 a few seconds); retry {method} shortly"
            ),
        };
        let mut status = Status::unavailable(text);
        if let Some(leader) = leader
            && let Ok(value) = leader.parse()
        {
            status.metadata_mut().insert("allot-leader", value);
        }
        Some(status)
    }
}

/// A replica's part in a running server.
#[derive(Debug)]
pub struct Replication {
    pub store: Arc<PgStore>,
    pub options: ReplicaOptions,
    role: watch::Sender<ReplicaRole>,
    restart: watch::Sender<Option<String>>,
}

impl Replication {
    /// Follows the role (for the gate and the health service).
    pub fn role(&self) -> watch::Receiver<ReplicaRole> {
        self.role.subscribe()
    }

    /// Changes to `Some(why)` when this process must reopen its state from the store.
    pub fn restart(&self) -> watch::Receiver<Option<String>> {
        self.restart.subscribe()
    }

    fn set_role(&self, role: ReplicaRole) {
        self.role.send_if_modified(|current| {
            let changed = *current != role;
            if changed {
                tracing::info!(role = role.name(), ?role, "replica role");
                *current = role;
            }
            changed
        });
    }
}

/// Opens `data` as a replica's cache of the log in the PostgreSQL database at `url`: checks that
/// the folder holds a prefix of the store's log, copies the rest, and rebuilds the domains from
/// it (as a follower: they decide nothing until this replica leads).
pub fn open(
    data: &Path,
    url: &str,
    signing_key: Option<log::SigningKey>,
    options: ReplicaOptions,
) -> Result<(Opened, Arc<Replication>), OpenError> {
    let dir = data.to_owned();
    let fail = |source: log::Error| OpenError::Log {
        dir: dir.clone(),
        source,
    };
    let store = PgStore::connect(url).map_err(|e| fail(e.into()))?;
    let log = Log::open(
        data,
        LogOptions {
            signing_key,
            backend: Some(store.clone()),
            ..LogOptions::default()
        },
    )
    .map_err(fail)?;
    for note in open_notes(log.report()) {
        tracing::warn!("{note}");
    }
    let replica = Replica::new(store.clone(), options.clone());
    let started = Instant::now();
    let copied = replica.open(&log).map_err(fail)?;
    tracing::info!(
        data = %data.display(),
        store = %url_shown(&store),
        entries = log.size(),
        copied,
        seconds = started.elapsed().as_secs_f64(),
        origin = log.origin(),
        "replica: the data folder holds the store's log"
    );
    let log = Arc::new(log);
    let domains = Domains::open(&log).map_err(|source| OpenError::Appointments { dir, source })?;
    if let Some(engine) = &domains.appointments {
        engine.set_following(true);
    }
    // Read by `Replica::open` above.
    let leader = store.leader();
    let replication = Arc::new(Replication {
        store,
        options,
        role: watch::Sender::new(ReplicaRole::Follower { leader }),
        restart: watch::Sender::new(None),
    });
    Ok((
        Opened {
            log,
            domains,
            dev_example: None,
        },
        replication,
    ))
}

fn url_shown(store: &PgStore) -> String {
    use allot_engine::log::backend::Backend as _;
    store.describe()
}

/// The replica's loop (on a blocking thread) until the server stops or must be reopened.
pub fn run(state: Arc<AppState>, replication: Arc<Replication>, advertised: String) {
    let log = state.log.clone();
    let mut options = replication.options.clone();
    options.address = advertised;
    tracing::info!(
        role = replication.role.borrow().name(),
        advertised = options.address,
        "replica: following the store"
    );
    let mut replica = Replica::new(replication.store.clone(), options);
    let mut listener = None;
    let mut last_warning = None::<Instant>;
    let poll = replication.options.poll;
    loop {
        if state.is_stopping() {
            if let Some(term) = replication.store.term() {
                // A follower takes over at once instead of waiting for the lease to lapse.
                let _ = replication.store.release(term);
                tracing::info!(term, "released the lease");
            }
            return;
        }
        if let Some(why) = failure(&state) {
            replication.store.step_down();
            tracing::error!(error = %why, "replica: reopening from the store");
            replication.restart.send_replace(Some(why));
            return;
        }
        let step = replica.step(&log).and_then(|role| match role {
            Role::Elected { term } => {
                follow(&state)?;
                if let Some(engine) = &state.appointments {
                    engine.set_following(false);
                }
                if replica.lead(term)? {
                    if let Some(engine) = state.appointments.clone() {
                        // A long log since the newest snapshot: the new leader takes one (in
                        // the store, for every replica's next start), while serving.
                        std::thread::spawn(move || match engine.snapshot_if_due() {
                            Ok(true) => tracing::info!("appointments: snapshot taken"),
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "appointments: no snapshot"),
                        });
                    }
                    Ok(Role::Leader { term })
                } else {
                    if let Some(engine) = &state.appointments {
                        engine.set_following(true);
                    }
                    Ok(Role::Follower { leader: None })
                }
            }
            other => Ok(other),
        });
        match step {
            Ok(Role::Leader { term }) => {
                replication.set_role(ReplicaRole::Leader { term });
                sleep_unless_stopping(&state, replication.options.lease / 4);
            }
            Ok(Role::Follower { leader }) => {
                if replication.role.borrow().writes() {
                    // Deposed without a failed write: stop deciding, follow the new leader.
                    if let Some(engine) = &state.appointments {
                        engine.set_following(true);
                    }
                }
                replication.set_role(ReplicaRole::Follower { leader });
                wait_for_news(&replication.store, &mut listener, poll);
                if let Err(e) = replica.catch_up(&log) {
                    warn_now_and_then(&mut last_warning, &e.to_string());
                } else if let Err(e) = follow(&state) {
                    // The engine could not apply what the leader decided (a city loaded after
                    // this replica started, say): rebuild everything from the log.
                    let why = format!("following the leader: {e}");
                    tracing::error!(error = %why, "replica: reopening from the store");
                    replication.restart.send_replace(Some(why));
                    return;
                }
            }
            Ok(Role::Elected { .. }) => {}
            Err(log::Error::Internal(why)) => {
                // The engine could not catch up before leading: rebuild from the log.
                replication.store.step_down();
                tracing::error!(error = %why, "replica: reopening from the store");
                replication.restart.send_replace(Some(why));
                return;
            }
            Err(e) => {
                if replica.expired() || replication.store.term().is_none() {
                    replication.set_role(ReplicaRole::Follower { leader: None });
                }
                warn_now_and_then(&mut last_warning, &e.to_string());
                std::thread::sleep(poll);
            }
        }
    }
}

/// Brings the engines up to the log: the inventory applies the new entries, the application
/// windows are read again when next used.
fn follow(state: &AppState) -> log::Result<()> {
    if let Some(engine) = &state.appointments {
        engine
            .follow()
            .map_err(|e| log::Error::Internal(format!("following the appointments: {e}")))?;
    }
    state.fairs.forget();
    state.schools.forget();
    Ok(())
}

/// Why this replica must be reopened, if it must.
fn failure(state: &AppState) -> Option<String> {
    if let Some(e) = state.log.failure() {
        return Some(format!("the decision log stopped: {e}"));
    }
    state
        .appointments
        .as_ref()
        .and_then(|e| e.failure())
        .map(|e| format!("the appointments stopped: {e}"))
}

/// Waits for the leader's notification of new entries, at most `poll`.
fn wait_for_news(store: &PgStore, listener: &mut Option<postgres::Client>, poll: Duration) {
    if listener.as_ref().is_none_or(postgres::Client::is_closed) {
        *listener = store.client().ok().and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {CHANNEL}")).ok()?;
            Some(c)
        });
    }
    let Some(client) = listener.as_mut() else {
        std::thread::sleep(poll);
        return;
    };
    use postgres::fallible_iterator::FallibleIterator as _;
    let broken = {
        let mut notifications = client.notifications();
        notifications.timeout_iter(poll).next().is_err() || {
            // Several groups may have been notified: one catch-up copies them all.
            let mut pending = notifications.iter();
            loop {
                match pending.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break false,
                    Err(_) => break true,
                }
            }
        }
    };
    if broken {
        *listener = None;
    }
}

fn sleep_unless_stopping(state: &AppState, total: Duration) {
    let until = Instant::now() + total;
    while !state.is_stopping() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn warn_now_and_then(last: &mut Option<Instant>, what: &str) {
    if last.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
        tracing::warn!(error = what, "replica: the store is unavailable; retrying");
        *last = Some(Instant::now());
    }
}
