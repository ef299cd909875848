//! What the fair and school commands share: beacon options, the progress display, printing a
//! verification.

use std::io::IsTerminal;
use std::time::Duration;

use allot_engine::allocation::{Beacon, Stage, Verification};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

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
