//! `$find`: ranked proposals across clinics, each with its score broken down.
//!
//! A proposal is the earliest free slot of one clinic on one day. Its score (lower is better) is
//! `travel_per_km × km + wait_per_day × days + load × utilisation − preferred`, where km is from
//! the patient's home to the clinic, days from today to the slot's day, and utilisation the
//! clinic's held-or-booked share of its available slots that day (all specialties). The score is
//! computed from counters for every (candidate clinic, day) first; slots are looked up only for
//! the best ones, so a query reads a few hundred bytes of slot state.

use super::schedule::{ClinicRef, DoctorRef, SlotInfo, SlotRef, SpecialtyRef, km};
use super::state::{FREE, Inventory};
use super::time::{LocalTime, MINUTES_PER_DAY};

/// How proposals are ranked (points per unit; lower totals first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub travel_per_km: f64,
    pub wait_per_day: f64,
    /// Points at 100% utilisation of the clinic that day (linear in utilisation).
    pub load: f64,
    /// Points off for one of the patient's preferred clinics or his attached clinic.
    pub preferred: f64,
}

impl Default for Weights {
    /// Tuned on the simulated month (`simulate`): a day of waiting is worth 3 km, and a clinic
    /// full that day 20 km more than an empty one.
    fn default() -> Self {
        Weights {
            travel_per_km: 1.0,
            wait_per_day: 3.0,
            load: 20.0,
            preferred: 2.0,
        }
    }
}

impl Weights {
    /// The greedy baseline: the nearest clinic with a free slot, its earliest slot.
    pub fn nearest_earliest() -> Weights {
        Weights {
            travel_per_km: 1000.0,
            wait_per_day: 1.0,
            load: 0.0,
            preferred: 0.0,
        }
    }
}

/// A resolved `$find` request (see `Engine::resolve_find` for one made of ids and text).
#[derive(Debug, Clone, PartialEq)]
pub struct FindQuery {
    pub specialty: SpecialtyRef,
    /// The patient's home, in the schedule's projected kilometres.
    pub home: (f32, f32),
    /// The clinic the patient is attached to: always a candidate, and preferred.
    pub attached: Option<ClinicRef>,
    /// Always candidates, and preferred.
    pub preferred: Vec<ClinicRef>,
    /// Earliest start (default and at the earliest: the minute after now).
    pub from: Option<LocalTime>,
    /// Latest start, exclusive (default: the horizon's end).
    pub until: Option<LocalTime>,
    pub count: usize,
    /// A patient whose held and booked slots the proposals must not overlap.
    pub patient: Option<String>,
    /// A doctor whose slots are not proposed (the absent one, when re-offering).
    pub exclude_doctor: Option<DoctorRef>,
    /// Clinics and doctors the proposals must come from (none: the nearest clinics).
    pub only: Only,
    /// Ranking weights (default: the engine's).
    pub weights: Option<Weights>,
}

/// A `$find` restricted to some clinics or doctors: only their slots are proposed, ranked as
/// usual. Both empty: no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Only {
    pub clinics: Vec<ClinicRef>,
    pub doctors: Vec<DoctorRef>,
}

impl Only {
    fn is_empty(&self) -> bool {
        self.clinics.is_empty() && self.doctors.is_empty()
    }

    /// Whether `doctor` of `clinic` may be proposed.
    fn admits(&self, clinic: ClinicRef, doctor: DoctorRef) -> bool {
        self.is_empty() || self.clinics.contains(&clinic) || self.doctors.contains(&doctor)
    }
}

impl FindQuery {
    /// Whether `doctor` may be proposed at `clinic`.
    fn admits(&self, clinic: ClinicRef, doctor: DoctorRef) -> bool {
        self.exclude_doctor != Some(doctor) && self.only.admits(clinic, doctor)
    }

    /// The patient's attached clinic or one of his preferred ones.
    fn prefers(&self, clinic: ClinicRef) -> bool {
        self.attached == Some(clinic) || self.preferred.contains(&clinic)
    }
}

/// One ranked proposal (FHIR `Appointment.status` = proposed).
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub slot: SlotRef,
    pub clinic: ClinicRef,
    pub doctor: DoctorRef,
    pub start: LocalTime,
    pub score: Score,
}

/// A proposal's score and its parts: `total = travel + wait + load - preference`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub total: f64,
    pub travel_km: f64,
    pub travel: f64,
    pub wait_days: u32,
    pub wait: f64,
    /// The clinic's utilisation that day, 0 to 1, before this booking.
    pub utilisation: f64,
    pub load: f64,
    pub preference: f64,
}

/// Everything a search needs besides the inventory.
pub(crate) struct Search<'a> {
    pub inv: &'a Inventory,
    pub now: LocalTime,
    pub nearest: usize,
    pub weights: Weights,
    /// Slots the proposals must not overlap.
    pub busy: &'a [SlotInfo],
    /// Proposals per clinic-day: 1 for `$find`; more when re-offering to many patients at once,
    /// who would otherwise all be offered the same earliest slots.
    pub per_day: usize,
}

/// A clinic-day to look for slots in; kept small, as a query ranks a few hundred of them.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f64,
    utilisation: f64,
    clinic: u32,
    /// Index of the clinic in the query's candidate clinics (its distance is there).
    near: u16,
    day: u16,
}

impl Search<'_> {
    pub fn run(&self, q: &FindQuery) -> Vec<Proposal> {
        let sched = &self.inv.schedule;
        let horizon = sched.horizon();
        // Slots that have not started: from the minute after now.
        let start = q
            .from
            .unwrap_or(self.now)
            .max(self.now.add_minutes(1))
            .max(horizon.start);
        let end = q.until.unwrap_or(horizon.end).min(horizon.end);
        if start >= end || q.count == 0 || q.specialty.index() >= sched.specialties.len() {
            return Vec::new();
        }
        let today = sched.day_of(self.now);
        let first = sched.day_of(start) as u32;
        let last = sched.day_of(end.add_minutes(-1)) as u32;
        let w = q.weights.unwrap_or(self.weights);

        let mut near = if q.only.is_empty() {
            sched.nearest_clinics(q.specialty, q.home, self.nearest)
        } else {
            Vec::new()
        };
        let doctors_clinics = q
            .only
            .doctors
            .iter()
            .map(|d| sched.doctors[d.index()].clinic);
        let extras: Box<dyn Iterator<Item = ClinicRef>> = if q.only.is_empty() {
            Box::new(q.attached.iter().chain(&q.preferred).copied())
        } else {
            Box::new(q.only.clinics.iter().copied().chain(doctors_clinics))
        };
        for extra in extras {
            if !near.iter().any(|&(c, _)| c == extra)
                && !sched.clinic_doctors(extra, q.specialty).is_empty()
            {
                near.push((extra, km(q.home, sched.clinics[extra.index()].xy)));
            }
        }

        // Beyond u16::MAX candidate clinics (a city of that many, with `nearest` 0) the rest are
        // not candidates: no query asks for that breadth.
        near.truncate(usize::from(u16::MAX));
        let mut candidates = Vec::with_capacity(near.len() * (last - first + 1) as usize);
        for (index, &(ClinicRef(c), dist)) in near.iter().enumerate() {
            let base = w.travel_per_km * f64::from(dist)
                - if q.prefers(ClinicRef(c)) {
                    w.preferred
                } else {
                    0.0
                };
            for day in first..=last {
                let csd = self.inv.csd(c as usize, q.specialty.index(), day as usize);
                if self.inv.free_in(csd) == 0 {
                    continue;
                }
                let (used, avail) = self.inv.load(c as usize, day as usize);
                let utilisation = f64::from(used) / f64::from(avail.max(1));
                let wait = (i64::from(day) - today).max(0) as f64;
                candidates.push(Candidate {
                    score: base + w.wait_per_day * wait + w.load * utilisation,
                    utilisation,
                    clinic: c,
                    near: index as u16,
                    // Days are below MAX_HORIZON_DAYS.
                    day: day as u16,
                });
            }
        }
        let order = |a: &Candidate, b: &Candidate| {
            a.score
                .total_cmp(&b.score)
                .then(a.clinic.cmp(&b.clinic))
                .then(a.day.cmp(&b.day))
        };
        // Only the best few are usually looked at: order those first, the rest only if some
        // of them have no usable slot (taken meanwhile, outside the window, overlapping).
        let head = (q.count + 4).min(candidates.len());
        if head < candidates.len() && head > 0 {
            candidates.select_nth_unstable_by(head - 1, order);
        }
        candidates[..head].sort_unstable_by(order);
        let mut sorted_rest = false;

        let mut out = Vec::with_capacity(q.count);
        let mut found = Vec::with_capacity(self.per_day);
        let mut i = 0;
        while i < candidates.len() {
            if i == head && !sorted_rest {
                candidates[head..].sort_unstable_by(order);
                sorted_rest = true;
            }
            let cand = candidates[i];
            i += 1;
            found.clear();
            self.earliest(q, &cand, start, end, &mut found);
            for &(slot, doctor, begins) in &found {
                if out.len() == q.count {
                    break;
                }
                let km = near[usize::from(cand.near)].1;
                out.push(self.proposal(q, &cand, km, (slot, doctor, begins), today, &w));
            }
            if out.len() == q.count {
                break;
            }
        }
        out
    }

    fn proposal(
        &self,
        q: &FindQuery,
        cand: &Candidate,
        km: f32,
        (slot, doctor, begins): (SlotRef, DoctorRef, LocalTime),
        today: i64,
        w: &Weights,
    ) -> Proposal {
        let wait_days = (i64::from(cand.day) - today).max(0) as u32;
        let travel = w.travel_per_km * f64::from(km);
        let wait = w.wait_per_day * f64::from(wait_days);
        let load = w.load * cand.utilisation;
        let preference = if q.prefers(ClinicRef(cand.clinic)) {
            w.preferred
        } else {
            0.0
        };
        Proposal {
            slot,
            clinic: ClinicRef(cand.clinic),
            doctor,
            start: begins,
            score: Score {
                total: travel + wait + load - preference,
                travel_km: f64::from(km),
                travel,
                wait_days,
                wait,
                utilisation: cand.utilisation,
                load,
                preference,
            },
        }
    }

    /// The earliest `per_day` free slots of the candidate's clinic-day within `[start, end)`,
    /// into `found`.
    fn earliest(
        &self,
        q: &FindQuery,
        cand: &Candidate,
        start: LocalTime,
        end: LocalTime,
        found: &mut Vec<(SlotRef, DoctorRef, LocalTime)>,
    ) {
        if self.per_day > 1 {
            found.extend(self.several(q, cand, start, end));
        } else {
            found.extend(self.first(q, cand, start, end));
        }
    }

    /// The free slots of a clinic-day that may be proposed, earliest first, at most `per_day`.
    fn several(
        &self,
        q: &FindQuery,
        cand: &Candidate,
        start: LocalTime,
        end: LocalTime,
    ) -> Vec<(SlotRef, DoctorRef, LocalTime)> {
        let sched = &self.inv.schedule;
        let midnight = sched.date(u32::from(cand.day)).start();
        let mut found = Vec::new();
        for &doctor in sched.clinic_doctors(ClinicRef(cand.clinic), q.specialty) {
            if !q.admits(ClinicRef(cand.clinic), doctor) {
                continue;
            }
            let minutes = i64::from(sched.doctors[doctor.index()].minutes);
            for (k, slot) in sched.doctor_day(doctor, u32::from(cand.day)).enumerate() {
                let begins = midnight.add_minutes(i64::from(sched.start_minute(
                    doctor,
                    u32::from(cand.day),
                    k as u32,
                )));
                if begins >= end {
                    break;
                }
                let clash = self
                    .busy
                    .iter()
                    .any(|b| begins < b.end() && b.start < begins.add_minutes(minutes));
                if begins >= start && self.inv.status(slot) == FREE && !clash {
                    found.push((begins, SlotRef(slot), doctor));
                }
            }
        }
        found.sort_unstable();
        found.truncate(self.per_day);
        found.into_iter().map(|(t, s, d)| (s, d, t)).collect()
    }

    /// The earliest free slot of the candidate's clinic-day within `[start, end)`.
    fn first(
        &self,
        q: &FindQuery,
        cand: &Candidate,
        start: LocalTime,
        end: LocalTime,
    ) -> Option<(SlotRef, DoctorRef, LocalTime)> {
        let sched = &self.inv.schedule;
        let midnight = sched.date(u32::from(cand.day)).start();
        let from_minute = (start.0 - midnight.0).max(0);
        let until_minute = (end.0 - midnight.0).min(MINUTES_PER_DAY);
        let mut best: Option<(i64, SlotRef, DoctorRef)> = None;
        let day = u32::from(cand.day);
        let weekday = sched.date(day).weekday();
        for doctor_day in sched.clinic_day(ClinicRef(cand.clinic), q.specialty, day) {
            let doctor = doctor_day.doctor;
            if !q.admits(ClinicRef(cand.clinic), doctor) {
                continue;
            }
            let starts = sched.day_starts(doctor_day, weekday);
            // Starts are sorted: skip those before the window (today's past slots) at once.
            let skip = starts.partition_point(|&m| i64::from(m) < from_minute);
            for (k, &minute) in starts.iter().enumerate().skip(skip) {
                let minute = i64::from(minute);
                if minute >= until_minute || best.is_some_and(|b| minute >= b.0) {
                    break;
                }
                let slot = doctor_day.first + k as u32;
                if self.inv.status(slot) != FREE {
                    continue;
                }
                let begins = midnight.add_minutes(minute);
                if !self.busy.is_empty() {
                    let minutes = i64::from(sched.doctors[doctor.index()].minutes);
                    let clash = self
                        .busy
                        .iter()
                        .any(|b| begins < b.end() && b.start < begins.add_minutes(minutes));
                    if clash {
                        continue;
                    }
                }
                best = Some((minute, SlotRef(slot), doctor));
                break;
            }
        }
        best.map(|(m, s, d)| (s, d, midnight.add_minutes(m)))
    }
}
