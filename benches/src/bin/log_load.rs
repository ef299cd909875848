//! Durable-append load on the decision log: N writer threads, each appending and waiting for its
//! fsync before the next append. Prints throughput, fsyncs and latency percentiles.
//!
//! cargo run --release -p allot-benches --bin log_load -- --writers 64 --seconds 5
//! cargo run --release -p allot-benches --bin log_load -- --writers 1 --seconds 5

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use allot_benches::log::record;
use allot_engine::log::{Log, LogOptions, Record};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Durable-append load on the decision log")]
struct Args {
    /// Concurrent writer threads.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// How long to append for.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Stop after this many entries instead (e.g. to fill a log for `allot audit`).
    #[arg(long)]
    entries: Option<u64>,
    /// Canonical entry size in bytes.
    #[arg(long, default_value_t = 256)]
    entry_bytes: usize,
    /// Entries per append (1 = single appends; more = all-or-nothing batches).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Group commit's maximum wait, in microseconds (the log's default is 0).
    #[arg(long, default_value_t = 0)]
    max_wait_us: u64,
    /// Segment size in MiB (a new, zero-filled segment is prepared in the background whenever
    /// the current one is half full).
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Run the writers as async tasks on a tokio runtime with this many threads, awaiting their
    /// tickets (as a gRPC server would), instead of one thread per writer.
    #[arg(long, value_name = "THREADS")]
    tasks_on: Option<usize>,
    /// Log folder to use and keep (default: a temporary folder, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// p50 and p99 of a raw 4 KiB overwrite + fdatasync in `dir`, in microseconds: what the disk
/// allows right now (it varies with the machine's other load), to read the results against.
fn raw_fdatasync(dir: &std::path::Path) -> (f64, f64) {
    use std::os::unix::fs::FileExt;
    std::fs::create_dir_all(dir).expect("create the folder");
    let path = dir.join("fdatasync-probe");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("probe file");
    file.write_all_at(&vec![0u8; 1 << 20], 0).expect("write");
    file.sync_all().expect("sync");
    let mut times: Vec<f64> = (0..200u64)
        .map(|i| {
            let t = Instant::now();
            file.write_all_at(&[1u8; 4096], (i % 256) * 4096)
                .expect("write");
            file.sync_data().expect("sync");
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    times.sort_by(f64::total_cmp);
    (times[100], times[198])
}

type Shared = (Arc<Log>, Arc<AtomicBool>, Arc<std::sync::atomic::AtomicI64>);

fn writer_records(w: usize, args: &Args) -> Vec<Record> {
    // Built once: the load measures the log, not the making of records (each entry still
    // differs from the others by its index).
    let n = (w as u64) << 40;
    (0..args.batch as u64)
        .map(|k| record(n + k, args.entry_bytes))
        .collect()
}

/// Whether a writer should append again (time left, and entries left if `--entries`).
fn again((_, stop, budget): &Shared, batch: usize) -> bool {
    !stop.load(Ordering::Relaxed)
        && budget.fetch_sub(batch as i64, Ordering::Relaxed) >= batch as i64
}

/// One thread per writer, each blocking in `append_batch`.
fn run_threads(
    args: &Args,
    log: &Arc<Log>,
    stop: &Arc<AtomicBool>,
    budget: &Arc<std::sync::atomic::AtomicI64>,
) -> Vec<u64> {
    let workers: Vec<_> = (0..args.writers)
        .map(|w| {
            let shared: Shared = (log.clone(), stop.clone(), budget.clone());
            let (records, batch) = (writer_records(w, args), args.batch);
            thread::spawn(move || {
                let mut latencies = Vec::with_capacity(1 << 16);
                while again(&shared, batch) {
                    let t = Instant::now();
                    shared.0.append_batch(&records).expect("append");
                    latencies.push(t.elapsed().as_nanos() as u64);
                }
                latencies
            })
        })
        .collect();
    wait_then_stop(args, stop);
    workers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect()
}

/// One async task per writer on a small tokio runtime, each awaiting its ticket.
fn run_tasks(
    args: &Args,
    log: &Arc<Log>,
    stop: &Arc<AtomicBool>,
    budget: &Arc<std::sync::atomic::AtomicI64>,
    threads: usize,
) -> Vec<u64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("tokio runtime");
    let tasks: Vec<_> = (0..args.writers)
        .map(|w| {
            let shared: Shared = (log.clone(), stop.clone(), budget.clone());
            let (records, batch) = (writer_records(w, args), args.batch);
            runtime.spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                while again(&shared, batch) {
                    let t = Instant::now();
                    shared
                        .0
                        .submit(&records)
                        .expect("submit")
                        .await
                        .expect("append");
                    latencies.push(t.elapsed().as_nanos() as u64);
                }
                latencies
            })
        })
        .collect();
    wait_then_stop(args, stop);
    runtime.block_on(async {
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("writer task"));
        }
        all
    })
}

fn wait_then_stop(args: &Args, stop: &AtomicBool) {
    if args.entries.is_none() {
        thread::sleep(Duration::from_secs_f64(args.seconds));
        stop.store(true, Ordering::Relaxed);
    }
}

/// User and system CPU seconds this process has used (Linux /proc; zero elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
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

fn main() {
    let args = Args::parse();
    let temp = tempfile::tempdir().expect("temporary folder");
    let dir = args.data.clone().unwrap_or_else(|| temp.path().to_owned());
    let (fsync_p50, fsync_p99) = raw_fdatasync(&dir);
    let options = LogOptions {
        max_group_wait: Duration::from_micros(args.max_wait_us),
        segment_bytes: args.segment_mib << 20,
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(&dir, options).expect("open the log"));
    let start_size = log.size();
    let stop = Arc::new(AtomicBool::new(false));
    // Appends still to do when --entries is given.
    let budget = Arc::new(std::sync::atomic::AtomicI64::new(
        args.entries.map_or(i64::MAX, |n| n as i64),
    ));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let latencies = match args.tasks_on {
        None => run_threads(&args, &log, &stop, &budget),
        Some(threads) => run_tasks(&args, &log, &stop, &budget, threads),
    };
    let mut latencies = latencies;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let entries = log.size() - start_size;
    let stats = log.stats();
    let commits = stats.commits;
    let cycle = elapsed / commits.max(1) as f64 * 1e6;
    let sync = stats.sync_nanos as f64 / commits.max(1) as f64 / 1000.0;
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let how = match args.tasks_on {
        Some(n) => format!("async tasks on {n} threads"),
        None => "threads".to_owned(),
    };
    println!(
        "writers {} ({how}) x {}-entry appends of {} B, max wait {} us: {entries} entries in {elapsed:.2} s = {:.0} entries/s",
        args.writers,
        args.batch,
        args.entry_bytes,
        args.max_wait_us,
        entries as f64 / elapsed
    );
    println!(
        "raw fdatasync now: p50 {fsync_p50:.0} us, p99 {fsync_p99:.0} us (ceiling for {} one-entry writers: {:.0} entries/s)",
        args.writers,
        (args.writers * args.batch) as f64 / (fsync_p50 / 1e6)
    );
    println!(
        "fsyncs {commits} ({:.1} entries each); per group: {cycle:.0} us, of which fdatasync {sync:.0} us",
        entries as f64 / commits.max(1) as f64,
    );
    println!(
        "CPU used {cpu:.2} s = {:.1} us per entry (with 2 cores to itself the process could do about {:.0} entries/s)",
        cpu / entries.max(1) as f64 * 1e6,
        2.0 * entries as f64 / cpu.max(1e-9)
    );
    println!(
        "append latency us: p50 {:.0} p90 {:.0} p99 {:.0} p99.9 {:.0} max {:.0}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}
