//! The operations of the IHE scheduling profile that change the inventory: `$hold`, release,
//! `$book`, cancel, reschedule, accepting a re-offer, attendance. Each is one [`Change`] under
//! its locks (see `change.rs`) and answers with a [`Pending`] once its decisions are durable;
//! the blocking forms (`hold`, `book`, ...) wait for it.

use std::time::Duration;

use super::change::Change;
use super::engine::{Engine, check_patient};
use super::error::{Error, Result};
use super::ids::{AppointmentId, HoldId, HoldKey};
use super::pending::Pending;
use super::schedule::SlotRef;
use super::state::{
    AppointmentStatus, ApptRec, Effect, FREE, HELD, HoldRec, NO_SLOT, PatientRef, PatientShard,
    id_shard, patient_shard,
};
use crate::log::Timestamp;
use crate::log::decision::{
    AppointmentCancelled, Attendance, AttendanceRecorded, CancelledBy, HoldEnd, HoldReleased,
    Rescheduled, SlotBooked, SlotHeld,
};

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

/// The record of `appointment` in its patient shard (the shard `id_shard` names).
/// Logs a move (`Rescheduled`) and commits its change, still under the caller's locks.
fn commit_move(
    e: &super::engine::Inner,
    mut change: Change<'_>,
    shard: &mut PatientShard,
    actor: &str,
    patient: &str,
    moved: Moved,
) -> Result<Pending<Moved>> {
    change.log(actor, patient, || {
        Rescheduled {
            appointment: moved.appointment.to_string(),
            from_slot: e.schedule.slot_id(moved.from),
            to_slot: e.schedule.slot_id(moved.to),
        }
        .into()
    });
    change.commit(shard, moved)
}

fn appointment_record(shard: &PatientShard, appointment: AppointmentId) -> Result<ApptRec> {
    shard
        .appts
        .get(&appointment.0)
        .copied()
        .ok_or_else(|| Error::UnknownAppointment(appointment.to_string()))
}

impl Engine {
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
        self.take_free_slot(patient, slot, now, |change, shard, s, p| {
            let hold = shard.new_hold(s);
            change.apply(
                shard,
                Effect::Hold {
                    patient: p,
                    slot: slot.0,
                    hold,
                    expires,
                },
                Some(Effect::Release {
                    key: HoldKey::hold(hold),
                }),
            )?;
            e.note_expiry(expires);
            change.log(actor, patient, || {
                SlotHeld {
                    slot: e.schedule.slot_id(slot),
                    hold: HoldId(hold).to_string(),
                    expires: Timestamp::from_unix_micros(expires),
                }
                .into()
            });
            Ok(Held {
                hold: HoldId(hold),
                slot,
                expires: Timestamp::from_unix_micros(expires),
            })
        })
    }

    /// Gives a free slot to `patient`: under the patient's shard lock and the slot's doctor
    /// lock, checks the patient's other appointments and that the slot is free, then lets `take`
    /// make its change before the locks are released. A slot held by a hold that has lapsed but
    /// not been swept yet counts as free: one sweep, one retry.
    fn take_free_slot<T>(
        &self,
        patient: &str,
        slot: SlotRef,
        now: Timestamp,
        take: impl FnOnce(&mut Change<'_>, &mut PatientShard, usize, PatientRef) -> Result<T>,
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
            if status == HELD && !swept && e.expiry_due(now) {
                e.sweep(now.unix_micros());
                swept = true;
                continue;
            }
            return Err(e.taken(slot, status, Some(patient)));
        };
        let mut change = Change::new(e, now);
        let value = take(&mut change, &mut shard, s, p)?;
        let pending = change.commit(&mut shard, value);
        drop((doctor, shard));
        pending
    }

    /// Lets a hold go before it expires.
    pub fn release(&self, actor: &str, hold: HoldId) -> Result<()> {
        self.begin_release(actor, hold)?.wait()
    }

    pub fn begin_release(&self, actor: &str, hold: HoldId) -> Result<Pending<()>> {
        let e = &self.inner;
        e.check()?;
        let key = HoldKey::hold(hold.0);
        let mut shard = e.inv.patient_shard(key.shard());
        let h = *shard
            .holds
            .get(&key)
            .ok_or_else(|| Error::UnknownHold(hold.to_string()))?;
        let slot = SlotRef(h.slot);
        let doctor = e.inv.doctor_lock(e.schedule.slot(slot).doctor);
        let mut change = Change::new(e, e.clock.now());
        change.apply(
            &mut shard,
            Effect::Release { key },
            Some(Effect::Hold {
                patient: h.patient,
                slot: h.slot,
                hold: hold.0,
                expires: h.expires,
            }),
        )?;
        let patient = shard.name(h.patient).to_owned();
        change.log(actor, &patient, || {
            HoldReleased {
                slot: e.schedule.slot_id(slot),
                hold: hold.to_string(),
                reason: HoldEnd::Released,
            }
            .into()
        });
        let pending = change.commit(&mut shard, ());
        drop((doctor, shard));
        pending
    }

    /// `$book`: books a held slot (consuming the hold) or a free one.
    pub fn book(&self, actor: &str, booking: Booking<'_>) -> Result<Booked> {
        self.begin_book(actor, booking)?.wait()
    }

    pub fn begin_book(&self, actor: &str, booking: Booking<'_>) -> Result<Pending<Booked>> {
        let e = &self.inner;
        e.check()?;
        let now = e.clock.now();
        let (patient, slot) = match booking {
            Booking::Hold(hold) => return self.book_held(actor, hold, now),
            Booking::Slot { patient, slot } => (patient, slot),
        };
        e.maybe_sweep();
        check_patient(patient)?;
        self.take_free_slot(patient, slot, now, |change, shard, s, p| {
            let appt = shard.new_appt(s);
            change.apply(
                shard,
                Effect::Book {
                    patient: p,
                    slot: slot.0,
                    appt,
                    hold: None,
                },
                Some(Effect::Unbook { appt, hold: None }),
            )?;
            change.log(actor, patient, || {
                SlotBooked {
                    slot: e.schedule.slot_id(slot),
                    appointment: AppointmentId(appt).to_string(),
                    hold: None,
                }
                .into()
            });
            Ok(Booked {
                appointment: AppointmentId(appt),
                slot,
            })
        })
    }

    /// `$book` of a held slot: the hold becomes the appointment.
    fn book_held(&self, actor: &str, hold: HoldId, now: Timestamp) -> Result<Pending<Booked>> {
        let e = &self.inner;
        let key = HoldKey::hold(hold.0);
        let s = key.shard();
        let mut shard = e.inv.patient_shard(s);
        let h: HoldRec = *shard
            .holds
            .get(&key)
            .ok_or_else(|| Error::UnknownHold(hold.to_string()))?;
        let slot = SlotRef(h.slot);
        let info = e.schedule.slot(slot);
        let doctor = e.inv.doctor_lock(info.doctor);
        let patient = shard.name(h.patient).to_owned();
        if h.expires <= now.unix_micros() {
            // Expired but not yet swept: release it now (logged, not undone), then say so.
            let mut change = Change::new(e, now);
            change.apply(&mut shard, Effect::Release { key }, None)?;
            change.log(&e.options.system_actor, &patient, || {
                HoldReleased {
                    slot: e.schedule.slot_id(slot),
                    hold: hold.to_string(),
                    reason: HoldEnd::Expired,
                }
                .into()
            });
            let _released = change.commit(&mut shard, ())?;
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
        let mut change = Change::new(e, now);
        change.apply(
            &mut shard,
            Effect::Book {
                patient: h.patient,
                slot: h.slot,
                appt,
                hold: Some(hold.0),
            },
            Some(Effect::Unbook {
                appt,
                hold: Some((hold.0, h.expires)),
            }),
        )?;
        change.log(actor, &patient, || {
            SlotBooked {
                slot: e.schedule.slot_id(slot),
                appointment: AppointmentId(appt).to_string(),
                hold: Some(hold.to_string()),
            }
            .into()
        });
        let booked = Booked {
            appointment: AppointmentId(appt),
            slot,
        };
        let pending = change.commit(&mut shard, booked);
        drop((doctor, shard));
        pending
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
        let mut shard = e.inv.patient_shard(id_shard(appointment.0));
        let a = appointment_record(&shard, appointment)?;
        let patient = shard.name(a.patient).to_owned();
        let mut doctors = vec![e.schedule.slot(SlotRef(a.slot)).doctor];
        if a.offered != NO_SLOT {
            doctors.push(e.schedule.slot(SlotRef(a.offered)).doctor);
        }
        let locks = e.inv.doctor_locks(&doctors);
        let mut change = Change::new(e, e.clock.now());
        let appt = appointment.0;
        match a.status {
            AppointmentStatus::Booked => {
                change.apply(
                    &mut shard,
                    Effect::Cancel { appt },
                    Some(Effect::Uncancel { appt }),
                )?;
            }
            AppointmentStatus::Pending if a.offered != NO_SLOT => {
                // Declining a re-offer: not undone should the log fail (the engine stops).
                let key = HoldKey::offer(appt);
                change.apply(&mut shard, Effect::Release { key }, None)?;
                change.apply(&mut shard, Effect::Cancel { appt }, None)?;
                change.log(actor, &patient, || {
                    HoldReleased {
                        slot: e.schedule.slot_id(SlotRef(a.offered)),
                        hold: appointment.to_string(),
                        reason: HoldEnd::Released,
                    }
                    .into()
                });
            }
            other => {
                return Err(Error::WrongStatus {
                    id: appointment.to_string(),
                    status: other.fhir(),
                    expected: "booked or pending",
                });
            }
        }
        change.log(actor, &patient, || {
            AppointmentCancelled {
                appointment: appointment.to_string(),
                slot: e.schedule.slot_id(SlotRef(a.slot)),
                by,
            }
            .into()
        });
        let pending = change.commit(&mut shard, ());
        drop((locks, shard));
        pending
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
                    .then(|| shard.holds.get(&HoldKey::hold(h.0)).copied())
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
        let mut change = Change::new(e, now);
        if let Some((h, rec)) = held {
            change.apply(
                &mut shard,
                Effect::Release {
                    key: HoldKey::hold(h.0),
                },
                Some(Effect::Hold {
                    patient: a.patient,
                    slot: to.0,
                    hold: h.0,
                    expires: rec.expires,
                }),
            )?;
            change.log(actor, &patient, || {
                HoldReleased {
                    slot: e.schedule.slot_id(to),
                    hold: h.to_string(),
                    reason: HoldEnd::Released,
                }
                .into()
            });
        }
        let appt = appointment.0;
        change.apply(
            &mut shard,
            Effect::Reschedule { appt, to: to.0 },
            Some(Effect::Reschedule { appt, to: a.slot }),
        )?;
        let moved = Moved {
            appointment,
            from: SlotRef(a.slot),
            to,
        };
        let pending = commit_move(e, change, &mut shard, actor, &patient, moved);
        drop((locks, shard));
        pending
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
        let mut shard = e.inv.patient_shard(id_shard(appointment.0));
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
        let mut change = Change::new(e, e.clock.now());
        change.apply(
            &mut shard,
            Effect::Reschedule {
                appt: appointment.0,
                to: to.0,
            },
            None,
        )?;
        let patient = shard.name(a.patient).to_owned();
        let moved = Moved {
            appointment,
            from: SlotRef(a.slot),
            to,
        };
        let pending = commit_move(e, change, &mut shard, actor, &patient, moved);
        drop((doctor, shard));
        pending
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
        let mut shard = e.inv.patient_shard(id_shard(appointment.0));
        let a = appointment_record(&shard, appointment)?;
        if a.status != AppointmentStatus::Booked {
            return Err(Error::WrongStatus {
                id: appointment.to_string(),
                status: a.status.fhir(),
                expected: "booked",
            });
        }
        let mut change = Change::new(e, e.clock.now());
        change.apply(
            &mut shard,
            Effect::Attendance {
                appt: appointment.0,
                status,
            },
            None,
        )?;
        let patient = shard.name(a.patient).to_owned();
        change.log(actor, &patient, || {
            AttendanceRecorded {
                appointment: appointment.to_string(),
                status,
            }
            .into()
        });
        change.commit(&mut shard, ())
    }
}
