//! `add-checkpoint` latency of an allot witness (c2sp.org/tlog-witness) over HTTP on this
//! machine, its fsyncs included: `--logs` logs each submit growing checkpoints with their
//! consistency proofs, one request at a time each, to one in-process witness.
//!
//!     cargo run --release -p allot-benches --bin witness_load -- --requests 5000 --logs 4

use std::sync::Arc;
use std::time::{Duration, Instant};

use allot_benches::latency::Latencies;
use allot_engine::log::{Checkpoint, SigningKey};
use allot_engine::witness::{AddCheckpoint, Witness};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Requests per log.
    #[arg(long, default_value_t = 2000)]
    requests: u64,
    /// Logs submitting at once (one request in flight each).
    #[arg(long, default_value_t = 1)]
    logs: usize,
    /// Entries in the log whose tree the checkpoints are of.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let log = Arc::new(allot_benches::log::fill(
        &temp.path().join("log"),
        args.entries,
        128,
    ));
    // The logs share one tree (same entries) under different origins and keys.
    let keys: Vec<SigningKey> = (0..args.logs)
        .map(|i| SigningKey::from_seed(&format!("bench.example/log-{i}"), [i as u8 + 1; 32]))
        .collect::<Result<_, _>>()?;
    let verifiers: Vec<_> = keys.iter().map(SigningKey::verifier).collect();
    let witness = Arc::new(Witness::open(
        temp.path().join("witness").as_path(),
        "bench.example/witness",
        &verifiers,
    )?);
    // The sizes each log submits and their requests, made before measuring.
    let step = (args.entries / args.requests).max(1);
    let mut bodies = Vec::new();
    for key in &keys {
        let mut requests = Vec::new();
        let mut old = 0;
        for r in 1..=args.requests {
            let size = (r * step).min(args.entries);
            let note = key.sign_note(
                &Checkpoint {
                    origin: key.name().to_owned(),
                    size,
                    root: log.root_at(size)?,
                    extensions: Vec::new(),
                }
                .body(),
            )?;
            let proof = match old {
                0 => Vec::new(),
                old => log.consistency_proof(old, size)?.path,
            };
            requests.push(AddCheckpoint::to_body(old, &proof, &note));
            old = size;
        }
        bodies.push(requests);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (latencies, elapsed) = runtime.block_on(async {
        let (listener, addr) = allot_service::witness::bind("127.0.0.1:0".parse()?).await?;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(allot_service::witness::serve(witness, listener, stopped));
        let url = format!("http://{addr}/add-checkpoint");
        let started = Instant::now();
        let mut tasks = Vec::new();
        for requests in bodies {
            let http = allot_service::witness::http_client(Duration::from_secs(10))
                .map_err(anyhow::Error::msg)?;
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Latencies::default();
                for body in requests {
                    let sent = Instant::now();
                    let response = http.post(&url).body(body).send().await?;
                    let status = response.status();
                    let _ = response.bytes().await?;
                    latencies.record(sent.elapsed());
                    anyhow::ensure!(status == 200, "the witness answered {status}");
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Latencies::default();
        for task in tasks {
            all.merge(&task.await??);
        }
        anyhow::Ok((all, started.elapsed()))
    })?;
    let ms = |q: f64| latencies.seconds(q) * 1e3;
    println!(
        "add-checkpoint: {} requests from {} log(s) in {:.2} s = {:.0}/s; latency ms: p50 {:.2} \
         p99 {:.2} p99.9 {:.2} max {:.2} (each answer after an fsync of the witness's state)",
        latencies.len(),
        args.logs,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        ms(1.0)
    );
    Ok(())
}
