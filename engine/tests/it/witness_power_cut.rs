//! A witness through power cuts (`allot_engine::fs::powercut`): it cosigns a growing log's
//! checkpoints until the power is cut at a random file-system operation, and comes back with
//! what a disk could hold. After every cut it still has its key (once it cosigned anything), and
//! what it records for the log is at least the last checkpoint it cosigned, with that tree's
//! root: a witness that forgot would cosign a fork of what it vouched for.

use std::sync::{Arc, OnceLock};

use allot_engine::fs::powercut::PowerCutFs;
use allot_engine::fs::{DataDir, FileSystem, SyncPoint};
use allot_engine::log::{Checkpoint, Hash, Log, LogOptions, SigningKey};
use allot_engine::witness::{AddCheckpoint, Witness};
use allot_testkit::TestSeed;
use rand::RngExt as _;
use rand::rngs::StdRng;

const SIZE: u64 = 2_000;
const ROUND: usize = 25;

/// A log of `SIZE` entries, its key, and its roots at every size.
struct Fixture {
    _dir: tempfile::TempDir,
    log: Log,
    key: SigningKey,
    roots: Vec<Hash>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_seed("power-cut.test/witnessed", [3; 32]).unwrap();
        let options = LogOptions {
            signing_key: Some(key.clone()),
            ..LogOptions::default()
        };
        let log = Log::open(dir.path(), options).unwrap();
        for i in 0..SIZE {
            log.append(&crate::support::sample(i, 120)).unwrap();
        }
        let roots = (0..=SIZE).map(|n| log.root_at(n).unwrap()).collect();
        Fixture {
            _dir: dir,
            log,
            key,
            roots,
        }
    })
}

fn request(f: &Fixture, old: u64, size: u64) -> String {
    let body = Checkpoint {
        origin: f.key.name().to_owned(),
        size,
        root: f.roots[size as usize],
        extensions: Vec::new(),
    }
    .body();
    let proof = match old {
        0 => Vec::new(),
        old => f.log.consistency_proof(old, size).unwrap().path,
    };
    AddCheckpoint::to_body(old, &proof, &f.key.sign_note(&body).unwrap())
}

fn open(fs: &PowerCutFs) -> Option<Witness> {
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Witness::open(
        DataDir::on(fs, "/witness"),
        "w.test",
        &[fixture().key.verifier()],
    )
    .ok()
}

/// One round of submissions; returns the largest size cosigned.
fn submit(witness: &Witness, from: u64, rng: &mut StdRng) -> u64 {
    let f = fixture();
    let mut known = from;
    for _ in 0..ROUND {
        let size = (known + rng.random_range(0..60)).min(SIZE);
        match witness.add_checkpoint(request(f, known, size).as_bytes(), 1_800_000_000) {
            Ok(_) => known = size,
            Err(_) => break,
        }
    }
    known
}

fn trial(seed: u64, skip: Option<SyncPoint>, ops: u64) -> Result<(), String> {
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(seed);
    let mut fs = PowerCutFs::new();
    if let Some(point) = skip {
        fs.skip_sync(point);
    }
    let (mut acked, mut key) = (0, None);
    for round in 0..2 {
        fs.cut_after(rng.random_range(1..=ops));
        if let Some(witness) = open(&fs) {
            let made = witness.verifier();
            if key.as_ref().is_some_and(|k| *k != made) {
                return Err(format!(
                    "round {round}: the witness came back with another key"
                ));
            }
            let cosigned = submit(&witness, acked, &mut rng);
            if cosigned > acked {
                (acked, key) = (cosigned, Some(made));
            }
        }
        fs.cut();
        fs = fs.restart(rng.random());
        let witness = open(&fs).ok_or(format!("round {round}: the witness does not open"))?;
        if key.as_ref().is_some_and(|k| *k != witness.verifier()) {
            return Err(format!("round {round}: the key it cosigned with is gone"));
        }
        let seen = witness.seen(fixture().key.name());
        let (size, root) = seen.map_or((0, fixture().roots[0]), |s| (s.size, s.root));
        if size < acked || root != fixture().roots[size as usize] {
            return Err(format!(
                "round {round}: it cosigned size {acked}, and now records size {size}"
            ));
        }
        acked = size;
    }
    Ok(())
}

/// Operations of one round without a cut: the range cuts are drawn from.
fn ops() -> u64 {
    let fs = PowerCutFs::new();
    let witness = open(&fs).unwrap();
    submit(&witness, 0, &mut rand::SeedableRng::seed_from_u64(1));
    fs.ops()
}

#[test]
fn a_witness_keeps_what_it_cosigned_through_power_cuts() {
    let seed = TestSeed::new("a_witness_keeps_what_it_cosigned_through_power_cuts");
    let mut rng = seed.rng(0);
    let ops = ops();
    for t in 0..500 {
        let trial_seed: u64 = rng.random();
        if let Err(e) = trial(trial_seed, None, ops) {
            panic!("trial {t} (seed {trial_seed}): {e}");
        }
    }
}

/// The witness's sync points, for `power_cut::every_sync_point_is_needed`.
pub const POINTS: &[SyncPoint] = &[
    SyncPoint::WitnessKey,
    SyncPoint::WitnessKeyName,
    SyncPoint::WitnessState,
    SyncPoint::WitnessStateName,
];

/// Whether some trial fails without `point` (within `tries`); the trial count when it does.
pub fn needed(point: SyncPoint, rng: &mut StdRng, tries: usize) -> Option<(usize, String)> {
    let ops = ops();
    (0..tries).find_map(|t| {
        trial(rng.random(), Some(point), ops)
            .err()
            .map(|e| (t + 1, e))
    })
}
