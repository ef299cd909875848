//! How fast a monitor follows a log from scratch: a log of `--entries` entries served over HTTP
//! in the tlog-tiles layout by an in-process `allot serve`, followed by `allot audit monitor`'s
//! code (every entry bundle fetched, every leaf hashed, the tree rebuilt and its root checked
//! against the signed checkpoint).
//!
//!     cargo run --release -p allot-benches --bin monitor_load -- --entries 10000000

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use allot_engine::log::TrustPolicy;
use allot_service::monitor::Monitor;
use allot_service::server::config::mint_token;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000_000)]
    entries: u64,
    /// Bytes per entry.
    #[arg(long, default_value_t = 128)]
    entry_bytes: usize,
    /// Keep the log in this folder (filled up to --entries once, reused by later runs).
    #[arg(long)]
    keep: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = args.keep.clone().unwrap_or_else(|| temp.path().join("log"));
    let started = Instant::now();
    let log = Arc::new(allot_benches::log::fill(
        &dir,
        args.entries,
        args.entry_bytes,
    ));
    println!(
        "log: {} entries of {} bytes ready in {:.1} s",
        log.size(),
        args.entry_bytes,
        started.elapsed().as_secs_f64()
    );
    let policy = TrustPolicy {
        log: log.verifier_key().clone(),
        witnesses: Vec::new(),
        quorum: 0,
    };
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let token = mint_token()?;
    let handle = allot_benches::start_server(
        &server_runtime,
        log,
        allot_service::server::Domains::default(),
        (&token, "monitor"),
        |c| c.tiles_listen = Some("127.0.0.1:0".parse().expect("an address")),
    )?;
    let tiles = format!("http://{}", handle.tiles_addr().expect("tiles are served"));
    let state = temp.path().join("monitor");
    let monitor = Monitor::new(&tiles, policy, &state)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let checked = runtime.block_on(monitor.check(&|_, _| {}))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "monitor: followed {} entries from scratch in {seconds:.1} s = {:.0} entries/s (tree \
         rebuilt from {} entry bundles, root matches the checkpoint)",
        checked.size,
        checked.size as f64 / seconds,
        checked.size.div_ceil(256)
    );
    Ok(())
}
