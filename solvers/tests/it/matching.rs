//! Matching mechanisms against independent oracles: brute force over every matching of tiny
//! markets, plain textbook implementations of each mechanism written here from the papers'
//! definitions (round by round, no shared code with the library), hand-worked examples from the
//! literature, direct SHA-256 for the lotteries, and, when installed, the C++ reference DA and
//! the Python `matching` library (see `../shared/anchors/README.md`).

// The oracles loop over student and school ids on purpose: they read like the papers.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use allot_solvers::matching::{
    self as mm, Market, MarketError, Matching, Mechanism, Outcome, Pair, ParetoImprovement,
    Preferences, Seed, SerialOrder,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use sha2::{Digest, Sha256};

/// A small market kept in the most obvious form, for the oracles below.
#[derive(Debug, Clone)]
pub(crate) struct Tiny {
    pub(crate) capacities: Vec<u32>,
    pub(crate) lists: Vec<Vec<u32>>,
    /// Priority key per listed school, parallel to `lists`.
    pub(crate) keys: Vec<Vec<u64>>,
}

pub(crate) type Assignment = Vec<Option<u32>>;

impl Tiny {
    pub(crate) fn n(&self) -> usize {
        self.lists.len()
    }

    pub(crate) fn m(&self) -> usize {
        self.capacities.len()
    }

    pub(crate) fn market(&self) -> Market {
        let prefs = Preferences::from_lists(self.m(), &self.lists).expect("valid lists");
        Market::new(prefs, self.capacities.clone(), self.keys.concat()).expect("valid market")
    }

    pub(crate) fn position(&self, i: usize, s: u32) -> Option<usize> {
        self.lists[i].iter().position(|&x| x == s)
    }

    pub(crate) fn key(&self, i: usize, s: u32) -> u64 {
        self.keys[i][self.position(i, s).expect("listed")]
    }

    /// Position of the assignment in the student's list; the list's length when unassigned.
    pub(crate) fn rank(&self, i: usize, a: Option<u32>) -> usize {
        a.map_or(self.lists[i].len(), |s| {
            self.position(i, s).expect("listed")
        })
    }

    pub(crate) fn held(&self, a: &Assignment, s: u32) -> Vec<usize> {
        (0..self.n()).filter(|&j| a[j] == Some(s)).collect()
    }

    pub(crate) fn feasible(&self, a: &Assignment) -> bool {
        a.len() == self.n()
            && (0..self.n()).all(|i| a[i].is_none_or(|s| self.position(i, s).is_some()))
            && (0..self.m() as u32)
                .all(|s| self.held(a, s).len() <= self.capacities[s as usize] as usize)
    }
}

pub(crate) fn assignment(outcome: &Outcome<'_>) -> Assignment {
    outcome.matching().assignment()
}

// ---------------------------------------------------------------------------------------------
// Brute force and textbook oracles.

/// Every feasible matching.
pub(crate) fn all_matchings(t: &Tiny) -> Vec<Assignment> {
    fn go(
        t: &Tiny,
        i: usize,
        seats: &mut [u32],
        current: &mut Assignment,
        out: &mut Vec<Assignment>,
    ) {
        if i == t.n() {
            out.push(current.clone());
            return;
        }
        current[i] = None;
        go(t, i + 1, seats, current, out);
        for &s in &t.lists[i] {
            if seats[s as usize] > 0 {
                seats[s as usize] -= 1;
                current[i] = Some(s);
                go(t, i + 1, seats, current, out);
                seats[s as usize] += 1;
            }
        }
        current[i] = None;
    }
    let mut out = Vec::new();
    go(
        t,
        0,
        &mut t.capacities.clone(),
        &mut vec![None; t.n()],
        &mut out,
    );
    out
}

/// Blocking pairs straight from the definition, by student then preference.
fn naive_blocking(t: &Tiny, a: &Assignment) -> Vec<Pair> {
    naive_pairs(t, a, true)
}

fn naive_envy(t: &Tiny, a: &Assignment) -> Vec<Pair> {
    naive_pairs(t, a, false)
}

fn naive_pairs(t: &Tiny, a: &Assignment, count_vacancies: bool) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for i in 0..t.n() {
        for &s in &t.lists[i][..t.rank(i, a[i])] {
            let held = t.held(a, s);
            let vacant = held.len() < t.capacities[s as usize] as usize;
            let envy = held.iter().any(|&j| t.key(j, s) > t.key(i, s));
            if envy || (count_vacancies && vacant) {
                pairs.push(Pair {
                    student: i as u32,
                    school: s,
                });
            }
        }
    }
    pairs
}

fn naive_stable(t: &Tiny, a: &Assignment) -> bool {
    naive_blocking(t, a).is_empty()
}

/// Whether `b` Pareto dominates `a`: every student weakly better, one strictly.
fn dominates(t: &Tiny, b: &Assignment, a: &Assignment) -> bool {
    let ranks = |x: &Assignment| (0..t.n()).map(|i| t.rank(i, x[i])).collect::<Vec<_>>();
    let (rb, ra) = (ranks(b), ranks(a));
    rb.iter().zip(&ra).all(|(x, y)| x <= y) && rb != ra
}

fn brute_pareto_efficient(t: &Tiny, a: &Assignment) -> bool {
    !all_matchings(t).iter().any(|b| dominates(t, b, a))
}

/// The largest key held by a full school with seats.
fn worst_if_full(t: &Tiny, a: &Assignment, s: u32) -> Option<u64> {
    let held = t.held(a, s);
    let full = t.capacities[s as usize] > 0 && held.len() == t.capacities[s as usize] as usize;
    held.iter().map(|&j| t.key(j, s)).max().filter(|_| full)
}

/// Top trading cycles in the textbook's simultaneous rounds.
fn naive_ttc(t: &Tiny) -> Assignment {
    let (n, m) = (t.n(), t.m());
    let mut seats = t.capacities.clone();
    let mut out = vec![None; n];
    let mut remaining = vec![true; n];
    loop {
        for i in 0..n {
            if remaining[i] && !t.lists[i].iter().any(|&s| seats[s as usize] > 0) {
                remaining[i] = false;
            }
        }
        if !remaining.contains(&true) {
            return out;
        }
        // Node v < n is a student, n + s a school.
        let next = |v: usize| -> Option<usize> {
            if v < n {
                let s = *t.lists[v].iter().find(|&&s| seats[s as usize] > 0)?;
                Some(n + s as usize)
            } else {
                let s = (v - n) as u32;
                (0..n)
                    .filter(|&j| remaining[j] && t.position(j, s).is_some())
                    .min_by_key(|&j| t.key(j, s))
            }
        };
        let mut trades = Vec::new();
        for i in (0..n).filter(|&i| remaining[i]) {
            let mut v = i;
            for _ in 0..2 * (n + m) {
                v = next(v).expect("remaining students and schools with seats have pointers");
                if v == i {
                    trades.push((i, (next(i).unwrap() - n) as u32));
                    break;
                }
            }
        }
        assert!(!trades.is_empty(), "every round has a cycle");
        for (i, s) in trades {
            out[i] = Some(s);
            seats[s as usize] -= 1;
            remaining[i] = false;
        }
    }
}

/// Immediate acceptance round by round: (assignment, round each school filled, its cutoff).
fn naive_boston(t: &Tiny) -> (Assignment, Vec<Option<u32>>, Vec<Option<u64>>) {
    let mut seats = t.capacities.clone();
    let mut out: Assignment = vec![None; t.n()];
    let (mut filled, mut cutoff) = (vec![None; t.m()], vec![None; t.m()]);
    let rounds = t.lists.iter().map(Vec::len).max().unwrap_or(0);
    for r in 0..rounds {
        let unassigned: Vec<usize> = (0..t.n()).filter(|&i| out[i].is_none()).collect();
        for s in 0..t.m() as u32 {
            let mut applicants: Vec<usize> = unassigned
                .iter()
                .copied()
                .filter(|&i| t.lists[i].get(r) == Some(&s))
                .collect();
            applicants.sort_by_key(|&i| t.key(i, s));
            let admitted = applicants.len().min(seats[s as usize] as usize);
            for &i in &applicants[..admitted] {
                out[i] = Some(s);
            }
            seats[s as usize] -= admitted as u32;
            if admitted > 0 && seats[s as usize] == 0 {
                filled[s as usize] = Some(r as u32);
                cutoff[s as usize] = Some(t.key(applicants[admitted - 1], s));
            }
        }
    }
    (out, filled, cutoff)
}

fn naive_serial_dictatorship(t: &Tiny, order: &[u32]) -> Assignment {
    let mut seats = t.capacities.clone();
    let mut out = vec![None; t.n()];
    for &i in order {
        if let Some(&s) = t.lists[i as usize].iter().find(|&&s| seats[s as usize] > 0) {
            seats[s as usize] -= 1;
            out[i as usize] = Some(s);
        }
    }
    out
}

/// One rejection in a step-by-step (simultaneous proposals) run of deferred acceptance.
struct Rejection {
    student: usize,
    school: u32,
    step: usize,
    /// The step the student was tentatively placed at the school, if it ever was.
    placed: Option<usize>,
}

/// Gale and Shapley's deferred acceptance in simultaneous steps over the given lists, with the
/// rejection history Kesten's interrupters are defined on.
fn stepwise_da(t: &Tiny, lists: &[Vec<u32>]) -> (Assignment, Vec<Rejection>) {
    let mut next = vec![0usize; t.n()];
    let mut held: Vec<Vec<(usize, usize)>> = vec![Vec::new(); t.m()]; // (student, step placed)
    let mut proposers: Vec<usize> = (0..t.n()).filter(|&i| !lists[i].is_empty()).collect();
    let mut rejections = Vec::new();
    let mut step = 1;
    while !proposers.is_empty() {
        let mut offers: Vec<Vec<usize>> = vec![Vec::new(); t.m()];
        for &i in &proposers {
            offers[lists[i][next[i]] as usize].push(i);
            next[i] += 1;
        }
        let mut rejected = Vec::new();
        for s in 0..t.m() {
            if offers[s].is_empty() {
                continue;
            }
            let mut pool: Vec<(usize, Option<usize>)> =
                held[s].iter().map(|&(i, p)| (i, Some(p))).collect();
            pool.extend(offers[s].iter().map(|&i| (i, None)));
            pool.sort_by_key(|&(i, _)| t.key(i, s as u32));
            let keep = pool.len().min(t.capacities[s] as usize);
            held[s] = pool[..keep]
                .iter()
                .map(|&(i, p)| (i, p.unwrap_or(step)))
                .collect();
            for &(i, placed) in &pool[keep..] {
                rejections.push(Rejection {
                    student: i,
                    school: s as u32,
                    step,
                    placed,
                });
                rejected.push(i);
            }
        }
        proposers = rejected
            .into_iter()
            .filter(|&i| next[i] < lists[i].len())
            .collect();
        step += 1;
    }
    let mut out = vec![None; t.n()];
    for (s, h) in held.iter().enumerate() {
        for &(i, _) in h {
            out[i] = Some(s as u32);
        }
    }
    (out, rejections)
}

/// Kesten's (2010) original EADAM with every student consenting: rerun DA after removing, for
/// the interrupting pairs of the last step that has any, the school from the interrupter's list.
fn kesten_eadam(t: &Tiny) -> Assignment {
    let mut lists = t.lists.clone();
    loop {
        let (out, rejections) = stepwise_da(t, &lists);
        // (i, s) interrupts at step t' if i was placed at s at step t < t' and rejected at t',
        // and another student was rejected from s at a step in [t, t').
        let interrupting: Vec<(usize, u32, usize)> = rejections
            .iter()
            .filter_map(|r| {
                let placed = r.placed?;
                rejections
                    .iter()
                    .any(|o| {
                        o.school == r.school
                            && o.student != r.student
                            && placed <= o.step
                            && o.step < r.step
                    })
                    .then_some((r.student, r.school, r.step))
            })
            .collect();
        let Some(last) = interrupting.iter().map(|&(_, _, step)| step).max() else {
            return out;
        };
        for &(i, s, _) in interrupting.iter().filter(|p| p.2 == last) {
            lists[i].retain(|&x| x != s);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random markets.

/// Markets with `1..=max_n` students and `1..=max_m` schools, capacities 0 to `max_cap` (0 now
/// and then), incomplete lists, priority classes 0-2 and either one lottery per student or
/// independent noise per (student, school).
pub(crate) fn markets(max_n: usize, max_m: usize, max_cap: u32) -> impl Strategy<Value = Tiny> {
    (1..=max_n, 1..=max_m, any::<bool>())
        .prop_flat_map(move |(n, m, single)| {
            let schools: Vec<u32> = (0..m as u32).collect();
            let list = proptest::sample::subsequence(schools, 0..=m).prop_shuffle();
            let capacity = prop_oneof![1 => Just(0u32), 5 => 1..=max_cap];
            (
                proptest::collection::vec(capacity, m),
                proptest::collection::vec(list, n),
                proptest::collection::vec(proptest::collection::vec((0..3u64, 0..1000u64), m), n),
                Just((0..n as u64).collect::<Vec<_>>()).prop_shuffle(),
                Just(single),
            )
        })
        .prop_map(|(capacities, lists, noise, lottery, single)| {
            let keys = lists
                .iter()
                .enumerate()
                .map(|(i, list)| {
                    list.iter()
                        .map(|&s| {
                            let (class, noise) = noise[i][s as usize];
                            // Distinct per school: the lottery, or the student id under the noise.
                            class << 40
                                | if single {
                                    lottery[i]
                                } else {
                                    noise << 20 | i as u64
                                }
                        })
                        .collect()
                })
                .collect();
            Tiny {
                capacities,
                lists,
                keys,
            }
        })
}

/// A random serial order: a shuffled permutation of the students.
fn with_order(strategy: impl Strategy<Value = Tiny>) -> impl Strategy<Value = (Tiny, Vec<u32>)> {
    strategy.prop_flat_map(|t| {
        let order = Just((0..t.n() as u32).collect::<Vec<_>>()).prop_shuffle();
        (Just(t), order)
    })
}

// ---------------------------------------------------------------------------------------------
// Properties shared by the tiny (brute force) and medium-sized runs.

/// Stable-mechanism cutoffs: the worst key a full school holds, and they explain the matching:
/// every student gets the first school with seats whose cutoff is absent or at least its key.
fn check_stable_cutoffs(t: &Tiny, outcome: &Outcome<'_>) -> Result<(), TestCaseError> {
    let a = assignment(outcome);
    for s in 0..t.m() as u32 {
        prop_assert_eq!(
            outcome.cutoff(s),
            worst_if_full(t, &a, s),
            "cutoff of school {}",
            s
        );
    }
    for i in 0..t.n() {
        let admits = |&s: &u32| {
            t.capacities[s as usize] > 0 && outcome.cutoff(s).is_none_or(|c| t.key(i, s) <= c)
        };
        prop_assert_eq!(
            a[i],
            t.lists[i].iter().copied().find(admits),
            "student {}",
            i
        );
    }
    Ok(())
}

/// Cutoffs of the non-stable mechanisms: the worst key a full school holds.
fn check_worst_key_cutoffs(t: &Tiny, outcome: &Outcome<'_>) -> Result<(), TestCaseError> {
    let a = assignment(outcome);
    for s in 0..t.m() as u32 {
        prop_assert_eq!(
            outcome.cutoff(s),
            worst_if_full(t, &a, s),
            "cutoff of school {}",
            s
        );
    }
    Ok(())
}

fn check_boston(t: &Tiny, market: &Market) -> Result<(), TestCaseError> {
    let ia = mm::immediate_acceptance(market);
    let (a, filled, cutoffs) = naive_boston(t);
    prop_assert_eq!(assignment(&ia.outcome), a.clone());
    prop_assert_eq!(&ia.filled_in_round, &filled);
    prop_assert_eq!(ia.outcome.cutoffs(), &cutoffs[..]);
    // The explanation: every better choice at position p filled before round p, or in round p
    // with a cutoff below the student's key (or has no seats at all).
    for i in 0..t.n() {
        for (p, &s) in t.lists[i][..t.rank(i, a[i])].iter().enumerate() {
            let shut = match (filled[s as usize], cutoffs[s as usize]) {
                (Some(r), Some(c)) => (r as usize) < p || (r as usize == p && c < t.key(i, s)),
                _ => t.capacities[s as usize] == 0,
            };
            prop_assert!(shut, "student {} at school {}", i, s);
        }
    }
    Ok(())
}

/// The library's verifiers agree with the definitions on this matching.
fn check_verifiers(t: &Tiny, matching: &Matching<'_>) -> Result<(), TestCaseError> {
    let a = matching.assignment();
    prop_assert_eq!(matching.blocking_pairs(), naive_blocking(t, &a));
    prop_assert_eq!(matching.count_blocking_pairs(), naive_blocking(t, &a).len());
    prop_assert_eq!(matching.is_stable(), naive_stable(t, &a));
    prop_assert_eq!(matching.justified_envy(), naive_envy(t, &a));
    prop_assert_eq!(matching.count_justified_envy(), naive_envy(t, &a).len());
    if let Some(witness) = matching.pareto_improvement() {
        let mut better = a.clone();
        match &witness {
            ParetoImprovement::VacantSeat(pair) => {
                better[pair.student as usize] = Some(pair.school)
            }
            ParetoImprovement::Cycle(pairs) => {
                prop_assert!(
                    pairs.len() >= 2,
                    "a cycle trades between at least two students"
                );
                for pair in pairs {
                    better[pair.student as usize] = Some(pair.school);
                }
            }
        }
        prop_assert!(
            t.feasible(&better),
            "witness {:?} gives an infeasible matching",
            witness
        );
        prop_assert!(
            dominates(t, &better, &a),
            "witness {:?} does not improve",
            witness
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn da_is_the_student_optimal_stable_matching(t in markets(6, 3, 2)) {
        let market = t.market();
        let outcome = mm::deferred_acceptance(&market);
        let da = assignment(&outcome);
        let stable: Vec<Assignment> = all_matchings(&t).into_iter().filter(|a| naive_stable(&t, a)).collect();
        prop_assert!(stable.contains(&da));
        for other in &stable {
            for i in 0..t.n() {
                prop_assert!(t.rank(i, da[i]) <= t.rank(i, other[i]));
            }
        }
        check_stable_cutoffs(&t, &outcome)?;
    }

    #[test]
    fn school_proposing_da_is_the_student_pessimal_stable_matching(t in markets(6, 3, 2)) {
        let market = t.market();
        let outcome = mm::school_proposing_deferred_acceptance(&market);
        let sda = assignment(&outcome);
        let stable: Vec<Assignment> = all_matchings(&t).into_iter().filter(|a| naive_stable(&t, a)).collect();
        prop_assert!(stable.contains(&sda));
        // School-optimal = student-pessimal: every student weakly prefers every stable matching.
        for other in &stable {
            for i in 0..t.n() {
                prop_assert!(t.rank(i, sda[i]) >= t.rank(i, other[i]));
            }
        }
        check_stable_cutoffs(&t, &outcome)?;
    }

    #[test]
    fn ttc_is_the_textbook_ttc_and_pareto_efficient(t in markets(6, 3, 2)) {
        let market = t.market();
        let outcome = mm::top_trading_cycles(&market);
        let a = assignment(&outcome);
        prop_assert_eq!(&a, &naive_ttc(&t));
        prop_assert!(brute_pareto_efficient(&t, &a));
        check_worst_key_cutoffs(&t, &outcome)?;
    }

    #[test]
    fn eada_is_kesten_eadam_pareto_efficient_and_weakly_better_than_da(t in markets(6, 3, 2)) {
        let market = t.market();
        let outcome = mm::efficiency_adjusted_deferred_acceptance(&market);
        let a = assignment(&outcome);
        prop_assert_eq!(&a, &kesten_eadam(&t));
        prop_assert!(brute_pareto_efficient(&t, &a));
        let da = assignment(&mm::deferred_acceptance(&market));
        for i in 0..t.n() {
            prop_assert!(t.rank(i, a[i]) <= t.rank(i, da[i]));
        }
        check_worst_key_cutoffs(&t, &outcome)?;
    }

    #[test]
    fn boston_is_textbook_and_pareto_efficient_for_stated_preferences(t in markets(6, 3, 2)) {
        let market = t.market();
        check_boston(&t, &market)?;
        let a = assignment(&mm::immediate_acceptance(&market).outcome);
        prop_assert!(brute_pareto_efficient(&t, &a));
    }

    #[test]
    fn serial_dictatorship_is_textbook_and_pareto_efficient((t, order) in with_order(markets(6, 3, 2))) {
        let market = t.market();
        let serial = SerialOrder::new(order.clone()).unwrap();
        let outcome = mm::serial_dictatorship(&market, &serial).unwrap();
        let a = assignment(&outcome);
        prop_assert_eq!(&a, &naive_serial_dictatorship(&t, &order));
        prop_assert!(brute_pareto_efficient(&t, &a));
        for s in 0..t.m() as u32 {
            let last = t.held(&a, s).iter().map(|&i| order.iter().position(|&x| x as usize == i).unwrap() as u64).max();
            let full = t.capacities[s as usize] > 0 && t.held(&a, s).len() == t.capacities[s as usize] as usize;
            prop_assert_eq!(outcome.cutoff(s), last.filter(|_| full));
        }
    }

    #[test]
    fn verifiers_agree_with_brute_force(t in markets(5, 3, 2), pick in any::<Index>()) {
        let market = t.market();
        let all = all_matchings(&t);
        let a = pick.get(&all);
        let matching = Matching::new(&market, a).unwrap();
        check_verifiers(&t, &matching)?;
        prop_assert_eq!(matching.is_pareto_efficient(), brute_pareto_efficient(&t, a));
    }

    #[test]
    fn matching_new_checks_feasibility(
        t in markets(5, 3, 2),
        mut raw in proptest::collection::vec(proptest::option::of(0..4u32), 0..=6),
        right_length in proptest::bool::weighted(0.9),
    ) {
        let market = t.market();
        if right_length {
            raw.resize(t.n(), None);
        }
        let feasible = raw.len() == t.n() && t.feasible(&raw);
        prop_assert_eq!(Matching::new(&market, &raw).is_ok(), feasible);
        if feasible {
            prop_assert_eq!(Matching::new(&market, &raw).unwrap().assignment(), raw);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Bigger markets, against the textbook implementations and the definitions.
    #[test]
    fn mechanisms_on_medium_markets(t in markets(40, 6, 6)) {
        let market = t.market();
        let da = mm::deferred_acceptance(&market);
        prop_assert!(naive_stable(&t, &assignment(&da)));
        check_stable_cutoffs(&t, &da)?;
        check_verifiers(&t, da.matching())?;
        let sda = mm::school_proposing_deferred_acceptance(&market);
        prop_assert!(naive_stable(&t, &assignment(&sda)));
        check_stable_cutoffs(&t, &sda)?;
        let ttc = mm::top_trading_cycles(&market);
        prop_assert_eq!(assignment(&ttc), naive_ttc(&t));
        prop_assert!(ttc.matching().is_pareto_efficient());
        check_verifiers(&t, ttc.matching())?;
        let eada = mm::efficiency_adjusted_deferred_acceptance(&market);
        prop_assert_eq!(assignment(&eada), kesten_eadam(&t));
        prop_assert_eq!(
            assignment(&eada),
            assignment(&mm::efficiency_adjusted_deferred_acceptance_by_rounds(&market))
        );
        prop_assert!(eada.matching().is_pareto_efficient());
        check_boston(&t, &market)?;
        for mechanism in Mechanism::ALL {
            let outcome = mechanism.run(&market);
            prop_assert!(t.feasible(&assignment(&outcome)));
        }
    }

    /// The improvement cycles give what Tang and Yu's rounds of deferred acceptance give, seat
    /// for seat, on markets large enough for long chains of interrupters.
    #[test]
    fn eada_by_cycles_equals_eada_by_rounds(t in markets(400, 24, 5)) {
        let market = t.market();
        let fast = mm::efficiency_adjusted_deferred_acceptance(&market);
        let rounds = mm::efficiency_adjusted_deferred_acceptance_by_rounds(&market);
        prop_assert_eq!(fast.matching().assignment(), rounds.matching().assignment());
        prop_assert_eq!(fast.cutoffs(), rounds.cutoffs());
    }

    /// Any input either builds a market or is rejected, exactly when the definitions say so.
    #[test]
    fn market_construction_accepts_exactly_valid_input(
        num_schools in 0..4usize,
        offsets in proptest::collection::vec(0..7u32, 0..5),
        schools in proptest::collection::vec(0..5u32, 0..7),
        capacities in proptest::collection::vec(0..3u32, 0..5),
        keys in proptest::collection::vec(prop_oneof![8 => 0..5u64, 1 => Just(u64::MAX)], 0..8),
    ) {
        let lists_ok = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_some_and(|&l| l as usize == schools.len())
            && offsets.windows(2).all(|w| {
                let list = &schools[w[0] as usize..w[1] as usize];
                list.iter().all(|&s| (s as usize) < num_schools)
                    && list.iter().enumerate().all(|(k, s)| !list[..k].contains(s))
            });
        match Preferences::new(num_schools, offsets, schools.clone()) {
            Err(_) => prop_assert!(!lists_ok),
            Ok(prefs) => {
                prop_assert!(lists_ok);
                let tied = (0..num_schools as u32).any(|s| {
                    let at: Vec<u64> = (0..schools.len()).filter(|&e| schools[e] == s).filter_map(|e| keys.get(e).copied()).collect();
                    at.iter().enumerate().any(|(k, x)| at[..k].contains(x))
                });
                let market_ok = capacities.len() == num_schools
                    && keys.len() == schools.len()
                    && !keys.contains(&u64::MAX)
                    && !tied;
                prop_assert_eq!(Market::new(prefs, capacities, keys).is_ok(), market_ok);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Textbook examples, worked by hand. Fixture: `capacity` gives the schools and their seats,
// `priority s: ...` a school's students best first (key = position), `prefers i: ...` a
// student's list. Seat reserves: `class c: ...` puts students in priority class `c` at every
// school (class 0 otherwise), `blocks s: c=2 *=1` gives a school its seat blocks in precedence
// order (`c+d=2`: 2 seats for classes c and d; `*=1`: 1 open seat). With any `blocks` line every
// mechanism runs with the reserves. Expectation: one line per mechanism, `name: student-school
// ...` (`-` when unassigned) or `name: unsupported`, then optionally `| school=student ...`
// naming the student whose key is the cutoff (`-` when none; `@r` appends Boston's fill round;
// with reserves one per block, separated by `/`).

fn check(fixture: &str, expect: &str) {
    let mut schools: Vec<(String, u32)> = Vec::new();
    let mut priorities: HashMap<String, Vec<String>> = HashMap::new();
    let mut students: Vec<(String, Vec<String>)> = Vec::new();
    let mut class_names = vec!["-".to_string()];
    let mut class_of: HashMap<String, u32> = HashMap::new();
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in fixture.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (head, rest) = line.split_once(':').map_or((line, ""), |(h, r)| (h, r));
        let words: Vec<String> = rest.split_whitespace().map(String::from).collect();
        match head.split_whitespace().collect::<Vec<_>>()[..] {
            ["capacity"] => {
                for word in &words {
                    let (s, c) = word.split_once('=').expect("school=capacity");
                    schools.push((s.to_string(), c.parse().unwrap()));
                }
            }
            ["priority", s] => {
                priorities.insert(s.to_string(), words);
            }
            ["prefers", i] => students.push((i.to_string(), words)),
            ["class", c] => {
                class_names.push(c.to_string());
                for i in words {
                    class_of.insert(i, class_names.len() as u32 - 1);
                }
            }
            ["blocks", s] => blocks.push((s.to_string(), words)),
            _ => panic!("bad fixture line {line}"),
        }
    }
    let school_id = |name: &str| {
        schools
            .iter()
            .position(|(s, _)| s == name)
            .expect("known school") as u32
    };
    let lists: Vec<Vec<u32>> = students
        .iter()
        .map(|(_, l)| l.iter().map(|s| school_id(s)).collect())
        .collect();
    let keys = students
        .iter()
        .map(|(i, l)| {
            l.iter()
                .map(|s| priorities[s].iter().position(|x| x == i).expect("ranked") as u64)
                .collect()
        })
        .collect();
    let t = Tiny {
        capacities: schools.iter().map(|s| s.1).collect(),
        lists,
        keys,
    };
    let market = t.market();
    let classes: Vec<u32> = students
        .iter()
        .flat_map(|(i, l)| std::iter::repeat_n(class_of.get(i).copied().unwrap_or(0), l.len()))
        .collect();
    let seat_blocks = blocks.iter().map(|(s, words)| {
        let list = words
            .iter()
            .map(|word| {
                let (who, seats) = word.split_once('=').expect("classes=seats");
                let seats = seats.parse().unwrap();
                if who == "*" {
                    return mm::SeatBlock::open(seats);
                }
                let ids = who.split('+').map(|c| {
                    class_names
                        .iter()
                        .position(|x| x == c)
                        .expect("known class") as u32
                });
                mm::SeatBlock::reserved(seats, ids)
            })
            .collect();
        (school_id(s), list)
    });
    let reserves = mm::Reserves::new(&market, classes, seat_blocks).expect("valid reserves");
    let reserved = !blocks.is_empty();
    let student_with_key = |s: usize, key: u64| priorities[&schools[s].0][key as usize].clone();
    let mut got = String::new();
    for line in expect.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap();
        let mechanism = match name {
            "da" => Some(Mechanism::DeferredAcceptance),
            "school-da" => Some(Mechanism::SchoolProposingDeferredAcceptance),
            "ttc" => Some(Mechanism::TopTradingCycles),
            "eada" => Some(Mechanism::EfficiencyAdjustedDeferredAcceptance),
            "boston" | "serial" => None,
            other => panic!("unknown mechanism {other}"),
        };
        // Per school: one cutoff per block (a single one without reserves) and the fill rounds.
        let (outcome, cutoffs, rounds): (Outcome<'_>, Vec<Vec<Option<u64>>>, _) =
            match (name, reserved) {
                ("boston", false) => {
                    let ia = mm::immediate_acceptance(&market);
                    let cutoffs = ia.outcome.cutoffs().iter().map(|&c| vec![c]).collect();
                    let rounds = ia.filled_in_round.iter().map(|&r| vec![r]).collect();
                    (ia.outcome, cutoffs, Some(rounds))
                }
                ("boston", true) => {
                    let ia = mm::immediate_acceptance_with_reserves(&reserves);
                    let cutoffs = (0..t.m() as u32)
                        .map(|s| ia.outcome.block_cutoffs(s).to_vec())
                        .collect();
                    let rounds = (0..t.m() as u32)
                        .map(|s| ia.block_filled_in_round(s).to_vec())
                        .collect();
                    (ia.outcome.into_outcome(), cutoffs, Some(rounds))
                }
                ("serial", _) => {
                    let order = SerialOrder::new((0..t.n() as u32).collect()).unwrap();
                    let outcome = mm::serial_dictatorship(&market, &order).unwrap();
                    let cutoffs = outcome.cutoffs().iter().map(|&c| vec![c]).collect();
                    (outcome, cutoffs, None)
                }
                (_, false) => {
                    let outcome = mechanism.expect("named").run(&market);
                    let cutoffs = outcome.cutoffs().iter().map(|&c| vec![c]).collect();
                    (outcome, cutoffs, None)
                }
                (_, true) => match mechanism.expect("named").run_with_reserves(&reserves) {
                    Ok(outcome) => {
                        let cutoffs = (0..t.m() as u32)
                            .map(|s| outcome.block_cutoffs(s).to_vec())
                            .collect();
                        (outcome.into_outcome(), cutoffs, None)
                    }
                    Err(mm::ReservesUnsupported { mechanism: m }) => {
                        assert_eq!(Some(m), mechanism);
                        got.push_str(&format!("{name}: unsupported\n"));
                        continue;
                    }
                },
            };
        let pairs: Vec<String> = (0..t.n())
            .map(|i| {
                let school = outcome
                    .matching()
                    .school_of(i as u32)
                    .map_or("-", |s| schools[s as usize].0.as_str());
                format!("{}-{school}", students[i].0)
            })
            .collect();
        got.push_str(&format!("{name}: {}", pairs.join(" ")));
        if line.contains('|') {
            let shown: Vec<String> = (0..t.m())
                .map(|s| {
                    let blocks: Vec<String> = cutoffs[s]
                        .iter()
                        .enumerate()
                        .map(|(b, &cutoff)| {
                            let who = match (name, cutoff) {
                                (_, None) => "-".to_string(),
                                ("serial", Some(turn)) => students[turn as usize].0.clone(),
                                (_, Some(key)) => student_with_key(s, key),
                            };
                            let round = rounds
                                .as_ref()
                                .and_then(|r: &Vec<Vec<Option<u32>>>| r[s][b])
                                .map_or(String::new(), |r| format!("@{r}"));
                            format!("{who}{round}")
                        })
                        .collect();
                    format!("{}={}", schools[s].0, blocks.join("/"))
                })
                .collect();
            got.push_str(&format!(" | {}", shown.join(" ")));
        }
        got.push('\n');
    }
    let want: String = expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(got, want);
}

/// Abdulkadiroglu and Sonmez (2003), the example of their appendix (8 students, 4 schools).
/// TTC by hand: round 1 cycles s4-i6 and s1-i1-s2-i3-s3-i5 (i1 gets s2, i3 s3, i5 s1); round 2
/// s1-i2; round 3 s2-i4-s3-i7 (i4 gets s3, i7 s2); round 4 i8 takes s4.
/// DA by hand: s1 keeps i2 i5 over i7 i8; s2 keeps i8 i7 over i1; s1 takes i1 back over i5;
/// i5 goes to s3, which holds i3 i4 i5. School-proposing DA ends at the same matching (it is
/// the unique stable one). EADA: s3 and s4 never reject, settle i3 i4 i5 at s3 and i6 at s4;
/// rerun on i1 i2 i7 i8 with s1 s2: s2 never rejects (i1 i8), then i2 i7 take s1.
/// Boston: first choices fill s1 (i2 i5); in round 2 i8 beats i7 for s2's last seat; i7 takes
/// s3's last seat in round 3. Serial (order i1..i8): i7 takes s2, i8 s4.
#[test]
fn abdulkadiroglu_sonmez_2003_example() {
    check(
        "
        capacity: s1=2 s2=2 s3=3 s4=3
        priority s1: i1 i2 i3 i4 i5 i6 i7 i8
        priority s2: i3 i5 i4 i8 i7 i2 i1 i6
        priority s3: i5 i3 i1 i7 i2 i8 i6 i4
        priority s4: i6 i8 i7 i4 i2 i3 i5 i1
        prefers i1: s2 s1 s3 s4
        prefers i2: s1 s2 s3 s4
        prefers i3: s3 s2 s1 s4
        prefers i4: s3 s4 s1 s2
        prefers i5: s1 s3 s4 s2
        prefers i6: s4 s1 s2 s3
        prefers i7: s1 s2 s3 s4
        prefers i8: s1 s2 s4 s3
        ",
        "
        ttc: i1-s2 i2-s1 i3-s3 i4-s3 i5-s1 i6-s4 i7-s2 i8-s4
        da: i1-s1 i2-s1 i3-s3 i4-s3 i5-s3 i6-s4 i7-s2 i8-s2 | s1=i2 s2=i7 s3=i4 s4=-
        school-da: i1-s1 i2-s1 i3-s3 i4-s3 i5-s3 i6-s4 i7-s2 i8-s2
        eada: i1-s2 i2-s1 i3-s3 i4-s3 i5-s3 i6-s4 i7-s1 i8-s2
        boston: i1-s2 i2-s1 i3-s3 i4-s3 i5-s1 i6-s4 i7-s3 i8-s2 | s1=i5@0 s2=i8@1 s3=i7@2 s4=-
        serial: i1-s2 i2-s1 i3-s3 i4-s3 i5-s1 i6-s4 i7-s2 i8-s4 | s1=i5 s2=i7 s3=- s4=-
        ",
    );
}

/// Gale and Shapley (1962), the 3 x 3 example with three stable matchings: every man gets his
/// first choice under man-proposing DA, every woman hers under woman-proposing DA.
/// (Men a, b, c rank women A B C / B C A / C A B; women A, B, C rank b c a / c a b / a b c.)
#[test]
fn gale_shapley_1962_example() {
    check(
        "
        capacity: A=1 B=1 C=1
        priority A: b c a
        priority B: c a b
        priority C: a b c
        prefers a: A B C
        prefers b: B C A
        prefers c: C A B
        ",
        "
        da: a-A b-B c-C | A=a B=b C=c
        school-da: a-C b-A c-B | A=b B=c C=a
        ttc: a-A b-B c-C
        eada: a-A b-B c-C
        ",
    );
}

/// Kesten's (2010) illustration of DA's inefficiency: i3 applies to s1 first, displaces i2 and
/// sets off a chain that ends with i3 rejected from s1 anyway (i3 is the interrupter at s1), so
/// i1 and i2 end at each other's first choice. EADA waives i3's priority at s1: i1 gets s2 and
/// i2 gets s1. TTC trades the same way. Boston lets i3 keep s1 from round 1.
#[test]
fn kesten_2010_example() {
    check(
        "
        capacity: s1=1 s2=1 s3=1
        priority s1: i1 i3 i2
        priority s2: i2 i1 i3
        priority s3: i3 i1 i2
        prefers i1: s2 s1 s3
        prefers i2: s1 s2 s3
        prefers i3: s1 s2 s3
        ",
        "
        da: i1-s1 i2-s2 i3-s3 | s1=i1 s2=i2 s3=i3
        eada: i1-s2 i2-s1 i3-s3
        ttc: i1-s2 i2-s1 i3-s3
        boston: i1-s2 i2-s3 i3-s1 | s1=i3@0 s2=i1@0 s3=i2@2
        ",
    );
}

/// Incomplete lists and a school without seats: s0 has no seats, so nobody gets it and it has
/// no cutoff; i3 lists nothing; i2 loses s1 to i1 and has nothing left.
#[test]
fn incomplete_lists_and_empty_schools() {
    check(
        "
        capacity: s0=0 s1=1 s2=2
        priority s0: i1 i2
        priority s1: i1 i2 i4
        priority s2: i4
        prefers i1: s0 s1
        prefers i2: s1 s0
        prefers i3:
        prefers i4: s1 s2
        ",
        "
        da: i1-s1 i2-- i3-- i4-s2 | s0=- s1=i1 s2=-
        school-da: i1-s1 i2-- i3-- i4-s2 | s0=- s1=i1 s2=-
        ttc: i1-s1 i2-- i3-- i4-s2 | s0=- s1=i1 s2=-
        eada: i1-s1 i2-- i3-- i4-s2 | s0=- s1=i1 s2=-
        boston: i1-- i2-s1 i3-- i4-s2 | s0=- s1=i2@0 s2=-
        ",
    );
}

/// Seat reserves, after the walk-zone example structure of Dur, Kominers, Pathak and Sönmez
/// (2018): school A has 2 seats reserved for its walk zone (w1 w2 w3) and 2 open seats, and its
/// lottery alternates w1 o1 w2 o2 w3 o3; B has 2 open seats and the reverse lottery. Everybody
/// ranks A first, B second, so every mechanism decides at A from all six applicants.
/// Reserved first: the walk seats take the two best walk-zone students w1 w2, the open seats the
/// two best remaining, o1 o2; w3 and o3 go to B. That is exactly what A does without any
/// reserve: w1 and w2 would have won open seats anyway, so the reserve changes nothing.
/// Open first: the open seats take the two best overall, w1 o1, and the walk seats the two best
/// remaining walk-zone students, w2 w3; o2 and o3 go to B. The reserve now helps w3 at o2's
/// expense. Cutoffs name the worst student per block: reserved first A's walk block holds w1 w2
/// (w2), its open block o1 o2 (o2); open first A's open block holds w1 o1 (o1), its walk block
/// w2 w3 (w3); B's worst is w3 (it ranks o3 w3 o2 ...) or o2. School-proposing DA and Boston
/// decide the same way (first choices only at A; the two rejected fit B in round 1). TTC and
/// EADA have no reserve-respecting version.
#[test]
fn walk_zone_reserve_precedence_changes_the_outcome() {
    let fixture = |blocks: &str| {
        format!(
            "
            capacity: A=4 B=2
            {blocks}
            class walk: w1 w2 w3
            priority A: w1 o1 w2 o2 w3 o3
            priority B: o3 w3 o2 w2 o1 w1
            prefers w1: A B
            prefers w2: A B
            prefers w3: A B
            prefers o1: A B
            prefers o2: A B
            prefers o3: A B
            "
        )
    };
    check(
        &fixture(""),
        "
        da: w1-A w2-A w3-B o1-A o2-A o3-B | A=o2 B=w3
        ",
    );
    check(
        &fixture("blocks A: walk=2 *=2"),
        "
        da: w1-A w2-A w3-B o1-A o2-A o3-B | A=w2/o2 B=w3
        school-da: w1-A w2-A w3-B o1-A o2-A o3-B | A=w2/o2 B=w3
        boston: w1-A w2-A w3-B o1-A o2-A o3-B | A=w2@0/o2@0 B=w3@1
        ttc: unsupported
        eada: unsupported
        ",
    );
    check(
        &fixture("blocks A: *=2 walk=2"),
        "
        da: w1-A w2-A w3-A o1-A o2-B o3-B | A=o1/w3 B=o2
        school-da: w1-A w2-A w3-A o1-A o2-B o3-B | A=o1/w3 B=o2
        boston: w1-A w2-A w3-A o1-A o2-B o3-B | A=o1@0/w3@0 B=o2@1
        ttc: unsupported
        eada: unsupported
        ",
    );
}

/// A reserve is hard: seats nobody eligible takes stay empty. C has one seat for siblings (only
/// s1) and one open seat; a b s1 is the priority order at both schools.
/// DA: a and b apply to C, which has only its open seat for them and keeps a; b goes to D and
/// displaces s1 (b is above s1 there); s1 comes to C and takes the sibling seat.
/// School-proposing DA: C offers its sibling seat to s1 and its open seat to a, D offers to a;
/// a keeps C, so D offers to b; the same matching (it is the only stable one).
/// Boston: in round 0 C admits a to its open seat and turns b away although a seat is free
/// (reserved for siblings), and D admits s1; b finds D full in round 1 and stays unassigned, and
/// C's sibling seat stays empty, so C never fills (no school cutoff, no sibling-block cutoff).
/// Without the reserve, C takes a and b and s1 stays at D.
#[test]
fn hard_reserve_leaves_seats_empty_rather_than_give_them_away() {
    let fixture = |blocks: &str| {
        format!(
            "
            capacity: C=2 D=1
            {blocks}
            class sib: s1
            priority C: a b s1
            priority D: a b s1
            prefers a: C D
            prefers b: C D
            prefers s1: D C
            "
        )
    };
    check(
        &fixture("blocks C: sib=1 *=1"),
        "
        da: a-C b-D s1-C | C=s1/a D=b
        school-da: a-C b-D s1-C | C=s1/a D=b
        boston: a-C b-- s1-D | C=-/a@0 D=s1@0
        ",
    );
    check(
        &fixture(""),
        "
        da: a-C b-C s1-D | C=b D=s1
        boston: a-C b-C s1-D | C=b@0 D=s1@0
        ",
    );
}

// ---------------------------------------------------------------------------------------------
// Lotteries against SHA-256 computed here.

fn direct_draw(parts: &[&[u8]]) -> u64 {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    u64::from_be_bytes(hash.finalize()[..8].try_into().unwrap())
}

fn ranks_by(mut items: Vec<(u64, Vec<u8>)>) -> HashMap<Vec<u8>, u64> {
    items.sort();
    items
        .into_iter()
        .enumerate()
        .map(|(rank, (_, id))| (id, rank as u64))
        .collect()
}

fn test_seed() -> Seed {
    Seed(std::array::from_fn(|k| {
        (k as u8).wrapping_mul(37).wrapping_add(11)
    }))
}

#[test]
fn single_tie_break_is_sha256_ranked_and_bound_to_identities() {
    let seed = test_seed();
    let ids: Vec<String> = (0..500)
        .map(|i| format!("P{i}"))
        .chain(["", "é", "P1;x"].map(String::from))
        .collect();
    let lottery = mm::single_tie_break(&seed, &ids).unwrap();
    let direct = ranks_by(
        ids.iter()
            .map(|id| {
                (
                    direct_draw(&[&seed.0, b"allot/stb/v1", id.as_bytes()]),
                    id.as_bytes().to_vec(),
                )
            })
            .collect(),
    );
    for (id, &number) in ids.iter().zip(&lottery) {
        assert_eq!(direct[id.as_bytes()], number, "{id}");
        assert_eq!(
            mm::single_draw(&seed, id.as_bytes()),
            direct_draw(&[&seed.0, b"allot/stb/v1", id.as_bytes()])
        );
    }
    // Numbers follow the students, not the file order.
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    let again = mm::single_tie_break(&seed, &reversed).unwrap();
    assert!(again.iter().rev().eq(lottery.iter()));
    // Another seed gives another draw.
    let mut other = seed;
    other.0[0] ^= 1;
    assert_ne!(mm::single_tie_break(&other, &ids).unwrap(), lottery);
    assert_eq!(
        mm::single_tie_break(&seed, &["a", "b", "a"]),
        Err(mm::LotteryError::DuplicateIdentity {
            what: "students",
            first: 0,
            second: 2
        })
    );
}

#[test]
fn multiple_tie_break_is_sha256_ranked_per_school() {
    let seed = test_seed();
    let students: Vec<String> = (0..300).map(|i| format!("P{i}")).collect();
    let schools: Vec<String> = (0..7).map(|s| format!("S{s}")).collect();
    let lists: Vec<Vec<u32>> = (0..300u32)
        .map(|i| (0..7).filter(|s| (i * 7 + s * 3) % 5 != 0).collect())
        .collect();
    let prefs = Preferences::from_lists(7, &lists).unwrap();
    let lottery = mm::multiple_tie_break(&seed, &prefs, &students, &schools).unwrap();
    let mut entry = 0;
    for (i, list) in lists.iter().enumerate() {
        for &s in list {
            let school = schools[s as usize].as_bytes();
            let applicants = (0..300).filter(|&j| lists[j].contains(&s)).map(|j| {
                let id = students[j].as_bytes();
                let draw = direct_draw(&[
                    &seed.0,
                    b"allot/mtb/v1",
                    &(school.len() as u64).to_be_bytes(),
                    school,
                    id,
                ]);
                (draw, id.to_vec())
            });
            assert_eq!(
                ranks_by(applicants.collect())[students[i].as_bytes()],
                lottery[entry]
            );
            entry += 1;
        }
    }
    // Distinct per school, so they make a valid market with any classes.
    let keys: Vec<u64> = lottery
        .iter()
        .enumerate()
        .map(|(e, &l)| mm::priority_key((e % 3) as u32, l).unwrap())
        .collect();
    assert!(Market::new(prefs.clone(), vec![10; 7], keys).is_ok());
    assert!(matches!(
        mm::multiple_tie_break(&seed, &prefs, &students[1..], &schools),
        Err(mm::LotteryError::WrongCount {
            what: "students",
            ..
        })
    ));
}

/// The Python an auditor would run, taken from the module's documentation, gives the same numbers.
#[test]
fn documented_python_recomputes_the_lotteries() {
    let source = include_str!("../../src/matching/lottery.rs");
    let snippet: String = source
        .lines()
        .filter_map(|l| {
            l.strip_prefix("//!")
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
        })
        .skip_while(|l| !l.starts_with("```python"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        snippet.contains("def single"),
        "no python snippet found in the lottery docs"
    );
    let seed = test_seed();
    let students: Vec<String> = (0..50).map(|i| format!("P{i}")).collect();
    let script = format!(
        "{snippet}\nseed = bytes.fromhex('{}')\nids = [{}]\ns = single(seed, ids)\nm = multiple(seed, b'S3', ids[::2])\nprint(' '.join(str(s[i]) for i in ids))\nprint(' '.join(str(m[i]) for i in ids[::2]))\n",
        seed.0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        students
            .iter()
            .map(|s| format!("b'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Any Python 3 will do: the snippet uses only the standard library.
    let run = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs the auditor's snippet (it is never skipped)");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    let mut lines = stdout.lines();
    let single: Vec<u64> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(single, mm::single_tie_break(&seed, &students).unwrap());
    let lists: Vec<Vec<u32>> = (0..50)
        .map(|i| if i % 2 == 0 { vec![0] } else { vec![] })
        .collect();
    let prefs = Preferences::from_lists(1, &lists).unwrap();
    let multiple: Vec<u64> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(
        multiple,
        mm::multiple_tie_break(&seed, &prefs, &students, &["S3"]).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Side by side with the reference tools, through the school CSV format (test-only I/O).

/// A school CSV folder: its market (key = class << 40 | lottery, class 2 when absent) and names.
struct SchoolCsv {
    tiny: Tiny,
    schools: Vec<String>,
    students: Vec<String>,
}

fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

fn read_school_csv(dir: &Path) -> SchoolCsv {
    let school_rows = rows(&dir.join("schools.csv"));
    let schools: Vec<String> = school_rows.iter().map(|r| r[0].clone()).collect();
    let school_id: HashMap<&str, u32> = schools
        .iter()
        .enumerate()
        .map(|(k, s)| (s.as_str(), k as u32))
        .collect();
    let capacities = school_rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let student_rows = rows(&dir.join("students.csv"));
    let students: Vec<String> = student_rows.iter().map(|r| r[0].clone()).collect();
    let student_id: HashMap<&str, usize> = students
        .iter()
        .enumerate()
        .map(|(k, s)| (s.as_str(), k))
        .collect();
    let lists: Vec<Vec<u32>> = student_rows
        .iter()
        .map(|r| {
            r[2].split(';')
                .filter(|s| !s.is_empty())
                .map(|s| school_id[s])
                .collect()
        })
        .collect();
    let mut class: Vec<Vec<u32>> = lists.iter().map(|l| vec![2; l.len()]).collect();
    for r in rows(&dir.join("priorities.csv")) {
        let (s, i) = (school_id[r[0].as_str()], student_id[r[1].as_str()]);
        if let Some(k) = lists[i].iter().position(|&x| x == s) {
            class[i][k] = r[2].parse().unwrap();
        }
    }
    let keys = (0..students.len())
        .map(|i| {
            let lottery: u64 = student_rows[i][1].parse().unwrap();
            class[i]
                .iter()
                .map(|&c| mm::priority_key(c, lottery).unwrap())
                .collect()
        })
        .collect();
    SchoolCsv {
        tiny: Tiny {
            capacities,
            lists,
            keys,
        },
        schools,
        students,
    }
}

/// Writes a single-tie-break market (key = class << 40 | lottery) as a school CSV folder.
fn write_school_csv(t: &Tiny, dir: &Path) {
    let mut schools = String::from("school,capacity\n");
    for (s, c) in t.capacities.iter().enumerate() {
        schools.push_str(&format!("S{s},{c}\n"));
    }
    let (mut students, mut priorities) = (
        String::from("student,lottery,choices\n"),
        String::from("school,student,priority\n"),
    );
    for (i, list) in t.lists.iter().enumerate() {
        let lottery = t.keys[i].first().map_or(i as u64, |k| k & mm::MAX_LOTTERY);
        let choices: Vec<String> = list.iter().map(|s| format!("S{s}")).collect();
        students.push_str(&format!("P{i},{lottery},{}\n", choices.join(";")));
        for (&s, &key) in list.iter().zip(&t.keys[i]) {
            let class = key >> mm::LOTTERY_BITS;
            // Class 2 is the default: leave some of those rows out.
            if class != 2 || i % 2 == 0 {
                priorities.push_str(&format!("S{s},P{i},{class}\n"));
            }
        }
    }
    std::fs::write(dir.join("schools.csv"), schools).unwrap();
    std::fs::write(dir.join("students.csv"), students).unwrap();
    std::fs::write(dir.join("priorities.csv"), priorities).unwrap();
}

/// Runs `da_ref` on a folder; its assignment as school name (or "") per student name.
fn run_da_ref(da_ref: &Path, dir: &Path) -> HashMap<String, String> {
    let out = dir.join("ref-assignment.csv");
    let run = Command::new(da_ref)
        .arg(dir)
        .arg(&out)
        .output()
        .expect("da_ref runs");
    assert!(
        run.status.success(),
        "da_ref failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    rows(&out)
        .into_iter()
        .map(|r| (r[0].clone(), r.get(1).cloned().unwrap_or_default()))
        .collect()
}

fn our_da(csv: &SchoolCsv) -> HashMap<String, String> {
    let market = csv.tiny.market();
    let outcome = mm::deferred_acceptance(&market);
    (0..csv.students.len())
        .map(|i| {
            let school = outcome
                .matching()
                .school_of(i as u32)
                .map_or(String::new(), |s| csv.schools[s as usize].clone());
            (csv.students[i].clone(), school)
        })
        .collect()
}

fn generate(python: &Path, sources: &Path, dir: &Path, args: [&str; 4]) {
    let run = Command::new(python)
        .arg(sources.join("gen/school_gen.py"))
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .output()
        .expect("school_gen.py runs");
    assert!(
        run.status.success(),
        "school_gen.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The CSV reader and writer used below agree with each other (always runs).
#[test]
fn school_csv_round_trip_keeps_the_market() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tiny {
        capacities: vec![2, 0, 1],
        lists: vec![vec![2, 0], vec![], vec![0, 1, 2]],
        keys: vec![
            vec![2 << 40 | 5, 5],
            vec![],
            vec![1 << 40 | 7, 2 << 40 | 7, 7],
        ],
    };
    write_school_csv(&t, dir.path());
    let back = read_school_csv(dir.path());
    assert_eq!(
        (back.tiny.capacities, back.tiny.lists, back.tiny.keys),
        (t.capacities, t.lists, t.keys)
    );
}

#[test]
fn da_matches_the_cpp_reference_on_random_markets() {
    let Some(anchors) = allot_testkit::anchors("da_matches_the_cpp_reference_on_random_markets")
    else {
        return;
    };
    let built = anchors.built;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = markets(60, 8, 5).prop_filter("one lottery per student", |t| {
        t.keys.iter().all(|k| {
            k.iter()
                .all(|&x| x & mm::MAX_LOTTERY == k[0] & mm::MAX_LOTTERY)
        })
    });
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..60 {
        let t = strategy.new_tree(&mut runner).unwrap().current();
        write_school_csv(&t, dir.path());
        let csv = read_school_csv(dir.path());
        assert_eq!(run_da_ref(&built.join("da_ref"), dir.path()), our_da(&csv));
    }
}

#[test]
fn da_matches_the_cpp_reference_and_python_library_on_generated_instances() {
    let Some(anchors) = allot_testkit::anchors(
        "da_matches_the_cpp_reference_and_python_library_on_generated_instances",
    ) else {
        return;
    };
    let (built, sources) = (anchors.built, anchors.sources);
    let python = built.join("venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    generate(&python, &sources, dir.path(), ["3", "20000", "200", "12"]);
    let csv = read_school_csv(dir.path());
    let ours = our_da(&csv);
    assert_eq!(run_da_ref(&built.join("da_ref"), dir.path()), ours);
    // The verifiers agree that the reference's matching is stable.
    let market = csv.tiny.market();
    assert!(mm::deferred_acceptance(&market).matching().is_stable());

    // The `matching` library is slow: a smaller instance, checked by its own script (equal
    // matching and its independent blocking-pair count).
    let small = tempfile::tempdir().unwrap();
    generate(&python, &sources, small.path(), ["5", "1500", "50", "8"]);
    let csv = read_school_csv(small.path());
    let mut out = String::from("student,school,rank\n");
    for (student, school) in our_da(&csv) {
        out.push_str(&format!("{student},{school},\n"));
    }
    let assignment = small.path().join("allot-assignment.csv");
    std::fs::write(&assignment, out).unwrap();
    let run = Command::new(&python)
        .arg(sources.join("da_matching.py"))
        .arg(small.path())
        .arg(&assignment)
        .output()
        .expect("da_matching.py runs");
    assert!(
        run.status.success(),
        "the matching library disagrees: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Always runs: on tiny instances DA equals the stable matching every student likes best among
/// all stable matchings found by brute force, through the same CSV route as above.
#[test]
fn da_matches_brute_force_through_csv() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..100 {
        let t = markets(5, 3, 2).new_tree(&mut runner).unwrap().current();
        let t = Tiny {
            keys: t
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| k.iter().map(|&x| (x >> 40) << 40 | i as u64).collect())
                .collect(),
            ..t
        };
        write_school_csv(&t, dir.path());
        let csv = read_school_csv(dir.path());
        let stable: Vec<Assignment> = all_matchings(&csv.tiny)
            .into_iter()
            .filter(|a| naive_stable(&csv.tiny, a))
            .collect();
        let best = stable
            .iter()
            .find(|a| {
                stable
                    .iter()
                    .all(|b| (0..t.n()).all(|i| csv.tiny.rank(i, a[i]) <= csv.tiny.rank(i, b[i])))
            })
            .expect("a student-optimal stable matching exists");
        let ours = our_da(&csv);
        for i in 0..t.n() {
            let want = best[i].map_or(String::new(), |s| csv.schools[s as usize].clone());
            assert_eq!(ours[&csv.students[i]], want);
        }
    }
}

#[test]
fn mechanism_errors_are_typed() {
    let t = Tiny {
        capacities: vec![1],
        lists: vec![vec![0], vec![0]],
        keys: vec![vec![1], vec![2]],
    };
    let market = t.market();
    assert_eq!(
        SerialOrder::new(vec![0, 0]),
        Err(mm::OrderError::Repeated { student: 0 })
    );
    assert_eq!(
        SerialOrder::new(vec![2, 0]),
        Err(mm::OrderError::OutOfRange {
            student: 2,
            students: 2
        })
    );
    let short = SerialOrder::new(vec![0]).unwrap();
    assert_eq!(
        mm::serial_dictatorship(&market, &short),
        Err(mm::OrderError::WrongLength {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        SerialOrder::by_keys(&[5, 3, 5]),
        Err(mm::OrderError::TiedKeys {
            first: 0,
            second: 2,
            key: 5
        })
    );
    assert_eq!(
        SerialOrder::by_keys(&[5, 3, 4]).unwrap().as_slice(),
        &[1, 2, 0]
    );
    assert_eq!(
        Matching::new(&market, &[Some(0), Some(0)]),
        Err(mm::InfeasibleMatching::OverCapacity {
            school: 0,
            assigned: 2,
            capacity: 1
        })
    );
    assert_eq!(
        Matching::new(&market, &[Some(1), None]),
        Err(mm::InfeasibleMatching::NotListed {
            student: 0,
            school: 1
        })
    );
    assert_eq!(
        Matching::new(&market, &[None]),
        Err(mm::InfeasibleMatching::WrongLength {
            expected: 2,
            got: 1
        })
    );
    assert!(matches!(
        mm::priority_key(1 << 23, 0),
        Err(MarketError::ClassOutOfRange { .. })
    ));
}
