//! Power cuts. A workload runs on the power-cut file system (`allot_engine::fs::powercut`):
//! threads booking, cancelling and rescheduling through the engine (group commits of several
//! appenders), small segments (rolls) and frequent derived-data flushes, signed checkpoints,
//! snapshots, and a fair allocation run with its blob and output folder. The power is cut at a
//! random file-system operation; the machine comes back with what a disk could hold (unsynced
//! pages and folder changes lost at random); the folder is opened read-only, then for writing,
//! verified, and the engine rebuilt; then more work and a second cut on the recovered folder.
//! After every cut:
//!
//! - every acknowledged log entry is there, at its index, with its bytes (read-only too);
//! - `verify` passes, and the derived data was not discarded;
//! - the last acknowledged checkpoint is kept (or a later one) and matches the log;
//! - the inventory rebuilt from the log equals an independent fold of the log's entries, and
//!   each acknowledged appointment is as acknowledged (or as its in-flight call made it);
//! - the inventory from the newest snapshot equals a full replay, and that snapshot covers at
//!   least the last acknowledged one;
//! - an acknowledged allocation run re-verifies from the log, and its output folder is whole.
//!
//! `ALLOT_TEST_SEED` replays the workload, the cut points and what survives each cut (thread
//! interleavings are the machine's); `ALLOT_POWER_CUTS` sets the number of cuts (at least 1,000
//! by default). `every_sync_point_is_needed` removes one sync point at a time and shows that the
//! same checks then fail.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use allot_engine::allocation::{RunRequest, verify_with_log};
use allot_engine::appointments::{
    AppointmentId, AppointmentStatus, Booking, Engine, EngineOptions, ManualClock, SlotRef,
};
use allot_engine::fair::{self, Fairs, Params};
use allot_engine::fs::powercut::PowerCutFs;
use allot_engine::fs::{DataDir, FileSystem, SyncPoint};
use allot_engine::input::Table;
use allot_engine::log::decision::{CancelledBy, Outcome};
use allot_engine::log::merkle::Hash;
use allot_engine::log::verify::verify;
use allot_engine::log::{Decision, Digest, Log, LogOptions, Record};
use allot_testkit::TestSeed;
use rand::RngExt as _;
use rand::rngs::StdRng;

use crate::appointments::{MONDAY_7AM, small_city};

const DATA: &str = "/data";
const OUT: &str = "/out/run";
const BOOKING_THREADS: usize = 4;
const BOOKINGS_PER_THREAD: usize = 40;

fn log_options() -> LogOptions {
    LogOptions {
        origin: Some("power-cut.test/log".into()),
        // Rolls every few groups, flushes every few dozen entries.
        segment_bytes: 24 << 10,
        flush_entries: 29,
        ..LogOptions::default()
    }
}

fn engine_options() -> EngineOptions {
    EngineOptions {
        snapshot_after: None,
        ..EngineOptions::default()
    }
}

/// An appointment as the log left it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Appt {
    Booked(String),
    Cancelled,
}

/// What the workload was told is durable.
#[derive(Debug, Default)]
struct Acks {
    /// Acknowledged entries: index -> leaf hash (`None` if it could not be read back).
    entries: BTreeMap<u64, Option<Hash>>,
    /// Each appointment as acknowledged, and what an unanswered call may have made of it.
    appts: HashMap<AppointmentId, (Appt, Option<Appt>)>,
    checkpoint: Option<(u64, Hash)>,
    snapshot: Option<u64>,
    run: Option<String>,
    schedule: bool,
    log_opened: bool,
}

type Shared = Arc<Mutex<Acks>>;

fn acks(shared: &Shared) -> std::sync::MutexGuard<'_, Acks> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records acknowledged entries with their leaf hashes, read back from the live log.
fn ack_entries(shared: &Shared, log: &Log, range: Option<std::ops::Range<u64>>) {
    let Some(range) = range else { return };
    let mut a = acks(shared);
    for i in range {
        a.entries
            .insert(i, log.read(i).ok().map(|raw| raw.leaf_hash()));
    }
}

/// A small fair: three fairs, 60 applicants with their own lottery numbers (its outcomes are
/// one batch of several 4 KiB pages, so a cut can tear it into zeros and data).
fn fair_files() -> fair::FairFiles {
    let fairs =
        "fair,district,category,stalls\nF1,D1,food,20\nF1,D1,*,5\nF2,D2,food,10\nF3,D1,*,10\n";
    let mut applicants = String::from("applicant,category,tier,lottery,choices\n");
    for i in 0..60 {
        applicants.push_str(&format!(
            "A{i:02},food,{},{},F{};F{}\n",
            i % 3,
            (i * 7919) % 1000,
            1 + i % 3,
            1 + (i + 1) % 3
        ));
    }
    fair::read_tables(
        &Table::from_bytes("fairs.csv", fairs.as_bytes().to_vec()).unwrap(),
        &Table::from_bytes("applicants.csv", applicants.into_bytes()).unwrap(),
    )
    .unwrap()
}

/// One thread's bookings, cancellations and reschedules, until `ops` are done or the engine
/// fails (the power is off).
fn booker(
    engine: &Engine,
    log: &Log,
    shared: &Shared,
    thread: usize,
    ops: usize,
    rng: &mut StdRng,
) {
    let slots = engine.schedule().slot_count();
    let mut mine: Vec<AppointmentId> = Vec::new();
    for k in 0..ops {
        let patient = format!("p{thread}-{}", k % 4);
        let slot = SlotRef(rng.random_range(0..slots));
        let choice = rng.random_range(0..10);
        let mut in_flight = None;
        let result = if choice < 2 && !mine.is_empty() {
            let a = mine[rng.random_range(0..mine.len())];
            in_flight = Some(a);
            if let Some(entry) = acks(shared).appts.get_mut(&a) {
                entry.1 = Some(Appt::Cancelled);
            }
            engine
                .begin_cancel("umias", a, CancelledBy::Patient)
                .and_then(|p| p.wait_entries())
                .map(|((), range)| {
                    ack_entries(shared, log, range);
                    acks(shared).appts.insert(a, (Appt::Cancelled, None));
                })
        } else if choice < 4 && !mine.is_empty() {
            let a = mine[rng.random_range(0..mine.len())];
            in_flight = Some(a);
            let to = Appt::Booked(engine.slot_id(slot));
            if let Some(entry) = acks(shared).appts.get_mut(&a) {
                entry.1 = Some(to.clone());
            }
            engine
                .begin_reschedule("umias", a, slot, None)
                .and_then(|p| p.wait_entries())
                .map(|(_, range)| {
                    ack_entries(shared, log, range);
                    acks(shared).appts.insert(a, (to, None));
                })
        } else if choice < 6 {
            engine
                .begin_hold("umias", &patient, slot, None)
                .and_then(|p| p.wait_entries())
                .and_then(|(held, range)| {
                    ack_entries(shared, log, range);
                    engine.begin_book("umias", Booking::Hold(held.hold))
                })
                .and_then(|p| p.wait_entries())
                .map(|(booked, range)| {
                    ack_entries(shared, log, range);
                    mine.push(booked.appointment);
                    let state = Appt::Booked(engine.slot_id(booked.slot));
                    acks(shared).appts.insert(booked.appointment, (state, None));
                })
        } else {
            let booking = Booking::Slot {
                patient: &patient,
                slot,
            };
            engine
                .begin_book("umias", booking)
                .and_then(|p| p.wait_entries())
                .map(|(booked, range)| {
                    ack_entries(shared, log, range);
                    mine.push(booked.appointment);
                    let state = Appt::Booked(engine.slot_id(booked.slot));
                    acks(shared).appts.insert(booked.appointment, (state, None));
                })
        };
        match result {
            Err(
                allot_engine::appointments::Error::Failed(_)
                | allot_engine::appointments::Error::Log(_),
            ) => return,
            // Refused (taken, overlapping, ...): nothing changed.
            Err(_) => {
                if let Some(a) = in_flight
                    && let Some(entry) = acks(shared).appts.get_mut(&a)
                {
                    entry.1 = None;
                }
            }
            Ok(()) => {}
        }
    }
}

/// Appends batches of 4 to 24 larger records straight to the log (decisions of no domain's
/// state), so that groups span several pages and a cut can tear them.
fn bulk(log: &Log, shared: &Shared, batches: usize, rng: &mut StdRng) {
    let run = Digest::of(b"bulk");
    for b in 0..batches {
        let n = rng.random_range(4..=24);
        let records: Vec<Record> = (0..n)
            .map(|i| {
                Record::new(
                    MONDAY_7AM,
                    "bulk",
                    format!("bulk-{b}-{i}-{}", "x".repeat(200)),
                    Outcome {
                        run,
                        assigned: Some(format!("place-{i}")),
                        rank: Some(i),
                    },
                )
            })
            .collect();
        match log.append_batch(&records) {
            Ok(range) => ack_entries(shared, log, Some(range)),
            Err(_) => return,
        }
    }
}

/// Checkpoints, snapshots and (in the first round) one allocation run, spread over the
/// bookings (each step waits for the log to grow, or for the bookers to finish).
fn admin(engine: &Engine, log: &Log, shared: &Shared, round: usize, done: &AtomicBool) {
    let start = log.size();
    for step in 0..4 {
        while log.size() < start + 30 * (step + 1) && !done.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        match log.sign_checkpoint() {
            Ok(signed) => {
                acks(shared).checkpoint = Some((signed.checkpoint.size, signed.checkpoint.root))
            }
            Err(_) => return,
        }
        match engine.snapshot() {
            Ok(info) => {
                ack_entries(shared, log, Some(info.entry..info.entry + 1));
                acks(shared).snapshot = Some(info.covers);
            }
            Err(_) => return,
        }
        if round == 0 && step == 1 {
            let request = RunRequest {
                log,
                beacon: None,
                actor: "fairs",
                out: Path::new(OUT),
            };
            match fair::run(&fair_files(), &Params::default(), &request, &mut |_| {}) {
                Ok(published) => {
                    let info = &published.info;
                    let closed = info.closed_index;
                    let outcomes = info.index - info.run.counts.participants;
                    ack_entries(shared, log, Some(closed..closed + 1));
                    ack_entries(shared, log, Some(outcomes..info.index + 1));
                    acks(shared).run = Some(hex::encode(info.id.0));
                }
                Err(_) => return,
            }
        }
    }
}

/// Runs one round of the workload on `fs` (creating the city in round 0).
fn workload(fs: &PowerCutFs, shared: &Shared, round: usize, seed: u64) {
    let data = DataDir::on(Arc::new(fs.clone()), DATA);
    let Ok(log) = Log::open(&data, log_options()) else {
        return;
    };
    acks(shared).log_opened = true;
    let log = Arc::new(log);
    let clock = Arc::new(ManualClock::new(MONDAY_7AM));
    let engine = if round == 0 {
        let city = small_city(3);
        match Engine::create_with_log(
            log.clone(),
            &city.input(),
            b"doctor,from,until\n",
            "loader",
            engine_options(),
            clock,
        ) {
            Ok(engine) => engine,
            Err(_) => return,
        }
    } else {
        match Engine::open_with_log(log.clone(), engine_options(), clock) {
            Ok((engine, _)) => engine,
            Err(_) => return,
        }
    };
    acks(shared).schedule = true;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (engine, log, done) = (&engine, &log, &done);
        scope.spawn(move || admin(engine, log, shared, round, done));
        scope.spawn(move || {
            let mut rng = rand::SeedableRng::seed_from_u64(seed ^ 0xb01c);
            bulk(log, shared, 8, &mut rng);
        });
        let bookers: Vec<_> = (0..BOOKING_THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut rng = rand::SeedableRng::seed_from_u64(seed ^ (thread as u64 + 1));
                    booker(engine, log, shared, thread, BOOKINGS_PER_THREAD, &mut rng);
                })
            })
            .collect();
        for b in bookers {
            let _ = b.join();
        }
        done.store(true, Ordering::SeqCst);
    });
}

/// The appointments an independent fold of the log's entries gives.
fn fold(log: &Log) -> Result<BTreeMap<AppointmentId, Appt>, String> {
    let mut out = BTreeMap::new();
    for raw in log.entries(0..log.size()).map_err(|e| e.to_string())? {
        let entry = raw
            .map_err(|e| e.to_string())?
            .decode()
            .map_err(|e| e.to_string())?;
        let id = |s: &str| {
            s.parse::<AppointmentId>()
                .map_err(|()| format!("bad id {s}"))
        };
        match entry.record.decision {
            Decision::SlotBooked(d) => {
                let again = out.insert(id(&d.appointment)?, Appt::Booked(d.slot));
                if again.is_some() {
                    return Err(format!("appointment {} booked twice", d.appointment));
                }
            }
            Decision::AppointmentCancelled(d) => {
                out.insert(id(&d.appointment)?, Appt::Cancelled);
            }
            Decision::Rescheduled(d) => {
                out.insert(id(&d.appointment)?, Appt::Booked(d.to_slot));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// What recovery met over a test's cuts.
#[derive(Debug, Default)]
struct Seen {
    torn_tails: usize,
    /// Torn groups that a complete trailer or data follows a zero block in (a page lost before
    /// a later one survived).
    zeros_then_data: usize,
}

/// Every check after a cut; `Err` names the first one that fails.
fn check(fs: &PowerCutFs, acked: &Acks, seen: &mut Seen) -> Result<(), String> {
    let data = DataDir::on(Arc::new(fs.clone()), DATA);
    // Read-only first, as an auditor might right after the power returns.
    match Log::open_read_only(&data) {
        Ok(log) => {
            check_entries(&log, acked, "read-only")?;
            if let Some(torn) = &log.report().torn_tail {
                seen.torn_tails += 1;
                let bytes = fs.read(&torn.path).unwrap_or_default();
                if zeros_then_data(&bytes, torn.offset as usize) {
                    seen.zeros_then_data += 1;
                }
            }
        }
        Err(e) if acked.log_opened => return Err(format!("read-only open: {e}")),
        Err(_) => {}
    }
    let log = Log::open(&data, log_options()).map_err(|e| format!("open: {e}"))?;
    if let Some(why) = &log.report().derived_rebuilt {
        return Err(format!("the derived data was discarded: {why}"));
    }
    check_entries(&log, acked, "writable")?;
    if let Some((size, root)) = acked.checkpoint {
        let kept = log
            .checkpoint()
            .ok_or("the acknowledged checkpoint is gone")?;
        if kept.checkpoint.size < size {
            return Err(format!(
                "the stored checkpoint has size {}, {size} was acknowledged",
                kept.checkpoint.size
            ));
        }
        if log.root_at(size).map_err(|e| e.to_string())? != root {
            return Err(format!(
                "the tree at the acknowledged size {size} has another root"
            ));
        }
    }
    drop(log);
    verify(&data).map_err(|e| format!("verify: {e}"))?;

    let log = Arc::new(Log::open(&data, log_options()).map_err(|e| format!("reopen: {e}"))?);
    let clock = || Arc::new(ManualClock::new(MONDAY_7AM));
    let (engine, report) = match Engine::open_with_log(log.clone(), engine_options(), clock()) {
        Ok(opened) => opened,
        Err(e) if acked.schedule => return Err(format!("engine: {e}")),
        Err(_) => return Ok(()),
    };
    if let Some(covers) = acked.snapshot
        && report.snapshot.is_none_or(|used| used < covers)
    {
        return Err(format!(
            "the snapshot covering {covers} entries was acknowledged, the engine used {:?} ({:?})",
            report.snapshot, report.warnings
        ));
    }
    let logged = fold(&log)?;
    for (id, state) in &logged {
        let view = engine
            .appointment(*id)
            .ok_or(format!("{id} is not in the inventory"))?;
        let found = match view.status {
            AppointmentStatus::Booked => Appt::Booked(engine.slot_id(view.slot)),
            AppointmentStatus::Cancelled => Appt::Cancelled,
            other => return Err(format!("{id} is {other:?}")),
        };
        if &found != state {
            return Err(format!(
                "{id}: the log says {state:?}, the inventory {found:?}"
            ));
        }
    }
    let booked = logged
        .values()
        .filter(|s| matches!(s, Appt::Booked(_)))
        .count() as u64;
    if engine.counts().busy != booked {
        return Err(format!(
            "{} busy slots, the log books {booked}",
            engine.counts().busy
        ));
    }
    for (id, (acked_state, maybe)) in &acked.appts {
        let now = logged
            .get(id)
            .ok_or(format!("acknowledged {id} is not in the log"))?;
        if now != acked_state && Some(now) != maybe.as_ref() {
            return Err(format!("{id} was acknowledged {acked_state:?}, is {now:?}"));
        }
    }
    if let Some(run) = &acked.run {
        let v = verify_with_log::<Fairs>(&log, run).map_err(|e| format!("run {run}: {e}"))?;
        if let Some(bad) = v.checks.iter().find(|c| !c.ok) {
            return Err(format!("run {run}: {bad:?}"));
        }
        let files = fs
            .files(Path::new(OUT))
            .map_err(|e| format!("{OUT}: {e}"))?;
        for name in ["assignment.csv", "cutoffs.csv", "summary.json"] {
            let path = format!("{OUT}/{name}");
            if !files
                .iter()
                .any(|(p, bytes)| *p == path && !bytes.is_empty())
            {
                return Err(format!("{path} is missing or empty"));
            }
        }
    }
    // The inventory from the snapshot is the one a full replay gives.
    let digest = engine.state_digest();
    drop(engine);
    drop(log);
    let copy = fs.copy();
    let folder = PathBuf::from(DATA).join("appointments");
    for name in copy.list_dir(&folder).unwrap_or_default() {
        if name.to_string_lossy().starts_with("snapshot-") {
            copy.remove_file(&folder.join(name))
                .map_err(|e| e.to_string())?;
        }
    }
    let data = DataDir::on(Arc::new(copy), DATA);
    let log = Arc::new(Log::open(&data, log_options()).map_err(|e| e.to_string())?);
    let (replayed, _) =
        Engine::open_with_log(log, engine_options(), clock()).map_err(|e| e.to_string())?;
    if replayed.state_digest() != digest {
        return Err("the inventory from the snapshot differs from a full replay".into());
    }
    Ok(())
}

/// Whether a segment's bytes after `from` hold an aligned 512-byte block of zeros (where it
/// starts after `from`, its part after it) with data after it.
fn zeros_then_data(bytes: &[u8], from: usize) -> bool {
    let Some(last) = bytes.iter().rposition(|&b| b != 0).filter(|&l| l > from) else {
        return false;
    };
    (from / 512 * 512..last).step_by(512).any(|block| {
        bytes[block.max(from)..(block + 512).min(last)]
            .iter()
            .all(|&b| b == 0)
    })
}

fn check_entries(log: &Log, acked: &Acks, how: &str) -> Result<(), String> {
    for (&index, leaf) in &acked.entries {
        let raw = log
            .read(index)
            .map_err(|e| format!("{how}: acknowledged entry {index}: {e}"))?;
        if leaf.is_some_and(|leaf| leaf != raw.leaf_hash()) {
            return Err(format!("{how}: entry {index} is not the one acknowledged"));
        }
    }
    Ok(())
}

/// Two rounds of work, each ended by a power cut at a random operation; checks after each.
/// Returns the number of cuts made.
fn trial(seed: u64, skip: Option<SyncPoint>, span: Span, seen: &mut Seen) -> Result<usize, String> {
    let Span {
        ops: ops_per_round,
        groups: groups_per_round,
    } = span;
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(seed);
    let mut fs = PowerCutFs::new();
    if let Some(point) = skip {
        fs.skip_sync(point);
    }
    let shared: Shared = Arc::default();
    for round in 0..2 {
        // A third of the cuts at any operation, a third as a group's write waits for its fsync,
        // and a third at one of a round's first groups (written over the tail that the last
        // recovery dropped).
        match rng.random_range(0..3) {
            0 => fs.cut_after(rng.random_range(1..=ops_per_round)),
            1 => fs.cut_at_sync(SyncPoint::LogGroup, rng.random_range(1..=groups_per_round)),
            _ => fs.cut_at_sync(SyncPoint::LogGroup, rng.random_range(1..=4)),
        }
        workload(&fs, &shared, round, rng.random());
        fs.cut();
        fs = fs.restart(rng.random());
        let acked = acks(&shared);
        check(&fs, &acked, seen).map_err(|e| format!("round {round}: {e}"))?;
    }
    Ok(2)
}

/// What one round takes without a cut: the range cuts are drawn from.
#[derive(Debug, Clone, Copy)]
struct Span {
    ops: u64,
    groups: u64,
}

fn span() -> Span {
    let fs = PowerCutFs::new();
    workload(&fs, &Arc::default(), 0, 1);
    Span {
        ops: fs.ops(),
        groups: fs.syncs().get(&SyncPoint::LogGroup).copied().unwrap_or(1),
    }
}

#[test]
fn acknowledged_decisions_survive_power_cuts() {
    let seed = TestSeed::new("acknowledged_decisions_survive_power_cuts");
    let cuts: usize = std::env::var("ALLOT_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let span = span();
    let mut rng = seed.rng(0);
    let mut made = 0;
    let mut trials = 0;
    let mut seen = Seen::default();
    while made < cuts {
        let trial_seed: u64 = rng.random();
        trials += 1;
        match trial(trial_seed, None, span, &mut seen) {
            Ok(n) => made += n,
            Err(e) => panic!("trial {trials} (seed {trial_seed}): {e}"),
        }
    }
    println!(
        "{made} power cuts in {trials} trials, {} file-system operations and {} group commits \
         per round; {} torn tails recovered, {} of them zeros followed by data",
        span.ops, span.groups, seen.torn_tails, seen.zeros_then_data
    );
    // The case recovery exists for must have been met, not only the easy ones.
    assert!(
        seen.zeros_then_data > 0,
        "no cut tore a group into zeros and data"
    );
}

/// Sync points this workload never reaches: the newest cosigned checkpoint and its history
/// (written like the signed checkpoint, whose points are tested here, but only by a server with
/// witnesses), and a monitor's state (its own machine's, not the log's).
const NOT_IN_THIS_WORKLOAD: &[SyncPoint] = &[
    SyncPoint::LogCosigned,
    SyncPoint::LogCosignedName,
    SyncPoint::LogCosignedHistory,
    SyncPoint::MonitorState,
];

/// Removes each sync point in turn: without any one of them, the checks above fail (each point's
/// first failure is printed). Most fail within a few trials; without `LogPreallocate` a torn
/// write must land on a tail that an earlier recovery dropped, which takes a few hundred (so the
/// search goes on for up to 6,000: a miss by chance is about one in 50,000).
#[test]
fn every_sync_point_is_needed() {
    let seed = TestSeed::new("every_sync_point_is_needed");
    let span = span();
    let mut rng = seed.rng(1);
    let mut missed = Vec::new();
    for &point in SyncPoint::ALL {
        if NOT_IN_THIS_WORKLOAD.contains(&point) {
            continue;
        }
        if crate::witness_power_cut::POINTS.contains(&point) {
            match crate::witness_power_cut::needed(point, &mut rng, 2000) {
                Some((t, e)) => println!("{}: failed after {t} trials: {e}", point.name()),
                None => missed.push(point.name()),
            }
            continue;
        }
        let mut found = None;
        for t in 0..6000 {
            let trial_seed: u64 = rng.random();
            if let Err(e) = trial(trial_seed, Some(point), span, &mut Seen::default()) {
                found = Some((t + 1, e));
                break;
            }
        }
        match found {
            Some((t, e)) => println!("{}: failed after {t} trials: {e}", point.name()),
            None => missed.push(point.name()),
        }
    }
    assert!(
        missed.is_empty(),
        "removing these syncs lost nothing: {missed:?}"
    );
}
