//! Batch re-balancing: the min-cost flow's optimum equals an integer program over individual
//! requests and load bands (the LP oracle), the plan costs what it claims, the greedy baseline
//! costs at least as much, and booking a plan logs one run and its bookings.

use std::collections::HashMap;
use std::sync::Arc;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::inputs::read_requests;
use allot_engine::appointments::rebalance::{RebalanceOptions, tier_capacities};
use allot_engine::appointments::schedule::km;
use allot_engine::appointments::{
    Booking, ClinicRef, Date, Engine, EngineOptions, ManualClock, MemorySink, Request, SlotRef,
    SlotStatus, Zone,
};
use allot_engine::input::Table;
use allot_engine::log::{Decision, Digest};
use allot_testkit::lp::Allocation;

use allot_testkit::TestSeed;
use rand::RngExt as _;
use rand::rngs::StdRng;

use crate::appointments::MONDAY_7AM;

/// A tiny city: 3 clinics in 2 districts, doctors of 2 specialties with an hour or two a day,
/// 3 days; some slots already booked so the clinic-days start at different loads.
fn tiny(rng: &mut StdRng) -> (Engine, Vec<Request>) {
    let clinics =
        "clinic,district,lat,lon\nA,north,55.80,37.60\nB,north,55.78,37.66\nC,south,55.70,37.62\n";
    let mut doctors = String::from("doctor,clinic,specialty,minutes,schedule\n");
    for (i, c) in ["A", "B", "C", "A", "B", "C"].iter().enumerate() {
        let spec = if i < 3 { "gp" } else { "ent" };
        let hours = 1 + rng.random_range(0..2u64);
        doctors += &format!("d{i},{c},{spec},30,mon-sun 09:00-{:02}:00\n", 9 + hours);
    }
    let input = allot_engine::appointments::ScheduleInput {
        first_day: Date::parse("2025-03-03").unwrap(),
        days: 3,
        zone: Zone::moscow(),
        clinics_name: "clinics.csv".into(),
        clinics_csv: clinics.as_bytes().to_vec(),
        doctors_name: "doctors.csv".into(),
        doctors_csv: doctors.into_bytes(),
    };
    let schedule = Arc::new(input.build().unwrap());
    let engine = Engine::new(
        schedule.clone(),
        Digest([0; 32]),
        Arc::new(MemorySink::default()),
        Arc::new(ManualClock::new(MONDAY_7AM)),
        EngineOptions::default(),
    );
    for n in 0..schedule.slot_count() {
        if rng.random_range(0..4u64) == 0 {
            let patient = format!("old{n}");
            engine
                .book(
                    "t",
                    Booking::Slot {
                        patient: &patient,
                        slot: SlotRef(n),
                    },
                )
                .unwrap();
        }
    }
    let mut csv = String::from("request,patient,district,specialty,earliest\n");
    let n = 8 + rng.random_range(0..10u64);
    for i in 0..n {
        let district = ["north", "south"][rng.random_range(0..2u64) as usize];
        let spec = ["gp", "ent"][rng.random_range(0..2u64) as usize];
        let day = 3 + rng.random_range(0..3u64);
        csv += &format!("r{i},p{i},{district},{spec},2025-03-0{day}\n");
    }
    let table = Table::from_bytes("requests.csv", csv.into_bytes()).unwrap();
    let requests = read_requests(&table, &schedule).unwrap();
    (engine, requests)
}

/// The same objective as an integer program over individual requests: a request takes a
/// (clinic, specialty, day, load band) option; each (clinic, specialty, day) has its free slots,
/// each band of a clinic-day its capacity. Built from the slot states and the documented cost
/// terms only, not from the flow network.
fn oracle(engine: &Engine, requests: &[Request], o: &RebalanceOptions) -> i64 {
    let s = engine.schedule();
    let mut free: HashMap<(usize, u8, u32), i64> = HashMap::new();
    for n in 0..s.slot_count() {
        if engine.slot_status(SlotRef(n)) == SlotStatus::Free {
            let i = s.slot(SlotRef(n));
            *free
                .entry((i.clinic.index(), i.specialty.0, i.day))
                .or_default() += 1;
        }
    }
    let mut options: Vec<(usize, u8, u32, usize)> = Vec::new();
    for &(c, sp, day) in free.keys() {
        for k in 0..o.tiers.len() {
            options.push((c, sp, day, k));
        }
    }
    options.sort_unstable();
    let mut model = Allocation::new(requests.len(), vec![requests.len() as i64; options.len()]);
    let mut by_csd: HashMap<(usize, u8, u32), Vec<_>> = HashMap::new();
    let mut by_band: HashMap<(usize, u32, usize), Vec<_>> = HashMap::new();
    for (r, req) in requests.iter().enumerate() {
        model
            .set_unassigned_cost(r, Some((o.unassigned * 1000.0).round() as i64))
            .unwrap();
        let earliest = s.day_of(req.earliest.start());
        for (j, &(c, sp, day, k)) in options.iter().enumerate() {
            if sp != req.specialty.0 || i64::from(day) < earliest {
                continue;
            }
            let dist = km(s.districts[req.district.index()].centre, s.clinics[c].xy);
            let travel = (1000.0 * o.travel_per_km * f64::from(dist)).round() as i64;
            let wait = (i64::from(day) - earliest) * (1000.0 * o.wait_per_day).round() as i64;
            let band = (1000.0 * o.tiers[k].1).round() as i64;
            let pair = model.allow(r, j, travel + wait + band);
            by_csd.entry((c, sp, day)).or_default().push(pair);
            by_band.entry((c, day, k)).or_default().push(pair);
        }
    }
    for (key, pairs) in by_csd {
        model.add_group(pairs, None, Some(free[&key]));
    }
    for ((c, day, k), pairs) in by_band {
        let (used, avail) = engine.clinic_day_load(ClinicRef(c as u32), day);
        let cap = tier_capacities(used, avail, &o.tiers)[k];
        model.add_group(pairs, None, Some(i64::from(cap)));
    }
    model.solve().unwrap().cost
}

#[test]
fn the_flow_optimum_equals_the_lp_oracle() {
    let seed = TestSeed::new("the_flow_optimum_equals_the_lp_oracle");
    for case in 0..12 {
        let (engine, requests) = tiny(&mut seed.rng(case));
        let o = RebalanceOptions {
            nearest: 10,
            tiers: vec![(0.5, 0.0), (0.75, 3.0), (1.0, 9.0)],
            unassigned: 60.0,
            ..RebalanceOptions::default()
        };
        let plan = engine.plan_rebalance(&requests, &o).unwrap();
        let expect = oracle(&engine, &requests, &o);
        assert_eq!(plan.flow_cost, expect, "case {case}");
        // The decomposed assignment costs what the flow does (patients are all different).
        assert_eq!(
            (plan.optimal.cost * 1000.0).round() as i64,
            plan.flow_cost,
            "case {case}"
        );
        assert!(plan.greedy.cost >= plan.optimal.cost, "case {case}");
        // Every assigned slot is free, of the right specialty, not before the earliest day,
        // and used once.
        let s = engine.schedule();
        let mut seen = std::collections::HashSet::new();
        for (r, slot) in requests.iter().zip(&plan.slots) {
            if let Some(x) = slot {
                let i = s.slot(*x);
                assert_eq!(engine.slot_status(*x), SlotStatus::Free);
                assert_eq!(i.specialty, r.specialty);
                assert!(i.start.date() >= r.earliest);
                assert!(seen.insert(*x));
            }
        }
    }
}

#[test]
fn the_plan_beats_the_greedy_baseline_and_books_as_one_run() {
    let city = City::generate(&CitySpec {
        days: 5,
        ..CitySpec::scaled(31, 0.04)
    });
    let sink = Arc::new(MemorySink::default());
    let engine = Engine::new(
        Arc::new(city.input().build().unwrap()),
        Digest([0; 32]),
        sink.clone(),
        Arc::new(ManualClock::new(MONDAY_7AM)),
        EngineOptions::default(),
    );
    let s = engine.schedule().clone();
    let csv = city.requests_csv(7, 30_000, s.first_day, 2);
    let table = Table::from_bytes("requests.csv", csv.into_bytes()).unwrap();
    let requests = read_requests(&table, &s).unwrap();
    let o = RebalanceOptions::default();
    let plan = engine.plan_rebalance(&requests, &o).unwrap();
    assert!(plan.groups < requests.len() / 10, "{} groups", plan.groups);
    assert!(plan.optimal.cost < plan.greedy.cost, "{plan:#?}");
    assert!(plan.optimal.max_utilisation <= plan.greedy.max_utilisation + 1e-9);
    assert!(plan.optimal.assigned >= plan.greedy.assigned);
    // One bad patient id, in the last request the plan gives a slot: refused, and nothing
    // changes (no earlier booking is applied in memory and left unlogged).
    let before = engine.state_digest();
    let mut bad = requests.clone();
    let last_planned = plan.slots.iter().rposition(Option::is_some).unwrap();
    assert!(last_planned > 0);
    bad[last_planned].patient = "bad\nid".into();
    let err = engine
        .book_plan("planner", "rebalance-2025-03-03", &bad, &plan, &o)
        .unwrap_err();
    assert!(err.to_string().contains("patient"), "{err}");
    assert_eq!(
        engine.state_digest(),
        before,
        "a refused plan changed the inventory"
    );
    assert!(
        sink.records.lock().unwrap().is_empty(),
        "a refused plan logged"
    );
    let booked = engine
        .book_plan("planner", "rebalance-2025-03-03", &requests, &plan, &o)
        .unwrap();
    let n = booked.iter().flatten().count();
    assert_eq!(n, plan.optimal.assigned);
    for (slot, appt) in plan.slots.iter().zip(&booked) {
        if let (Some(x), Some(a)) = (slot, appt) {
            assert_eq!(engine.slot_status(*x), SlotStatus::Busy);
            assert_eq!(engine.appointment(*a).unwrap().slot, *x);
        }
    }
    let records = sink.records.lock().unwrap();
    let Decision::AllocationRun(run) = &records[0].decision else {
        panic!()
    };
    assert_eq!(
        (run.mechanism.as_str(), run.counts.assigned),
        ("mcf", n as u64)
    );
    assert_eq!(records.len(), 1 + n);
    // Re-planning now finds the booked slots gone.
    drop(records);
    let again = engine.plan_rebalance(&requests, &o).unwrap();
    for (a, b) in plan.slots.iter().zip(&again.slots) {
        if a.is_some() {
            assert_ne!(a, b);
        }
    }
}
