//! Criterion benches of the fair domain on a generated 20,000-applicant, 150-fair instance (the
//! shape of `../shared/anchors/gen/fair_gen.py`): reading the CSVs, each mechanism's solve, a
//! lottery draw, `allot fair run` end to end (read, close, draw, solve, write, log with fsync)
//! and 100 Monte Carlo draws of DA on all cores.

use std::hint::black_box;
use std::time::Duration;

use allot_engine::allocation::{Allocation, Beacon, RunRequest, monte_carlo};
use allot_engine::fair::{self, FairFiles, Fairs, Mechanism, Params};
use allot_engine::input::Table;
use allot_engine::log::{Log, LogOptions};
use allot_scenarios::fair_gen::{FairSpec, generate};
use allot_solvers::matching::Seed;
use criterion::{Criterion, criterion_group, criterion_main};

fn read(fairs: &str, applicants: &str) -> FairFiles {
    let f = Table::from_bytes("fairs.csv", fairs.as_bytes().to_vec()).expect("fairs");
    let a = Table::from_bytes("applicants.csv", applicants.as_bytes().to_vec()).expect("apps");
    fair::read_tables(&f, &a).expect("valid input")
}

fn fairs_20k(c: &mut Criterion) {
    let csv = generate(FairSpec {
        seed: 11,
        applicants: 20_000,
        fairs: 150,
    });
    let files = read(&csv.fairs, &csv.applicants);
    let input = &files.input;
    let params = |mechanism| Params {
        mechanism,
        ..Params::default()
    };
    let mut group = c.benchmark_group("fair-20k");
    group.bench_function("read_csv", |b| {
        b.iter(|| read(black_box(&csv.fairs), black_box(&csv.applicants)))
    });
    for mechanism in Mechanism::ALL {
        group.bench_function(format!("solve_{}", mechanism.name()), |b| {
            b.iter(|| Fairs::solve(black_box(input), &params(mechanism), None).expect("solves"))
        });
    }
    group.bench_function("solve_da_drawn_lottery", |b| {
        b.iter(|| Fairs::solve(input, &params(Mechanism::Da), Some(&Seed([3; 32]))).expect("ok"))
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("run_end_to_end_da", |b| {
        b.iter_with_large_drop(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let files = read(&csv.fairs, &csv.applicants);
            let request = RunRequest {
                log: &Log::open(dir.path().join("data"), LogOptions::default())
                    .expect("open the log"),
                beacon: None,
                actor: "bench",
                out: &dir.path().join("out"),
            };
            fair::run(&files, &params(Mechanism::Da), &request, &mut |_| {}).expect("runs");
            dir
        })
    });
    let drawn = read(
        &csv.fairs,
        &csv.applicants
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{},{},{},{}\n", f[0], f[1], f[2], f[4])
            })
            .collect::<String>(),
    );
    let beacon = Beacon {
        source: "bench".into(),
        round: 1,
        value: vec![1, 2, 3],
    };
    group.bench_function("run_end_to_end_welfare_drawn", |b| {
        b.iter_with_large_drop(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let request = RunRequest {
                log: &Log::open(dir.path().join("data"), LogOptions::default())
                    .expect("open the log"),
                beacon: Some(&beacon),
                actor: "bench",
                out: &dir.path().join("out"),
            };
            fair::run(&drawn, &params(Mechanism::Welfare), &request, &mut |_| {}).expect("runs");
            dir
        })
    });
    group.bench_function("monte_carlo_100_draws_da", |b| {
        b.iter(|| {
            monte_carlo::<Fairs, _>(
                input,
                &params(Mechanism::Da),
                &Seed([5; 32]),
                100,
                |_, s| s.position.iter().flatten().count(),
            )
            .expect("draws")
        })
    });
    group.finish();
}

criterion_group!(benches, fairs_20k);
criterion_main!(benches);
