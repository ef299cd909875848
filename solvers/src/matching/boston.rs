//! Immediate acceptance (the Boston mechanism).

use super::market::{Market, NONE};
use super::outcome::{Matching, Outcome};

/// The outcome of [`immediate_acceptance`]: the usual outcome plus the round each school filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmediateAcceptance<'m> {
    pub outcome: Outcome<'m>,
    /// Per school, the round (0-based, equal to the list position students applied with) in
    /// which its last seat was taken; `None` when it never filled or has capacity 0.
    pub filled_in_round: Vec<Option<u32>>,
}

/// Immediate acceptance (the classic Boston mechanism): in round `r` (0-based) every unassigned
/// student applies to the school at position `r` of its list; a school with seats left admits
/// its applicants of that round by priority up to its remaining seats, for good; the others are
/// rejected (also by a school that is already full: students do not skip full schools).
///
/// Cutoff: the largest key admitted in the round the school filled (`filled_in_round`); `None`
/// when it never filled or has capacity 0. Together they explain the outcome: a student who
/// listed the school at position `p` better than its own got no seat because the school filled
/// in an earlier round than `p`, or in round `p` with a cutoff below the student's key.
///
/// Runs in O(entries + rounds x schools-touched + applications x log applications).
pub fn immediate_acceptance(market: &Market) -> ImmediateAcceptance<'_> {
    let m = market.num_schools();
    let (offsets, schools, keys) = (
        market.offsets(),
        market.entry_schools(),
        market.entry_keys(),
    );
    let mut seats = market.capacities().to_vec();
    let mut entries = vec![NONE; market.num_students()];
    let mut cutoffs = vec![None; m];
    let mut filled_in_round = vec![None; m];
    let mut active: Vec<u32> = (0..market.num_students() as u32)
        .filter(|&i| offsets[i as usize] < offsets[i as usize + 1])
        .collect();
    let mut next = Vec::new();
    let mut applications: Vec<(u32, u64, u32)> = Vec::new();
    let mut round = 0u32;
    while !active.is_empty() {
        applications.clear();
        next.clear();
        // A student in `active` still has a choice at position `round`.
        let still_listing = |i: u32| offsets[i as usize] + round + 1 < offsets[i as usize + 1];
        for &i in &active {
            let entry = (offsets[i as usize] + round) as usize;
            if seats[schools[entry] as usize] > 0 {
                applications.push((schools[entry], keys[entry], i));
            } else if still_listing(i) {
                next.push(i);
            }
        }
        applications.sort_unstable();
        for group in applications.chunk_by(|a, b| a.0 == b.0) {
            let school = group[0].0 as usize;
            let admitted = group.len().min(seats[school] as usize);
            for &(_, _, i) in &group[..admitted] {
                entries[i as usize] = offsets[i as usize] + round;
            }
            seats[school] -= admitted as u32;
            if seats[school] == 0 {
                filled_in_round[school] = Some(round);
                cutoffs[school] = Some(group[admitted - 1].1);
            }
            next.extend(
                group[admitted..]
                    .iter()
                    .map(|&(_, _, i)| i)
                    .filter(|&i| still_listing(i)),
            );
        }
        std::mem::swap(&mut active, &mut next);
        round += 1;
    }
    ImmediateAcceptance {
        outcome: Outcome::new(Matching::from_entries(market, entries), cutoffs),
        filled_in_round,
    }
}
