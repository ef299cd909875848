//! Application windows of the allocation domains (fairs, schools), kept in the decision log, and
//! the runs made on them.
//!
//! Every item a window receives (an application, or a place: a stall pool, a school, a
//! priority) is an `ApplicationSubmitted` decision in the log, acknowledged once its batch is
//! durable; the window's commitment is an `ApplicationsClosed` decision. A window is state
//! rebuilt from the log (on first use, one pass over the entries): per item key, the last record
//! and its entry. The canonical application set of a closed window is built from those records
//! (through the same CSV readers as the command line, so a window and its files validate alike),
//! which is deterministic: an auditor rebuilds it from `allot audit export` alone.
//!
//! A submission checks its items against the window in memory and queues its decisions while it
//! holds the windows' state, so one costs the same whatever the window's size, and a close that
//! follows it in the log covers it. Closing, running and changing runs hold the domain's lock.

mod snapshot;

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use allot_engine::allocation::Change;
use allot_engine::allocation::{
    self, Beacon, Closed, Loaded, LoggedRun, LoggedRunOf, Vacancies, close_with_log, load_with_log,
    run_closed,
};
use allot_engine::log::decision::{
    ApplicationSubmitted, ApplicationWithdrawn, Decision, PlaceAccepted,
};
use allot_engine::log::{Bytes, DecisionKind, Log, Record, Ticket, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Code, Status};

use crate::server::status::log_status;
use crate::server::validate::{FieldError, FieldPath};

/// An allocation domain whose applications arrive over the API.
pub trait WindowKind: Vacancies + Sized + 'static {
    /// What its requests call a participant: `applicant`, `student`.
    const PARTICIPANT: &'static str;
    /// One item of a window, as its `ApplicationSubmitted` decision records it (JSON).
    type Item: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The item's key, unique in its window (e.g. `applicant:A17`): the decision's subject.
    fn key(item: &Self::Item) -> String;
    /// Which of the three counts of a submission's answer the item adds to.
    fn kind(item: &Self::Item) -> usize;
    /// The path of the field that makes the item's key, for an item that arrived at `at`.
    fn key_path(item: &Self::Item, at: Arrival) -> FieldPath;
    /// The canonical application set of a window's items, or what is wrong with it.
    fn input(items: &[&Self::Item]) -> Result<Self::Input, String>;
    /// The digest of the second factor a participant's application carries ([`code_digest`]),
    /// if it is a participant's and has one.
    fn code_digest(item: &Self::Item) -> Option<&str>;

    /// The key of participant `id`'s application.
    fn participant_key(id: &str) -> String {
        format!("{}:{id}", Self::PARTICIPANT)
    }
}

/// Participants' second factors by id, as an upload gives them.
pub type Codes = std::collections::HashMap<String, String>;

/// Shortest and longest second factor (a code the city gives an applicant).
const CODE_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// What an application keeps of participant `id`'s second factor `code`: hex SHA-256 of a label,
/// the id and the code, so a digest says nothing about another applicant's code.
pub fn code_digest(id: &str, code: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"allot second factor\n");
    h.update(id.as_bytes());
    h.update(b"\n");
    h.update(code.as_bytes());
    hex::encode(h.finalize())
}

/// A submitted second factor, checked: its digest, or `None` when empty (none asked).
pub fn second_factor(
    id: &str,
    code: &str,
    path: &impl Fn() -> FieldPath,
) -> Result<Option<String>, FieldError> {
    if code.is_empty() {
        return Ok(None);
    }
    let n = code.chars().count();
    if !CODE_CHARS.contains(&n) || code.chars().any(char::is_control) {
        return Err(FieldError::invalid(
            &path(),
            format!(
                "is {n} characters; a code has {} to {} characters and no control characters",
                CODE_CHARS.start(),
                CODE_CHARS.end()
            ),
        ));
    }
    Ok(Some(code_digest(id, code)))
}

/// A window as its administrator sees it: name, items held per kind, its commitment's entry,
/// its runs (entry, id) oldest first.
pub type WindowInfo = (String, [u64; 3], Option<u64>, Vec<(u64, [u8; 32])>);

/// Where a submitted item arrived: message `message` of the stream, element `index` of its
/// list. Kept instead of a path, which is made only for an item refused.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub message: u32,
    pub index: u32,
}

impl Arrival {
    /// The path of element `index` of the message's `list`.
    pub fn path(self, list: &str) -> FieldPath {
        FieldPath::stream_message(self.message as usize)
            .field(list)
            .index(self.index as usize)
    }
}

/// An item key of a window: the item as last submitted and the entries that made its history.
struct Held<I> {
    /// `None` once withdrawn.
    item: Option<Arc<I>>,
    /// Its first entry (submitted), then each later one (amended, withdrawn, submitted again);
    /// `None` while its batch is being made durable.
    first: Option<u64>,
    later: Vec<Option<u64>>,
}

impl<I> Held<I> {
    fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        self.first
            .iter()
            .chain(self.later.iter().flatten())
            .copied()
    }

    /// Fills in the entry of the oldest step still waiting for one.
    fn made_durable(&mut self, index: u64) {
        let waiting = std::iter::once(&mut self.first).chain(self.later.iter_mut());
        if let Some(slot) = waiting.into_iter().find(|slot| slot.is_none()) {
            *slot = Some(index);
        }
    }
}

/// A place accepted: its entry, the run, the place.
type Acceptance = (u64, [u8; 32], String);

/// A domain's windows by name.
type WindowMap<I> = HashMap<String, Window<I>>;

/// A window as the log has it.
struct Window<I> {
    items: HashMap<String, Held<I>>,
    /// Items held (not withdrawn) per kind.
    counts: [u64; 3],
    closed: Option<Closed>,
    /// The runs made on the window: entry and id.
    runs: Vec<(u64, [u8; 32])>,
    /// Places accepted in its runs, per participant id.
    accepted: HashMap<String, Vec<Acceptance>>,
}

impl<I> Default for Window<I> {
    fn default() -> Self {
        Window {
            items: HashMap::new(),
            counts: [0; 3],
            closed: None,
            runs: Vec::new(),
            accepted: HashMap::new(),
        }
    }
}

impl<I> Window<I> {
    /// Notes a run; one logged again with the same content is the same run.
    fn ran(&mut self, index: u64, id: [u8; 32]) {
        if !self.runs.iter().any(|(_, run)| *run == id) {
            self.runs.push((index, id));
        }
    }

    fn held_items(&self) -> Vec<&I> {
        self.items
            .values()
            .filter_map(|h| h.item.as_deref())
            .collect()
    }
}

/// What a submission does to the items it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// New items: a key already held is ALREADY_EXISTS.
    Add,
    /// Replacements: a key not held is NOT_FOUND.
    Amend,
}

/// One step of an application's history (see `ApplicationStep` in the proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Received,
    Amended,
    Withdrawn,
    InClosedSet,
    Placed,
    Waitlisted,
    Offered,
    GivenBack,
    Accepted,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub index: u64,
    pub run: Option<[u8; 32]>,
    pub place: Option<String>,
    pub rank: u32,
}

/// A run held for reads, and for changes under the domain's lock.
pub type HeldRun<A> = Arc<RwLock<Loaded<A>>>;

/// The windows of a domain, by name; `None` until read from the log.
type State<I> = Option<HashMap<String, Window<I>>>;

/// A domain's windows and the runs read so far.
pub struct Windows<A: WindowKind> {
    state: Mutex<State<A::Item>>,
    lock: Mutex<()>,
    runs: Mutex<HashMap<[u8; 32], HeldRun<A>>>,
    /// The input of the window closed last, for the run that usually follows (rebuilding a
    /// national window's input from its applications takes seconds).
    last_closed: Mutex<Option<(String, A::Input)>>,
}

impl<A: WindowKind> std::fmt::Debug for Windows<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows").finish_non_exhaustive()
    }
}

impl<A: WindowKind> Default for Windows<A> {
    fn default() -> Self {
        Windows {
            state: Mutex::new(None),
            lock: Mutex::new(()),
            runs: Mutex::new(HashMap::new()),
            last_closed: Mutex::new(None),
        }
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "{what}");
    Status::internal(format!("{what}: {e}"))
}

/// An allocation error as a status.
pub fn allocation_status(e: allocation::Error) -> Status {
    match e {
        allocation::Error::Input(e) => Status::invalid_argument(e.to_string()),
        allocation::Error::Log(e) => log_status(e),
        allocation::Error::Request(m) | allocation::Error::Unsupported(m) => {
            Status::failed_precondition(m)
        }
        e @ allocation::Error::StoredInput { .. } => {
            tracing::error!(error = %e, "a stored input is damaged");
            Status::data_loss(e.to_string())
        }
        e => internal("allocation", e),
    }
}

/// What a submission added, the window's totals after it, and a receipt per item.
#[derive(Debug, Clone)]
pub struct Totals {
    pub added: [u64; 3],
    pub total: [u64; 3],
    pub receipts: Vec<Receipt>,
}

/// Proof material for one received item: its entry and leaf hash, and the size of the signed
/// checkpoint that covers it (0 when none does yet: the next one will).
#[derive(Debug, Clone)]
pub struct Receipt {
    pub key: String,
    pub index: u64,
    pub leaf_hash: [u8; 32],
    pub checkpoint_size: u64,
}

impl<A: WindowKind> Windows<A> {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The windows, read from the log on first use.
    fn state(&self, log: &Log) -> Result<MutexGuard<'_, State<A::Item>>, Status> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.is_none() {
            *state = Some(read_windows::<A>(log)?);
        }
        Ok(state)
    }

    /// Writes a snapshot of the windows, if they were read (a hint for the next start; see
    /// [`snapshot`]). For a graceful stop, when nothing waits for its entry.
    pub fn save_snapshot(&self, log: &Log) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(windows) = state.as_ref() else {
            return;
        };
        let started = std::time::Instant::now();
        match snapshot::save::<A>(log, windows, log.size()) {
            Ok(()) => tracing::info!(
                domain = A::DOMAIN.name(),
                covers = log.size(),
                seconds = started.elapsed().as_secs_f64(),
                "application windows snapshot written"
            ),
            Err(e) => tracing::warn!(error = %e, "no application windows snapshot"),
        }
    }

    /// Drops the windows read so far, so the next use reads them from the log again (a
    /// follower, after copying the leader's entries).
    pub fn forget(&self) {
        let _changing = self.lock();
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether the windows have been read from the log.
    pub fn is_read(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Reads the windows from the log, if not done yet.
    pub fn read(&self, log: &Log) -> Result<(), Status> {
        self.state(log).map(drop)
    }

    /// Adds (or amends) a submission's items in an open window (creating it), as `actor`.
    /// Durable when it returns.
    pub async fn submit(
        &self,
        log: &Log,
        (window, window_path): (&str, &FieldPath),
        (arrived, how): (Vec<(A::Item, Arrival)>, Submission),
        actor: &str,
        max_items: u64,
    ) -> Result<Totals, Status> {
        let keys: Vec<String> = arrived.iter().map(|(item, _)| A::key(item)).collect();
        // Encoded before the windows are held, which other submissions wait for.
        let jsons = (arrived.iter())
            .map(|(item, _)| serde_json::to_vec(item).map_err(|e| internal("encoding", e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut added = [0u64; 3];
        let now = Timestamp::now();
        let (ticket, total) = {
            let mut state = self.state(log)?;
            let windows = state.as_mut().expect("read above");
            if how == Submission::Amend && !windows.contains_key(window) {
                return Err(no_window(window, window_path));
            }
            let w = windows.entry(window.to_owned()).or_default();
            open(w, window, window_path)?;
            let size: u64 = w.counts.iter().sum();
            if how == Submission::Add && size + keys.len() as u64 > max_items {
                return Err(FieldError {
                    path: window_path.clone(),
                    problem: format!(
                        "window '{window}' holds {size} items and this call adds {}; it can \
                         hold at most {max_items} (limits.max_window_items)",
                        keys.len()
                    ),
                    code: Code::ResourceExhausted,
                }
                .into());
            }
            let mut fresh = HashSet::with_capacity(keys.len());
            for (key, (item, at)) in keys.iter().zip(&arrived) {
                let held = w.items.get(key).is_some_and(|h| h.item.is_some());
                let (kind, id) = key.split_once(':').unwrap_or(("item", key));
                let refused = if !fresh.insert(key.as_str()) {
                    Some((Code::AlreadyExists, "is twice in this call"))
                } else if held && how == Submission::Add {
                    Some((
                        Code::AlreadyExists,
                        "is already in the window (send it with amend to replace it)",
                    ))
                } else if !held && how == Submission::Amend {
                    Some((Code::NotFound, "is not in the window: nothing to amend"))
                } else {
                    None
                };
                if let Some((code, problem)) = refused {
                    return Err(FieldError {
                        path: A::key_path(item, *at),
                        problem: format!("{kind} '{id}' {problem} ('{window}')"),
                        code,
                    }
                    .into());
                }
            }
            if keys.is_empty() {
                (None, w.counts)
            } else {
                // Queued while the windows are held: a close after this in the log covers it.
                let records = keys.iter().zip(jsons).map(|(key, json)| {
                    let decision = ApplicationSubmitted {
                        domain: A::DOMAIN,
                        window: window.to_owned(),
                        item: Bytes(json),
                    };
                    Record::new(now, actor, key.clone(), decision)
                });
                let ticket = log.submit_each(records).map_err(log_status)?;
                w.items.reserve(keys.len());
                for (key, (item, _)) in keys.iter().zip(arrived) {
                    let kind = A::kind(&item);
                    added[kind] += 1;
                    let item = Arc::new(item);
                    match w.items.get_mut(key) {
                        Some(held) => {
                            if let Some(before) = held.item.replace(item) {
                                w.counts[A::kind(&before)] -= 1;
                            }
                            held.later.push(None);
                        }
                        None => {
                            let held = Held {
                                item: Some(item),
                                first: None,
                                later: Vec::new(),
                            };
                            w.items.insert(key.clone(), held);
                        }
                    }
                    w.counts[kind] += 1;
                }
                (Some((ticket, keys)), w.counts)
            }
        };
        let Some((ticket, keys)) = ticket else {
            return Ok(Totals {
                added,
                total,
                receipts: Vec::new(),
            });
        };
        let receipts = self.durable(log, window, ticket, keys).await?;
        Ok(Totals {
            added,
            total,
            receipts,
        })
    }

    /// Withdraws the applications of participants `ids` from an open window, as `actor`; `at`
    /// is the request. Durable when it returns.
    pub async fn withdraw(
        &self,
        log: &Log,
        (window, at): (&str, &FieldPath),
        ids: &[String],
        actor: &str,
    ) -> Result<Vec<Receipt>, Status> {
        let window_path = at.field("window");
        let keys: Vec<String> = ids.iter().map(|id| A::participant_key(id)).collect();
        let now = Timestamp::now();
        let ticket = {
            let mut state = self.state(log)?;
            let w = state.as_mut().and_then(|ws| ws.get_mut(window));
            let w = w.ok_or_else(|| no_window(window, &window_path))?;
            open(w, window, &window_path)?;
            for (i, key) in keys.iter().enumerate() {
                if w.items.get(key).is_none_or(|h| h.item.is_none()) {
                    return Err(FieldError::not_found(
                        &at.field("ids").index(i),
                        format!("'{}' has no application in window '{window}'", ids[i]),
                    )
                    .into());
                }
            }
            let records = keys.iter().map(|key| {
                let decision = ApplicationWithdrawn {
                    domain: A::DOMAIN,
                    window: window.to_owned(),
                };
                Record::new(now, actor, key.clone(), decision)
            });
            let ticket = log.submit_each(records).map_err(log_status)?;
            for key in &keys {
                let held = w.items.get_mut(key).expect("checked above");
                if let Some(before) = held.item.take() {
                    w.counts[A::kind(&before)] -= 1;
                }
                held.later.push(None);
            }
            ticket
        };
        self.durable(log, window, ticket, keys).await
    }

    /// Waits for the batch of `keys`' steps to be durable, fills in their entries and makes
    /// their receipts. A batch that fails leaves the windows to be read from the log again.
    async fn durable(
        &self,
        log: &Log,
        window: &str,
        ticket: Ticket,
        keys: Vec<String>,
    ) -> Result<Vec<Receipt>, Status> {
        let leaves = ticket.leaves();
        let range = match ticket.await {
            Ok(range) => range,
            Err(e) => {
                *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Err(log_status(e));
            }
        };
        let covered = log.checkpoint().map_or(0, |c| c.checkpoint.size);
        let mut receipts = Vec::with_capacity(keys.len());
        let mut state = self.state(log)?;
        let w = state.as_mut().and_then(|ws| ws.get_mut(window));
        let w = w.ok_or_else(|| internal("a window", "gone"))?;
        for ((key, index), leaf) in keys.into_iter().zip(range).zip(leaves.get()) {
            if let Some(held) = w.items.get_mut(&key) {
                held.made_durable(index);
            }
            receipts.push(Receipt {
                key,
                index,
                leaf_hash: *leaf,
                checkpoint_size: if covered > index { covered } else { 0 },
            });
        }
        Ok(receipts)
    }

    /// The history of participant `id`'s application in a window; `at` is the request.
    pub fn status(
        &self,
        log: &Log,
        (window, at): (&str, &FieldPath),
        id: &str,
    ) -> Result<(String, Vec<Step>), Status> {
        let key = A::participant_key(id);
        let (entries, in_closed_set, runs, accepted) = {
            let state = self.state(log)?;
            let w = state.as_ref().and_then(|ws| ws.get(window));
            let w = w.ok_or_else(|| no_window(window, &at.field("window")))?;
            let held = w.items.get(&key).filter(|h| h.first.is_some());
            let held = held.ok_or_else(|| {
                FieldError::not_found(
                    &at.field("id"),
                    format!("window '{window}' never received an application of '{id}'"),
                )
            })?;
            let in_closed_set = w.closed.filter(|_| held.item.is_some()).map(|c| c.index);
            let accepted = w.accepted.get(id).cloned().unwrap_or_default();
            let entries = held.entries().collect::<Vec<_>>();
            (entries, in_closed_set, w.runs.clone(), accepted)
        };
        let mut steps = Vec::new();
        let mut withdrawn = true;
        for index in entries {
            let entry = log.entry(index).map_err(log_status)?;
            let kind = match entry.record.decision {
                Decision::ApplicationWithdrawn(_) => StepKind::Withdrawn,
                _ if withdrawn => StepKind::Received,
                _ => StepKind::Amended,
            };
            withdrawn = kind == StepKind::Withdrawn;
            steps.push(Step {
                kind,
                index,
                run: None,
                place: None,
                rank: 0,
            });
        }
        let Some(closed_at) = in_closed_set else {
            return Ok((key, steps));
        };
        steps.push(Step {
            kind: StepKind::InClosedSet,
            index: closed_at,
            run: None,
            place: None,
            rank: 0,
        });
        for (_, run) in runs {
            let held = self.loaded(log, &run, &at.field("window"))?;
            let loaded = held.read().unwrap_or_else(|e| e.into_inner());
            let Some(i) = A::participant(&loaded.input, id) else {
                continue;
            };
            let placement = A::placement(&loaded.input, &loaded.solved, i);
            let kind = match placement.place {
                Some(_) => StepKind::Placed,
                None => StepKind::Waitlisted,
            };
            let index = loaded
                .run
                .outcome_range()
                .map_or(0, |r| r.start + u64::from(i));
            steps.push(Step {
                kind,
                index,
                run: Some(run),
                place: placement.place.map(str::to_owned),
                rank: placement.rank.unwrap_or(0),
            });
            let mut later = Vec::new();
            for (index, _, place) in accepted.iter().filter(|(_, r, _)| *r == run) {
                later.push(Step {
                    kind: StepKind::Accepted,
                    index: *index,
                    run: Some(run),
                    place: Some(place.clone()),
                    rank: 0,
                });
            }
            for c in &loaded.changes {
                let (kind, participant, place) = match &c.change {
                    Change::Withdrawn { participant, place } => {
                        (StepKind::GivenBack, participant, place)
                    }
                    Change::ReOffered {
                        participant, place, ..
                    } => (StepKind::Offered, participant, place),
                };
                if participant == id {
                    later.push(Step {
                        kind,
                        index: c.index,
                        run: Some(run),
                        place: Some(place.clone()),
                        rank: 0,
                    });
                }
            }
            later.sort_by_key(|step| step.index);
            steps.extend(later);
        }
        Ok((key, steps))
    }

    /// Every window, by name.
    pub fn list(&self, log: &Log) -> Result<Vec<WindowInfo>, Status> {
        let state = self.state(log)?;
        let mut all: Vec<WindowInfo> = state
            .iter()
            .flatten()
            .map(|(name, w)| {
                (
                    name.clone(),
                    w.counts,
                    w.closed.map(|c| c.index),
                    w.runs.clone(),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// The latest run of a window, if any (NOT_FOUND for a window without items).
    pub fn latest_run(
        &self,
        log: &Log,
        window: &str,
        path: &FieldPath,
    ) -> Result<Option<[u8; 32]>, Status> {
        let state = self.state(log)?;
        let w = state.as_ref().and_then(|ws| ws.get(window));
        let w = w.ok_or_else(|| no_window(window, path))?;
        Ok(w.runs.last().map(|(_, id)| *id))
    }

    /// Whether `code` opens participant `id`'s application in `window` to a public lookup: it
    /// is held (not withdrawn) and `code` matches its second factor, if it has one. Any failure
    /// is the same NOT_FOUND, so a lookup tells nothing about ids it was not given the code of.
    pub fn check_lookup(
        &self,
        log: &Log,
        (window, at): (&str, &FieldPath),
        id: &str,
        code: &str,
    ) -> Result<(), Status> {
        let refused = || -> Status {
            FieldError::not_found(
                &at.field("id"),
                format!(
                    "window '{window}' has no application with this id and code: check both as \
                     written on your application's receipt"
                ),
            )
            .into()
        };
        let state = self.state(log)?;
        let w = state.as_ref().and_then(|ws| ws.get(window));
        let w = w.ok_or_else(|| no_window(window, &at.field("window")))?;
        let held = w.items.get(&A::participant_key(id)).ok_or_else(refused)?;
        let item = held.item.as_deref().ok_or_else(refused)?;
        let matches = match A::code_digest(item) {
            None => true,
            Some(kept) => {
                // Compared as digests of the digests: no early exit that times the prefix.
                use sha2::Digest as _;
                let given = code_digest(id, code);
                sha2::Sha256::digest(given.as_bytes()) == sha2::Sha256::digest(kept.as_bytes())
            }
        };
        if matches { Ok(()) } else { Err(refused()) }
    }

    /// Logs that participant `id` accepts `place` in `run` (under the domain's lock, held by the
    /// caller), or finds the acceptance of it logged before; the decision's entry.
    pub fn accept(
        &self,
        log: &Log,
        run: &LoggedRun,
        id: &str,
        place: &str,
        actor: &str,
    ) -> Result<u64, Status> {
        let earlier = {
            let state = self.state(log)?;
            let w = state.as_ref().and_then(|ws| ws.get(&run.window));
            let mine = w.and_then(|w| w.accepted.get(id));
            mine.and_then(|a| a.iter().rfind(|(_, r, _)| *r == run.id.0).cloned())
        };
        if let Some((index, _, accepted)) = earlier
            && accepted == place
        {
            return Ok(index);
        }
        let decision = PlaceAccepted {
            domain: A::DOMAIN,
            run: run.id,
            place: place.to_owned(),
        };
        let record = Record::new(Timestamp::now(), actor, id.to_owned(), decision);
        let index = log.append_batch(&[record]).map_err(log_status)?.start;
        let mut state = self.state(log)?;
        if let Some(w) = state.as_mut().and_then(|ws| ws.get_mut(&run.window)) {
            let mine = w.accepted.entry(id.to_owned()).or_default();
            mine.push((index, run.id.0, place.to_owned()));
        }
        Ok(index)
    }

    /// The canonical application set of a window (or what is wrong with it).
    fn window_input(
        &self,
        log: &Log,
        window: &str,
        window_path: &FieldPath,
    ) -> Result<Result<A::Input, String>, Status> {
        let state = self.state(log)?;
        let w = state.as_ref().and_then(|ws| ws.get(window));
        let w = w.ok_or_else(|| no_window(window, window_path))?;
        Ok(A::input(&w.held_items()))
    }

    /// Whether a window is closed (NOT_FOUND when it has no items).
    fn closed(&self, log: &Log, window: &str, path: &FieldPath) -> Result<Option<Closed>, Status> {
        let state = self.state(log)?;
        match state.as_ref().and_then(|ws| ws.get(window)) {
            Some(w) => Ok(w.closed),
            None => Err(no_window(window, path)),
        }
    }

    /// Closes a window: logs the commitment (or returns the one logged before).
    pub fn close(
        &self,
        log: &Log,
        window: &str,
        window_path: &FieldPath,
        actor: &str,
    ) -> Result<Closed, Status> {
        let _guard = self.lock();
        if let Some(closed) = self.closed(log, window, window_path)? {
            return Ok(closed);
        }
        // Held from reading the items to logging the commitment: no submission slips between.
        let mut state = self.state(log)?;
        let w = state.as_mut().and_then(|ws| ws.get_mut(window));
        let w = w.ok_or_else(|| internal("a window", "gone"))?;
        let input = A::input(&w.held_items()).map_err(|problem| {
            Status::failed_precondition(format!("window '{window}' cannot be closed: {problem}"))
        })?;
        let closed = close_with_log::<A>(log, &input, actor, window).map_err(allocation_status)?;
        w.closed = Some(closed);
        drop(state);
        *self.last_closed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((window.to_owned(), input));
        Ok(closed)
    }

    /// Runs an allocation on a closed window and logs it; the run is then held for reads.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        log: &Log,
        window: &str,
        window_path: &FieldPath,
        params: &A::Params,
        beacon: Option<&Beacon>,
        actor: &str,
    ) -> Result<(LoggedRunOf<()>, HeldRun<A>), Status>
    where
        A::Params: Clone,
    {
        let _guard = self.lock();
        let Some(closed) = self.closed(log, window, window_path)? else {
            return Err(FieldError::failed_precondition(
                window_path,
                format!("window '{window}' is still open: close it first (CloseApplications)"),
            )
            .into());
        };
        let cached = self
            .last_closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_if(|(name, _)| name == window);
        let input = match cached {
            Some((_, input)) => input,
            None => self
                .window_input(log, window, window_path)?
                .map_err(|problem| {
                    Status::data_loss(format!("window '{window}' no longer reads: {problem}"))
                })?,
        };
        let started = std::time::Instant::now();
        let logged = run_closed::<A>(log, &input, params, &closed, beacon, actor, window)
            .map_err(allocation_status)?;
        let LoggedRunOf {
            solved,
            mut info,
            entries,
        } = logged;
        info.solve_seconds = started.elapsed().as_secs_f64();
        let loaded = Loaded {
            run: LoggedRun {
                index: info.index,
                id: info.id,
                run: info.run.clone(),
                time: Timestamp::now(),
                actor: actor.to_owned(),
                window: window.to_owned(),
            },
            input,
            params: params.clone(),
            seed: info.run.seed.map(|d| allot_solvers::matching::Seed(d.0)),
            solved,
            changes: Vec::new(),
        };
        let loaded = Arc::new(RwLock::new(loaded));
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(info.id.0, loaded.clone());
        if let Some(w) = self.state(log)?.as_mut().and_then(|ws| ws.get_mut(window)) {
            w.ran(info.index, info.id.0);
        }
        Ok((
            LoggedRunOf {
                solved: (),
                info,
                entries,
            },
            loaded,
        ))
    }

    /// The run with this id (held, or read back from the log and re-run).
    pub fn loaded(&self, log: &Log, run_id: &[u8], path: &FieldPath) -> Result<HeldRun<A>, Status> {
        let id: [u8; 32] = run_id.try_into().map_err(|_| {
            FieldError::invalid(path, format!("is {} bytes; a run id has 32", run_id.len()))
        })?;
        if let Some(run) = self.runs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(run.clone());
        }
        let _guard = self.lock();
        if let Some(run) = self.runs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(run.clone());
        }
        let loaded = load_with_log::<A>(log, Some(&hex::encode(id))).map_err(|e| match e {
            allocation::Error::Request(m) if m.starts_with("no ") => {
                FieldError::not_found(path, m).into()
            }
            e => allocation_status(e),
        })?;
        let loaded = Arc::new(RwLock::new(loaded));
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, loaded.clone());
        Ok(loaded)
    }

    /// Holds the domain's lock while `f` changes a run (a withdrawal).
    pub fn changing<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.lock();
        f()
    }
}

/// NOT_FOUND for a window that has no items.
fn no_window(window: &str, path: &FieldPath) -> Status {
    FieldError::not_found(
        path,
        format!("no window '{window}': submit applications to it first"),
    )
    .into()
}

/// FAILED_PRECONDITION for a closed window.
fn open<I>(w: &Window<I>, window: &str, path: &FieldPath) -> Result<(), Status> {
    match w.closed {
        Some(_) => Err(FieldError::failed_precondition(
            path,
            format!("window '{window}' is closed: it accepts no more applications"),
        )
        .into()),
        None => Ok(()),
    }
}

/// Every window of domain `A` in the log: its items (the last record of each key not withdrawn)
/// and its commitment.
fn read_windows<A: WindowKind>(log: &Log) -> Result<WindowMap<A::Item>, Status> {
    let started = std::time::Instant::now();
    let (mut windows, from) = snapshot::load::<A>(log).unwrap_or_default();
    let mut run_windows: HashMap<[u8; 32], String> = HashMap::new();
    for (name, w) in &windows {
        for (_, run) in &w.runs {
            run_windows.insert(*run, name.clone());
        }
    }
    let size = log.size();
    let damaged = |index: u64, e: &dyn std::fmt::Display| {
        Status::data_loss(format!("entry {index}: a window's item does not read: {e}"))
    };
    // Only these kinds are decoded: a log of millions of appointment decisions is read fast.
    let kinds = [
        DecisionKind::APPLICATION_SUBMITTED,
        DecisionKind::APPLICATION_WITHDRAWN,
        DecisionKind::APPLICATIONS_CLOSED,
        DecisionKind::ALLOCATION_RUN,
        DecisionKind::PLACE_ACCEPTED,
    ];
    for raw in log.entries(from..size).map_err(log_status)? {
        let raw = raw.map_err(log_status)?;
        if raw.kind().is_some_and(|kind| !kinds.contains(&kind)) {
            continue;
        }
        let entry = raw.decode().map_err(log_status)?;
        let (index, subject) = (entry.index, entry.record.subject);
        match entry.record.decision {
            Decision::ApplicationSubmitted(d) if d.domain == A::DOMAIN => {
                let item: A::Item =
                    serde_json::from_slice(&d.item.0).map_err(|e| damaged(index, &e))?;
                let w = windows.entry(d.window).or_default();
                w.counts[A::kind(&item)] += 1;
                let item = Some(Arc::new(item));
                match w.items.get_mut(&subject) {
                    Some(held) => {
                        if let Some(before) = std::mem::replace(&mut held.item, item) {
                            w.counts[A::kind(&before)] -= 1;
                        }
                        held.later.push(Some(index));
                    }
                    None => {
                        let held = Held {
                            item,
                            first: Some(index),
                            later: Vec::new(),
                        };
                        w.items.insert(subject, held);
                    }
                }
            }
            Decision::ApplicationWithdrawn(d) if d.domain == A::DOMAIN => {
                let w = windows.entry(d.window).or_default();
                if let Some(held) = w.items.get_mut(&subject) {
                    if let Some(before) = held.item.take() {
                        w.counts[A::kind(&before)] -= 1;
                    }
                    held.later.push(Some(index));
                }
            }
            Decision::AllocationRun(d) if d.domain == A::DOMAIN => {
                run_windows.insert(d.id().0, subject.clone());
                windows.entry(subject).or_default().ran(index, d.id().0);
            }
            Decision::PlaceAccepted(d) if d.domain == A::DOMAIN => {
                let w = run_windows.get(&d.run.0).and_then(|w| windows.get_mut(w));
                if let Some(w) = w {
                    let mine = w.accepted.entry(subject).or_default();
                    mine.push((index, d.run.0, d.place));
                }
            }
            Decision::ApplicationsClosed(d) if d.domain == A::DOMAIN => {
                let w = windows.entry(subject).or_default();
                // A window closed twice commits the same set: the first commitment stands.
                w.closed.get_or_insert(Closed {
                    set_digest: d.set_digest,
                    applications: d.applications,
                    index,
                });
            }
            _ => {}
        }
    }
    tracing::info!(
        domain = A::DOMAIN.name(),
        windows = windows.len(),
        snapshot = from,
        entries = size - from,
        seconds = started.elapsed().as_secs_f64(),
        "application windows read"
    );
    Ok(windows)
}
