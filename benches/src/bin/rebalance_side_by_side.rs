//! Side by side on the referral re-balancing flow: `plan_rebalance` end to end on a generated
//! city (grouping, the network, the min-cost flow, slots from the flow, the greedy baseline and
//! both evaluations), and the same flow network solved by allot's network simplex and by LEMON's
//! `NetworkSimplex` (written as DIMACS; the same optimal cost required), alternating runs so
//! background load hits both alike.
//!
//! ```sh
//! cargo run --release -p allot-benches --bin rebalance_side_by_side -- --referrals 200000 --runs 5
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use allot_benches::appointments::{city, engine, requests};
use allot_benches::{Lemon, median};
use allot_engine::appointments::DiscardSink;
use allot_engine::appointments::rebalance::RebalanceOptions;
use allot_solvers::{dimacs, mcf};
use anyhow::{Result, bail};
use clap::Parser;

/// Time the referral re-balancing end to end and its flow against LEMON.
#[derive(Debug, Parser)]
struct Args {
    /// City scale (1.0: Moscow, 600 clinics, 12 million slots over 14 days).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Referrals in the batch.
    #[arg(long, default_value_t = 200_000)]
    referrals: usize,
    /// Days over which the referrals' earliest dates spread.
    #[arg(long, default_value_t = 7)]
    spread_days: u32,
    /// Runs per side; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The LEMON runner (default: ~/.cache/allot-anchors/lemon_mcf).
    #[arg(long, env = "LEMON_MCF")]
    lemon: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let lemon = Lemon::new(args.lemon)?;
    let started = Instant::now();
    let city = city(1, args.scale);
    let engine = engine(&city, Arc::new(DiscardSink));
    let schedule = engine.schedule().clone();
    let referrals = requests(&city, &schedule, args.referrals, 99, args.spread_days);
    println!(
        "city at scale {}: {} slots, {} referrals, built in {:.1} s",
        args.scale,
        schedule.slot_count(),
        referrals.len(),
        started.elapsed().as_secs_f64()
    );
    let options = RebalanceOptions::default();

    let plan = engine.plan_rebalance(&referrals, &options)?;
    let network = plan.network;
    let file = tempfile::Builder::new().suffix(".min").tempfile()?;
    dimacs::write(&network, std::io::BufWriter::new(file.as_file()))?;
    println!(
        "flow: {} groups, {} nodes, {} arcs, optimal cost {}",
        plan.groups, plan.nodes, plan.arcs, plan.flow_cost
    );

    let (mut t_plan, mut t_plan_solve, mut t_ours, mut t_lemon) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs.max(1) {
        let plan = engine.plan_rebalance(&referrals, &options)?;
        t_plan.push(plan.seconds);
        t_plan_solve.push(plan.solve_seconds);
        let t0 = Instant::now();
        let solution = mcf::solve(&network)?;
        t_ours.push(t0.elapsed().as_secs_f64());
        let (cost, secs) = lemon.solve(file.path())?;
        if cost != solution.cost || cost != plan.flow_cost {
            bail!(
                "optimal costs differ: LEMON {cost}, allot {}, the plan {}",
                solution.cost,
                plan.flow_cost
            );
        }
        t_lemon.push(secs);
    }
    let (plan_s, plan_solve_s) = (median(t_plan), median(t_plan_solve));
    let (ours_s, lemon_s) = (median(t_ours), median(t_lemon));
    println!(
        "plan_rebalance end to end: {plan_s:.3} s, of which the min-cost flow {plan_solve_s:.4} s"
    );
    println!(
        "the flow alone: allot {ours_s:.4} s, LEMON NetworkSimplex {lemon_s:.4} s, allot/LEMON {:.2} (costs equal)",
        ours_s / lemon_s
    );
    Ok(())
}
