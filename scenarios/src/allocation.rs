//! Fairs and schools as Monte Carlo over lottery seeds: each run draws every participant's lottery
//! number from its own seed (the engine's [`draw_seed`] of a base seed and the run's index) and
//! solves the allocation with the variant's mechanism. A variant sees the same draws as the
//! baseline.

use allot_engine::allocation::{Allocation, draw_seed};
use allot_engine::fair::{self, FairInput, Fairs};
use allot_engine::school::{self, SchoolInput, Schools};
use allot_solvers::matching::Seed;
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// The base lottery seed of a domain for a master seed.
pub(crate) fn base_seed(master: u64, domain: &str) -> Seed {
    let mut h = Sha256::new();
    h.update(b"allot/scenarios/v1");
    h.update(master.to_be_bytes());
    h.update(domain.as_bytes());
    Seed(h.finalize().into())
}

/// What one allocation achieved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AllocOutcome {
    pub participants: u64,
    pub places: u64,
    pub placed: u64,
    /// Fairs: placed per tier.
    pub placed_per_tier: [u64; 3],
    /// Placed at their `r`-th choice, at index `r - 1`.
    pub rank_counts: Vec<u64>,
    /// Schools only.
    pub justified_envy: u64,
    pub blocking_pairs: u64,
}

impl AllocOutcome {
    pub fn unplaced(&self) -> u64 {
        self.participants - self.placed
    }

    /// Share of all participants placed at their first choice.
    pub fn first_choice_share(&self) -> f64 {
        self.rank_counts.first().copied().unwrap_or(0) as f64 / self.participants.max(1) as f64
    }

    /// Mean rank of the placed participants (1 is the first choice).
    pub fn mean_rank(&self) -> f64 {
        let sum: u64 = self
            .rank_counts
            .iter()
            .enumerate()
            .map(|(r, &n)| (r as u64 + 1) * n)
            .sum();
        sum as f64 / self.placed.max(1) as f64
    }
}

pub(crate) fn fair_run(
    input: &FairInput,
    params: &fair::Params,
    base: &Seed,
    run: u64,
    variant: &str,
) -> Result<AllocOutcome, Error> {
    let solved = Fairs::solve(input, params, Some(&draw_seed(base, run))).map_err(|source| {
        Error::Allocation {
            variant: variant.to_owned(),
            source,
        }
    })?;
    let st = fair::stats(input, &solved);
    Ok(AllocOutcome {
        participants: input.applicants.len() as u64,
        places: input.total_stalls(),
        placed: st.placed(),
        placed_per_tier: st.placed_per_tier,
        rank_counts: st.rank_counts,
        justified_envy: 0,
        blocking_pairs: 0,
    })
}

pub(crate) fn school_run(
    input: &SchoolInput,
    params: &school::Params,
    base: &Seed,
    run: u64,
    variant: &str,
) -> Result<AllocOutcome, Error> {
    let err = |source| Error::Allocation {
        variant: variant.to_owned(),
        source,
    };
    let solved = Schools::solve(input, params, Some(&draw_seed(base, run))).map_err(err)?;
    let st = school::stats(input, &solved).map_err(err)?;
    Ok(AllocOutcome {
        participants: st.students,
        places: input.total_seats(),
        placed: st.assigned,
        placed_per_tier: [0; 3],
        rank_counts: st.rank_counts,
        justified_envy: st.justified_envy,
        blocking_pairs: st.blocking_pairs,
    })
}
