//! `allot simulate SCENARIO.toml --runs N --out DIR`: planner scenarios (see `allot_scenarios`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use allot_engine::allocation::OutputDir;
use allot_engine::fs::DataDir;
use allot_scenarios::Scenario;
use anyhow::{Result, bail};
use clap::Args;

use allot_service::progress::Progress;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The scenario file (TOML; annotated example: scenarios/examples/moscow-week.toml).
    scenario: PathBuf,
    /// Runs per variant, 1 to 100,000 (default: the scenario's `runs`, else 20).
    #[arg(long, value_name = "N")]
    runs: Option<u32>,
    /// The output folder: report.json and report.html. It must not exist yet (or be empty); it
    /// appears complete or not at all.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Worker threads (default: one per core). The report is the same whatever the number.
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// The master seed, instead of the scenario's.
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: SimulateArgs) -> Result<()> {
    if args.runs == Some(0) {
        bail!("--runs: give at least 1");
    }
    if args.threads == Some(0) {
        bail!("--threads: give at least 1");
    }
    let here = DataDir::new(Path::new("."));
    OutputDir::check_target(&here, &args.out)?;
    let started = Instant::now();
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let bar = Progress::runs();
    let progress = |p: allot_scenarios::Progress| bar.set(p.done, p.total, p.phase);
    let report = allot_scenarios::run(&scenario, args.runs.unwrap_or(0), args.threads, &progress);
    drop(bar);
    let report = report?;
    let html = allot_scenarios::html::render(&report);
    let mut dir = OutputDir::create(&here, &args.out)?;
    dir.write("report.json", |w| w.write_all(report.to_json().as_bytes()))?;
    dir.write("report.html", |w| w.write_all(html.as_bytes()))?;
    dir.commit()?;
    println!(
        "{} variants x {} runs in {:.1} s: {}",
        report.variants.len(),
        report.runs,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    for v in &report.variants {
        let pick = |name: &str| {
            v.metric(name).map(|m| {
                format!(
                    "{name} {:.3} [{:.3}, {:.3}]",
                    m.mean, m.ci95_low, m.ci95_high
                )
            })
        };
        let shown: Vec<String> = [
            "waiting_days_p95",
            "unserved_share",
            "fair_fill_rate",
            "school_unassigned",
        ]
        .iter()
        .filter_map(|n| pick(n))
        .collect();
        println!("  {}: {}", v.name, shown.join(", "));
    }
    Ok(())
}
