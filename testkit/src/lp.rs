//! Linear and integer programming models on `good_lp`: the tests' independent oracle.
//!
//! - [`min_cost_flow`]: the min-cost flow of a [`Network`] as a plain LP. Much slower than
//!   `allot_solvers::mcf`, and independent of it: the oracle for the network simplex.
//! - [`Allocation`]: agents choose among options with costs and capacities, plus linear side
//!   constraints over groups of agent-option pairs ("at most 3 of these", "at least 2 of those"),
//!   which a flow cannot express. Solved as a 0-1 integer program.
//!
//! The backend is the pure-Rust `microlp` (no system libraries); with the `highs` feature of this
//! crate it is HiGHS. Both work in `f64`, so the models reject numbers too large to be exact there.

use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution as _, SolverModel, Variable, variable,
};

use allot_solvers::mcf::{INFINITE_CAPACITY, Network};

/// Largest absolute cost, capacity, bound or supply the LP models accept: sums of a few thousand
/// of them stay exact in `f64` (53-bit mantissa).
pub const MAX_LP_VALUE: i64 = 1 << 40;

/// Why an LP model has no solution or was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LpError {
    #[error("infeasible")]
    Infeasible,
    #[error("unbounded")]
    Unbounded,
    #[error("the LP solver failed: {0}")]
    Solver(String),
    #[error("{what} {value} is beyond the LP limit of +-{limit}", limit = MAX_LP_VALUE)]
    ValueTooLarge { what: &'static str, value: i64 },
    #[error("pair {pair}: agent {agent} is out of range (there are {agents} agents)")]
    UnknownAgent {
        pair: usize,
        agent: usize,
        agents: usize,
    },
    #[error("pair {pair}: option {option} is out of range (there are {options} options)")]
    UnknownOption {
        pair: usize,
        option: usize,
        options: usize,
    },
    #[error("agent {agent} is out of range (there are {agents} agents)")]
    NoSuchAgent { agent: usize, agents: usize },
    #[error("group {group}: pair {pair} is out of range (there are {pairs} pairs)")]
    UnknownPair {
        group: usize,
        pair: usize,
        pairs: usize,
    },
    #[error("option {option}: capacity {capacity} is negative")]
    NegativeCapacity { option: usize, capacity: i64 },
    #[error("group {group}: at least {min} is more than at most {max}")]
    EmptyRange { group: usize, min: i64, max: i64 },
    #[error("the optimal value {0} does not fit in i64")]
    CostOverflow(i128),
    #[error("the network is not valid: {0}")]
    Network(#[from] allot_solvers::mcf::McfError),
}

impl From<ResolutionError> for LpError {
    fn from(e: ResolutionError) -> Self {
        match e {
            ResolutionError::Infeasible => LpError::Infeasible,
            ResolutionError::Unbounded => LpError::Unbounded,
            other => LpError::Solver(other.to_string()),
        }
    }
}

fn check_value(what: &'static str, value: i64) -> Result<(), LpError> {
    if value.unsigned_abs() > MAX_LP_VALUE as u64 {
        return Err(LpError::ValueTooLarge { what, value });
    }
    Ok(())
}

#[cfg(feature = "highs")]
use good_lp::highs as backend;
#[cfg(not(feature = "highs"))]
use good_lp::microlp as backend;

/// An optimal LP flow.
#[derive(Debug, Clone, PartialEq)]
pub struct LpFlow {
    /// Optimal value, rounded to the nearest integer (integral data has an integral optimum).
    pub cost: i64,
    /// Flow per arc as the LP solver returned it (may be fractional at an alternative optimum).
    pub flow: Vec<f64>,
}

/// Solves the min-cost flow of `network` as an LP: `min sum(cost * x)` subject to
/// `out(v) - in(v) = supply(v)` and `lower <= x <= upper`.
pub fn min_cost_flow(network: &Network) -> Result<LpFlow, LpError> {
    let n = network.node_count();
    for (k, a) in network.arcs().enumerate() {
        check_value("cost", a.cost)?;
        check_value("lower bound", a.lower)?;
        if a.upper != INFINITE_CAPACITY {
            check_value("capacity", a.upper)?;
        }
        if a.from.index() >= n || a.to.index() >= n {
            let node = if a.from.index() >= n { a.from } else { a.to };
            let arc = allot_solvers::mcf::ArcId(k as u32);
            return Err(allot_solvers::mcf::McfError::NodeOutOfRange {
                arc,
                node,
                nodes: n,
            }
            .into());
        }
        if a.lower > a.upper {
            return Err(LpError::Infeasible);
        }
    }
    for &b in network.supplies() {
        check_value("supply", b)?;
    }
    let mut vars = ProblemVariables::new();
    let mut balance: Vec<Expression> = vec![Expression::default(); n];
    let mut touched = vec![false; n];
    let mut objective = Expression::default();
    let mut xs: Vec<Variable> = Vec::with_capacity(network.arc_count());
    for a in network.arcs() {
        let def = variable().min(a.lower as f64);
        let def = if a.upper == INFINITE_CAPACITY {
            def
        } else {
            def.max(a.upper as f64)
        };
        let x = vars.add(def);
        xs.push(x);
        objective += (a.cost as f64) * x;
        if a.from != a.to {
            balance[a.from.index()] += x;
            balance[a.to.index()] -= x;
            touched[a.from.index()] = true;
            touched[a.to.index()] = true;
        }
    }
    let mut model = vars.minimise(objective.clone()).using(backend);
    for (v, expr) in balance.into_iter().enumerate() {
        let b = network.supplies()[v] as f64;
        if !touched[v] {
            // A node with no arcs: no row to add, but its supply cannot move.
            if b != 0.0 {
                return Err(LpError::Infeasible);
            }
            continue;
        }
        model.add_constraint(expr.eq(b));
    }
    let solution = model.solve()?;
    let flow: Vec<f64> = xs.iter().map(|&x| solution.value(x)).collect();
    let value = solution.eval(&objective);
    Ok(LpFlow {
        cost: round_to_i64(value)?,
        flow,
    })
}

fn round_to_i64(value: f64) -> Result<i64, LpError> {
    let r = value.round();
    if r.abs() >= 2f64.powi(62) || !r.is_finite() {
        return Err(LpError::Solver(format!("objective {value} out of range")));
    }
    Ok(r as i64)
}

/// A pair `(agent, option)` allowed in an [`Allocation`], numbered from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairId(pub usize);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    agent: usize,
    option: usize,
    cost: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    pairs: Vec<PairId>,
    min: Option<i64>,
    max: Option<i64>,
}

/// Assign each agent at most one option, minimising total cost, subject to option capacities and
/// to side constraints "between `min` and `max` of these pairs are chosen".
///
/// Each agent must be assigned unless it has an unassigned cost (then leaving it out costs that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    agents: usize,
    capacity: Vec<i64>,
    pairs: Vec<Pair>,
    unassigned_cost: Vec<Option<i64>>,
    groups: Vec<Group>,
}

/// An optimal assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The option of each agent, `None` if unassigned.
    pub option: Vec<Option<usize>>,
    /// The pair chosen for each agent.
    pub pair: Vec<Option<PairId>>,
    /// Total cost, including the cost of agents left unassigned.
    pub cost: i64,
}

impl Allocation {
    /// `agents` agents and one option per entry of `capacity` (how many agents it can take).
    pub fn new(agents: usize, capacity: Vec<i64>) -> Self {
        Allocation {
            agents,
            capacity,
            pairs: Vec::new(),
            unassigned_cost: vec![None; agents],
            groups: Vec::new(),
        }
    }

    /// Allows `agent` to take `option` at `cost`. Checked when solving.
    pub fn allow(&mut self, agent: usize, option: usize, cost: i64) -> PairId {
        self.pairs.push(Pair {
            agent,
            option,
            cost,
        });
        PairId(self.pairs.len() - 1)
    }

    /// Lets `agent` stay unassigned at `cost` (`None`: it must be assigned, the default).
    pub fn set_unassigned_cost(&mut self, agent: usize, cost: Option<i64>) -> Result<(), LpError> {
        let agents = self.agents;
        *self
            .unassigned_cost
            .get_mut(agent)
            .ok_or(LpError::NoSuchAgent { agent, agents })? = cost;
        Ok(())
    }

    /// Requires that between `min` and `max` (each optional) of `pairs` are chosen.
    pub fn add_group(&mut self, pairs: Vec<PairId>, min: Option<i64>, max: Option<i64>) {
        self.groups.push(Group { pairs, min, max });
    }

    fn validate(&self) -> Result<(), LpError> {
        let options = self.capacity.len();
        for (option, &capacity) in self.capacity.iter().enumerate() {
            if capacity < 0 {
                return Err(LpError::NegativeCapacity { option, capacity });
            }
            check_value("capacity", capacity)?;
        }
        for (i, p) in self.pairs.iter().enumerate() {
            if p.agent >= self.agents {
                return Err(LpError::UnknownAgent {
                    pair: i,
                    agent: p.agent,
                    agents: self.agents,
                });
            }
            if p.option >= options {
                return Err(LpError::UnknownOption {
                    pair: i,
                    option: p.option,
                    options,
                });
            }
            check_value("cost", p.cost)?;
        }
        for c in self.unassigned_cost.iter().flatten() {
            check_value("unassigned cost", *c)?;
        }
        for (g, group) in self.groups.iter().enumerate() {
            if let Some(bad) = group.pairs.iter().find(|p| p.0 >= self.pairs.len()) {
                return Err(LpError::UnknownPair {
                    group: g,
                    pair: bad.0,
                    pairs: self.pairs.len(),
                });
            }
            if let (Some(min), Some(max)) = (group.min, group.max)
                && min > max
            {
                return Err(LpError::EmptyRange { group: g, min, max });
            }
            for bound in [group.min, group.max].into_iter().flatten() {
                check_value("group bound", bound)?;
            }
        }
        Ok(())
    }

    /// Solves the 0-1 program exactly (branch and bound).
    pub fn solve(&self) -> Result<Assignment, LpError> {
        self.validate()?;
        let mut vars = ProblemVariables::new();
        let x: Vec<Variable> = self
            .pairs
            .iter()
            .map(|_| vars.add(variable().binary()))
            .collect();
        let unassigned: Vec<Option<Variable>> = self
            .unassigned_cost
            .iter()
            .map(|c| c.map(|_| vars.add(variable().binary())))
            .collect();
        let mut objective = Expression::default();
        for (p, &xv) in self.pairs.iter().zip(&x) {
            objective += (p.cost as f64) * xv;
        }
        for (c, u) in self.unassigned_cost.iter().zip(&unassigned) {
            if let (Some(c), Some(u)) = (c, u) {
                objective += (*c as f64) * *u;
            }
        }
        let mut per_agent: Vec<Expression> = vec![Expression::default(); self.agents];
        let mut per_option: Vec<Expression> = vec![Expression::default(); self.capacity.len()];
        for (p, &xv) in self.pairs.iter().zip(&x) {
            per_agent[p.agent] += xv;
            per_option[p.option] += xv;
        }
        let mut model = vars.minimise(objective).using(backend);
        for (agent, expr) in per_agent.into_iter().enumerate() {
            let expr = match unassigned[agent] {
                Some(u) => expr + u,
                None => expr,
            };
            model.add_constraint(expr.eq(1.0));
        }
        for (option, expr) in per_option.into_iter().enumerate() {
            model.add_constraint(expr.leq(self.capacity[option] as f64));
        }
        for group in &self.groups {
            let sum: Expression = group.pairs.iter().map(|p| x[p.0]).sum();
            if let Some(min) = group.min {
                model.add_constraint(sum.clone().geq(min as f64));
            }
            if let Some(max) = group.max {
                model.add_constraint(sum.leq(max as f64));
            }
        }
        let solution = model.solve()?;
        let chosen: Vec<bool> = x.iter().map(|&v| solution.value(v) > 0.5).collect();
        self.assignment(&chosen)
    }

    /// Builds the assignment from chosen pairs and checks every constraint on it, so that a solver
    /// slip (rounding, a wrong status) is an error rather than a wrong answer.
    fn assignment(&self, chosen: &[bool]) -> Result<Assignment, LpError> {
        let slip = |what: &str| LpError::Solver(format!("solution violates {what}"));
        let mut pair = vec![None; self.agents];
        let mut load = vec![0i64; self.capacity.len()];
        let mut cost: i128 = 0;
        for (i, p) in self.pairs.iter().enumerate() {
            if chosen[i] {
                if pair[p.agent].is_some() {
                    return Err(slip("one option per agent"));
                }
                pair[p.agent] = Some(PairId(i));
                load[p.option] += 1;
                cost += i128::from(p.cost);
            }
        }
        for (agent, p) in pair.iter().enumerate() {
            if p.is_none() {
                match self.unassigned_cost[agent] {
                    Some(c) => cost += i128::from(c),
                    None => return Err(slip("an agent that must be assigned")),
                }
            }
        }
        if load.iter().zip(&self.capacity).any(|(l, c)| l > c) {
            return Err(slip("a capacity"));
        }
        for group in &self.groups {
            let k = group.pairs.iter().filter(|p| chosen[p.0]).count() as i64;
            if group.min.is_some_and(|min| k < min) || group.max.is_some_and(|max| k > max) {
                return Err(slip("a group constraint"));
            }
        }
        let option = pair
            .iter()
            .map(|p| p.map(|p: PairId| self.pairs[p.0].option))
            .collect();
        Ok(Assignment {
            option,
            pair,
            cost: i64::try_from(cost).map_err(|_| LpError::CostOverflow(cost))?,
        })
    }
}
