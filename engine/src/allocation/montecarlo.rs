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

/// Where the lottery numbers of a comparison of mechanisms come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lottery {
    /// One allocation per mechanism: with the input's own numbers (`None`) or numbers drawn
    /// from the seed.
    Once(Option<Seed>),
    /// `draws` allocations per mechanism, seeded by [`draw_seed`]`(base, i)`.
    Draws { base: Seed, draws: u64 },
}

impl Lottery {
    /// The lottery of a comparison on the set `set_digest`: `drawn` says why the numbers are
    /// drawn (e.g. "no `lottery` column"), `None` when the input has its own. Seeds derive from
    /// [`super::lottery_seed`]`(set digest, beacon value)` (an empty value without a beacon).
    pub fn choose(
        set_digest: &super::Digest,
        drawn: Option<&str>,
        beacon: Option<&[u8]>,
        draws: Option<u64>,
    ) -> Result<Lottery> {
        let base = super::lottery_seed(set_digest, beacon.unwrap_or_default());
        match (draws, drawn, beacon) {
            (Some(0), ..) => Err(super::Error::Request("--draws: give at least 1".into())),
            (Some(draws), ..) => Ok(Lottery::Draws { base, draws }),
            (None, Some(_), Some(_)) => Ok(Lottery::Once(Some(base))),
            (None, None, None) => Ok(Lottery::Once(None)),
            (None, None, Some(_)) => Err(super::Error::Request(
                "the input has its own lottery numbers: --beacon is only used when they are \
                 drawn (or with --draws)"
                    .into(),
            )),
            (None, Some(why), None) => Err(super::Error::Request(format!(
                "the lottery numbers are drawn here ({why}): give --beacon HEX to draw them, or \
                 --draws N"
            ))),
        }
    }

    /// The number of draws, when there are several.
    pub fn draws(&self) -> Option<u64> {
        match self {
            Lottery::Once(_) => None,
            Lottery::Draws { draws, .. } => Some(*draws),
        }
    }

    /// Each mechanism's figures under this lottery: one allocation, or one per draw.
    pub fn each<A: Allocation, T: Send>(
        &self,
        input: &A::Input,
        params: &A::Params,
        measure: impl Fn(&A::Input, &A::Solved) -> T + Sync,
    ) -> Result<Vec<T>> {
        match self {
            Lottery::Once(seed) => Ok(vec![measure(
                input,
                &A::solve(input, params, seed.as_ref())?,
            )]),
            Lottery::Draws { base, draws } => {
                monte_carlo::<A, T>(input, params, base, *draws, measure)
            }
        }
    }
}

/// Mechanisms side by side on one input, as a planner compares them: per mechanism, per
/// allocation (one, or one per lottery draw), its figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// E.g. "20000 applicants".
    pub title: String,
    /// The figures' names; `solve seconds` is a time, the others are counts.
    pub labels: Vec<String>,
    /// Per mechanism: its name and, per allocation, its figures in the order of `labels`.
    pub columns: Vec<(String, Vec<Vec<f64>>)>,
    /// `Some(n)` for n lottery draws per mechanism.
    pub draws: Option<u64>,
}

impl Comparison {
    /// Each figure's distribution over the allocations, per mechanism.
    pub fn distributions(&self) -> Vec<(&str, Vec<Distribution>)> {
        (self.columns.iter())
            .map(|(name, runs)| {
                let figures = (0..self.labels.len())
                    .map(|f| Distribution::of(runs.iter().map(|v| v[f])))
                    .collect();
                (name.as_str(), figures)
            })
            .collect()
    }
}
