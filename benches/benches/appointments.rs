//! Appointment benchmarks at Moscow scale (see benches/README.md, "Appointments"): `$find`, the
//! in-memory cost of holds and bookings, re-balancing 200,000 referrals, and a restart from a
//! snapshot. Latency percentiles, durable throughput from 64 clients and memory per slot come
//! from the `appt_load` runner.
//!
//! cargo bench -p allot-benches --bench appointments

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use allot_benches::appointments::{city, engine, opening, queries, requests};
use allot_engine::appointments::generate::City;
use allot_engine::appointments::rebalance::RebalanceOptions;
use allot_engine::appointments::{
    Booking, DiscardSink, Engine, EngineOptions, ManualClock, Request, SlotStatus,
};
use allot_engine::log::decision::CancelledBy;
use criterion::{BatchSize, Criterion, criterion_group};

/// Two weeks of bookings (190,000 a day), as re-balanced batches.
fn fill(engine: &Engine, city: &City, days: u32) {
    let s = engine.schedule().clone();
    let o = RebalanceOptions::default();
    for day in 0..days {
        let mut list: Vec<Request> = requests(city, &s, 190_000, 1000 + u64::from(day), 1);
        for r in &mut list {
            r.earliest = s.date(day);
        }
        let plan = engine.plan_rebalance(&list, &o).expect("plan");
        engine
            .book_plan("bench", &format!("fill-{day}"), &list, &plan, &o)
            .expect("book");
    }
}

fn moscow(c: &mut Criterion) {
    let city = city(1, 1.0);
    let engine = engine(&city, Arc::new(DiscardSink));
    fill(&engine, &city, 14);
    let s = engine.schedule().clone();
    let list = queries(&city, &s, 10_000, 7);
    let mut g = c.benchmark_group("appointments-moscow");
    g.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    g.bench_function("find_5_proposals", |b| {
        b.iter(|| {
            i = (i + 1) % list.len();
            engine.find(black_box(&list[i])).expect("find")
        })
    });
    // The operations' own cost (locks, state, records skipped): free slots, cycled through.
    let free: Vec<_> = (0..s.slot_count())
        .step_by(97)
        .map(allot_engine::appointments::SlotRef)
        .filter(|&x| engine.slot_status(x) == SlotStatus::Free)
        .take(10_000)
        .collect();
    let mut k = 0;
    g.bench_function("hold_and_release_in_memory", |b| {
        b.iter(|| {
            k = (k + 1) % free.len();
            let h = engine
                .hold("bench", "patient-1", free[k], None)
                .expect("hold");
            engine.release("bench", h.hold).expect("release");
        })
    });
    g.bench_function("book_and_cancel_in_memory", |b| {
        b.iter(|| {
            k = (k + 1) % free.len();
            let booked = engine
                .book(
                    "bench",
                    Booking::Slot {
                        patient: "patient-2",
                        slot: free[k],
                    },
                )
                .expect("book");
            engine
                .cancel("bench", booked.appointment, CancelledBy::Patient)
                .expect("cancel");
        })
    });
    let referrals = requests(&city, &s, 200_000, 99, 7);
    let o = RebalanceOptions::default();
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("rebalance_200k_referrals", |b| {
        b.iter(|| {
            engine
                .plan_rebalance(black_box(&referrals), &o)
                .expect("plan")
        })
    });
    g.finish();
}

fn restart(c: &mut Criterion) {
    let city = city(1, 1.0);
    let dir = tempfile::tempdir().expect("temporary folder");
    let input = city.input();
    let schedule = input.build().expect("valid");
    let clock = Arc::new(ManualClock::new(opening(&schedule)));
    let options = EngineOptions {
        snapshot_after: None,
        ..EngineOptions::default()
    };
    {
        let engine = Engine::create(
            dir.path(),
            &input,
            b"doctor,from,until\n",
            "bench",
            options.clone(),
            clock.clone(),
        )
        .expect("create");
        fill(&engine, &city, 14);
        engine.snapshot().expect("snapshot");
    }
    let mut g = c.benchmark_group("appointments-moscow");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("restart_from_snapshot", |b| {
        b.iter_batched(
            || (),
            |()| Engine::open(dir.path(), options.clone(), clock.clone()).expect("open"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, moscow, restart);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
