//! Minimum-cost flow by primal network simplex.
//!
//! Build a [`Network`] (nodes with supplies, arcs with lower bounds, capacities and costs), then
//! either [`solve`] it once or keep a [`Solver`] to change costs, bounds or supplies and re-solve from
//! the previous optimal basis.
//!
//! ```
//! use allot_solvers::mcf::{self, Network, Solver};
//!
//! // Two clinics (supply = free slots) and two districts (demand = referrals).
//! let mut net = Network::new();
//! let clinic = [net.add_node(), net.add_node()];
//! let district = [net.add_node(), net.add_node()];
//! net.set_supply(clinic[0], 3)?;
//! net.set_supply(clinic[1], 2)?;
//! net.set_supply(district[0], -4)?;
//! net.set_supply(district[1], -1)?;
//! net.add_arc(clinic[0], district[0], 10, 1);
//! net.add_arc(clinic[0], district[1], 10, 4);
//! let slow = net.add_arc(clinic[1], district[0], 10, 3);
//! net.add_arc(clinic[1], district[1], 10, 2);
//! let best = mcf::solve(&net)?;
//! assert_eq!((best.cost, best.flow.clone()), (8, vec![3, 0, 1, 1]));
//!
//! // Re-solve from the optimal basis after a cost change: the same flow now costs 15.
//! let mut solver = Solver::new(net)?;
//! solver.solve()?;
//! solver.set_cost(slow, 10)?;
//! assert_eq!(solver.solve()?.cost, 15);
//! # Ok::<(), mcf::McfError>(())
//! ```
//!
//! # Conventions
//! - Supply `b[v] > 0` is flow that must leave node `v`, `b[v] < 0` flow that must arrive; the
//!   supplies must sum to zero. Every arc `a = (i, j)` carries `lower[a] <= flow[a] <= upper[a]`,
//!   and `upper[a] == INFINITE_CAPACITY` means unbounded. Lower bounds may be negative (flow against
//!   the arc's direction); capacities may not.
//! - Potentials: the reduced cost of arc `(i, j)` is `cost + potential[i] - potential[j]`. At the
//!   optimum every arc with reduced cost `> 0` is at its lower bound and every arc with reduced cost
//!   `< 0` is at its capacity (complementary slackness), which certifies optimality. In LP terms,
//!   `-potential[v]` is the dual of node `v`'s conservation row `out - in = b[v]`: the marginal cost
//!   of one more unit of supply at `v`.
//! - Parallel arcs and self-loops are allowed. A self-loop with negative cost and infinite capacity is
//!   an unbounded cycle.
//!
//! # Limits
//! Everything runs in `i64`. Before solving, [`Solver::new`] and [`Solver::solve`] reject inputs for
//! which a flow, potential or reduced cost could overflow: with `n` nodes and `C` the largest absolute
//! cost, `4 (n + 1) (C + 1)` must fit in `i64`, and the sum of the positive supplies (after removing
//! lower bounds) plus all finite capacities (`upper - lower`) must be at most `(2^63 - 2) / 2`. The
//! total cost is accumulated in `i128` and reported as [`McfError::CostOverflow`] if it does not fit.

mod graph;
mod simplex;

pub use graph::{ArcSpec, edge_of};

use std::fmt;

use simplex::{Outcome, Shape, Simplex};

/// A capacity meaning "no upper bound".
pub const INFINITE_CAPACITY: i64 = i64::MAX;

/// Largest number of nodes (ids are `u32` internally, plus the artificial root).
pub const MAX_NODES: usize = (i32::MAX as usize) / 2;
/// Largest number of arcs (internally there is one more artificial arc per node).
pub const MAX_ARCS: usize = (i32::MAX as usize) / 2;

/// A node of a [`Network`], numbered from 0 in the order they were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The 0-based index of the node.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An arc of a [`Network`], numbered from 0 in the order they were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArcId(pub u32);

impl ArcId {
    /// The 0-based index of the arc.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ArcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One arc's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arc {
    pub from: NodeId,
    pub to: NodeId,
    pub lower: i64,
    /// Capacity (upper bound); [`INFINITE_CAPACITY`] for none.
    pub upper: i64,
    pub cost: i64,
}

/// Why a flow problem has no optimal solution, or was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McfError {
    /// The supplies cannot all be routed: `unmet` units of demand stay unmet (equivalently, of
    /// supply stay unsent), and `node` is one node whose demand is short.
    #[error("infeasible: {unmet} units of demand cannot be met (node {node} is short)")]
    Infeasible { unmet: i64, node: NodeId },
    /// A cycle of negative total cost whose arcs all have infinite capacity exists, and the supplies
    /// can be met (an infeasible problem reports `Infeasible` instead).
    #[error("unbounded: a cycle of negative cost has infinite capacity")]
    Unbounded,
    #[error("supplies sum to {sum}, not to zero")]
    Unbalanced { sum: i128 },
    #[error("arc {arc}: lower bound {lower} is above the capacity {upper}")]
    LowerAboveCapacity { arc: ArcId, lower: i64, upper: i64 },
    #[error("arc {arc}: capacity {upper} is negative")]
    NegativeCapacity { arc: ArcId, upper: i64 },
    #[error("arc {arc}: node {node} is out of range (the network has {nodes} nodes)")]
    NodeOutOfRange {
        arc: ArcId,
        node: NodeId,
        nodes: usize,
    },
    #[error("node {node} is out of range (the network has {nodes} nodes)")]
    UnknownNode { node: NodeId, nodes: usize },
    #[error("arc {arc} is out of range (the network has {arcs} arcs)")]
    UnknownArc { arc: ArcId, arcs: usize },
    #[error(
        "costs up to {max_abs_cost} in absolute value on {nodes} nodes could overflow the node \
         potentials (4 (nodes + 1) (max |cost| + 1) must fit in i64)"
    )]
    CostRange { max_abs_cost: u64, nodes: usize },
    #[error(
        "positive supplies and finite capacities add up to {total}, above the limit {limit} \
         (flows could overflow i64)"
    )]
    FlowRange { total: i128, limit: i64 },
    #[error("the total cost {cost} of the optimal flow does not fit in i64")]
    CostOverflow { cost: i128 },
    #[error("{count} {what} is more than the limit of {limit}")]
    TooLarge {
        what: &'static str,
        count: usize,
        limit: usize,
    },
}

/// An optimal flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// Flow on each arc, indexed by [`ArcId`].
    pub flow: Vec<i64>,
    /// Total cost `sum(flow * cost)`.
    pub cost: i64,
    /// Node potentials, indexed by [`NodeId`]; see the module docs for the sign convention.
    pub potential: Vec<i64>,
}

impl Solution {
    /// Reduced cost `cost + potential[from] - potential[to]` of `arc` in `network`, or `None` if the
    /// arc is not in the network. Computed in `i128` so that it cannot overflow.
    pub fn reduced_cost(&self, network: &Network, arc: ArcId) -> Option<i128> {
        let a = network.arc(arc)?;
        let pi = |v: NodeId| self.potential.get(v.index()).copied().map(i128::from);
        Some(i128::from(a.cost) + pi(a.from)? - pi(a.to)?)
    }
}

/// A flow network under construction: nodes with supplies, arcs with bounds and costs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    supply: Vec<i64>,
    from: Vec<u32>,
    to: Vec<u32>,
    lower: Vec<i64>,
    upper: Vec<i64>,
    cost: Vec<i64>,
}

impl Network {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty network with room for `nodes` nodes and `arcs` arcs.
    pub fn with_capacity(nodes: usize, arcs: usize) -> Self {
        Network {
            supply: Vec::with_capacity(nodes),
            from: Vec::with_capacity(arcs),
            to: Vec::with_capacity(arcs),
            lower: Vec::with_capacity(arcs),
            upper: Vec::with_capacity(arcs),
            cost: Vec::with_capacity(arcs),
        }
    }

    /// Like [`Network::with_capacity`], but `None` instead of aborting if the memory is not there
    /// (sizes read from a file must not be able to kill the process).
    pub fn try_with_capacity(nodes: usize, arcs: usize) -> Option<Self> {
        let mut network = Network::new();
        network.supply.try_reserve_exact(nodes).ok()?;
        network.from.try_reserve_exact(arcs).ok()?;
        network.to.try_reserve_exact(arcs).ok()?;
        network.lower.try_reserve_exact(arcs).ok()?;
        network.upper.try_reserve_exact(arcs).ok()?;
        network.cost.try_reserve_exact(arcs).ok()?;
        Some(network)
    }

    /// Adds a node with supply 0.
    pub fn add_node(&mut self) -> NodeId {
        let id = NodeId(u32::try_from(self.supply.len()).unwrap_or(u32::MAX));
        self.supply.push(0);
        id
    }

    /// Adds `count` nodes with supply 0 and returns the first one's id; they are numbered
    /// consecutively. Fails if the network would get more than [`MAX_NODES`] nodes.
    pub fn add_nodes(&mut self, count: usize) -> Result<NodeId, McfError> {
        let first = self.supply.len();
        let total = first.saturating_add(count);
        if total > MAX_NODES || self.supply.try_reserve(count).is_err() {
            return Err(McfError::TooLarge {
                what: "nodes",
                count: total,
                limit: MAX_NODES,
            });
        }
        self.supply.resize(total, 0);
        Ok(NodeId(first as u32))
    }

    /// Adds an arc with lower bound 0. Endpoints are checked when solving.
    pub fn add_arc(&mut self, from: NodeId, to: NodeId, capacity: i64, cost: i64) -> ArcId {
        self.add_arc_with_lower(from, to, 0, capacity, cost)
    }

    /// Adds an arc whose flow must lie in `lower..=upper`. Endpoints and bounds are checked when
    /// solving.
    pub fn add_arc_with_lower(
        &mut self,
        from: NodeId,
        to: NodeId,
        lower: i64,
        upper: i64,
        cost: i64,
    ) -> ArcId {
        let id = ArcId(u32::try_from(self.from.len()).unwrap_or(u32::MAX));
        self.from.push(from.0);
        self.to.push(to.0);
        self.lower.push(lower);
        self.upper.push(upper);
        self.cost.push(cost);
        id
    }

    /// Sets the supply of `node` (positive: source, negative: sink).
    pub fn set_supply(&mut self, node: NodeId, supply: i64) -> Result<(), McfError> {
        let nodes = self.supply.len();
        let slot = self
            .supply
            .get_mut(node.index())
            .ok_or(McfError::UnknownNode { node, nodes })?;
        *slot = supply;
        Ok(())
    }

    /// Sets the cost of `arc`.
    pub fn set_cost(&mut self, arc: ArcId, cost: i64) -> Result<(), McfError> {
        let arcs = self.cost.len();
        let slot = self
            .cost
            .get_mut(arc.index())
            .ok_or(McfError::UnknownArc { arc, arcs })?;
        *slot = cost;
        Ok(())
    }

    /// Sets the bounds of `arc`; checked when solving.
    pub fn set_bounds(&mut self, arc: ArcId, lower: i64, upper: i64) -> Result<(), McfError> {
        let arcs = self.cost.len();
        if arc.index() >= arcs {
            return Err(McfError::UnknownArc { arc, arcs });
        }
        self.lower[arc.index()] = lower;
        self.upper[arc.index()] = upper;
        Ok(())
    }

    pub fn node_count(&self) -> usize {
        self.supply.len()
    }

    pub fn arc_count(&self) -> usize {
        self.from.len()
    }

    pub fn supply(&self, node: NodeId) -> Option<i64> {
        self.supply.get(node.index()).copied()
    }

    /// All supplies, indexed by [`NodeId`].
    pub fn supplies(&self) -> &[i64] {
        &self.supply
    }

    pub fn arc(&self, arc: ArcId) -> Option<Arc> {
        let i = arc.index();
        Some(Arc {
            from: NodeId(*self.from.get(i)?),
            to: NodeId(self.to[i]),
            lower: self.lower[i],
            upper: self.upper[i],
            cost: self.cost[i],
        })
    }

    /// All arcs in id order.
    pub fn arcs(&self) -> impl ExactSizeIterator<Item = Arc> + '_ {
        (0..self.from.len()).map(|i| Arc {
            from: NodeId(self.from[i]),
            to: NodeId(self.to[i]),
            lower: self.lower[i],
            upper: self.upper[i],
            cost: self.cost[i],
        })
    }

    /// Total cost of `flow` (indexed by arc id) in `i128`; `None` if the lengths differ.
    pub fn flow_cost(&self, flow: &[i64]) -> Option<i128> {
        (flow.len() == self.cost.len()).then(|| {
            flow.iter()
                .zip(&self.cost)
                .map(|(&f, &c)| i128::from(f) * i128::from(c))
                .sum()
        })
    }

    /// Checks everything that can be checked before solving, and derives the limits the simplex
    /// runs under, plus the supplies with lower bounds removed.
    fn validate(&self) -> Result<Checked, McfError> {
        let n = self.supply.len();
        let m = self.from.len();
        if n > MAX_NODES {
            return Err(McfError::TooLarge {
                what: "nodes",
                count: n,
                limit: MAX_NODES,
            });
        }
        if m > MAX_ARCS {
            return Err(McfError::TooLarge {
                what: "arcs",
                count: m,
                limit: MAX_ARCS,
            });
        }
        let mut reduced: Vec<i128> = self.supply.iter().map(|&b| i128::from(b)).collect();
        let mut finite_caps: i128 = 0;
        let mut max_abs_cost: u64 = 0;
        for k in 0..m {
            let arc = ArcId(k as u32);
            let (from, to) = (self.from[k] as usize, self.to[k] as usize);
            for node in [from, to] {
                if node >= n {
                    return Err(McfError::NodeOutOfRange {
                        arc,
                        node: NodeId(node as u32),
                        nodes: n,
                    });
                }
            }
            let (lower, upper) = (self.lower[k], self.upper[k]);
            if upper < 0 {
                return Err(McfError::NegativeCapacity { arc, upper });
            }
            if lower > upper {
                return Err(McfError::LowerAboveCapacity { arc, lower, upper });
            }
            if upper != INFINITE_CAPACITY {
                finite_caps += i128::from(upper) - i128::from(lower);
            }
            if lower != 0 {
                reduced[from] -= i128::from(lower);
                reduced[to] += i128::from(lower);
            }
            max_abs_cost = max_abs_cost.max(self.cost[k].unsigned_abs());
        }
        let sum: i128 = self.supply.iter().map(|&b| i128::from(b)).sum();
        if sum != 0 {
            return Err(McfError::Unbalanced { sum });
        }
        let positive: i128 = reduced.iter().filter(|&&b| b > 0).sum();
        let limit = (i64::MAX - 1) / 2;
        let total = positive + finite_caps;
        if total > i128::from(limit) {
            return Err(McfError::FlowRange { total, limit });
        }
        let art_cost = art_cost(n, max_abs_cost)?;
        let flow_bound = total as i64;
        Ok(Checked {
            art_cost,
            flow_bound,
            big_cap: 2 * flow_bound + 1,
            max_abs_cost,
            // Each |reduced[v]| <= positive <= flow_bound, checked above.
            supply: reduced.into_iter().map(|b| b as i64).collect(),
        })
    }
}

/// The big M for `n` nodes and costs up to `max_abs_cost` in absolute value, after checking that
/// potentials and reduced costs then fit in `i64`. Any cycle through the root that sheds artificial
/// flow costs at most `(n - 1) * C - art_cost < 0`, so an optimum uses as little artificial flow as
/// possible; potentials are tree-path sums, at most `art_cost + n * C` in absolute value.
fn art_cost(n: usize, max_abs_cost: u64) -> Result<i64, McfError> {
    let need = 4 * (n as i128 + 1) * (i128::from(max_abs_cost) + 1);
    if need > i128::from(i64::MAX) {
        return Err(McfError::CostRange {
            max_abs_cost,
            nodes: n,
        });
    }
    Ok((n as i64) * (max_abs_cost as i64) + 1)
}

/// What validation derives: limits and supplies without lower bounds.
struct Checked {
    art_cost: i64,
    flow_bound: i64,
    big_cap: i64,
    max_abs_cost: u64,
    supply: Vec<i64>,
}

/// Solves `network` from scratch.
pub fn solve(network: &Network) -> Result<Solution, McfError> {
    let checked = network.validate()?;
    let mut core = Core::build(network, &checked);
    let outcome = core.simplex.cold_start();
    let outcome = if outcome == Outcome::Optimal {
        core.simplex.run()
    } else {
        outcome
    };
    core.finish(network, outcome)
}

/// A solver that keeps its optimal basis, so that after changing costs, bounds or supplies it
/// re-solves from there instead of from scratch.
///
/// Cost changes keep the old basis feasible; bound and supply changes may not, and then the basis is
/// repaired: tree arcs whose flow would leave its bounds are set to the nearest bound and the
/// difference is routed through artificial arcs, which the simplex then drives back to zero.
#[derive(Debug, Clone)]
pub struct Solver {
    network: Network,
    core: Core,
    /// Whether `core` holds a basis from an earlier solve.
    warm: bool,
    /// Arcs whose cost changed since the last solve.
    cost_changed: Vec<u32>,
    /// Bounds or supplies changed since the last solve: re-validate and refresh everything.
    flows_changed: bool,
    /// Largest absolute cost at the last full validation, raised by later cost changes (a stale,
    /// too large value only makes the big M larger than needed).
    max_abs_cost: u64,
}

impl Solver {
    /// Validates `network` and prepares a solver for it.
    pub fn new(network: Network) -> Result<Self, McfError> {
        let checked = network.validate()?;
        let core = Core::build(&network, &checked);
        Ok(Solver {
            network,
            core,
            warm: false,
            cost_changed: Vec::new(),
            flows_changed: false,
            max_abs_cost: checked.max_abs_cost,
        })
    }

    /// The network as last changed.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Number of simplex pivots of the last solve.
    pub fn last_pivots(&self) -> u64 {
        self.core.simplex.pivots
    }

    pub fn set_cost(&mut self, arc: ArcId, cost: i64) -> Result<(), McfError> {
        self.network.set_cost(arc, cost)?;
        self.cost_changed.push(arc.0);
        Ok(())
    }

    /// Sets the bounds of `arc`; rejected at once if `lower > upper` or `upper < 0`.
    pub fn set_bounds(&mut self, arc: ArcId, lower: i64, upper: i64) -> Result<(), McfError> {
        if upper < 0 {
            return Err(McfError::NegativeCapacity { arc, upper });
        }
        if lower > upper {
            return Err(McfError::LowerAboveCapacity { arc, lower, upper });
        }
        self.network.set_bounds(arc, lower, upper)?;
        self.flows_changed = true;
        Ok(())
    }

    /// Sets the capacity of `arc`, keeping its lower bound.
    pub fn set_capacity(&mut self, arc: ArcId, upper: i64) -> Result<(), McfError> {
        let lower = self
            .network
            .arc(arc)
            .ok_or(McfError::UnknownArc {
                arc,
                arcs: self.network.arc_count(),
            })?
            .lower;
        self.set_bounds(arc, lower, upper)
    }

    /// Sets the supply of `node`; supplies must balance again by the next [`Solver::solve`].
    pub fn set_supply(&mut self, node: NodeId, supply: i64) -> Result<(), McfError> {
        self.network.set_supply(node, supply)?;
        self.flows_changed = true;
        Ok(())
    }

    /// Solves the current network, starting from the last basis if there is one.
    pub fn solve(&mut self) -> Result<Solution, McfError> {
        let outcome = if !self.warm {
            // `new` built the core; rebuild only if the network changed since.
            if self.flows_changed || !self.cost_changed.is_empty() {
                let checked = self.network.validate()?;
                self.core = Core::build(&self.network, &checked);
                self.max_abs_cost = checked.max_abs_cost;
            }
            self.warm = true;
            match self.core.simplex.cold_start() {
                Outcome::Optimal => self.core.simplex.run(),
                Outcome::Unbounded => Outcome::Unbounded,
            }
        } else if self.flows_changed {
            let checked = self.network.validate()?;
            self.core.refresh(&self.network, &checked);
            self.max_abs_cost = checked.max_abs_cost;
            self.core.simplex.pivots = 0;
            self.core.simplex.repair_basis();
            self.core.simplex.run()
        } else {
            // Only costs changed: the flows stay feasible, so refresh the changed arcs and the
            // potentials, nothing else.
            let n = self.network.node_count();
            let raised = self
                .cost_changed
                .iter()
                .map(|&k| self.network.cost[k as usize].unsigned_abs())
                .fold(self.max_abs_cost, u64::max);
            let art = match art_cost(n, raised) {
                Ok(art) => art,
                // The running maximum may be stale; only the exact one can reject.
                Err(_) => {
                    let exact = self.network.cost.iter().map(|c| c.unsigned_abs()).max();
                    art_cost(n, exact.unwrap_or(0))?
                }
            };
            self.max_abs_cost = self.max_abs_cost.max(raised);
            for &k in &self.cost_changed {
                let i = self.core.mixing.position(k as usize);
                self.core.simplex.set_cost(i, self.network.cost[k as usize]);
            }
            self.core.simplex.pivots = 0;
            self.core.simplex.reprice(art);
            self.core.simplex.run()
        };
        self.cost_changed.clear();
        self.flows_changed = false;
        self.core.finish(&self.network, outcome)
    }
}

/// The simplex plus the map between external arc ids and internal positions.
#[derive(Debug, Clone)]
struct Core {
    simplex: Simplex,
    mixing: Mixing,
}

impl Core {
    fn build(network: &Network, checked: &Checked) -> Core {
        let n = network.node_count();
        let mixing = Mixing::new(n, network.arc_count());
        let arc = |k: usize| {
            let cap = internal_cap(network.lower[k], network.upper[k], checked.big_cap);
            (network.from[k], network.to[k], network.cost[k], cap)
        };
        // The shape in file order (reads memory in order), the arcs in the mixed order.
        let shape = Shape::of((0..network.arc_count()).map(arc));
        let mut simplex = Simplex::new(n, shape, mixing.by_position().map(arc));
        simplex.art_cost = checked.art_cost;
        simplex.flow_bound = checked.flow_bound;
        simplex.big_cap = checked.big_cap;
        simplex.set_supplies(&checked.supply);
        Core { simplex, mixing }
    }

    /// Copies costs, capacities and supplies from `network` into the internal arrays (for a
    /// warm start after bounds or supplies changed).
    fn refresh(&mut self, network: &Network, checked: &Checked) {
        let s = &mut self.simplex;
        s.art_cost = checked.art_cost;
        s.flow_bound = checked.flow_bound;
        s.big_cap = checked.big_cap;
        for (i, k) in self.mixing.by_position().enumerate() {
            let cap = internal_cap(network.lower[k], network.upper[k], checked.big_cap);
            s.set_arc(i, network.cost[k], cap);
        }
        s.set_supplies(&checked.supply);
    }

    fn finish(&self, network: &Network, outcome: Outcome) -> Result<Solution, McfError> {
        let s = &self.simplex;
        if outcome == Outcome::Unbounded {
            // Report infeasibility first when the supplies cannot be met either: it is the more
            // fundamental fault, and what an LP solver would say.
            return Err(match feasibility(network) {
                Err(e @ McfError::Infeasible { .. }) => e,
                _ => McfError::Unbounded,
            });
        }
        let (unmet, short) = s.artificial_flow();
        if unmet > 0 {
            return Err(McfError::Infeasible {
                unmet,
                node: NodeId(short.unwrap_or(0) as u32),
            });
        }
        // Straight into external order, with no internal copy: on large networks every
        // array touched for the first time costs its page faults.
        let mut flow: Vec<i64> = self
            .mixing
            .by_arc()
            .zip(&network.lower)
            .map(|(i, &lower)| s.bound_flow(i) + lower)
            .collect();
        for (i, f) in s.tree_flows() {
            let k = self.mixing.arc_at(i);
            flow[k] = f + network.lower[k];
        }
        let total = network.flow_cost(&flow).unwrap_or(0);
        let cost = i64::try_from(total).map_err(|_| McfError::CostOverflow { cost: total })?;
        Ok(Solution {
            flow,
            cost,
            potential: s.potentials(),
        })
    }
}

/// Capacity with the lower bound removed; infinite becomes `big_cap`.
fn internal_cap(lower: i64, upper: i64, big_cap: i64) -> i64 {
    if upper == INFINITE_CAPACITY {
        big_cap
    } else {
        upper - lower
    }
}

/// LEMON's arc mixing: external arc `k` goes to internal position `j + t * skip` for the `t`-th
/// arc of column `j`, columns filled in order. One block of the pricing scan then sees arcs from
/// many nodes rather than the consecutive arcs of one node. Computed, not stored: both
/// directions are walked in the order that keeps the writes sequential.
#[derive(Debug, Clone)]
struct Mixing {
    skip: usize,
    /// Number of full rows (`m / skip`) and the length of the last, partial one (`m % skip`).
    rows: usize,
    rest: usize,
    /// First external arc of each column.
    column_start: Vec<usize>,
}

impl Mixing {
    fn new(n: usize, m: usize) -> Self {
        // Trivial graphs keep their order (one column), as in LEMON.
        let skip = if n <= 1 || m == 0 { 1 } else { (m / n).max(3) };
        let (rows, rest) = (m / skip, m % skip);
        let mut column_start = Vec::with_capacity(skip);
        let mut k = 0;
        for j in 0..skip {
            column_start.push(k);
            k += rows + usize::from(j < rest);
        }
        Mixing {
            skip,
            rows,
            rest,
            column_start,
        }
    }

    /// External arc ids in internal order.
    fn by_position(&self) -> impl Iterator<Item = usize> + '_ {
        let full = (0..self.rows).flat_map(move |t| self.column_start.iter().map(move |&c| c + t));
        let last = self.column_start[..self.rest]
            .iter()
            .map(move |&c| c + self.rows);
        full.chain(last)
    }

    /// The external arc at internal position `i` (the inverse of [`Mixing::position`]).
    fn arc_at(&self, i: usize) -> usize {
        self.column_start[i % self.skip] + i / self.skip
    }

    /// Internal positions in external order.
    fn by_arc(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.skip).flat_map(move |j| {
            let len = self.rows + usize::from(j < self.rest);
            (0..len).map(move |t| j + t * self.skip)
        })
    }

    /// Internal position of external arc `k`.
    fn position(&self, k: usize) -> usize {
        let tall = self.rest * (self.rows + 1);
        let (j, t) = if k < tall {
            (k / (self.rows + 1), k % (self.rows + 1))
        } else {
            let k = k - tall;
            (self.rest + k / self.rows, k % self.rows)
        };
        j + t * self.skip
    }
}

/// Solves `network` with all costs zero: succeeds exactly when the supplies can be met.
fn feasibility(network: &Network) -> Result<Solution, McfError> {
    let mut zero = network.clone();
    zero.cost.iter_mut().for_each(|c| *c = 0);
    solve(&zero)
}

#[cfg(test)]
impl Solver {
    /// Renumbers the nodes every `pivots` pivots regardless of size (tests only: the solver
    /// does it by itself only on large networks).
    fn renumber_every(&mut self, pivots: u64) {
        self.core.simplex.renumber_period = pivots;
    }
}

#[cfg(test)]
mod tests {
    use super::{ArcId, Mixing, Network, NodeId, Solver, solve};
    use proptest::prelude::*;

    /// Networks of up to 30 nodes with bounds, some infinite capacities and costs of either sign.
    fn network() -> impl Strategy<Value = Network> {
        (2usize..30, any::<bool>()).prop_flat_map(|(n, signed)| {
            let low = if signed { -5i64 } else { 0 };
            let arc = (
                0..n,
                0..n,
                0i64..2,
                prop_oneof![Just(None), (0i64..20).prop_map(Some)],
                low..50,
            );
            (
                proptest::collection::vec(arc, 1..90),
                proptest::collection::vec(-8i64..8, n - 1),
            )
                .prop_map(move |(arcs, supplies)| {
                    let mut net = Network::new();
                    net.add_nodes(n).unwrap();
                    for (v, &b) in supplies.iter().enumerate() {
                        net.set_supply(NodeId(v as u32), b).unwrap();
                    }
                    net.set_supply(NodeId(n as u32 - 1), -supplies.iter().sum::<i64>())
                        .unwrap();
                    for (u, v, lower, width, cost) in arcs {
                        let upper = width.map_or(super::INFINITE_CAPACITY, |w| lower + w);
                        net.add_arc_with_lower(
                            NodeId(u as u32),
                            NodeId(v as u32),
                            lower,
                            upper,
                            cost,
                        );
                    }
                    net
                })
        })
    }

    proptest! {
        /// Renumbering the nodes mid-solve (as large networks do) changes no result, cold or warm:
        /// same cost or error, and potentials reported under the caller's node ids.
        #[test]
        fn renumbering_is_invisible(
            net in network(),
            period in 1u64..5,
            changes in proptest::collection::vec((0usize..90, 0i64..50, -3i64..3), 1..6),
        ) {
            let mut solver = Solver::new(net.clone()).unwrap();
            solver.renumber_every(period);
            let same = |a: &Result<super::Solution, super::McfError>, b: &Result<super::Solution, super::McfError>| {
                match (a, b) {
                    (Ok(x), Ok(y)) => x.cost == y.cost,
                    (Err(super::McfError::Infeasible { unmet: x, .. }), Err(super::McfError::Infeasible { unmet: y, .. })) => x == y,
                    (Err(x), Err(y)) => x == y,
                    _ => false,
                }
            };
            let got = solver.solve();
            prop_assert!(same(&got, &solve(&net)), "cold: {:?}", got);
            if let Ok(sol) = &got {
                // Complementary slackness under the caller's ids.
                for (k, a) in net.arcs().enumerate() {
                    let rc = sol.reduced_cost(&net, ArcId(k as u32)).unwrap();
                    let f = sol.flow[k];
                    prop_assert!(!(rc > 0 && f != a.lower || rc < 0 && f != a.upper));
                }
            }
            let m = net.arc_count();
            for (i, &(a, cost, shift)) in changes.iter().enumerate() {
                solver.set_cost(ArcId((a % m) as u32), cost).unwrap();
                if i % 2 == 1 {
                    // Move supply between two nodes, which repairs the basis (internal numbering).
                    let (u, v) = (NodeId(0), NodeId((a % net.node_count()) as u32));
                    let bu = solver.network().supply(u).unwrap();
                    solver.set_supply(u, bu - shift).unwrap();
                    let bv = solver.network().supply(v).unwrap();
                    solver.set_supply(v, bv + shift).unwrap();
                }
                let warm = solver.solve();
                prop_assert!(same(&warm, &solve(solver.network())), "warm: {:?}", warm);
            }
        }
    }

    /// The computed mixing is LEMON's: walk `k * skip`, wrapping to the next column.
    #[test]
    fn mixing_matches_lemon() {
        for (n, m) in [
            (0, 0),
            (1, 5),
            (2, 2),
            (3, 10),
            (4, 17),
            (10, 100),
            (7, 1000),
            (1000, 3),
        ] {
            let mix = Mixing::new(n, m);
            let mut lemon = vec![0; m];
            if n <= 1 || m == 0 {
                lemon = (0..m).collect();
            } else {
                let skip = (m / n).max(3);
                let (mut i, mut j) = (0, 0);
                for slot in lemon.iter_mut() {
                    *slot = i;
                    i += skip;
                    if i >= m {
                        j += 1;
                        i = j;
                    }
                }
            }
            let by_arc: Vec<usize> = mix.by_arc().collect();
            assert_eq!(by_arc, lemon, "n {n} m {m}");
            let positions: Vec<usize> = (0..m).map(|k| mix.position(k)).collect();
            assert_eq!(positions, lemon, "n {n} m {m}");
            let order: Vec<usize> = mix.by_position().collect();
            assert_eq!(order.len(), m);
            for (i, k) in order.into_iter().enumerate() {
                assert_eq!(lemon[k], i, "n {n} m {m}");
                assert_eq!(mix.arc_at(i), k, "n {n} m {m}");
            }
        }
    }
}
