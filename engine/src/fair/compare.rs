//! Planners' view: mechanisms side by side on one input, once or over many lottery draws.

use allot_solvers::matching::Seed;

use super::{FairInput, FairSolved, Fairs, Mechanism, Params, Precedence};
use crate::allocation::{Allocation, Comparison, Lottery, Result, monte_carlo};

/// What one allocation achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub applicants_per_tier: [u64; 3],
    pub placed_per_tier: [u64; 3],
    /// Applicants placed at the fair they ranked `r`, at index `r - 1`.
    pub rank_counts: Vec<u64>,
    pub unplaced: u64,
    pub rank2_sum: u64,
    pub solve_seconds: f64,
}

impl Stats {
    pub fn placed(&self) -> u64 {
        self.placed_per_tier.iter().sum()
    }
}

/// The statistics of a solved allocation.
pub fn stats(input: &FairInput, solved: &FairSolved) -> Stats {
    stats_with(input, solved, &solved.position)
}

/// The statistics of another assignment (pool-list positions) of the same market.
pub fn stats_with(input: &FairInput, solved: &FairSolved, position: &[Option<u32>]) -> Stats {
    let mut s = Stats {
        applicants_per_tier: [0; 3],
        placed_per_tier: [0; 3],
        rank_counts: Vec::new(),
        unplaced: 0,
        rank2_sum: 0,
        solve_seconds: solved.solve_seconds,
    };
    for (i, a) in input.applicants.iter().enumerate() {
        let tier = usize::from(a.tier.min(2));
        s.applicants_per_tier[tier] += 1;
        match position[i].map(|p| solved.rank_at(i as u32, p)) {
            Some(rank) => {
                s.placed_per_tier[tier] += 1;
                let r = rank as usize;
                if s.rank_counts.len() < r {
                    s.rank_counts.resize(r, 0);
                }
                s.rank_counts[r - 1] += 1;
                s.rank2_sum += u64::from(rank) * u64::from(rank);
            }
            None => s.unplaced += 1,
        }
    }
    s
}

/// Each mechanism once on `input`, with its own lottery numbers (`seed: None`) or numbers drawn
/// from `seed`.
pub fn compare(
    input: &FairInput,
    mechanisms: &[Mechanism],
    precedence: Precedence,
    seed: Option<&Seed>,
) -> Result<Vec<(Mechanism, Stats)>> {
    mechanisms
        .iter()
        .map(|&mechanism| {
            let params = Params {
                mechanism,
                precedence,
            };
            let solved = Fairs::solve(input, &params, seed)?;
            Ok((mechanism, stats(input, &solved)))
        })
        .collect()
}

/// Each mechanism over `draws` lottery draws from `base` (see
/// [`crate::allocation::monte_carlo`]): the statistics of every draw, in draw order. Every
/// mechanism sees the same draws.
pub fn compare_draws(
    input: &FairInput,
    mechanisms: &[Mechanism],
    precedence: Precedence,
    base: &Seed,
    draws: u64,
) -> Result<Vec<(Mechanism, Vec<Stats>)>> {
    mechanisms
        .iter()
        .map(|&mechanism| {
            let params = Params {
                mechanism,
                precedence,
            };
            let all = monte_carlo::<Fairs, _>(input, &params, base, draws, stats)?;
            Ok((mechanism, all))
        })
        .collect()
}

/// The figures planners compare fair mechanisms on, as a table: `mechanisms` (none: all three)
/// under `lottery`.
pub fn comparison(
    input: &FairInput,
    mechanisms: &[Mechanism],
    precedence: Precedence,
    lottery: &Lottery,
) -> Result<Comparison> {
    let mechanisms = if mechanisms.is_empty() {
        &Mechanism::ALL[..]
    } else {
        mechanisms
    };
    let columns = (mechanisms.iter())
        .map(|&mechanism| {
            let params = Params {
                mechanism,
                precedence,
            };
            Ok((
                mechanism.name(),
                lottery.each::<Fairs, _>(input, &params, stats)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let ranks = (columns.iter().flat_map(|(_, s)| s))
        .map(|s| s.rank_counts.len())
        .max()
        .unwrap_or(0);
    let mut labels = vec!["placed".to_owned()];
    labels.extend((0..3).map(|t| format!("  tier {t} ({})", super::TIERS[t])));
    labels.extend((1..=ranks).map(|r| format!("at choice {r}")));
    labels.extend(["not placed", "sum of rank²", "solve seconds"].map(String::from));
    let figures = |s: &Stats| {
        let mut v = vec![s.placed() as f64];
        v.extend(s.placed_per_tier.iter().map(|&n| n as f64));
        v.extend((0..ranks).map(|r| s.rank_counts.get(r).copied().unwrap_or(0) as f64));
        v.extend([s.unplaced as f64, s.rank2_sum as f64, s.solve_seconds]);
        v
    };
    Ok(Comparison {
        title: format!("{} applicants", input.applicants.len()),
        labels,
        columns: (columns.into_iter())
            .map(|(name, runs)| (name.to_owned(), runs.iter().map(figures).collect()))
            .collect(),
        draws: lottery.draws(),
    })
}
