//! The appointment engine at Moscow scale, end to end (see benches/README.md, "Appointments"):
//! load a generated city into a data folder, fill two weeks of bookings through the decision
//! log, then measure `$find` latency percentiles, durable bookings from 64 concurrent clients,
//! snapshot and restart times, re-balancing 200,000 referrals, memory per slot, and the
//! simulated month of find's ranking against "nearest clinic, earliest slot".
//!
//! cargo run --release -p allot-benches --bin appt_load
//! cargo run --release -p allot-benches --bin appt_load -- --tasks-on 2    # async clients

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use allot_benches::appointments::{
    city, opening, queries, raw_fdatasync, requests, resident_bytes,
};
use allot_benches::latency::Latencies;
use allot_engine::appointments::rebalance::RebalanceOptions;
use allot_engine::appointments::simulate::{MonthSpec, simulate_month};
use allot_engine::appointments::{
    Booking, DoctorRef, Engine, EngineOptions, Error, FindQuery, ManualClock, SlotRef, SlotStatus,
    Weights,
};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "The appointment engine at Moscow scale: find, book, restart, re-balance")]
struct Args {
    /// City size relative to Moscow (1: 600 clinics, 30,000 doctors, ~12M slots).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days of bookings logged before measuring (one re-balanced batch per day).
    #[arg(long, default_value_t = 14)]
    fill_days: u32,
    /// Bookings per filled day.
    #[arg(long, default_value_t = 190_000)]
    fill_per_day: usize,
    /// `$find` queries timed one by one.
    #[arg(long, default_value_t = 200_000)]
    finds: usize,
    /// Concurrent booking clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long the clients book.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Run the clients as async tasks on a tokio runtime with this many threads (as a gRPC
    /// server would), instead of one thread each.
    #[arg(long, value_name = "THREADS")]
    tasks_on: Option<usize>,
    /// Clients book the found slot directly (`$book`, one decision) instead of holding it first
    /// (`$hold` then `$book`, two decisions, each waited for).
    #[arg(long)]
    direct: bool,
    /// Referrals in the re-balancing run.
    #[arg(long, default_value_t = 200_000)]
    rebalance: usize,
    /// City scale of the simulated month (0 skips it).
    #[arg(long, default_value_t = 0.1)]
    month_scale: f64,
    /// Data folder to use and keep (default: a temporary folder, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
}

fn options() -> EngineOptions {
    EngineOptions {
        snapshot_after: None,
        ..EngineOptions::default()
    }
}

fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}

fn us(seconds: f64) -> String {
    format!("{:.1} µs", seconds * 1e6)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.data.clone().unwrap_or_else(|| tmp.path().to_owned());
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // Load the city.
    let started = Instant::now();
    let city = city(args.seed, args.scale);
    let input = city.input();
    let schedule = input.build()?;
    let clock = Arc::new(ManualClock::new(opening(&schedule)));
    let rss_before = resident_bytes().unwrap_or(0);
    let absences = city.absences_csv(args.seed, city.doctors.len() / 200);
    let engine = Engine::create(
        &dir,
        &input,
        absences.as_bytes(),
        "loader",
        options(),
        clock.clone(),
    )?;
    let s = engine.schedule().clone();
    println!(
        "city: {} districts, {} clinics, {} doctors, {} slots over {} days; loaded in {:.2} s",
        s.districts.len(),
        s.clinics.len(),
        s.doctors.len(),
        s.slot_count(),
        s.days,
        started.elapsed().as_secs_f64()
    );

    // Two weeks of bookings through the log: one re-balanced batch per day of referrals.
    let started = Instant::now();
    let mut booked = 0;
    let fill_options = RebalanceOptions::default();
    for day in 0..args.fill_days.min(s.days) {
        let mut list = requests(&city, &s, args.fill_per_day, 1000 + u64::from(day), 1);
        for r in &mut list {
            r.earliest = s.date(day);
        }
        let plan = engine.plan_rebalance(&list, &fill_options)?;
        let done = engine.book_plan(
            "filler",
            &format!("fill-{day}"),
            &list,
            &plan,
            &fill_options,
        )?;
        booked += done.iter().flatten().count();
    }
    println!(
        "filled: {booked} bookings, {} log entries, in {:.1} s",
        engine.log().expect("durable").size(),
        started.elapsed().as_secs_f64()
    );
    let c = engine.counts();
    println!(
        "slots: {} free, {} busy, {} busy-unavailable",
        c.free, c.busy, c.busy_unavailable
    );

    // Memory.
    let m = engine.memory();
    let rss = resident_bytes().unwrap_or(0);
    println!(
        "| memory per slot (engine's account) | {:.2} B: status {:.2} B, counters {:.2} B, layout {:.2} B, records {:.2} B ({} bookings) |",
        m.bytes_per_slot,
        m.status_bytes as f64 / m.slots as f64,
        m.counter_bytes as f64 / m.slots as f64,
        m.layout_bytes as f64 / m.slots as f64,
        m.record_bytes as f64 / m.slots as f64,
        c.busy
    );
    println!(
        "| resident memory growth from loading and filling | {:.1} MB ({:.1} B per slot) |",
        (rss.saturating_sub(rss_before)) as f64 / 1e6,
        rss.saturating_sub(rss_before) as f64 / f64::from(s.slot_count())
    );

    // Find latency, one query at a time.
    let list = queries(&city, &s, args.finds, 7);
    for q in list.iter().take(2000) {
        engine.find(q)?;
    }
    let mut times = Latencies::default();
    let mut proposals = 0;
    let started = Instant::now();
    for q in &list {
        let t = Instant::now();
        proposals += engine.find(q)?.len();
        times.record(t.elapsed());
    }
    let total = started.elapsed().as_secs_f64();
    println!(
        "| find, 1 thread, {} queries, 5 proposals each | p50 {}, p90 {}, p99 {}, p99.9 {}, max {}; {:.0} finds/s; {:.2} proposals per find |",
        list.len(),
        us(times.seconds(0.5)),
        us(times.seconds(0.9)),
        us(times.seconds(0.99)),
        us(times.seconds(0.999)),
        us(times.seconds(1.0)),
        list.len() as f64 / total,
        proposals as f64 / list.len() as f64
    );

    // Durable bookings from concurrent clients: find, hold, book (two decisions each).
    let (sync50, sync99) = raw_fdatasync(&dir);
    println!("raw fdatasync now: p50 {}, p99 {}", us(sync50), us(sync99));
    let engine = Arc::new(engine);
    let before = engine.log().expect("durable").stats();
    let result = book_load(&engine, &city, &args);
    let after = engine.log().expect("durable").stats();
    let commits = after.commits - before.commits;
    let entries = after.entries - before.entries;
    let lat = result.latencies;
    println!(
        "| {} clients ({}) find + {}, {:.0} s | {:.0} durable bookings/s ({:.0} decisions/s); booking p50 {}, p99 {}; {:.1} decisions per fsync, fdatasync {} of each {} cycle; {} slot-taken retries; CPU {:.1} µs per booking |",
        args.clients,
        match args.tasks_on {
            Some(t) => format!("async tasks on {t} threads"),
            None => "threads".into(),
        },
        if args.direct { "book" } else { "hold + book" },
        args.seconds,
        result.bookings as f64 / result.seconds,
        entries as f64 / result.seconds,
        ms(lat.seconds(0.5)),
        ms(lat.seconds(0.99)),
        entries as f64 / commits.max(1) as f64,
        us((after.sync_nanos - before.sync_nanos) as f64 / 1e9 / commits.max(1) as f64),
        us(result.seconds / commits.max(1) as f64),
        result.retries,
        result.cpu_seconds * 1e6 / result.bookings.max(1) as f64
    );
    let engine =
        Arc::try_unwrap(engine).map_err(|_| anyhow::anyhow!("clients still hold the engine"))?;

    // An absence: the doctor with the most bookings on day 1 falls ill for the day.
    let busy = |d: DoctorRef| {
        s.doctor_day(d, 1)
            .filter(|&x| engine.slot_status(SlotRef(x)) != SlotStatus::Free)
            .count()
    };
    let doctor = (0..s.doctors.len() as u32)
        .map(DoctorRef)
        .max_by_key(|&d| busy(d))
        .expect("doctors");
    let day = s.date(1).start();
    let started = Instant::now();
    let out = engine.mark_absence("registry", doctor, day, day.add_minutes(24 * 60))?;
    println!(
        "| absence of the busiest doctor for a day | {} slots, {} patients re-offered, {} cancelled, in {} (operations paused meanwhile) |",
        out.slots,
        out.reoffered.len(),
        out.cancelled.len(),
        ms(started.elapsed().as_secs_f64())
    );

    // Snapshot and restart.
    let info = engine.snapshot()?;
    let started = Instant::now();
    let digest = engine.state_digest();
    let digest_seconds = started.elapsed().as_secs_f64();
    let entries = engine.log().expect("durable").size();
    drop(engine);
    println!(
        "| snapshot (rebuilt from the log; operations not paused) | {:.1} MB, {} records, {:.2} s; state digest of the live inventory {} |",
        info.bytes as f64 / 1e6,
        info.records,
        info.seconds,
        ms(digest_seconds)
    );
    let started = Instant::now();
    let (engine, report) = Engine::open(&dir, options(), clock.clone())?;
    let from_snapshot = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        engine.state_digest() == digest,
        "the restarted inventory differs"
    );
    println!(
        "| restart to serving, from the snapshot | {:.2} s ({} log entries, {} replayed after the snapshot) |",
        from_snapshot, entries, report.replayed
    );
    drop(engine);
    let aside = info.path.with_extension("aside");
    std::fs::rename(&info.path, &aside)?;
    let started = Instant::now();
    let (engine, report) = Engine::open(&dir, options(), clock.clone())?;
    let full = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        engine.state_digest() == digest,
        "the replayed inventory differs"
    );
    println!(
        "| restart to serving, replaying the whole log | {:.2} s ({} entries replayed) |",
        full, report.replayed
    );

    // Re-balancing a queue of referrals on the filled inventory.
    let list = requests(&city, &s, args.rebalance, 99, 7);
    let o = RebalanceOptions::default();
    let plan = engine.plan_rebalance(&list, &o)?;
    println!(
        "| re-balance {} referrals ({} groups, {} nodes, {} arcs) | {:.2} s in all, min-cost flow {:.3} s |",
        list.len(),
        plan.groups,
        plan.nodes,
        plan.arcs,
        plan.seconds,
        plan.solve_seconds
    );
    for (name, out) in [
        ("min-cost flow", &plan.optimal),
        ("greedy nearest, earliest", &plan.greedy),
    ] {
        println!(
            "| {name} | cost {:.0}; assigned {}; travel {:.2} km; wait mean {:.2}, p50 {}, p95 {}, max {} days; utilisation max {:.3}, sd {:.3} |",
            out.cost,
            out.assigned,
            out.mean_travel_km,
            out.mean_wait_days,
            out.p50_wait_days,
            out.p95_wait_days,
            out.max_wait_days,
            out.max_utilisation,
            out.utilisation_spread
        );
    }
    drop(engine);

    if args.month_scale > 0.0 {
        let spec = MonthSpec {
            city: allot_engine::appointments::generate::CitySpec::scaled(
                args.seed,
                args.month_scale,
            ),
            days: 28,
            ..MonthSpec::small(args.seed)
        };
        for (name, w) in [
            ("find", Weights::default()),
            ("nearest, earliest", Weights::nearest_earliest()),
        ] {
            let o = simulate_month(&spec, w);
            println!(
                "| month at scale {} ({} requests), {name} | utilisation max {:.3}, p99 {:.3}, mean {:.3}; wait p50 {}, p95 {}, mean {:.2} days; travel {:.2} km; unserved {}; {:.1} s |",
                args.month_scale,
                o.requests,
                o.max_utilisation,
                o.p99_utilisation,
                o.mean_utilisation,
                o.p50_wait_days,
                o.p95_wait_days,
                o.mean_wait_days,
                o.mean_travel_km,
                o.unserved,
                o.seconds
            );
        }
    }
    Ok(())
}

struct Load {
    cpu_seconds: f64,
    bookings: u64,
    retries: u64,
    seconds: f64,
    latencies: Latencies,
}

/// One client's query for the `k`-th booking: a patient near a random clinic.
fn query(all: &[FindQuery], client: usize, k: usize) -> FindQuery {
    let mut q = all[(client * 7919 + k * 104_729) % all.len()].clone();
    q.count = 3;
    q
}

fn book_load(
    engine: &Arc<Engine>,
    city: &allot_engine::appointments::generate::City,
    args: &Args,
) -> Load {
    let direct = args.direct;
    let all = Arc::new(queries(city, engine.schedule(), 50_000, 11));
    let stop = Arc::new(AtomicBool::new(false));
    let bookings = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut latencies = Latencies::default();
    match args.tasks_on {
        None => {
            let handles: Vec<_> = (0..args.clients)
                .map(|client| {
                    let (engine, all, stop, bookings, retries) = (
                        engine.clone(),
                        all.clone(),
                        stop.clone(),
                        bookings.clone(),
                        retries.clone(),
                    );
                    std::thread::spawn(move || {
                        let mut lat = Latencies::default();
                        let mut k = 0;
                        while !stop.load(Ordering::Relaxed) {
                            k += 1;
                            let t = Instant::now();
                            let patient = format!("b{client}-{k}");
                            match book_one(&engine, &query(&all, client, k), &patient, direct) {
                                Ok(Some(tries)) => {
                                    retries.fetch_add(tries, Ordering::Relaxed);
                                    bookings.fetch_add(1, Ordering::Relaxed);
                                    lat.record(t.elapsed());
                                }
                                Ok(None) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        lat
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs_f64(args.seconds));
            stop.store(true, Ordering::Relaxed);
            for h in handles {
                latencies.merge(&h.join().expect("client"));
            }
        }
        Some(threads) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let tasks: Vec<_> = (0..args.clients)
                    .map(|client| {
                        let (engine, all, stop, bookings, retries) = (
                            engine.clone(),
                            all.clone(),
                            stop.clone(),
                            bookings.clone(),
                            retries.clone(),
                        );
                        tokio::spawn(async move {
                            let mut lat = Latencies::default();
                            let mut k = 0;
                            while !stop.load(Ordering::Relaxed) {
                                k += 1;
                                let t = Instant::now();
                                let patient = format!("b{client}-{k}");
                                let booked = book_one_async(
                                    &engine,
                                    &query(&all, client, k),
                                    &patient,
                                    direct,
                                )
                                .await
                                .expect("booking");
                                if let Some(tries) = booked {
                                    retries.fetch_add(tries, Ordering::Relaxed);
                                    bookings.fetch_add(1, Ordering::Relaxed);
                                    lat.record(t.elapsed());
                                }
                            }
                            lat
                        })
                    })
                    .collect();
                tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
                stop.store(true, Ordering::Relaxed);
                for t in tasks {
                    latencies.merge(&t.await.expect("task"));
                }
            })
        }
    }
    Load {
        cpu_seconds: cpu_seconds() - cpu,
        bookings: bookings.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    }
}

/// Find, hold the best proposal (the next one if taken), book the hold. Returns the retries,
/// or none when nothing was free.
fn book_one(
    engine: &Engine,
    q: &FindQuery,
    patient: &str,
    direct: bool,
) -> Result<Option<u64>, Error> {
    let mut tries = 0;
    let mut proposals = engine.find(q)?;
    loop {
        let Some(p) = proposals.first() else {
            return Ok(None);
        };
        let outcome = if direct {
            engine
                .book(
                    "load",
                    Booking::Slot {
                        patient,
                        slot: p.slot,
                    },
                )
                .map(drop)
        } else {
            engine
                .hold("load", patient, p.slot, None)
                .and_then(|h| engine.book("load", Booking::Hold(h.hold)).map(drop))
        };
        match outcome {
            Ok(()) => return Ok(Some(tries)),
            Err(Error::SlotTaken { alternatives, .. }) => {
                tries += 1;
                proposals = alternatives;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn book_one_async(
    engine: &Engine,
    q: &FindQuery,
    patient: &str,
    direct: bool,
) -> Result<Option<u64>, Error> {
    let mut tries = 0;
    let mut proposals = engine.find(q)?;
    loop {
        let Some(p) = proposals.first() else {
            return Ok(None);
        };
        let outcome = if direct {
            match engine.begin_book(
                "load",
                Booking::Slot {
                    patient,
                    slot: p.slot,
                },
            ) {
                Ok(pending) => pending.await.map(drop),
                Err(e) => Err(e),
            }
        } else {
            match engine.begin_hold("load", patient, p.slot, None) {
                Ok(pending) => match pending.await {
                    Ok(h) => match engine.begin_book("load", Booking::Hold(h.hold)) {
                        Ok(pending) => pending.await.map(drop),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        };
        match outcome {
            Ok(()) => return Ok(Some(tries)),
            Err(Error::SlotTaken { alternatives, .. }) => {
                tries += 1;
                proposals = alternatives;
            }
            Err(e) => return Err(e),
        }
    }
}

/// CPU time this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
