//! The scenario-file fuzz target (see `allot_engine::fuzz`): arbitrary bytes as a scenario TOML
//! file. Must not panic; an error names the file and is one short line.

use std::path::Path;

use crate::Scenario;

/// The folder `csv = "..."` cities are read from: the committed examples (`fairs-city`).
fn base() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

/// Generating a city is the simulation's work, not the reader's: scenarios asking for more than
/// a tiny generated city are only checked up to their TOML syntax.
const MAX_FUZZ_SCALE: f64 = 0.01;

fn small_enough(text: &str) -> bool {
    let Ok(table) = text.parse::<toml::Table>() else {
        return true;
    };
    let generate = table
        .get("city")
        .and_then(|c| c.get("generate"))
        .and_then(|g| g.as_table());
    match generate {
        None => true,
        Some(g) => g
            .get("scale")
            .and_then(|s| s.as_float())
            .is_some_and(|s| s <= MAX_FUZZ_SCALE),
    }
}

pub fn scenario_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !small_enough(text) {
        return;
    }
    match Scenario::parse(text, "scenario.toml", base()) {
        Ok(scenario) => {
            assert!(!scenario.variants.is_empty(), "the baseline is a variant");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with("scenario.toml") || message.contains(".csv"),
                "{message:?} names no file"
            );
            assert!(!message.contains('\n'), "{message:?} is not one line");
            assert!(message.len() <= 1000, "{message:?} is too long");
        }
    }
}
