//! The citizens' result page under load: a server in this process with the web console, one fair
//! window of `--applicants` (20,000: the size of Moscow's) generated as the anchors' `fair_gen.py`
//! shapes them, every application with a second factor, closed and run (DA, a beacon); then
//! `wrk` from outside this process POSTs lookups of random applicants with their codes to
//! `/results` (`benches/web/lookup.lua`) and prints its report, requests per second and
//! latency percentiles. Needs Debian's `wrk`.
//!
//! cargo run --release -p allot-benches --bin public_load -- --seconds 10 --connections 64

use std::sync::Arc;

use allot_engine::fair::read_tables;
use allot_engine::input::Table;
use allot_engine::log::{Log, LogOptions};
use allot_scenarios::fair_gen::{FairSpec, generate};
use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::allocation::fairs::submissions;
use allot_service::server::allocation::windows::Codes;
use allot_service::server::config::mint_token;
use clap::Parser;

// The allocator `allot serve` uses, so the in-process server costs what the real one does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Load on the public result page of the web console")]
struct Args {
    /// Applicants in the window.
    #[arg(long, default_value_t = 20_000)]
    applicants: usize,
    /// Fairs in the window (150 at Moscow's size).
    #[arg(long, default_value_t = 150)]
    fairs: usize,
    /// wrk's keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured time, after two seconds of warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Threads of the in-process server's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// The generator's seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

const WINDOW: &str = "load";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let temp = tempfile::TempDir::new()?;
    let log = Arc::new(Log::open(temp.path(), LogOptions::default())?);
    let token = mint_token()?;
    let handle = allot_benches::start_server(
        &runtime,
        log,
        allot_service::server::Domains::default(),
        (&token, "load"),
        |c| c.web_listen = Some(([127, 0, 0, 1], 0).into()),
    )?;
    let url = format!("http://{}", handle.local_addr());
    let web = handle
        .web_addr()
        .ok_or_else(|| anyhow::anyhow!("the console is not served"))?;

    let csv = generate(FairSpec {
        seed: args.seed,
        applicants: args.applicants,
        fairs: args.fairs,
    });
    let fairs = Table::from_bytes("fairs.csv", csv.fairs.into_bytes())?;
    let applicants = Table::from_bytes("applicants.csv", csv.applicants.into_bytes())?;
    let input = read_tables(&fairs, &applicants)?.input;
    let codes: Codes = input
        .applicants
        .iter()
        .map(|a| (a.id.clone(), format!("secret-{}", a.id)))
        .collect();
    let mut messages = submissions(WINDOW, &input, &codes);
    // Lotteries drawn from the beacon, as a city does.
    for a in messages.iter_mut().flat_map(|m| &mut m.applicants) {
        a.lottery = None;
    }
    runtime.block_on(async {
        let channel = client::connect(&url, None).await?;
        let mut api = client::fairs(channel.clone(), Bearer::new(Some(&token))?);
        api.submit_applications(tokio_stream::iter(messages)).await?;
        api.close_applications(pb::CloseFairApplicationsRequest {
            window: WINDOW.into(),
        })
        .await?;
        let ran = api
            .run_allocation(pb::RunFairAllocationRequest {
                window: WINDOW.into(),
                mechanism: pb::FairMechanism::Da as i32,
                beacon: Some(pb::Beacon {
                    source: "bench".into(),
                    round: 1,
                    value: vec![7; 32],
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        let placed = ran.summary.map_or(0, |s| s.placed);
        client::audit(channel, Bearer::new(Some(&token))?)
            .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
            .await?;
        println!(
            "window `{WINDOW}`: {} applicants, {} pools, {placed} placed; run and covered by a signed checkpoint",
            input.applicants.len(),
            input.pools.len()
        );
        anyhow::Ok(())
    })?;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/web/lookup.lua");
    let base = format!("http://{web}");
    let run = |seconds: f64| {
        std::process::Command::new("wrk")
            .env("ALLOT_WINDOW", WINDOW)
            .env("ALLOT_APPLICANTS", args.applicants.to_string())
            .args([
                "-t2",
                &format!("-c{}", args.connections),
                &format!("-d{}s", seconds.ceil()),
                "--latency",
                "-s",
                script,
                &base,
            ])
            .output()
    };
    run(2.0).map_err(|e| anyhow::anyhow!("wrk (apt-get install wrk): {e}"))?;
    let out = run(args.seconds)?;
    let report = String::from_utf8_lossy(&out.stdout);
    println!(
        "== POST /results (public lookups with codes), wrk -t2 -c{} (outside this process)\n{report}",
        args.connections
    );
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !report.contains("Non-2xx"),
        "some lookups were not answered 200: the figures would flatter refusals"
    );
    handle.shutdown();
    Ok(())
}
