//! A simulated month of bookings through the real engine, to compare rankings: each day,
//! patients (district by population, home near its centre, a specialty by the mix) arrive from
//! 07:00 to 19:00, ask `$find` for one proposal within the next `window_days` days and book it.
//! The same seed gives the same patients in the same order whatever the ranking, so two runs
//! differ only by where the ranking sends them.
//!
//! Reported: the maximum and 99th percentile of clinic-day utilisation over the month (booked
//! share of each clinic's available slots that day), and waiting days (slot day − request day).

use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::booking::Booking;
use super::clock::ManualClock;
use super::engine::{Engine, EngineOptions};
use super::find::{FindQuery, Weights};
use super::generate::{City, CitySpec};
use super::schedule::ClinicRef;
use super::sink::DiscardSink;
use crate::log::Digest;

/// The month to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthSpec {
    /// The city (its horizon is set to `days + window_days`).
    pub city: CitySpec,
    pub days: u32,
    /// How far ahead patients accept a slot.
    pub window_days: u32,
    /// Requests per day as a share of the month's mean daily slots.
    pub demand: f64,
    pub seed: u64,
    /// Candidate clinics per find.
    pub nearest: usize,
}

impl MonthSpec {
    /// A small city (8 districts, 32 clinics, 200 doctors) for three weeks at 80% demand: a
    /// second or two per ranking.
    pub fn small(seed: u64) -> MonthSpec {
        MonthSpec {
            city: CitySpec {
                districts: 8,
                clinics: 32,
                doctors: 200,
                radius_km: 7.0,
                ..CitySpec::moscow(seed)
            },
            days: 21,
            window_days: 14,
            demand: 0.8,
            seed,
            nearest: 12,
        }
    }
}

/// What a month came to.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthOutcome {
    pub requests: u64,
    pub booked: u64,
    /// Requests that found no slot in their window.
    pub unserved: u64,
    pub max_utilisation: f64,
    pub p99_utilisation: f64,
    pub mean_utilisation: f64,
    pub p50_wait_days: u32,
    pub p95_wait_days: u32,
    pub mean_wait_days: f64,
    pub mean_travel_km: f64,
    pub seconds: f64,
}

fn percentile<T: Copy + PartialOrd>(sorted: &[T], p: f64, empty: T) -> T {
    if sorted.is_empty() {
        return empty;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the month with `weights` ranking the proposals.
pub fn simulate_month(spec: &MonthSpec, weights: Weights) -> MonthOutcome {
    let started = Instant::now();
    let city = City::generate(&CitySpec {
        days: spec.days + spec.window_days,
        ..spec.city.clone()
    });
    let schedule = Arc::new(
        city.input()
            .build()
            .expect("a generated city is a valid schedule"),
    );
    let s = schedule.clone();
    let opening = s.first_day.start().add_minutes(7 * 60);
    let clock = Arc::new(ManualClock::new(opening.to_timestamp(&s.zone)));
    let engine = Engine::new(
        schedule,
        Digest::default(),
        Arc::new(DiscardSink),
        clock.clone(),
        EngineOptions {
            weights,
            nearest: spec.nearest,
            ..EngineOptions::default()
        },
    );
    let month_slots: u64 = (0..s.clinics.len())
        .flat_map(|c| (0..spec.days).map(move |d| (c, d)))
        .map(|(c, d)| u64::from(engine.clinic_day_load(ClinicRef(c as u32), d).1))
        .sum();
    let per_day = (spec.demand * month_slots as f64 / f64::from(spec.days)).round() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut waits: Vec<u32> = Vec::new();
    let mut travel = 0.0;
    let mut unserved = 0;
    for day in 0..spec.days {
        let morning = s.date(day).start().add_minutes(7 * 60);
        let until = s.date(day + spec.window_days).start();
        for i in 0..per_day {
            let at = morning.add_minutes((i * 12 * 60 / per_day.max(1)) as i64);
            clock.set(at.to_timestamp(&s.zone));
            let p = city.patient(&mut rng, format!("m{day}-{i}"));
            let Some(specialty) = s.specialty(p.specialty) else {
                continue;
            };
            let query = FindQuery {
                specialty,
                home: s.projection.project(p.home),
                attached: s.clinic(&city.clinics[p.attached].id),
                preferred: Vec::new(),
                from: None,
                until: Some(until),
                count: 1,
                patient: None,
                exclude_doctor: None,
                only: Default::default(),
                weights: None,
            };
            let found = engine.find(&query).unwrap_or_default();
            let Some(best) = found.first() else {
                unserved += 1;
                continue;
            };
            let booking = Booking::Slot {
                patient: &p.id,
                slot: best.slot,
            };
            if engine.book("simulation", booking).is_ok() {
                waits.push(s.slot(best.slot).day - day);
                travel += best.score.travel_km;
            } else {
                unserved += 1;
            }
        }
    }
    let mut utilisation: Vec<f64> = (0..s.clinics.len())
        .flat_map(|c| (0..spec.days).map(move |d| (c, d)))
        .filter_map(|(c, d)| {
            let (used, avail) = engine.clinic_day_load(ClinicRef(c as u32), d);
            (avail > 0).then(|| f64::from(used) / f64::from(avail))
        })
        .collect();
    utilisation.sort_by(f64::total_cmp);
    waits.sort_unstable();
    let booked = waits.len() as u64;
    MonthOutcome {
        requests: per_day * u64::from(spec.days),
        booked,
        unserved,
        max_utilisation: utilisation.last().copied().unwrap_or(0.0),
        p99_utilisation: percentile(&utilisation, 0.99, 0.0),
        mean_utilisation: utilisation.iter().sum::<f64>() / utilisation.len().max(1) as f64,
        p50_wait_days: percentile(&waits, 0.5, 0),
        p95_wait_days: percentile(&waits, 0.95, 0),
        mean_wait_days: waits.iter().map(|&w| f64::from(w)).sum::<f64>() / booked.max(1) as f64,
        mean_travel_km: travel / booked.max(1) as f64,
        seconds: started.elapsed().as_secs_f64(),
    }
}
