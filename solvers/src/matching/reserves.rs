//! Seat reserves: a school as an ordered list of seat blocks, each open to every applicant or
//! reserved for a set of priority classes, filled by sequential processing.
//!
//! **The choice function.** Given a set of applicants, a school processes its blocks in
//! precedence order, block 0 first; each block takes, among the applicants no earlier block took,
//! the ones eligible for it with the highest priority (lowest key), up to its capacity. A reserve
//! is hard: seats of a block nobody eligible takes stay empty (a block's seats never go to an
//! ineligible applicant). Priority inside every block is the school's own key order; the class
//! only decides eligibility. This choice function is substitutable and satisfies the law of
//! aggregate demand (Kominers and Sönmez 2016), so deferred acceptance stays stable and
//! student-optimal with it, and one new applicant makes the school let go of at most one student.
//!
//! **Precedence matters.** Take one seat reserved for the walk zone (class W) and one open seat,
//! and applicants w1 > o1 > w2 by lottery (w1 and w2 in the walk zone). Reserved first: the
//! reserved seat takes w1 and the open seat o1, so w2 is turned away. Open first: the open seat
//! takes w1 and the reserved seat w2, so o1 is turned away. Processing reserved seats first lets
//! the strongest reserve-eligible applicants use up the reserve although they would have won an
//! open seat anyway, which weakens the reserve; processing them last strengthens it. This is why
//! Boston's walk-zone reserve had almost no effect (Dur, Kominers, Pathak and Sönmez 2018,
//! "Reserve Design: Unintended Consequences and the Demise of Boston's Walk Zones"). The order is
//! a parameter here, never a hidden default: it is the order of the blocks given.
//!
//! **Mechanisms.** Student-proposing deferred acceptance, school-proposing deferred acceptance
//! and immediate acceptance (Boston) respect the blocks; top trading cycles and
//! efficiency-adjusted deferred acceptance do not support them ([`Mechanism::run_with_reserves`]
//! returns [`ReservesUnsupported`]): with reserves a school no longer has one priority order to
//! point or trade with, and the literature's versions (TTC with slot-specific priorities, EADA
//! over choice functions) are design choices of their own, not to be guessed here. Each supported
//! mechanism returns a [`ReservedOutcome`]: the outcome, the block each student holds and a cutoff
//! per block, so an explanation can name the block a student missed.

use thiserror::Error;

use super::Mechanism;
use super::market::{LOTTERY_BITS, MAX_CLASS, Market, NONE};
use super::outcome::{Matching, Outcome};
use super::verify::Pair;

/// Who may take the seats of a block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Eligibility {
    /// Every applicant.
    Open,
    /// Only applicants whose priority class at the school is one of these.
    Classes(Vec<u32>),
}

impl Eligibility {
    pub fn admits(&self, class: u32) -> bool {
        match self {
            Eligibility::Open => true,
            Eligibility::Classes(classes) => classes.contains(&class),
        }
    }
}

/// A number of seats at a school and who may take them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeatBlock {
    pub capacity: u32,
    pub eligibility: Eligibility,
}

impl SeatBlock {
    /// Seats open to every applicant.
    pub fn open(capacity: u32) -> Self {
        Self {
            capacity,
            eligibility: Eligibility::Open,
        }
    }

    /// Seats only applicants of these priority classes may take.
    pub fn reserved(capacity: u32, classes: impl IntoIterator<Item = u32>) -> Self {
        Self {
            capacity,
            eligibility: Eligibility::Classes(classes.into_iter().collect()),
        }
    }
}

/// Why seat reserves were rejected, or could not verify a matching.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReserveError {
    #[error("{got} priority classes given, expected one per listed school: {expected}")]
    ClassesLength { expected: usize, got: usize },
    #[error(
        "student {student} has priority class {class} at position {position}, above the maximum {max}",
        max = MAX_CLASS
    )]
    EntryClassOutOfRange {
        student: u32,
        position: u32,
        class: u32,
    },
    #[error("seat blocks are given for school {school}, but there are only {schools} schools")]
    SchoolOutOfRange { school: u32, schools: usize },
    #[error("seat blocks are given twice for school {school}")]
    DuplicateSchool { school: u32 },
    #[error(
        "the seat blocks of school {school} hold {seats} seats, but its capacity is {capacity}"
    )]
    CapacityMismatch {
        school: u32,
        seats: u64,
        capacity: u32,
    },
    #[error("block {block} of school {school} is reserved for no class")]
    EmptyReservation { school: u32, block: u32 },
    #[error(
        "block {block} of school {school} is reserved for class {class}, above the maximum {max}",
        max = MAX_CLASS
    )]
    BlockClassOutOfRange { school: u32, block: u32, class: u32 },
    #[error("too many seat blocks: {got} (at most {max})")]
    TooManyBlocks { got: usize, max: usize },
    #[error("the matching belongs to another market than the reserves")]
    ForeignMatching,
}

/// A mechanism that cannot run with seat reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "{mechanism:?} does not support seat reserves (deferred acceptance, school-proposing deferred acceptance and immediate acceptance do)"
)]
pub struct ReservesUnsupported {
    pub mechanism: Mechanism,
}

/// Seat blocks for every school of a market and the priority class of every (student, listed
/// school) entry.
///
/// Invariants (checked on construction): one class per entry, every class at most
/// [`MAX_CLASS`]; every school has an ordered list of blocks whose capacities sum to the school's
/// capacity (a school given no blocks has one open block of its capacity, so it behaves exactly
/// as without reserves); a reserved block names at least one class, stored sorted and distinct.
/// Blocks of capacity 0 are allowed (a planner may set a reserve to zero to compare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserves<'m> {
    market: &'m Market,
    classes: Vec<u32>,
    /// School `s`'s blocks are `blocks[block_offsets[s]..block_offsets[s + 1]]`, in precedence order.
    block_offsets: Vec<u32>,
    blocks: Vec<SeatBlock>,
}

impl<'m> Reserves<'m> {
    /// Validates reserves: `classes[e]` is the priority class of entry `e` of the market's
    /// preferences (parallel to its keys), `blocks` gives some schools their blocks in
    /// precedence order (block 0 is processed first).
    pub fn new(
        market: &'m Market,
        classes: Vec<u32>,
        blocks: impl IntoIterator<Item = (u32, Vec<SeatBlock>)>,
    ) -> Result<Self, ReserveError> {
        let entries = market.preferences().num_entries();
        if classes.len() != entries {
            return Err(ReserveError::ClassesLength {
                expected: entries,
                got: classes.len(),
            });
        }
        let offsets = market.offsets();
        if let Some(entry) = classes.iter().position(|&c| c > MAX_CLASS) {
            let student = offsets.partition_point(|&o| o as usize <= entry) - 1;
            return Err(ReserveError::EntryClassOutOfRange {
                student: student as u32,
                position: entry as u32 - offsets[student],
                class: classes[entry],
            });
        }
        let m = market.num_schools();
        let mut given: Vec<Option<Vec<SeatBlock>>> = vec![None; m];
        for (school, list) in blocks {
            let slot = given
                .get_mut(school as usize)
                .ok_or(ReserveError::SchoolOutOfRange { school, schools: m })?;
            if slot.is_some() {
                return Err(ReserveError::DuplicateSchool { school });
            }
            *slot = Some(normalized(school, list, market.capacity(school))?);
        }
        let mut block_offsets = Vec::with_capacity(m + 1);
        block_offsets.push(0u32);
        let mut flat = Vec::with_capacity(m);
        for (school, list) in given.into_iter().enumerate() {
            match list {
                Some(list) => flat.extend(list),
                None => flat.push(SeatBlock::open(market.capacities()[school])),
            }
            let max = NONE as usize - 1;
            if flat.len() > max {
                return Err(ReserveError::TooManyBlocks {
                    got: flat.len(),
                    max,
                });
            }
            block_offsets.push(flat.len() as u32);
        }
        Ok(Self {
            market,
            classes,
            block_offsets,
            blocks: flat,
        })
    }

    /// Reserves whose classes are read from the market's keys as built by
    /// [`priority_key`](super::priority_key): class = key >> [`LOTTERY_BITS`].
    pub fn with_key_classes(
        market: &'m Market,
        blocks: impl IntoIterator<Item = (u32, Vec<SeatBlock>)>,
    ) -> Result<Self, ReserveError> {
        let classes = market
            .entry_keys()
            .iter()
            .map(|&key| u32::try_from(key >> LOTTERY_BITS).unwrap_or(u32::MAX))
            .collect();
        Self::new(market, classes, blocks)
    }

    pub fn market(&self) -> &'m Market {
        self.market
    }

    /// The school's blocks in precedence order (empty for an id out of range).
    pub fn blocks(&self, school: u32) -> &[SeatBlock] {
        match self.block_range(school) {
            Some(range) => &self.blocks[range],
            None => &[],
        }
    }

    /// The student's priority classes, parallel to [`Market::list`].
    pub fn classes_of(&self, student: u32) -> &[u32] {
        let offsets = self.market.offsets();
        match offsets.get(student as usize..student as usize + 2) {
            Some(pair) => &self.classes[pair[0] as usize..pair[1] as usize],
            None => &[],
        }
    }

    /// The student's priority class at `school`, if the student listed it.
    pub fn class(&self, student: u32, school: u32) -> Option<u32> {
        let position = self
            .market
            .list(student)
            .iter()
            .position(|&s| s == school)?;
        Some(self.classes_of(student)[position])
    }

    /// Whether `school`'s choice function, offered exactly `students`, takes every one of them
    /// (false when one did not list the school). A seat given back is re-offered only to a
    /// student the school takes together with everybody it still holds.
    pub fn chooses_all(&self, school: u32, students: &[u32]) -> bool {
        let Some(range) = self.block_range(school) else {
            return false;
        };
        let mut offered = Vec::with_capacity(students.len());
        for &student in students {
            match (
                self.market.key(student, school),
                self.class(student, school),
            ) {
                (Some(key), Some(class)) => offered.push((key, class)),
                _ => return false,
            }
        }
        offered.sort_unstable();
        let mut taken = vec![false; offered.len()];
        for block in &self.blocks[range] {
            let mut load = 0;
            for (slot, &(_, class)) in offered.iter().enumerate() {
                if load == block.capacity {
                    break;
                }
                if !taken[slot] && block.eligibility.admits(class) {
                    taken[slot] = true;
                    load += 1;
                }
            }
        }
        taken.into_iter().all(|t| t)
    }

    /// Blocking pairs with respect to the schools' choice functions: a student and a school it
    /// prefers to its assignment that would choose it from the students it holds plus that
    /// student. Listed by student, then by the student's preference.
    pub fn blocking_pairs(&self, matching: &Matching<'_>) -> Result<Vec<Pair>, ReserveError> {
        let held = self.held_blocks(matching)?;
        let market = self.market;
        let (offsets, schools) = (market.offsets(), market.entry_schools());
        let keys = market.entry_keys();
        let mut pairs = Vec::new();
        for (student, &entry) in matching.entries().iter().enumerate() {
            let end = if entry == NONE {
                offsets[student + 1]
            } else {
                entry
            };
            for e in offsets[student] as usize..end as usize {
                let school = schools[e];
                let mut blocks = self.block_offsets[school as usize] as usize
                    ..self.block_offsets[school as usize + 1] as usize;
                let chosen = blocks.any(|b| {
                    self.blocks[b].eligibility.admits(self.classes[e])
                        && (held.load[b] < self.blocks[b].capacity || keys[e] < held.worst[b])
                });
                if chosen {
                    pairs.push(Pair {
                        student: student as u32,
                        school,
                    });
                }
            }
        }
        Ok(pairs)
    }

    /// Students a school holds but would not choose from the students it holds (e.g. an
    /// ineligible student in seats reserved for others), by student.
    pub fn rejected_holds(&self, matching: &Matching<'_>) -> Result<Vec<Pair>, ReserveError> {
        let held = self.held_blocks(matching)?;
        Ok((0..matching.entries().len() as u32)
            .filter(|&i| held.block_of[i as usize] == NONE)
            .filter_map(|student| {
                let school = matching.school_of(student)?;
                Some(Pair { student, school })
            })
            .collect())
    }

    /// Stable with respect to the choice functions: every school would choose exactly the
    /// students it holds, and there is no blocking pair.
    pub fn is_stable(&self, matching: &Matching<'_>) -> Result<bool, ReserveError> {
        Ok(self.rejected_holds(matching)?.is_empty() && self.blocking_pairs(matching)?.is_empty())
    }

    /// Each school's choice from the students the matching holds there: the block (global
    /// index) each student takes, or `NONE`; students per block; the largest key per block.
    fn held_blocks(&self, matching: &Matching<'_>) -> Result<HeldBlocks, ReserveError> {
        if !std::ptr::eq(matching.market(), self.market) && matching.market() != self.market {
            return Err(ReserveError::ForeignMatching);
        }
        let market = self.market;
        let m = market.num_schools();
        let (schools, keys) = (market.entry_schools(), market.entry_keys());
        let entries = matching.entries();
        // The held entries grouped by school, each group by key.
        let mut start = vec![0u32; m + 1];
        for &e in entries.iter().filter(|&&e| e != NONE) {
            start[schools[e as usize] as usize + 1] += 1;
        }
        for s in 0..m {
            start[s + 1] += start[s];
        }
        let mut fill = start[..m].to_vec();
        let mut by_school = vec![0u32; start[m] as usize];
        for &e in entries.iter().filter(|&&e| e != NONE) {
            let slot = &mut fill[schools[e as usize] as usize];
            by_school[*slot as usize] = e;
            *slot += 1;
        }
        let entry_student = market.entry_student();
        let mut held = HeldBlocks {
            block_of: vec![NONE; entries.len()],
            load: vec![0; self.blocks.len()],
            worst: vec![0; self.blocks.len()],
        };
        for s in 0..m {
            let group = &mut by_school[start[s] as usize..start[s + 1] as usize];
            group.sort_unstable_by_key(|&e| keys[e as usize]);
            for b in self.block_offsets[s] as usize..self.block_offsets[s + 1] as usize {
                for &e in group.iter() {
                    if held.load[b] == self.blocks[b].capacity {
                        break;
                    }
                    let student = entry_student[e as usize] as usize;
                    if held.block_of[student] == NONE
                        && self.blocks[b].eligibility.admits(self.classes[e as usize])
                    {
                        held.block_of[student] = b as u32;
                        held.load[b] += 1;
                        held.worst[b] = keys[e as usize];
                    }
                }
            }
        }
        Ok(held)
    }

    fn block_range(&self, school: u32) -> Option<std::ops::Range<usize>> {
        let pair = self
            .block_offsets
            .get(school as usize..school as usize + 2)?;
        Some(pair[0] as usize..pair[1] as usize)
    }

    // Flat views for the mechanisms.

    pub(crate) fn block_offsets(&self) -> &[u32] {
        &self.block_offsets
    }

    pub(crate) fn flat_blocks(&self) -> &[SeatBlock] {
        &self.blocks
    }

    pub(crate) fn entry_classes(&self) -> &[u32] {
        &self.classes
    }
}

struct HeldBlocks {
    block_of: Vec<u32>,
    load: Vec<u32>,
    worst: Vec<u64>,
}

/// Checks one school's blocks and stores each reserved block's classes sorted and distinct.
fn normalized(
    school: u32,
    mut blocks: Vec<SeatBlock>,
    capacity: u32,
) -> Result<Vec<SeatBlock>, ReserveError> {
    let seats: u64 = blocks.iter().map(|b| u64::from(b.capacity)).sum();
    if seats != u64::from(capacity) {
        return Err(ReserveError::CapacityMismatch {
            school,
            seats,
            capacity,
        });
    }
    for (block, seat_block) in blocks.iter_mut().enumerate() {
        let block = block as u32;
        if let Eligibility::Classes(classes) = &mut seat_block.eligibility {
            classes.sort_unstable();
            classes.dedup();
            match classes.last() {
                None => return Err(ReserveError::EmptyReservation { school, block }),
                Some(&class) if class > MAX_CLASS => {
                    return Err(ReserveError::BlockClassOutOfRange {
                        school,
                        block,
                        class,
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(blocks)
}

/// What a mechanism returns with seat reserves: its outcome (whose per-school cutoffs each
/// mechanism documents), the block each student holds and a cutoff per block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedOutcome<'m> {
    outcome: Outcome<'m>,
    reserves: &'m Reserves<'m>,
    /// Global block index per student, `NONE` when unassigned.
    block_of: Vec<u32>,
    /// Per global block.
    block_cutoffs: Vec<Option<u64>>,
}

impl<'m> ReservedOutcome<'m> {
    pub(crate) fn new(
        outcome: Outcome<'m>,
        reserves: &'m Reserves<'m>,
        block_of: Vec<u32>,
        block_cutoffs: Vec<Option<u64>>,
    ) -> Self {
        debug_assert_eq!(block_of.len(), reserves.market().num_students());
        debug_assert_eq!(block_cutoffs.len(), reserves.blocks.len());
        debug_assert!(block_of.iter().enumerate().all(|(i, &b)| {
            let school = outcome.matching().school_of(i as u32);
            match (school, b) {
                (None, NONE) => true,
                (Some(s), b) if b != NONE => reserves
                    .block_range(s)
                    .is_some_and(|r| r.contains(&(b as usize))),
                _ => false,
            }
        }));
        Self {
            outcome,
            reserves,
            block_of,
            block_cutoffs,
        }
    }

    pub fn outcome(&self) -> &Outcome<'m> {
        &self.outcome
    }

    pub fn matching(&self) -> &Matching<'m> {
        self.outcome.matching()
    }

    pub fn reserves(&self) -> &'m Reserves<'m> {
        self.reserves
    }

    /// The block the student holds, as an index into [`Reserves::blocks`] of its school.
    pub fn block_of(&self, student: u32) -> Option<u32> {
        let b = *self.block_of.get(student as usize)?;
        let school = self.outcome.matching().school_of(student)?;
        (b != NONE).then(|| b - self.reserves.block_offsets[school as usize])
    }

    /// The school's block cutoffs, parallel to [`Reserves::blocks`]; what a cutoff means is
    /// documented on each mechanism (empty for an id out of range).
    pub fn block_cutoffs(&self, school: u32) -> &[Option<u64>] {
        match self.reserves.block_range(school) {
            Some(range) => &self.block_cutoffs[range],
            None => &[],
        }
    }

    pub fn into_outcome(self) -> Outcome<'m> {
        self.outcome
    }
}
