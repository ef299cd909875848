//! Fuzz target bodies: one plain function per input surface, taking arbitrary bytes.
//!
//! `fuzz/` (its own workspace, cargo-fuzz) calls them from libFuzzer, and the engine's integration
//! tests (`tests/it/fuzz.rs`) call them over the committed corpora in `fuzz/corpus/<target>/` plus
//! seeded mutations, so `cargo test` exercises every target on stable Rust. Each body must not
//! panic on any input, must not allocate more than the input justifies, and asserts what must hold
//! whenever the input is accepted (round trips, counts, verifiers agreeing with each other).
//!
//! Inputs made of several files are split at NUL bytes (NUL never appears in a valid CSV file,
//! and a stray one still reaches the readers as the next file's content).

use std::path::Path;

use allot_solvers::matching::Seed;

use crate::allocation::Allocation;
use crate::appointments::inputs::{read_absences, read_requests};
use crate::appointments::{Date, ScheduleInput, Zone};
use crate::fair::{self, Fairs};
use crate::input::Table;
use crate::log::entry::Entry;
use crate::log::merkle::{Hash, leaf_hash};
use crate::log::proof::{verify_consistency, verify_inclusion};
use crate::log::proof_file::ProofFile;
use crate::log::recover::walk_segment;
use crate::log::{Checkpoint, SignedCheckpoint, SigningKey, VerifierKey};
use crate::school::{self, Schools};

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`).
pub const TARGETS: &[(&str, Target)] = &[
    ("fair_csv", fair_csv),
    ("school_csv", school_csv),
    ("appointment_csv", appointment_csv),
    ("dimacs", dimacs),
    ("segment", segment),
    ("entry", entry),
    ("proof", proof),
    ("checkpoint", checkpoint),
];

/// Allocations are run on accepted inputs up to this many participants (the mechanisms are
/// tested elsewhere; here they must accept whatever the readers accept).
const SOLVE_UP_TO: usize = 64;

/// Splits `data` into `n` parts at the first `n - 1` NUL bytes (missing parts are empty).
fn split(data: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut parts: Vec<Vec<u8>> = data.splitn(n, |&b| b == 0).map(<[u8]>::to_vec).collect();
    parts.resize(n, Vec::new());
    parts
}

fn table(name: &str, bytes: Vec<u8>) -> Option<Table> {
    match Table::from_bytes(name, bytes) {
        Ok(table) => Some(table),
        Err(e) => {
            check_error(&e.to_string(), &[name]);
            None
        }
    }
}

/// An error names one of `files` first, is one line, and is short whatever the input holds.
fn check_error(message: &str, files: &[&str]) {
    assert!(
        files.iter().any(|f| message.starts_with(f)),
        "{message:?} names none of {files:?}"
    );
    assert!(!message.contains('\n'), "{message:?} is not one line");
    assert!(message.len() <= 1000, "{message:?} is too long");
}

/// `fairs.csv` NUL `applicants.csv`.
pub fn fair_csv(data: &[u8]) {
    let [fairs, applicants]: [Vec<u8>; 2] = split(data, 2).try_into().expect("two parts");
    let (Some(fairs), Some(applicants)) = (
        table("fairs.csv", fairs),
        table("applicants.csv", applicants),
    ) else {
        return;
    };
    let files = match fair::read_tables(&fairs, &applicants) {
        Ok(files) => files,
        Err(e) => return check_error(&e.to_string(), &["fairs.csv", "applicants.csv"]),
    };
    let input = &files.input;
    assert_eq!(files.applicant_order.len(), input.applicants.len());
    assert_eq!(files.pool_order.len(), input.pools.len());
    let bytes = Fairs::encode(input);
    assert_eq!(
        &Fairs::decode(&bytes).expect("canonical bytes decode"),
        input
    );
    if input.applicants.len() <= SOLVE_UP_TO {
        let seed = Seed([7; 32]);
        for mechanism in fair::Mechanism::ALL {
            let params = fair::Params {
                mechanism,
                ..Default::default()
            };
            let solved = Fairs::solve(input, &params, Some(&seed)).expect("accepted input solves");
            let placed = (0..input.applicants.len() as u32)
                .filter(|&a| solved.pool_of(a).is_some())
                .count() as u64;
            assert!(placed <= input.total_stalls());
        }
    }
}

/// `schools.csv` NUL `students.csv` NUL `priorities.csv` NUL `reserves.csv` (the last one is
/// absent when it has no bytes).
pub fn school_csv(data: &[u8]) {
    let [schools, students, priorities, reserves]: [Vec<u8>; 4] =
        split(data, 4).try_into().expect("four parts");
    let has_reserves = !reserves.is_empty();
    let (Some(schools), Some(students), Some(priorities)) = (
        table("schools.csv", schools),
        table("students.csv", students),
        table("priorities.csv", priorities),
    ) else {
        return;
    };
    let reserves = if has_reserves {
        match table("reserves.csv", reserves) {
            Some(t) => Some(t),
            None => return,
        }
    } else {
        None
    };
    let files = match school::read_tables(&schools, &students, &priorities, reserves.as_ref()) {
        Ok(files) => files,
        Err(e) => {
            let files = [
                "schools.csv",
                "students.csv",
                "priorities.csv",
                "reserves.csv",
            ];
            return check_error(&e.to_string(), &files);
        }
    };
    let input = &files.input;
    assert_eq!(files.student_order.len(), input.students.len());
    assert_eq!(files.school_order.len(), input.schools.len());
    let bytes = Schools::encode(input);
    assert_eq!(
        &Schools::decode(&bytes).expect("canonical bytes decode"),
        input
    );
    if input.students.len() <= SOLVE_UP_TO {
        let seed = Seed([9; 32]);
        for mechanism in school::Mechanism::ALL {
            if !input.reserves.is_empty() && !mechanism.supports_reserves() {
                continue;
            }
            let params = school::Params {
                mechanism,
                ..Default::default()
            };
            Schools::solve(input, &params, Some(&seed)).expect("accepted input solves");
        }
    }
}

/// One byte for the horizon (1 to 8 days), then `clinics.csv` NUL `doctors.csv` NUL
/// `absences.csv` NUL `requests.csv`.
pub fn appointment_csv(data: &[u8]) {
    let Some((&days, rest)) = data.split_first() else {
        return;
    };
    let [clinics, doctors, absences, requests]: [Vec<u8>; 4] =
        split(rest, 4).try_into().expect("four parts");
    let input = ScheduleInput {
        first_day: Date::parse("2026-03-02").expect("a date"),
        days: u32::from(days % 8) + 1,
        zone: Zone::moscow(),
        clinics_name: "clinics.csv".into(),
        clinics_csv: clinics,
        doctors_name: "doctors.csv".into(),
        doctors_csv: doctors,
    };
    let blob = input.to_blob();
    assert_eq!(
        ScheduleInput::from_blob(&blob).expect("blob decodes"),
        input
    );
    let schedule = match input.build() {
        Ok(schedule) => schedule,
        Err(e) => return check_error(&e.to_string(), &["clinics.csv", "doctors.csv"]),
    };
    if let Some(t) = table("absences.csv", absences)
        && let Err(e) = read_absences(&t, &schedule)
    {
        check_error(&e.to_string(), &["absences.csv"]);
    }
    if let Some(t) = table("requests.csv", requests)
        && let Err(e) = read_requests(&t, &schedule)
    {
        check_error(&e.to_string(), &["requests.csv"]);
    }
}

/// A DIMACS `.min` file; small accepted networks are solved and written back.
pub fn dimacs(data: &[u8]) {
    use allot_solvers::dimacs;
    let network = match dimacs::parse(data) {
        Ok(network) => network,
        Err(e) => {
            assert!(e.line >= 1);
            check_error(&e.to_string(), &["line "]);
            return;
        }
    };
    let text = dimacs::to_string(&network);
    assert_eq!(
        dimacs::parse(text.as_bytes()).expect("written networks parse"),
        network
    );
    if network.arc_count() <= 256 && network.node_count() <= 256 {
        // Infeasible, unbounded or overflowing networks are errors, never panics.
        let _ = allot_solvers::mcf::solve(&network);
    }
}

/// Arbitrary bytes as a segment file, walked as the last segment (crash leftovers allowed) and
/// as an earlier one.
pub fn segment(data: &[u8]) {
    let path = Path::new("00000000000000000000.seg");
    for is_last in [true, false] {
        match walk_segment(path, data, 0, is_last) {
            Ok(walk) => {
                assert!(walk.committed <= walk.frames.len());
                assert!(walk.valid_end as usize <= data.len());
                let mut end = 0;
                for frame in walk.committed() {
                    assert!(frame.offset >= end);
                    end = frame.offset + frame.len;
                    assert!(!frame.body(data).is_empty());
                }
                if !is_last {
                    assert!(walk.torn.is_none());
                }
            }
            Err(e) => check_error(&e.to_string(), &[""]),
        }
    }
}

/// Arbitrary bytes as an entry's canonical bytes: an accepted entry re-encodes to the same bytes.
pub fn entry(data: &[u8]) {
    if let Ok(entry) = Entry::decode(data) {
        assert_eq!(entry.encode().expect("a decoded entry encodes"), data);
    }
}

/// The key the `proof` and `checkpoint` targets trust (its seed `signed_by_fuzz_key` is signed with it).
pub fn fuzz_key() -> SigningKey {
    SigningKey::from_seed("fuzz.allot.example/log", [42; 32]).expect("a valid name")
}

/// A proof file checked offline (with and without a trusted key), and the raw verifiers on hashes
/// taken from the bytes: both may only refuse, and a proof of a one-leaf tree is checked against
/// the leaf itself.
pub fn proof(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(file) = ProofFile::parse(text)
    {
        let key = fuzz_key().verifier();
        let _ = file.check(Some(&key), None, None);
        let _ = file.check(None, None, None);
        if let Ok(again) = ProofFile::parse(&file.to_text()) {
            assert_eq!(again.to_text(), file.to_text());
        }
    }
    if data.len() >= 16 {
        let a = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        let b = u64::from_be_bytes(data[8..16].try_into().expect("8 bytes"));
        let hashes: Vec<Hash> = data[16..]
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        if let [first, second, path @ ..] = hashes.as_slice() {
            let _ = verify_inclusion(first, a, b, path, second);
            let _ = verify_consistency(a, b, first, second, path);
        }
        let leaf = leaf_hash(&data[16..]);
        // A tree of one leaf: its root is the leaf hash and the proof is empty.
        assert!(verify_inclusion(&leaf, 0, 1, &[], &leaf).is_ok());
    }
}

/// Text as a signed checkpoint (with the fuzz key), a verifier key, a signing key and a
/// checkpoint body. Accepted bodies re-serialise to what was read, and a body signed here opens.
pub fn checkpoint(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = fuzz_key();
    let verifier = key.verifier();
    let _ = SignedCheckpoint::open(text, &verifier);
    let _ = verifier.open(text);
    if let Ok(parsed) = VerifierKey::parse(text) {
        assert_eq!(VerifierKey::parse(&parsed.to_text()).ok(), Some(parsed));
    }
    if let Ok(parsed) = SigningKey::parse(text) {
        assert_eq!(
            parsed.verifier(),
            SigningKey::parse(&parsed.to_text())
                .expect("re-parses")
                .verifier()
        );
    }
    if let Ok(cp) = Checkpoint::parse_body(text) {
        assert_eq!(Checkpoint::parse_body(&cp.body()).ok().as_ref(), Some(&cp));
        if let Ok(signed) = SignedCheckpoint::sign(cp.clone(), &key) {
            let opened = SignedCheckpoint::open(&signed.note, &verifier).expect("opens");
            assert_eq!(opened.checkpoint, cp);
        }
    }
}

/// The stable-Rust driver: runs a target over a corpus folder and over seeded mutations of it,
/// so every crate's tests can exercise its targets without libFuzzer.
pub mod driver {
    use std::path::Path;

    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Mutated inputs per target in the tests (a second or so each in a debug build).
    pub const MUTATIONS: usize = 4000;

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
        b"[",
        b"]",
        b"{",
        b"}",
        b"=",
        b"[[variant]]\n",
        b"[city]\n",
        b"1e308",
        b"nan",
        b"inf",
        b"\x08\x96\x01",
        b"\x12\x00",
        b"\x1a\x03abc",
    ];

    /// The files of a corpus folder, sorted by name.
    pub fn corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| {
                let path = e.expect("a folder entry").path();
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
                (name, bytes)
            })
            .collect();
        seeds.sort();
        seeds
    }

    /// One random edit of `data` (the kinds libFuzzer's mutator makes most); `other` is spliced
    /// from.
    pub fn mutate(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8]) {
        let pos = |rng: &mut ChaCha8Rng, len: usize| rng.random_range(0..=len);
        match rng.random_range(0..8u8) {
            0 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] ^= 1 << rng.random_range(0..8u8);
            }
            1 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] =
                    [0, 0xff, b'0', b'9', b',', b'\n', 0x80, b' '][rng.random_range(0..8usize)];
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

    /// Runs `target` on every seed in `dir` and on `mutations` mutated seeds; panics naming the
    /// input that made the target panic and the RNG seed that replays it. The RNG seed comes
    /// from `ALLOT_TEST_SEED` (random when it is not set), as for every randomized test.
    pub fn run(name: &str, target: fn(&[u8]), dir: &Path, mutations: usize) {
        let seeds = corpus(dir);
        assert!(
            !seeds.is_empty(),
            "{name} has no seeds in {}",
            dir.display()
        );
        for (seed, bytes) in &seeds {
            let result = std::panic::catch_unwind(|| target(bytes));
            assert!(result.is_ok(), "{name} panicked on seed {seed}");
        }
        let rng_seed: u64 = match std::env::var("ALLOT_TEST_SEED") {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("ALLOT_TEST_SEED={text:?} is not a number")),
            Err(_) => rand::random(),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        for i in 0..mutations {
            let (_, base) = &seeds[rng.random_range(0..seeds.len())];
            let (_, other) = &seeds[rng.random_range(0..seeds.len())];
            let mut data = base.clone();
            for _ in 0..rng.random_range(1..=4u8) {
                mutate(&mut rng, &mut data, other);
            }
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(
                result.is_ok(),
                "{name} panicked on mutation {i} (replay with ALLOT_TEST_SEED={rng_seed}): {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}
