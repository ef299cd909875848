//! `allot mcf FILE.min`: solve one DIMACS min-cost-flow problem.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use allot_service::render;
use allot_solvers::dimacs;
use allot_solvers::mcf::{self, McfError};
use anyhow::{Context, bail};

/// Arguments of `allot mcf` (its help text is on the `Command::Mcf` variant in `main.rs`).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  allot mcf network.min\n  allot mcf --flow network.min")]
pub struct Args {
    /// The DIMACS min-cost-flow file (`.min`).
    pub file: PathBuf,
    /// Before the JSON line, print the optimal flow in DIMACS solution format: `s COST`, then
    /// `f SRC DST FLOW` for each arc with nonzero flow, in file order.
    #[arg(long)]
    pub flow: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let network = dimacs::read_file(&args.file)?;
    let started = Instant::now();
    let result = mcf::solve(&network);
    let seconds = started.elapsed().as_secs_f64();
    let file = args.file.display();
    let solution = match result {
        Ok(solution) => solution,
        Err(McfError::Infeasible { unmet, node }) => bail!(
            "{file}: infeasible: {unmet} units of demand cannot be met (node {} is short)",
            node.index() + 1
        ),
        Err(e) => bail!("{file}: {e}"),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.flow {
        dimacs::write_flow(&network, solution.cost, &solution.flow, &mut out)?;
    }
    let summary = render::mcf_summary(solution.cost, seconds, &network)?;
    writeln!(out, "{summary}")?;
    out.flush().context("writing the result")?;
    Ok(())
}
