//! Seat reserves against oracles written here from the definitions: the sequential-processing
//! choice function (blocks in the order given, each taking the best eligible applicants no
//! earlier block took), stability with respect to it, brute force over every matching of tiny
//! markets, and immediate acceptance round by round. Hand-worked examples (reserved first vs
//! open first, hard reserves) are with the other textbook examples in `matching.rs`.

#![allow(clippy::needless_range_loop)]

use allot_solvers::matching::{
    self as mm, Eligibility, Market, Matching, Mechanism, Pair, ReserveError, ReservedOutcome,
    Reserves, SeatBlock,
};
use proptest::prelude::*;
use proptest::sample::Index;

use super::matching::{Assignment, Tiny, all_matchings, assignment, markets};

/// A tiny market with a priority class per listed school and seat blocks per school.
#[derive(Debug, Clone)]
struct Reserved {
    t: Tiny,
    /// Priority class per listed school, parallel to `t.lists`.
    classes: Vec<Vec<u32>>,
    /// Seat blocks per school in precedence order; `None`: none given (one open block).
    blocks: Vec<Option<Vec<SeatBlock>>>,
}

/// Per student, the index of its block at its school.
type Blocks = Vec<Option<usize>>;

impl Reserved {
    fn class(&self, i: usize, s: u32) -> u32 {
        self.classes[i][self.t.position(i, s).expect("listed")]
    }

    fn blocks_of(&self, s: u32) -> Vec<SeatBlock> {
        self.blocks[s as usize]
            .clone()
            .unwrap_or_else(|| vec![SeatBlock::open(self.t.capacities[s as usize])])
    }

    fn reserves<'m>(&self, market: &'m Market) -> Reserves<'m> {
        let given = self
            .blocks
            .iter()
            .enumerate()
            .filter_map(|(s, b)| Some((s as u32, b.clone()?)));
        Reserves::new(market, self.classes.concat(), given).expect("valid reserves")
    }

    fn eligible(&self, block: &SeatBlock, i: usize, s: u32) -> bool {
        match &block.eligibility {
            Eligibility::Open => true,
            Eligibility::Classes(classes) => classes.iter().any(|&c| c == self.class(i, s)),
        }
    }

    /// The school's choice from `applicants`: (student, block) pairs, by sequential processing.
    fn choose(&self, s: u32, applicants: &[usize]) -> Vec<(usize, usize)> {
        let mut order = applicants.to_vec();
        order.sort_by_key(|&i| self.t.key(i, s));
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        for (b, block) in self.blocks_of(s).iter().enumerate() {
            let mut taken = 0;
            for &i in &order {
                if taken == block.capacity {
                    break;
                }
                if !chosen.iter().any(|&(j, _)| j == i) && self.eligible(block, i, s) {
                    chosen.push((i, b));
                    taken += 1;
                }
            }
        }
        chosen
    }

    fn chooses(&self, s: u32, applicants: &[usize], i: usize) -> bool {
        self.choose(s, applicants).iter().any(|&(j, _)| j == i)
    }

    /// Pairs (i, s), s better than i's assignment, that s would choose from what it holds + i.
    fn blocking(&self, a: &Assignment) -> Vec<Pair> {
        let mut pairs = Vec::new();
        for i in 0..self.t.n() {
            for &s in &self.t.lists[i][..self.t.rank(i, a[i])] {
                let mut with = self.t.held(a, s);
                with.push(i);
                if self.chooses(s, &with, i) {
                    pairs.push(Pair {
                        student: i as u32,
                        school: s,
                    });
                }
            }
        }
        pairs
    }

    /// Students a school holds but would not choose from what it holds.
    fn rejected_holds(&self, a: &Assignment) -> Vec<Pair> {
        (0..self.t.n())
            .filter_map(|i| {
                let s = a[i]?;
                let held = self.t.held(a, s);
                (!self.chooses(s, &held, i)).then_some(Pair {
                    student: i as u32,
                    school: s,
                })
            })
            .collect()
    }

    fn stable(&self, a: &Assignment) -> bool {
        self.rejected_holds(a).is_empty() && self.blocking(a).is_empty()
    }

    fn stable_matchings(&self) -> Vec<Assignment> {
        all_matchings(&self.t)
            .into_iter()
            .filter(|a| self.stable(a))
            .collect()
    }

    /// Immediate acceptance round by round over the blocks' remaining seats: the assignment, the
    /// admitting block per student, per school the fill round and the largest key admitted in
    /// it, per block the same.
    #[allow(clippy::type_complexity)]
    fn boston(
        &self,
    ) -> (
        Assignment,
        Blocks,
        Vec<(Option<u32>, Option<u64>)>,
        Vec<Vec<(Option<u32>, Option<u64>)>>,
    ) {
        let (n, m) = (self.t.n(), self.t.m());
        let mut seats: Vec<Vec<u32>> = (0..m as u32)
            .map(|s| self.blocks_of(s).iter().map(|b| b.capacity).collect())
            .collect();
        let (mut out, mut block): (Assignment, Blocks) = (vec![None; n], vec![None; n]);
        let mut school_fill = vec![(None, None); m];
        let mut block_fill: Vec<Vec<_>> =
            seats.iter().map(|b| vec![(None, None); b.len()]).collect();
        let rounds = self.t.lists.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rounds {
            let unassigned: Vec<usize> = (0..n).filter(|&i| out[i].is_none()).collect();
            for s in 0..m as u32 {
                let before: u32 = seats[s as usize].iter().sum();
                let mut applicants: Vec<usize> = unassigned
                    .iter()
                    .copied()
                    .filter(|&i| self.t.lists[i].get(r) == Some(&s))
                    .collect();
                applicants.sort_by_key(|&i| self.t.key(i, s));
                let mut largest = None;
                for (b, seat_block) in self.blocks_of(s).iter().enumerate() {
                    for &i in &applicants {
                        let left = &mut seats[s as usize][b];
                        if *left == 0 {
                            break;
                        }
                        if out[i].is_some() || !self.eligible(seat_block, i, s) {
                            continue;
                        }
                        out[i] = Some(s);
                        block[i] = Some(b);
                        *left -= 1;
                        let key = self.t.key(i, s);
                        largest = largest.max(Some(key));
                        if *left == 0 {
                            block_fill[s as usize][b] = (Some(r as u32), Some(key));
                        }
                    }
                }
                if before > 0 && seats[s as usize].iter().sum::<u32>() == 0 {
                    school_fill[s as usize] = (Some(r as u32), largest);
                }
            }
        }
        (out, block, school_fill, block_fill)
    }
}

/// Markets as in `matching.rs` with 1 to 3 blocks per school (capacity 0 to 2 each, open or
/// reserved for one or two of the classes 0-2; sometimes none given, so the school keeps its
/// capacity as one open block) and a random class per (student, school), independent of keys.
fn reserved_markets(max_n: usize, max_m: usize) -> impl Strategy<Value = Reserved> {
    markets(max_n, max_m, 2)
        .prop_flat_map(|t| {
            let (n, m) = (t.n(), t.m());
            let eligibility = prop_oneof![
                2 => Just(Eligibility::Open),
                3 => proptest::sample::subsequence(vec![0u32, 1, 2], 1..=2)
                    .prop_map(Eligibility::Classes),
            ];
            let block = (0..=2u32, eligibility).prop_map(|(capacity, eligibility)| SeatBlock {
                capacity,
                eligibility,
            });
            let school = prop_oneof![
                1 => Just(None),
                4 => proptest::collection::vec(block, 1..=3).prop_map(Some),
            ];
            (
                Just(t),
                proptest::collection::vec(school, m),
                proptest::collection::vec(proptest::collection::vec(0..3u32, m), n),
            )
        })
        .prop_map(|(mut t, blocks, class_at)| {
            for (s, list) in blocks.iter().enumerate() {
                if let Some(list) = list {
                    t.capacities[s] = list.iter().map(|b| b.capacity).sum();
                }
            }
            let classes = t
                .lists
                .iter()
                .enumerate()
                .map(|(i, list)| list.iter().map(|&s| class_at[i][s as usize]).collect())
                .collect();
            Reserved { t, classes, blocks }
        })
}

/// Markets whose schools split their capacity into 1 to 3 open blocks.
fn open_split_markets(max_n: usize, max_m: usize, max_cap: u32) -> impl Strategy<Value = Reserved> {
    markets(max_n, max_m, max_cap)
        .prop_flat_map(move |t| {
            let m = t.m();
            (
                Just(t),
                proptest::collection::vec(proptest::collection::vec(0..=max_cap, 0..=2), m),
            )
        })
        .prop_map(|(t, cuts)| {
            let blocks = cuts
                .into_iter()
                .zip(&t.capacities)
                .map(|(mut cuts, &capacity)| {
                    cuts.iter_mut().for_each(|c| *c = (*c).min(capacity));
                    cuts.push(0);
                    cuts.push(capacity);
                    cuts.sort_unstable();
                    Some(
                        cuts.windows(2)
                            .map(|w| SeatBlock::open(w[1] - w[0]))
                            .collect(),
                    )
                })
                .collect();
            let classes = t.lists.iter().map(|l| vec![0; l.len()]).collect();
            Reserved { t, classes, blocks }
        })
}

/// What the stable mechanisms promise about blocks: each student holds the block sequential
/// processing of its school's final students gives it (so never a block it is not eligible
/// for), each full block's cutoff is its worst key, and the cutoffs explain the matching: every
/// student gets the first school on its list with an eligible block that has seats and no cutoff
/// or a cutoff at least its key.
fn check_stable_blocks(r: &Reserved, outcome: &ReservedOutcome<'_>) -> Result<(), TestCaseError> {
    let a = assignment(outcome.outcome());
    for s in 0..r.t.m() as u32 {
        let blocks = r.blocks_of(s);
        let chosen = r.choose(s, &r.t.held(&a, s));
        prop_assert_eq!(
            chosen.len(),
            r.t.held(&a, s).len(),
            "school {} keeps all",
            s
        );
        for &(i, b) in &chosen {
            prop_assert_eq!(outcome.block_of(i as u32), Some(b as u32), "student {}", i);
            prop_assert!(r.eligible(&blocks[b], i, s));
        }
        let cutoffs = outcome.block_cutoffs(s);
        prop_assert_eq!(cutoffs.len(), blocks.len());
        for (b, block) in blocks.iter().enumerate() {
            let in_block: Vec<u64> = chosen
                .iter()
                .filter(|&&(_, x)| x == b)
                .map(|&(i, _)| r.t.key(i, s))
                .collect();
            let full = block.capacity > 0 && in_block.len() == block.capacity as usize;
            let want = in_block.iter().max().copied().filter(|_| full);
            prop_assert_eq!(cutoffs[b], want, "cutoff of block {} of school {}", b, s);
        }
        // The school cutoff: the worst key of a full school.
        let held = r.t.held(&a, s);
        let full =
            r.t.capacities[s as usize] > 0 && held.len() == r.t.capacities[s as usize] as usize;
        let worst = held.iter().map(|&i| r.t.key(i, s)).max().filter(|_| full);
        prop_assert_eq!(outcome.outcome().cutoff(s), worst);
    }
    for i in 0..r.t.n() {
        let admits = |&s: &u32| {
            r.blocks_of(s)
                .iter()
                .zip(outcome.block_cutoffs(s))
                .any(|(block, &cutoff)| {
                    block.capacity > 0
                        && r.eligible(block, i, s)
                        && cutoff.is_none_or(|c| r.t.key(i, s) <= c)
                })
        };
        prop_assert_eq!(
            a[i],
            r.t.lists[i].iter().copied().find(admits),
            "student {}",
            i
        );
    }
    for student in 0..r.t.n() as u32 {
        prop_assert_eq!(
            outcome.block_of(student).is_some(),
            a[student as usize].is_some()
        );
    }
    Ok(())
}

fn check_boston(r: &Reserved, reserves: &Reserves<'_>) -> Result<(), TestCaseError> {
    let ia = mm::immediate_acceptance_with_reserves(reserves);
    let (a, blocks, school_fill, block_fill) = r.boston();
    prop_assert_eq!(assignment(ia.outcome.outcome()), a.clone());
    for i in 0..r.t.n() {
        prop_assert_eq!(ia.outcome.block_of(i as u32), blocks[i].map(|b| b as u32));
        if let (Some(s), Some(b)) = (a[i], blocks[i]) {
            prop_assert!(r.eligible(&r.blocks_of(s)[b], i, s), "student {}", i);
        }
    }
    for s in 0..r.t.m() as u32 {
        let fill = (
            ia.filled_in_round[s as usize],
            ia.outcome.outcome().cutoff(s),
        );
        prop_assert_eq!(fill, school_fill[s as usize]);
        let per_block: Vec<_> = ia
            .block_filled_in_round(s)
            .iter()
            .copied()
            .zip(ia.outcome.block_cutoffs(s).iter().copied())
            .collect();
        prop_assert_eq!(&per_block, &block_fill[s as usize]);
    }
    // The explanation: at a better school, listed at position p, every block the student is
    // eligible for filled before round p, or in round p with a cutoff below its key.
    for i in 0..r.t.n() {
        for (p, &s) in r.t.lists[i][..r.t.rank(i, a[i])].iter().enumerate() {
            let shut = r
                .blocks_of(s)
                .iter()
                .zip(&block_fill[s as usize])
                .filter(|(block, _)| r.eligible(block, i, s))
                .all(|(block, &fill)| match fill {
                    (Some(round), Some(c)) => {
                        (round as usize) < p || (round as usize == p && c < r.t.key(i, s))
                    }
                    _ => block.capacity == 0,
                });
            prop_assert!(shut, "student {} at school {}", i, s);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn da_with_reserves_is_the_student_optimal_stable_matching(r in reserved_markets(6, 3)) {
        let market = r.t.market();
        let reserves = r.reserves(&market);
        let outcome = mm::deferred_acceptance_with_reserves(&reserves);
        let da = assignment(outcome.outcome());
        let stable = r.stable_matchings();
        prop_assert!(stable.contains(&da), "DA {:?} is not stable", da);
        for other in &stable {
            for i in 0..r.t.n() {
                prop_assert!(r.t.rank(i, da[i]) <= r.t.rank(i, other[i]));
            }
        }
        check_stable_blocks(&r, &outcome)?;
        prop_assert_eq!(reserves.is_stable(outcome.matching()), Ok(true));
    }

    #[test]
    fn school_da_with_reserves_is_the_student_pessimal_stable_matching(r in reserved_markets(6, 3)) {
        let market = r.t.market();
        let reserves = r.reserves(&market);
        let outcome = mm::school_proposing_deferred_acceptance_with_reserves(&reserves);
        let sda = assignment(outcome.outcome());
        let stable = r.stable_matchings();
        prop_assert!(stable.contains(&sda), "school DA {:?} is not stable", sda);
        for other in &stable {
            for i in 0..r.t.n() {
                prop_assert!(r.t.rank(i, sda[i]) >= r.t.rank(i, other[i]));
            }
        }
        check_stable_blocks(&r, &outcome)?;
    }

    #[test]
    fn boston_with_reserves_is_round_by_round(r in reserved_markets(6, 3)) {
        let market = r.t.market();
        check_boston(&r, &r.reserves(&market))?;
    }

    /// Splitting capacity into open blocks, or giving no blocks, changes nothing.
    #[test]
    fn open_blocks_give_the_plain_mechanisms(r in open_split_markets(8, 4, 4), none in any::<bool>()) {
        let market = r.t.market();
        let reserves = if none {
            Reserves::new(&market, r.classes.concat(), []).unwrap()
        } else {
            r.reserves(&market)
        };
        let da = mm::deferred_acceptance_with_reserves(&reserves);
        prop_assert_eq!(da.outcome(), &mm::deferred_acceptance(&market));
        let sda = mm::school_proposing_deferred_acceptance_with_reserves(&reserves);
        prop_assert_eq!(sda.outcome(), &mm::school_proposing_deferred_acceptance(&market));
        let ia = mm::immediate_acceptance_with_reserves(&reserves);
        let plain = mm::immediate_acceptance(&market);
        prop_assert_eq!(ia.outcome.outcome(), &plain.outcome);
        prop_assert_eq!(&ia.filled_in_round, &plain.filled_in_round);
        if none {
            for s in 0..r.t.m() as u32 {
                prop_assert_eq!(da.block_cutoffs(s), &[da.outcome().cutoff(s)][..]);
                prop_assert_eq!(ia.outcome.block_cutoffs(s), &[plain.outcome.cutoff(s)][..]);
            }
        }
        for mechanism in Mechanism::ALL {
            match mechanism.run_with_reserves(&reserves) {
                Ok(outcome) => {
                    prop_assert!(mechanism.supports_reserves());
                    prop_assert_eq!(outcome.outcome(), &mechanism.run(&market));
                }
                Err(e) => {
                    prop_assert!(!mechanism.supports_reserves());
                    prop_assert_eq!(e.mechanism, mechanism);
                }
            }
        }
    }

    #[test]
    fn reserve_verifiers_agree_with_the_definitions(r in reserved_markets(5, 3), pick in any::<Index>()) {
        let market = r.t.market();
        let reserves = r.reserves(&market);
        let all = all_matchings(&r.t);
        let a = pick.get(&all);
        let matching = Matching::new(&market, a).unwrap();
        prop_assert_eq!(reserves.blocking_pairs(&matching), Ok(r.blocking(a)));
        prop_assert_eq!(reserves.rejected_holds(&matching), Ok(r.rejected_holds(a)));
        prop_assert_eq!(reserves.is_stable(&matching), Ok(r.stable(a)));
    }

    /// The property the student-proposing loop relies on (and the module documents): sequential
    /// processing is substitutable (whoever is chosen from a set is chosen from every subset
    /// containing it) and size-monotone (a larger set never gets fewer chosen), so one new
    /// applicant makes a school let go of at most one student.
    #[test]
    fn sequential_processing_is_substitutable_and_size_monotone(
        r in reserved_markets(6, 1),
        pick in proptest::collection::vec(any::<bool>(), 6),
    ) {
        let applicants: Vec<usize> = (0..r.t.n()).filter(|&i| r.t.lists[i].contains(&0)).collect();
        let subset: Vec<usize> = applicants.iter().copied().filter(|&i| pick[i]).collect();
        let (big, small) = (r.choose(0, &applicants), r.choose(0, &subset));
        prop_assert!(big.len() >= small.len());
        for &(i, _) in &big {
            prop_assert!(!subset.contains(&i) || small.iter().any(|&(j, _)| j == i));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn reserves_on_medium_markets(r in reserved_markets(40, 6)) {
        let market = r.t.market();
        let reserves = r.reserves(&market);
        let da = mm::deferred_acceptance_with_reserves(&reserves);
        let sda = mm::school_proposing_deferred_acceptance_with_reserves(&reserves);
        for outcome in [&da, &sda] {
            let a = assignment(outcome.outcome());
            prop_assert!(r.stable(&a));
            prop_assert_eq!(reserves.blocking_pairs(outcome.matching()), Ok(vec![]));
            prop_assert_eq!(reserves.rejected_holds(outcome.matching()), Ok(vec![]));
            check_stable_blocks(&r, outcome)?;
        }
        let (a, b) = (assignment(da.outcome()), assignment(sda.outcome()));
        for i in 0..r.t.n() {
            prop_assert!(r.t.rank(i, a[i]) <= r.t.rank(i, b[i]));
        }
        check_boston(&r, &reserves)?;
    }
}

/// With keys from `priority_key`, the class can be read from them.
#[test]
fn key_classes_come_from_the_keys() {
    let t = Tiny {
        capacities: vec![2, 1],
        lists: vec![vec![0, 1], vec![1], vec![0]],
        keys: vec![
            vec![
                mm::priority_key(1, 7).unwrap(),
                mm::priority_key(0, 7).unwrap(),
            ],
            vec![mm::priority_key(2, 3).unwrap()],
            vec![mm::priority_key(1, 5).unwrap()],
        ],
    };
    let market = t.market();
    let blocks = [(0, vec![SeatBlock::reserved(1, [1]), SeatBlock::open(1)])];
    let reserves = Reserves::with_key_classes(&market, blocks).unwrap();
    assert_eq!(reserves.classes_of(0), &[1, 0]);
    assert_eq!(reserves.class(1, 1), Some(2));
    assert_eq!(reserves.class(1, 0), None);
    assert_eq!(reserves.classes_of(9), &[] as &[u32]);
    assert_eq!(reserves.blocks(1), &[SeatBlock::open(1)]);
    assert_eq!(reserves.blocks(0).len(), 2);
    assert_eq!(reserves.blocks(2), &[] as &[SeatBlock]);
    // A key above `priority_key`'s range has no valid class.
    let prefs = mm::Preferences::from_lists(1, &[vec![0u32]]).unwrap();
    let raw = Market::new(prefs, vec![1], vec![u64::MAX - 1]).unwrap();
    assert!(matches!(
        Reserves::with_key_classes(&raw, []),
        Err(ReserveError::EntryClassOutOfRange {
            student: 0,
            position: 0,
            ..
        })
    ));
}

#[test]
fn reserve_errors_are_typed() {
    let t = Tiny {
        capacities: vec![2, 1],
        lists: vec![vec![0, 1], vec![1]],
        keys: vec![vec![1, 1], vec![2]],
    };
    let market = t.market();
    let classes = || vec![0, 1, 2];
    let new = |classes: Vec<u32>, blocks: Vec<(u32, Vec<SeatBlock>)>| {
        Reserves::new(&market, classes, blocks).map(|_| ())
    };
    assert_eq!(
        new(vec![0, 1], vec![]),
        Err(ReserveError::ClassesLength {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        new(vec![0, 0, mm::MAX_CLASS + 1], vec![]),
        Err(ReserveError::EntryClassOutOfRange {
            student: 1,
            position: 0,
            class: mm::MAX_CLASS + 1
        })
    );
    assert_eq!(
        new(classes(), vec![(2, vec![SeatBlock::open(1)])]),
        Err(ReserveError::SchoolOutOfRange {
            school: 2,
            schools: 2
        })
    );
    assert_eq!(
        new(
            classes(),
            vec![(1, vec![SeatBlock::open(1)]), (1, vec![SeatBlock::open(1)])]
        ),
        Err(ReserveError::DuplicateSchool { school: 1 })
    );
    assert_eq!(
        new(
            classes(),
            vec![(0, vec![SeatBlock::open(1), SeatBlock::reserved(2, [1])])]
        ),
        Err(ReserveError::CapacityMismatch {
            school: 0,
            seats: 3,
            capacity: 2
        })
    );
    assert_eq!(
        new(classes(), vec![(0, vec![])]),
        Err(ReserveError::CapacityMismatch {
            school: 0,
            seats: 0,
            capacity: 2
        })
    );
    assert_eq!(
        new(
            classes(),
            vec![(0, vec![SeatBlock::open(1), SeatBlock::reserved(1, [])])]
        ),
        Err(ReserveError::EmptyReservation {
            school: 0,
            block: 1
        })
    );
    assert_eq!(
        new(
            classes(),
            vec![(0, vec![SeatBlock::reserved(2, [3, mm::MAX_CLASS + 1])])]
        ),
        Err(ReserveError::BlockClassOutOfRange {
            school: 0,
            block: 0,
            class: mm::MAX_CLASS + 1
        })
    );
    // Classes are stored sorted and distinct; zero-seat blocks are allowed.
    let blocks = vec![(
        0,
        vec![
            SeatBlock::reserved(2, [4, 1, 4]),
            SeatBlock::reserved(0, [2]),
            SeatBlock::open(0),
        ],
    )];
    let reserves = Reserves::new(&market, classes(), blocks).unwrap();
    assert_eq!(
        reserves.blocks(0)[0].eligibility,
        Eligibility::Classes(vec![1, 4])
    );
    // A matching of another market is refused, even one of equal shape.
    let other = Tiny {
        keys: vec![vec![1, 2], vec![1]],
        ..t.clone()
    }
    .market();
    let foreign = mm::deferred_acceptance(&other);
    assert_eq!(
        reserves.blocking_pairs(foreign.matching()),
        Err(ReserveError::ForeignMatching)
    );
    assert_eq!(
        reserves.is_stable(foreign.matching()),
        Err(ReserveError::ForeignMatching)
    );
    // An equal market (a clone) is the same market. Plain DA puts student 0 (class 0) at
    // school 0, whose only seats are now reserved for classes 1 and 4: a hold the school rejects.
    let clone = market.clone();
    let da = mm::deferred_acceptance(&clone);
    assert_eq!(da.matching().school_of(0), Some(0));
    assert_eq!(
        reserves.rejected_holds(da.matching()),
        Ok(vec![Pair {
            student: 0,
            school: 0
        }])
    );
    assert_eq!(reserves.is_stable(da.matching()), Ok(false));
    let unsupported = Mechanism::TopTradingCycles
        .run_with_reserves(&reserves)
        .unwrap_err();
    assert_eq!(unsupported.mechanism, Mechanism::TopTradingCycles);
    assert!(
        unsupported
            .to_string()
            .contains("does not support seat reserves")
    );
}
