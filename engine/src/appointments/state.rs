//! The mutable inventory: one status byte per slot, load counters per clinic-day, and records
//! only for what is not free (holds, offers, appointments), sharded by patient.
//!
//! Every change goes through [`Inventory::apply`] with an [`Effect`], both when an operation runs
//! and when the log is replayed on start, so a rebuilt inventory is the same by construction.
//!
//! Locks: a patient shard's mutex guards that shard's records; a doctor lock guards the status
//! bytes (and counters) of that doctor's slots. Order: patient shards by index, then doctor locks by
//! index. Status bytes are atomics so that `find` reads them without any lock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::ids::HoldKey;
use super::schedule::{DoctorRef, Schedule, SlotInfo, SlotRef};
use super::time::LocalTime;
use crate::log::codec::{Reader, Writer};
use crate::log::decision::Attendance;

pub(crate) const FREE: u8 = 0;
pub(crate) const HELD: u8 = 1;
pub(crate) const BOOKED: u8 = 2;
pub(crate) const UNAVAILABLE: u8 = 3;
/// Booked on a slot that an absence just made unavailable; the appointment is re-offered or
/// cancelled in the same batch, so this never outlives one operation.
pub(crate) const DISPLACED: u8 = 4;
/// Booked by an appointment whose attendance is recorded (fulfilled or no-show): busy, and no
/// longer movable, so an absence leaves it alone.
pub(crate) const ATTENDED: u8 = 5;

/// Patient shards: a patient's shard is fixed by a hash of the id, and hold and appointment ids
/// carry it (`n % SHARDS`), so every record of one patient is under one lock.
pub const SHARDS: usize = 256;
const SHARD_BITS: u32 = 8;
/// Doctor locks (doctor index modulo this).
pub(crate) const DOCTOR_LOCKS: usize = 1024;
/// No slot.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// FHIR `Slot.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotStatus {
    Free,
    BusyTentative,
    Busy,
    BusyUnavailable,
}

impl SlotStatus {
    pub(crate) fn of(byte: u8) -> SlotStatus {
        match byte {
            FREE => SlotStatus::Free,
            HELD => SlotStatus::BusyTentative,
            BOOKED | ATTENDED => SlotStatus::Busy,
            _ => SlotStatus::BusyUnavailable,
        }
    }

    /// The FHIR code.
    pub fn fhir(self) -> &'static str {
        match self {
            SlotStatus::Free => "free",
            SlotStatus::BusyTentative => "busy-tentative",
            SlotStatus::Busy => "busy",
            SlotStatus::BusyUnavailable => "busy-unavailable",
        }
    }
}

/// FHIR `Appointment.status` (`proposed` is what `find` returns; nothing stored has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppointmentStatus {
    Proposed,
    /// Held, or re-offered after an absence and not yet accepted.
    Pending,
    Booked,
    Cancelled,
    NoShow,
    Fulfilled,
}

impl AppointmentStatus {
    pub fn fhir(self) -> &'static str {
        match self {
            AppointmentStatus::Proposed => "proposed",
            AppointmentStatus::Pending => "pending",
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "noshow",
            AppointmentStatus::Fulfilled => "fulfilled",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<Self> {
        use AppointmentStatus::*;
        [Proposed, Pending, Booked, Cancelled, NoShow, Fulfilled]
            .get(code as usize)
            .copied()
    }
}

/// A patient, interned in its shard: the shard (low 8 bits) and the patient's number within
/// it (the rest), in one `u32` because appointments and holds store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatientRef(pub u32);

impl PatientRef {
    fn new(shard: usize, local: u32) -> PatientRef {
        PatientRef(local << SHARD_BITS | shard as u32)
    }
    pub fn shard(self) -> usize {
        (self.0 & (SHARDS as u32 - 1)) as usize
    }
    fn local(self) -> usize {
        (self.0 >> SHARD_BITS) as usize
    }
}

/// The shard of a patient id: FNV-1a, fixed forever (ids in the log encode it).
pub fn patient_shard(id: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as usize % SHARDS
}

/// The shard a hold or appointment number belongs to.
pub fn id_shard(n: u64) -> usize {
    (n % SHARDS as u64) as usize
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HoldRec {
    pub patient: PatientRef,
    pub slot: u32,
    pub expires: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApptRec {
    pub patient: PatientRef,
    /// The booked slot; for a pending re-offer, the original (now unavailable) slot.
    pub slot: u32,
    /// The slot offered after an absence, or [`NO_SLOT`].
    pub offered: u32,
    pub status: AppointmentStatus,
}

/// A shard of patients and their records. Patients are kept compactly (about 40 bytes each
/// plus the id): ids back to back in one string, an index from a keyed hash of the id, and up
/// to three active slots inline.
#[derive(Debug, Default)]
pub(crate) struct PatientShard {
    /// Patient ids back to back; patient `l`'s is `arena[spans[l].0..][..spans[l].1]`.
    arena: String,
    spans: Vec<(u32, u32)>,
    /// Hash of an id -> the newest patient with that hash; `collisions` chains older ones.
    index: HashMap<u64, u32>,
    collisions: HashMap<u32, u32>,
    hasher: std::hash::RandomState,
    /// Slots each patient holds, has booked or is offered (for the overlap rule): three
    /// inline (`NO_SLOT` when empty), the rest in `more`.
    active: Vec<[u32; 3]>,
    more: HashMap<u32, Vec<u32>>,
    pub holds: HashMap<HoldKey, HoldRec>,
    pub appts: HashMap<u64, ApptRec>,
    next_hold: u64,
    next_appt: u64,
    /// Expiry times of holds and offers (stale entries are skipped when popped).
    expiry: BinaryHeap<Reverse<(u64, HoldKey)>>,
}

impl PatientShard {
    fn hash(&self, name: &str) -> u64 {
        use std::hash::BuildHasher as _;
        self.hasher.hash_one(name)
    }

    fn name_of(&self, local: u32) -> &str {
        let (start, len) = self.spans[local as usize];
        &self.arena[start as usize..(start + len) as usize]
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        let mut local = *self.index.get(&self.hash(name))?;
        loop {
            if self.name_of(local) == name {
                return Some(local);
            }
            local = *self.collisions.get(&local)?;
        }
    }

    pub fn intern(&mut self, shard: usize, name: &str) -> PatientRef {
        let local = match self.lookup(name) {
            Some(l) => l,
            None => {
                let l = self.spans.len() as u32;
                self.spans
                    .push((self.arena.len() as u32, name.len() as u32));
                self.arena.push_str(name);
                self.active.push([NO_SLOT; 3]);
                let h = self.hash(name);
                if let Some(older) = self.index.insert(h, l) {
                    self.collisions.insert(l, older);
                }
                l
            }
        };
        PatientRef::new(shard, local)
    }

    pub fn find(&self, shard: usize, name: &str) -> Option<PatientRef> {
        self.lookup(name).map(|l| PatientRef::new(shard, l))
    }

    pub fn name(&self, p: PatientRef) -> &str {
        self.name_of(p.local() as u32)
    }

    /// The patient's held, booked and offered slots.
    pub fn active(&self, p: PatientRef) -> impl Iterator<Item = u32> + '_ {
        let local = p.local();
        self.active[local]
            .iter()
            .copied()
            .filter(|&s| s != NO_SLOT)
            .chain(
                self.more
                    .get(&(local as u32))
                    .into_iter()
                    .flatten()
                    .copied(),
            )
    }

    fn push_active(&mut self, p: PatientRef, slot: u32) {
        let local = p.local();
        match self.active[local].iter_mut().find(|s| **s == NO_SLOT) {
            Some(free) => *free = slot,
            None => self.more.entry(local as u32).or_default().push(slot),
        }
    }

    /// A new hold number of this shard.
    pub fn new_hold(&mut self, shard: usize) -> u64 {
        let n = self.next_hold * SHARDS as u64 + shard as u64;
        self.next_hold += 1;
        n
    }

    pub fn new_appt(&mut self, shard: usize) -> u64 {
        let n = self.next_appt * SHARDS as u64 + shard as u64;
        self.next_appt += 1;
        n
    }

    fn see_hold(&mut self, n: u64) {
        self.next_hold = self.next_hold.max(n / SHARDS as u64 + 1);
    }

    fn see_appt(&mut self, n: u64) {
        self.next_appt = self.next_appt.max(n / SHARDS as u64 + 1);
    }

    fn remove_active(&mut self, p: PatientRef, slot: u32) {
        let local = p.local();
        if let Some(i) = self.active[local].iter().position(|&s| s == slot) {
            // Refill the inline place from the overflow, if any.
            let refill = match self.more.get_mut(&(local as u32)) {
                Some(more) => {
                    let x = more.pop();
                    if more.is_empty() {
                        self.more.remove(&(local as u32));
                    }
                    x
                }
                None => None,
            };
            self.active[local][i] = refill.unwrap_or(NO_SLOT);
        } else if let Some(more) = self.more.get_mut(&(local as u32))
            && let Some(i) = more.iter().position(|&s| s == slot)
        {
            more.swap_remove(i);
            if more.is_empty() {
                self.more.remove(&(local as u32));
            }
        }
    }

    /// Holds and offers due by `now`: `(key, record)`, removed from the expiry queue (not from
    /// the holds map).
    pub fn due(&mut self, now: u64) -> Vec<(HoldKey, HoldRec)> {
        let mut out = Vec::new();
        while let Some(&Reverse((at, key))) = self.expiry.peek() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if let Some(h) = self.holds.get(&key).filter(|h| h.expires == at) {
                out.push((key, *h));
            }
        }
        out
    }

    pub fn next_expiry(&self) -> u64 {
        self.expiry.peek().map_or(u64::MAX, |r| r.0.0)
    }

    fn bytes(&self) -> usize {
        let per_entry = |cap: usize, entry: usize| cap * (entry + 1);
        self.arena.capacity()
            + self.spans.capacity() * 8
            + per_entry(self.index.capacity(), 12)
            + per_entry(self.collisions.capacity(), 8)
            + self.active.capacity() * 12
            + self
                .more
                .values()
                .map(|v| 32 + v.capacity() * 4)
                .sum::<usize>()
            + per_entry(self.holds.capacity(), 8 + size_of::<HoldRec>())
            + per_entry(self.appts.capacity(), 8 + size_of::<ApptRec>())
            + self.expiry.capacity() * 16
    }
}

/// One change to the inventory. Live operations build these, apply them under their locks and
/// log them as decisions; replay turns decisions back into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Hold {
        patient: PatientRef,
        slot: u32,
        hold: u64,
        expires: u64,
    },
    /// A hold (or a re-offer) ends; its slot is free again.
    Release {
        key: HoldKey,
    },
    Book {
        patient: PatientRef,
        slot: u32,
        appt: u64,
        hold: Option<u64>,
    },
    /// The appointment's slot is free again (unavailable if an absence displaced it).
    Cancel {
        appt: u64,
    },
    /// Booked appointment to a free slot, or a pending re-offer accepted (`to` = the offer).
    Reschedule {
        appt: u64,
        to: u32,
    },
    /// The doctor's free slots overlapping the interval become unavailable, booked ones displaced.
    Absence {
        doctor: DoctorRef,
        from: LocalTime,
        until: LocalTime,
    },
    /// A displaced appointment (or one whose offer an absence withdrew) is offered `to`.
    Offer {
        appt: u64,
        to: u32,
        expires: u64,
    },
    Attendance {
        appt: u64,
        status: Attendance,
    },
    /// Undo of `Book` (back to the hold, if there was one). Only after a log failure.
    Unbook {
        appt: u64,
        hold: Option<(u64, u64)>,
    },
    /// Undo of `Cancel` of a booked appointment. Only after a log failure.
    Uncancel {
        appt: u64,
    },
}

impl Effect {
    /// The patient shard whose lock the effect needs.
    pub fn shard(&self) -> usize {
        match *self {
            Effect::Hold { patient, .. } | Effect::Book { patient, .. } => patient.shard(),
            Effect::Release { key } => key.shard(),
            Effect::Cancel { appt }
            | Effect::Reschedule { appt, .. }
            | Effect::Offer { appt, .. }
            | Effect::Attendance { appt, .. }
            | Effect::Unbook { appt, .. }
            | Effect::Uncancel { appt } => id_shard(appt),
            Effect::Absence { .. } => 0,
        }
    }
}

/// Counts of slots by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub free: u64,
    pub busy_tentative: u64,
    pub busy: u64,
    pub busy_unavailable: u64,
}

pub(crate) struct Inventory {
    pub schedule: Arc<Schedule>,
    status: Vec<AtomicU8>,
    /// Free slots per (clinic, specialty, day).
    free_by_clinic_specialty_day: Vec<AtomicU32>,
    /// Held or booked slots per (clinic, day).
    used_by_clinic_day: Vec<AtomicU32>,
    /// Slots not unavailable per (clinic, day).
    open_by_clinic_day: Vec<AtomicU32>,
    patients: Vec<Mutex<PatientShard>>,
    doctors: Vec<Mutex<()>>,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("slots", &self.status.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn used(status: u8) -> bool {
    matches!(status, HELD | BOOKED | ATTENDED)
}

fn available(status: u8) -> bool {
    matches!(status, FREE | HELD | BOOKED | ATTENDED)
}

impl Inventory {
    pub fn new(schedule: Arc<Schedule>) -> Inventory {
        let slots = schedule.slot_count() as usize;
        let days = schedule.days as usize;
        let s_count = schedule.specialties.len().max(1);
        let clinics = schedule.clinics.len();
        let free_by_clinic_specialty_day: Vec<AtomicU32> = (0..clinics * s_count * days)
            .map(|_| AtomicU32::new(0))
            .collect();
        let open_by_clinic_day: Vec<AtomicU32> =
            (0..clinics * days).map(|_| AtomicU32::new(0)).collect();
        for (d, doctor) in schedule.doctors.iter().enumerate() {
            for day in 0..schedule.days {
                let n = schedule.doctor_day(DoctorRef(d as u32), day).len() as u32;
                let csd = (doctor.clinic.index() * s_count + doctor.specialty.index()) * days
                    + day as usize;
                free_by_clinic_specialty_day[csd].fetch_add(n, Ordering::Relaxed);
                open_by_clinic_day[doctor.clinic.index() * days + day as usize]
                    .fetch_add(n, Ordering::Relaxed);
            }
        }
        Inventory {
            status: (0..slots).map(|_| AtomicU8::new(FREE)).collect(),
            free_by_clinic_specialty_day,
            used_by_clinic_day: (0..clinics * days).map(|_| AtomicU32::new(0)).collect(),
            open_by_clinic_day,
            patients: (0..SHARDS)
                .map(|_| Mutex::new(PatientShard::default()))
                .collect(),
            doctors: (0..DOCTOR_LOCKS).map(|_| Mutex::new(())).collect(),
            schedule,
        }
    }

    pub fn status(&self, slot: u32) -> u8 {
        self.status[slot as usize].load(Ordering::Acquire)
    }

    pub fn slot_count(&self) -> u32 {
        self.status.len() as u32
    }

    pub fn patient_shard(&self, shard: usize) -> MutexGuard<'_, PatientShard> {
        lock(&self.patients[shard])
    }

    pub fn doctor_lock(&self, doctor: DoctorRef) -> MutexGuard<'_, ()> {
        lock(&self.doctors[doctor.index() % DOCTOR_LOCKS])
    }

    /// Doctor locks for several slots' doctors, in lock order, each once.
    pub fn doctor_locks(&self, doctors: &[DoctorRef]) -> Vec<MutexGuard<'_, ()>> {
        let mut ids: Vec<usize> = doctors.iter().map(|d| d.index() % DOCTOR_LOCKS).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|i| lock(&self.doctors[i])).collect()
    }

    /// Every lock, in order: for operations that touch many patients and doctors at once
    /// (absences, batch bookings, snapshots). Never held across an fsync.
    pub fn lock_all(&self) -> AllLocks<'_> {
        AllLocks {
            patients: self.patients.iter().map(lock).collect(),
            _doctors: self.doctors.iter().map(lock).collect(),
        }
    }

    pub fn free_in(&self, csd: usize) -> u32 {
        self.free_by_clinic_specialty_day[csd].load(Ordering::Relaxed)
    }

    pub fn csd(&self, clinic: usize, specialty: usize, day: usize) -> usize {
        let s_count = self.schedule.specialties.len().max(1);
        (clinic * s_count + specialty) * self.schedule.days as usize + day
    }

    /// `(held or booked, not unavailable)` slots of a clinic-day.
    pub fn load(&self, clinic: usize, day: usize) -> (u32, u32) {
        let k = clinic * self.schedule.days as usize + day;
        (
            self.used_by_clinic_day[k].load(Ordering::Relaxed),
            self.open_by_clinic_day[k].load(Ordering::Relaxed),
        )
    }

    /// Changes a slot's status and the counters; the caller holds the doctor's lock.
    fn set(&self, slot: u32, info: &SlotInfo, to: u8) {
        let from = self.status[slot as usize].swap(to, Ordering::AcqRel);
        if from == to {
            return;
        }
        let days = self.schedule.days as usize;
        let cd = info.clinic.index() * days + info.day as usize;
        let csd = self.csd(
            info.clinic.index(),
            info.specialty.index(),
            info.day as usize,
        );
        if from == FREE {
            self.free_by_clinic_specialty_day[csd].fetch_sub(1, Ordering::Relaxed);
        }
        if to == FREE {
            self.free_by_clinic_specialty_day[csd].fetch_add(1, Ordering::Relaxed);
        }
        match (used(from), used(to)) {
            (false, true) => self.used_by_clinic_day[cd].fetch_add(1, Ordering::Relaxed),
            (true, false) => self.used_by_clinic_day[cd].fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
        match (available(from), available(to)) {
            (false, true) => self.open_by_clinic_day[cd].fetch_add(1, Ordering::Relaxed),
            (true, false) => self.open_by_clinic_day[cd].fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    fn expect(&self, slot: u32, want: u8, what: &str) -> Result<SlotInfo, String> {
        if slot >= self.slot_count() {
            return Err(format!("slot {slot} does not exist"));
        }
        let got = self.status(slot);
        if got != want {
            return Err(format!(
                "{what}: slot {} is {}, expected {}",
                self.schedule.slot_id(SlotRef(slot)),
                name(got),
                name(want)
            ));
        }
        Ok(self.schedule.slot(SlotRef(slot)))
    }

    /// Applies `effect` with `shard` locked (the shard [`Effect::shard`] names) and the doctor
    /// locks of the slots it touches held. Checks everything first: on `Err` nothing changed.
    pub fn apply(&self, shard: &mut PatientShard, effect: &Effect) -> Result<(), String> {
        match *effect {
            Effect::Hold {
                patient,
                slot,
                hold,
                expires,
            } => {
                if shard.holds.contains_key(&HoldKey::hold(hold)) {
                    return Err(format!("hold h{hold} exists already"));
                }
                let info = self.expect(slot, FREE, "hold")?;
                self.set(slot, &info, HELD);
                shard.holds.insert(
                    HoldKey::hold(hold),
                    HoldRec {
                        patient,
                        slot,
                        expires,
                    },
                );
                shard.push_active(patient, slot);
                shard.expiry.push(Reverse((expires, HoldKey::hold(hold))));
                shard.see_hold(hold);
            }
            Effect::Release { key } => {
                let h = *shard
                    .holds
                    .get(&key)
                    .ok_or_else(|| format!("no hold {}", key.name()))?;
                let info = self.expect(h.slot, HELD, "release")?;
                self.set(h.slot, &info, FREE);
                shard.holds.remove(&key);
                shard.remove_active(h.patient, h.slot);
                if let Some(appointment) = key.offered_to() {
                    let appt = shard
                        .appts
                        .get_mut(&appointment)
                        .ok_or_else(|| format!("no appointment for offer {}", key.name()))?;
                    appt.offered = NO_SLOT;
                }
            }
            Effect::Book {
                patient,
                slot,
                appt,
                hold,
            } => {
                if shard.appts.contains_key(&appt) {
                    return Err(format!("appointment a{appt} exists already"));
                }
                let info = match hold {
                    Some(h) => {
                        let rec = shard
                            .holds
                            .get(&HoldKey::hold(h))
                            .ok_or_else(|| format!("booking with unknown hold h{h}"))?;
                        if rec.slot != slot || rec.patient != patient {
                            return Err(format!("hold h{h} is for another slot or patient"));
                        }
                        let info = self.expect(slot, HELD, "book")?;
                        shard.holds.remove(&HoldKey::hold(h));
                        info
                    }
                    None => {
                        let info = self.expect(slot, FREE, "book")?;
                        shard.push_active(patient, slot);
                        info
                    }
                };
                self.set(slot, &info, BOOKED);
                shard.appts.insert(
                    appt,
                    ApptRec {
                        patient,
                        slot,
                        offered: NO_SLOT,
                        status: AppointmentStatus::Booked,
                    },
                );
                shard.see_appt(appt);
            }
            Effect::Cancel { appt } => {
                let a = *shard
                    .appts
                    .get(&appt)
                    .ok_or_else(|| format!("no appointment a{appt}"))?;
                match a.status {
                    AppointmentStatus::Booked => {
                        let status = self.status(a.slot);
                        let info = self.schedule.slot(SlotRef(a.slot));
                        match status {
                            BOOKED => self.set(a.slot, &info, FREE),
                            DISPLACED => self.set(a.slot, &info, UNAVAILABLE),
                            other => {
                                return Err(format!("cancel a{appt}: its slot is {}", name(other)));
                            }
                        }
                        shard.remove_active(a.patient, a.slot);
                    }
                    // A re-offer not accepted: its offered slot was released before.
                    AppointmentStatus::Pending if a.offered == NO_SLOT => {}
                    other => {
                        return Err(format!("cancel a{appt}: it is {}", other.fhir()));
                    }
                }
                shard.appts.get_mut(&appt).expect("checked").status = AppointmentStatus::Cancelled;
            }
            Effect::Reschedule { appt, to } => {
                let a = *shard
                    .appts
                    .get(&appt)
                    .ok_or_else(|| format!("no appointment a{appt}"))?;
                match a.status {
                    AppointmentStatus::Booked => {
                        let from_info = self.expect(a.slot, BOOKED, "reschedule from")?;
                        let to_info = self.expect(to, FREE, "reschedule to")?;
                        self.set(to, &to_info, BOOKED);
                        self.set(a.slot, &from_info, FREE);
                        shard.remove_active(a.patient, a.slot);
                        shard.push_active(a.patient, to);
                    }
                    AppointmentStatus::Pending if a.offered == to => {
                        let to_info = self.expect(to, HELD, "accept offer")?;
                        self.set(to, &to_info, BOOKED);
                        shard.holds.remove(&HoldKey::offer(appt));
                    }
                    other => {
                        return Err(format!(
                            "reschedule a{appt}: it is {} (offered {})",
                            other.fhir(),
                            a.offered
                        ));
                    }
                }
                let rec = shard.appts.get_mut(&appt).expect("checked");
                rec.slot = to;
                rec.offered = NO_SLOT;
                rec.status = AppointmentStatus::Booked;
            }
            Effect::Absence {
                doctor,
                from,
                until,
            } => {
                let slots = self.schedule.doctor_slots_between(doctor, from, until);
                for s in &slots {
                    let st = self.status(s.0);
                    if st == HELD {
                        return Err(format!(
                            "absence: slot {} is still held",
                            self.schedule.slot_id(*s)
                        ));
                    }
                }
                for s in slots {
                    let info = self.schedule.slot(s);
                    match self.status(s.0) {
                        FREE => self.set(s.0, &info, UNAVAILABLE),
                        BOOKED => self.set(s.0, &info, DISPLACED),
                        _ => {}
                    }
                }
            }
            Effect::Offer { appt, to, expires } => {
                let a = *shard
                    .appts
                    .get(&appt)
                    .ok_or_else(|| format!("no appointment a{appt}"))?;
                let from_status = self.status(a.slot);
                let displaced = a.status == AppointmentStatus::Booked && from_status == DISPLACED;
                let withdrawn = a.status == AppointmentStatus::Pending && a.offered == NO_SLOT;
                if !displaced && !withdrawn {
                    return Err(format!(
                        "offer for a{appt}: it is {} on a {} slot",
                        a.status.fhir(),
                        name(from_status)
                    ));
                }
                let to_info = self.expect(to, FREE, "offer")?;
                if displaced {
                    let from_info = self.schedule.slot(SlotRef(a.slot));
                    self.set(a.slot, &from_info, UNAVAILABLE);
                    shard.remove_active(a.patient, a.slot);
                }
                self.set(to, &to_info, HELD);
                shard.holds.insert(
                    HoldKey::offer(appt),
                    HoldRec {
                        patient: a.patient,
                        slot: to,
                        expires,
                    },
                );
                shard.push_active(a.patient, to);
                shard.expiry.push(Reverse((expires, HoldKey::offer(appt))));
                let rec = shard.appts.get_mut(&appt).expect("checked");
                rec.offered = to;
                rec.status = AppointmentStatus::Pending;
            }
            Effect::Attendance { appt, status } => {
                let a = shard
                    .appts
                    .get_mut(&appt)
                    .ok_or_else(|| format!("no appointment a{appt}"))?;
                if a.status != AppointmentStatus::Booked {
                    return Err(format!("attendance of a{appt}: it is {}", a.status.fhir()));
                }
                let info = self.expect(a.slot, BOOKED, "attendance")?;
                a.status = match status {
                    Attendance::Fulfilled => AppointmentStatus::Fulfilled,
                    Attendance::NoShow => AppointmentStatus::NoShow,
                };
                let (p, s) = (a.patient, a.slot);
                self.set(s, &info, ATTENDED);
                shard.remove_active(p, s);
            }
            Effect::Unbook { appt, hold } => {
                let a = *shard
                    .appts
                    .get(&appt)
                    .ok_or_else(|| format!("no appointment a{appt}"))?;
                let info = self.expect(a.slot, BOOKED, "unbook")?;
                shard.appts.remove(&appt);
                match hold {
                    Some((h, expires)) => {
                        self.set(a.slot, &info, HELD);
                        shard.holds.insert(
                            HoldKey::hold(h),
                            HoldRec {
                                patient: a.patient,
                                slot: a.slot,
                                expires,
                            },
                        );
                        shard.expiry.push(Reverse((expires, HoldKey::hold(h))));
                    }
                    None => {
                        self.set(a.slot, &info, FREE);
                        shard.remove_active(a.patient, a.slot);
                    }
                }
            }
            Effect::Uncancel { appt } => {
                let a = *shard
                    .appts
                    .get(&appt)
                    .ok_or_else(|| format!("no appointment a{appt}"))?;
                let info = self.expect(a.slot, FREE, "uncancel")?;
                self.set(a.slot, &info, BOOKED);
                shard.push_active(a.patient, a.slot);
                shard.appts.get_mut(&appt).expect("checked").status = AppointmentStatus::Booked;
            }
        }
        Ok(())
    }

    pub fn counts(&self) -> StatusCounts {
        let mut c = StatusCounts::default();
        for s in &self.status {
            match s.load(Ordering::Relaxed) {
                FREE => c.free += 1,
                HELD => c.busy_tentative += 1,
                BOOKED | ATTENDED => c.busy += 1,
                _ => c.busy_unavailable += 1,
            }
        }
        c
    }

    /// Approximate heap bytes: status bytes, counters, and the records.
    pub fn bytes(&self) -> (usize, usize, usize) {
        let status = self.status.len();
        let counters = (self.free_by_clinic_specialty_day.len()
            + self.used_by_clinic_day.len()
            + self.open_by_clinic_day.len())
            * 4;
        let records = self.patients.iter().map(|p| lock(p).bytes()).sum();
        (status, counters, records)
    }

    /// The canonical state bytes (what a snapshot stores and digests): the status bytes, then
    /// per shard the id counters, holds and appointments in number order with patient ids by name.
    /// Interning order and hash-map order do not show, so a live inventory and one rebuilt from
    /// the log give the same bytes. The caller holds every lock.
    pub fn encode(&self, locks: &AllLocks<'_>) -> (Vec<u8>, u64) {
        let mut w = Writer::with_capacity(self.status.len() + 64);
        w.u32(self.status.len() as u32);
        let raw: Vec<u8> = self
            .status
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        w.raw(&raw);
        let mut records = 0u64;
        for shard in &locks.patients {
            w.u64(shard.next_hold);
            w.u64(shard.next_appt);
            let mut holds: Vec<(&HoldKey, &HoldRec)> = shard.holds.iter().collect();
            holds.sort_unstable_by_key(|(k, _)| **k);
            w.u32(holds.len() as u32);
            for (key, h) in holds {
                w.u64(key.to_bits());
                w.bytes(shard.name(h.patient).as_bytes());
                w.u32(h.slot);
                w.u64(h.expires);
            }
            let mut appts: Vec<(&u64, &ApptRec)> = shard.appts.iter().collect();
            appts.sort_unstable_by_key(|(k, _)| **k);
            w.u32(appts.len() as u32);
            for (n, a) in appts {
                w.u64(*n);
                w.bytes(shard.name(a.patient).as_bytes());
                w.u32(a.slot);
                w.u32(a.offered);
                w.u8(a.status.code());
            }
            records += (shard.holds.len() + shard.appts.len()) as u64;
        }
        (w.into_bytes(), records)
    }

    /// Loads [`Inventory::encode`]'s bytes into a fresh inventory (no records yet).
    pub fn decode(&self, bytes: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(bytes);
        let e = |e: crate::log::DecodeError| e.to_string();
        let n = r.u32("slots").map_err(e)?;
        if n != self.slot_count() {
            return Err(format!(
                "it has {n} slots, the schedule {}",
                self.slot_count()
            ));
        }
        let mut raw = vec![0u8; n as usize];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = r.u8("status").map_err(e)?;
            if *b == DISPLACED || *b > ATTENDED {
                return Err(format!("slot {i} has status byte {b}"));
            }
        }
        // Statuses through `set`, so the counters follow; no lock is needed before serving.
        for (i, &b) in raw.iter().enumerate() {
            if b != FREE {
                let info = self.schedule.slot(SlotRef(i as u32));
                self.set(i as u32, &info, b);
            }
        }
        for (s, m) in self.patients.iter().enumerate() {
            let mut shard = lock(m);
            shard.next_hold = r.u64("next_hold").map_err(e)?;
            shard.next_appt = r.u64("next_appt").map_err(e)?;
            let holds = r.u32("holds").map_err(e)?;
            for _ in 0..holds {
                let key = HoldKey::from_bits(r.u64("hold").map_err(e)?);
                let name = r.str("patient").map_err(e)?;
                let slot = r.u32("slot").map_err(e)?;
                let expires = r.u64("expires").map_err(e)?;
                if key.shard() != s || patient_shard(name) != s || slot >= n {
                    return Err(format!("hold {} is inconsistent", key.name()));
                }
                let patient = shard.intern(s, name);
                shard.holds.insert(
                    key,
                    HoldRec {
                        patient,
                        slot,
                        expires,
                    },
                );
                shard.push_active(patient, slot);
                shard.expiry.push(Reverse((expires, key)));
            }
            let appts = r.u32("appointments").map_err(e)?;
            for _ in 0..appts {
                let appt = r.u64("appointment").map_err(e)?;
                let name = r.str("patient").map_err(e)?;
                let slot = r.u32("slot").map_err(e)?;
                let offered = r.u32("offered").map_err(e)?;
                let status = AppointmentStatus::from_code(r.u8("status").map_err(e)?)
                    .ok_or("an unknown appointment status")?;
                if id_shard(appt) != s || patient_shard(name) != s || slot >= n {
                    return Err(format!("appointment a{appt} is inconsistent"));
                }
                let patient = shard.intern(s, name);
                if status == AppointmentStatus::Booked {
                    shard.push_active(patient, slot);
                }
                shard.appts.insert(
                    appt,
                    ApptRec {
                        patient,
                        slot,
                        offered,
                        status,
                    },
                );
            }
        }
        r.finish("snapshot").map_err(e)?;
        Ok(())
    }

    /// Lowest pending expiry over all shards.
    pub fn next_expiry(&self) -> u64 {
        self.patients
            .iter()
            .map(|p| lock(p).next_expiry())
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// Every lock of an inventory (see [`Inventory::lock_all`]).
pub(crate) struct AllLocks<'a> {
    pub patients: Vec<MutexGuard<'a, PatientShard>>,
    _doctors: Vec<MutexGuard<'a, ()>>,
}

pub(crate) fn name(status: u8) -> &'static str {
    match status {
        FREE => "free",
        HELD => "held",
        BOOKED => "booked",
        UNAVAILABLE => "unavailable",
        ATTENDED => "attended",
        _ => "displaced",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The inline-plus-overflow active list behaves as a set (the model: a `Vec`).
        #[test]
        fn active_slots_behave_like_a_set(ops in prop::collection::vec((any::<bool>(), 0u32..8), 0..80)) {
            let mut shard = PatientShard::default();
            let p = shard.intern(3, "p");
            let q = shard.intern(3, "q");
            let mut model: Vec<u32> = Vec::new();
            for (add, slot) in ops {
                if add && !model.contains(&slot) {
                    shard.push_active(p, slot);
                    model.push(slot);
                } else if !add {
                    shard.remove_active(p, slot);
                    model.retain(|&s| s != slot);
                }
                let mut got: Vec<u32> = shard.active(p).collect();
                got.sort_unstable();
                let mut expect = model.clone();
                expect.sort_unstable();
                prop_assert_eq!(got, expect);
                prop_assert_eq!(shard.active(q).count(), 0);
            }
        }
    }

    #[test]
    fn interning_gives_each_id_one_patient() {
        let mut shard = PatientShard::default();
        let ids: Vec<String> = (0..20_000).map(|i| format!("patient-{i}")).collect();
        let refs: Vec<PatientRef> = ids.iter().map(|id| shard.intern(5, id)).collect();
        for (id, &p) in ids.iter().zip(&refs) {
            assert_eq!(shard.intern(5, id), p);
            assert_eq!(shard.find(5, id), Some(p));
            assert_eq!(shard.name(p), id);
            assert_eq!(p.shard(), 5);
        }
        let distinct: std::collections::HashSet<_> = refs.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(shard.find(5, "nobody"), None);
        assert_eq!(shard.find(5, ""), None);
    }
}
