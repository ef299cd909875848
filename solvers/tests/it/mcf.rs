//! Min-cost flow: hand-checked instances, input validation, and properties against the LP oracle
//! (cost, infeasibility, unmet amount) and against a cold solve (warm re-solve).

use allot_solvers::dimacs;
use allot_solvers::mcf::{self, ArcId, INFINITE_CAPACITY, McfError, Network, NodeId, Solver};
use allot_testkit::lp;
use proptest::prelude::*;

use crate::support::{build, certificate, medium_network, small_network};

/// What solving `network` gives, as text: `cost C flow [..]` (after checking the optimality
/// certificate) or the error's message.
fn outcome(network: &Network) -> String {
    match mcf::solve(network) {
        Ok(solution) => {
            if let Err(why) = certificate(network, &solution) {
                return format!("bad certificate: {why}");
            }
            format!("cost {} flow {:?}", solution.cost, solution.flow)
        }
        Err(e) => e.to_string(),
    }
}

/// Solves the DIMACS text `input` and compares the outcome with `expect`. An expectation without
/// a flow (`cost C`) is for instances with several optimal flows.
#[track_caller]
fn check(input: &str, expect: &str) {
    let network = dimacs::parse(input.as_bytes()).expect("test input parses");
    let mut got = outcome(&network);
    if expect.starts_with("cost ") && !expect.contains(" flow ") {
        got.truncate(got.find(" flow ").unwrap_or(got.len()));
    }
    assert_eq!(got, expect, "input:\n{input}");
}

// Each instance's optimum is worked out in the comment above it.

#[test]
fn transportation_2x2() {
    // Supplies 3, 2; demands 4, 1. With x14 = t the feasible flows are (3-t, t, 1+t, 1-t) of cost
    // 8 + 4t, so t = 0.
    check(
        "c two plants, two markets\np min 4 4\nn 1 3\nn 2 2\nn 3 -4\nn 4 -1\n\
         a 1 3 0 100 1\na 1 4 0 100 4\na 2 3 0 100 3\na 2 4 0 100 2\n",
        "cost 8 flow [3, 0, 1, 1]",
    );
}

#[test]
fn shortest_path() {
    // One unit from 1 to 4: 1-2-4 costs 6, 1-3-4 costs 3, 1-2-3-4 costs 1 + 0 + 1 = 2.
    check(
        "p min 4 5\nn 1 1\nn 4 -1\na 1 2 0 1 1\na 2 4 0 1 5\na 1 3 0 1 2\na 3 4 0 1 1\na 2 3 0 1 0\n",
        "cost 2 flow [1, 0, 0, 1, 1]",
    );
}

#[test]
fn lower_bound_forces_expensive_arc() {
    // 5 units; the cost-5 arc must carry at least 3: 2 * 1 + 3 * 5 = 17.
    check(
        "p min 2 2\nn 1 5\nn 2 -5\na 1 2 0 10 1\na 1 2 3 10 5\n",
        "cost 17 flow [2, 3]",
    );
}

#[test]
fn negative_lower_bound_is_reverse_flow() {
    // Node 2 must send 3 units to node 1, and the only arc points 1 -> 2: flow -3 at cost 2 each.
    check(
        "p min 2 1\nn 1 -3\nn 2 3\na 1 2 -5 5 2\n",
        "cost -6 flow [-3]",
    );
}

#[test]
fn negative_cycle_with_finite_capacity() {
    // The cycle 1-2-3-1 costs -2 - 2 + 1 = -3 per unit and carries at most 4.
    check(
        "p min 3 3\na 1 2 0 4 -2\na 2 3 0 5 -2\na 3 1 0 6 1\n",
        "cost -12 flow [4, 4, 4]",
    );
}

#[test]
fn negative_cycle_with_infinite_capacity_is_unbounded() {
    let inf = INFINITE_CAPACITY;
    check(
        &format!("p min 3 3\na 1 2 0 {inf} -2\na 2 3 0 {inf} -2\na 3 1 0 {inf} 1\n"),
        "unbounded: a cycle of negative cost has infinite capacity",
    );
    // One finite arc on the cycle bounds it again: 7 units at -3.
    check(
        &format!("p min 3 3\na 1 2 0 {inf} -2\na 2 3 0 7 -2\na 3 1 0 {inf} 1\n"),
        "cost -21 flow [7, 7, 7]",
    );
}

#[test]
fn infeasible_reports_unmet_demand() {
    // Node 1 has 5 units for node 2, but the arc takes only 3.
    check(
        "p min 2 1\nn 1 5\nn 2 -5\na 1 2 0 3 1\n",
        "infeasible: 2 units of demand cannot be met (node 1 is short)",
    );
    // Two demands, one unreachable: 4 of node 3's units are missing.
    check(
        "p min 3 1\nn 1 6\nn 2 -2\nn 3 -4\na 1 2 0 9 1\n",
        "infeasible: 4 units of demand cannot be met (node 2 is short)",
    );
}

#[test]
fn infeasibility_takes_precedence_over_an_unbounded_cycle() {
    let inf = INFINITE_CAPACITY;
    check(
        &format!("p min 4 2\nn 1 5\nn 2 -5\na 3 4 0 {inf} -1\na 4 3 0 {inf} -1\n"),
        "infeasible: 5 units of demand cannot be met (node 1 is short)",
    );
}

#[test]
fn self_loops() {
    // A negative self-loop fills up, a positive one stays empty, a lower bound is paid for.
    check(
        "p min 1 3\na 1 1 0 4 -3\na 1 1 0 4 3\na 1 1 2 4 5\n",
        "cost -2 flow [4, 0, 2]",
    );
    let inf = INFINITE_CAPACITY;
    check(
        &format!("p min 1 1\na 1 1 0 {inf} -1\n"),
        "unbounded: a cycle of negative cost has infinite capacity",
    );
}

#[test]
fn parallel_and_zero_capacity_arcs() {
    // 4 units over parallel arcs of cost 1 (capacity 0), 2 (capacity 2) and 3: 2 * 2 + 2 * 3.
    check(
        "p min 2 3\nn 1 4\nn 2 -4\na 1 2 0 0 1\na 1 2 0 2 2\na 1 2 0 5 3\n",
        "cost 10 flow [0, 2, 2]",
    );
}

#[test]
fn transshipment_through_a_hub() {
    // Sources 1, 2 (4 units each) to sinks 4, 5 (4 each) directly at cost 5, or via hub 3 at
    // 1 + 1 = 2 but the hub's outgoing arcs take 3 each: 6 units via the hub, 2 direct.
    check(
        "p min 5 8\nn 1 4\nn 2 4\nn 4 -4\nn 5 -4\n\
         a 1 3 0 10 1\na 2 3 0 10 1\na 3 4 0 3 1\na 3 5 0 3 1\n\
         a 1 4 0 10 5\na 1 5 0 10 5\na 2 4 0 10 5\na 2 5 0 10 5\n",
        "cost 22",
    );
}

#[test]
fn empty_and_trivial_networks() {
    check("p min 0 0\n", "cost 0 flow []");
    check("p min 1 0\n", "cost 0 flow []");
    check(
        "p min 2 0\nn 1 1\nn 2 -1\n",
        "infeasible: 1 units of demand cannot be met (node 1 is short)",
    );
}

#[test]
fn potentials_price_the_optimal_flow() {
    // One arc between its bounds: its reduced cost 7 + pi[0] - pi[1] must be 0.
    let mut net = Network::new();
    let s = net.add_node();
    let t = net.add_node();
    net.set_supply(s, 5).unwrap();
    net.set_supply(t, -5).unwrap();
    let a = net.add_arc(s, t, 10, 7);
    let sol = mcf::solve(&net).unwrap();
    assert_eq!(sol.flow, vec![5]);
    assert_eq!(sol.potential[1] - sol.potential[0], 7);
    assert_eq!(sol.reduced_cost(&net, a), Some(0));
}

/// Validation: what `network` is rejected with, as text.
#[track_caller]
fn check_rejected(network: &Network, expect: &str) {
    assert_eq!(outcome(network), expect);
    // The warm solver validates the same way.
    let got = Solver::new(network.clone()).and_then(|mut s| s.solve());
    assert_eq!(got.map(|s| s.cost).unwrap_err().to_string(), expect);
}

fn pair(supply: i64) -> (Network, NodeId, NodeId) {
    let mut net = Network::new();
    let s = net.add_node();
    let t = net.add_node();
    net.set_supply(s, supply).unwrap();
    net.set_supply(t, -supply).unwrap();
    (net, s, t)
}

#[test]
fn invalid_input_is_rejected_before_solving() {
    let (mut net, s, _) = pair(1);
    net.set_supply(s, 2).unwrap();
    check_rejected(&net, "supplies sum to 1, not to zero");

    let (mut net, s, t) = pair(1);
    net.add_arc_with_lower(s, t, 5, 3, 1);
    check_rejected(&net, "arc 0: lower bound 5 is above the capacity 3");

    let (mut net, s, t) = pair(1);
    net.add_arc(s, t, 1, 1);
    net.add_arc(s, t, -1, 1);
    check_rejected(&net, "arc 1: capacity -1 is negative");

    let (mut net, s, _) = pair(1);
    net.add_arc(s, NodeId(5), 1, 1);
    check_rejected(
        &net,
        "arc 0: node 5 is out of range (the network has 2 nodes)",
    );

    let (mut net, s, t) = pair(1);
    net.add_arc(s, t, 1, i64::MAX / 8);
    check_rejected(
        &net,
        "costs up to 1152921504606846975 in absolute value on 2 nodes could overflow the node \
         potentials (4 (nodes + 1) (max |cost| + 1) must fit in i64)",
    );

    let (mut net, s, t) = pair(1);
    net.add_arc(s, t, 1 << 62, 1);
    check_rejected(
        &net,
        "positive supplies and finite capacities add up to 4611686018427387905, above the limit \
         4611686018427387903 (flows could overflow i64)",
    );

    // Within every limit before solving, but the optimal cost itself does not fit.
    let (mut net, s, t) = pair(1 << 31);
    net.add_arc(s, t, INFINITE_CAPACITY, 1 << 40);
    check_rejected(
        &net,
        "the total cost 2361183241434822606848 of the optimal flow does not fit in i64",
    );

    let mut net = Network::new();
    assert_eq!(
        net.add_nodes(usize::MAX).unwrap_err().to_string(),
        format!(
            "{} nodes is more than the limit of {}",
            usize::MAX,
            mcf::MAX_NODES
        )
    );
    assert_eq!(net.node_count(), 0);
    assert_eq!(
        net.set_supply(NodeId(0), 1).unwrap_err().to_string(),
        "node 0 is out of range (the network has 0 nodes)"
    );
    assert_eq!(
        net.set_cost(ArcId(3), 1).unwrap_err().to_string(),
        "arc 3 is out of range (the network has 0 arcs)"
    );
}

#[test]
fn limits_are_tight_enough_for_large_values() {
    // Just inside the flow limit: one arc with the largest capacity allowed.
    let limit = (i64::MAX - 1) / 2;
    let (mut net, s, t) = pair(1);
    net.add_arc(s, t, limit - 1, -3);
    net.add_arc(t, s, INFINITE_CAPACITY, 1);
    let sol = mcf::solve(&net).unwrap();
    // Push the most around the cycle s -> t -> s (cost -2 per unit), one unit of it is the supply.
    assert_eq!(sol.flow, vec![limit - 1, limit - 2]);
    certificate(&net, &sol).unwrap();
}

/// The LP oracle's unmet amount: the least total shortage when every node may also draw from or
/// spill into an extra node, shortages costing 1 and original costs ignored.
fn lp_unmet(network: &Network) -> i64 {
    let mut aux = Network::new();
    aux.add_nodes(network.node_count() + 1).unwrap();
    let extra = NodeId(network.node_count() as u32);
    for (v, &b) in network.supplies().iter().enumerate() {
        aux.set_supply(NodeId(v as u32), b).unwrap();
        aux.add_arc(NodeId(v as u32), extra, INFINITE_CAPACITY, 0);
        aux.add_arc(extra, NodeId(v as u32), INFINITE_CAPACITY, 1);
    }
    for a in network.arcs() {
        aux.add_arc_with_lower(a.from, a.to, a.lower, a.upper, 0);
    }
    lp::min_cost_flow(&aux)
        .expect("the shortage LP is feasible and bounded")
        .cost
}

/// The flow solver and the LP oracle agree on `network`: same optimal cost (and the flow carries
/// an optimality certificate), or both infeasible with the same unmet amount, or both unbounded.
fn agree_with_lp(network: &Network) -> Result<(), TestCaseError> {
    let ours = mcf::solve(network);
    let oracle = lp::min_cost_flow(network);
    match (&ours, &oracle) {
        (Ok(sol), Ok(lp)) => {
            prop_assert_eq!(sol.cost, lp.cost);
            if let Err(why) = certificate(network, sol) {
                prop_assert!(false, "{}", why);
            }
        }
        (Err(McfError::Infeasible { unmet, node }), Err(lp::LpError::Infeasible)) => {
            prop_assert!(node.index() < network.node_count());
            prop_assert_eq!(*unmet, lp_unmet(network));
        }
        (Err(McfError::Unbounded), Err(lp::LpError::Unbounded)) => {}
        _ => prop_assert!(false, "flow solver {:?} but LP {:?}", ours, oracle),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn agrees_with_the_lp_oracle_on_medium_networks(network in medium_network()) {
        agree_with_lp(&network)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn agrees_with_the_lp_oracle(network in small_network()) {
        agree_with_lp(&network)?;
    }
}

/// A change to apply between solves.
#[derive(Debug, Clone)]
enum Change {
    Cost(usize, i64),
    Bounds(usize, i64, i64),
    /// Move supply: (from node, to node, amount).
    Supply(usize, usize, i64),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0usize..256, -10i64..=10).prop_map(|(a, c)| Change::Cost(a, c)),
        // Now and then a cost beyond i16 or i32, which changes how the solver stores prices.
        (0usize..256, -10i64..=10).prop_map(|(a, c)| Change::Cost(a, c * 40_000)),
        (0usize..256, -10i64..=10).prop_map(|(a, c)| Change::Cost(a, c << 33)),
        (
            0usize..64,
            -2i64..=3,
            prop_oneof![Just(None), (0i64..=8).prop_map(Some)]
        )
            .prop_map(|(a, lower, width)| match width {
                None => Change::Bounds(a, lower, INFINITE_CAPACITY),
                Some(w) => Change::Bounds(a, lower, lower.max(0) + w),
            }),
        (0usize..64, 0usize..64, -4i64..=4).prop_map(|(u, v, k)| Change::Supply(u, v, k)),
    ]
}

fn apply(solver: &mut Solver, change: &Change) {
    let (n, m) = (solver.network().node_count(), solver.network().arc_count());
    match *change {
        Change::Cost(a, c) if m > 0 => solver.set_cost(ArcId((a % m) as u32), c).unwrap(),
        Change::Bounds(a, lower, upper) if m > 0 => solver
            .set_bounds(ArcId((a % m) as u32), lower, upper)
            .unwrap(),
        Change::Supply(u, v, k) => {
            let (u, v) = (NodeId((u % n) as u32), NodeId((v % n) as u32));
            let bu = solver.network().supply(u).unwrap();
            solver.set_supply(u, bu - k).unwrap();
            let bv = solver.network().supply(v).unwrap();
            solver.set_supply(v, bv + k).unwrap();
        }
        _ => {}
    }
}

/// The part of a result that must not depend on how it was reached.
fn summary(result: &Result<mcf::Solution, McfError>) -> Result<i64, McfError> {
    match result {
        Ok(sol) => Ok(sol.cost),
        Err(McfError::Infeasible { unmet, .. }) => Err(McfError::Infeasible {
            unmet: *unmet,
            node: NodeId(0),
        }),
        Err(e) => Err(e.clone()),
    }
}

/// Solves `network`, then after each round of `rounds` re-solves warm and compares with a cold
/// solve of the changed network.
fn warm_matches_cold(network: Network, rounds: &[Vec<Change>]) -> Result<(), TestCaseError> {
    let mut solver = Solver::new(network).unwrap();
    let first = solver.solve();
    prop_assert_eq!(summary(&first), summary(&mcf::solve(solver.network())));
    for round in rounds {
        for c in round {
            apply(&mut solver, c);
        }
        let warm = solver.solve();
        let cold = mcf::solve(solver.network());
        prop_assert_eq!(summary(&warm), summary(&cold));
        if let Ok(sol) = &warm
            && let Err(why) = certificate(solver.network(), sol)
        {
            prop_assert!(false, "{}", why);
        }
    }
    Ok(())
}

fn rounds() -> impl Strategy<Value = Vec<Vec<Change>>> {
    proptest::collection::vec(proptest::collection::vec(change(), 1..4), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn warm_resolve_equals_cold_solve(network in small_network(), rounds in rounds()) {
        warm_matches_cold(network, &rounds)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn warm_resolve_equals_cold_solve_on_medium_networks(
        network in medium_network(),
        rounds in proptest::collection::vec(proptest::collection::vec(change(), 1..12), 1..5),
    ) {
        warm_matches_cold(network, &rounds)?;
    }
}

#[test]
fn warm_resolve_after_cost_changes_needs_fewer_pivots() {
    // A 30 x 30 transportation problem; change 9 costs and re-solve from the old basis.
    let (m, k) = (30u32, 30u32);
    let mut arcs = Vec::new();
    let mut supplies = vec![0i64; (m + k) as usize];
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as i64
    };
    for i in 0..m {
        supplies[i as usize] = 10 + next() % 20;
        for j in 0..k {
            arcs.push((
                i as usize,
                (m + j) as usize,
                0,
                INFINITE_CAPACITY,
                1 + next() % 1000,
            ));
        }
    }
    let total: i64 = supplies.iter().sum();
    let (share, rest) = (total / i64::from(k), total % i64::from(k));
    for j in 0..i64::from(k) {
        supplies[(i64::from(m) + j) as usize] = -share - i64::from(j < rest);
    }
    let network = build((m + k) as usize, &arcs, &supplies[..]);
    let mut solver = Solver::new(network).unwrap();
    solver.solve().unwrap();
    let cold_pivots = solver.last_pivots();
    for a in (0..arcs.len()).step_by(100) {
        solver.set_cost(ArcId(a as u32), 1 + next() % 1000).unwrap();
    }
    let warm = solver.solve().unwrap();
    let cold = mcf::solve(solver.network()).unwrap();
    assert_eq!(warm.cost, cold.cost);
    assert!(
        solver.last_pivots() * 4 < cold_pivots,
        "warm {} pivots, cold {cold_pivots}",
        solver.last_pivots()
    );
}

/// Every family of the anchors' generator (`../shared/anchors/gen/mcf_gen.py`) at a small scale
/// and a seed from `ALLOT_TEST_SEED`: the optimal cost equals LEMON's network simplex, LEMON's
/// cost scaling and OR-Tools' `SimpleMinCostFlow`, each run as its own program.
#[test]
fn costs_equal_lemon_and_ortools_on_generated_families() {
    let name = "costs_equal_lemon_and_ortools_on_generated_families";
    let Some(anchors) = allot_testkit::anchors(name) else {
        return;
    };
    let seed = allot_testkit::TestSeed::new(name);
    let dir = tempfile::tempdir().unwrap();
    for (k, (family, scale)) in [
        ("fair", "0.05"),
        ("transport", "0.1"),
        ("netgen", "0.1"),
        ("grid", "0.2"),
    ]
    .into_iter()
    .enumerate()
    {
        let file = dir.path().join(format!("{family}.min"));
        let instance_seed = (seed.value() % 1_000_000 + k as u64).to_string();
        let generated = std::process::Command::new(anchors.python())
            .arg(anchors.source("gen/mcf_gen.py"))
            .args([family, &instance_seed])
            .arg(&file)
            .arg(scale)
            .output()
            .unwrap();
        assert!(
            generated.status.success(),
            "{}",
            String::from_utf8_lossy(&generated.stderr)
        );
        let network = dimacs::read_file(&file).unwrap();
        let ours = mcf::solve(&network).unwrap();
        certificate(&network, &ours).unwrap();
        let run = |program: &mut std::process::Command| -> i64 {
            let out = program.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // `<solver> COST SECONDS`
            let text = String::from_utf8(out.stdout).unwrap();
            text.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("unexpected output {text:?}"))
        };
        let lemon_ns = run(std::process::Command::new(anchors.tool("lemon_mcf")).arg(&file));
        let lemon_cs = run(std::process::Command::new(anchors.tool("lemon_mcf"))
            .arg(&file)
            .arg("cs"));
        let ortools = run(std::process::Command::new(anchors.python())
            .arg(anchors.source("ortools_mcf.py"))
            .arg(&file));
        assert_eq!(
            (ours.cost, ours.cost, ours.cost),
            (lemon_ns, lemon_cs, ortools),
            "{family} seed {instance_seed}: ours, LEMON NS, LEMON CS, OR-Tools"
        );
    }
}

/// A network built from a `petgraph` graph is the same network: the same optimal cost as the
/// one built arc by arc, and the solution, read per graph edge, conserves flow at every node
/// by petgraph's own view of the edges (supply = out - in).
#[test]
fn networks_from_petgraph_graphs() {
    use allot_solvers::mcf::{ArcSpec, edge_of};
    use petgraph::Direction;
    use petgraph::graph::Graph;
    use petgraph::visit::EdgeRef as _;
    use rand::RngExt as _;

    let seed = allot_testkit::TestSeed::new("networks_from_petgraph_graphs");
    let mut rng = seed.rng(0);
    for case in 0..40 {
        let nodes = rng.random_range(2..12usize);
        let mut graph: Graph<i64, ArcSpec> = Graph::new();
        let ids: Vec<_> = (0..nodes).map(|_| graph.add_node(0)).collect();
        let mut direct = Network::new();
        direct.add_nodes(nodes).unwrap();
        for _ in 0..rng.random_range(1..30) {
            let (a, b) = (rng.random_range(0..nodes), rng.random_range(0..nodes));
            let spec = ArcSpec {
                lower: 0,
                upper: rng.random_range(0..20),
                cost: rng.random_range(-5..20),
            };
            graph.add_edge(ids[a], ids[b], spec);
            direct.add_arc(NodeId(a as u32), NodeId(b as u32), spec.upper, spec.cost);
        }
        // A feasible supply: push some units from node 0 along a random walk of edges.
        let (s, t) = (0, nodes - 1);
        let units = rng.random_range(0..5i64);
        graph[ids[s]] += units;
        graph[ids[t]] -= units;
        direct.set_supply(NodeId(s as u32), graph[ids[s]]).unwrap();
        direct.set_supply(NodeId(t as u32), graph[ids[t]]).unwrap();

        let from_graph = Network::from_graph(&graph, |&supply| supply, |&spec| spec).unwrap();
        let (a, b) = (mcf::solve(&from_graph), mcf::solve(&direct));
        match (&a, &b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.cost, b.cost, "case {case}");
                for node in graph.node_indices() {
                    let out: i64 = graph
                        .edges_directed(node, Direction::Outgoing)
                        .map(|e| a.flow[e.id().index()])
                        .sum();
                    let into: i64 = graph
                        .edges_directed(node, Direction::Incoming)
                        .map(|e| a.flow[e.id().index()])
                        .sum();
                    assert_eq!(out - into, graph[node], "case {case}, node {node:?}");
                }
                let first = edge_of(ArcId(0));
                assert_eq!(
                    graph.edge_weight(first).map(|w| w.upper),
                    from_graph.arc(ArcId(0)).map(|a| a.upper)
                );
            }
            (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "case {case}"),
            _ => panic!("case {case}: {a:?} against {b:?}"),
        }
    }
}
