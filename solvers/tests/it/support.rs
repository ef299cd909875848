//! Shared test helpers: random networks and an optimality certificate check.

use allot_solvers::mcf::{INFINITE_CAPACITY, Network, NodeId, Solution};
use proptest::prelude::*;

/// One arc as generated: (from, to, lower, upper, cost).
pub type ArcSpec = (usize, usize, i64, i64, i64);

/// Random small networks with lower bounds (some negative), negative costs, parallel arcs,
/// zero-capacity arcs, infinite capacities, self-loops and transshipment nodes. Half of them have
/// only non-negative costs, which the solver starts differently (from a shortest-path tree); some
/// have costs beyond `i32`, which the solver stores differently.
pub fn small_network() -> impl Strategy<Value = Network> {
    (
        1usize..=7,
        any::<bool>(),
        prop_oneof![4 => Just(1i64), 1 => Just(1i64 << 33)],
    )
        .prop_flat_map(|(n, signed, unit)| small_network_of(n, signed, unit))
}

fn small_network_of(n: usize, signed: bool, unit: i64) -> impl Strategy<Value = Network> {
    {
        let min_cost = if signed { -10i64 } else { 0 };
        let arc = (
            0..n,
            0..n,
            prop_oneof![6 => Just(0i64), 2 => 1i64..=3, 1 => -2i64..=-1],
            prop_oneof![1 => Just(None), 1 => Just(Some(0i64)), 6 => (0i64..=8).prop_map(Some)],
            min_cost..=10,
        )
            .prop_map(move |(from, to, lower, width, cost)| {
                let upper = match width {
                    None => INFINITE_CAPACITY,
                    Some(w) => lower.max(0) + w,
                };
                (from, to, lower, upper, cost * unit)
            });
        let supplies = proptest::collection::vec(prop_oneof![2 => Just(0i64), 3 => -6i64..=6], n);
        (proptest::collection::vec(arc, 0..=14), supplies)
            .prop_map(move |(arcs, supplies)| build(n, &arcs, &supplies))
    }
}

/// Random networks of 20 to 40 nodes and up to 150 arcs: deep enough spanning trees to exercise
/// the tree updates (both sides of the potential update, long stems).
pub fn medium_network() -> impl Strategy<Value = Network> {
    (20usize..=40, any::<bool>()).prop_flat_map(|(n, signed)| {
        let min_cost = if signed { -20i64 } else { 0 };
        let arc = (
            0..n,
            0..n,
            prop_oneof![Just(None), (0i64..=30).prop_map(Some)],
            min_cost..=100,
        )
            .prop_map(|(from, to, width, cost)| {
                (from, to, 0, width.unwrap_or(INFINITE_CAPACITY), cost)
            });
        let supplies = proptest::collection::vec(prop_oneof![3 => Just(0i64), 1 => -15i64..=15], n);
        (proptest::collection::vec(arc, 40..=150), supplies)
            .prop_map(move |(arcs, supplies)| build(n, &arcs, &supplies))
    })
}

/// A network from arc specs; the last node's supply balances the others.
pub fn build(n: usize, arcs: &[ArcSpec], supplies: &[i64]) -> Network {
    let mut net = Network::new();
    net.add_nodes(n).unwrap();
    let mut sum = 0;
    for (v, &b) in supplies.iter().enumerate().take(n.saturating_sub(1)) {
        net.set_supply(NodeId(v as u32), b).unwrap();
        sum += b;
    }
    if n > 0 {
        net.set_supply(NodeId(n as u32 - 1), -sum).unwrap();
    }
    for &(from, to, lower, upper, cost) in arcs {
        net.add_arc_with_lower(NodeId(from as u32), NodeId(to as u32), lower, upper, cost);
    }
    net
}

/// Checks that `solution` is a feasible flow of `network` with the stated cost, and that its
/// potentials satisfy complementary slackness, which proves it optimal. Returns what is wrong.
pub fn certificate(network: &Network, solution: &Solution) -> Result<(), String> {
    let n = network.node_count();
    if solution.flow.len() != network.arc_count() || solution.potential.len() != n {
        return Err("wrong lengths".into());
    }
    let mut balance = vec![0i128; n];
    let mut cost = 0i128;
    for (k, (a, &f)) in network.arcs().zip(&solution.flow).enumerate() {
        if f < a.lower || f > a.upper {
            return Err(format!(
                "arc {k}: flow {f} outside {}..={}",
                a.lower, a.upper
            ));
        }
        balance[a.from.index()] += i128::from(f);
        balance[a.to.index()] -= i128::from(f);
        cost += i128::from(f) * i128::from(a.cost);
        let rc = i128::from(a.cost) + i128::from(solution.potential[a.from.index()])
            - i128::from(solution.potential[a.to.index()]);
        if rc > 0 && f != a.lower {
            return Err(format!(
                "arc {k}: reduced cost {rc} > 0 but flow {f} above lower bound"
            ));
        }
        if rc < 0 && f != a.upper {
            return Err(format!(
                "arc {k}: reduced cost {rc} < 0 but flow {f} below capacity"
            ));
        }
    }
    for (v, (&got, &b)) in balance.iter().zip(network.supplies()).enumerate() {
        if got != i128::from(b) {
            return Err(format!("node {v}: net outflow {got}, supply {b}"));
        }
    }
    if cost != i128::from(solution.cost) {
        return Err(format!("cost {} but flow costs {cost}", solution.cost));
    }
    Ok(())
}
