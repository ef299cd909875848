//! The scenario-file fuzz target as an ordinary test: the committed seeds in
//! `fuzz/corpus/scenario_toml/` and seeded mutations of them (see `allot_engine::fuzz::driver`).

use std::path::Path;

use allot_engine::fuzz::driver;

#[test]
fn scenario_toml() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scenario_toml");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/fuzz_targets/scenario_toml.rs")
            .exists()
    );
    driver::run(
        "scenario_toml",
        allot_scenarios::fuzz::scenario_toml,
        &dir,
        driver::MUTATIONS / 4,
    );
}

/// The example seeds reach past the reader's syntax: they are accepted.
#[test]
fn the_example_seeds_are_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scenario_toml");
    for name in ["fairs-only", "small-city", "moscow-week"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        allot_scenarios::Scenario::parse(&text, name, &base).unwrap_or_else(|e| panic!("{e}"));
    }
}
