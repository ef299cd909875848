//! Side by side on one fair CSV folder (as written by `../shared/anchors/gen/fair_gen.py`):
//! allot's `da` solve, the `welfare` flow solved by allot's network simplex and by LEMON's
//! `NetworkSimplex` on the same flow (written as DIMACS; same optimal cost required), alternating
//! runs so background load hits both alike; and `--draws N` lottery draws of DA on all cores
//! (what `allot fair compare --draws` runs).
//!
//! ```sh
//! cargo run --release -p allot-benches --bin fair_side_by_side -- DIR --runs 7 --draws 1000
//! ```

use std::path::PathBuf;
use std::time::Instant;

use allot_benches::{Lemon, median};
use allot_engine::allocation::{Allocation, monte_carlo};
use allot_engine::fair::{self, Fairs, Mechanism, Params, welfare_network};
use allot_solvers::matching::Seed;
use allot_solvers::{dimacs, mcf};
use anyhow::{Result, bail};
use clap::Parser;

/// Time allot's fair mechanisms against LEMON on the same welfare flow.
#[derive(Debug, Parser)]
struct Args {
    /// Folder with fairs.csv and applicants.csv.
    dir: PathBuf,
    /// Solves per side; the median is reported.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// The LEMON runner (default: ~/.cache/allot-anchors/lemon_mcf).
    #[arg(long, env = "LEMON_MCF")]
    lemon: Option<PathBuf>,
    /// Lottery draws of DA to time (0: none).
    #[arg(long, default_value_t = 1000)]
    draws: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let lemon = Lemon::new(args.lemon)?;
    let files = fair::read(
        &args.dir.join("fairs.csv"),
        &args.dir.join("applicants.csv"),
    )?;
    let input = &files.input;
    let da = Params::default();
    let welfare = Params {
        mechanism: Mechanism::Welfare,
        ..Params::default()
    };
    let seed = |p: &Params| -> Result<_> {
        let s = Fairs::solve(input, p, None)?;
        Ok(s)
    };

    // The welfare flow as DIMACS, for LEMON.
    let solved = seed(&welfare)?;
    let net = welfare_network(input, &solved.market, &solved.entry_rank)?;
    let ours = mcf::solve(&net.network)?;
    let file = tempfile::Builder::new().suffix(".min").tempfile()?;
    dimacs::write(&net.network, std::io::BufWriter::new(file.as_file()))?;
    println!(
        "welfare flow: {} nodes, {} arcs, optimal cost {}",
        net.network.node_count(),
        net.network.arc_count(),
        ours.cost
    );

    let (mut t_da, mut t_total_da, mut t_ours, mut t_lemon) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs.max(1) {
        let t0 = Instant::now();
        let s = seed(&da)?;
        t_total_da.push(t0.elapsed().as_secs_f64());
        t_da.push(s.solve_seconds);
        let t0 = Instant::now();
        let solution = mcf::solve(&net.network)?;
        t_ours.push(t0.elapsed().as_secs_f64());
        if solution.cost != ours.cost {
            bail!("allot's welfare cost changed between runs");
        }
        let (cost, secs) = lemon.solve(file.path())?;
        if cost != ours.cost {
            bail!(
                "LEMON's optimal cost {cost} differs from allot's {}",
                ours.cost
            );
        }
        t_lemon.push(secs);
    }
    let (ours_s, lemon_s) = (median(t_ours), median(t_lemon));
    println!(
        "da: solve {:.4} s (market, lottery and solve {:.4} s)",
        median(t_da),
        median(t_total_da)
    );
    println!(
        "welfare: allot {ours_s:.4} s, LEMON NetworkSimplex {lemon_s:.4} s, allot/LEMON {:.2} (costs equal)",
        ours_s / lemon_s
    );

    if args.draws > 0 {
        let t0 = Instant::now();
        let placed = monte_carlo::<Fairs, _>(input, &da, &Seed([7; 32]), args.draws, |_, s| {
            s.position.iter().filter(|p| p.is_some()).count()
        })?;
        let seconds = t0.elapsed().as_secs_f64();
        let mean = placed.iter().sum::<usize>() as f64 / placed.len() as f64;
        println!(
            "{} lottery draws of da on {} threads: {seconds:.2} s ({:.1} ms per draw), mean placed {mean:.1}",
            args.draws,
            rayon::current_num_threads(),
            seconds * 1000.0 / args.draws as f64
        );
    }
    Ok(())
}
