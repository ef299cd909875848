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
//! A method is a [`Method`] variant and an arm in [`Caller::call`]: FindSlots and Book plug in the
//! same way once the Appointments service is registered (a request generator per task, so each
//! task books distinct slots).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use allot_service::proto::v1 as pb;
use allot_service::proto::v1::audit_client::AuditClient;
use allot_service::rpc::client::{self, Authorized, Bearer};
use allot_service::server::access::Roles;
use allot_service::server::config::{Caller as TokenOwner, ServerConfig, mint_token};
use clap::{Parser, ValueEnum};
use rand::{RngExt as _, SeedableRng as _};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

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
    /// Threads of the in-process server's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Threads of the client's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Measure the server at this URL instead of one started here.
    #[arg(long, value_name = "URL", requires = "token")]
    server: Option<String>,
    /// Token for --server (role auditor for the Audit methods).
    #[arg(long, env = "ALLOT_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// `grpc.health.v1.Health/Check` (public; the server's floor: gate, routing, HTTP/2).
    Health,
    /// `allot.v1.Audit/GetInclusionProof` of a random entry against the latest checkpoint.
    InclusionProof,
    /// `allot.v1.Audit/GetEntry` of a random entry.
    Entry,
}

/// One task's client for the chosen method.
enum Caller {
    Health(HealthClient<Channel>),
    Audit {
        client: AuditClient<Authorized>,
        entries: u64,
        rng: Box<rand_chacha::ChaCha8Rng>,
    },
}

impl Caller {
    fn new(method: Method, channel: Channel, bearer: Bearer, entries: u64, task: u64) -> Caller {
        match method {
            Method::Health => Caller::Health(HealthClient::new(channel)),
            Method::InclusionProof | Method::Entry => Caller::Audit {
                client: client::audit(channel, bearer),
                entries,
                rng: Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(task)),
            },
        }
    }

    async fn call(&mut self, method: Method) -> Result<(), tonic::Status> {
        match (self, method) {
            (Caller::Health(c), _) => {
                let request = HealthCheckRequest {
                    service: String::new(),
                };
                c.check(request).await.map(drop)
            }
            (
                Caller::Audit {
                    client,
                    entries,
                    rng,
                },
                Method::InclusionProof,
            ) => {
                let index = rng.random_range(0..*entries);
                let request = pb::GetInclusionProofRequest {
                    index,
                    tree_size: None,
                };
                client.get_inclusion_proof(request).await.map(drop)
            }
            (
                Caller::Audit {
                    client,
                    entries,
                    rng,
                },
                _,
            ) => {
                let index = rng.random_range(0..*entries);
                client
                    .get_entry(pb::GetEntryRequest { index })
                    .await
                    .map(drop)
            }
        }
    }
}

/// What one task measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
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

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let temp = tempfile::tempdir()?;
    let (url, token, entries, _server) = match &args.server {
        Some(url) => {
            let token = args.token.clone().unwrap_or_default();
            (url.clone(), token, args.entries, None)
        }
        None => {
            let log = allot_benches::log::fill(temp.path(), args.entries, 256);
            let token = mint_token()?;
            let mut config = ServerConfig {
                listen: "127.0.0.1:0".parse()?,
                ..ServerConfig::default()
            };
            config.tokens.insert_token(
                &token,
                TokenOwner {
                    name: "load".into(),
                    roles: Roles::ALL,
                },
            );
            let handle =
                server_runtime.block_on(allot_service::server::start(config, Arc::new(log)))?;
            let url = format!("http://{}", handle.local_addr());
            (url, token, args.entries, Some(handle))
        }
    };

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
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
            let mut caller =
                Caller::new(args.method, channel, bearer.clone(), entries, task as u64);
            let (measuring, stop, method) = (measuring.clone(), stop.clone(), args.method);
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = caller.call(method).await;
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            let us = started.elapsed().as_micros();
                            tally
                                .latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
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
    let mut latencies: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for t in &tallies {
        for (code, n) in &t.errors {
            *errors.entry(code.clone()).or_default() += n;
        }
    }
    let ok = latencies.len() as f64;
    let rate = ok / elapsed.as_secs_f64();
    let (p50, p99, p999) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
    );
    let max = latencies.last().copied().unwrap_or(0);
    let method = format!("{:?}", args.method);
    println!(
        "{method}: {} calls ok in {:.2} s = {rate:.0} calls/s at {} in flight over {} connections",
        latencies.len(),
        elapsed.as_secs_f64(),
        args.concurrency,
        args.connections
    );
    println!("latency us: p50 {p50:.0} p99 {p99:.0} p99.9 {p999:.0} max {max}");
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
