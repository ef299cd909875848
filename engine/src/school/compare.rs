//! Planners' view: mechanisms side by side on one input, once or over many lottery draws.

use allot_solvers::matching::{Matching, Pair, Seed};

use super::solve::reserves;
use super::{Mechanism, Params, ReserveOrder, SchoolInput, SchoolSolved, Schools, TieBreaking};
use crate::allocation::{Allocation, Comparison, Error, Lottery, Result, monte_carlo};

/// What one allocation achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub students: u64,
    pub assigned: u64,
    pub unassigned: u64,
    /// Students assigned their `r`-th choice at index `r - 1` (the NYC rank table).
    pub rank_counts: Vec<u64>,
    /// (student, school) pairs where the student prefers the school to its assignment and the
    /// school would take it: it has a free seat (in a block open to the student, with reserves)
    /// or holds a student it ranks lower there. Zero exactly when the matching is stable.
    pub blocking_pairs: u64,
    /// (student, school) pairs where the student prefers the school and has a higher priority
    /// there than a student the school holds, ignoring reserves (reserves create such envy on
    /// purpose).
    pub justified_envy: u64,
    pub solve_seconds: f64,
}

/// The statistics of a solved allocation.
pub fn stats(input: &SchoolInput, solved: &SchoolSolved) -> Result<Stats> {
    stats_with(input, solved, &solved.position, &[])
}

/// The statistics of the assignment `position` (per student, the position in its list of the
/// school it holds: a run's with the seats given back since and their re-offers); students in
/// `withdrawn` (sorted) gave their seat back and are counted in no blocking pair or envy.
pub fn stats_with(
    input: &SchoolInput,
    solved: &SchoolSolved,
    position: &[Option<u32>],
    withdrawn: &[u32],
) -> Result<Stats> {
    let market = &solved.market;
    let assignment: Vec<Option<u32>> = (0..input.students.len() as u32)
        .map(|i| Some(market.list(i)[position[i as usize]? as usize]))
        .collect();
    let matching = Matching::new(market, &assignment)
        .map_err(|e| Error::Unsupported(format!("the allocation is not feasible: {e}")))?;
    let counted = |pairs: Vec<Pair>| {
        pairs
            .iter()
            .filter(|p| withdrawn.binary_search(&p.student).is_err())
            .count() as u64
    };
    let blocking = match reserves(solved)? {
        Some(reserves) => counted(
            reserves
                .blocking_pairs(&matching)
                .map_err(|e| Error::Unsupported(e.to_string()))?,
        ),
        None if withdrawn.is_empty() => matching.count_blocking_pairs() as u64,
        None => counted(matching.blocking_pairs()),
    };
    let justified_envy = if withdrawn.is_empty() {
        matching.count_justified_envy() as u64
    } else {
        counted(matching.justified_envy())
    };
    let mut rank_counts = Vec::new();
    for r in position.iter().flatten() {
        let r = *r as usize;
        if rank_counts.len() <= r {
            rank_counts.resize(r + 1, 0);
        }
        rank_counts[r] += 1;
    }
    let assigned = matching.num_matched() as u64;
    Ok(Stats {
        students: input.students.len() as u64,
        assigned,
        unassigned: input.students.len() as u64 - assigned,
        rank_counts,
        blocking_pairs: blocking,
        justified_envy,
        solve_seconds: solved.solve_seconds,
    })
}

fn params(mechanism: Mechanism, tie_breaking: TieBreaking, reserve_order: ReserveOrder) -> Params {
    Params {
        mechanism,
        tie_breaking,
        reserve_order,
    }
}

fn check_reserves(input: &SchoolInput, mechanism: Mechanism) -> Result<()> {
    if !input.reserves.is_empty() && !mechanism.supports_reserves() {
        return Err(Error::Unsupported(format!(
            "{} does not support seat reserves (da, school-da and boston do)",
            mechanism.name()
        )));
    }
    Ok(())
}

/// Each mechanism once on `input`, with the input's lottery numbers (`seed: None`) or numbers
/// drawn from `seed`.
pub fn compare(
    input: &SchoolInput,
    mechanisms: &[Mechanism],
    tie_breaking: TieBreaking,
    reserve_order: ReserveOrder,
    seed: Option<&Seed>,
) -> Result<Vec<(Mechanism, Stats)>> {
    mechanisms
        .iter()
        .map(|&m| {
            let p = params(m, tie_breaking, reserve_order);
            check_reserves(input, m)?;
            let solved = Schools::solve(input, &p, seed)?;
            Ok((m, stats(input, &solved)?))
        })
        .collect()
}

/// Each mechanism over `draws` lottery draws from `base` (see
/// [`crate::allocation::monte_carlo`]): the statistics of every draw, in draw order.
pub fn compare_draws(
    input: &SchoolInput,
    mechanisms: &[Mechanism],
    tie_breaking: TieBreaking,
    reserve_order: ReserveOrder,
    base: &Seed,
    draws: u64,
) -> Result<Vec<(Mechanism, Vec<Stats>)>> {
    mechanisms
        .iter()
        .map(|&m| {
            let p = params(m, tie_breaking, reserve_order);
            check_reserves(input, m)?;
            let all = monte_carlo::<Schools, _>(input, &p, base, draws, stats)?;
            Ok((m, all.into_iter().collect::<Result<Vec<_>>>()?))
        })
        .collect()
}

/// The figures planners compare school mechanisms on, as a table: `mechanisms` (none: all
/// five, or with reserves the three that support them) under `lottery`.
pub fn comparison(
    input: &SchoolInput,
    mechanisms: &[Mechanism],
    tie_breaking: TieBreaking,
    reserve_order: ReserveOrder,
    lottery: &Lottery,
) -> Result<Comparison> {
    let all: Vec<Mechanism> = (Mechanism::ALL.into_iter())
        .filter(|m| input.reserves.is_empty() || m.supports_reserves())
        .collect();
    let mechanisms = if mechanisms.is_empty() {
        &all[..]
    } else {
        mechanisms
    };
    let columns = (mechanisms.iter())
        .map(|&m| {
            check_reserves(input, m)?;
            let p = params(m, tie_breaking, reserve_order);
            let runs = lottery.each::<Schools, _>(input, &p, stats)?;
            Ok((m.name(), runs.into_iter().collect::<Result<Vec<_>>>()?))
        })
        .collect::<Result<Vec<_>>>()?;
    let ranks = (columns.iter().flat_map(|(_, s)| s))
        .map(|s| s.rank_counts.len())
        .max()
        .unwrap_or(0);
    let mut labels = vec!["assigned".to_owned()];
    labels.extend((1..=ranks).map(|r| format!("at choice {r}")));
    let last = [
        "unassigned",
        "blocking pairs",
        "justified envy",
        "solve seconds",
    ];
    labels.extend(last.map(String::from));
    let figures = |s: &Stats| {
        let mut v = vec![s.assigned as f64];
        v.extend((0..ranks).map(|r| s.rank_counts.get(r).copied().unwrap_or(0) as f64));
        v.extend([
            s.unassigned as f64,
            s.blocking_pairs as f64,
            s.justified_envy as f64,
            s.solve_seconds,
        ]);
        v
    };
    Ok(Comparison {
        title: format!("{} students", input.students.len()),
        labels,
        columns: (columns.into_iter())
            .map(|(name, runs)| (name.to_owned(), runs.iter().map(figures).collect()))
            .collect(),
        draws: lottery.draws(),
    })
}
