//! The fair mechanisms on the matching core and the min-cost flow solver.

use std::collections::HashMap;

use allot_solvers::matching::{
    Market, PreferencesBuilder, Seed, SerialOrder, deferred_acceptance, priority_key,
    serial_dictatorship, single_tie_break,
};
use allot_solvers::mcf::{self, ArcId, Network, NodeId};

use super::{FairInput, FairSolved, Mechanism, OPEN, Params, Precedence};
use crate::allocation::{Error, Result, timed};

/// The pools market of `input` with these lottery numbers (one per applicant).
pub(super) fn market(
    input: &FairInput,
    precedence: Precedence,
    lottery: &[u64],
) -> Result<(Market, Vec<u32>)> {
    let n = input.applicants.len();
    let entries: usize = input.applicants.iter().map(|a| 2 * a.choices.len()).sum();
    let mut prefs = PreferencesBuilder::with_capacity(input.pools.len(), n, entries);
    let mut entry_rank = Vec::with_capacity(entries);
    let mut keys = Vec::with_capacity(entries);
    // Pools by (fair, category id), so that expanding a list compares no strings.
    let mut category_id: HashMap<&str, u32> = HashMap::new();
    for pool in &input.pools {
        let next = category_id.len() as u32;
        category_id.entry(pool.category.as_str()).or_insert(next);
    }
    let width = category_id.len();
    let mut pool_at = vec![u32::MAX; input.fairs.len() * width];
    for (p, pool) in input.pools.iter().enumerate() {
        if pool.stalls > 0 {
            pool_at[pool.fair as usize * width + category_id[pool.category.as_str()] as usize] =
                p as u32;
        }
    }
    let open = category_id.get(OPEN).copied();
    let mut list = Vec::new();
    for (a, &lottery) in input.applicants.iter().zip(lottery) {
        let key = priority_key(u32::from(a.tier), lottery).map_err(market_error)?;
        let own = category_id.get(a.category.as_str()).copied();
        let pair = match precedence {
            Precedence::OwnFirst => [own, open],
            Precedence::OpenFirst => [open, own],
        };
        list.clear();
        for (k, &fair) in a.choices.iter().enumerate() {
            for category in pair.into_iter().flatten() {
                let pool = pool_at[fair as usize * width + category as usize];
                if pool != u32::MAX {
                    list.push(pool);
                    entry_rank.push(k as u32 + 1);
                    keys.push(key);
                }
            }
        }
        prefs.push(list.iter().copied()).map_err(market_error)?;
    }
    let prefs = prefs.build().map_err(market_error)?;
    let capacities = input.pools.iter().map(|p| p.stalls).collect();
    let market = Market::new(prefs, capacities, keys).map_err(market_error)?;
    Ok((market, entry_rank))
}

fn market_error(e: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("the fair input does not form a valid market: {e}"))
}

/// The lottery numbers: the input's, or drawn from `seed` by single tie-breaking over the
/// applicants' ids (see `allot_solvers::matching::single_tie_break`).
pub(super) fn lottery(input: &FairInput, seed: Option<&Seed>) -> Result<Vec<u64>> {
    match seed {
        Some(seed) => {
            let ids: Vec<&str> = input.applicants.iter().map(|a| a.id.as_str()).collect();
            single_tie_break(seed, &ids).map_err(|e| Error::Unsupported(e.to_string()))
        }
        None => input
            .applicants
            .iter()
            .map(|a| a.lottery)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| {
                Error::Request(
                    "the applicants have no lottery numbers and no seed was drawn".into(),
                )
            }),
    }
}

pub(super) fn solve(input: &FairInput, params: &Params, seed: Option<&Seed>) -> Result<FairSolved> {
    let lottery = lottery(input, seed)?;
    let (market, entry_rank) = market(input, params.precedence, &lottery)?;
    let n = market.num_students();
    let (position, cutoffs, solve_seconds) = match params.mechanism {
        Mechanism::Da => {
            let (outcome, seconds) = timed(|| deferred_acceptance(&market));
            let position = (0..n as u32)
                .map(|i| outcome.matching().position_of(i))
                .collect();
            (position, outcome.cutoffs().to_vec(), seconds)
        }
        Mechanism::Rsd => {
            let keys: Vec<u64> = input
                .applicants
                .iter()
                .zip(&lottery)
                .map(|(a, &l)| priority_key(u32::from(a.tier), l))
                .collect::<Result<_, _>>()
                .map_err(market_error)?;
            let order = SerialOrder::by_keys(&keys).map_err(market_error)?;
            let (outcome, seconds) = timed(|| serial_dictatorship(&market, &order));
            let outcome = outcome.map_err(market_error)?;
            let position = (0..n as u32)
                .map(|i| outcome.matching().position_of(i))
                .collect();
            // The cutoff is the turn of the applicant who took the last stall: its key.
            let turns = order.as_slice();
            let cutoffs = outcome
                .cutoffs()
                .iter()
                .map(|c| c.map(|turn| keys[turns[turn as usize] as usize]))
                .collect();
            (position, cutoffs, seconds)
        }
        Mechanism::Welfare => {
            let net = welfare_network(input, &market, &entry_rank)?;
            let (solution, seconds) = timed(|| mcf::solve(&net.network));
            let solution = solution.map_err(|e| {
                Error::Unsupported(format!("the welfare flow could not be solved: {e}"))
            })?;
            let position = net.positions(&market, &solution.flow);
            let cutoffs = worst_full(&market, &position);
            (position, cutoffs, seconds)
        }
    };
    Ok(FairSolved {
        mechanism: params.mechanism,
        market,
        entry_rank,
        lottery,
        position,
        cutoffs,
        solve_seconds,
    })
}

/// Per pool, the largest key held when the pool is full.
pub(super) fn worst_full(market: &Market, position: &[Option<u32>]) -> Vec<Option<u64>> {
    let m = market.num_schools();
    let mut load = vec![0u32; m];
    let mut worst = vec![0u64; m];
    for (i, p) in position.iter().enumerate() {
        if let Some(p) = *p {
            let pool = market.list(i as u32)[p as usize] as usize;
            load[pool] += 1;
            worst[pool] = worst[pool].max(market.keys_of(i as u32)[p as usize]);
        }
    }
    (0..m)
        .map(|s| {
            let cap = market.capacity(s as u32);
            (cap > 0 && load[s] == cap).then_some(worst[s])
        })
        .collect()
}

/// The welfare flow of a fair market, with the arcs that carry its answer.
///
/// Nodes: the sink, one per applicant (in priority order: tier, then lottery), one per pool.
/// Supplies: 1 at each applicant, minus the number of applicants at the sink (the unit a source
/// → applicant arc of capacity 1 would carry, without the source: about 8% fewer arcs and a third
/// less time for the network simplex here, none for LEMON's). Arcs, applicant by applicant in
/// that order: applicant → sink (capacity 1, cost 3M: not placed), applicant → each pool on its
/// list (1, rank² + tier·M); then pool → sink (its stalls, 0).
/// Against leaving an applicant out (3M), placing it saves `(3 - tier)·M - rank²`,
/// and M = 1 + the sum over applicants of (number of fairs listed)² exceeds any sum of rank², so a
/// minimum-cost flow places the most tier-0 applicants, then tier 1, then tier 2, then minimises
/// the sum of rank² (all costs are non-negative, which the solver's crash basis likes).
#[derive(Debug, Clone)]
pub struct WelfareNetwork {
    pub network: Network,
    /// The arc of each market entry (applicant → pool).
    pub entry_arc: Vec<ArcId>,
}

impl WelfareNetwork {
    /// Per applicant, the position of the pool its unit flows through.
    pub fn positions(&self, market: &Market, flow: &[i64]) -> Vec<Option<u32>> {
        let offsets = market.preferences().offsets();
        (0..market.num_students())
            .map(|i| {
                (offsets[i]..offsets[i + 1])
                    .position(|e| flow[self.entry_arc[e as usize].index()] > 0)
                    .map(|p| p as u32)
            })
            .collect()
    }
}

/// Builds the welfare flow (see [`WelfareNetwork`]); fails when its costs could overflow.
pub fn welfare_network(
    input: &FairInput,
    market: &Market,
    entry_rank: &[u32],
) -> Result<WelfareNetwork> {
    let n = market.num_students();
    let pools = market.num_schools();
    let too_large = || Error::Unsupported("the input is too large for the welfare flow".into());
    let mut m: i64 = 1;
    for a in &input.applicants {
        let k = i64::try_from(a.choices.len()).map_err(|_| too_large())?;
        m = k
            .checked_mul(k)
            .and_then(|k2| m.checked_add(k2))
            .ok_or_else(too_large)?;
    }
    let unplaced = m.checked_mul(3).ok_or_else(too_large)?;
    // The solver's own overflow rule: 4 (nodes + 1) (max cost + 1) must fit in i64.
    let nodes = 1 + n + pools;
    i64::try_from(nodes + 1)
        .ok()
        .and_then(|v| v.checked_mul(4))
        .and_then(|v| v.checked_mul(unplaced + 1))
        .ok_or_else(too_large)?;
    let entries = market.preferences().num_entries();
    let mut network = Network::with_capacity(nodes, n + entries + pools);
    let sink = network.add_node();
    let first = network.add_nodes(n + pools).map_err(|_| too_large())?;
    let node = |k: usize| NodeId(first.0 + k as u32);
    network
        .set_supply(sink, -(n as i64))
        .map_err(|_| too_large())?;
    let mut by_priority: Vec<u32> = (0..n as u32).collect();
    by_priority.sort_unstable_by_key(|&i| market.keys_of(i).first().copied().unwrap_or(u64::MAX));
    let offsets = market.preferences().offsets();
    let schools = market.preferences().schools();
    let mut entry_arc = vec![ArcId(0); entries];
    for (k, &i) in by_priority.iter().enumerate() {
        let a = node(k);
        network.set_supply(a, 1).map_err(|_| too_large())?;
        network.add_arc(a, sink, 1, unplaced);
        let tier = i64::from(input.applicants[i as usize].tier);
        for e in offsets[i as usize]..offsets[i as usize + 1] {
            let rank = i64::from(entry_rank[e as usize]);
            let cost = rank * rank + tier * m;
            entry_arc[e as usize] =
                network.add_arc(a, node(n + schools[e as usize] as usize), 1, cost);
        }
    }
    for (p, &cap) in market.capacities().iter().enumerate() {
        network.add_arc(node(n + p), sink, i64::from(cap), 0);
    }
    Ok(WelfareNetwork { network, entry_arc })
}
