//! Decision-log benchmarks (see benches/README.md, "Decision log"):
//! durable appends, proofs and roots at 1,000,000 entries, full verification, reopening.
//!
//! cargo bench -p allot-benches --bench log
//! Concurrent-writer throughput is measured by the `log_load` runner instead.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use allot_benches::log::{fill, record};
use allot_engine::log::verify::verify;
use allot_engine::log::{Entry, Log, LogOptions, Record};
use criterion::{BatchSize, Criterion, criterion_group};

const ENTRY_BYTES: usize = 256;
const MILLION: u64 = 1_000_000;

/// The folder of the 1,000,000-entry log; statics are never dropped, so `main` removes it.
static MILLION_DIR: Mutex<Option<tempfile::TempDir>> = Mutex::new(None);

/// A closed log of 1,000,000 entries of 256 bytes, made once per run.
fn million() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let log = fill(dir.path(), MILLION, ENTRY_BYTES);
        log.sign_checkpoint().expect("checkpoint");
        log.close().expect("close");
        let path = dir.path().to_owned();
        *MILLION_DIR.lock().expect("fixture lock") = Some(dir);
        path
    })
}

fn appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("log");
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().expect("temporary folder");
    let log = Log::open(dir.path(), LogOptions::default()).expect("open");
    // The first commit zero-fills the segment: keep it out of the measurement.
    log.append(&record(0, ENTRY_BYTES)).expect("append");
    let one = record(1, ENTRY_BYTES);
    g.bench_function("append_durable_256B", |b| {
        b.iter(|| log.append(black_box(&one)).expect("append"))
    });
    let batch: Vec<Record> = (0..1000).map(|n| record(n, ENTRY_BYTES)).collect();
    g.bench_function("append_batch_1000x256B", |b| {
        b.iter(|| log.append_batch(black_box(&batch)).expect("append"))
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let log = Log::open_read_only(million()).expect("open");
    let size = log.size();
    let mut g = c.benchmark_group("log_1m");
    let mut i = 0u64;
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| {
            // Spread over the tree, so reads are not all of the same nodes.
            i = (i + 7919) % size;
            log.inclusion_proof(black_box(i), size).expect("proof")
        })
    });
    let mut m = 0u64;
    g.bench_function("consistency_proof", |b| {
        b.iter(|| {
            m = 1 + (m + 104_729) % (size - 1);
            log.consistency_proof(black_box(m), size).expect("proof")
        })
    });
    g.bench_function("root_at_size", |b| {
        b.iter(|| {
            m = 1 + (m + 104_729) % (size - 1);
            log.root_at(black_box(m)).expect("root")
        })
    });
    g.bench_function("read_entry", |b| {
        b.iter(|| {
            i = (i + 7919) % size;
            log.entry(black_box(i)).expect("entry")
        })
    });
    g.finish();
}

fn whole_log(c: &mut Criterion) {
    let dir = million();
    let mut g = c.benchmark_group("log_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("verify", |b| {
        b.iter(|| verify(black_box(dir)).expect("verify"))
    });
    g.bench_function("open_read_only", |b| {
        b.iter(|| Log::open_read_only(black_box(dir)).expect("open"))
    });
    g.bench_function("open_for_writing", |b| {
        b.iter_batched(
            || (),
            |()| {
                Log::open(dir, LogOptions::default())
                    .expect("open")
                    .close()
                    .expect("close")
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("entry");
    let r = record(42, ENTRY_BYTES);
    let bytes = r.encode(42).expect("encode");
    g.bench_function("encode_256B", |b| {
        b.iter(|| black_box(&r).encode(42).expect("encode"))
    });
    g.bench_function("decode_256B", |b| {
        b.iter(|| Entry::decode(black_box(&bytes)).expect("decode"))
    });
    g.finish();
}

criterion_group!(benches, encoding, appends, proofs, whole_log);

// criterion_main!, plus removing the fixture.
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    drop(MILLION_DIR.lock().map(|mut dir| dir.take()));
}
