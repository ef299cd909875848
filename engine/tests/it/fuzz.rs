//! The fuzz targets (`allot_engine::fuzz`) as ordinary tests: every committed seed in
//! `fuzz/corpus/<target>/`, then seeded mutations of them (bit flips, interesting numbers,
//! deleted, duplicated and spliced ranges, format tokens), so `cargo test` on stable Rust runs
//! each target on a few thousand inputs. `fuzz/README.md` says how to fuzz for real.

use std::path::{Path, PathBuf};

use allot_engine::fuzz::{self, driver};
use allot_engine::log::SignedCheckpoint;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    driver::corpus(&corpus_dir(target))
}

fn run(name: &str) {
    let (_, target) = fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    driver::run(name, *target, &corpus_dir(name), driver::MUTATIONS);
}

#[test]
fn every_target_has_a_test_and_seeds() {
    let tested = [
        "fair_csv",
        "school_csv",
        "appointment_csv",
        "dimacs",
        "segment",
        "entry",
        "proof",
        "checkpoint",
    ];
    let names: Vec<&str> = fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, tested);
    let fuzz_targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for name in names {
        assert!(!seeds(name).is_empty(), "{name}");
        assert!(
            fuzz_targets.join(format!("{name}.rs")).exists(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}

#[test]
fn fair_csv() {
    run("fair_csv");
}

#[test]
fn school_csv() {
    run("school_csv");
}

#[test]
fn appointment_csv() {
    run("appointment_csv");
}

#[test]
fn dimacs() {
    run("dimacs");
}

#[test]
fn segment() {
    run("segment");
}

#[test]
fn entry() {
    run("entry");
}

#[test]
fn proof() {
    run("proof");
}

#[test]
fn checkpoint() {
    run("checkpoint");
}

/// The seeds that reach past parsing really do: the valid ones are accepted.
#[test]
fn meaningful_seeds_are_accepted() {
    let key = fuzz::fuzz_key().verifier();
    let signed = &seeds("checkpoint")
        .into_iter()
        .find(|(n, _)| n == "signed_by_fuzz_key")
        .expect("the seed")
        .1;
    SignedCheckpoint::open(std::str::from_utf8(signed).unwrap(), &key).expect("opens");
    for (name, bytes) in seeds("entry") {
        allot_engine::log::Entry::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let [fairs, applicants] = split2(&seed("fair_csv", "valid"));
    let fairs = allot_engine::input::Table::from_bytes("fairs.csv", fairs).unwrap();
    let applicants = allot_engine::input::Table::from_bytes("applicants.csv", applicants).unwrap();
    allot_engine::fair::read_tables(&fairs, &applicants).expect("valid fair seed");
    allot_solvers::dimacs::parse(&seed("dimacs", "re_balance")).expect("valid dimacs seed");
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir(target).join(name)).unwrap()
}

fn split2(data: &[u8]) -> [Vec<u8>; 2] {
    let i = data.iter().position(|&b| b == 0).unwrap();
    [data[..i].to_vec(), data[i + 1..].to_vec()]
}
