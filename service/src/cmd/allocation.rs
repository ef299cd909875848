//! What the fair and school commands share: beacon options, the progress display, printing a
//! verification.

use std::io::IsTerminal;
use std::time::Duration;

use allot_engine::allocation::{Beacon, Distribution, RunInfo, Stage, Verification};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// The public randomness beacon, for inputs without lottery numbers.
#[derive(Debug, Clone, clap::Args)]
pub struct BeaconArgs {
    /// The beacon value published after the application window closed, in hex. Lottery numbers
    /// are drawn from SHA-256(digest of the closed application set || this value). Required
    /// exactly when the input has no `lottery` column.
    #[arg(long, value_name = "HEX")]
    pub beacon: Option<String>,
    /// Who published the beacon value (logged with it).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "manual",
        requires = "beacon"
    )]
    pub beacon_source: String,
    /// The beacon's round or pulse number (logged with it).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "beacon")]
    pub beacon_round: u64,
}

impl BeaconArgs {
    pub fn beacon(&self) -> Result<Option<Beacon>> {
        let Some(text) = &self.beacon else {
            return Ok(None);
        };
        let text = text.trim();
        let value = match hex::decode(text) {
            Ok(v) if !v.is_empty() => v,
            _ => bail!("--beacon: expected an even number of hex digits, found '{text}'"),
        };
        Ok(Some(Beacon {
            source: self.beacon_source.clone(),
            round: self.beacon_round,
            value,
        }))
    }
}

/// A progress display on stderr, only when stderr is a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(Stage::ALL.len() as u64 + 1);
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message("reading the input");
            bar
        });
        Progress { bar }
    }

    pub fn stage(&mut self, stage: Stage) {
        if let Some(bar) = &self.bar {
            let at = Stage::ALL.iter().position(|&s| s == stage).unwrap_or(0);
            bar.set_position(at as u64 + 1);
            bar.set_message(stage.describe());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Prints where a published run is in the log and on disk; `what` names its outcomes.
pub fn print_published(info: &RunInfo, out: &std::path::Path, what: &str) {
    println!(
        "logged: window closed at entry {}{}, run at entry {} with its {} {what} (run id {})",
        info.closed_index,
        info.seed_index
            .map(|i| format!(", seed drawn at entry {i}"))
            .unwrap_or_default(),
        info.index,
        info.run.counts.participants,
        info.id
    );
    println!("results in {}", out.display());
}

/// Prints a verification; fails when a check failed.
pub fn report(v: &Verification) -> Result<()> {
    let run = &v.run;
    println!(
        "run {}: {} {} run of {} participants, logged {} by {}",
        run.label(),
        run.run.domain.name().to_lowercase(),
        run.run.mechanism,
        run.run.counts.participants,
        run.time,
        run.actor
    );
    for check in &v.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<15} {}", check.name, check.detail);
    }
    let failed = v.checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        bail!(
            "run {} does not verify: {failed} check(s) failed",
            run.label()
        );
    }
    println!("run {} verifies", run.label());
    Ok(())
}

/// Mechanisms side by side on one input.
pub struct Comparison {
    /// E.g. "20000 applicants".
    pub title: String,
    /// The figures' names; a label `solve seconds` is printed with 4 decimals.
    pub labels: Vec<String>,
    /// Per mechanism: its name and, per allocation (one, or one per draw), its figures in the
    /// order of `labels`.
    pub columns: Vec<(String, Vec<Vec<f64>>)>,
    /// `Some(n)` for n lottery draws per mechanism.
    pub draws: Option<u64>,
}

impl Comparison {
    /// Prints a table (or one JSON object): one column per mechanism; with draws each figure's
    /// mean and 5th-95th percentiles.
    pub fn print(&self, as_json: bool) {
        let cols: Vec<(&str, Vec<Distribution>)> = self
            .columns
            .iter()
            .map(|(name, runs)| {
                let dists = (0..self.labels.len())
                    .map(|f| Distribution::of(runs.iter().map(|v| v[f])))
                    .collect();
                (name.as_str(), dists)
            })
            .collect();
        if as_json {
            let mechanisms: serde_json::Map<String, serde_json::Value> = cols
                .iter()
                .map(|(name, dists)| {
                    let figures: serde_json::Map<String, serde_json::Value> = self
                        .labels
                        .iter()
                        .zip(dists)
                        .map(|(l, d)| {
                            let value = match self.draws {
                                None => json!(d.mean),
                                Some(_) => json!(d),
                            };
                            (l.trim().to_owned(), value)
                        })
                        .collect();
                    ((*name).to_owned(), figures.into())
                })
                .collect();
            let out = json!({ "title": self.title, "draws": self.draws, "mechanisms": mechanisms });
            println!("{out}");
            return;
        }
        match self.draws {
            None => println!("{}, one allocation per mechanism", self.title),
            Some(n) => println!(
                "{}, {n} lottery draws per mechanism: mean [5th-95th percentile]",
                self.title
            ),
        }
        let width = 26;
        let cell = if self.draws.is_some() { 28 } else { 12 };
        print!("{:width$}", "");
        for (name, _) in &cols {
            print!("{name:>cell$}");
        }
        println!();
        for (f, label) in self.labels.iter().enumerate() {
            print!("{label:width$}");
            for (_, dists) in &cols {
                let d = dists[f];
                let seconds = label == "solve seconds";
                let text = match (self.draws, seconds) {
                    (None, true) => format!("{:.4}", d.mean),
                    (None, false) => format!("{}", d.mean),
                    (Some(_), true) => format!("{:.4} [{:.4}-{:.4}]", d.mean, d.p5, d.p95),
                    (Some(_), false) => format!("{:.1} [{}-{}]", d.mean, d.p5, d.p95),
                };
                print!("{text:>cell$}");
            }
            println!();
        }
    }
}

/// A beacon as a message.
pub fn remote_beacon(b: &Beacon) -> allot_service::proto::v1::Beacon {
    allot_service::proto::v1::Beacon {
        source: b.source.clone(),
        round: b.round,
        value: b.value.clone(),
    }
}

/// A run named on the command line, as the API names runs: the 64 hex digits of its id.
pub fn remote_run_id(run: Option<&str>) -> Result<Vec<u8>> {
    let Some(run) = run else {
        bail!(
            "with --server, name the run by its id: --run followed by the 64 hex digits `run` printed"
        )
    };
    match hex::decode(run.trim()) {
        Ok(id) if id.len() == 32 => Ok(id),
        _ => bail!(
            "with --server, a run is named by the 64 hex digits of its id (entry indices and \
             prefixes work only on the data folder), not '{run}'"
        ),
    }
}

/// Prints a verification the server made; fails when a check failed.
pub fn remote_verification(v: allot_service::proto::v1::RunVerification) -> Result<()> {
    for check in &v.checks {
        println!("{check}");
    }
    if !v.ok {
        bail!("run at entry {} does not verify: {}", v.log_index, v.detail);
    }
    println!("run at entry {} verifies", v.log_index);
    Ok(())
}
