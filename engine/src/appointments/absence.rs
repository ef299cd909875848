//! A doctor's absence: his slots in the interval become unavailable, holds on them end, and
//! every patient booked on them is re-offered a slot elsewhere.
//!
//! The re-offers are decided together: each displaced patient gets `$find`'s best proposals
//! (same specialty, ranked from the clinic he had chosen, not overlapping his other
//! appointments), and a min-cost flow assigns patients to distinct slots minimising the total
//! score, so two displaced patients never compete for one slot greedily. A patient with no slot
//! is cancelled (by the system). Everything is one batch of decisions: `HoldReleased` for each
//! hold, `AbsenceMarked`, then `ReOffered` or `AppointmentCancelled` per displaced appointment.
//! A re-offer holds the slot (`busy-tentative`) until the patient accepts it
//! ([`Engine::accept_offer`]), declines it ([`Engine::cancel`]) or it lapses (then the
//! appointment is cancelled).

use allot_solvers::mcf::{self, Network};

use super::engine::Engine;
use super::error::{Error, Result};
use super::find::{FindQuery, Proposal, Search};
use super::ids::{AppointmentId, HoldKey};
use super::pending::Pending;
use super::schedule::{DoctorRef, SlotInfo, SlotRef};
use super::state::{AppointmentStatus, Effect};
use super::time::LocalTime;
use crate::log::Timestamp;
use crate::log::decision::{
    AbsenceMarked, AppointmentCancelled, CancelledBy, HoldEnd, HoldReleased, ReOffered,
};

/// Proposals considered per displaced patient, beyond one per other displaced patient.
const CANDIDATES: usize = 8;
/// At most this many slots of one clinic-day are proposed to the displaced patients.
const MAX_PER_DAY: usize = 64;
/// Cost of leaving a displaced patient without an offer, in milli-points (far above any score).
const NO_OFFER: i64 = 1_000_000_000;

/// What marking an absence did.
#[derive(Debug, Clone, PartialEq)]
pub struct AbsenceOutcome {
    pub doctor: DoctorRef,
    /// Slots of the doctor in the interval (now unavailable).
    pub slots: usize,
    /// Holds that ended (an offer withdrawn is listed under its appointment id).
    pub released: Vec<String>,
    /// Appointments re-offered, each with the proposal it was offered (its score broken down).
    pub reoffered: Vec<ReOffer>,
    /// Appointments cancelled for want of a slot.
    pub cancelled: Vec<AppointmentId>,
}

/// A displaced appointment and the slot offered in its place.
#[derive(Debug, Clone, PartialEq)]
pub struct ReOffer {
    pub appointment: AppointmentId,
    /// The slot it had with the absent doctor.
    pub from: SlotRef,
    /// The offered slot, as `$find` proposed it.
    pub offer: Proposal,
}

impl Engine {
    /// Marks `doctor` absent over `[from, until)` (local times) and re-offers the displaced
    /// patients (see the module docs). Pauses every operation while it decides (it holds every
    /// lock, never across an fsync).
    pub fn mark_absence(
        &self,
        actor: &str,
        doctor: DoctorRef,
        from: LocalTime,
        until: LocalTime,
    ) -> Result<AbsenceOutcome> {
        self.begin_absence(actor, doctor, from, until)?.wait()
    }

    pub fn begin_absence(
        &self,
        actor: &str,
        doctor: DoctorRef,
        from: LocalTime,
        until: LocalTime,
    ) -> Result<Pending<AbsenceOutcome>> {
        let e = &self.inner;
        e.check()?;
        let s = &e.schedule;
        if doctor.index() >= s.doctors.len() {
            return Err(Error::bad("doctor", format!("no doctor #{}", doctor.0)));
        }
        if until <= from {
            return Err(Error::bad("until", "the absence ends before it starts"));
        }
        let system = e.options.system_actor.as_str();
        let now = e.clock.now();
        let now_local = e.now_local();
        let expires = now
            .unix_micros()
            .saturating_add(e.options.offer_ttl.as_micros() as u64);
        let slots = s.doctor_slots_between(doctor, from, until);
        let in_range = |slot: u32| slots.binary_search(&SlotRef(slot)).is_ok();

        let mut locks = e.inv.lock_all();
        let mut batch = e.batch(now);
        let mut released = Vec::new();
        let mut displaced: Vec<u64> = Vec::new();
        // 1. Holds and offers on the doctor's slots end.
        for shard in 0..locks.patients.len() {
            let g = &mut locks.patients[shard];
            let mut keys: Vec<HoldKey> = g
                .holds
                .iter()
                .filter(|(_, h)| in_range(h.slot))
                .map(|(k, _)| *k)
                .collect();
            keys.sort_unstable();
            for key in keys {
                let h = g.holds[&key];
                e.inv
                    .apply(g, &Effect::Release { key })
                    .map_err(Error::Internal)?;
                let name = g.name(h.patient).to_owned();
                batch.push(system, &name, || {
                    HoldReleased {
                        slot: s.slot_id(SlotRef(h.slot)),
                        hold: key.name(),
                        reason: HoldEnd::Released,
                    }
                    .into()
                });
                released.push(key.name());
                if let Some(appointment) = key.offered_to() {
                    displaced.push(appointment);
                }
            }
            let mut booked: Vec<u64> = g
                .appts
                .iter()
                .filter(|(_, a)| a.status == AppointmentStatus::Booked && in_range(a.slot))
                .map(|(n, _)| *n)
                .collect();
            booked.sort_unstable();
            displaced.extend(booked);
        }
        // 2. The absence itself.
        e.inv
            .apply(
                &mut locks.patients[0],
                &Effect::Absence {
                    doctor,
                    from,
                    until,
                },
            )
            .map_err(Error::Internal)?;
        batch.push(actor, &s.doctors[doctor.index()].id, || {
            AbsenceMarked {
                from: from.to_timestamp(&s.zone),
                until: until.to_timestamp(&s.zone),
                freed_slots: displaced.len() as u32,
            }
            .into()
        });

        // 3. Candidates per displaced appointment, then one assignment for all.
        let mut candidates: Vec<Vec<Proposal>> = Vec::with_capacity(displaced.len());
        for &appt in &displaced {
            let g = &locks.patients[super::state::id_shard(appt)];
            let a = g.appts[&appt];
            let original = s.slot(SlotRef(a.slot));
            let busy: Vec<SlotInfo> = g
                .active(a.patient)
                .filter(|&x| x != a.slot)
                .map(|x| s.slot(SlotRef(x)))
                .collect();
            let proposals = Search {
                inv: &e.inv,
                now: now_local,
                nearest: e.options.nearest,
                weights: e.options.weights,
                busy: &busy,
                // Enough slots per clinic-day that patients displaced together need not share.
                per_day: displaced.len().clamp(1, MAX_PER_DAY),
            }
            .run(&FindQuery {
                specialty: original.specialty,
                home: s.clinics[original.clinic.index()].xy,
                attached: Some(original.clinic),
                preferred: Vec::new(),
                from: None,
                until: None,
                count: CANDIDATES + displaced.len().min(MAX_PER_DAY),
                patient: None,
                exclude_doctor: Some(doctor),
                only: Default::default(),
                weights: None,
            });
            candidates.push(proposals);
        }
        let chosen = assign(&candidates)?;

        let mut reoffered = Vec::new();
        let mut cancelled = Vec::new();
        for (i, &appt) in displaced.iter().enumerate() {
            let shard = super::state::id_shard(appt);
            let g = &mut locks.patients[shard];
            let a = g.appts[&appt];
            let name = g.name(a.patient).to_owned();
            let offer = chosen[i].map(|k| &candidates[i][k]).filter(|p| {
                // Two displaced appointments of one patient must not be offered overlapping slots.
                let info = s.slot(p.slot);
                !g.active(a.patient)
                    .any(|x| x != a.slot && s.slot(SlotRef(x)).overlaps(&info))
            });
            match offer {
                Some(proposal) => {
                    let to = proposal.slot;
                    e.inv
                        .apply(
                            g,
                            &Effect::Offer {
                                appt,
                                to: to.0,
                                expires,
                            },
                        )
                        .map_err(Error::Internal)?;
                    batch.push(system, &name, || {
                        ReOffered {
                            appointment: AppointmentId(appt).to_string(),
                            from_slot: s.slot_id(SlotRef(a.slot)),
                            offered_slot: s.slot_id(to),
                            expires: Timestamp::from_unix_micros(expires),
                        }
                        .into()
                    });
                    reoffered.push(ReOffer {
                        appointment: AppointmentId(appt),
                        from: SlotRef(a.slot),
                        offer: proposal.clone(),
                    });
                }
                None => {
                    e.inv
                        .apply(g, &Effect::Cancel { appt })
                        .map_err(Error::Internal)?;
                    batch.push(system, &name, || {
                        AppointmentCancelled {
                            appointment: AppointmentId(appt).to_string(),
                            slot: s.slot_id(SlotRef(a.slot)),
                            by: CancelledBy::System,
                        }
                        .into()
                    });
                    cancelled.push(AppointmentId(appt));
                }
            }
        }
        let ack = e.submit_all(batch)?;
        drop(locks);
        e.reset_expiry();
        Ok(Pending::new(
            &self.inner,
            ack,
            AbsenceOutcome {
                doctor,
                slots: slots.len(),
                released,
                reoffered,
                cancelled,
            },
            Vec::new(),
        ))
    }
}

/// Assigns each patient at most one of its candidate slots (the index of the proposal chosen),
/// each slot to at most one patient, minimising the total score (milli-points), leaving patients
/// out only when they must be.
fn assign(candidates: &[Vec<Proposal>]) -> Result<Vec<Option<usize>>> {
    let n = candidates.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut slots: Vec<SlotRef> = candidates.iter().flatten().map(|c| c.slot).collect();
    slots.sort_unstable();
    slots.dedup();
    let mut net = Network::with_capacity(n + slots.len() + 1, n * CANDIDATES + slots.len() + n);
    let first_patient = net.add_nodes(n)?;
    let first_slot = net.add_nodes(slots.len())?;
    let sink = net.add_node();
    let node = |base: mcf::NodeId, i: usize| mcf::NodeId(base.0 + i as u32);
    let mut arcs = Vec::new();
    for (i, list) in candidates.iter().enumerate() {
        net.set_supply(node(first_patient, i), 1)?;
        for (k, proposal) in list.iter().enumerate() {
            let j = slots.binary_search(&proposal.slot).unwrap_or(0);
            let cost = (proposal.score.total * 1000.0).round() as i64;
            arcs.push((
                net.add_arc(node(first_patient, i), node(first_slot, j), 1, cost),
                i,
                k,
            ));
        }
        net.add_arc(node(first_patient, i), sink, 1, NO_OFFER);
    }
    for j in 0..slots.len() {
        net.add_arc(node(first_slot, j), sink, 1, 0);
    }
    net.set_supply(sink, -(n as i64))?;
    let solution = mcf::solve(&net)?;
    let mut out = vec![None; n];
    for (arc, i, k) in arcs {
        if solution.flow[arc.index()] > 0 {
            out[i] = Some(k);
        }
    }
    Ok(out)
}

impl Engine {
    /// Marks an absence given by ids and local times as text (for the CLI and the service).
    pub fn mark_absence_by_id(
        &self,
        actor: &str,
        doctor: &str,
        from: LocalTime,
        until: LocalTime,
    ) -> Result<AbsenceOutcome> {
        let d = self.inner.schedule.doctor(doctor).ok_or_else(|| {
            Error::bad(
                "doctor",
                format!("no doctor '{}'", crate::input::clip(doctor)),
            )
        })?;
        self.mark_absence(actor, d, from, until)
    }
}
