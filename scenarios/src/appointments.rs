//! Appointments as a discrete-event simulation through the real engine (non-durable: decisions go
//! to a [`DiscardSink`]). Each day of the period, a Poisson number of requests arrives between
//! 07:00 and 19:00 (district by population, home near the district's centre, attached to the
//! nearest open clinic of the district, specialty by the baseline's mix of doctors); each patient
//! asks `$find` for the best slot within the window, `$hold`s it and `$book`s it. A booked patient
//! cancels with probability `cancel` (at a uniform time before the visit, freeing the slot for
//! later requests), or else does not come with probability `no_show` (recorded at the visit's
//! start). A flu wave marks a share of the doctors absent at its start (their booked patients are
//! re-offered elsewhere by the engine and accept) and adds requests while it lasts.
//!
//! The request stream of a run depends only on the run's seed and the baseline's demand, so a
//! variant sees the same patients as the baseline (common random numbers: differences between
//! variants are the variants', not the dice's).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use allot_engine::appointments::schedule::km;
use allot_engine::appointments::{
    AppointmentId, Booking, ClinicRef, DiscardSink, DoctorRef, Engine, EngineOptions, FindQuery,
    LocalTime, Location, ManualClock, Schedule,
};
use allot_engine::log::Digest;
use allot_engine::log::decision::{Attendance, CancelledBy};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

use crate::city::ClinicNetwork;
use crate::error::Error;
use crate::scenario::{AppointmentCase, AppointmentSettings, choose_share};

/// Demand shared by every variant: where patients live and what they need.
#[derive(Debug, Clone)]
pub(crate) struct Demand {
    /// Cumulative population shares of the districts.
    district_cum: Vec<f64>,
    centres: Vec<Location>,
    /// Standard deviation of a home's offset from its district's centre, in km.
    spread_km: Vec<f64>,
    specialties: Vec<String>,
    specialty_cum: Vec<f64>,
}

fn pick(cum: &[f64], u: f64) -> usize {
    let x = u * cum.last().copied().unwrap_or(0.0);
    cum.partition_point(|&c| c <= x)
        .min(cum.len().saturating_sub(1))
}

fn offset(at: Location, dx_km: f64, dy_km: f64) -> Location {
    Location {
        lat: at.lat + dy_km / 110.574,
        lon: at.lon + dx_km / (111.320 * at.lat.to_radians().cos()),
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

impl Demand {
    /// The demand of the baseline network.
    pub(crate) fn of(net: &ClinicNetwork) -> Demand {
        let mut acc = 0.0;
        let district_cum = net
            .districts
            .iter()
            .map(|d| {
                acc += d.population;
                acc
            })
            .collect();
        let spread_km = (0..net.districts.len())
            .map(|d| {
                let centre = net.districts[d].centre;
                let (mut sum, mut n) = (0.0, 0usize);
                for c in net.clinics.iter().filter(|c| c.district == d) {
                    let dy = (c.location.lat - centre.lat) * 110.574;
                    let dx =
                        (c.location.lon - centre.lon) * 111.320 * centre.lat.to_radians().cos();
                    sum += dx * dx + dy * dy;
                    n += 1;
                }
                (sum / n.max(1) as f64).sqrt().max(0.5)
            })
            .collect();
        let mut specialties: Vec<String> = Vec::new();
        let mut counts: Vec<f64> = Vec::new();
        for d in &net.doctors {
            match specialties.iter().position(|s| s == &d.specialty) {
                Some(i) => counts[i] += 1.0,
                None => {
                    specialties.push(d.specialty.clone());
                    counts.push(1.0);
                }
            }
        }
        let mut acc = 0.0;
        let specialty_cum = counts
            .iter()
            .map(|c| {
                acc += c;
                acc
            })
            .collect();
        Demand {
            district_cum,
            centres: net.districts.iter().map(|d| d.centre).collect(),
            spread_km,
            specialties,
            specialty_cum,
        }
    }
}

/// What one variant's runs share: its schedule and where its clinics are.
#[derive(Debug)]
pub(crate) struct Prepared {
    schedule: Arc<Schedule>,
    /// Per district of the network: its open clinics in the schedule.
    district_clinics: Vec<Vec<ClinicRef>>,
    /// Per clinic of the schedule: its district in the network.
    clinic_district: Vec<usize>,
    districts: usize,
}

pub(crate) fn prepare(
    case: &AppointmentCase,
    settings: &AppointmentSettings,
    variant: &str,
) -> Result<Prepared, Error> {
    let net = &case.network;
    let input = net.schedule_input(settings.first_day, settings.days + settings.window_days);
    let schedule = input.build().map_err(|e| Error::Schedule {
        variant: variant.to_owned(),
        problem: e.to_string(),
    })?;
    let mut district_clinics = vec![Vec::new(); net.districts.len()];
    let mut clinic_district = vec![0; schedule.clinics.len()];
    for c in &net.clinics {
        if let Some(r) = schedule.clinic(&c.id) {
            district_clinics[c.district].push(r);
            clinic_district[r.index()] = c.district;
        }
    }
    Ok(Prepared {
        schedule: Arc::new(schedule),
        district_clinics,
        clinic_district,
        districts: net.districts.len(),
    })
}

/// What one run came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunOutcome {
    pub requests: u64,
    pub booked: u64,
    pub unserved: u64,
    pub cancelled: u64,
    pub no_shows: u64,
    pub reoffered: u64,
    pub wait_p50: f64,
    pub wait_p95: f64,
    pub wait_mean: f64,
    pub travel_mean: f64,
    pub util_max: f64,
    pub util_mean: f64,
    pub util_spread: f64,
    /// Per district of the network (0 where it has no slots).
    pub district_util: Vec<f64>,
    /// Share of booked requests that waited `d` days, at index `d`.
    pub wait_shares: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Cancel(u64),
    Attend(u64, bool),
}

const ACTOR: &str = "simulation";

/// Runs the period once.
pub(crate) fn simulate(
    prepared: &Prepared,
    case: &AppointmentCase,
    demand: &Demand,
    settings: &AppointmentSettings,
    seed: u64,
    variant: &str,
    cancel: &AtomicBool,
) -> Result<RunOutcome, Error> {
    let s = &prepared.schedule;
    let engine_err = |source| Error::Appointments {
        variant: variant.to_owned(),
        source,
    };
    let opening = s.first_day.start().add_minutes(7 * 60);
    let clock = Arc::new(ManualClock::new(opening.to_timestamp(&s.zone)));
    let engine = Engine::new(
        s.clone(),
        Digest::default(),
        Arc::new(DiscardSink),
        clock.clone(),
        EngineOptions {
            nearest: settings.nearest,
            ..EngineOptions::default()
        },
    );
    let specialty_refs: Vec<_> = demand
        .specialties
        .iter()
        .map(|name| s.specialty(name))
        .collect();
    // Independent streams: arrivals and patients; fates; absences.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fate = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F00D_0000_0001);
    let mut flu_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F00D_0000_0002);
    let mut events: BinaryHeap<Reverse<(i64, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut waits: Vec<u32> = Vec::new();
    let (mut travel, mut unserved, mut cancelled, mut no_shows, mut reoffered) =
        (0.0, 0u64, 0u64, 0u64, 0u64);
    let mut requests = 0u64;
    let set_clock = |t: LocalTime| clock.set(t.to_timestamp(&s.zone));
    let run_events = |until: i64,
                      events: &mut BinaryHeap<Reverse<(i64, u64, Event)>>,
                      cancelled: &mut u64,
                      no_shows: &mut u64| {
        while let Some(Reverse((t, _, _))) = events.peek() {
            if *t > until {
                break;
            }
            let Some(Reverse((t, _, ev))) = events.pop() else {
                break;
            };
            set_clock(LocalTime(t));
            // An appointment the system cancelled (an absence without a slot) is gone: nothing
            // to do then.
            match ev {
                Event::Cancel(a) => {
                    if engine
                        .cancel(ACTOR, AppointmentId(a), CancelledBy::Patient)
                        .is_ok()
                    {
                        *cancelled += 1;
                    }
                }
                Event::Attend(a, show) => {
                    let status = if show {
                        Attendance::Fulfilled
                    } else {
                        Attendance::NoShow
                    };
                    if engine
                        .record_attendance(ACTOR, AppointmentId(a), status)
                        .is_ok()
                        && !show
                    {
                        *no_shows += 1;
                    }
                }
            }
        }
    };
    for day in 0..settings.days {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let morning = s.date(day).start().add_minutes(7 * 60);
        let until = s.date(day + settings.window_days).start();
        let in_flu = case
            .flu
            .filter(|f| (f.from_day..f.until_day).contains(&day));
        if let Some(flu) = case.flu
            && flu.from_day == day
        {
            run_events(morning.0 - 60, &mut events, &mut cancelled, &mut no_shows);
            set_clock(LocalTime(morning.0 - 60));
            let from = s.date(day).start();
            let to = s.date(flu.until_day).start();
            for d in choose_share(&mut flu_rng, s.doctors.len(), flu.absent) {
                let outcome = engine
                    .mark_absence(ACTOR, DoctorRef(d as u32), from, to)
                    .map_err(engine_err)?;
                for appt in outcome.reoffered.into_iter().map(|r| r.appointment) {
                    if engine.accept_offer(ACTOR, appt).is_ok() {
                        reoffered += 1;
                    }
                }
            }
        }
        let rate = case.requests_per_day * (1.0 + in_flu.map_or(0.0, |f| f.extra_demand));
        let n = if rate > 0.0 {
            Poisson::new(rate).map_or(0, |p| p.sample(&mut rng) as u64)
        } else {
            0
        };
        requests += n;
        let mut times: Vec<i64> = (0..n)
            .map(|_| morning.0 + rng.random_range(0..12 * 60))
            .collect();
        times.sort_unstable();
        for (i, &t) in times.iter().enumerate() {
            run_events(t, &mut events, &mut cancelled, &mut no_shows);
            set_clock(LocalTime(t));
            let district = pick(&demand.district_cum, rng.random());
            let spread = demand.spread_km[district];
            let home = offset(
                demand.centres[district],
                spread * normal(&mut rng),
                spread * normal(&mut rng),
            );
            let specialty = pick(&demand.specialty_cum, rng.random());
            let Some(specialty) = specialty_refs[specialty] else {
                unserved += 1;
                continue;
            };
            let xy = s.projection.project(home);
            let attached = prepared.district_clinics[district]
                .iter()
                .copied()
                .min_by(|&a, &b| {
                    km(s.clinics[a.index()].xy, xy).total_cmp(&km(s.clinics[b.index()].xy, xy))
                });
            let patient = format!("p{day}-{i}");
            let query = FindQuery {
                specialty,
                home: xy,
                attached,
                preferred: Vec::new(),
                from: None,
                until: Some(until),
                count: 3,
                patient: None,
                exclude_doctor: None,
                only: Default::default(),
                weights: None,
            };
            let found = engine.find(&query).map_err(engine_err)?;
            let mut booked = None;
            for p in &found {
                let Ok(held) = engine.hold(ACTOR, &patient, p.slot, None) else {
                    continue;
                };
                if let Ok(b) = engine.book(ACTOR, Booking::Hold(held.hold)) {
                    booked = Some((p, b));
                    break;
                }
            }
            let Some((p, b)) = booked else {
                unserved += 1;
                continue;
            };
            let slot_day = s.slot(p.slot).day;
            waits.push(slot_day - day);
            travel += p.score.travel_km;
            let start = p.start.0;
            seq += 1;
            let u: f64 = fate.random();
            if u < settings.cancel {
                let at = t + ((start - t) as f64 * fate.random::<f64>()) as i64;
                events.push(Reverse((
                    at.min(start - 1).max(t),
                    seq,
                    Event::Cancel(b.appointment.0),
                )));
            } else {
                let show = fate.random::<f64>() >= settings.no_show;
                events.push(Reverse((start, seq, Event::Attend(b.appointment.0, show))));
            }
        }
    }
    // The rest of the period's events (visits beyond it do not change its figures).
    let end = s.date(settings.days).start();
    run_events(end.0, &mut events, &mut cancelled, &mut no_shows);

    // Utilisation over the period's days.
    let mut clinic_util = Vec::new();
    let mut district = vec![(0u64, 0u64); prepared.districts];
    for c in 0..s.clinics.len() {
        let (mut used, mut avail) = (0u64, 0u64);
        for day in 0..settings.days {
            let (u, a) = engine.clinic_day_load(ClinicRef(c as u32), day);
            used += u64::from(u);
            avail += u64::from(a);
        }
        if avail > 0 {
            clinic_util.push(used as f64 / avail as f64);
        }
        let d = &mut district[prepared.clinic_district[c]];
        d.0 += used;
        d.1 += avail;
    }
    let district_util: Vec<f64> = district
        .iter()
        .map(|&(u, a)| if a > 0 { u as f64 / a as f64 } else { 0.0 })
        .collect();
    let with_slots: Vec<f64> = district
        .iter()
        .filter(|d| d.1 > 0)
        .map(|&(u, a)| u as f64 / a as f64)
        .collect();
    let mean_d = with_slots.iter().sum::<f64>() / with_slots.len().max(1) as f64;
    let util_spread = (with_slots.iter().map(|u| (u - mean_d).powi(2)).sum::<f64>()
        / with_slots.len().max(1) as f64)
        .sqrt();
    waits.sort_unstable();
    let booked = waits.len() as u64;
    let pct = |p: f64| -> f64 {
        if waits.is_empty() {
            0.0
        } else {
            f64::from(waits[((waits.len() - 1) as f64 * p).round() as usize])
        }
    };
    let mut wait_shares = vec![0.0; settings.window_days as usize + 1];
    for &w in &waits {
        wait_shares[(w as usize).min(settings.window_days as usize)] += 1.0;
    }
    for x in &mut wait_shares {
        *x /= booked.max(1) as f64;
    }
    Ok(RunOutcome {
        requests,
        booked,
        unserved,
        cancelled,
        no_shows,
        reoffered,
        wait_p50: pct(0.5),
        wait_p95: pct(0.95),
        wait_mean: waits.iter().map(|&w| f64::from(w)).sum::<f64>() / booked.max(1) as f64,
        travel_mean: travel / booked.max(1) as f64,
        util_max: clinic_util.iter().copied().fold(0.0, f64::max),
        util_mean: clinic_util.iter().sum::<f64>() / clinic_util.len().max(1) as f64,
        util_spread,
        district_util,
        wait_shares,
    })
}
