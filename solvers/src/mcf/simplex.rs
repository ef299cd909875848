//! Primal network simplex on flat arrays.
//!
//! The spanning-tree representation (parent, pred, thread, rev_thread, succ_num, last_succ), the
//! artificial root with one artificial arc per node, the block-search pricing, the ratio test that
//! keeps the tree strongly feasible and the tree update are ported from LEMON 1.3's
//! `NetworkSimplex` (`lemon/network_simplex.h`, Copyright (C) 2003-2013 Egervary Jeno
//! Kombinatorikus Optimalizalasi Kutatocsoport (EGRES), Boost Software License 1.0).
//!
//! What differs from LEMON, and why:
//! - Everything a cycle walk needs about a node (parent, subtree size, its tree arc, that arc's
//!   direction, flow and capacity) sits in one 32-byte [`TreeNode`], so each step of the join
//!   search, ratio test and flow update touches one cache line instead of five arrays. Non-tree
//!   arcs need no flow array at all: their flow is 0 or their capacity, by state.
//! - Potentials are kept modulo 2^64 (wrapping arithmetic; only differences are ever used), which
//!   lets a pivot shift whichever side of the tree is smaller: the re-hung subtree or the rest.
//! - Infinite capacities are a finite `big_cap` above any reachable flow, so the ratio test has no
//!   branch for them, and unboundedness is "the step exceeds the flow bound".
//! - The basis can be repaired after cost, capacity and supply changes (`repair_basis`); both the
//!   cold start and the warm re-solve go through it.
//! - The artificial cost is the smallest big-M that provably works, so potentials stay small.
//! - When costs are non-negative the start is a shortest-path tree towards the demand nodes, not
//!   the all-artificial tree (most of LEMON's pivots on these networks are degenerate ones that
//!   build such a tree arc by arc).
//! - On large networks without locality of their own, nodes are renumbered in thread order now
//!   and then, so that subtree walks read memory in order.
//! - Pricing records are 12 bytes while costs fit in `i32`.
//!
//! The validation in `super` (before any solve) guarantees that no flow, true potential difference
//! or reduced cost overflows `i64`.

pub(crate) const STATE_UPPER: i8 = -1;
pub(crate) const STATE_TREE: i8 = 0;
pub(crate) const STATE_LOWER: i8 = 1;
const DIR_DOWN: i32 = -1;
const DIR_UP: i32 = 1;
const NONE: u32 = u32::MAX;

/// Outcome of running the simplex on the augmented problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Optimal for the augmented problem; artificial arcs may still carry flow (then infeasible).
    Optimal,
    /// A cycle of negative cost and unbounded capacity was found.
    Unbounded,
}

/// A node's place in the spanning tree, with the data of the tree arc to its parent (its "pred").
#[derive(Debug, Clone, Copy)]
struct TreeNode {
    parent: u32,
    pred: u32,
    /// Number of nodes in the subtree rooted here, itself included.
    succ_num: u32,
    /// `DIR_UP` if the pred arc points from this node to its parent, `DIR_DOWN` otherwise.
    dir: i32,
    /// Flow on the pred arc.
    flow: i64,
    /// Capacity of the pred arc.
    cap: i64,
}

/// What a pivot hands to the tree update: the join, the node whose tree arc leaves, the end of
/// the entering arc that gets re-hung and the node it hangs from, and its new record.
struct Rehang {
    join: usize,
    u_out: usize,
    u_in: usize,
    v_in: usize,
    entering: TreeNode,
}

/// An original arc as the pricing scan sees it: oriented so that its reduced cost in the direction
/// it may move is `c + pi[s] - pi[t]` (an arc at its upper bound is stored reversed, with negated
/// cost). Tree arcs are stored as they are; their reduced cost is 0, so they are never picked.
trait PriceArc: Copy {
    fn new(s: u32, t: u32, c: i64) -> Self;
    fn reduced_cost(&self, pi: &[i64]) -> i64;
}

/// The usual record, 12 bytes: costs that fit in `i32` (either sign). A smaller pricing array
/// streams faster and, on mid-size networks, stays in the L2 cache.
#[derive(Debug, Clone, Copy)]
struct Narrow {
    s: u32,
    t: u32,
    c: i32,
}

/// The record for any `i64` cost, 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Wide {
    s: u32,
    t: u32,
    c: i64,
}

/// Costs up to this in absolute value (and their negations) fit a [`Narrow`] record.
const NARROW_COST: i64 = i32::MAX as i64;

impl PriceArc for Narrow {
    fn new(s: u32, t: u32, c: i64) -> Self {
        // Only built when |c| <= NARROW_COST.
        Narrow { s, t, c: c as i32 }
    }
    fn reduced_cost(&self, pi: &[i64]) -> i64 {
        i64::from(self.c)
            .wrapping_add(pi[self.s as usize])
            .wrapping_sub(pi[self.t as usize])
    }
}

impl PriceArc for Wide {
    fn new(s: u32, t: u32, c: i64) -> Self {
        Wide { s, t, c }
    }
    fn reduced_cost(&self, pi: &[i64]) -> i64 {
        self.c
            .wrapping_add(pi[self.s as usize])
            .wrapping_sub(pi[self.t as usize])
    }
}

/// How often to renumber the nodes in thread order (in pivots; 0: never). Worth it when the node
/// arrays outgrow the L1 cache and the caller's numbering has no locality of its own: a grid
/// numbered row by row already keeps an arc's ends close, which the pricing scan profits from and
/// a tree order would lose. Renumbering costs a pass over nodes and arcs, so not more often than
/// every `n / 2` pivots.
fn renumber_period(n: usize, source: &[u32], target: &[u32]) -> u64 {
    const MIN_NODES: usize = 4096;
    if n < MIN_NODES || source.is_empty() {
        return 0;
    }
    let spread: u64 = source
        .iter()
        .zip(target)
        .map(|(&s, &t)| u64::from(s.abs_diff(t)))
        .sum();
    let local = spread / (source.len() as u64) < (n as u64) / 16;
    if local { 0 } else { (n / 2) as u64 }
}

/// The arcs `0..source.len()` as pricing records, all at their lower bound (canonical direction).
fn oriented<P: PriceArc>(source: &[u32], target: &[u32], cost: &[i64]) -> Vec<P> {
    source
        .iter()
        .zip(target)
        .zip(cost)
        .map(|((&s, &t), &c)| P::new(s, t, c))
        .collect()
}

/// The pricing array, narrow while every cost allows it.
#[derive(Debug, Clone)]
enum Prices {
    Narrow(Vec<Narrow>),
    Wide(Vec<Wide>),
}

/// Block search over `arcs` (see `Simplex::find_entering_arc`): the position of the most negative
/// reduced cost in the first block that has one, and where the next search starts.
fn block_search<P: PriceArc>(
    arcs: &[P],
    pi: &[i64],
    start: usize,
    block: usize,
) -> Option<(usize, usize)> {
    let m = arcs.len();
    let mut min = 0i64;
    let mut best = 0usize;
    let mut start = start;
    let mut searched = 0usize;
    while searched < m {
        let end = (start + block).min(m);
        for (k, a) in arcs[start..end].iter().enumerate() {
            let rc = a.reduced_cost(pi);
            if rc < min {
                min = rc;
                best = start + k;
            }
        }
        searched += end - start;
        start = if end == m { 0 } else { end };
        if min < 0 {
            return Some((best, start));
        }
    }
    None
}

const DETACHED: TreeNode = TreeNode {
    parent: NONE,
    pred: NONE,
    succ_num: 1,
    dir: DIR_UP,
    flow: 0,
    cap: 0,
};

/// Internal problem data plus the basis. Arcs `0..m` are the original arcs in internal order (lower
/// bounds removed), arcs `m..m+n` are the artificial arcs, arc `m + v` joining node `v` and the root.
/// Nodes `0..n` are the original nodes, node `n` is the root.
#[derive(Debug, Clone)]
pub(crate) struct Simplex {
    pub(crate) n: usize,
    pub(crate) m: usize,
    pub(crate) source: Vec<u32>,
    pub(crate) target: Vec<u32>,
    pub(crate) cost: Vec<i64>,
    pub(crate) cap: Vec<i64>,
    pub(crate) state: Vec<i8>,
    /// The original arcs oriented for pricing; kept in step with `state`.
    price: Prices,
    pub(crate) supply: Vec<i64>,
    /// Potentials modulo 2^64; see [`Simplex::potentials`].
    pi: Vec<i64>,
    tree: Vec<TreeNode>,
    thread: Vec<u32>,
    rev_thread: Vec<u32>,
    last_succ: Vec<u32>,
    dirty_revs: Vec<u32>,
    /// Cost of an artificial arc from the root to a node (the big M).
    pub(crate) art_cost: i64,
    /// No feasible flow on any arc exceeds this; a ratio-test step above it means unbounded.
    pub(crate) flow_bound: i64,
    /// The internal capacity of an infinite arc (`2 * flow_bound + 1`).
    pub(crate) big_cap: i64,
    block_size: usize,
    next_arc: usize,
    /// Scratch space of `pivot`: the two sides of the cycle.
    path_src: Vec<u32>,
    path_tgt: Vec<u32>,
    /// The caller's id of each internal node (nodes are renumbered in thread order, see
    /// `renumber`); the root is not in it.
    node_of: Vec<u32>,
    /// Pivots between renumberings (0: never), and pivots since the last one.
    pub(crate) renumber_period: u64,
    since_renumber: u64,
    /// Number of pivots in the last run (for benchmarks and tests of the warm start).
    pub(crate) pivots: u64,
}

impl Simplex {
    /// A problem with `n` nodes and the given original arcs `(from, to, cost, capacity)` in
    /// internal order (about `m` of them: the length is only a capacity hint); the caller sets
    /// `supply` (for `0..n`) and the limits, then calls `cold_start`.
    pub(crate) fn new(
        n: usize,
        m: usize,
        arcs: impl Iterator<Item = (u32, u32, i64, i64)>,
    ) -> Self {
        let all_arcs = m + n;
        let all_nodes = n + 1;
        let mut source = Vec::with_capacity(all_arcs);
        let mut target = Vec::with_capacity(all_arcs);
        let mut cost = Vec::with_capacity(all_arcs);
        let mut cap = Vec::with_capacity(all_arcs);
        for (s, t, c, u) in arcs {
            source.push(s);
            target.push(t);
            cost.push(c);
            cap.push(u);
        }
        let narrow = cost.iter().all(|c| c.unsigned_abs() <= NARROW_COST as u64);
        let price = if narrow {
            Prices::Narrow(oriented(&source, &target, &cost))
        } else {
            Prices::Wide(oriented(&source, &target, &cost))
        };
        let m = source.len();
        source.resize(m + n, 0);
        target.resize(m + n, 0);
        cost.resize(m + n, 0);
        cap.resize(m + n, 0);
        let block_size = ((m as f64).sqrt() as usize).max(10);
        let renumber_period = renumber_period(n, &source[..m], &target[..m]);
        Simplex {
            n,
            m,
            source,
            target,
            cost,
            cap,
            state: vec![STATE_LOWER; m + n],
            price,
            supply: vec![0; all_nodes],
            pi: vec![0; all_nodes],
            tree: vec![DETACHED; all_nodes],
            thread: vec![0; all_nodes],
            rev_thread: vec![0; all_nodes],
            last_succ: vec![0; all_nodes],
            dirty_revs: Vec::new(),
            art_cost: 0,
            flow_bound: 0,
            big_cap: 1,
            block_size,
            next_arc: 0,
            path_src: Vec::new(),
            path_tgt: Vec::new(),
            node_of: (0..n as u32).collect(),
            renumber_period,
            since_renumber: 0,
            pivots: 0,
        }
    }

    fn root(&self) -> usize {
        self.n
    }

    /// The initial basis: every node hangs from the root by its artificial arc, original arcs at their
    /// lower bound; then, with non-negative costs, the shortest-path crash, otherwise LEMON's
    /// heuristic initial pivots.
    pub(crate) fn cold_start(&mut self) -> Outcome {
        let (n, m) = (self.n, self.m);
        let root = self.root();
        self.state[..m].fill(STATE_LOWER);
        for v in 0..n {
            self.tree[v] = TreeNode {
                parent: root as u32,
                pred: (m + v) as u32,
                ..DETACHED
            };
            self.state[m + v] = STATE_TREE;
            self.thread[v] = (v + 1) as u32;
            self.rev_thread[v + 1] = v as u32;
            self.last_succ[v] = v as u32;
        }
        self.tree[root] = TreeNode {
            succ_num: (n + 1) as u32,
            ..DETACHED
        };
        self.thread[root] = 0;
        self.rev_thread[0] = root as u32;
        self.last_succ[root] = if n == 0 { root as u32 } else { (n - 1) as u32 };
        self.next_arc = 0;
        self.pivots = 0;
        let outcome = if self.cost[..m].iter().all(|&c| c >= 0) {
            self.shortest_path_crash();
            self.repair_basis();
            Outcome::Optimal
        } else {
            self.repair_basis();
            self.initial_pivots()
        };
        if self.renumber_period > 0 {
            self.renumber();
        }
        outcome
    }

    /// A starting tree from shortest paths: every node that can reach a demand node hangs, by zero
    /// flow arcs pointing up, on its cheapest path to the nearest one (Dijkstra on the reversed
    /// arcs from all demand nodes at once; costs must be non-negative). Such a tree prices every
    /// arc at a non-negative reduced cost, which spares the simplex the long run of degenerate
    /// pivots that would otherwise build it one arc at a time. `repair_basis` then routes the
    /// supplies down the tree and cuts arcs that cannot carry them.
    fn shortest_path_crash(&mut self) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let (n, m) = (self.n, self.m);
        // Incoming arcs of each node that can carry flow.
        let mut start = vec![0u32; n + 1];
        for e in 0..m {
            if self.cap[e] > 0 {
                start[self.target[e] as usize + 1] += 1;
            }
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut incoming = vec![0u32; start[n] as usize];
        for e in 0..m {
            if self.cap[e] > 0 {
                let v = self.target[e] as usize;
                incoming[fill[v] as usize] = e as u32;
                fill[v] += 1;
            }
        }
        let mut dist = vec![i64::MAX; n];
        let mut via = vec![NONE; n];
        let mut heap = BinaryHeap::new();
        for (v, (&b, d)) in self.supply.iter().zip(&mut dist).enumerate() {
            if b < 0 {
                *d = 0;
                heap.push(Reverse((0i64, v as u32)));
            }
        }
        while let Some(Reverse((d, v))) = heap.pop() {
            let v = v as usize;
            if d > dist[v] {
                continue;
            }
            for &e in &incoming[start[v] as usize..start[v + 1] as usize] {
                let u = self.source[e as usize] as usize;
                let du = d + self.cost[e as usize];
                if du < dist[u] {
                    dist[u] = du;
                    via[u] = e;
                    heap.push(Reverse((du, u as u32)));
                }
            }
        }
        // A source hangs on its path only if its whole supply fits along it (after the sources
        // before it): a path that would be cut part-way leaves a fragment hanging from the root
        // with potentials far from the rest, which costs more pivots than it saves.
        let mut used = vec![0i64; n];
        for u in 0..n {
            let b = self.supply[u];
            if b <= 0 || via[u] == NONE {
                continue;
            }
            let mut x = u;
            let mut fits = true;
            while via[x] != NONE {
                let e = via[x] as usize;
                if self.cap[e] - used[x] <= b {
                    fits = false;
                    break;
                }
                x = self.target[e] as usize;
            }
            if fits {
                let mut x = u;
                while via[x] != NONE {
                    used[x] += b;
                    x = self.target[via[x] as usize] as usize;
                }
            } else {
                via[u] = NONE;
            }
        }
        for (u, &e) in via.iter().enumerate() {
            if e != NONE {
                let e = e as usize;
                self.state[m + u] = STATE_LOWER;
                self.state[e] = STATE_TREE;
                self.tree[u] = TreeNode {
                    parent: self.target[e],
                    pred: e as u32,
                    succ_num: 1,
                    dir: DIR_UP,
                    flow: 0,
                    cap: self.cap[e],
                };
            }
        }
        self.rebuild_thread();
    }

    /// Makes the current basis primal feasible and strongly feasible again after costs, capacities or
    /// supplies changed: non-tree arcs are put at their bounds, tree flows are recomputed bottom-up,
    /// and a tree arc whose flow would leave its bounds (or break strong feasibility) is cut: it
    /// becomes a non-tree arc at the nearest bound and its subtree hangs from the root through the
    /// node's artificial arc, which carries the rest. Potentials are then recomputed from the tree.
    pub(crate) fn repair_basis(&mut self) {
        let (n, m) = (self.n, self.m);
        let root = self.root();
        let mut excess: Vec<i64> = self.supply[..n].to_vec();
        excess.push(0);
        for e in 0..m {
            let f = match self.state[e] {
                STATE_TREE => continue,
                STATE_UPPER if self.cap[e] < self.big_cap => self.cap[e],
                STATE_UPPER => {
                    // Its capacity became infinite: an arc cannot sit at an infinite bound.
                    self.state[e] = STATE_LOWER;
                    self.orient(e);
                    0
                }
                _ => 0,
            };
            if f != 0 {
                excess[self.source[e] as usize] -= f;
                excess[self.target[e] as usize] += f;
            }
        }
        for e in m..m + n {
            if self.state[e] != STATE_TREE {
                self.state[e] = STATE_LOWER;
            }
        }
        // Children come after their parent in thread order, so walking it backwards settles every
        // subtree before its parent.
        let mut cut = false;
        let mut u = self.rev_thread[root] as usize;
        while u != root {
            let node = self.tree[u];
            let e = node.pred as usize;
            let r = excess[u];
            let p = node.parent as usize;
            if e >= m {
                self.set_artificial(u, r);
            } else {
                let up = node.dir == DIR_UP;
                let f = if up { r } else { -r };
                let cap = self.cap[e];
                let ok = if up {
                    0 <= f && f < cap
                } else {
                    0 < f && f <= cap
                };
                if ok {
                    self.tree[u].flow = f;
                    self.tree[u].cap = cap;
                    excess[p] += r;
                } else {
                    // Cut: the arc leaves the tree at the bound nearest to the flow it would need.
                    let at = if f >= cap && cap > 0 { cap } else { 0 };
                    self.state[e] = if at == 0 { STATE_LOWER } else { STATE_UPPER };
                    self.orient(e);
                    let passed = if up { at } else { -at };
                    excess[p] += passed;
                    self.tree[u].parent = root as u32;
                    self.tree[u].pred = (m + u) as u32;
                    self.state[m + u] = STATE_TREE;
                    self.set_artificial(u, r - passed);
                    cut = true;
                }
            }
            u = self.rev_thread[u] as usize;
        }
        if cut {
            self.rebuild_thread();
        }
        self.recompute_potentials();
    }

    /// Changes the cost of original arc `e` (internal position); call `reprice` before running.
    pub(crate) fn set_cost(&mut self, e: usize, cost: i64) {
        self.cost[e] = cost;
        self.orient(e);
    }

    /// After cost changes only: sets the big M and recomputes the potentials. The flows and the
    /// tree are untouched, so the basis stays feasible.
    pub(crate) fn reprice(&mut self, art_cost: i64) {
        if art_cost != self.art_cost {
            self.art_cost = art_cost;
            for (v, node) in self.tree[..self.n].iter().enumerate() {
                if node.pred as usize >= self.m && node.dir == DIR_DOWN {
                    self.cost[self.m + v] = art_cost;
                }
            }
        }
        self.recompute_potentials();
    }

    /// Sets the cost and capacity of original arc `e` (internal position), keeping its state.
    pub(crate) fn set_arc(&mut self, e: usize, cost: i64, cap: i64) {
        self.cost[e] = cost;
        self.cap[e] = cap;
        self.orient(e);
    }

    /// Stores arc `e` in `price` oriented for its current state, widening the array first if
    /// the cost does not fit a narrow record.
    fn orient(&mut self, e: usize) {
        let (s, t, c) = (self.source[e], self.target[e], self.cost[e]);
        let (s, t, c) = if self.state[e] == STATE_UPPER {
            (t, s, -c)
        } else {
            (s, t, c)
        };
        if c.unsigned_abs() > NARROW_COST as u64
            && let Prices::Narrow(narrow) = &self.price
        {
            let wide = narrow.iter().map(|a| Wide::new(a.s, a.t, i64::from(a.c)));
            self.price = Prices::Wide(wide.collect());
        }
        match &mut self.price {
            Prices::Narrow(arcs) => arcs[e] = Narrow::new(s, t, c),
            Prices::Wide(arcs) => arcs[e] = Wide::new(s, t, c),
        }
    }

    /// Points node `u`'s artificial arc (its pred) so that it carries `r` units of the subtree's
    /// excess: towards the root at cost 0 for a surplus, from the root at the big M for a deficit.
    fn set_artificial(&mut self, u: usize, r: i64) {
        let e = self.m + u;
        let root = self.root() as u32;
        let node = &mut self.tree[u];
        node.cap = self.big_cap;
        if r >= 0 {
            node.dir = DIR_UP;
            node.flow = r;
            self.source[e] = u as u32;
            self.target[e] = root;
            self.cost[e] = 0;
        } else {
            node.dir = DIR_DOWN;
            node.flow = -r;
            self.source[e] = root;
            self.target[e] = u as u32;
            self.cost[e] = self.art_cost;
        }
        self.cap[e] = self.big_cap;
    }

    /// Rebuilds thread, rev_thread, succ_num and last_succ from the parents by a depth-first walk.
    fn rebuild_thread(&mut self) {
        let all = self.n + 1;
        let root = self.root();
        let mut start = vec![0u32; all + 1];
        for (v, node) in self.tree.iter().enumerate() {
            if v != root {
                start[node.parent as usize + 1] += 1;
            }
        }
        for i in 0..all {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut children = vec![0u32; all.saturating_sub(1)];
        for (v, node) in self.tree.iter().enumerate() {
            if v != root {
                let p = node.parent as usize;
                children[fill[p] as usize] = v as u32;
                fill[p] += 1;
            }
        }
        let mut order = Vec::with_capacity(all);
        let mut stack = vec![root as u32];
        while let Some(v) = stack.pop() {
            order.push(v);
            let v = v as usize;
            stack.extend(
                children[start[v] as usize..start[v + 1] as usize]
                    .iter()
                    .rev(),
            );
        }
        for i in 0..all {
            let v = order[i] as usize;
            let next = order[(i + 1) % all];
            self.thread[v] = next;
            self.rev_thread[next as usize] = v as u32;
        }
        for node in &mut self.tree {
            node.succ_num = 1;
        }
        for &v in order.iter().rev() {
            let v = v as usize;
            if v != root {
                let p = self.tree[v].parent as usize;
                self.tree[p].succ_num += self.tree[v].succ_num;
            }
        }
        // In preorder a subtree is a contiguous run starting at its root.
        for (i, &v) in order.iter().enumerate() {
            let v = v as usize;
            self.last_succ[v] = order[i + self.tree[v].succ_num as usize - 1];
        }
    }

    /// Potentials such that every tree arc has reduced cost `cost + pi[source] - pi[target] = 0`,
    /// with the root at 0.
    fn recompute_potentials(&mut self) {
        let root = self.root();
        self.pi[root] = 0;
        let mut u = self.thread[root] as usize;
        while u != root {
            let node = self.tree[u];
            let c = self.cost[node.pred as usize];
            let p = self.pi[node.parent as usize];
            self.pi[u] = if node.dir == DIR_UP {
                p.wrapping_sub(c)
            } else {
                p.wrapping_add(c)
            };
            u = self.thread[u] as usize;
        }
    }

    /// True potentials of the original nodes (relative to the root, which makes them exact).
    pub(crate) fn potentials(&self) -> Vec<i64> {
        let base = self.pi[self.root()];
        let mut out = vec![0; self.n];
        for (&v, &p) in self.node_of.iter().zip(&self.pi) {
            out[v as usize] = p.wrapping_sub(base);
        }
        out
    }

    /// Sets the supplies, given by the caller's node ids.
    pub(crate) fn set_supplies(&mut self, supply: &[i64]) {
        for (b, &v) in self.supply.iter_mut().zip(&self.node_of) {
            *b = supply[v as usize];
        }
    }

    /// Flow on each original arc (internal order).
    pub(crate) fn flows(&self) -> Vec<i64> {
        let m = self.m;
        let mut flow: Vec<i64> = self.state[..m]
            .iter()
            .zip(&self.cap[..m])
            .map(|(&st, &cap)| if st == STATE_UPPER { cap } else { 0 })
            .collect();
        for node in &self.tree[..self.n] {
            if (node.pred as usize) < m {
                flow[node.pred as usize] = node.flow;
            }
        }
        flow
    }

    /// Total flow on artificial arcs from the root, and one node (caller's id) whose demand is
    /// short (if any).
    pub(crate) fn artificial_flow(&self) -> (i64, Option<usize>) {
        let mut total = 0i64;
        let mut short = None;
        for (v, node) in self.tree[..self.n].iter().enumerate() {
            if node.pred as usize >= self.m && node.dir == DIR_DOWN && node.flow > 0 {
                total += node.flow;
                short.get_or_insert(self.node_of[v] as usize);
            }
        }
        (total, short)
    }

    /// LEMON's heuristic initial pivots: bring in the cheapest arc into each demand node (or, with a
    /// single source and sink, a path of arcs wide enough for the whole supply).
    fn initial_pivots(&mut self) -> Outcome {
        let (n, m) = (self.n, self.m);
        let mut total = 0i64;
        let mut sources = 0usize;
        let mut sinks = 0usize;
        let (mut s, mut t) = (0usize, 0usize);
        for v in 0..n {
            let b = self.supply[v];
            if b > 0 {
                total += b;
                sources += 1;
                s = v;
            } else if b < 0 {
                sinks += 1;
                t = v;
            }
        }
        if total <= 0 {
            return Outcome::Optimal;
        }
        let mut arcs: Vec<u32> = Vec::new();
        if sources == 1 && sinks == 1 {
            // Reverse search from the sink over arcs wide enough to carry everything.
            let mut start = vec![0u32; n + 1];
            for e in 0..m {
                start[self.target[e] as usize + 1] += 1;
            }
            for i in 0..n {
                start[i + 1] += start[i];
            }
            let mut fill = start.clone();
            let mut incoming = vec![0u32; m];
            for e in 0..m {
                let v = self.target[e] as usize;
                incoming[fill[v] as usize] = e as u32;
                fill[v] += 1;
            }
            let mut reached = vec![false; n];
            let mut stack = vec![t];
            reached[t] = true;
            while let Some(v) = stack.pop() {
                if v == s {
                    break;
                }
                for &e in &incoming[start[v] as usize..start[v + 1] as usize] {
                    let u = self.source[e as usize] as usize;
                    if reached[u] {
                        continue;
                    }
                    if self.cap[e as usize] >= total {
                        arcs.push(e);
                        reached[u] = true;
                        stack.push(u);
                    }
                }
            }
        } else {
            let mut best = vec![NONE; n];
            let mut best_cost = vec![i64::MAX; n];
            for e in 0..m {
                let v = self.target[e] as usize;
                let c = self.cost[e];
                if self.supply[v] < 0 && c < best_cost[v] {
                    best_cost[v] = c;
                    best[v] = e as u32;
                }
            }
            arcs.extend(best.into_iter().filter(|&e| e != NONE));
        }
        for e in arcs {
            let e = e as usize;
            if self.reduced_cost(e) >= 0 {
                continue;
            }
            if self.pivot(e) == Outcome::Unbounded {
                return Outcome::Unbounded;
            }
        }
        Outcome::Optimal
    }

    /// Reduced cost of arc `e` in the direction it can move (negative: eligible to enter).
    fn reduced_cost(&self, e: usize) -> i64 {
        let rc = self.cost[e]
            .wrapping_add(self.pi[self.source[e] as usize])
            .wrapping_sub(self.pi[self.target[e] as usize]);
        i64::from(self.state[e]).wrapping_mul(rc)
    }

    /// Runs primal simplex pivots until no arc prices out.
    pub(crate) fn run(&mut self) -> Outcome {
        while let Some(e) = self.find_entering_arc() {
            if self.pivot(e) == Outcome::Unbounded {
                return Outcome::Unbounded;
            }
            if self.renumber_period > 0 {
                self.since_renumber += 1;
                if self.since_renumber >= self.renumber_period {
                    self.renumber();
                }
            }
        }
        Outcome::Optimal
    }

    /// Renumbers the nodes in thread (preorder) order, root last as always. Subtrees then occupy
    /// runs of consecutive ids, so the thread walks of the potential update read memory in order
    /// instead of hopping around, and parents sit near their children. Pivots disturb the order
    /// only gradually; `run` renumbers again from time to time.
    fn renumber(&mut self) {
        self.since_renumber = 0;
        let (n, m) = (self.n, self.m);
        let root = n;
        let mut new = vec![0u32; n + 1];
        new[root] = root as u32;
        let mut u = self.thread[root] as usize;
        let mut k = 0u32;
        while u != root {
            new[u] = k;
            k += 1;
            u = self.thread[u] as usize;
        }
        let map = |v: u32| if v == NONE { NONE } else { new[v as usize] };
        let mut tree = vec![DETACHED; n + 1];
        let mut pi = vec![0; n + 1];
        let mut supply = vec![0; n + 1];
        let mut thread = vec![0; n + 1];
        let mut rev_thread = vec![0; n + 1];
        let mut last_succ = vec![0; n + 1];
        let mut node_of = vec![0; n];
        for (v, &w) in new.iter().enumerate() {
            let w = w as usize;
            let mut node = self.tree[v];
            node.parent = map(node.parent);
            if node.pred != NONE && node.pred as usize >= m {
                // Node v's artificial arc m + v moves with it.
                node.pred = (m + w) as u32;
            }
            tree[w] = node;
            pi[w] = self.pi[v];
            supply[w] = self.supply[v];
            thread[w] = map(self.thread[v]);
            rev_thread[w] = map(self.rev_thread[v]);
            last_succ[w] = map(self.last_succ[v]);
            if v < n {
                node_of[w] = self.node_of[v];
            }
        }
        let art = |a: &[u32]| -> Vec<u32> {
            let mut out = vec![0; n];
            for (&w, &x) in new.iter().zip(&a[m..]) {
                out[w as usize] = map(x);
            }
            out
        };
        let art_source = art(&self.source);
        let art_target = art(&self.target);
        let mut art_cost = vec![0; n];
        let mut art_cap = vec![0; n];
        let mut art_state = vec![0; n];
        for (v, &w) in new[..n].iter().enumerate() {
            let w = w as usize;
            art_cost[w] = self.cost[m + v];
            art_cap[w] = self.cap[m + v];
            art_state[w] = self.state[m + v];
        }
        self.source[m..].copy_from_slice(&art_source);
        self.target[m..].copy_from_slice(&art_target);
        self.cost[m..].copy_from_slice(&art_cost);
        self.cap[m..].copy_from_slice(&art_cap);
        self.state[m..].copy_from_slice(&art_state);
        for e in 0..m {
            self.source[e] = map(self.source[e]);
            self.target[e] = map(self.target[e]);
        }
        match &mut self.price {
            Prices::Narrow(arcs) => arcs.iter_mut().for_each(|a| {
                a.s = map(a.s);
                a.t = map(a.t);
            }),
            Prices::Wide(arcs) => arcs.iter_mut().for_each(|a| {
                a.s = map(a.s);
                a.t = map(a.t);
            }),
        }
        self.tree = tree;
        self.pi = pi;
        self.supply = supply;
        self.thread = thread;
        self.rev_thread = rev_thread;
        self.last_succ = last_succ;
        self.node_of = node_of;
    }

    /// Block search: scan blocks of about sqrt(m) arcs from where the last search stopped and take
    /// the most negative reduced cost of the first block that has one.
    fn find_entering_arc(&mut self) -> Option<usize> {
        let found = match &self.price {
            Prices::Narrow(arcs) => block_search(arcs, &self.pi, self.next_arc, self.block_size),
            Prices::Wide(arcs) => block_search(arcs, &self.pi, self.next_arc, self.block_size),
        };
        let (best, next) = found?;
        self.next_arc = next;
        Some(best)
    }

    /// One pivot with entering arc `in_arc`: find the cycle's apex, the leaving arc (ratio test),
    /// push the flow around the cycle, re-hang the tree and shift potentials.
    fn pivot(&mut self, in_arc: usize) -> Outcome {
        self.pivots += 1;
        let tree = &mut self.tree[..];
        let (src, tgt) = (self.source[in_arc] as usize, self.target[in_arc] as usize);
        // The two sides of the cycle, each from its end of the entering arc up to (not including)
        // the join. Recorded once so the later passes iterate an array instead of chasing parent
        // links again.
        let mut path_src = std::mem::take(&mut self.path_src);
        let mut path_tgt = std::mem::take(&mut self.path_tgt);
        path_src.clear();
        path_tgt.clear();

        // The join node: the deepest common ancestor, found by climbing from the smaller subtree.
        let (mut u, mut v) = (src, tgt);
        while u != v {
            if tree[u].succ_num < tree[v].succ_num {
                path_src.push(u as u32);
                u = tree[u].parent as usize;
            } else {
                path_tgt.push(v as u32);
                v = tree[v].parent as usize;
            }
        }
        let join = u;

        // Ratio test. Ties go to the last blocking arc met walking the cycle in the direction of
        // the flow from the join (LEMON's rule), which keeps the tree strongly feasible.
        let st = self.state[in_arc];
        let (first, second, path_first, path_second) = if st == STATE_LOWER {
            (src, tgt, &path_src, &path_tgt)
        } else {
            (tgt, src, &path_tgt, &path_src)
        };
        let in_cap = self.cap[in_arc];
        let mut delta = in_cap;
        let mut result = 0u8;
        let mut out_at = 0usize;
        for (k, &u) in path_first.iter().enumerate() {
            let node = &tree[u as usize];
            let d = if node.dir == DIR_UP {
                node.flow
            } else {
                node.cap - node.flow
            };
            if d < delta {
                delta = d;
                out_at = k;
                result = 1;
            }
        }
        for (k, &u) in path_second.iter().enumerate() {
            let node = &tree[u as usize];
            let d = if node.dir == DIR_UP {
                node.cap - node.flow
            } else {
                node.flow
            };
            if d <= delta {
                delta = d;
                out_at = k;
                result = 2;
            }
        }
        if delta > self.flow_bound {
            self.path_src = path_src;
            self.path_tgt = path_tgt;
            return Outcome::Unbounded;
        }

        // Augment along the cycle.
        let in_flow_before = if st == STATE_LOWER { 0 } else { in_cap };
        let val = i64::from(st) * delta;
        if delta > 0 {
            for &u in &path_src {
                let node = &mut tree[u as usize];
                node.flow -= i64::from(node.dir) * val;
            }
            for &u in &path_tgt {
                let node = &mut tree[u as usize];
                node.flow += i64::from(node.dir) * val;
            }
        }
        if result == 0 {
            // The entering arc itself is the bottleneck: it moves to its other bound.
            self.state[in_arc] = -st;
            self.orient(in_arc);
            self.path_src = path_src;
            self.path_tgt = path_tgt;
            return Outcome::Optimal;
        }
        let (u_in, v_in, path_in, path_v_in) = if result == 1 {
            (first, second, path_first, path_second)
        } else {
            (second, first, path_second, path_first)
        };
        let u_out = path_in[out_at] as usize;
        self.state[in_arc] = STATE_TREE;
        let out = tree[u_out];
        let out_arc = out.pred as usize;
        self.state[out_arc] = if out.flow == 0 {
            STATE_LOWER
        } else {
            STATE_UPPER
        };
        if out_arc < self.m {
            self.orient(out_arc);
        }
        let entering = TreeNode {
            parent: v_in as u32,
            pred: in_arc as u32,
            succ_num: 0,
            dir: if u_in == src { DIR_UP } else { DIR_DOWN },
            flow: in_flow_before + val,
            cap: in_cap,
        };
        // The ancestors of v_in, and of v_out (the old parent of u_out), below the join: the
        // nodes whose subtree sizes change.
        let above_in: &[u32] = path_v_in;
        let above_out: &[u32] = &path_in[out_at + 1..];
        let rehang = Rehang {
            join,
            u_out,
            u_in,
            v_in,
            entering,
        };
        self.update_tree_structure(rehang, above_in, above_out);
        self.update_potential(in_arc, u_in, v_in);
        self.path_src = path_src;
        self.path_tgt = path_tgt;
        Outcome::Optimal
    }

    /// LEMON's tree update: re-hang the stem from `u_in` up to `u_out` under `v_in`, fixing the thread
    /// order, subtree sizes and last successors along the way. `entering` is `u_in`'s new record.
    fn update_tree_structure(&mut self, pivot: Rehang, above_in: &[u32], above_out: &[u32]) {
        let Rehang {
            join,
            u_out,
            u_in,
            v_in,
            entering,
        } = pivot;
        let tree = &mut self.tree[..];
        let thread = &mut self.thread[..];
        let rev_thread = &mut self.rev_thread[..];
        let last_succ = &mut self.last_succ[..];
        let old_rev_thread = rev_thread[u_out] as usize;
        let old_succ_num = tree[u_out].succ_num;
        let old_last_succ = last_succ[u_out] as usize;
        let v_out = tree[u_out].parent as usize;

        if u_in == u_out {
            let succ_num = tree[u_in].succ_num;
            tree[u_in] = TreeNode {
                succ_num,
                ..entering
            };
            if thread[v_in] as usize != u_out {
                let mut after = thread[old_last_succ] as usize;
                thread[old_rev_thread] = after as u32;
                rev_thread[after] = old_rev_thread as u32;
                after = thread[v_in] as usize;
                thread[v_in] = u_out as u32;
                rev_thread[u_out] = v_in as u32;
                thread[old_last_succ] = after as u32;
                rev_thread[after] = old_last_succ as u32;
            }
        } else {
            let thread_continue = if old_rev_thread == v_in {
                thread[old_last_succ]
            } else {
                thread[v_in]
            } as usize;
            let mut stem = u_in;
            let mut par_stem = v_in;
            let mut last = last_succ[u_in] as usize;
            let mut after = thread[last] as usize;
            thread[v_in] = u_in as u32;
            self.dirty_revs.clear();
            self.dirty_revs.push(v_in as u32);
            while stem != u_out {
                let next_stem = tree[stem].parent as usize;
                thread[last] = next_stem as u32;
                self.dirty_revs.push(last as u32);
                let before = rev_thread[stem] as usize;
                thread[before] = after as u32;
                rev_thread[after] = before as u32;
                tree[stem].parent = par_stem as u32;
                par_stem = stem;
                stem = next_stem;
                last = if last_succ[stem] == last_succ[par_stem] {
                    rev_thread[par_stem] as usize
                } else {
                    last_succ[stem] as usize
                };
                after = thread[last] as usize;
            }
            tree[u_out].parent = par_stem as u32;
            thread[last] = thread_continue as u32;
            rev_thread[thread_continue] = last as u32;
            last_succ[u_out] = last as u32;
            if old_rev_thread != v_in {
                thread[old_rev_thread] = after as u32;
                rev_thread[after] = old_rev_thread as u32;
            }
            for &u in &self.dirty_revs {
                rev_thread[thread[u as usize] as usize] = u;
            }
            // Along the stem each node takes over the tree arc of the node below it (reversed).
            let mut tmp_sc = 0u32;
            let tmp_ls = last_succ[u_out];
            let mut u = u_out;
            while u != u_in {
                let p = tree[u].parent as usize;
                let below = tree[p];
                let node = &mut tree[u];
                node.pred = below.pred;
                node.dir = -below.dir;
                node.flow = below.flow;
                node.cap = below.cap;
                tmp_sc = tmp_sc
                    .wrapping_add(node.succ_num)
                    .wrapping_sub(below.succ_num);
                node.succ_num = tmp_sc;
                last_succ[p] = tmp_ls;
                u = p;
            }
            tree[u_in] = TreeNode {
                succ_num: old_succ_num,
                parent: tree[u_in].parent,
                ..entering
            };
        }

        let up_limit_out = if last_succ[join] as usize == v_in {
            join as u32
        } else {
            NONE
        };
        let last_succ_out = last_succ[u_out];
        let mut u = v_in as u32;
        while u != NONE && last_succ[u as usize] as usize == v_in {
            last_succ[u as usize] = last_succ_out;
            u = tree[u as usize].parent;
        }
        if join != old_rev_thread && v_in != old_rev_thread {
            let mut u = v_out as u32;
            while u != up_limit_out && last_succ[u as usize] as usize == old_last_succ {
                last_succ[u as usize] = old_rev_thread as u32;
                u = tree[u as usize].parent;
            }
        } else if last_succ_out as usize != old_last_succ {
            let mut u = v_out as u32;
            while u != up_limit_out && last_succ[u as usize] as usize == old_last_succ {
                last_succ[u as usize] = last_succ_out;
                u = tree[u as usize].parent;
            }
        }
        debug_assert!(above_in.first().is_none_or(|&u| u as usize == v_in));
        debug_assert!(above_out.first().is_none_or(|&u| u as usize == v_out));
        for &u in above_in {
            tree[u as usize].succ_num += old_succ_num;
        }
        for &u in above_out {
            tree[u as usize].succ_num -= old_succ_num;
        }
    }

    /// Shifts potentials so the entering arc gets reduced cost zero: the re-hung subtree by
    /// `sigma`, or, when that subtree is the larger part, every other node by `-sigma` (only
    /// differences of potentials matter).
    fn update_potential(&mut self, in_arc: usize, u_in: usize, v_in: usize) {
        let node = self.tree[u_in];
        let sigma = self.pi[v_in]
            .wrapping_sub(self.pi[u_in])
            .wrapping_sub(i64::from(node.dir).wrapping_mul(self.cost[in_arc]));
        let end = self.thread[self.last_succ[u_in] as usize] as usize;
        let pi = &mut self.pi[..];
        let thread = &self.thread[..];
        if (node.succ_num as usize) * 2 <= self.n + 1 {
            let mut u = u_in;
            while u != end {
                pi[u] = pi[u].wrapping_add(sigma);
                u = thread[u] as usize;
            }
        } else {
            let mut u = end;
            while u != u_in {
                pi[u] = pi[u].wrapping_sub(sigma);
                u = thread[u] as usize;
            }
        }
    }
}
