//! Load on the gRPC server over loopback: `--concurrency` calls in flight at all times, each task
//! issuing its next call when the previous one answers. Prints throughput, status codes and
//! latency percentiles (p50, p99, p99.9, max), then one JSON line.
//!
//! By default it starts a server in this process (its own 2-thread runtime, a temporary log of
//! `--entries` entries); `--server URL --token T` measures a running `allot serve` instead.
//!
//! cargo run --release -p allot-benches --bin grpc_load -- --method health --concurrency 64
//! cargo run --release -p allot-benches --bin grpc_load -- --method inclusion-proof --concurrency 64
//!
//! cargo run --release -p allot-benches --bin grpc_load -- --method find-slots --concurrency 64
//! cargo run --release -p allot-benches --bin grpc_load -- --method book --concurrency 64
//! cargo run --release -p allot-benches --bin grpc_load -- --method find-slots --fhir-wrk 10
//!
//! For `find-slots` and `book` the in-process server loads a generated city (`--scale`, 1 is
//! Moscow: 600 clinics, 30,000 doctors, 12 million slots over 14 days from today). FindSlots asks
//! for `--proposals` (5) for a random patient (home near a random clinic, a random specialty); Book
//! books free slots directly (`slot_id` and a patient), each task walking the slots of its own
//! doctors from tomorrow on, so every booking succeeds and is a durable decision.
//!
//! A method is a [`Method`] variant and an arm in [`Caller::call`] (`allot_benches::calls`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use allot_benches::calls::{Caller, CityView, Method, load_city};
use allot_benches::latency::Latencies;
use allot_engine::log::{Log, LogOptions, TrustPolicy};
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::config::mint_token;
use clap::Parser;
use tonic::Code;

// The allocator `allot serve` uses, so the in-process server costs what the real one does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Load on the allot gRPC server over loopback")]
struct Args {
    /// The method to call.
    #[arg(long, value_enum, default_value_t = Method::Health)]
    method: Method,
    /// Calls in flight at all times.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured time, after a one-second warm-up.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Entries in the in-process server's log (proofs pick random entries of it).
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// With find-slots: proposals asked for per call (the API's default is 5).
    #[arg(long, default_value_t = 5)]
    proposals: u32,
    /// With find-slots and book: the generated city's size relative to Moscow.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Threads of the in-process server's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Threads of the client's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Witnesses started in this process; the server publishes a checkpoint once `--quorum` of
    /// them cosigned it, and the run reports how long after its acknowledgement each booking
    /// was in a cosigned checkpoint.
    #[arg(long, default_value_t = 0)]
    witnesses: usize,
    /// Cosignatures a checkpoint needs [default: a majority of the witnesses].
    #[arg(long)]
    quorum: Option<usize>,
    /// How often the server signs a checkpoint while the log grows (seconds).
    #[arg(long, default_value_t = 0.25)]
    checkpoint_interval: f64,
    /// With find-slots: also serve the FHIR face and first measure IHE `$find` on it for this
    /// many seconds with `wrk` (2 threads, `--concurrency` keep-alive connections, from outside
    /// this process; `benches/fhir/find.lua`), then FindSlots over gRPC: side by side on one
    /// server.
    #[arg(long, value_name = "SECONDS")]
    fhir_wrk: Option<f64>,
    /// Measure the server at this URL instead of one started here.
    #[arg(long, value_name = "URL", requires = "token")]
    server: Option<String>,
    /// Token for --server (role auditor for the Audit methods).
    #[arg(long, env = "ALLOT_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// What one task measured.
#[derive(Default)]
struct Tally {
    latencies: Latencies,
    /// Acknowledged bookings: when, and their log index.
    acked: Vec<(Instant, u64)>,
    errors: std::collections::BTreeMap<String, u64>,
}

/// User and system CPU seconds this process has used (Linux /proc; zero elsewhere): with the
/// server in-process, client and server together.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let temp = tempfile::tempdir()?;
    let appointments = matches!(args.method, Method::FindSlots | Method::Book);
    let mut city = None;
    let (url, token, entries, _server) = match &args.server {
        Some(_) if appointments => {
            anyhow::bail!(
                "find-slots and book need the city's schedule: measure them in-process (without \
                 --server)"
            )
        }
        Some(url) => {
            let token = args.token.clone().unwrap_or_default();
            (url.clone(), token, args.entries, None)
        }
        None => {
            let (log, domains) = if appointments {
                let log = Arc::new(Log::open(temp.path(), LogOptions::default())?);
                let started = Instant::now();
                let engine = load_city(&log, args.scale)?;
                println!(
                    "city: {} clinics, {} doctors, {} slots, loaded in {:.2} s",
                    engine.schedule().clinics.len(),
                    engine.schedule().doctors.len(),
                    engine.schedule().slot_count(),
                    started.elapsed().as_secs_f64()
                );
                let s = engine.schedule().clone();
                city = Some(Arc::new(CityView {
                    homes: s
                        .clinics
                        .iter()
                        .map(|c| (c.location.lat, c.location.lon))
                        .collect(),
                    specialties: s.specialties.iter().map(|x| x.to_string()).collect(),
                    proposals: args.proposals,
                    schedule: s,
                }));
                (
                    log,
                    allot_service::server::Domains {
                        appointments: Some(engine),
                    },
                )
            } else {
                let log = Arc::new(allot_benches::log::fill(temp.path(), args.entries, 256));
                (log, allot_service::server::Domains::default())
            };
            let token = mint_token()?;
            let witnesses = allot_benches::witnesses::start(
                &server_runtime,
                temp.path(),
                args.witnesses,
                log.verifier_key(),
            )?;
            let quorum = args.quorum.unwrap_or(TrustPolicy::majority(args.witnesses));
            let interval = Duration::from_secs_f64(args.checkpoint_interval);
            let handle = allot_benches::start_server(
                &server_runtime,
                log,
                domains,
                (&token, "load"),
                |c| {
                    if args.fhir_wrk.is_some() {
                        c.fhir_listen = Some(([127, 0, 0, 1], 0).into());
                    }
                    c.witnesses = witnesses;
                    c.witness_quorum = quorum;
                    c.checkpoint_interval = interval;
                },
            )?;
            let url = format!("http://{}", handle.local_addr());
            if let (Some(seconds), Some(fhir)) = (args.fhir_wrk, handle.fhir_addr()) {
                wrk(
                    &format!("http://{fhir}/fhir"),
                    &token,
                    seconds,
                    args.concurrency,
                )?;
            }
            (url, token, args.entries, Some(handle))
        }
    };

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    // When each cosigned checkpoint appeared, and its size.
    let cosigned_at = Arc::new(std::sync::Mutex::new(Vec::<(Instant, u64)>::new()));
    if let Some(handle) = &_server {
        let mut cosigned = handle.cosigned();
        let seen = cosigned_at.clone();
        client_runtime.spawn(async move {
            while cosigned.changed().await.is_ok() {
                let size = cosigned
                    .borrow_and_update()
                    .as_ref()
                    .map(|c| c.checkpoint.size);
                if let Some(size) = size {
                    seen.lock().unwrap().push((Instant::now(), size));
                }
            }
        });
    }
    let tallies = client_runtime.block_on(async {
        let mut channels = Vec::new();
        for _ in 0..args.connections.max(1) {
            channels.push(client::connect(&url, None).await?);
        }
        let bearer = Bearer::new(Some(&token))?;
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for task in 0..args.concurrency {
            let channel = channels[task % channels.len()].clone();
            let mut caller = Caller::new(
                args.method,
                channel,
                bearer.clone(),
                entries,
                task as u64,
                args.concurrency as u64,
                city.as_ref(),
            );
            let (measuring, stop, method) = (measuring.clone(), stop.clone(), args.method);
            let cosigning = args.witnesses > 0;
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = caller.call(method).await;
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match result {
                        Ok(index) => {
                            tally.latencies.record(started.elapsed());
                            if let Some(index) = index.filter(|_| cosigning) {
                                tally.acked.push((Instant::now(), index));
                            }
                        }
                        Err(status) => {
                            let code = allot_service::server::metrics::code_name(status.code());
                            *tally.errors.entry(code.to_owned()).or_default() += 1;
                            if status.code() == Code::Unauthenticated {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                tally
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let cpu_before = cpu_seconds();
        tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await?);
        }
        anyhow::Ok((all, elapsed, cpu))
    })?;
    let (tallies, elapsed, cpu) = tallies;
    let mut latencies = Latencies::default();
    for t in &tallies {
        latencies.merge(&t.latencies);
    }
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for t in &tallies {
        for (code, n) in &t.errors {
            *errors.entry(code.clone()).or_default() += n;
        }
    }
    if args.witnesses > 0 {
        // Let the last bookings reach a cosigned checkpoint.
        std::thread::sleep(Duration::from_secs(2));
        let cosigned = cosigned_at.lock().unwrap().clone();
        let mut waits = Latencies::default();
        let mut never = 0;
        for t in &tallies {
            for &(acked, index) in &t.acked {
                // The first cosigned checkpoint that covers the booking.
                let first = cosigned.partition_point(|&(_, size)| size <= index);
                match cosigned.get(first) {
                    Some(&(at, _)) => waits.record(at.saturating_duration_since(acked)),
                    None => never += 1,
                }
            }
        }
        let ms = |q: f64| waits.seconds(q) * 1e3;
        println!(
            "cosigned ({} witnesses, quorum {}): {} checkpoints; acknowledged -> in a cosigned \
             checkpoint ms: p50 {:.0} p99 {:.0} max {:.0} over {} bookings ({never} not yet)",
            args.witnesses,
            args.quorum.unwrap_or(TrustPolicy::majority(args.witnesses)),
            cosigned.len(),
            ms(0.5),
            ms(0.99),
            ms(1.0),
            waits.len()
        );
    }
    let ok = latencies.len() as f64;
    let us = |q: f64| latencies.seconds(q) * 1e6;
    let rate = ok / elapsed.as_secs_f64();
    let (p50, p99, p999, max) = (us(0.5), us(0.99), us(0.999), us(1.0));
    let method = format!("{:?}", args.method);
    println!(
        "{method}: {} calls ok in {:.2} s = {rate:.0} calls/s at {} in flight over {} connections",
        latencies.len(),
        elapsed.as_secs_f64(),
        args.concurrency,
        args.connections
    );
    println!("latency us: p50 {p50:.0} p99 {p99:.0} p99.9 {p999:.0} max {max:.0}");
    let cpu_us = if ok > 0.0 { cpu * 1e6 / ok } else { 0.0 };
    if args.server.is_none() {
        println!(
            "CPU {cpu:.2} s = {cpu_us:.1} us per call, client and server together (2 cores to \
             itself would allow about {:.0} calls/s)",
            if cpu_us > 0.0 { 2e6 / cpu_us } else { 0.0 }
        );
    }
    if !errors.is_empty() {
        println!("errors: {errors:?}");
    }
    println!(
        "{{\"method\":\"{method}\",\"concurrency\":{},\"connections\":{},\"calls_per_s\":{rate:.0},\
         \"p50_us\":{p50:.0},\"p99_us\":{p99:.0},\"p999_us\":{p999:.0},\"max_us\":{max},\"cpu_us_per_call\":{cpu_us:.1},\"errors\":{}}}",
        args.concurrency,
        args.connections,
        errors.values().sum::<u64>()
    );
    if let Some(handle) = _server {
        handle.shutdown();
        let _ = server_runtime.block_on(handle.wait());
    }
    Ok(())
}

/// IHE `$find` on the FHIR face at `base`, measured by `wrk` (after two seconds of warm-up);
/// prints wrk's report.
fn wrk(base: &str, token: &str, seconds: f64, connections: usize) -> anyhow::Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fhir/find.lua");
    let url = format!("{base}/Appointment/$find");
    let run = |seconds: f64, latency: bool| {
        let mut command = std::process::Command::new("wrk");
        command
            .env("ALLOT_TOKEN", token)
            .args([
                "-t2",
                &format!("-c{connections}"),
                &format!("-d{}s", seconds.ceil()),
            ])
            .args(["-s", script]);
        if latency {
            command.arg("--latency");
        }
        command.arg(&url).output()
    };
    run(2.0, false).map_err(|e| anyhow::anyhow!("wrk (apt-get install wrk): {e}"))?;
    let out = run(seconds, true)?;
    println!(
        "== FHIR $find over HTTP/1.1, wrk -t2 -c{connections} (outside this process)\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("== gRPC FindSlots, {connections} calls in flight (in this process)");
    Ok(())
}
