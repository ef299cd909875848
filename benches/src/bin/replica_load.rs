//! Replicas on PostgreSQL under load: a leader and a follower of one store, each a server in
//! this process, on a fresh database of the cluster at `--postgres`. Phases, each after a
//! one-second warm-up: `Book` on the leader (`--concurrency` clients; durable means committed
//! in PostgreSQL), while a probe looks up every 20th acknowledged booking's entry on the
//! follower until it is there (the follower's staleness); then `FindSlots` on the leader and
//! on the follower, twice, alternating. Prints each phase and one JSON line.
//!
//! eval "$(.ci/postgres start)"
//! cargo run --release -p allot-benches --bin replica_load -- --postgres "$ALLOT_TEST_POSTGRES"

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use allot_benches::calls::{Caller, CityView, Method, load_city};
use allot_benches::latency::Latencies;
use allot_engine::log::postgres::PgStore;
use allot_engine::log::replica::{Replica, ReplicaOptions, Role};
use allot_engine::log::{Log, LogOptions, SigningKey};
use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::config::mint_token;
use allot_service::server::{ServerHandle, replica};
use clap::Parser;
use tokio::sync::mpsc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "A leader and a follower on PostgreSQL under load")]
struct Args {
    /// The PostgreSQL cluster (a database of its own is made in it).
    #[arg(long, env = "ALLOT_TEST_POSTGRES", value_name = "URL")]
    postgres: String,
    /// The generated city's size relative to Moscow.
    #[arg(long, default_value_t = 0.1)]
    scale: f64,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = allot_testkit::postgres::database_in(&args.postgres, "bench");
    let name = db.rsplit('/').next().unwrap_or_default().to_owned();
    let temp = tempfile::tempdir()?;
    let key = SigningKey::generate("bench.local/log")?;

    // The city, loaded through a writer that then lets the lease go.
    let (city, slots) = {
        let store = PgStore::connect(&db)?;
        let options = LogOptions {
            signing_key: Some(key.clone()),
            backend: Some(store.clone()),
            ..LogOptions::default()
        };
        let log = Arc::new(Log::open(temp.path().join("setup"), options)?);
        let mut writer = Replica::new(store.clone(), ReplicaOptions::new("setup"));
        writer.open(&log)?;
        let term = loop {
            if let Role::Elected { term } = writer.step(&log)? {
                writer.lead(term)?;
                break term;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let started = Instant::now();
        let engine = load_city(&log, args.scale)?;
        let s = engine.schedule().clone();
        println!(
            "city: {} clinics, {} doctors, {} slots, loaded into PostgreSQL in {:.2} s",
            s.clinics.len(),
            s.doctors.len(),
            s.slot_count(),
            started.elapsed().as_secs_f64()
        );
        drop(engine);
        store.release(term)?;
        let view = CityView {
            homes: s
                .clinics
                .iter()
                .map(|c| (c.location.lat, c.location.lon))
                .collect(),
            specialties: s.specialties.iter().map(|x| x.to_string()).collect(),
            proposals: 5,
            schedule: s.clone(),
        };
        (Arc::new(view), s.slot_count())
    };

    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let token = mint_token()?;
    let start = |folder: &str| -> anyhow::Result<(ServerHandle, Arc<Log>)> {
        let (opened, replication) = replica::open(
            &temp.path().join(folder),
            &db,
            Some(key.clone()),
            ReplicaOptions::new(""),
        )?;
        let log = opened.log.clone();
        let handle = allot_benches::start_replica_server(
            &server_runtime,
            opened.log,
            opened.domains,
            Some(replication),
            (&token, "load"),
            |_| {},
        )?;
        Ok((handle, log))
    };
    let (leader, leader_log) = start("leader")?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let leader_url = format!("http://{}", leader.local_addr());
    client_runtime.block_on(wait_until_leading(&leader_url))?;
    // Each Book phase walks its own doctors' slots (see `Caller::new`).
    let run = |method: Method, url: &str, probe: Option<&str>| {
        let half = usize::from(probe.is_some());
        client_runtime.block_on(phase(&args, method, (url, half), &token, &city, probe))
    };
    // The leader alone, then with a follower copying and applying every entry on the same cores.
    let started = leader_log.stats();
    let alone = run(Method::Book, &leader_url, None)?;
    let before = leader_log.stats();
    let (follower, _) = start("follower")?;
    let follower_url = format!("http://{}", follower.local_addr());
    let book = run(Method::Book, &leader_url, Some(&follower_url))?;
    // Alternating (leader, follower, leader, follower): this machine's speed drifts.
    let mut find_leader = run(Method::FindSlots, &leader_url, None)?;
    let mut find_follower = run(Method::FindSlots, &follower_url, None)?;
    let (again_leader, again_follower) = (
        run(Method::FindSlots, &leader_url, None)?,
        run(Method::FindSlots, &follower_url, None)?,
    );
    for (total, again) in [
        (&mut find_leader, again_leader),
        (&mut find_follower, again_follower),
    ] {
        total.rate = (total.rate + again.rate) / 2.0;
        total.latencies.merge(&again.latencies);
        total.errors += again.errors;
    }
    let ms = |l: &Latencies, q: f64| l.seconds(q) * 1e3;
    // Group commits of the leader alone (warm-up included): entries per group, and the time a
    // group spends in PostgreSQL (statement and commit) and in the folder's fdatasync.
    let commits = (before.commits - started.commits).max(1) as f64;
    println!(
        "leader alone: {} group commits, {:.1} entries per group; per group {:.2} ms in \
         PostgreSQL, {:.2} ms in the folder's fdatasync",
        before.commits - started.commits,
        (before.entries - started.entries) as f64 / commits,
        (before.store_nanos - started.store_nanos) as f64 / commits / 1e6,
        (before.sync_nanos - started.sync_nanos) as f64 / commits / 1e6
    );
    println!(
        "Book on the leader alone (committed in PostgreSQL): {:.0} bookings/s, latency ms p50 \
         {:.2} p99 {:.2}; {} errors",
        alone.rate,
        ms(&alone.latencies, 0.5),
        ms(&alone.latencies, 0.99),
        alone.errors
    );
    println!(
        "Book on the leader with a follower: {:.0} bookings/s, latency ms p50 {:.2} p99 \
         {:.2}; {} errors ({slots} slots)",
        book.rate,
        ms(&book.latencies, 0.5),
        ms(&book.latencies, 0.99),
        book.errors
    );
    println!(
        "follower staleness (acknowledged by the leader -> readable on the follower) ms: p50 \
         {:.1} p99 {:.1} max {:.1} over {} bookings",
        ms(&book.staleness, 0.5),
        ms(&book.staleness, 0.99),
        ms(&book.staleness, 1.0),
        book.staleness.len()
    );
    for (who, p) in [("leader", &find_leader), ("follower", &find_follower)] {
        println!(
            "FindSlots on the {who}: {:.0} calls/s, latency ms p50 {:.2} p99 {:.2}; {} errors",
            p.rate,
            ms(&p.latencies, 0.5),
            ms(&p.latencies, 0.99),
            p.errors
        );
    }
    println!(
        "{{\"book_alone_per_s\":{:.0},\"book_per_s\":{:.0},\"book_p99_ms\":{:.2},\"staleness_p99_ms\":{:.1},\
         \"find_leader_per_s\":{:.0},\"find_follower_per_s\":{:.0},\"follower_over_leader\":{:.3}}}",
        alone.rate,
        book.rate,
        ms(&book.latencies, 0.99),
        ms(&book.staleness, 0.99),
        find_leader.rate,
        find_follower.rate,
        find_follower.rate / find_leader.rate
    );
    for handle in [follower, leader] {
        handle.shutdown();
        let _ = server_runtime.block_on(handle.wait());
    }
    drop(server_runtime);
    let mut admin = postgres::Client::connect(&args.postgres, postgres::NoTls)?;
    drop(admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")));
    Ok(())
}

async fn wait_until_leading(url: &str) -> anyhow::Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(client::connect(url, None).await?);
    for _ in 0..200 {
        let request = HealthCheckRequest {
            service: replica::LEADER_SERVICE.into(),
        };
        if health
            .check(request)
            .await
            .is_ok_and(|a| a.into_inner().status == 1)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the first replica did not take the lease")
}

struct Phase {
    rate: f64,
    latencies: Latencies,
    staleness: Latencies,
    errors: u64,
}

/// `method` on `url` from `--concurrency` tasks for `--seconds`; with `probe`, every 20th
/// acknowledged booking's entry is looked up there until it is readable.
async fn phase(
    args: &Args,
    method: Method,
    (url, half): (&str, usize),
    token: &str,
    city: &Arc<CityView>,
    probe: Option<&str>,
) -> anyhow::Result<Phase> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(client::connect(url, None).await?);
    }
    let bearer = Bearer::new(Some(token))?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<(Instant, u64)>();
    let prober = match probe {
        Some(url) => {
            let mut audit = client::audit(client::connect(url, None).await?, bearer.clone());
            Some(tokio::spawn(async move {
                let mut staleness = Latencies::default();
                while let Some((acked, index)) = probe_rx.recv().await {
                    loop {
                        let found = audit.get_entry(pb::GetEntryRequest { index }).await;
                        if found.is_ok() {
                            staleness.record(acked.elapsed());
                            break;
                        }
                        if acked.elapsed() > Duration::from_secs(10) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_micros(500)).await;
                    }
                }
                staleness
            }))
        }
        None => None,
    };
    let mut tasks = Vec::new();
    for task in 0..args.concurrency {
        let mut caller = Caller::new(
            method,
            channels[task % channels.len()].clone(),
            bearer.clone(),
            0,
            (task + half * args.concurrency) as u64,
            2 * args.concurrency as u64,
            Some(city),
        );
        let (measuring, stop) = (measuring.clone(), stop.clone());
        let probe_tx = probe.map(|_| probe_tx.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut n) = (Latencies::default(), 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = caller.call(method).await;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match result {
                    Ok(index) => {
                        latencies.record(started.elapsed());
                        n += 1;
                        if let (Some(tx), Some(index)) = (&probe_tx, index)
                            && n % 20 == 0
                        {
                            let _ = tx.send((Instant::now(), index));
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    drop(probe_tx);
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors) = (Latencies::default(), 0);
    for task in tasks {
        let (l, e) = task.await?;
        latencies.merge(&l);
        errors += e;
    }
    let staleness = match prober {
        Some(p) => p.await?,
        None => Latencies::default(),
    };
    Ok(Phase {
        rate: latencies.len() as f64 / elapsed,
        latencies,
        staleness,
        errors,
    })
}
