//! Primal network simplex on flat arrays.
//!
//! The spanning-tree representation (parent, pred, thread, rev_thread, succ_num, last_succ), the
//! artificial root with one artificial arc per node, the block-search pricing and the tree update are
//! ported from LEMON 1.3's `NetworkSimplex` (`lemon/network_simplex.h`, Copyright (C) 2003-2013
//! Egervary Jeno Kombinatorikus Optimalizalasi Kutatocsoport (EGRES), Boost Software License 1.0).
//! What differs from LEMON:
//! - infinite capacities are a finite `big_cap` above any reachable flow, so the ratio test has no
//!   branch for them, and unboundedness is "delta exceeds the flow bound";
//! - the basis can be repaired after cost, capacity and supply changes (`repair_basis`), which is how
//!   both the cold start and the warm re-solve begin;
//! - the artificial cost is the smallest big-M that provably works, so potentials stay small.
//!
//! All arithmetic is in `i64`; `Limits` (checked before a solve) guarantees that no flow, potential or
//! reduced cost can overflow.

pub(crate) const STATE_UPPER: i8 = -1;
pub(crate) const STATE_TREE: i8 = 0;
pub(crate) const STATE_LOWER: i8 = 1;
const DIR_DOWN: i8 = -1;
const DIR_UP: i8 = 1;
const NONE: u32 = u32::MAX;

/// Outcome of running the simplex on the augmented problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Optimal for the augmented problem; artificial arcs may still carry flow (then infeasible).
    Optimal,
    /// A cycle of negative cost and unbounded capacity was found.
    Unbounded,
}

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
    pub(crate) flow: Vec<i64>,
    pub(crate) state: Vec<i8>,
    pub(crate) supply: Vec<i64>,
    pub(crate) pi: Vec<i64>,
    parent: Vec<u32>,
    pred: Vec<u32>,
    pred_dir: Vec<i8>,
    thread: Vec<u32>,
    rev_thread: Vec<u32>,
    succ_num: Vec<u32>,
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
    /// Number of pivots in the last run (for benchmarks and tests of the warm start).
    pub(crate) pivots: u64,
}

/// The result of the ratio test.
struct Leaving {
    delta: i64,
    /// Node whose pred arc leaves the tree, or `None` if the entering arc only flips bound.
    u_out: Option<usize>,
    u_in: usize,
    v_in: usize,
}

impl Simplex {
    /// Allocates a problem with `n` nodes and `m` arcs; the caller fills `source`, `target`, `cost`,
    /// `cap` (for `0..m`) and `supply` (for `0..n`), then calls `cold_start`.
    pub(crate) fn new(n: usize, m: usize) -> Self {
        let all_arcs = m + n;
        let all_nodes = n + 1;
        let block_size = ((m as f64).sqrt() as usize).max(10);
        Simplex {
            n,
            m,
            source: vec![0; all_arcs],
            target: vec![0; all_arcs],
            cost: vec![0; all_arcs],
            cap: vec![0; all_arcs],
            flow: vec![0; all_arcs],
            state: vec![STATE_LOWER; all_arcs],
            supply: vec![0; all_nodes],
            pi: vec![0; all_nodes],
            parent: vec![NONE; all_nodes],
            pred: vec![NONE; all_nodes],
            pred_dir: vec![DIR_UP; all_nodes],
            thread: vec![0; all_nodes],
            rev_thread: vec![0; all_nodes],
            succ_num: vec![0; all_nodes],
            last_succ: vec![0; all_nodes],
            dirty_revs: Vec::new(),
            art_cost: 0,
            flow_bound: 0,
            big_cap: 1,
            block_size,
            next_arc: 0,
            pivots: 0,
        }
    }

    fn root(&self) -> usize {
        self.n
    }

    /// The initial basis: every node hangs from the root by its artificial arc, original arcs at their
    /// lower bound. Then LEMON's heuristic initial pivots.
    pub(crate) fn cold_start(&mut self) -> Outcome {
        let (n, m) = (self.n, self.m);
        let root = self.root();
        for e in 0..m {
            self.state[e] = STATE_LOWER;
            self.flow[e] = 0;
        }
        for v in 0..n {
            let e = m + v;
            self.parent[v] = root as u32;
            self.pred[v] = e as u32;
            self.state[e] = STATE_TREE;
            self.thread[v] = (v + 1) as u32;
            self.rev_thread[v + 1] = v as u32;
            self.succ_num[v] = 1;
            self.last_succ[v] = v as u32;
        }
        self.parent[root] = NONE;
        self.pred[root] = NONE;
        self.thread[root] = 0;
        self.rev_thread[0] = root as u32;
        self.succ_num[root] = (n + 1) as u32;
        self.last_succ[root] = if n == 0 { root as u32 } else { (n - 1) as u32 };
        self.next_arc = 0;
        self.pivots = 0;
        self.repair_basis();
        self.initial_pivots()
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
            match self.state[e] {
                STATE_TREE => continue,
                STATE_UPPER if self.cap[e] < self.big_cap => self.flow[e] = self.cap[e],
                _ => {
                    self.state[e] = STATE_LOWER;
                    self.flow[e] = 0;
                }
            }
            let f = self.flow[e];
            if f != 0 {
                excess[self.source[e] as usize] -= f;
                excess[self.target[e] as usize] += f;
            }
        }
        for e in m..m + n {
            if self.state[e] != STATE_TREE {
                self.state[e] = STATE_LOWER;
                self.flow[e] = 0;
            }
        }
        // Children come after their parent in thread order, so walking it backwards settles every
        // subtree before its parent.
        let mut cut = false;
        let mut u = self.rev_thread[root] as usize;
        while u != root {
            let e = self.pred[u] as usize;
            let r = excess[u];
            let p = self.parent[u] as usize;
            if e >= m {
                self.set_artificial(u, r);
            } else {
                let up = self.pred_dir[u] == DIR_UP;
                let f = if up { r } else { -r };
                let cap = self.cap[e];
                let ok = if up {
                    0 <= f && f < cap
                } else {
                    0 < f && f <= cap
                };
                if ok {
                    self.flow[e] = f;
                    excess[p] += r;
                } else {
                    // Cut: the arc leaves the tree at the bound nearest to the flow it would need.
                    let at = if f >= cap && cap > 0 { cap } else { 0 };
                    self.flow[e] = at;
                    self.state[e] = if at == 0 { STATE_LOWER } else { STATE_UPPER };
                    let passed = if up { at } else { -at };
                    excess[p] += passed;
                    self.parent[u] = root as u32;
                    self.pred[u] = (m + u) as u32;
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

    /// Points node `u`'s artificial arc so that it carries `r` units of the subtree's excess.
    fn set_artificial(&mut self, u: usize, r: i64) {
        let e = self.m + u;
        let root = self.root() as u32;
        if r >= 0 {
            self.pred_dir[u] = DIR_UP;
            self.source[e] = u as u32;
            self.target[e] = root;
            self.flow[e] = r;
            self.cost[e] = 0;
        } else {
            self.pred_dir[u] = DIR_DOWN;
            self.source[e] = root;
            self.target[e] = u as u32;
            self.flow[e] = -r;
            self.cost[e] = self.art_cost;
        }
        self.cap[e] = self.big_cap;
    }

    /// Rebuilds thread, rev_thread, succ_num and last_succ from `parent` by a depth-first walk.
    fn rebuild_thread(&mut self) {
        let all = self.n + 1;
        let root = self.root();
        let mut start = vec![0u32; all + 1];
        for v in 0..all {
            if v != root {
                start[self.parent[v] as usize + 1] += 1;
            }
        }
        for i in 0..all {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut children = vec![0u32; all.saturating_sub(1)];
        for v in 0..all {
            if v != root {
                let p = self.parent[v] as usize;
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
        for v in 0..all {
            self.succ_num[v] = 1;
        }
        for &v in order.iter().rev() {
            let v = v as usize;
            if v != root {
                let p = self.parent[v] as usize;
                self.succ_num[p] += self.succ_num[v];
            }
        }
        // In preorder a subtree is a contiguous run starting at its root.
        for (i, &v) in order.iter().enumerate() {
            let v = v as usize;
            self.last_succ[v] = order[i + self.succ_num[v] as usize - 1];
        }
    }

    /// Potentials such that every tree arc has reduced cost `cost + pi[source] - pi[target] = 0`.
    fn recompute_potentials(&mut self) {
        let root = self.root();
        self.pi[root] = 0;
        let mut u = self.thread[root] as usize;
        while u != root {
            let e = self.pred[u] as usize;
            let p = self.parent[u] as usize;
            self.pi[u] = if self.pred_dir[u] == DIR_UP {
                self.pi[p] - self.cost[e]
            } else {
                self.pi[p] + self.cost[e]
            };
            u = self.thread[u] as usize;
        }
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
        let rc = self.cost[e] + self.pi[self.source[e] as usize] - self.pi[self.target[e] as usize];
        i64::from(self.state[e]) * rc
    }

    /// Runs primal simplex pivots until no arc prices out.
    pub(crate) fn run(&mut self) -> Outcome {
        while let Some(e) = self.find_entering_arc() {
            if self.pivot(e) == Outcome::Unbounded {
                return Outcome::Unbounded;
            }
        }
        Outcome::Optimal
    }

    /// Block search: scan blocks of about sqrt(m) arcs from where the last search stopped and take
    /// the most negative reduced cost of the first block that has one.
    #[inline(never)]
    fn find_entering_arc(&mut self) -> Option<usize> {
        let m = self.m;
        let bs = self.block_size;
        let pi = &self.pi[..];
        let mut min = 0i64;
        let mut best = 0usize;
        let mut start = self.next_arc;
        let mut searched = 0usize;
        while searched < m {
            let end = (start + bs).min(m);
            let src = &self.source[start..end];
            let tgt = &self.target[start..end];
            let cost = &self.cost[start..end];
            let state = &self.state[start..end];
            for (k, (((&s, &t), &c), &st)) in src.iter().zip(tgt).zip(cost).zip(state).enumerate() {
                let rc = i64::from(st) * (c + pi[s as usize] - pi[t as usize]);
                if rc < min {
                    min = rc;
                    best = start + k;
                }
            }
            searched += end - start;
            start = if end == m { 0 } else { end };
            if min < 0 {
                self.next_arc = start;
                return Some(best);
            }
        }
        None
    }

    /// One pivot with entering arc `in_arc`.
    fn pivot(&mut self, in_arc: usize) -> Outcome {
        self.pivots += 1;
        let join = self.find_join_node(in_arc);
        let lv = self.find_leaving_arc(in_arc, join);
        if lv.delta > self.flow_bound {
            return Outcome::Unbounded;
        }
        self.change_flow(in_arc, join, &lv);
        if let Some(u_out) = lv.u_out {
            self.update_tree_structure(in_arc, join, u_out, lv.u_in, lv.v_in);
            self.update_potential(in_arc, lv.u_in, lv.v_in);
        }
        Outcome::Optimal
    }

    #[inline(never)]
    fn find_join_node(&self, in_arc: usize) -> usize {
        let mut u = self.source[in_arc] as usize;
        let mut v = self.target[in_arc] as usize;
        while u != v {
            if self.succ_num[u] < self.succ_num[v] {
                u = self.parent[u] as usize;
            } else {
                v = self.parent[v] as usize;
            }
        }
        u
    }

    /// The ratio test. Ties are broken as in LEMON (last blocking arc on the cycle when walked in the
    /// flow direction from the join), which keeps the tree strongly feasible and prevents cycling.
    #[inline(never)]
    fn find_leaving_arc(&self, in_arc: usize, join: usize) -> Leaving {
        let (first, second) = if self.state[in_arc] == STATE_LOWER {
            (self.source[in_arc] as usize, self.target[in_arc] as usize)
        } else {
            (self.target[in_arc] as usize, self.source[in_arc] as usize)
        };
        let mut delta = self.cap[in_arc];
        let mut result = 0u8;
        let mut u_out = 0usize;
        let mut u = first;
        while u != join {
            let e = self.pred[u] as usize;
            let mut d = self.flow[e];
            if self.pred_dir[u] == DIR_DOWN {
                d = self.cap[e] - d;
            }
            if d < delta {
                delta = d;
                u_out = u;
                result = 1;
            }
            u = self.parent[u] as usize;
        }
        let mut u = second;
        while u != join {
            let e = self.pred[u] as usize;
            let mut d = self.flow[e];
            if self.pred_dir[u] == DIR_UP {
                d = self.cap[e] - d;
            }
            if d <= delta {
                delta = d;
                u_out = u;
                result = 2;
            }
            u = self.parent[u] as usize;
        }
        let (u_in, v_in) = if result == 1 {
            (first, second)
        } else {
            (second, first)
        };
        Leaving {
            delta,
            u_out: (result != 0).then_some(u_out),
            u_in,
            v_in,
        }
    }

    #[inline(never)]
    fn change_flow(&mut self, in_arc: usize, join: usize, lv: &Leaving) {
        if lv.delta > 0 {
            let val = i64::from(self.state[in_arc]) * lv.delta;
            self.flow[in_arc] += val;
            let mut u = self.source[in_arc] as usize;
            while u != join {
                self.flow[self.pred[u] as usize] -= i64::from(self.pred_dir[u]) * val;
                u = self.parent[u] as usize;
            }
            let mut u = self.target[in_arc] as usize;
            while u != join {
                self.flow[self.pred[u] as usize] += i64::from(self.pred_dir[u]) * val;
                u = self.parent[u] as usize;
            }
        }
        match lv.u_out {
            Some(u_out) => {
                self.state[in_arc] = STATE_TREE;
                let e = self.pred[u_out] as usize;
                self.state[e] = if self.flow[e] == 0 {
                    STATE_LOWER
                } else {
                    STATE_UPPER
                };
            }
            None => self.state[in_arc] = -self.state[in_arc],
        }
    }

    /// LEMON's tree update: re-hang the stem from `u_in` up to `u_out` under `v_in`, fixing the thread
    /// order, subtree sizes and last successors along the way.
    #[inline(never)]
    fn update_tree_structure(
        &mut self,
        in_arc: usize,
        join: usize,
        u_out: usize,
        u_in: usize,
        v_in: usize,
    ) {
        let old_rev_thread = self.rev_thread[u_out] as usize;
        let old_succ_num = self.succ_num[u_out];
        let old_last_succ = self.last_succ[u_out] as usize;
        let v_out = self.parent[u_out] as usize;

        if u_in == u_out {
            self.parent[u_in] = v_in as u32;
            self.pred[u_in] = in_arc as u32;
            self.pred_dir[u_in] = if u_in == self.source[in_arc] as usize {
                DIR_UP
            } else {
                DIR_DOWN
            };
            if self.thread[v_in] as usize != u_out {
                let mut after = self.thread[old_last_succ] as usize;
                self.thread[old_rev_thread] = after as u32;
                self.rev_thread[after] = old_rev_thread as u32;
                after = self.thread[v_in] as usize;
                self.thread[v_in] = u_out as u32;
                self.rev_thread[u_out] = v_in as u32;
                self.thread[old_last_succ] = after as u32;
                self.rev_thread[after] = old_last_succ as u32;
            }
        } else {
            let thread_continue = if old_rev_thread == v_in {
                self.thread[old_last_succ]
            } else {
                self.thread[v_in]
            } as usize;
            let mut stem = u_in;
            let mut par_stem = v_in;
            let mut last = self.last_succ[u_in] as usize;
            let mut after = self.thread[last] as usize;
            self.thread[v_in] = u_in as u32;
            self.dirty_revs.clear();
            self.dirty_revs.push(v_in as u32);
            while stem != u_out {
                let next_stem = self.parent[stem] as usize;
                self.thread[last] = next_stem as u32;
                self.dirty_revs.push(last as u32);
                let before = self.rev_thread[stem] as usize;
                self.thread[before] = after as u32;
                self.rev_thread[after] = before as u32;
                self.parent[stem] = par_stem as u32;
                par_stem = stem;
                stem = next_stem;
                last = if self.last_succ[stem] == self.last_succ[par_stem] {
                    self.rev_thread[par_stem] as usize
                } else {
                    self.last_succ[stem] as usize
                };
                after = self.thread[last] as usize;
            }
            self.parent[u_out] = par_stem as u32;
            self.thread[last] = thread_continue as u32;
            self.rev_thread[thread_continue] = last as u32;
            self.last_succ[u_out] = last as u32;
            if old_rev_thread != v_in {
                self.thread[old_rev_thread] = after as u32;
                self.rev_thread[after] = old_rev_thread as u32;
            }
            for &u in &self.dirty_revs {
                self.rev_thread[self.thread[u as usize] as usize] = u;
            }
            let mut tmp_sc = 0u32;
            let tmp_ls = self.last_succ[u_out];
            let mut u = u_out;
            while u != u_in {
                let p = self.parent[u] as usize;
                self.pred[u] = self.pred[p];
                self.pred_dir[u] = -self.pred_dir[p];
                tmp_sc = tmp_sc
                    .wrapping_add(self.succ_num[u])
                    .wrapping_sub(self.succ_num[p]);
                self.succ_num[u] = tmp_sc;
                self.last_succ[p] = tmp_ls;
                u = p;
            }
            self.pred[u_in] = in_arc as u32;
            self.pred_dir[u_in] = if u_in == self.source[in_arc] as usize {
                DIR_UP
            } else {
                DIR_DOWN
            };
            self.succ_num[u_in] = old_succ_num;
        }

        let up_limit_out = if self.last_succ[join] as usize == v_in {
            join as u32
        } else {
            NONE
        };
        let last_succ_out = self.last_succ[u_out];
        let mut u = v_in as u32;
        while u != NONE && self.last_succ[u as usize] as usize == v_in {
            self.last_succ[u as usize] = last_succ_out;
            u = self.parent[u as usize];
        }
        if join != old_rev_thread && v_in != old_rev_thread {
            let mut u = v_out as u32;
            while u != up_limit_out && self.last_succ[u as usize] as usize == old_last_succ {
                self.last_succ[u as usize] = old_rev_thread as u32;
                u = self.parent[u as usize];
            }
        } else if last_succ_out as usize != old_last_succ {
            let mut u = v_out as u32;
            while u != up_limit_out && self.last_succ[u as usize] as usize == old_last_succ {
                self.last_succ[u as usize] = last_succ_out;
                u = self.parent[u as usize];
            }
        }
        let mut u = v_in;
        while u != join {
            self.succ_num[u] += old_succ_num;
            u = self.parent[u] as usize;
        }
        let mut u = v_out;
        while u != join {
            self.succ_num[u] -= old_succ_num;
            u = self.parent[u] as usize;
        }
    }

    /// Shift the potentials of the re-hung subtree so the entering arc gets reduced cost zero.
    #[inline(never)]
    fn update_potential(&mut self, in_arc: usize, u_in: usize, v_in: usize) {
        let sigma =
            self.pi[v_in] - self.pi[u_in] - i64::from(self.pred_dir[u_in]) * self.cost[in_arc];
        let end = self.thread[self.last_succ[u_in] as usize] as usize;
        let mut u = u_in;
        while u != end {
            self.pi[u] += sigma;
            u = self.thread[u] as usize;
        }
    }

    /// Total flow on artificial arcs, and one node whose demand is short (if any).
    pub(crate) fn artificial_flow(&self) -> (i64, Option<usize>) {
        let mut total = 0i64;
        let mut short = None;
        for v in 0..self.n {
            let e = self.m + v;
            let f = self.flow[e];
            if f > 0 && self.source[e] as usize == self.n {
                total += f;
                short.get_or_insert(v);
            }
        }
        (total, short)
    }
}
