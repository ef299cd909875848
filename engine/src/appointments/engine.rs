//! The appointment engine: `$find`, `$hold`, `$book`, cancel, reschedule, offers, attendance and
//! hold expiry over the inventory, each state change a decision sent to a [`DecisionSink`].
//!
//! An operation validates and changes the inventory under its patient shard's lock and the
//! doctor locks of the slots it touches, submits its decisions to the sink while still holding
//! them (submitting only queues: no fsync under a lock, and the log's order is the order in
//! which slots changed), releases the locks, and acknowledges once the sink says the decisions
//! are durable ([`Pending::wait`], or `.await`). If the log fails, the operation's own changes
//! are undone when the inventory still shows them, and the engine stops: every later call fails
//! with [`Error::Failed`] until it is reopened, which rebuilds the inventory from the log.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use super::error::{Error, Result};
use super::find::{FindQuery, Proposal, Search, Weights};
use super::schedule::{ClinicRef, DoctorRef, Location, Schedule, SlotInfo, SlotRef};
use super::state::{
    AppointmentStatus, ApptRec, Effect, FREE, HELD, HoldRec, Inventory, NO_SLOT, OFFER, PatientRef,
    PatientShard, SlotStatus, StatusCounts, id_shard, patient_shard,
};
use super::time::LocalTime;
use crate::input::check_id;
use crate::log::decision::{
    AppointmentCancelled, Attendance, AttendanceRecorded, CancelledBy, HoldEnd, HoldReleased,
    Rescheduled, SlotBooked, SlotHeld,
};
use crate::log::{Decision, Digest, Log, Record, Ticket, Timestamp};

/// Where decisions go. The decision log is the durable sink; simulations run the same engine on
/// a sink that keeps or discards them.
pub trait DecisionSink: Send + Sync + std::fmt::Debug {
    /// Queues `records` as one all-or-nothing batch, in order.
    fn submit(&self, records: &[Record]) -> std::result::Result<Ack, crate::log::Error>;

    /// Whether records are wanted at all (a discarding sink lets the engine skip making them).
    fn wants_records(&self) -> bool {
        true
    }

    /// The decision log behind the sink, when it is durable (snapshots need it).
    fn log(&self) -> Option<&Log> {
        None
    }
}

/// A submitted batch's fate.
#[derive(Debug)]
pub enum Ack {
    /// Nothing to wait for.
    Done,
    /// Durable once the ticket resolves.
    Durable(Ticket),
    /// Failed after it was queued.
    Failed(String),
}

impl DecisionSink for Log {
    fn submit(&self, records: &[Record]) -> std::result::Result<Ack, crate::log::Error> {
        Log::submit(self, records).map(Ack::Durable)
    }

    fn log(&self) -> Option<&Log> {
        Some(self)
    }
}

/// Keeps every decision in memory (tests, what-if runs that want the decisions).
#[derive(Debug, Default)]
pub struct MemorySink {
    pub records: Mutex<Vec<Record>>,
}

impl DecisionSink for MemorySink {
    fn submit(&self, records: &[Record]) -> std::result::Result<Ack, crate::log::Error> {
        super::state::lock(&self.records).extend_from_slice(records);
        Ok(Ack::Done)
    }
}

/// Discards decisions (simulation): the engine does not even make them.
#[derive(Debug, Default)]
pub struct DiscardSink;

impl DecisionSink for DiscardSink {
    fn submit(&self, _: &[Record]) -> std::result::Result<Ack, crate::log::Error> {
        Ok(Ack::Done)
    }

    fn wants_records(&self) -> bool {
        false
    }
}

/// The engine's source of "now" (holds expire by it; find does not propose past slots).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(t: Timestamp) -> Self {
        ManualClock(AtomicU64::new(t.unix_micros()))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.unix_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst))
    }
}

/// Tunables of an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub weights: Weights,
    /// How long a hold lasts unless the request says otherwise (IHE: 5 minutes).
    pub hold_ttl: Duration,
    /// How long a re-offer after an absence waits for the patient's answer.
    pub offer_ttl: Duration,
    /// Candidate clinics per find: this many nearest with the specialty, plus the attached and
    /// preferred ones.
    pub nearest: usize,
    /// Proposals attached to a "slot taken" answer.
    pub alternatives: usize,
    /// The actor of decisions allot makes itself (expiries, re-offers).
    pub system_actor: String,
    /// [`Engine::open`] writes a snapshot when it replayed at least this many entries.
    pub snapshot_after: Option<u64>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            weights: Weights::default(),
            hold_ttl: Duration::from_secs(5 * 60),
            offer_ttl: Duration::from_secs(24 * 3600),
            nearest: 12,
            alternatives: 5,
            system_actor: "allot".into(),
            snapshot_after: Some(1_000_000),
        }
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> std::result::Result<Self, ()> {
                let digits = s.strip_prefix($prefix).ok_or(())?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit())
                    || (digits.len() > 1 && digits.starts_with('0'))
                {
                    return Err(());
                }
                digits.parse::<u64>().ok().filter(|n| n & OFFER == 0).map($name).ok_or(())
            }
        }
    };
}

id_type!(
    /// A hold, `h123`.
    HoldId,
    "h"
);
id_type!(
    /// An appointment, `a123`.
    AppointmentId,
    "a"
);

/// A successful `$hold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub hold: HoldId,
    pub slot: SlotRef,
    pub expires: Timestamp,
}

/// A successful `$book` (or an accepted re-offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub appointment: AppointmentId,
    pub slot: SlotRef,
}

/// A successful reschedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub appointment: AppointmentId,
    pub from: SlotRef,
    pub to: SlotRef,
}

/// What `$book` books: a held slot, or a free slot directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking<'a> {
    Hold(HoldId),
    Slot { patient: &'a str, slot: SlotRef },
}

/// An appointment as the booking system sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentView {
    pub id: AppointmentId,
    pub patient: String,
    pub status: AppointmentStatus,
    /// The booked slot; while a re-offer is pending, the original one.
    pub slot: SlotRef,
    pub slot_status: SlotStatus,
    /// A pending re-offer after an absence, and when it lapses.
    pub offered: Option<(SlotRef, Timestamp)>,
}

/// A hold as the booking system sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldView {
    pub id: HoldId,
    pub patient: String,
    pub slot: SlotRef,
    pub expires: Timestamp,
}

/// A `$find` request as a client writes it (ids and text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindRequest {
    /// Optional: proposals then avoid the patient's own appointments.
    pub patient: Option<String>,
    pub specialty: String,
    /// Home location; the attached clinic's location when absent.
    pub home: Option<Location>,
    pub attached: Option<String>,
    pub preferred: Vec<String>,
    pub from: Option<LocalTime>,
    pub until: Option<LocalTime>,
    pub count: usize,
}

/// A queued operation: the answer, once its decisions are durable.
///
/// [`Pending::wait`] blocks the thread; async callers `.await` it. Dropping it does not undo
/// the operation (its decisions are queued), it only stops waiting.
#[must_use = "an operation is acknowledged only once its decisions are durable"]
#[derive(Debug)]
pub struct Pending<T> {
    engine: Arc<Inner>,
    ack: Option<Ack>,
    value: Option<T>,
    undo: Vec<Effect>,
}

impl<T> Pending<T> {
    pub(crate) fn new(engine: &Arc<Inner>, ack: Ack, value: T, undo: Vec<Effect>) -> Self {
        Pending {
            engine: engine.clone(),
            ack: Some(ack),
            value: Some(value),
            undo,
        }
    }

    /// Blocks until the decisions are durable; the answer, or why it was not logged.
    pub fn wait(self) -> Result<T> {
        self.wait_entries().map(|(value, _)| value)
    }

    /// [`Pending::wait`], also returning the log entries the decisions became (none on a sink
    /// that is not durable).
    pub fn wait_entries(mut self) -> Result<(T, Option<Range<u64>>)> {
        let outcome = match self.ack.take() {
            Some(Ack::Durable(ticket)) => ticket.wait().map(Some).map_err(|e| e.to_string()),
            Some(Ack::Failed(e)) => Err(e),
            Some(Ack::Done) | None => Ok(None),
        };
        self.finish(outcome)
    }

    /// A future of the answer with the log entries its decisions became (see
    /// [`Pending::wait_entries`]).
    pub fn with_entries(self) -> WithEntries<T> {
        WithEntries(self)
    }

    fn finish(
        &mut self,
        outcome: std::result::Result<Option<Range<u64>>, String>,
    ) -> Result<(T, Option<Range<u64>>)> {
        match outcome {
            Ok(entries) => self
                .value
                .take()
                .map(|value| (value, entries))
                .ok_or_else(|| Error::Internal("a pending operation resolved twice".into())),
            Err(e) => {
                self.engine.fail(&e);
                self.engine.undo(std::mem::take(&mut self.undo));
                Err(Error::Failed(e))
            }
        }
    }

    fn poll_entries(&mut self, cx: &mut Context<'_>) -> Poll<Result<(T, Option<Range<u64>>)>> {
        let outcome = match &mut self.ack {
            Some(Ack::Durable(ticket)) => match Pin::new(ticket).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.map(Some).map_err(|e| e.to_string()),
            },
            Some(Ack::Failed(e)) => Err(e.clone()),
            Some(Ack::Done) | None => Ok(None),
        };
        self.ack = None;
        Poll::Ready(self.finish(outcome))
    }
}

impl<T: Unpin> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        self.poll_entries(cx).map(|r| r.map(|(value, _)| value))
    }
}

/// A [`Pending`] that also answers with the log entries of its decisions.
#[must_use = "an operation is acknowledged only once its decisions are durable"]
#[derive(Debug)]
pub struct WithEntries<T>(Pending<T>);

impl<T: Unpin> Future for WithEntries<T> {
    type Output = Result<(T, Option<Range<u64>>)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_entries(cx)
    }
}

pub(crate) struct Inner {
    pub inv: Inventory,
    pub schedule: Arc<Schedule>,
    pub sink: Arc<dyn DecisionSink>,
    pub clock: Arc<dyn Clock>,
    pub options: EngineOptions,
    /// SHA-256 of the schedule input.
    pub schedule_digest: Digest,
    /// Where snapshots go, for an engine on a data folder.
    pub data_dir: Option<crate::fs::DataDir>,
    failed: OnceLock<String>,
    /// No hold or offer expires before this (a lower bound; `u64::MAX`: none pending).
    next_expiry: AtomicU64,
    sweeping: AtomicBool,
    pub snapshot_lock: Mutex<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("slots", &self.inv.slot_count())
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

/// The appointment engine of one city. `Send + Sync`; clones share the same inventory.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Engine>();
    shared::<Pending<Booked>>();
};

/// Records to submit, or none when the sink does not want them.
pub(crate) struct Batch {
    wanted: bool,
    records: Vec<Record>,
    time: Timestamp,
}

impl Batch {
    pub(crate) fn push(&mut self, actor: &str, subject: &str, decision: impl FnOnce() -> Decision) {
        if self.wanted {
            self.records
                .push(Record::new(self.time, actor, subject, decision()));
        }
    }
}

impl Inner {
    pub(crate) fn new(
        schedule: Arc<Schedule>,
        schedule_digest: Digest,
        sink: Arc<dyn DecisionSink>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
        data_dir: Option<crate::fs::DataDir>,
    ) -> Inner {
        Inner {
            inv: Inventory::new(schedule.clone()),
            schedule,
            sink,
            clock,
            options,
            schedule_digest,
            data_dir,
            failed: OnceLock::new(),
            next_expiry: AtomicU64::new(u64::MAX),
            sweeping: AtomicBool::new(false),
            snapshot_lock: Mutex::new(()),
        }
    }

    pub(crate) fn reset_expiry(&self) {
        self.next_expiry
            .store(self.inv.next_expiry(), Ordering::SeqCst);
    }

    fn fail(&self, why: &str) {
        let _ = self.failed.set(why.to_owned());
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.failed.get() {
            Some(e) => Err(Error::Failed(e.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn batch(&self, time: Timestamp) -> Batch {
        Batch {
            wanted: self.sink.wants_records(),
            records: Vec::new(),
            time,
        }
    }

    /// Submits a batch while the caller still holds its locks; a submission error undoes
    /// `undo` at once (under the same locks) and stops the engine.
    fn submit(&self, shard: &mut PatientShard, batch: Batch, undo: &[Effect]) -> Result<Ack> {
        if batch.records.is_empty() {
            return Ok(Ack::Done);
        }
        match self.sink.submit(&batch.records) {
            Ok(ack) => Ok(ack),
            Err(e) => {
                for effect in undo {
                    let _ = self.inv.apply(shard, effect);
                }
                self.fail(&e.to_string());
                Err(Error::Failed(e.to_string()))
            }
        }
    }

    /// Submits a batch made under every lock (absences, batch bookings).
    pub(crate) fn submit_all(&self, batch: Batch) -> Result<Ack> {
        if batch.records.is_empty() {
            return Ok(Ack::Done);
        }
        self.sink.submit(&batch.records).map_err(|e| {
            self.fail(&e.to_string());
            Error::Failed(e.to_string())
        })
    }

    /// Undoes effects after a log failure, each only if the inventory still allows it.
    fn undo(&self, effects: Vec<Effect>) {
        for effect in effects {
            let mut shard = self.inv.patient_shard(effect.shard());
            let slots = self.effect_slots(&shard, &effect);
            let doctors: Vec<DoctorRef> = slots
                .iter()
                .map(|&s| self.schedule.slot(SlotRef(s)).doctor)
                .collect();
            let _locks = self.inv.doctor_locks(&doctors);
            let _ = self.inv.apply(&mut shard, &effect);
        }
    }

    /// The slots an undo effect touches (to take their doctors' locks).
    fn effect_slots(&self, shard: &PatientShard, effect: &Effect) -> Vec<u32> {
        let appt_slots = |appt: u64| {
            shard
                .appts
                .get(&appt)
                .map(|a| vec![a.slot, a.offered])
                .unwrap_or_default()
        };
        let mut slots = match *effect {
            Effect::Hold { slot, .. } | Effect::Book { slot, .. } => vec![slot],
            Effect::Release { key } => shard
                .holds
                .get(&key)
                .map(|h| vec![h.slot])
                .unwrap_or_default(),
            Effect::Reschedule { appt, to } => {
                let mut v = appt_slots(appt);
                v.push(to);
                v
            }
            Effect::Cancel { appt }
            | Effect::Offer { appt, .. }
            | Effect::Attendance { appt, .. }
            | Effect::Unbook { appt, .. }
            | Effect::Uncancel { appt } => appt_slots(appt),
            Effect::Absence { .. } => Vec::new(),
        };
        slots.retain(|&s| s != NO_SLOT);
        slots
    }

    pub(crate) fn now_local(&self) -> LocalTime {
        LocalTime::from_timestamp(self.clock.now(), self.schedule.offset)
    }

    fn note_expiry(&self, at: u64) {
        self.next_expiry.fetch_min(at, Ordering::SeqCst);
    }

    /// Expires due holds and offers when one may be due (cheap otherwise).
    fn maybe_sweep(&self) {
        let now = self.clock.now().unix_micros();
        if now >= self.next_expiry.load(Ordering::SeqCst) {
            self.sweep(now);
        }
    }

    /// Releases every hold and offer due by `now` (an offer's appointment is cancelled), logging
    /// each; returns how many. Does not wait for durability: any later decision on the same slot
    /// is logged after these, so its acknowledgement covers them.
    pub(crate) fn sweep(&self, now: u64) -> usize {
        if self.sweeping.swap(true, Ordering::SeqCst) {
            return 0;
        }
        self.next_expiry.store(u64::MAX, Ordering::SeqCst);
        let actor = self.options.system_actor.as_str();
        let mut count = 0;
        for s in 0..super::state::SHARDS {
            let mut shard = self.inv.patient_shard(s);
            let due = shard.due(now);
            let mut batch = self.batch(Timestamp::from_unix_micros(now));
            for (key, h) in due {
                let info = self.schedule.slot(SlotRef(h.slot));
                let _d = self.inv.doctor_lock(info.doctor);
                if self
                    .inv
                    .apply(&mut shard, &Effect::Release { key })
                    .is_err()
                {
                    continue;
                }
                count += 1;
                let patient = shard.name(h.patient).to_owned();
                let slot_id = self.schedule.slot_id(SlotRef(h.slot));
                batch.push(actor, &patient, || {
                    HoldReleased {
                        slot: slot_id.clone(),
                        hold: super::state::key_name(key),
                        reason: HoldEnd::Expired,
                    }
                    .into()
                });
                if key & OFFER != 0 {
                    let appt = key & !OFFER;
                    let original = shard.appts.get(&appt).map(|a| a.slot);
                    if self.inv.apply(&mut shard, &Effect::Cancel { appt }).is_ok() {
                        let slot = self.schedule.slot_id(SlotRef(original.unwrap_or(h.slot)));
                        batch.push(actor, &patient, || {
                            AppointmentCancelled {
                                appointment: AppointmentId(appt).to_string(),
                                slot,
                                by: CancelledBy::System,
                            }
                            .into()
                        });
                    }
                }
            }
            if !batch.records.is_empty()
                && let Err(e) = self.sink.submit(&batch.records)
            {
                self.fail(&e.to_string());
            }
            self.note_expiry(shard.next_expiry());
        }
        self.sweeping.store(false, Ordering::SeqCst);
        count
    }

    pub(crate) fn search(&self, q: &FindQuery) -> Vec<Proposal> {
        let busy: Vec<SlotInfo> = match &q.patient {
            Some(name) => {
                let s = patient_shard(name);
                let shard = self.inv.patient_shard(s);
                match shard.find(s, name) {
                    Some(p) => shard
                        .active(p)
                        .map(|slot| self.schedule.slot(SlotRef(slot)))
                        .collect(),
                    None => Vec::new(),
                }
            }
            None => Vec::new(),
        };
        Search {
            inv: &self.inv,
            now: self.now_local(),
            nearest: self.options.nearest,
            weights: self.options.weights,
            busy: &busy,
            per_day: 1,
        }
        .run(q)
    }

    /// Fresh proposals like `slot` (same specialty, near its clinic), for a "taken" answer.
    pub(crate) fn alternatives(&self, slot: SlotRef, patient: Option<&str>) -> Vec<Proposal> {
        let info = self.schedule.slot(slot);
        self.search(&FindQuery {
            specialty: info.specialty,
            home: self.schedule.clinics[info.clinic.index()].xy,
            attached: Some(info.clinic),
            preferred: Vec::new(),
            from: None,
            until: None,
            count: self.options.alternatives,
            patient: patient.map(str::to_owned),
            exclude_doctor: None,
            weights: None,
        })
    }

    fn taken(&self, slot: SlotRef, status: u8, patient: Option<&str>) -> Error {
        Error::SlotTaken {
            slot: self.schedule.slot_id(slot),
            status: SlotStatus::of(status),
            alternatives: self.alternatives(slot, patient),
        }
    }

    /// Fails if `info` overlaps a slot the patient already has (other than `except`).
    fn check_overlap(
        &self,
        shard: &PatientShard,
        patient: PatientRef,
        info: &SlotInfo,
        except: &[u32],
    ) -> Result<()> {
        for other in shard.active(patient) {
            if except.contains(&other) {
                continue;
            }
            if self.schedule.slot(SlotRef(other)).overlaps(info) {
                return Err(Error::Overlap {
                    patient: shard.name(patient).to_string(),
                    slot: self.schedule.slot_id(SlotRef(self.slot_of(info))),
                    other: self.schedule.slot_id(SlotRef(other)),
                });
            }
        }
        Ok(())
    }

    fn slot_of(&self, info: &SlotInfo) -> u32 {
        self.schedule
            .slot_at(info.doctor, info.start)
            .map_or(NO_SLOT, |s| s.0)
    }

    fn check_slot(&self, slot: SlotRef) -> Result<SlotInfo> {
        if slot.0 >= self.inv.slot_count() {
            return Err(Error::bad("slot", format!("slot {slot} does not exist")));
        }
        Ok(self.schedule.slot(slot))
    }

    /// Fails if the slot has started (nothing is held or booked in the past).
    fn check_future(&self, slot: SlotRef, info: &SlotInfo, patient: Option<&str>) -> Result<()> {
        if info.start <= self.now_local() {
            return Err(Error::SlotStarted {
                slot: self.schedule.slot_id(slot),
                alternatives: self.alternatives(slot, patient),
            });
        }
        Ok(())
    }
}

fn check_patient(patient: &str) -> Result<()> {
    check_id(patient).map_err(|p| Error::bad("patient", p))
}

impl Engine {
    /// An engine over `schedule` writing to `sink` (for a durable engine on a data folder see
    /// [`Engine::create`] and [`Engine::open`]).
    pub fn new(
        schedule: Arc<Schedule>,
        schedule_digest: Digest,
        sink: Arc<dyn DecisionSink>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner::new(
                schedule,
                schedule_digest,
                sink,
                clock,
                options,
                None,
            )),
        }
    }

    pub fn schedule(&self) -> &Arc<Schedule> {
        &self.inner.schedule
    }

    pub fn schedule_digest(&self) -> Digest {
        self.inner.schedule_digest
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The slot id `DOCTOR@YYYY-MM-DDTHH:MM`.
    pub fn slot_id(&self, slot: SlotRef) -> String {
        self.inner.schedule.slot_id(slot)
    }

    /// The slot a slot id names.
    pub fn parse_slot(&self, id: &str) -> Result<SlotRef> {
        self.inner.schedule.parse_slot(id).ok_or_else(|| {
            Error::bad(
                "slot",
                format!(
                    "no slot '{}' in the schedule (expected DOCTOR@YYYY-MM-DDTHH:MM of a slot in \
                     the horizon {}..{})",
                    crate::input::clip(id),
                    self.inner.schedule.first_day,
                    self.inner.schedule.date(self.inner.schedule.days - 1)
                ),
            )
        })
    }

    pub fn slot_status(&self, slot: SlotRef) -> SlotStatus {
        SlotStatus::of(self.inner.inv.status(slot.0))
    }

    /// Slots by FHIR status.
    pub fn counts(&self) -> StatusCounts {
        self.inner.inv.counts()
    }

    /// Resolves ids and text into a [`FindQuery`], naming the field at fault.
    pub fn resolve_find(&self, r: &FindRequest) -> Result<FindQuery> {
        let s = &self.inner.schedule;
        let specialty = s.specialty(&r.specialty).ok_or_else(|| {
            Error::bad(
                "specialty",
                format!(
                    "no doctors of specialty '{}' (the city has: {})",
                    crate::input::clip(&r.specialty),
                    s.specialties.join(", ")
                ),
            )
        })?;
        let clinic = |field: &'static str, id: &str| {
            s.clinic(id)
                .ok_or_else(|| Error::bad(field, format!("no clinic '{}'", crate::input::clip(id))))
        };
        let attached = r
            .attached
            .as_deref()
            .map(|id| clinic("attached", id))
            .transpose()?;
        let preferred = r
            .preferred
            .iter()
            .map(|id| clinic("preferred", id))
            .collect::<Result<Vec<_>>>()?;
        let home = match (r.home, attached) {
            (Some(at), _) => {
                if !(-90.0..=90.0).contains(&at.lat) || !(-180.0..=180.0).contains(&at.lon) {
                    return Err(Error::bad("home", "latitude or longitude out of range"));
                }
                s.projection.project(at)
            }
            (None, Some(c)) => s.clinics[c.index()].xy,
            (None, None) => {
                return Err(Error::bad(
                    "home",
                    "give the patient's home location or attached clinic",
                ));
            }
        };
        if let Some(p) = &r.patient {
            check_patient(p)?;
        }
        if let (Some(a), Some(b)) = (r.from, r.until)
            && b <= a
        {
            return Err(Error::bad("until", "the window ends before it starts"));
        }
        if r.count == 0 || r.count > 1000 {
            return Err(Error::bad("count", "ask for 1 to 1000 proposals"));
        }
        Ok(FindQuery {
            specialty,
            home,
            attached,
            preferred,
            from: r.from,
            until: r.until,
            count: r.count,
            patient: r.patient.clone(),
            exclude_doctor: None,
            weights: None,
        })
    }

    /// `$find`: ranked proposals, best first. Reads without locks.
    pub fn find(&self, q: &FindQuery) -> Result<Vec<Proposal>> {
        self.inner.check()?;
        self.inner.maybe_sweep();
        Ok(self.inner.search(q))
    }

    /// `$hold`: holds a free slot for a patient until the TTL (default 5 minutes) passes.
    pub fn hold(
        &self,
        actor: &str,
        patient: &str,
        slot: SlotRef,
        ttl: Option<Duration>,
    ) -> Result<Held> {
        self.begin_hold(actor, patient, slot, ttl)?.wait()
    }

    /// [`Engine::hold`] without waiting for durability.
    pub fn begin_hold(
        &self,
        actor: &str,
        patient: &str,
        slot: SlotRef,
        ttl: Option<Duration>,
    ) -> Result<Pending<Held>> {
        let e = &self.inner;
        e.check()?;
        check_patient(patient)?;
        e.maybe_sweep();
        let now = e.clock.now();
        let ttl = ttl.unwrap_or(e.options.hold_ttl);
        let expires = now.unix_micros().saturating_add(ttl.as_micros() as u64);
        self.take_free_slot(patient, slot, now, |shard, s, p| {
            let hold = shard.new_hold(s);
            e.inv
                .apply(
                    shard,
                    &Effect::Hold {
                        patient: p,
                        slot: slot.0,
                        hold,
                        expires,
                    },
                )
                .map_err(Error::Internal)?;
            e.note_expiry(expires);
            let mut batch = e.batch(now);
            batch.push(actor, patient, || {
                SlotHeld {
                    slot: e.schedule.slot_id(slot),
                    hold: HoldId(hold).to_string(),
                    expires: Timestamp::from_unix_micros(expires),
                }
                .into()
            });
            let undo = vec![Effect::Release { key: hold }];
            let ack = e.submit(shard, batch, &undo)?;
            let held = Held {
                hold: HoldId(hold),
                slot,
                expires: Timestamp::from_unix_micros(expires),
            };
            Ok((held, undo, ack))
        })
    }

    /// Gives a free slot to `patient`: under the patient's shard lock and the slot's doctor
    /// lock, checks the patient's other appointments and that the slot is free, then lets `take`
    /// change the inventory and queue its decisions before the locks are released. A slot held
    /// by a hold that has lapsed but not been swept yet counts as free: one sweep, one retry.
    fn take_free_slot<T>(
        &self,
        patient: &str,
        slot: SlotRef,
        now: Timestamp,
        take: impl FnOnce(&mut PatientShard, usize, PatientRef) -> Result<(T, Vec<Effect>, Ack)>,
    ) -> Result<Pending<T>> {
        let e = &self.inner;
        let info = e.check_slot(slot)?;
        e.check_future(slot, &info, Some(patient))?;
        let s = patient_shard(patient);
        let mut swept = false;
        let (mut shard, doctor, p) = loop {
            let mut shard = e.inv.patient_shard(s);
            let p = shard.intern(s, patient);
            e.check_overlap(&shard, p, &info, &[])?;
            let doctor = e.inv.doctor_lock(info.doctor);
            let status = e.inv.status(slot.0);
            if status == FREE {
                break (shard, doctor, p);
            }
            drop((doctor, shard));
            if status == HELD && !swept && e.next_expiry.load(Ordering::SeqCst) <= now.unix_micros()
            {
                e.sweep(now.unix_micros());
                swept = true;
                continue;
            }
            return Err(e.taken(slot, status, Some(patient)));
        };
        let (value, undo, ack) = take(&mut shard, s, p)?;
        drop((doctor, shard));
        Ok(Pending::new(&self.inner, ack, value, undo))
    }

    /// Lets a hold go before it expires.
    pub fn release(&self, actor: &str, hold: HoldId) -> Result<()> {
        self.begin_release(actor, hold)?.wait()
    }

    pub fn begin_release(&self, actor: &str, hold: HoldId) -> Result<Pending<()>> {
        let e = &self.inner;
        e.check()?;
        let s = id_shard(hold.0);
        let mut shard = e.inv.patient_shard(s);
        let h = *shard
            .holds
            .get(&hold.0)
            .ok_or_else(|| Error::UnknownHold(hold.to_string()))?;
        let info = e.schedule.slot(SlotRef(h.slot));
        let doctor = e.inv.doctor_lock(info.doctor);
        e.inv
            .apply(&mut shard, &Effect::Release { key: hold.0 })
            .map_err(Error::Internal)?;
        let mut batch = e.batch(e.clock.now());
        let patient = shard.name(h.patient).to_owned();
        batch.push(actor, &patient, || {
            HoldReleased {
                slot: e.schedule.slot_id(SlotRef(h.slot)),
                hold: hold.to_string(),
                reason: HoldEnd::Released,
            }
            .into()
        });
        let undo = vec![Effect::Hold {
            patient: h.patient,
            slot: h.slot,
            hold: hold.0,
            expires: h.expires,
        }];
        let ack = e.submit(&mut shard, batch, &undo)?;
        drop((doctor, shard));
        Ok(Pending::new(&self.inner, ack, (), undo))
    }

    /// `$book`: books a held slot (consuming the hold) or a free one.
    pub fn book(&self, actor: &str, booking: Booking<'_>) -> Result<Booked> {
        self.begin_book(actor, booking)?.wait()
    }

    pub fn begin_book(&self, actor: &str, booking: Booking<'_>) -> Result<Pending<Booked>> {
        let e = &self.inner;
        e.check()?;
        let now = e.clock.now();
        match booking {
            Booking::Hold(hold) => {
                let s = id_shard(hold.0);
                let mut shard = e.inv.patient_shard(s);
                let h: HoldRec = *shard
                    .holds
                    .get(&hold.0)
                    .ok_or_else(|| Error::UnknownHold(hold.to_string()))?;
                let slot = SlotRef(h.slot);
                let info = e.schedule.slot(slot);
                let doctor = e.inv.doctor_lock(info.doctor);
                let patient = shard.name(h.patient).to_owned();
                if h.expires <= now.unix_micros() {
                    // Expired but not yet swept: release it now, then say so.
                    e.inv
                        .apply(&mut shard, &Effect::Release { key: hold.0 })
                        .map_err(Error::Internal)?;
                    let mut batch = e.batch(now);
                    batch.push(&e.options.system_actor, &patient, || {
                        HoldReleased {
                            slot: e.schedule.slot_id(slot),
                            hold: hold.to_string(),
                            reason: HoldEnd::Expired,
                        }
                        .into()
                    });
                    e.submit(&mut shard, batch, &[])?;
                    drop((doctor, shard));
                    return Err(Error::HoldExpired {
                        hold: hold.to_string(),
                        slot: e.schedule.slot_id(slot),
                        expires: Timestamp::from_unix_micros(h.expires),
                        alternatives: e.alternatives(slot, Some(&patient)),
                    });
                }
                if info.start <= e.now_local() {
                    drop((doctor, shard));
                    return Err(Error::SlotStarted {
                        slot: e.schedule.slot_id(slot),
                        alternatives: e.alternatives(slot, Some(&patient)),
                    });
                }
                let appt = shard.new_appt(s);
                e.inv
                    .apply(
                        &mut shard,
                        &Effect::Book {
                            patient: h.patient,
                            slot: h.slot,
                            appt,
                            hold: Some(hold.0),
                        },
                    )
                    .map_err(Error::Internal)?;
                let mut batch = e.batch(now);
                batch.push(actor, &patient, || {
                    SlotBooked {
                        slot: e.schedule.slot_id(slot),
                        appointment: AppointmentId(appt).to_string(),
                        hold: Some(hold.to_string()),
                    }
                    .into()
                });
                let undo = vec![Effect::Unbook {
                    appt,
                    hold: Some((hold.0, h.expires)),
                }];
                let ack = e.submit(&mut shard, batch, &undo)?;
                drop((doctor, shard));
                Ok(Pending::new(
                    &self.inner,
                    ack,
                    Booked {
                        appointment: AppointmentId(appt),
                        slot,
                    },
                    undo,
                ))
            }
            Booking::Slot { patient, slot } => {
                e.maybe_sweep();
                check_patient(patient)?;
                self.take_free_slot(patient, slot, now, |shard, s, p| {
                    let appt = shard.new_appt(s);
                    e.inv
                        .apply(
                            shard,
                            &Effect::Book {
                                patient: p,
                                slot: slot.0,
                                appt,
                                hold: None,
                            },
                        )
                        .map_err(Error::Internal)?;
                    let mut batch = e.batch(now);
                    batch.push(actor, patient, || {
                        SlotBooked {
                            slot: e.schedule.slot_id(slot),
                            appointment: AppointmentId(appt).to_string(),
                            hold: None,
                        }
                        .into()
                    });
                    let undo = vec![Effect::Unbook { appt, hold: None }];
                    let ack = e.submit(shard, batch, &undo)?;
                    let booked = Booked {
                        appointment: AppointmentId(appt),
                        slot,
                    };
                    Ok((booked, undo, ack))
                })
            }
        }
    }

    /// Cancels a booked appointment (its slot is free again), or declines a pending re-offer.
    pub fn cancel(&self, actor: &str, appointment: AppointmentId, by: CancelledBy) -> Result<()> {
        self.begin_cancel(actor, appointment, by)?.wait()
    }

    pub fn begin_cancel(
        &self,
        actor: &str,
        appointment: AppointmentId,
        by: CancelledBy,
    ) -> Result<Pending<()>> {
        let e = &self.inner;
        e.check()?;
        let s = id_shard(appointment.0);
        let mut shard = e.inv.patient_shard(s);
        let a = appointment_record(&shard, appointment)?;
        let patient = shard.name(a.patient).to_owned();
        let mut batch = e.batch(e.clock.now());
        let mut slots = vec![e.schedule.slot(SlotRef(a.slot)).doctor];
        if a.offered != NO_SLOT {
            slots.push(e.schedule.slot(SlotRef(a.offered)).doctor);
        }
        let locks = e.inv.doctor_locks(&slots);
        let undo = match a.status {
            AppointmentStatus::Booked => {
                e.inv
                    .apply(
                        &mut shard,
                        &Effect::Cancel {
                            appt: appointment.0,
                        },
                    )
                    .map_err(Error::Internal)?;
                vec![Effect::Uncancel {
                    appt: appointment.0,
                }]
            }
            AppointmentStatus::Pending if a.offered != NO_SLOT => {
                e.inv
                    .apply(
                        &mut shard,
                        &Effect::Release {
                            key: appointment.0 | OFFER,
                        },
                    )
                    .map_err(Error::Internal)?;
                e.inv
                    .apply(
                        &mut shard,
                        &Effect::Cancel {
                            appt: appointment.0,
                        },
                    )
                    .map_err(Error::Internal)?;
                batch.push(actor, &patient, || {
                    HoldReleased {
                        slot: e.schedule.slot_id(SlotRef(a.offered)),
                        hold: appointment.to_string(),
                        reason: HoldEnd::Released,
                    }
                    .into()
                });
                Vec::new()
            }
            other => {
                return Err(Error::WrongStatus {
                    id: appointment.to_string(),
                    status: other.fhir(),
                    expected: "booked or pending",
                });
            }
        };
        batch.push(actor, &patient, || {
            AppointmentCancelled {
                appointment: appointment.to_string(),
                slot: e.schedule.slot_id(SlotRef(a.slot)),
                by,
            }
            .into()
        });
        let ack = e.submit(&mut shard, batch, &undo)?;
        drop((locks, shard));
        Ok(Pending::new(&self.inner, ack, (), undo))
    }

    /// Moves a booked appointment to `to` atomically: `to` is booked and the old slot freed in
    /// one decision, and on any failure the old booking stays. A hold the patient has on `to`
    /// may be given; it is consumed.
    pub fn reschedule(
        &self,
        actor: &str,
        appointment: AppointmentId,
        to: SlotRef,
        hold: Option<HoldId>,
    ) -> Result<Moved> {
        self.begin_reschedule(actor, appointment, to, hold)?.wait()
    }

    pub fn begin_reschedule(
        &self,
        actor: &str,
        appointment: AppointmentId,
        to: SlotRef,
        hold: Option<HoldId>,
    ) -> Result<Pending<Moved>> {
        let e = &self.inner;
        e.check()?;
        e.maybe_sweep();
        let to_info = e.check_slot(to)?;
        let s = id_shard(appointment.0);
        let mut shard = e.inv.patient_shard(s);
        let a = appointment_record(&shard, appointment)?;
        if a.status != AppointmentStatus::Booked {
            return Err(Error::WrongStatus {
                id: appointment.to_string(),
                status: a.status.fhir(),
                expected: "booked (accept a re-offer with accept_offer)",
            });
        }
        let patient = shard.name(a.patient).to_owned();
        if to.0 == a.slot {
            return Err(Error::bad("to", "the appointment is already in this slot"));
        }
        let now = e.clock.now();
        let held = match hold {
            Some(h) => {
                let rec = (id_shard(h.0) == s)
                    .then(|| shard.holds.get(&h.0).copied())
                    .flatten()
                    .filter(|r| r.patient == a.patient)
                    .ok_or_else(|| Error::UnknownHold(h.to_string()))?;
                if rec.slot != to.0 {
                    return Err(Error::bad("hold", format!("hold {h} is for another slot")));
                }
                if rec.expires <= now.unix_micros() {
                    drop(shard);
                    return Err(Error::HoldExpired {
                        hold: h.to_string(),
                        slot: e.schedule.slot_id(to),
                        expires: Timestamp::from_unix_micros(rec.expires),
                        alternatives: e.alternatives(to, Some(&patient)),
                    });
                }
                Some((h, rec))
            }
            None => None,
        };
        if to_info.start <= e.now_local() {
            drop(shard);
            return Err(Error::SlotStarted {
                slot: e.schedule.slot_id(to),
                alternatives: e.alternatives(to, Some(&patient)),
            });
        }
        e.check_overlap(&shard, a.patient, &to_info, &[a.slot, to.0])?;
        let from_info = e.schedule.slot(SlotRef(a.slot));
        let locks = e.inv.doctor_locks(&[from_info.doctor, to_info.doctor]);
        let status = e.inv.status(to.0);
        let expected = if held.is_some() { HELD } else { FREE };
        if status != expected {
            drop((locks, shard));
            return Err(e.taken(to, status, Some(&patient)));
        }
        let mut batch = e.batch(now);
        let mut undo = vec![Effect::Reschedule {
            appt: appointment.0,
            to: SlotRef(a.slot).0,
        }];
        if let Some((h, rec)) = held {
            e.inv
                .apply(&mut shard, &Effect::Release { key: h.0 })
                .map_err(Error::Internal)?;
            batch.push(actor, &patient, || {
                HoldReleased {
                    slot: e.schedule.slot_id(to),
                    hold: h.to_string(),
                    reason: HoldEnd::Released,
                }
                .into()
            });
            undo.push(Effect::Hold {
                patient: a.patient,
                slot: to.0,
                hold: h.0,
                expires: rec.expires,
            });
        }
        if let Err(why) = e.inv.apply(
            &mut shard,
            &Effect::Reschedule {
                appt: appointment.0,
                to: to.0,
            },
        ) {
            // Only the hold release can have happened: put it back.
            for effect in undo.iter().skip(1) {
                let _ = e.inv.apply(&mut shard, effect);
            }
            return Err(Error::Internal(why));
        }
        batch.push(actor, &patient, || {
            Rescheduled {
                appointment: appointment.to_string(),
                from_slot: e.schedule.slot_id(SlotRef(a.slot)),
                to_slot: e.schedule.slot_id(to),
            }
            .into()
        });
        let ack = e.submit(&mut shard, batch, &undo)?;
        drop((locks, shard));
        Ok(Pending::new(
            &self.inner,
            ack,
            Moved {
                appointment,
                from: SlotRef(a.slot),
                to,
            },
            undo,
        ))
    }

    /// Accepts a pending re-offer: the appointment is booked on the offered slot.
    pub fn accept_offer(&self, actor: &str, appointment: AppointmentId) -> Result<Moved> {
        self.begin_accept_offer(actor, appointment)?.wait()
    }

    pub fn begin_accept_offer(
        &self,
        actor: &str,
        appointment: AppointmentId,
    ) -> Result<Pending<Moved>> {
        let e = &self.inner;
        e.check()?;
        e.maybe_sweep();
        let s = id_shard(appointment.0);
        let mut shard = e.inv.patient_shard(s);
        let a = appointment_record(&shard, appointment)?;
        if a.status != AppointmentStatus::Pending || a.offered == NO_SLOT {
            return Err(Error::WrongStatus {
                id: appointment.to_string(),
                status: a.status.fhir(),
                expected: "pending with a re-offer",
            });
        }
        let to = SlotRef(a.offered);
        let doctor = e.inv.doctor_lock(e.schedule.slot(to).doctor);
        e.inv
            .apply(
                &mut shard,
                &Effect::Reschedule {
                    appt: appointment.0,
                    to: to.0,
                },
            )
            .map_err(Error::Internal)?;
        let patient = shard.name(a.patient).to_owned();
        let mut batch = e.batch(e.clock.now());
        batch.push(actor, &patient, || {
            Rescheduled {
                appointment: appointment.to_string(),
                from_slot: e.schedule.slot_id(SlotRef(a.slot)),
                to_slot: e.schedule.slot_id(to),
            }
            .into()
        });
        let ack = e.submit(&mut shard, batch, &[])?;
        drop((doctor, shard));
        Ok(Pending::new(
            &self.inner,
            ack,
            Moved {
                appointment,
                from: SlotRef(a.slot),
                to,
            },
            Vec::new(),
        ))
    }

    /// Records how a booked appointment ended (FHIR `fulfilled` or `noshow`).
    pub fn record_attendance(
        &self,
        actor: &str,
        appointment: AppointmentId,
        status: Attendance,
    ) -> Result<()> {
        self.begin_record_attendance(actor, appointment, status)?
            .wait()
    }

    pub fn begin_record_attendance(
        &self,
        actor: &str,
        appointment: AppointmentId,
        status: Attendance,
    ) -> Result<Pending<()>> {
        let e = &self.inner;
        e.check()?;
        let s = id_shard(appointment.0);
        let mut shard = e.inv.patient_shard(s);
        let a = appointment_record(&shard, appointment)?;
        if a.status != AppointmentStatus::Booked {
            return Err(Error::WrongStatus {
                id: appointment.to_string(),
                status: a.status.fhir(),
                expected: "booked",
            });
        }
        e.inv
            .apply(
                &mut shard,
                &Effect::Attendance {
                    appt: appointment.0,
                    status,
                },
            )
            .map_err(Error::Internal)?;
        let patient = shard.name(a.patient).to_owned();
        let mut batch = e.batch(e.clock.now());
        batch.push(actor, &patient, || {
            AttendanceRecorded {
                appointment: appointment.to_string(),
                status,
            }
            .into()
        });
        let ack = e.submit(&mut shard, batch, &[])?;
        drop(shard);
        Ok(Pending::new(&self.inner, ack, (), Vec::new()))
    }

    /// An appointment by id (re-offers past their time have lapsed first).
    pub fn appointment(&self, id: AppointmentId) -> Option<AppointmentView> {
        let e = &self.inner;
        e.maybe_sweep();
        let shard = e.inv.patient_shard(id_shard(id.0));
        let a = shard.appts.get(&id.0)?;
        let offered = (a.offered != NO_SLOT).then(|| {
            let expires = shard.holds.get(&(id.0 | OFFER)).map_or(0, |h| h.expires);
            (SlotRef(a.offered), Timestamp::from_unix_micros(expires))
        });
        Some(AppointmentView {
            id,
            patient: shard.name(a.patient).to_string(),
            status: a.status,
            slot: SlotRef(a.slot),
            slot_status: SlotStatus::of(e.inv.status(a.slot)),
            offered,
        })
    }

    /// A live hold by id (none once it has expired).
    pub fn hold_info(&self, id: HoldId) -> Option<HoldView> {
        self.inner.maybe_sweep();
        let shard = self.inner.inv.patient_shard(id_shard(id.0));
        let h = shard.holds.get(&id.0)?;
        Some(HoldView {
            id,
            patient: shard.name(h.patient).to_string(),
            slot: SlotRef(h.slot),
            expires: Timestamp::from_unix_micros(h.expires),
        })
    }

    /// A patient's live appointments and holds (booked, pending, held), by slot.
    pub fn patient_slots(&self, patient: &str) -> Vec<SlotRef> {
        let s = patient_shard(patient);
        let shard = self.inner.inv.patient_shard(s);
        shard
            .find(s, patient)
            .map(|p| shard.active(p).map(SlotRef).collect())
            .unwrap_or_default()
    }

    /// Releases every hold and offer due by now; returns how many ended. Every operation (and
    /// every look-up of a hold or an appointment) does this first when something is due, so
    /// holds expire on their own; a server may also call it on a timer, so that the expiry
    /// decisions are logged close to the time they happened.
    pub fn expire_holds(&self) -> Result<usize> {
        self.inner.check()?;
        Ok(self.inner.sweep(self.inner.clock.now().unix_micros()))
    }

    /// `(held or booked, available)` slots of a clinic on a horizon day.
    pub fn clinic_day_load(&self, clinic: ClinicRef, day: u32) -> (u32, u32) {
        self.inner.inv.load(clinic.index(), day as usize)
    }

    /// Memory used by the inventory, and per slot.
    pub fn memory(&self) -> MemoryReport {
        let (status, counters, records) = self.inner.inv.bytes();
        let layout = self.inner.schedule.layout_bytes();
        let slots = u64::from(self.inner.inv.slot_count());
        let total = status + counters + records + layout;
        MemoryReport {
            slots,
            status_bytes: status as u64,
            counter_bytes: counters as u64,
            layout_bytes: layout as u64,
            record_bytes: records as u64,
            total_bytes: total as u64,
            bytes_per_slot: total as f64 / slots.max(1) as f64,
        }
    }

    /// SHA-256 of the canonical inventory (equal for equal inventories, however they were built).
    pub fn state_digest(&self) -> Digest {
        let locks = self.inner.inv.lock_all();
        let (bytes, _) = self.inner.inv.encode(&locks);
        drop(locks);
        Digest::of(&bytes)
    }
}

/// What the inventory takes in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryReport {
    pub slots: u64,
    /// One status byte per slot.
    pub status_bytes: u64,
    /// Per clinic-day and clinic-specialty-day counters.
    pub counter_bytes: u64,
    /// The schedule: doctors, templates, per doctor-day slot offsets.
    pub layout_bytes: u64,
    /// Holds, appointments and patients (estimated from the maps' capacities).
    pub record_bytes: u64,
    pub total_bytes: u64,
    pub bytes_per_slot: f64,
}

/// The record of `appointment` in its patient shard (the shard `id_shard` names).
fn appointment_record(shard: &PatientShard, appointment: AppointmentId) -> Result<ApptRec> {
    shard
        .appts
        .get(&appointment.0)
        .copied()
        .ok_or_else(|| Error::UnknownAppointment(appointment.to_string()))
}
