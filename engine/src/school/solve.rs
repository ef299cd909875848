//! The school mechanisms on the matching core.

use allot_solvers::matching::{
    self, Market, Outcome, PreferencesBuilder, ReservedOutcome, Reserves, SeatBlock, Seed,
    multiple_tie_break, priority_key, single_tie_break,
};

use super::{Block, Mechanism, Params, ReserveOrder, SchoolInput, SchoolSolved, TieBreaking};
use crate::allocation::{Error, Result, timed};

fn market_error(e: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!(
        "the school input does not form a valid market: {e}"
    ))
}

/// The market, each entry's key `(class, lottery)` drawn from the given lottery source.
pub(super) fn market(
    input: &SchoolInput,
    tie_breaking: TieBreaking,
    seed: Option<&Seed>,
) -> Result<Market> {
    let n = input.students.len();
    let entries: usize = input.students.iter().map(|s| s.choices.len()).sum();
    let mut prefs = PreferencesBuilder::with_capacity(input.schools.len(), n, entries);
    for s in &input.students {
        prefs
            .push(s.choices.iter().copied())
            .map_err(market_error)?;
    }
    let prefs = prefs.build().map_err(market_error)?;

    // Each student's priorities, to look up the class of each of its entries.
    let mut by_student: Vec<u32> = vec![0; n + 1];
    for p in &input.priorities {
        by_student[p.student as usize + 1] += 1;
    }
    for i in 0..n {
        by_student[i + 1] += by_student[i];
    }
    let mut fill = by_student[..n].to_vec();
    let mut rows = vec![(0u32, 0u32); input.priorities.len()];
    for p in &input.priorities {
        let slot = &mut fill[p.student as usize];
        rows[*slot as usize] = (p.school, p.class);
        *slot += 1;
    }
    let default = input.default_class();
    let mut classes = Vec::with_capacity(entries);
    for (i, s) in input.students.iter().enumerate() {
        let mine = &rows[by_student[i] as usize..by_student[i + 1] as usize];
        for &school in &s.choices {
            let class = mine
                .iter()
                .find(|&&(j, _)| j == school)
                .map_or(default, |&(_, c)| c);
            classes.push(class);
        }
    }

    let lottery: Vec<u64> = match (tie_breaking, seed) {
        (TieBreaking::Single, None) => {
            let per_student = input
                .students
                .iter()
                .map(|s| s.lottery)
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| {
                    Error::Request(
                        "the students have no lottery numbers and no seed was drawn".into(),
                    )
                })?;
            per_entry(&prefs, &per_student)
        }
        (TieBreaking::Single, Some(seed)) => {
            let ids: Vec<&str> = input.students.iter().map(|s| s.id.as_str()).collect();
            let per_student = single_tie_break(seed, &ids).map_err(market_error)?;
            per_entry(&prefs, &per_student)
        }
        (TieBreaking::Multiple, Some(seed)) => {
            let ids: Vec<&str> = input.students.iter().map(|s| s.id.as_str()).collect();
            let schools: Vec<&str> = input.schools.iter().map(|s| s.id.as_str()).collect();
            multiple_tie_break(seed, &prefs, &ids, &schools).map_err(market_error)?
        }
        (TieBreaking::Multiple, None) => {
            return Err(Error::Request(
                "multiple tie-breaking needs lottery numbers drawn from a seed".into(),
            ));
        }
    };
    let keys = classes
        .iter()
        .zip(&lottery)
        .map(|(&c, &l)| priority_key(c, l))
        .collect::<Result<Vec<u64>, _>>()
        .map_err(market_error)?;
    let capacities = input.schools.iter().map(|s| s.capacity).collect();
    Market::new(prefs, capacities, keys).map_err(market_error)
}

fn per_entry(prefs: &matching::Preferences, per_student: &[u64]) -> Vec<u64> {
    let offsets = prefs.offsets();
    let mut out = Vec::with_capacity(prefs.num_entries());
    for (i, pair) in offsets.windows(2).enumerate() {
        out.extend(std::iter::repeat_n(
            per_student[i],
            (pair[1] - pair[0]) as usize,
        ));
    }
    out
}

/// The seat blocks of every school with reserves, in the order `order` says.
pub(super) fn blocks(input: &SchoolInput, order: ReserveOrder) -> Vec<(u32, Vec<Block>)> {
    let mut out: Vec<(u32, Vec<Block>)> = Vec::new();
    for group in input.reserves.chunk_by(|a, b| a.school == b.school) {
        let school = group[0].school;
        let reserved: u32 = group.iter().map(|r| r.seats).sum();
        let open = Block {
            class: None,
            seats: input.schools[school as usize]
                .capacity
                .saturating_sub(reserved),
        };
        let mut list: Vec<Block> = group
            .iter()
            .map(|r| Block {
                class: Some(r.class),
                seats: r.seats,
            })
            .collect();
        match order {
            ReserveOrder::ReservedFirst => list.push(open),
            ReserveOrder::OpenFirst => list.insert(0, open),
        }
        out.push((school, list));
    }
    out
}

fn seat_blocks(list: &[Block]) -> Vec<SeatBlock> {
    list.iter()
        .map(|b| match b.class {
            None => SeatBlock::open(b.seats),
            Some(c) => SeatBlock::reserved(b.seats, [c]),
        })
        .collect()
}

fn positions(outcome: &Outcome<'_>) -> Vec<Option<u32>> {
    let m = outcome.matching();
    (0..m.market().num_students() as u32)
        .map(|i| m.position_of(i))
        .collect()
}

pub(super) fn solve(
    input: &SchoolInput,
    params: &Params,
    seed: Option<&Seed>,
) -> Result<SchoolSolved> {
    let market = market(input, params.tie_breaking, seed)?;
    let run = if input.reserves.is_empty() {
        plain(&market, params.mechanism)
    } else {
        reserved(input, &market, params)?
    };
    Ok(SchoolSolved {
        mechanism: params.mechanism,
        market,
        position: run.position,
        cutoffs: run.cutoffs,
        blocks: run.blocks,
        filled_in_round: run.rounds,
        solve_seconds: run.seconds,
    })
}

/// What a mechanism gave, owned (its outcome borrows the market).
struct Run {
    position: Vec<Option<u32>>,
    cutoffs: Vec<Option<u64>>,
    blocks: Vec<(u32, Vec<Block>, Vec<Option<u64>>)>,
    rounds: Option<Vec<Option<u32>>>,
    seconds: f64,
}

fn plain(market: &Market, mechanism: Mechanism) -> Run {
    let core = match mechanism {
        Mechanism::Da => matching::Mechanism::DeferredAcceptance,
        Mechanism::SchoolDa => matching::Mechanism::SchoolProposingDeferredAcceptance,
        Mechanism::Ttc => matching::Mechanism::TopTradingCycles,
        Mechanism::Eada => matching::Mechanism::EfficiencyAdjustedDeferredAcceptance,
        Mechanism::Boston => {
            let (ia, seconds) = timed(|| matching::immediate_acceptance(market));
            return Run {
                position: positions(&ia.outcome),
                cutoffs: ia.outcome.cutoffs().to_vec(),
                blocks: Vec::new(),
                rounds: Some(ia.filled_in_round),
                seconds,
            };
        }
    };
    let (out, seconds) = timed(|| core.run(market));
    Run {
        position: positions(&out),
        cutoffs: out.cutoffs().to_vec(),
        blocks: Vec::new(),
        rounds: None,
        seconds,
    }
}

fn reserved(input: &SchoolInput, market: &Market, params: &Params) -> Result<Run> {
    let blocks = blocks(input, params.reserve_order);
    let reserves = Reserves::with_key_classes(
        market,
        blocks.iter().map(|(s, list)| (*s, seat_blocks(list))),
    )
    .map_err(market_error)?;
    let (outcome, rounds, seconds): (ReservedOutcome<'_>, _, f64) = match params.mechanism {
        Mechanism::Da => {
            let (o, s) = timed(|| matching::deferred_acceptance_with_reserves(&reserves));
            (o, None, s)
        }
        Mechanism::SchoolDa => {
            let (o, s) =
                timed(|| matching::school_proposing_deferred_acceptance_with_reserves(&reserves));
            (o, None, s)
        }
        Mechanism::Boston => {
            let (o, s) = timed(|| matching::immediate_acceptance_with_reserves(&reserves));
            (o.outcome, Some(o.filled_in_round), s)
        }
        Mechanism::Ttc | Mechanism::Eada => {
            return Err(Error::Unsupported(format!(
                "{} does not support seat reserves",
                params.mechanism.name()
            )));
        }
    };
    Ok(Run {
        position: positions(outcome.outcome()),
        cutoffs: outcome.outcome().cutoffs().to_vec(),
        blocks: blocks
            .into_iter()
            .map(|(s, list)| {
                let cutoffs = outcome.block_cutoffs(s).to_vec();
                (s, list, cutoffs)
            })
            .collect(),
        rounds,
        seconds,
    })
}

/// The seat reserves of a solved input, rebuilt (for verifiers).
pub(super) fn reserves<'m>(solved: &'m SchoolSolved) -> Result<Option<Reserves<'m>>> {
    if solved.blocks.is_empty() {
        return Ok(None);
    }
    Reserves::with_key_classes(
        &solved.market,
        solved
            .blocks
            .iter()
            .map(|(s, list, _)| (*s, seat_blocks(list))),
    )
    .map(Some)
    .map_err(market_error)
}
