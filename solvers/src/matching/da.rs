//! Deferred acceptance: the student-proposing hot path (a generic proposal loop over a school
//! admission rule) and the school-proposing variant.

use super::market::{Market, NONE};
use super::outcome::{Matching, Outcome};
use super::reserves::{Eligibility, ReservedOutcome, Reserves};

/// A school's answer to one application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The applicant is held and nobody was let go.
    Held,
    /// The applicant is turned down.
    Rejected,
    /// The applicant is held and this previously held student is let go.
    Displaced(u32),
}

/// How schools tentatively hold applicants during student-proposing deferred acceptance.
///
/// Any rule whose choice from a set of applicants is substitutable and size-monotone (a new
/// applicant displaces at most one held student) fits: the plain top-`capacity`-by-key rule
/// ([`HeapAdmission`]) and seat reserves ([`BlockAdmission`]: ordered blocks of seats, each taking
/// the best eligible applicants). `entry` is the application's index in the market's flat lists.
pub(crate) trait Admission {
    fn apply(&mut self, school: u32, student: u32, key: u64, entry: u32) -> Verdict;
}

/// Student-proposing deferred acceptance for `students`, in the given order: each student
/// proposes down its list until it is held or runs out; a displaced student resumes at once
/// after the school that let it go (McVitie-Wilson order, the same as the C++ reference's stack).
/// The resulting matching does not depend on the order. `entries[i]` receives the held entry
/// of each student in `students`, or `NONE`.
// Always inlined: left to itself, LLVM outlines or inlines it differently per admission rule,
// and plain DA's loop ran ~1.6% more instructions (callgrind) once the block rule existed.
#[inline(always)]
pub(crate) fn propose<A: Admission>(
    market: &Market,
    students: impl IntoIterator<Item = u32>,
    admission: &mut A,
    entries: &mut [u32],
) {
    let offsets = market.offsets();
    let (schools, keys) = (market.entry_schools(), market.entry_keys());
    for first in students {
        let mut student = first;
        let mut from = offsets[student as usize];
        'chain: loop {
            let (start, hi) = (from as usize, offsets[student as usize + 1] as usize);
            for (k, (&school, &key)) in schools[start..hi].iter().zip(&keys[start..hi]).enumerate()
            {
                let entry = (start + k) as u32;
                match admission.apply(school, student, key, entry) {
                    Verdict::Rejected => {}
                    Verdict::Held => {
                        entries[student as usize] = entry;
                        break 'chain;
                    }
                    Verdict::Displaced(other) => {
                        entries[student as usize] = entry;
                        student = other;
                        from = entries[other as usize] + 1;
                        continue 'chain;
                    }
                }
            }
            entries[student as usize] = NONE;
            break;
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Held {
    key: u64,
    student: u32,
}

/// A held application in a seat block: the class is kept with it so that a student passed on to
/// the next block is checked for eligibility without another lookup.
#[derive(Debug, Clone, Copy, Default)]
struct BlockHeld {
    key: u64,
    student: u32,
    class: u32,
}

/// What the flat heaps store: anything ordered by a priority key.
trait Keyed: Copy {
    fn key(&self) -> u64;
}

impl Keyed for Held {
    #[inline]
    fn key(&self) -> u64 {
        self.key
    }
}

impl Keyed for BlockHeld {
    #[inline]
    fn key(&self) -> u64 {
        self.key
    }
}

#[derive(Debug, Clone, Copy)]
struct HeapHead {
    start: u32,
    len: u32,
    capacity: u32,
}

/// The plain rule: each school holds its `capacity` best applicants by key, in a binary max-heap
/// (worst held on top) stored in one flat buffer with room for `min(capacity, demand)` per school.
/// `threshold[s]` caches "an applicant is held iff its key is below this", so a rejection reads
/// one `u64` and never touches the heap. With `TRACK`, it records which schools ever rejected
/// or displaced somebody (used by the efficiency-adjusted mechanism).
#[derive(Debug, Clone)]
pub(crate) struct HeapAdmission<const TRACK: bool> {
    threshold: Vec<u64>,
    heads: Vec<HeapHead>,
    slots: Vec<Held>,
    rejected: Vec<bool>,
}

impl<const TRACK: bool> HeapAdmission<TRACK> {
    pub(crate) fn new(market: &Market) -> Self {
        let m = market.num_schools();
        let mut heads = Vec::with_capacity(m);
        let mut total = 0u32;
        for (school, &capacity) in market.capacities().iter().enumerate() {
            heads.push(HeapHead {
                start: total,
                len: 0,
                capacity,
            });
            // Never more held than applied: bounds the buffer by the number of entries.
            total += capacity.min(market.demand(school));
        }
        let threshold = heads
            .iter()
            .map(|h| if h.capacity == 0 { 0 } else { u64::MAX })
            .collect();
        let rejected = if TRACK { vec![false; m] } else { Vec::new() };
        Self {
            threshold,
            heads,
            slots: vec![Held::default(); total as usize],
            rejected,
        }
    }

    /// Empties every school; a school whose `open` flag is false takes nobody.
    pub(crate) fn reset(&mut self, open: &[bool]) {
        for ((head, threshold), &open) in self.heads.iter_mut().zip(&mut self.threshold).zip(open) {
            head.len = 0;
            *threshold = if open && head.capacity > 0 {
                u64::MAX
            } else {
                0
            };
        }
        self.rejected.fill(false);
    }

    /// Whether the school ever turned an applicant down or let one go (only with `TRACK`).
    pub(crate) fn rejected(&self, school: usize) -> bool {
        self.rejected[school]
    }

    /// The key of the worst held student at each full school with seats.
    pub(crate) fn cutoffs(&self) -> Vec<Option<u64>> {
        self.heads
            .iter()
            .map(|h| {
                (h.capacity > 0 && h.len == h.capacity).then(|| self.slots[h.start as usize].key)
            })
            .collect()
    }
}

impl<const TRACK: bool> Admission for HeapAdmission<TRACK> {
    #[inline]
    fn apply(&mut self, school: u32, student: u32, key: u64, _entry: u32) -> Verdict {
        let s = school as usize;
        if key >= self.threshold[s] {
            if TRACK {
                self.rejected[s] = true;
            }
            return Verdict::Rejected;
        }
        let head = &mut self.heads[s];
        let item = Held { key, student };
        if head.len < head.capacity {
            let heap = &mut self.slots[head.start as usize..][..=head.len as usize];
            sift_up(heap, item);
            head.len += 1;
            if head.len == head.capacity {
                self.threshold[s] = heap[0].key;
            }
            Verdict::Held
        } else {
            let heap = &mut self.slots[head.start as usize..][..head.len as usize];
            let out = heap[0].student;
            replace_top(heap, item);
            self.threshold[s] = heap[0].key;
            if TRACK {
                self.rejected[s] = true;
            }
            Verdict::Displaced(out)
        }
    }
}

/// Inserts `item` at the last position of `heap` (a max-heap on its other elements).
#[inline]
fn sift_up<T: Keyed>(heap: &mut [T], item: T) {
    let mut i = heap.len() - 1;
    while i > 0 {
        let parent = (i - 1) / 2;
        if heap[parent].key() >= item.key() {
            break;
        }
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = item;
}

/// Replaces the top of a non-empty max-heap by `item`.
#[inline]
fn replace_top<T: Keyed>(heap: &mut [T], item: T) {
    let len = heap.len();
    let mut i = 0;
    loop {
        let left = 2 * i + 1;
        if left >= len {
            break;
        }
        let right = left + 1;
        let child = if right < len && heap[right].key() > heap[left].key() {
            right
        } else {
            left
        };
        if heap[child].key() <= item.key() {
            break;
        }
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = item;
}

/// Student-proposing deferred acceptance (Gale-Shapley): the student-optimal stable matching.
///
/// Students start proposing in id order; each proposes down its list until held, and a student
/// it displaces resumes at once after the school that let it go (McVitie-Wilson order, the C++
/// reference's order too). The matching is unique whatever the order. Cutoff: the largest key a full school holds (its
/// lowest-priority admitted student); `None` when the school has seats left or capacity 0.
/// Because the matching is stable, the cutoffs explain it exactly: every student gets the first
/// school on its list whose cutoff is `None` (and which has seats) or at least its key there.
///
/// Runs in O(students + schools + proposals x log capacity).
pub fn deferred_acceptance(market: &Market) -> Outcome<'_> {
    let mut admission = HeapAdmission::<false>::new(market);
    let mut entries = vec![NONE; market.num_students()];
    propose(
        market,
        0..market.num_students() as u32,
        &mut admission,
        &mut entries,
    );
    let cutoffs = admission.cutoffs();
    Outcome::new(Matching::from_entries(market, entries), cutoffs)
}

/// School-proposing deferred acceptance: the school-optimal (student-pessimal) stable matching.
///
/// Each school offers its seats down its priority order; a student keeps the best offer so far
/// and turns the others down; a school that was turned down offers the freed seat to its next
/// applicant. Schools are processed from a stack seeded in id order. Cutoff: the largest key a
/// full school holds; `None` when it has seats left (it ran out of applicants) or capacity 0.
/// The matching is stable, so the cutoffs explain it as for [`deferred_acceptance`].
///
/// Runs in O(students + schools + entries).
pub fn school_proposing_deferred_acceptance(market: &Market) -> Outcome<'_> {
    let m = market.num_schools();
    let (offsets, applicants) = (market.applicant_offsets(), market.applicant_entries());
    let (entry_student, schools) = (market.entry_student(), market.entry_schools());
    let capacities = market.capacities();
    let mut cursor: Vec<u32> = offsets[..m].to_vec();
    let mut held = vec![0u32; m];
    let mut entries = vec![NONE; market.num_students()];
    let mut stack: Vec<u32> = (0..m as u32).rev().collect();
    while let Some(school) = stack.pop() {
        let s = school as usize;
        while held[s] < capacities[s] && cursor[s] < offsets[s + 1] {
            let entry = applicants[cursor[s] as usize];
            cursor[s] += 1;
            let student = entry_student[entry as usize] as usize;
            let current = entries[student];
            // Entries of one student are in list order, so a smaller entry is a better school.
            if current == NONE || entry < current {
                if current != NONE {
                    let previous = schools[current as usize];
                    held[previous as usize] -= 1;
                    stack.push(previous);
                }
                entries[student] = entry;
                held[s] += 1;
            }
        }
    }
    Outcome::with_worst_key_cutoffs(Matching::from_entries(market, entries))
}

/// The seat-block rule: every school is its ordered list of blocks, every block a max-heap of the
/// students it holds with their class (worst on top) in one flat buffer, with a per-block "held
/// iff the key is below" threshold as in [`HeapAdmission`].
///
/// Held students are always the school's choice from everybody who applied so far, and each block
/// holds exactly what sequential processing of that set gives it. A new applicant walks the
/// blocks in precedence order: a block it is not eligible for, or that is full of better
/// applicants, passes it on unchanged; a block with a free seat takes it and the walk ends with
/// nobody let go; a full block it beats takes it and passes on its worst student instead (who was
/// the only applicant that block's successors now see in addition). Whoever leaves the last block
/// is let go. This is the same choice as re-running sequential processing on held + new, at the
/// cost of one heap operation per block passed.
#[derive(Debug, Clone)]
pub(crate) struct BlockAdmission<'r> {
    block_offsets: &'r [u32],
    classes: &'r [u32],
    /// Per block, its eligible classes as a range of `eligible_classes`; `OPEN` as length for
    /// open blocks. Kept flat and small so the walk over blocks stays in cache.
    eligible: Vec<(u32, u32)>,
    eligible_classes: Vec<u32>,
    /// Per school, whether any block is reserved: elsewhere the class is never read, which
    /// saves a load per application (a cache miss after a displacement).
    reserved: Vec<bool>,
    threshold: Vec<u64>,
    heads: Vec<HeapHead>,
    slots: Vec<BlockHeld>,
}

/// The length marking an open block in [`BlockAdmission::eligible`].
const OPEN: u32 = u32::MAX;

impl<'r> BlockAdmission<'r> {
    pub(crate) fn new(reserves: &'r Reserves<'_>) -> Self {
        let market = reserves.market();
        let (block_offsets, blocks) = (reserves.block_offsets(), reserves.flat_blocks());
        let mut heads = Vec::with_capacity(blocks.len());
        let mut total = 0u32;
        for school in 0..market.num_schools() {
            let demand = market.demand(school);
            for block in &blocks[block_offsets[school] as usize..block_offsets[school + 1] as usize]
            {
                heads.push(HeapHead {
                    start: total,
                    len: 0,
                    capacity: block.capacity,
                });
                total += block.capacity.min(demand);
            }
        }
        let mut eligible = Vec::with_capacity(blocks.len());
        let mut eligible_classes = Vec::new();
        for block in blocks {
            match &block.eligibility {
                Eligibility::Open => eligible.push((0, OPEN)),
                Eligibility::Classes(classes) => {
                    eligible.push((eligible_classes.len() as u32, classes.len() as u32));
                    eligible_classes.extend_from_slice(classes);
                }
            }
        }
        let reserved = block_offsets
            .windows(2)
            .map(|pair| {
                eligible[pair[0] as usize..pair[1] as usize]
                    .iter()
                    .any(|&(_, len)| len != OPEN)
            })
            .collect();
        let threshold = heads
            .iter()
            .map(|h| if h.capacity == 0 { 0 } else { u64::MAX })
            .collect();
        Self {
            block_offsets,
            classes: reserves.entry_classes(),
            eligible,
            eligible_classes,
            reserved,
            threshold,
            heads,
            slots: vec![BlockHeld::default(); total as usize],
        }
    }

    #[inline]
    fn admits(&self, block: usize, class: u32) -> bool {
        let (start, len) = self.eligible[block];
        len == OPEN || self.eligible_classes[start as usize..][..len as usize].contains(&class)
    }

    /// Per student the global block it holds (or `NONE`), per block its cutoff (the largest key
    /// of a full block with seats), per school its cutoff (the largest key of a full school).
    fn finish(&self, students: usize) -> (Vec<u32>, Vec<Option<u64>>, Vec<Option<u64>>) {
        let mut block_of = vec![NONE; students];
        for (b, head) in self.heads.iter().enumerate() {
            for held in &self.slots[head.start as usize..][..head.len as usize] {
                block_of[held.student as usize] = b as u32;
            }
        }
        let block_cutoffs: Vec<Option<u64>> = self
            .heads
            .iter()
            .map(|h| {
                (h.capacity > 0 && h.len == h.capacity).then(|| self.slots[h.start as usize].key)
            })
            .collect();
        let school_cutoffs = self
            .block_offsets
            .windows(2)
            .map(|pair| {
                let range = pair[0] as usize..pair[1] as usize;
                let full = self.heads[range.clone()]
                    .iter()
                    .all(|h| h.len == h.capacity);
                let worst = block_cutoffs[range].iter().flatten().max().copied();
                worst.filter(|_| full)
            })
            .collect();
        (block_of, block_cutoffs, school_cutoffs)
    }
}

impl Admission for BlockAdmission<'_> {
    #[inline]
    fn apply(&mut self, school: u32, student: u32, key: u64, entry: u32) -> Verdict {
        let s = school as usize;
        let class = if self.reserved[s] {
            self.classes[entry as usize]
        } else {
            0
        };
        let mut item = BlockHeld {
            key,
            student,
            class,
        };
        for b in self.block_offsets[s] as usize..self.block_offsets[s + 1] as usize {
            if item.key >= self.threshold[b] || !self.admits(b, item.class) {
                continue;
            }
            let head = &mut self.heads[b];
            if head.len < head.capacity {
                let heap = &mut self.slots[head.start as usize..][..=head.len as usize];
                sift_up(heap, item);
                head.len += 1;
                if head.len == head.capacity {
                    self.threshold[b] = heap[0].key;
                }
                return Verdict::Held;
            }
            let heap = &mut self.slots[head.start as usize..][..head.len as usize];
            let out = heap[0];
            replace_top(heap, item);
            self.threshold[b] = heap[0].key;
            item = out;
        }
        if item.student == student {
            Verdict::Rejected
        } else {
            Verdict::Displaced(item.student)
        }
    }
}

/// Student-proposing deferred acceptance with seat reserves: the generalised deferred acceptance
/// in which every school, at every application, re-chooses among the students it holds and the
/// new applicant with its sequential-processing choice function (see [`Reserves`]). Its choice
/// functions are substitutable and satisfy the law of aggregate demand, so the outcome is the
/// student-optimal matching stable with respect to them ([`Reserves::is_stable`]), and a market
/// without reserved blocks gets exactly [`deferred_acceptance`]'s matching and cutoffs.
///
/// Block cutoff: the largest key a full block holds; `None` when it has seats left or capacity
/// 0. The block a student holds is the one sequential processing of the school's final students
/// gives it. The block cutoffs explain the matching exactly: every student gets the first school
/// on its list with a block it is eligible for that has seats and no cutoff, or a cutoff at
/// least its key there; at a better school every block was either closed to it or full of
/// higher-priority students. School cutoff: the largest key a full school holds (descriptive
/// only: with reserves a student above it may still be turned away); `None` when the school has
/// seats left or capacity 0.
///
/// Runs in O(students + blocks + proposals x blocks per school x log capacity).
pub fn deferred_acceptance_with_reserves<'m>(reserves: &'m Reserves<'m>) -> ReservedOutcome<'m> {
    let market = reserves.market();
    let mut admission = BlockAdmission::new(reserves);
    let mut entries = vec![NONE; market.num_students()];
    propose(
        market,
        0..market.num_students() as u32,
        &mut admission,
        &mut entries,
    );
    let (block_of, block_cutoffs, cutoffs) = admission.finish(market.num_students());
    let outcome = Outcome::new(Matching::from_entries(market, entries), cutoffs);
    ReservedOutcome::new(outcome, reserves, block_of, block_cutoffs)
}

/// School-proposing deferred acceptance with seat reserves: the school-optimal (student-pessimal)
/// matching stable with respect to the schools' choice functions.
///
/// Every school offers its seats to its choice (see [`Reserves`]) among the applicants that have
/// not turned it down; a student keeps the best offer so far and turns the others down; a school
/// that was turned down chooses again. Because the choice functions are substitutable, a school
/// never withdraws an offer: after a refusal each block only takes the next eligible applicant in
/// priority order, possibly one a later block held (which then takes its own next one). So every
/// block keeps a cursor into the school's applicants that only moves forward. A market without
/// reserved blocks gets exactly [`school_proposing_deferred_acceptance`]'s matching.
///
/// Block cutoff: the largest key a full block holds; `None` when it has seats left or capacity 0.
/// The matching is stable, so the block cutoffs explain it as for
/// [`deferred_acceptance_with_reserves`]. School cutoff: the largest key a full school holds.
///
/// Runs in O(students + blocks + entries x blocks per school).
pub fn school_proposing_deferred_acceptance_with_reserves<'m>(
    reserves: &'m Reserves<'m>,
) -> ReservedOutcome<'m> {
    let market = reserves.market();
    let (n, m) = (market.num_students(), market.num_schools());
    let (offsets, applicants) = (market.applicant_offsets(), market.applicant_entries());
    let (entry_student, schools, keys) = (
        market.entry_student(),
        market.entry_schools(),
        market.entry_keys(),
    );
    let (block_offsets, blocks) = (reserves.block_offsets(), reserves.flat_blocks());
    let classes = reserves.entry_classes();
    // Per block: the next applicant to consider (index into `applicants`), the seats taken.
    let mut cursor = vec![0u32; blocks.len()];
    for s in 0..m {
        cursor[block_offsets[s] as usize..block_offsets[s + 1] as usize].fill(offsets[s]);
    }
    let mut taken = vec![0u32; blocks.len()];
    // Per entry at a school with several blocks: the block whose offer it holds, `NONE` if none,
    // or `REFUSED` (block indices are below both, see `ReserveError::TooManyBlocks`). A school
    // with one block needs no record: its cursor passes every applicant once.
    const REFUSED: u32 = NONE - 1;
    let several = |s: usize| block_offsets[s + 1] - block_offsets[s] > 1;
    let mut chosen_by = vec![NONE; market.preferences().num_entries()];
    let mut held = vec![NONE; n];
    let mut stack: Vec<u32> = (0..m as u32).rev().collect();
    while let Some(school) = stack.pop() {
        let s = school as usize;
        let (end, several_blocks) = (offsets[s + 1], several(s));
        for b in block_offsets[s] as usize..block_offsets[s + 1] as usize {
            while taken[b] < blocks[b].capacity && cursor[b] < end {
                let entry = applicants[cursor[b] as usize] as usize;
                cursor[b] += 1;
                let eligible = || match &blocks[b].eligibility {
                    Eligibility::Open => true,
                    Eligibility::Classes(eligible) => eligible.contains(&classes[entry]),
                };
                if several_blocks {
                    let by = chosen_by[entry];
                    if (by as usize) < b || by == REFUSED || !eligible() {
                        continue;
                    }
                    chosen_by[entry] = b as u32;
                    if by != NONE {
                        // Taken from a later block, which chooses again further down this loop.
                        taken[b] += 1;
                        taken[by as usize] -= 1;
                        continue;
                    }
                } else if !eligible() {
                    continue;
                }
                taken[b] += 1;
                let student = entry_student[entry] as usize;
                let current = held[student];
                // Entries of one student are in list order, so a smaller entry is a better school.
                if current == NONE || (entry as u32) < current {
                    if current != NONE {
                        let c = current as usize;
                        let previous = schools[c] as usize;
                        let block = if several(previous) {
                            std::mem::replace(&mut chosen_by[c], REFUSED)
                        } else {
                            block_offsets[previous]
                        };
                        taken[block as usize] -= 1;
                        stack.push(previous as u32);
                    }
                    held[student] = entry as u32;
                } else {
                    if several_blocks {
                        chosen_by[entry] = REFUSED;
                    }
                    taken[b] -= 1;
                }
            }
        }
    }
    let mut block_of = vec![NONE; n];
    let mut worst = vec![0u64; blocks.len()];
    for (student, &entry) in held.iter().enumerate() {
        if entry != NONE {
            let school = schools[entry as usize] as usize;
            let b = if several(school) {
                chosen_by[entry as usize]
            } else {
                block_offsets[school]
            };
            block_of[student] = b;
            worst[b as usize] = worst[b as usize].max(keys[entry as usize]);
        }
    }
    let block_cutoffs = (0..blocks.len())
        .map(|b| {
            let capacity = blocks[b].capacity;
            (capacity > 0 && taken[b] == capacity).then_some(worst[b])
        })
        .collect();
    let outcome = Outcome::with_worst_key_cutoffs(Matching::from_entries(market, held));
    ReservedOutcome::new(outcome, reserves, block_of, block_cutoffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_keeps_the_best_and_reports_the_worst() {
        let mut heap: Vec<Held> = Vec::new();
        let keys = [50u64, 10, 70, 30, 90, 20, 60, 40, 80];
        for (i, &key) in keys.iter().take(5).enumerate() {
            heap.push(Held::default());
            sift_up(
                &mut heap,
                Held {
                    key,
                    student: i as u32,
                },
            );
        }
        for (i, &key) in keys.iter().enumerate().skip(5) {
            if key < heap[0].key {
                replace_top(
                    &mut heap,
                    Held {
                        key,
                        student: i as u32,
                    },
                );
            }
        }
        let mut held: Vec<u64> = heap.iter().map(|h| h.key).collect();
        assert_eq!(heap[0].key, *held.iter().max().unwrap());
        held.sort_unstable();
        assert_eq!(held, vec![10, 20, 30, 40, 50]);
    }
}
