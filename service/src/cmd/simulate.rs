//! `allot simulate SCENARIO.toml --runs N --out DIR`: planner scenarios (see `allot_scenarios`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use allot_scenarios::{Progress, Scenario};
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

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
    check_out(&args.out)?;
    let started = Instant::now();
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} runs, {msg} ({elapsed}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let progress = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
            bar.set_message(p.phase);
        }
    };
    let report = allot_scenarios::run(&scenario, args.runs.unwrap_or(0), args.threads, &progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    let html = allot_scenarios::html::render(&report);
    write_out(&args.out, &report.to_json(), &html)?;
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

/// The output folder must be new or empty.
fn check_out(out: &Path) -> Result<()> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("--out {}", out.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "--out {}: the folder exists and is not empty",
                out.display()
            );
        }
    }
    Ok(())
}

/// Writes both files into a temporary sibling of `out`, then renames it into place.
fn write_out(out: &Path, json: &str, html: &str) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .with_context(|| format!("--out {}: not a folder name", out.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        std::fs::create_dir_all(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        for (file, text) in [("report.json", json), ("report.html", html)] {
            let path = tmp.join(file);
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("sync {}", path.display()))?;
        }
        if out.exists() {
            // Checked empty before the runs; remove it so the rename can replace it.
            std::fs::remove_dir(out).with_context(|| format!("--out {}", out.display()))?;
        }
        std::fs::rename(&tmp, out)
            .with_context(|| format!("rename {} to {}", tmp.display(), out.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
