//! Integration tests of allot-scenarios (one test binary, as DEVELOPERS.md asks).

mod browser;
mod compare;
mod fuzz;
mod generators;
mod scenario_files;

use std::path::Path;

use allot_scenarios::{Progress, Report, Scenario};

/// Parses a scenario written inline (CSV folders relative to the crate's examples).
pub fn scenario(text: &str) -> Scenario {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    Scenario::parse(text, "test.toml", &base).unwrap_or_else(|e| panic!("{e}"))
}

pub fn quiet(_: Progress) {}

pub fn run(s: &Scenario, runs: u32, threads: usize) -> Report {
    allot_scenarios::run(s, runs, Some(threads), &quiet).unwrap_or_else(|e| panic!("{e}"))
}
