//! LP models: the flow LP on a hand-checked instance, and the allocation model against a brute
//! force over all assignments.

use allot_solvers::mcf::{INFINITE_CAPACITY, Network};
use allot_testkit::lp::{Allocation, LpError, PairId, min_cost_flow};
use proptest::prelude::*;

#[test]
fn flow_lp_on_a_small_transportation_problem() {
    // The same 2 x 2 instance as the flow tests: optimum 8.
    let mut net = Network::new();
    let v = net.add_nodes(4).unwrap().0;
    let node = |i: u32| allot_solvers::mcf::NodeId(v + i);
    for (i, b) in [3, 2, -4, -1].into_iter().enumerate() {
        net.set_supply(node(i as u32), b).unwrap();
    }
    for (from, to, cost) in [(0, 2, 1), (0, 3, 4), (1, 2, 3), (1, 3, 2)] {
        net.add_arc(node(from), node(to), INFINITE_CAPACITY, cost);
    }
    let lp = min_cost_flow(&net).unwrap();
    assert_eq!(lp.cost, 8);
    assert_eq!(
        lp.flow.iter().map(|f| f.round() as i64).collect::<Vec<_>>(),
        vec![3, 0, 1, 1]
    );
}

/// An allocation instance as data: agents, capacities, pairs (agent, option, cost), unassigned
/// costs, groups (pairs, min, max).
#[derive(Debug, Clone)]
struct Instance {
    agents: usize,
    capacity: Vec<i64>,
    pairs: Vec<(usize, usize, i64)>,
    unassigned: Vec<Option<i64>>,
    groups: Vec<(Vec<usize>, Option<i64>, Option<i64>)>,
}

impl Instance {
    fn model(&self) -> Allocation {
        let mut model = Allocation::new(self.agents, self.capacity.clone());
        for &(a, o, c) in &self.pairs {
            model.allow(a, o, c);
        }
        for (a, &c) in self.unassigned.iter().enumerate() {
            model.set_unassigned_cost(a, c).unwrap();
        }
        for (pairs, min, max) in &self.groups {
            model.add_group(pairs.iter().map(|&p| PairId(p)).collect(), *min, *max);
        }
        model
    }

    /// The optimum by trying every assignment; `None` if nothing is feasible.
    fn brute_force(&self) -> Option<i64> {
        let mut best = None;
        let mut choice: Vec<Option<usize>> = vec![None; self.agents];
        self.search(0, &mut choice, &mut best);
        best
    }

    fn search(&self, agent: usize, choice: &mut Vec<Option<usize>>, best: &mut Option<i64>) {
        if agent == self.agents {
            if let Some(cost) = self.cost(choice) {
                *best = Some(best.map_or(cost, |b: i64| b.min(cost)));
            }
            return;
        }
        choice[agent] = None;
        self.search(agent + 1, choice, best);
        for (p, &(a, _, _)) in self.pairs.iter().enumerate() {
            if a == agent {
                choice[agent] = Some(p);
                self.search(agent + 1, choice, best);
            }
        }
        choice[agent] = None;
    }

    fn cost(&self, choice: &[Option<usize>]) -> Option<i64> {
        let mut load = vec![0; self.capacity.len()];
        let mut cost = 0;
        for (agent, c) in choice.iter().enumerate() {
            match c {
                Some(p) => {
                    load[self.pairs[*p].1] += 1;
                    cost += self.pairs[*p].2;
                }
                None => cost += self.unassigned[agent]?,
            }
        }
        if load.iter().zip(&self.capacity).any(|(l, c)| l > c) {
            return None;
        }
        for (pairs, min, max) in &self.groups {
            let k = pairs.iter().filter(|p| choice.contains(&Some(**p))).count() as i64;
            if min.is_some_and(|m| k < m) || max.is_some_and(|m| k > m) {
                return None;
            }
        }
        Some(cost)
    }
}

fn instance() -> impl Strategy<Value = Instance> {
    (1usize..=4, 1usize..=3).prop_flat_map(|(agents, options)| {
        let pairs = proptest::collection::vec((0..agents, 0..options, -5i64..=10), 0..8);
        (
            Just(agents),
            proptest::collection::vec(0i64..=2, options),
            pairs,
            proptest::collection::vec(prop_oneof![Just(None), (0i64..=12).prop_map(Some)], agents),
        )
            .prop_flat_map(|(agents, capacity, pairs, unassigned)| {
                let np = pairs.len();
                let group = (
                    proptest::collection::vec(0..np.max(1), 0..=np),
                    prop_oneof![Just(None), (0i64..=2).prop_map(Some)],
                    prop_oneof![Just(None), (0i64..=2).prop_map(Some)],
                );
                let groups = if np == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    proptest::collection::vec(group, 0..3).boxed()
                };
                (
                    Just(agents),
                    Just(capacity),
                    Just(pairs),
                    Just(unassigned),
                    groups,
                )
            })
            .prop_map(|(agents, capacity, pairs, unassigned, groups)| Instance {
                agents,
                capacity,
                pairs,
                unassigned,
                // Drop empty ranges: those are rejected up front (tested below).
                groups: groups
                    .into_iter()
                    .filter(|(_, min, max)| !matches!((min, max), (Some(a), Some(b)) if a > b))
                    .collect(),
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn allocation_matches_brute_force(inst in instance()) {
        let got = inst.model().solve();
        match (inst.brute_force(), got) {
            (Some(best), Ok(assignment)) => {
                prop_assert_eq!(assignment.cost, best);
                // The reported assignment is one of cost `best`.
                let choice: Vec<Option<usize>> =
                    assignment.pair.iter().map(|p| p.map(|p| p.0)).collect();
                prop_assert_eq!(inst.cost(&choice), Some(best));
            }
            (None, Err(LpError::Infeasible)) => {}
            (want, got) => prop_assert!(false, "brute force {:?}, model {:?}", want, got),
        }
    }
}

#[test]
fn a_group_limit_changes_the_optimum() {
    // Three agents all prefer option 0 (capacity 3), but at most one of them may take it; the
    // others go to option 1 at cost 5: 1 + 5 + 5 = 11 instead of 3.
    let mut model = Allocation::new(3, vec![3, 3]);
    let firsts: Vec<PairId> = (0..3).map(|a| model.allow(a, 0, 1)).collect();
    for a in 0..3 {
        model.allow(a, 1, 5);
    }
    assert_eq!(model.solve().unwrap().cost, 3);
    model.add_group(firsts, None, Some(1));
    let assignment = model.solve().unwrap();
    assert_eq!(assignment.cost, 11);
    assert_eq!(
        assignment.option.iter().filter(|&&o| o == Some(0)).count(),
        1
    );
}

#[test]
fn invalid_models_are_rejected() {
    let check = |model: Allocation, expect: &str| {
        assert_eq!(model.solve().unwrap_err().to_string(), expect);
    };
    let mut m = Allocation::new(1, vec![1]);
    m.allow(2, 0, 1);
    check(m, "pair 0: agent 2 is out of range (there are 1 agents)");
    let mut m = Allocation::new(1, vec![1]);
    m.allow(0, 4, 1);
    check(m, "pair 0: option 4 is out of range (there are 1 options)");
    check(
        Allocation::new(1, vec![-1]),
        "option 0: capacity -1 is negative",
    );
    let mut m = Allocation::new(1, vec![1]);
    let p = m.allow(0, 0, 1);
    m.add_group(vec![p], Some(2), Some(1));
    check(m, "group 0: at least 2 is more than at most 1");
    let mut m = Allocation::new(1, vec![1]);
    m.add_group(vec![PairId(7)], None, Some(1));
    check(m, "group 0: pair 7 is out of range (there are 0 pairs)");
    let mut m = Allocation::new(1, vec![1]);
    m.allow(0, 0, 1 << 50);
    check(
        m,
        "cost 1125899906842624 is beyond the LP limit of +-1099511627776",
    );
    let mut m = Allocation::new(1, vec![1]);
    assert_eq!(
        m.set_unassigned_cost(3, Some(1)).unwrap_err().to_string(),
        "agent 3 is out of range (there are 1 agents)"
    );
    // Nobody can be placed and the agent must be: infeasible.
    check(Allocation::new(1, vec![1]), "infeasible");
}
