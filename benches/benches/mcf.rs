//! Min-cost flow on the four `mcf_gen` families (scale 1): a cold solve, and a warm re-solve after
//! changing about 1% of the arc costs (the use the anchors lack: re-balancing, scenario sweeps).

use std::hint::black_box;
use std::time::Duration;

use allot_benches::mcf_gen::{Family, generate};
use allot_solvers::mcf::{self, ArcId, Network, Solver};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Changes about 1% of the costs of `solver`'s network by a factor in [0.5, 1.5).
fn perturb(solver: &mut Solver, rng: &mut ChaCha8Rng) {
    let m = solver.network().arc_count();
    for _ in 0..(m / 100).max(1) {
        let arc = ArcId(rng.random_range(0..m) as u32);
        let Some(a) = solver.network().arc(arc) else {
            continue;
        };
        let factor = rng.random_range(0.5..1.5);
        let _ = solver.set_cost(arc, (a.cost as f64 * factor).round() as i64);
    }
}

fn bench_mcf(c: &mut Criterion) {
    let networks: Vec<(Family, Network)> = Family::ALL
        .iter()
        .map(|&f| (f, generate(f, 1, 1.0)))
        .collect();

    let mut cold = c.benchmark_group("mcf/cold");
    cold.sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (family, net) in &networks {
        cold.bench_function(family.name(), |b| {
            b.iter(|| mcf::solve(black_box(net)).map(|s| s.cost))
        });
    }
    cold.finish();

    let mut warm = c.benchmark_group("mcf/warm-1pct-costs");
    warm.sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for (family, net) in &networks {
        let mut solved = Solver::new(net.clone()).expect("generated networks are valid");
        solved.solve().expect("generated networks are feasible");
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        warm.bench_function(family.name(), |b| {
            b.iter_batched(
                || {
                    let mut s = solved.clone();
                    perturb(&mut s, &mut rng);
                    s
                },
                |mut s| s.solve().map(|s| s.cost),
                BatchSize::LargeInput,
            )
        });
    }
    warm.finish();
}

criterion_group!(benches, bench_mcf);
criterion_main!(benches);
