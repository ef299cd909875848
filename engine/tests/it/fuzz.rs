//! The fuzz targets (`allot_engine::fuzz`) as ordinary tests: every committed seed in
//! `fuzz/corpus/<target>/`, then seeded mutations of them (bit flips, interesting numbers,
//! deleted, duplicated and spliced ranges, format tokens), so `cargo test` on stable Rust runs
//! each target on a few thousand inputs. `fuzz/README.md` says how to fuzz for real.

use std::path::{Path, PathBuf};

use allot_engine::fuzz;
use allot_engine::log::SignedCheckpoint;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mutated inputs per target (a few seconds in all on this machine's debug build).
const MUTATIONS: usize = 4000;

/// Tokens the formats care about, for mutations to insert.
const TOKENS: &[&[u8]] = &[
    b"\0",
    b"\n",
    b"\r\n",
    b",",
    b";",
    b"\"",
    b"*",
    b"-",
    b"0",
    b"-1",
    b"4294967296",
    b"18446744073709551616",
    b"99999999999999999999",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\t",
    b"p min ",
    b"a ",
    b"n ",
    b"c ",
    b"mon-fri 08:00-12:00",
    b"2026-03-02",
    b"T23:59",
    b"\n\n",
    b"\xe2\x80\x94 ",
    b"index ",
    b"size ",
    b"path ",
    b"old-size ",
    b"root ",
    b"+",
    b"ALLOTLOG",
    b"\x00\x00\x00\x01",
    b"\xff\xff\xff\xff",
];

pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The committed seeds of a target, sorted by name.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

/// One random edit of `data` (the kinds libFuzzer's mutator makes most).
pub fn mutate(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8]) {
    let pos = |rng: &mut ChaCha8Rng, len: usize| rng.random_range(0..=len);
    match rng.random_range(0..8u8) {
        0 if !data.is_empty() => {
            let i = rng.random_range(0..data.len());
            data[i] ^= 1 << rng.random_range(0..8u8);
        }
        1 if !data.is_empty() => {
            let i = rng.random_range(0..data.len());
            data[i] = [0, 0xff, b'0', b'9', b',', b'\n', 0x80, b' '][rng.random_range(0..8usize)];
        }
        2 if !data.is_empty() => {
            let a = rng.random_range(0..data.len());
            let b = (a + rng.random_range(1..=16usize)).min(data.len());
            data.drain(a..b);
        }
        3 if !data.is_empty() => {
            let a = rng.random_range(0..data.len());
            let b = (a + rng.random_range(1..=32usize)).min(data.len());
            let copy = data[a..b].to_vec();
            let at = pos(rng, data.len());
            data.splice(at..at, copy);
        }
        4 if !other.is_empty() => {
            let a = rng.random_range(0..other.len());
            let b = (a + rng.random_range(1..=64usize)).min(other.len());
            let at = pos(rng, data.len());
            data.splice(at..at, other[a..b].iter().copied());
        }
        5 => {
            let at = pos(rng, data.len());
            let end = data.len().min(at + rng.random_range(0..4usize));
            let n = rng.random_range(1..=20u8).to_string();
            data.splice(at..end, n.into_bytes());
        }
        6 => data.truncate(pos(rng, data.len())),
        _ => {
            let token = TOKENS[rng.random_range(0..TOKENS.len())];
            let at = pos(rng, data.len());
            data.splice(at..at, token.iter().copied());
        }
    }
}

/// Runs `target` on its seeds and on `MUTATIONS` mutated inputs; a panic names the input.
fn run(name: &str) {
    let (_, target) = fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "{name} has no seeds");
    for (seed, bytes) in &seeds {
        let result = std::panic::catch_unwind(|| target(bytes));
        assert!(result.is_ok(), "{name} panicked on seed {seed}");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(name.len() as u64 * 7919);
    for i in 0..MUTATIONS {
        let (_, base) = &seeds[rng.random_range(0..seeds.len())];
        let (_, other) = &seeds[rng.random_range(0..seeds.len())];
        let mut data = base.clone();
        for _ in 0..rng.random_range(1..=4u8) {
            mutate(&mut rng, &mut data, other);
        }
        let result = std::panic::catch_unwind(|| target(&data));
        assert!(
            result.is_ok(),
            "{name} panicked on mutation {i}: {:?}",
            String::from_utf8_lossy(&data)
        );
    }
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
