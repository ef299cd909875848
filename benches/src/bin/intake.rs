//! A first-day intake at national scale over gRPC on loopback: the places of a window in bulk,
//! then every application in its own `SubmitApplications` call from `--concurrency` clients,
//! each call answered once its decision is durable; then a restart with the full open window,
//! the close, and the run. Prints the intake's rate and latency percentiles, the rate of each
//! tenth of the intake, the restart, close and run times and the process's peak RSS, then one
//! JSON line.
//!
//! cargo run --release -p allot-benches --bin intake                  # Chile: 563,353 students
//! cargo run --release -p allot-benches --bin intake -- --domain fair # 20,000 fair applicants
//!
//! The school window is Chile's (SAE): 7,893 schools and 563,353 students listing 1 to 10 of
//! them, popular schools more often; a tenth of the students have a priority (a sibling) at
//! their first choice. The fair window is Moscow's weekend fairs: 125 fairs, 3 categories of
//! goods and open pools (15,000 stalls), 20,000 applicants listing 1 to 5 fairs. Lottery numbers
//! are drawn from a beacon after the close. The server runs in this process (its own runtime
//! of `--server-threads`, its log in a temporary folder), so RSS is client and server together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use allot_benches::latency::Latencies;
use allot_engine::log::{Log, LogOptions};
use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::config::mint_token;
use allot_service::server::{Domains, ServerHandle};
use clap::{Parser, ValueEnum};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Zipf};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "A national-scale application intake over gRPC")]
struct Args {
    #[arg(long, value_enum, default_value_t = Domain::School)]
    domain: Domain,
    /// Applications (default: 563,353 students, or 20,000 fair applicants).
    #[arg(long)]
    applications: Option<u64>,
    /// Calls in flight at all times.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Threads of the server's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Threads of the clients' runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Seed of the generated window.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Domain {
    School,
    Fair,
}

const WINDOW: &str = "intake";
const SCHOOLS: u32 = 7_893;
const FAIRS: u32 = 125;
const CATEGORIES: [&str; 3] = ["food", "crafts", "produce"];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let applications = args.applications.unwrap_or(match args.domain {
        Domain::School => 563_353,
        Domain::Fair => 20_000,
    });
    let dir = tempfile::tempdir()?;
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let token = mint_token()?;
    let start = |dir: &std::path::Path| -> anyhow::Result<ServerHandle> {
        let log = Arc::new(Log::open(dir, LogOptions::default())?);
        let domains = Domains::default();
        allot_benches::start_server(&server_runtime, log, domains, (&token, "intake"), |_| {})
    };
    let stop = |handle: ServerHandle| {
        handle.shutdown();
        let _ = server_runtime.block_on(handle.wait());
    };

    let server = start(dir.path())?;
    let url = format!("http://{}", server.local_addr());
    let bearer = Bearer::new(Some(&token))?;
    let places =
        client_runtime.block_on(submit_places(&url, &bearer, args.domain, applications))?;
    println!(
        "{:?} window '{WINDOW}': {places} places submitted in bulk",
        args.domain
    );

    // The intake: every application in its own call.
    let intake = client_runtime.block_on(intake(&url, &bearer, &args, applications))?;
    let seconds = intake.elapsed.as_secs_f64();
    let rate = applications as f64 / seconds;
    let us = |q: f64| intake.latencies.seconds(q) * 1e6;
    println!(
        "intake: {applications} applications acknowledged in {seconds:.1} s = {rate:.0}/s at {} \
         in flight over {} connections; latency us p50 {:.0} p99 {:.0} p99.9 {:.0} max {:.0}",
        args.concurrency,
        args.connections,
        us(0.5),
        us(0.99),
        us(0.999),
        us(1.0)
    );
    let tenths: Vec<f64> = intake
        .tenths
        .windows(2)
        .map(|w| applications as f64 / 10.0 / (w[1] - w[0]).as_secs_f64())
        .collect();
    let last_vs_first = tenths[9] / tenths[0];
    println!(
        "per tenth (acknowledged/s): {}; last tenth / first tenth {last_vs_first:.2}",
        tenths
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !intake.errors.is_empty() {
        println!("errors: {:?}", intake.errors);
    }

    // A restart with the full open window: a graceful stop (which writes the windows'
    // snapshot), then serving again once the window answers.
    let stopping = Instant::now();
    stop(server);
    let stopped = stopping.elapsed().as_secs_f64();
    let restarted = Instant::now();
    let server = start(dir.path())?;
    let url = format!("http://{}", server.local_addr());
    let status = client_runtime.block_on(first_status(&url, &bearer, args.domain))?;
    let restart = restarted.elapsed().as_secs_f64();
    println!(
        "restart with the open window: stopped in {stopped:.2} s (snapshot written), serving \
         again in {restart:.2} s ({status})"
    );

    let (close, run, summary) =
        client_runtime.block_on(close_and_run(&url, &bearer, args.domain))?;
    println!(
        "close {close:.2} s, run {run:.2} s ({summary}); close + run {:.2} s",
        close + run
    );
    let rss = peak_rss_mib();
    println!("peak RSS {rss:.0} MiB (client and server in one process)");
    println!(
        "{{\"domain\":\"{:?}\",\"applications\":{applications},\"calls_per_s\":{rate:.0},\
         \"p50_us\":{:.0},\"p99_us\":{:.0},\"last_vs_first_tenth\":{last_vs_first:.3},\
         \"stop_s\":{stopped:.3},\"restart_s\":{restart:.3},\"close_s\":{close:.3},\"run_s\":{run:.3},\
         \"peak_rss_mib\":{rss:.0},\"errors\":{}}}",
        args.domain,
        us(0.5),
        us(0.99),
        intake.errors.values().sum::<u64>()
    );
    stop(server);
    Ok(())
}

/// The window's places (and, for schools, priorities), in calls of at most 10,000 items.
async fn submit_places(
    url: &str,
    bearer: &Bearer,
    domain: Domain,
    applications: u64,
) -> anyhow::Result<u64> {
    let channel = client::connect(url, None).await?;
    match domain {
        Domain::School => {
            // Seats follow demand: a school's share of the first choices (its popularity), 1.1
            // seats per applicant overall as in Chile's SAE, at least 20 a school.
            let weight = |rank: u32| f64::from(rank + 1).powf(-ZIPF_EXPONENT);
            let total: f64 = (0..SCHOOLS).map(weight).sum();
            let mut capacity = vec![0u32; SCHOOLS as usize];
            for rank in 0..SCHOOLS {
                let seats = 1.1 * applications as f64 * weight(rank) / total;
                capacity[school_of_rank(rank) as usize] = (seats.ceil() as u32).max(20);
            }
            let schools: Vec<pb::School> = (0..SCHOOLS)
                .map(|s| pb::School {
                    id: school_id(s),
                    capacity: capacity[s as usize],
                    reserves: Vec::new(),
                })
                .collect();
            let n = schools.len() as u64;
            let request = pb::SubmitSchoolApplicationsRequest {
                window: WINDOW.into(),
                schools,
                ..Default::default()
            };
            let mut client = client::schools(channel, bearer.clone());
            client
                .submit_applications(tokio_stream::iter([request]))
                .await?;
            Ok(n)
        }
        Domain::Fair => {
            let mut pools = Vec::new();
            for f in 0..FAIRS {
                for category in CATEGORIES.iter().chain(["*"].iter()) {
                    pools.push(pb::StallPool {
                        fair: format!("F{f:03}"),
                        district: format!("D{:02}", f % 12),
                        category: (*category).into(),
                        // 120 stalls a fair: 30 per category and 30 open.
                        stalls: 30,
                    });
                }
            }
            let n = pools.len() as u64;
            let request = pb::SubmitFairApplicationsRequest {
                window: WINDOW.into(),
                pools,
                ..Default::default()
            };
            let mut client = client::fairs(channel, bearer.clone());
            client
                .submit_applications(tokio_stream::iter([request]))
                .await?;
            Ok(n)
        }
    }
}

fn school_id(s: u32) -> String {
    format!("S{s:05}")
}

/// How unequal schools' popularity is (Zipf's exponent).
const ZIPF_EXPONENT: f64 = 0.6;

/// The school of popularity rank `rank` (0 most popular): popular schools spread over the ids.
fn school_of_rank(rank: u32) -> u32 {
    // A multiplier prime to the school count: a permutation.
    (u64::from(rank) * 2_654_435_761 % u64::from(SCHOOLS)) as u32
}

/// What the intake measured.
struct Intake {
    elapsed: Duration,
    latencies: Latencies,
    /// Time since the start when each tenth of the applications had been acknowledged (11
    /// marks: 0, 10%, ..., 100%).
    tenths: Vec<Duration>,
    errors: std::collections::BTreeMap<String, u64>,
}

/// Applications `0..n`, one per call: each task takes the next number until all are sent.
async fn intake(url: &str, bearer: &Bearer, args: &Args, n: u64) -> anyhow::Result<Intake> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(client::connect(url, None).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let marks = Arc::new(std::sync::Mutex::new(vec![Duration::ZERO; 11]));
    let mut tasks = Vec::new();
    for task in 0..args.concurrency {
        let channel = channels[task % channels.len()].clone();
        let (next, acknowledged, marks) = (next.clone(), acknowledged.clone(), marks.clone());
        let (bearer, domain, seed) = (bearer.clone(), args.domain, args.seed);
        tasks.push(tokio::spawn(async move {
            let mut schools = client::schools(channel.clone(), bearer.clone());
            let mut fairs = client::fairs(channel, bearer);
            let mut latencies = Latencies::default();
            let mut errors = std::collections::BTreeMap::<String, u64>::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let sent = Instant::now();
                let answer = match domain {
                    Domain::School => {
                        let request = student(i, seed);
                        schools
                            .submit_applications(tokio_stream::iter([request]))
                            .await
                            .map(drop)
                    }
                    Domain::Fair => {
                        let request = fair_applicant(i, seed);
                        fairs
                            .submit_applications(tokio_stream::iter([request]))
                            .await
                            .map(drop)
                    }
                };
                match answer {
                    Ok(()) => {
                        latencies.record(sent.elapsed());
                        let done = acknowledged.fetch_add(1, Ordering::Relaxed) + 1;
                        if done * 10 % n < 10 && done * 10 / n > (done - 1) * 10 / n {
                            let tenth = (done * 10 / n) as usize;
                            marks.lock().unwrap()[tenth] = started.elapsed();
                        }
                    }
                    Err(status) => {
                        let code = allot_service::server::metrics::code_name(status.code());
                        *errors.entry(code.to_owned()).or_default() += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Latencies::default();
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for task in tasks {
        let (l, e) = task.await?;
        latencies.merge(&l);
        for (code, k) in e {
            *errors.entry(code).or_default() += k;
        }
    }
    let elapsed = started.elapsed();
    let tenths = marks.lock().unwrap().clone();
    Ok(Intake {
        elapsed,
        latencies,
        tenths,
        errors,
    })
}

/// Student `i`: 1 to 10 choices, popular schools more often (Zipf over a shuffled order); a
/// tenth of them with a sibling priority at the first choice.
fn student(i: u64, seed: u64) -> pb::SubmitSchoolApplicationsRequest {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let popularity = Zipf::new(f64::from(SCHOOLS), ZIPF_EXPONENT).expect("valid");
    let count = rng.random_range(1..=10usize);
    let mut choices: Vec<String> = Vec::with_capacity(count);
    while choices.len() < count {
        let rank = popularity.sample(&mut rng) as u32 - 1;
        let school = school_id(school_of_rank(rank));
        if !choices.contains(&school) {
            choices.push(school);
        }
    }
    let id = format!("P{i:07}");
    let priorities = match rng.random_range(0..10) {
        0 => vec![pb::SchoolPriority {
            school: choices[0].clone(),
            student: id.clone(),
            priority: 0,
        }],
        _ => Vec::new(),
    };
    pb::SubmitSchoolApplicationsRequest {
        window: WINDOW.into(),
        students: vec![pb::Student {
            second_factor: String::new(),
            id,
            lottery: None,
            choices,
        }],
        priorities,
        ..Default::default()
    }
}

/// Fair applicant `i`: a category, a tier, 1 to 5 fairs.
fn fair_applicant(i: u64, seed: u64) -> pb::SubmitFairApplicationsRequest {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let count = rng.random_range(1..=5usize);
    let mut choices: Vec<String> = Vec::with_capacity(count);
    while choices.len() < count {
        let fair = format!("F{:03}", rng.random_range(0..FAIRS));
        if !choices.contains(&fair) {
            choices.push(fair);
        }
    }
    pb::SubmitFairApplicationsRequest {
        window: WINDOW.into(),
        applicants: vec![pb::FairApplicant {
            second_factor: String::new(),
            id: format!("A{i:06}"),
            category: CATEGORIES[rng.random_range(0..CATEGORIES.len())].into(),
            tier: Some(rng.random_range(0..3)),
            lottery: None,
            choices,
        }],
        ..Default::default()
    }
}

/// Asks the restarted server for the first application's history: it answers once the window
/// is read back from the log.
async fn first_status(url: &str, bearer: &Bearer, domain: Domain) -> anyhow::Result<String> {
    let channel = client::connect(url, None).await?;
    let (id, status) = match domain {
        Domain::School => {
            let id = "P0000000".to_owned();
            let request = pb::GetApplicationStatusRequest {
                window: WINDOW.into(),
                id: id.clone(),
            };
            let mut c = client::schools(channel, bearer.clone());
            (id, c.get_application_status(request).await?.into_inner())
        }
        Domain::Fair => {
            let id = "A000000".to_owned();
            let request = pb::GetApplicationStatusRequest {
                window: WINDOW.into(),
                id: id.clone(),
            };
            let mut c = client::fairs(channel, bearer.clone());
            (id, c.get_application_status(request).await?.into_inner())
        }
    };
    Ok(format!("{id}: {} step(s)", status.steps.len()))
}

fn beacon() -> pb::Beacon {
    pb::Beacon {
        source: "bench".into(),
        round: 1,
        value: vec![7; 32],
    }
}

/// Closes the window and runs DA on it: the seconds of each and the run's figures.
async fn close_and_run(
    url: &str,
    bearer: &Bearer,
    domain: Domain,
) -> anyhow::Result<(f64, f64, String)> {
    let channel = client::connect(url, None).await?;
    match domain {
        Domain::School => {
            let mut c = client::schools(channel, bearer.clone());
            let started = Instant::now();
            let request = pb::CloseSchoolApplicationsRequest {
                window: WINDOW.into(),
            };
            c.close_applications(request).await?;
            let close = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let request = pb::RunSchoolAllocationRequest {
                window: WINDOW.into(),
                beacon: Some(beacon()),
                ..Default::default()
            };
            let ran = c.run_allocation(request).await?.into_inner();
            let run = started.elapsed().as_secs_f64();
            let s = ran.summary.unwrap_or_default();
            Ok((
                close,
                run,
                format!("{} of {} students placed", s.assigned, s.students),
            ))
        }
        Domain::Fair => {
            let mut c = client::fairs(channel, bearer.clone());
            let started = Instant::now();
            let request = pb::CloseFairApplicationsRequest {
                window: WINDOW.into(),
            };
            c.close_applications(request).await?;
            let close = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let request = pb::RunFairAllocationRequest {
                window: WINDOW.into(),
                mechanism: pb::FairMechanism::Da as i32,
                beacon: Some(beacon()),
                ..Default::default()
            };
            let ran = c.run_allocation(request).await?.into_inner();
            let run = started.elapsed().as_secs_f64();
            let s = ran.summary.unwrap_or_default();
            Ok((
                close,
                run,
                format!("{} of {} applicants placed", s.placed, s.applicants),
            ))
        }
    }
}

/// The process's peak resident set (Linux `VmHWM`), in MiB; 0 elsewhere.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
