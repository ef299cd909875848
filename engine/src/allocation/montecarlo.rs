//! Monte Carlo over lottery draws, for planners: the same input and parameters, many seeds.

use allot_solvers::matching::Seed;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::{Allocation, Result};

/// The seed of draw `index` from a base seed: SHA-256(base || "allot/draw/v1" || index as u64
/// big-endian). Draw seeds are independent of each other and of the thread that runs them.
pub fn draw_seed(base: &Seed, index: u64) -> Seed {
    let mut hash = Sha256::new();
    hash.update(base.0);
    hash.update(b"allot/draw/v1");
    hash.update(index.to_be_bytes());
    Seed(hash.finalize().into())
}

/// Solves `input` once per draw `0..draws`, with lottery numbers drawn from
/// [`draw_seed`]`(base, i)`, in parallel on rayon's pool, and returns `measure` of each draw in
/// draw order. The result does not depend on the number of threads: each draw depends only on
/// its index, and the results are collected in index order. Fails with the first draw's error.
pub fn monte_carlo<A: Allocation, T: Send>(
    input: &A::Input,
    params: &A::Params,
    base: &Seed,
    draws: u64,
    measure: impl Fn(&A::Input, &A::Solved) -> T + Sync,
) -> Result<Vec<T>> {
    (0..draws)
        .into_par_iter()
        .map(|i| {
            let solved = A::solve(input, params, Some(&draw_seed(base, i)))?;
            Ok(measure(input, &solved))
        })
        .collect()
}

/// A summary of one figure over many draws.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Distribution {
    pub mean: f64,
    pub min: f64,
    /// 5th, 50th and 95th percentiles (nearest rank).
    pub p5: f64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl Distribution {
    /// The distribution of `values`; all zero when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Distribution {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Distribution {
                mean: 0.0,
                min: 0.0,
                p5: 0.0,
                p50: 0.0,
                p95: 0.0,
                max: 0.0,
            };
        }
        v.sort_unstable_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Distribution {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v[0],
            p5: rank(0.05),
            p50: rank(0.5),
            p95: rank(0.95),
            max: v[v.len() - 1],
        }
    }
}
