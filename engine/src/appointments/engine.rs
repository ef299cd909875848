//! The appointment engine: the city's inventory, the sink its decisions go to, its clock and
//! options, and what every operation shares: checks, expiry sweeps, `$find`'s search, and the
//! views of appointments and holds. The operations that change the inventory are in
//! `booking.rs` (each one [`Change`](super::change::Change)), absences in `absence.rs`,
//! re-balancing in `rebalance.rs`, opening and snapshots in `persist.rs`.
//!
//! If the log fails, an operation's own changes are undone when the inventory still shows them,
//! and the engine stops: every later call fails with [`Error::Failed`] until it is reopened,
//! which rebuilds the inventory from the log.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::change::Batch;
use super::clock::Clock;
use super::error::{Error, Result};
use super::find::{FindQuery, Proposal, Search, Weights};
use super::ids::{AppointmentId, HoldId, HoldKey};
use super::schedule::{ClinicRef, DoctorRef, Location, Schedule, SlotInfo, SlotRef};
use super::sink::{Ack, DecisionSink};
use super::state::{
    AppointmentStatus, ApptRec, Effect, Inventory, NO_SLOT, PatientRef, PatientShard, SlotStatus,
    StatusCounts, id_shard, patient_shard,
};
use super::time::LocalTime;
use crate::input::check_id;
use crate::log::decision::{AppointmentCancelled, CancelledBy, HoldEnd, HoldReleased};
use crate::log::{Digest, Timestamp};

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
    /// A follower replica's engine: its inventory follows the log's entries (copied from the
    /// leader) and it makes no decision of its own, not even expiries.
    pub following: AtomicBool,
    /// Entries of the log applied to the inventory (maintained while following).
    pub followed: AtomicU64,
    pub follow_lock: Mutex<()>,
    /// Entries applied since the newest snapshot (replayed at open, then followed).
    pub since_snapshot: AtomicU64,
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
    shared::<super::pending::Pending<super::booking::Booked>>();
};

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
            following: AtomicBool::new(false),
            followed: AtomicU64::new(0),
            follow_lock: Mutex::new(()),
            since_snapshot: AtomicU64::new(0),
        }
    }

    pub(crate) fn reset_expiry(&self) {
        self.next_expiry
            .store(self.inv.next_expiry(), Ordering::SeqCst);
    }

    pub(crate) fn fail(&self, why: &str) {
        let _ = self.failed.set(why.to_owned());
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.failed.get() {
            Some(e) => Err(Error::Failed(e.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn batch(&self, time: Timestamp) -> Batch {
        Batch::new(self.sink.wants_records(), time)
    }

    /// Submits a batch while the caller still holds its locks; a submission error undoes
    /// `undo` at once (under the same locks) and stops the engine.
    pub(crate) fn submit(
        &self,
        shard: &mut PatientShard,
        batch: Batch,
        undo: &[Effect],
    ) -> Result<Ack> {
        if batch.records.is_empty() {
            return Ok(Ack::Done);
        }
        match self.sink.submit(&batch.records) {
            Ok(ack) => Ok(ack),
            Err(e) => {
                for effect in undo {
                    let _ = self.inv.apply(shard, effect);
                }
                Err(self.refused(e))
            }
        }
    }

    /// Submits a batch made under every lock (absences, batch bookings).
    pub(crate) fn submit_all(&self, batch: Batch) -> Result<Ack> {
        if batch.records.is_empty() {
            return Ok(Ack::Done);
        }
        self.sink
            .submit(&batch.records)
            .map_err(|e| self.refused(e))
    }

    /// The error for a batch the log did not take: a follower's refusal leaves the engine as it
    /// was (the batch was not queued); any other failure stops it.
    fn refused(&self, e: crate::log::Error) -> Error {
        use crate::log::backend::BackendError;
        if let crate::log::Error::Backend(BackendError::NotLeader { .. }) = &e {
            return Error::NotLeader(e.to_string());
        }
        self.fail(&e.to_string());
        Error::Failed(e.to_string())
    }

    /// Undoes effects after a log failure, each only if the inventory still allows it.
    pub(crate) fn undo(&self, effects: Vec<Effect>) {
        for effect in effects {
            let _ = self.apply_locked(&effect);
        }
    }

    /// Applies an effect under its patient's and doctors' locks, as operations do (a follower
    /// applies the leader's decisions while it answers reads).
    pub(crate) fn apply_locked(&self, effect: &Effect) -> std::result::Result<(), String> {
        let mut shard = self.inv.patient_shard(effect.shard());
        let slots = self.effect_slots(&shard, effect);
        let doctors: Vec<DoctorRef> = slots
            .iter()
            .map(|&s| self.schedule.slot(SlotRef(s)).doctor)
            .collect();
        let _locks = self.inv.doctor_locks(&doctors);
        self.inv.apply(&mut shard, effect).map(|_| ())
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
        LocalTime::from_timestamp(self.clock.now(), &self.schedule.zone)
    }

    pub(crate) fn note_expiry(&self, at: u64) {
        self.next_expiry.fetch_min(at, Ordering::SeqCst);
    }

    /// Whether a hold or offer may be due by `now` (a lower bound: cheap, lock-free).
    pub(crate) fn expiry_due(&self, now: Timestamp) -> bool {
        self.next_expiry.load(Ordering::SeqCst) <= now.unix_micros()
    }

    /// Expires due holds and offers when one may be due (cheap otherwise).
    pub(crate) fn maybe_sweep(&self) {
        if self.following.load(Ordering::SeqCst) {
            return;
        }
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
                        hold: key.name(),
                        reason: HoldEnd::Expired,
                    }
                    .into()
                });
                if let Some(appt) = key.offered_to() {
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
            only: Default::default(),
            weights: None,
        })
    }

    pub(crate) fn taken(&self, slot: SlotRef, status: u8, patient: Option<&str>) -> Error {
        Error::SlotTaken {
            slot: self.schedule.slot_id(slot),
            status: SlotStatus::of(status),
            alternatives: self.alternatives(slot, patient),
        }
    }

    /// Fails if `info` overlaps a slot the patient already has (other than `except`).
    pub(crate) fn check_overlap(
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

    pub(crate) fn check_slot(&self, slot: SlotRef) -> Result<SlotInfo> {
        if slot.0 >= self.inv.slot_count() {
            return Err(Error::bad("slot", format!("slot {slot} does not exist")));
        }
        Ok(self.schedule.slot(slot))
    }

    /// Fails if the slot has started (nothing is held or booked in the past).
    pub(crate) fn check_future(
        &self,
        slot: SlotRef,
        info: &SlotInfo,
        patient: Option<&str>,
    ) -> Result<()> {
        if info.start <= self.now_local() {
            return Err(Error::SlotStarted {
                slot: self.schedule.slot_id(slot),
                alternatives: self.alternatives(slot, patient),
            });
        }
        Ok(())
    }
}

pub(crate) fn check_patient(patient: &str) -> Result<()> {
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
            only: Default::default(),
            weights: None,
        })
    }

    /// `$find`: ranked proposals, best first. Reads without locks.
    pub fn find(&self, q: &FindQuery) -> Result<Vec<Proposal>> {
        self.inner.check()?;
        self.inner.maybe_sweep();
        Ok(self.inner.search(q))
    }

    /// An appointment by id (re-offers past their time have lapsed first).
    pub fn appointment(&self, id: AppointmentId) -> Option<AppointmentView> {
        let e = &self.inner;
        e.maybe_sweep();
        let shard = e.inv.patient_shard(id_shard(id.0));
        let a = shard.appts.get(&id.0)?;
        Some(self.view(&shard, id, a))
    }

    /// A patient's appointments, live and past, oldest booking first. Reads the one shard that
    /// holds the patient's records (about 1/256 of all appointments).
    pub fn patient_appointments(&self, patient: &str) -> Vec<AppointmentView> {
        let e = &self.inner;
        e.maybe_sweep();
        let s = patient_shard(patient);
        let shard = e.inv.patient_shard(s);
        let Some(p) = shard.find(s, patient) else {
            return Vec::new();
        };
        let mut found: Vec<AppointmentView> = shard
            .appts
            .iter()
            .filter(|(_, a)| a.patient == p)
            .map(|(&n, a)| self.view(&shard, AppointmentId(n), a))
            .collect();
        found.sort_unstable_by_key(|v| v.id.0);
        found
    }

    /// Slots of `doctors` (each in time order), from slot number `after` on, that start in
    /// `[from, until)` and whose status `wanted` accepts; at most `limit` of them, and the slot
    /// number to go on from when there may be more.
    pub fn list_slots(
        &self,
        doctors: &[DoctorRef],
        (from, until): (Option<LocalTime>, Option<LocalTime>),
        wanted: impl Fn(SlotStatus) -> bool,
        after: u32,
        limit: usize,
    ) -> (Vec<SlotRef>, Option<u32>) {
        let s = &self.inner.schedule;
        let first_day = from.map_or(0, |t| s.day_of(t).clamp(0, i64::from(s.days)) as u32);
        let end_day = until.map_or(s.days, |t| {
            (s.day_of(t) + 1).clamp(0, i64::from(s.days)) as u32
        });
        let mut out = Vec::new();
        for &doctor in doctors {
            if s.doctor_slots(doctor).end <= after {
                continue;
            }
            for day in first_day..end_day {
                let slots = s.doctor_day(doctor, day);
                if slots.end <= after {
                    continue;
                }
                let midnight = s.date(day).start();
                for (k, slot) in slots.clone().enumerate() {
                    if slot < after {
                        continue;
                    }
                    let start =
                        midnight.add_minutes(i64::from(s.start_minute(doctor, day, k as u32)));
                    if from.is_some_and(|t| start < t) || until.is_some_and(|t| start >= t) {
                        continue;
                    }
                    if !wanted(self.slot_status(SlotRef(slot))) {
                        continue;
                    }
                    if out.len() == limit {
                        return (out, Some(slot));
                    }
                    out.push(SlotRef(slot));
                }
            }
        }
        (out, None)
    }

    fn view(&self, shard: &PatientShard, id: AppointmentId, a: &ApptRec) -> AppointmentView {
        let e = &self.inner;
        let offered = (a.offered != NO_SLOT).then(|| {
            let expires = shard
                .holds
                .get(&HoldKey::offer(id.0))
                .map_or(0, |h| h.expires);
            (SlotRef(a.offered), Timestamp::from_unix_micros(expires))
        });
        AppointmentView {
            id,
            patient: shard.name(a.patient).to_string(),
            status: a.status,
            slot: SlotRef(a.slot),
            slot_status: SlotStatus::of(e.inv.status(a.slot)),
            offered,
        }
    }

    /// A live hold by id (none once it has expired).
    pub fn hold_info(&self, id: HoldId) -> Option<HoldView> {
        self.inner.maybe_sweep();
        let shard = self.inner.inv.patient_shard(id_shard(id.0));
        let h = shard.holds.get(&HoldKey::hold(id.0))?;
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
