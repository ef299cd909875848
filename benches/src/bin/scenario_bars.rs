//! The bars of issue 8, through `allot_scenarios::run` exactly as `allot simulate` runs it:
//!
//! - `fairs`: N Monte Carlo runs of the fair DA on the Moscow-scale generated fairs (150 fairs,
//!   ~15,000 stalls, 20,000 applicants), on 1 and on 2 threads, alternating (so background load
//!   hits both alike), several rounds; prints each time and the speed-up per round.
//! - `week`: one run of a one-week appointment simulation of the full generated city (125
//!   districts, 600 clinics, 30,000 doctors, ~190,000 requests a day) through the real engine.
//!
//! ```sh
//! cargo build --release -p allot-benches --bin scenario_bars
//! target/release/scenario_bars fairs --runs 1000 --rounds 3
//! target/release/scenario_bars week
//! ```

use std::path::Path;
use std::time::Instant;

use allot_scenarios::{Progress, Scenario};
use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    bar: Bar,
}

#[derive(Debug, Subcommand)]
enum Bar {
    /// Monte Carlo runs of the fair DA, 1 and 2 threads alternating.
    Fairs {
        #[arg(long, default_value_t = 1000)]
        runs: u32,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// A one-week appointment simulation of the full city.
    Week {
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
}

fn quiet(_: Progress) {}

fn main() -> Result<()> {
    match Args::parse().bar {
        Bar::Fairs { runs, rounds } => {
            let s = Scenario::parse(
                "seed = 1\ndomains = [\"fairs\"]\n[city]\ngenerate = { seed = 1, scale = 1.0 }\n",
                "fairs.toml",
                Path::new("."),
            )?;
            let (f, _) = s.variants[0].fairs.as_ref().expect("fairs");
            println!(
                "fair DA, {} fairs, {} stalls, {} applicants, {runs} runs",
                f.fairs.len(),
                f.total_stalls(),
                f.applicants.len()
            );
            let mut reports = Vec::new();
            for round in 0..rounds {
                let mut times = [0.0; 2];
                for (k, threads) in [1usize, 2].into_iter().enumerate() {
                    let t = Instant::now();
                    let report = allot_scenarios::run(&s, runs, Some(threads), &quiet)?;
                    times[k] = t.elapsed().as_secs_f64();
                    reports.push(report.to_json());
                }
                println!(
                    "round {round}: 1 thread {:.2} s, 2 threads {:.2} s, speed-up {:.2}x",
                    times[0],
                    times[1],
                    times[0] / times[1]
                );
            }
            if reports.windows(2).any(|w| w[0] != w[1]) {
                bail!("reports differ between thread counts");
            }
            println!("reports identical across thread counts and rounds");
        }
        Bar::Week { days, scale } => {
            let text = format!(
                "seed = 1\ndomains = [\"appointments\"]\n[city]\ngenerate = {{ seed = 1, scale = {scale} }}\n[period]\ndays = {days}\n"
            );
            let t = Instant::now();
            let s = Scenario::parse(&text, "week.toml", Path::new("."))?;
            let generated = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let report = allot_scenarios::run(&s, 1, Some(1), &quiet)?;
            let seconds = t.elapsed().as_secs_f64();
            let b = &report.variants[0];
            let m = |n: &str| b.metric(n).map_or(f64::NAN, |m| m.mean);
            println!("{}", report.setup.join("\n"));
            println!(
                "city generated in {generated:.2} s; simulation {seconds:.2} s: {:.0} requests ({:.0}/s), {:.0} booked, {:.0} unserved, {:.0} cancelled, {:.0} no-shows; waiting p50 {} p95 {} days, utilisation mean {:.3} max {:.3}",
                m("appointment_requests"),
                m("appointment_requests") / seconds,
                m("appointments_booked"),
                m("unserved_requests"),
                m("cancellations"),
                m("no_shows"),
                m("waiting_days_p50"),
                m("waiting_days_p95"),
                m("clinic_utilisation_mean"),
                m("clinic_utilisation_max"),
            );
        }
    }
    Ok(())
}
