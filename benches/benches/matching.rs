//! Criterion benches of the matching mechanisms on generated school markets (the shape of
//! `../shared/anchors/gen/school_gen.py`): 100,000 students x 1,000 schools x up to 12 choices,
//! and deferred acceptance at the Chilean national size, 563,000 x 7,900. With reserves: every
//! fifth school reserves half its seats for its walk zone, processed first or last; and the
//! block machinery alone (reserves with no reserved block).

use std::hint::black_box;
use std::time::Duration;

use allot_scenarios::school_gen::{SchoolSpec, generate, walk_zone_reserves};
use allot_solvers::matching::{self, Reserves, SerialOrder};
use criterion::{Criterion, criterion_group, criterion_main};

fn nyc_size(c: &mut Criterion) {
    let generated = generate(SchoolSpec {
        seed: 7,
        students: 100_000,
        schools: 1_000,
        max_choices: 12,
    });
    let market = &generated.market;
    let order = SerialOrder::by_keys(&generated.lotteries).expect("a lottery permutation");
    let walk_first = walk_zone_reserves(market, true);
    let walk_last = walk_zone_reserves(market, false);
    let no_reserved_block = Reserves::with_key_classes(market, []).expect("valid classes");
    let mut group = c.benchmark_group("matching-100k");
    group.bench_function("deferred_acceptance", |b| {
        b.iter(|| matching::deferred_acceptance(black_box(market)))
    });
    group.bench_function("da_reserves_walk_first", |b| {
        b.iter(|| matching::deferred_acceptance_with_reserves(black_box(&walk_first)))
    });
    group.bench_function("da_reserves_walk_last", |b| {
        b.iter(|| matching::deferred_acceptance_with_reserves(black_box(&walk_last)))
    });
    group.bench_function("da_reserves_no_reserved_block", |b| {
        b.iter(|| matching::deferred_acceptance_with_reserves(black_box(&no_reserved_block)))
    });
    group.bench_function("school_proposing_da_reserves_walk_first", |b| {
        b.iter(|| {
            matching::school_proposing_deferred_acceptance_with_reserves(black_box(&walk_first))
        })
    });
    group.bench_function("immediate_acceptance_reserves_walk_first", |b| {
        b.iter(|| matching::immediate_acceptance_with_reserves(black_box(&walk_first)))
    });
    group.bench_function("school_proposing_da", |b| {
        b.iter(|| matching::school_proposing_deferred_acceptance(black_box(market)))
    });
    group.bench_function("top_trading_cycles", |b| {
        b.iter(|| matching::top_trading_cycles(black_box(market)))
    });
    group.bench_function("immediate_acceptance", |b| {
        b.iter(|| matching::immediate_acceptance(black_box(market)))
    });
    group.bench_function("serial_dictatorship", |b| {
        b.iter(|| matching::serial_dictatorship(black_box(market), &order))
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("efficiency_adjusted_da", |b| {
        b.iter(|| matching::efficiency_adjusted_deferred_acceptance(black_box(market)))
    });
    group.finish();
}

fn chile_size(c: &mut Criterion) {
    let generated = generate(SchoolSpec {
        seed: 7,
        students: 563_000,
        schools: 7_900,
        max_choices: 12,
    });
    let market = &generated.market;
    let mut group = c.benchmark_group("matching-chile");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("deferred_acceptance", |b| {
        b.iter(|| matching::deferred_acceptance(black_box(market)))
    });
    group.finish();
}

criterion_group!(benches, nyc_size, chile_size);
criterion_main!(benches);
