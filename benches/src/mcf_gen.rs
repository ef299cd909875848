//! The four min-cost-flow families of `../shared/anchors/gen/mcf_gen.py`, ported to Rust: the same
//! shapes, sizes and value ranges, drawn from a seeded ChaCha stream (not numpy's, so the instances
//! are alike but not identical to the Python ones).

use allot_solvers::mcf::{Network, NodeId};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An instance family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Applicants -> (fair, category) -> fair -> sink, rank² costs, "unassigned" arcs.
    Fair,
    /// Dense transportation problem, 500 x 500 at scale 1.
    Transport,
    /// Sparse random network on a two-way backbone (NETGEN-like), 10,000 nodes at scale 1.
    Netgen,
    /// 100 x 100 grid, supplies on the left column, demands on the right.
    Grid,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Fair,
        Family::Transport,
        Family::Netgen,
        Family::Grid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Fair => "fair",
            Family::Transport => "transport",
            Family::Netgen => "netgen",
            Family::Grid => "grid",
        }
    }
}

/// Generates an instance of `family`; `scale` multiplies the sizes as in `mcf_gen.py`.
pub fn generate(family: Family, seed: u64, scale: f64) -> Network {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match family {
        Family::Fair => fair(&mut rng, scale),
        Family::Transport => transport(&mut rng, scale),
        Family::Netgen => netgen(&mut rng, scale),
        Family::Grid => grid(&mut rng, scale),
    }
}

fn node(i: usize) -> NodeId {
    NodeId(i as u32)
}

/// A network with `n` nodes; the families stay far below the node limit.
fn with_nodes(n: usize, arcs: usize) -> Network {
    let mut net = Network::with_capacity(n, arcs);
    net.add_nodes(n)
        .expect("generated sizes are within the node limit");
    net
}

/// numpy's `pareto(a)`: a Lomax sample, `U^(-1/a) - 1`.
fn pareto(rng: &mut ChaCha8Rng, a: f64) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    u.powf(-1.0 / a) - 1.0
}

/// `count` distinct indices drawn with probabilities `cumulative` (a running sum ending at 1),
/// as numpy's `choice(replace=False, p=...)`: repeated draws, skipping repeats.
fn weighted_distinct(rng: &mut ChaCha8Rng, cumulative: &[f64], count: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count.min(cumulative.len()) {
        let x: f64 = rng.random();
        let i = cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len() - 1);
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn fair(rng: &mut ChaCha8Rng, scale: f64) -> Network {
    let applicants = (20000.0 * scale) as usize;
    let fairs = ((150.0 * scale) as usize).max(1);
    let (categories, max_choices) = (4usize, 10usize);
    let stalls = 15000.0 * scale;
    // Nodes: source, applicants, fairs x categories programs, fairs, sink.
    let source = 0;
    let first_applicant = 1;
    let first_program = first_applicant + applicants;
    let first_fair = first_program + fairs * categories;
    let sink = first_fair + fairs;
    let mut net = with_nodes(sink + 1, applicants * 8 + fairs * (categories + 1));

    let mut popularity: Vec<f64> = (0..fairs).map(|_| pareto(rng, 1.5) + 1.0).collect();
    let total: f64 = popularity.iter().sum();
    popularity.iter_mut().for_each(|p| *p /= total);
    let fair_cap: Vec<i64> = popularity
        .iter()
        .map(|p| ((p * stalls).round() as i64).max(1))
        .collect();
    let mut cumulative = popularity.clone();
    for i in 1..fairs {
        cumulative[i] += cumulative[i - 1];
    }
    let category: Vec<usize> = (0..applicants)
        .map(|_| rng.random_range(0..categories))
        .collect();
    for (i, &cat) in category.iter().enumerate() {
        let a = first_applicant + i;
        net.add_arc(node(source), node(a), 1, 0);
        let k = rng.random_range(1..=max_choices);
        for (rank, f) in weighted_distinct(rng, &cumulative, k.min(fairs))
            .into_iter()
            .enumerate()
        {
            let program = first_program + f * categories + cat;
            net.add_arc(node(a), node(program), 1, ((rank + 1) * (rank + 1)) as i64);
        }
        net.add_arc(node(a), node(sink), 1, 10000);
    }
    for (f, &cap) in fair_cap.iter().enumerate() {
        let quota = ((cap as f64 * 0.4) as i64).max(1);
        for c in 0..categories {
            net.add_arc(
                node(first_program + f * categories + c),
                node(first_fair + f),
                quota,
                0,
            );
        }
        net.add_arc(node(first_fair + f), node(sink), cap, 0);
    }
    let _ = net.set_supply(node(source), applicants as i64);
    let _ = net.set_supply(node(sink), -(applicants as i64));
    net
}

fn transport(rng: &mut ChaCha8Rng, scale: f64) -> Network {
    let sources = (500.0 * scale) as usize;
    let sinks = (500.0 * scale) as usize;
    let mut net = with_nodes(sources + sinks, sources * sinks);
    let supply: Vec<i64> = (0..sources).map(|_| rng.random_range(50..150)).collect();
    let total: i64 = supply.iter().sum();
    if sinks == 0 {
        return net;
    }
    let (share, rest) = (total / sinks as i64, total % sinks as i64);
    for (i, &b) in supply.iter().enumerate() {
        let _ = net.set_supply(node(i), b);
    }
    for j in 0..sinks {
        let _ = net.set_supply(node(sources + j), -share - i64::from((j as i64) < rest));
    }
    for i in 0..sources {
        for j in 0..sinks {
            net.add_arc(
                node(i),
                node(sources + j),
                total,
                rng.random_range(1..10000),
            );
        }
    }
    net
}

fn netgen(rng: &mut ChaCha8Rng, scale: f64) -> Network {
    let n = (10000.0 * scale) as usize;
    let m = (100000.0 * scale) as usize;
    let terminals = (n / 100).max(2);
    let total = 1000 * terminals as i64;
    let mut net = with_nodes(n, m + n);
    if n < 2 * terminals {
        return net;
    }
    // A random Hamiltonian path both ways guarantees that every source reaches every sink.
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        perm.swap(i, rng.random_range(0..=i));
    }
    for w in perm.windows(2) {
        net.add_arc(node(w[0]), node(w[1]), total, 10000);
    }
    for _ in 0..m.saturating_sub(n - 1) {
        let (u, v) = (rng.random_range(0..n), rng.random_range(0..n));
        if u != v {
            let cap = rng.random_range(1..1000);
            net.add_arc(node(u), node(v), cap, rng.random_range(1..1000));
        }
    }
    for w in perm.windows(2) {
        net.add_arc(node(w[1]), node(w[0]), total, 10000);
    }
    // Sources and sinks: distinct random nodes.
    let mut pick: Vec<usize> = (0..n).collect();
    for i in 0..2 * terminals {
        pick.swap(i, rng.random_range(i..n));
    }
    let t = terminals as i64;
    for k in 0..terminals {
        let amount = total / t + i64::from((k as i64) < total % t);
        let _ = net.set_supply(node(pick[k]), amount);
        let _ = net.set_supply(node(pick[terminals + k]), -amount);
    }
    net
}

fn grid(rng: &mut ChaCha8Rng, scale: f64) -> Network {
    let (w, h) = ((100.0 * scale) as usize, (100.0 * scale) as usize);
    let idx = |x: usize, y: usize| node(y * w + x);
    let mut net = with_nodes(w * h, 4 * w * h);
    let mut pairs = Vec::with_capacity(4 * w * h);
    for y in 0..h {
        for x in 0..w {
            if x + 1 < w {
                pairs.push((idx(x, y), idx(x + 1, y)));
                pairs.push((idx(x + 1, y), idx(x, y)));
            }
            if y + 1 < h {
                pairs.push((idx(x, y), idx(x, y + 1)));
                pairs.push((idx(x, y + 1), idx(x, y)));
            }
        }
    }
    let caps: Vec<i64> = pairs.iter().map(|_| rng.random_range(50..500)).collect();
    for (&(u, v), &cap) in pairs.iter().zip(&caps) {
        net.add_arc(u, v, cap, rng.random_range(1..1000));
    }
    if w > 1 {
        for y in 0..h {
            let _ = net.set_supply(idx(0, y), 100);
            let _ = net.set_supply(idx(w - 1, y), -100);
        }
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes as `mcf_gen.py` states them, and every instance solvable.
    #[test]
    fn shapes_match_the_python_generator() {
        let sizes: Vec<(usize, usize)> = Family::ALL
            .iter()
            .map(|&f| {
                let net = generate(f, 1, 0.2);
                let solution = allot_solvers::mcf::solve(&net);
                assert!(solution.is_ok(), "{}: {solution:?}", f.name());
                (net.node_count(), net.arc_count())
            })
            .collect();
        // fair: 4000 applicants, 30 fairs; transport: 100 x 100; grid: 20 x 20.
        assert_eq!(sizes[0].0, 1 + 4000 + 30 * 4 + 30 + 1);
        assert_eq!(sizes[1], (200, 100 * 100));
        assert_eq!(sizes[2].0, 2000);
        assert!(sizes[2].1 > 20000 && sizes[2].1 <= 20000 + 1999);
        assert_eq!(sizes[3], (400, 4 * 20 * 19));
    }
}
