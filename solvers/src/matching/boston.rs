//! Immediate acceptance (the Boston mechanism).

use super::market::{Market, NONE};
use super::outcome::{Matching, Outcome};
use super::reserves::{Eligibility, ReservedOutcome, Reserves};

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

/// The outcome of [`immediate_acceptance_with_reserves`]: the outcome with the block each student
/// was admitted to and the block cutoffs, the round each school filled, and the round each block
/// filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedImmediateAcceptance<'m> {
    pub outcome: ReservedOutcome<'m>,
    /// Per school, the round (0-based) in which its last seat was taken; `None` when it never
    /// filled or has capacity 0.
    pub filled_in_round: Vec<Option<u32>>,
    /// Per global block (see [`Reserves`]), the round in which its last seat was taken.
    block_filled_in_round: Vec<Option<u32>>,
}

impl ReservedImmediateAcceptance<'_> {
    /// The round each of the school's blocks filled, parallel to [`Reserves::blocks`]; `None`
    /// when it never filled or has capacity 0 (empty for an id out of range).
    pub fn block_filled_in_round(&self, school: u32) -> &[Option<u32>] {
        let offsets = self.outcome.reserves().block_offsets();
        match offsets.get(school as usize..school as usize + 2) {
            Some(pair) => &self.block_filled_in_round[pair[0] as usize..pair[1] as usize],
            None => &[],
        }
    }
}

/// Immediate acceptance (Boston) with seat reserves: in round `r` (0-based) every unassigned
/// student applies to the school at position `r` of its list; a school with seats left admits
/// its applicants of that round for good by its choice function (see [`Reserves`]) applied to the
/// seats each block has left: blocks in precedence order, each taking the highest-priority
/// eligible applicants of the round not admitted yet. The others are rejected (also by a school
/// whose remaining seats are all reserved for other classes). A market without reserved blocks
/// gets exactly [`immediate_acceptance`]'s matching, rounds and cutoffs.
///
/// The block a student holds is the block that admitted it (admissions are final, so it may
/// differ from what sequential processing of the school's final students would give). Block
/// cutoff: the largest key the block admitted in the round it filled; `None` when it never filled
/// or has capacity 0. School cutoff and `filled_in_round` as for [`immediate_acceptance`]: the
/// largest key the school admitted in the round its last seat was taken. They explain the
/// outcome: a student who listed the school at position `p`, better than what it got, found
/// every block it is eligible for filled before round `p`, or in round `p` with a cutoff below
/// its key.
pub fn immediate_acceptance_with_reserves<'m>(
    reserves: &'m Reserves<'m>,
) -> ReservedImmediateAcceptance<'m> {
    let market = reserves.market();
    let m = market.num_schools();
    let (offsets, schools, keys) = (
        market.offsets(),
        market.entry_schools(),
        market.entry_keys(),
    );
    let (block_offsets, blocks) = (reserves.block_offsets(), reserves.flat_blocks());
    let classes = reserves.entry_classes();
    let mut seats = market.capacities().to_vec();
    let mut block_seats: Vec<u32> = blocks.iter().map(|b| b.capacity).collect();
    let mut entries = vec![NONE; market.num_students()];
    let mut block_of = vec![NONE; market.num_students()];
    let (mut cutoffs, mut filled_in_round) = (vec![None; m], vec![None; m]);
    let (mut block_cutoffs, mut block_filled) =
        (vec![None; blocks.len()], vec![None; blocks.len()]);
    let mut active: Vec<u32> = (0..market.num_students() as u32)
        .filter(|&i| offsets[i as usize] < offsets[i as usize + 1])
        .collect();
    let mut next = Vec::new();
    let mut applications: Vec<(u32, u64, u32)> = Vec::new();
    let mut round = 0u32;
    while !active.is_empty() {
        applications.clear();
        next.clear();
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
            for b in block_offsets[school] as usize..block_offsets[school + 1] as usize {
                for &(_, key, i) in group {
                    if block_seats[b] == 0 {
                        break;
                    }
                    let entry = offsets[i as usize] + round;
                    let eligible = || match &blocks[b].eligibility {
                        Eligibility::Open => true,
                        Eligibility::Classes(eligible) => {
                            eligible.contains(&classes[entry as usize])
                        }
                    };
                    if entries[i as usize] != NONE || !eligible() {
                        continue;
                    }
                    entries[i as usize] = entry;
                    block_of[i as usize] = b as u32;
                    block_seats[b] -= 1;
                    seats[school] -= 1;
                    if block_seats[b] == 0 {
                        block_filled[b] = Some(round);
                        block_cutoffs[b] = Some(key);
                    }
                }
            }
            if seats[school] == 0 {
                filled_in_round[school] = Some(round);
                cutoffs[school] = group
                    .iter()
                    .filter(|a| entries[a.2 as usize] != NONE)
                    .map(|a| a.1)
                    .max();
            }
            next.extend(
                group
                    .iter()
                    .map(|&(_, _, i)| i)
                    .filter(|&i| entries[i as usize] == NONE && still_listing(i)),
            );
        }
        std::mem::swap(&mut active, &mut next);
        round += 1;
    }
    let outcome = Outcome::new(Matching::from_entries(market, entries), cutoffs);
    ReservedImmediateAcceptance {
        outcome: ReservedOutcome::new(outcome, reserves, block_of, block_cutoffs),
        filled_in_round,
        block_filled_in_round: block_filled,
    }
}
