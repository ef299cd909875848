//! The durable appointment engine: a restart rebuilds exactly the same inventory from the log
//! (from the start, or from a snapshot and the log's tail), and bookings acknowledged before a
//! SIGKILL survive it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allot_engine::appointments::{
    AppointmentId, AppointmentStatus, Booking, Clock, DoctorRef, Engine, EngineOptions, Error,
    ManualClock, SlotRef, SlotStatus,
};
use allot_engine::log::decision::{Attendance, CancelledBy};
use allot_engine::log::{Log, LogOptions, Timestamp};
use allot_testkit::TestSeed;
use rand::RngExt as _;
use rand::rngs::StdRng;

use crate::appointments::{MONDAY_7AM, small_city};
use crate::support::Store;

fn options() -> EngineOptions {
    EngineOptions {
        snapshot_after: None,
        ..EngineOptions::default()
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(MONDAY_7AM))
}

/// Loads the small city (with two absences) into `dir`.
fn create(dir: &Path, seed: u64) -> Engine {
    let city = small_city(seed);
    let absences = city.absences_csv(seed, 2);
    Engine::create(
        dir,
        &city.input(),
        absences.as_bytes(),
        "loader",
        options(),
        clock(),
    )
    .unwrap()
}

/// [`create`] on `store`.
fn create_on(store: &Store, dir: &Path, seed: u64) -> Engine {
    let city = small_city(seed);
    let absences = city.absences_csv(seed, 2);
    let log = Arc::new(store.open_with(dir, LogOptions::default()));
    Engine::create_with_log(
        log,
        &city.input(),
        absences.as_bytes(),
        "loader",
        options(),
        clock(),
    )
    .unwrap()
}

fn open_on(
    store: &Store,
    dir: &Path,
    clock: Arc<ManualClock>,
) -> Result<(Engine, allot_engine::appointments::OpenReport), Error> {
    let log = Arc::new(store.open_with(dir, LogOptions::default()));
    Engine::open_with_log(log, options(), clock)
}

fn reopen_on(
    store: &Store,
    dir: &Path,
    at: Timestamp,
) -> (Engine, allot_engine::appointments::OpenReport) {
    open_on(store, dir, Arc::new(ManualClock::new(at))).unwrap()
}

fn reopen(dir: &Path, at: Timestamp) -> (Engine, allot_engine::appointments::OpenReport) {
    Engine::open(dir, options(), Arc::new(ManualClock::new(at))).unwrap()
}

/// Every appointment as the engine shows it.
fn appointments(engine: &Engine, ids: &[AppointmentId]) -> Vec<String> {
    ids.iter()
        .map(|&id| format!("{:?}", engine.appointment(id)))
        .collect()
}

/// A seeded mix of every operation: holds, bookings (held and direct), releases, cancellations,
/// reschedules, attendance, expiries, an absence with re-offers, accepted and declined offers.
fn workload(
    engine: &Engine,
    clock: &ManualClock,
    rng: &mut StdRng,
    steps: usize,
) -> Vec<AppointmentId> {
    let s = engine.schedule().clone();
    let mut next = move |n: usize| rng.random_range(0..n.max(1));
    let mut holds = Vec::new();
    let mut appts: Vec<AppointmentId> = Vec::new();
    for step in 0..steps {
        let patient = format!("p{}", next(40));
        let slot = SlotRef(next(s.slot_count() as usize) as u32);
        let outcome = match next(10) {
            0 | 1 => engine
                .hold("umias", &patient, slot, None)
                .map(|h| holds.push(h.hold)),
            2 | 3 if !holds.is_empty() => {
                let h = holds.swap_remove(next(holds.len()));
                engine
                    .book("umias", Booking::Hold(h))
                    .map(|b| appts.push(b.appointment))
            }
            4 => engine
                .book(
                    "umias",
                    Booking::Slot {
                        patient: &patient,
                        slot,
                    },
                )
                .map(|b| appts.push(b.appointment)),
            5 if !appts.is_empty() => {
                engine.cancel("umias", appts[next(appts.len())], CancelledBy::Patient)
            }
            6 if !appts.is_empty() => engine
                .reschedule("umias", appts[next(appts.len())], slot, None)
                .map(drop),
            7 if !holds.is_empty() => engine.release("umias", holds.swap_remove(0)),
            8 if !appts.is_empty() => {
                engine.record_attendance("clinic", appts[next(appts.len())], Attendance::Fulfilled)
            }
            _ => {
                clock.advance(Duration::from_secs(60 * next(8) as u64));
                engine.expire_holds().map(drop)
            }
        };
        match outcome {
            Ok(())
            | Err(
                Error::SlotTaken { .. }
                | Error::Overlap { .. }
                | Error::SlotStarted { .. }
                | Error::HoldExpired { .. }
                | Error::UnknownHold(_)
                | Error::WrongStatus { .. }
                | Error::BadRequest { .. },
            ) => {}
            Err(e) => panic!("step {step}: {e}"),
        }
        if step == steps / 2 {
            // A busy doctor falls ill for the rest of day 3.
            let doctor = (0..s.doctors.len())
                .map(|d| DoctorRef(d as u32))
                .max_by_key(|&d| {
                    s.doctor_day(d, 3)
                        .filter(|&x| engine.slot_status(SlotRef(x)) != SlotStatus::Free)
                        .count()
                })
                .unwrap();
            let day = s.date(3).start();
            let out = engine
                .mark_absence(
                    "registry",
                    doctor,
                    day.add_minutes(9 * 60),
                    day.add_minutes(24 * 60),
                )
                .unwrap();
            for (i, r) in out.reoffered.iter().enumerate() {
                if i % 2 == 0 {
                    engine.accept_offer("umias", r.appointment).unwrap();
                } else {
                    engine
                        .cancel("umias", r.appointment, CancelledBy::Patient)
                        .unwrap();
                }
            }
        }
    }
    appts
}

/// On both stores (see `backends.rs`).
pub(crate) fn restart_rebuilds_the_same_inventory_from_the_log_and_from_a_snapshot(store: &Store) {
    let seed =
        TestSeed::new("restart_rebuilds_the_same_inventory_from_the_log_and_from_a_snapshot");
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let schedule_digest;
    let (digest, views, ids, at) = {
        schedule_digest = create_on(store, dir.path(), 21).schedule_digest();
        let engine = open_on(store, dir.path(), clock.clone()).unwrap().0;
        let ids = workload(&engine, &clock, &mut seed.rng(21), 600);
        assert!(ids.len() > 20, "{}", ids.len());
        (
            engine.state_digest(),
            appointments(&engine, &ids),
            ids,
            clock.now(),
        )
    };
    // From the log alone.
    let (engine, report) = reopen_on(store, dir.path(), at);
    assert_eq!(report.snapshot, None);
    assert_eq!(engine.schedule_digest(), schedule_digest);
    assert_eq!(engine.state_digest(), digest);
    assert_eq!(appointments(&engine, &ids), views);

    // A snapshot, more work, and a restart from the snapshot and the tail.
    let info = engine.snapshot().unwrap();
    assert_eq!(engine.state_digest(), digest, "a snapshot changes nothing");
    let clock2 = Arc::new(ManualClock::new(at));
    drop(engine);
    let engine = open_on(store, dir.path(), clock2.clone()).unwrap().0;
    assert_eq!(engine.state_digest(), digest);
    let more = workload(&engine, &clock2, &mut seed.rng(22), 300);
    let digest2 = engine.state_digest();
    let all: Vec<AppointmentId> = ids.iter().chain(&more).copied().collect();
    let views2 = appointments(&engine, &all);
    let at2 = clock2.now();
    drop(engine);
    let (engine, report) = reopen_on(store, dir.path(), at2);
    assert_eq!(report.snapshot, Some(info.covers));
    assert!(
        report.replayed > 0 && report.warnings.is_empty(),
        "{report:?}"
    );
    assert_eq!(engine.state_digest(), digest2);
    assert_eq!(appointments(&engine, &all), views2);
    drop(engine);

    // A damaged snapshot is not used: the log alone gives the same inventory (on PostgreSQL,
    // the store's copy of the snapshot and the log).
    let mut bytes = std::fs::read(&info.path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&info.path, bytes).unwrap();
    let (engine, report) = reopen_on(store, dir.path(), at2);
    let from_store = matches!(store, Store::Postgres { .. }).then_some(info.covers);
    assert_eq!(report.snapshot, from_store);
    assert!(report.warnings[0].contains("hashes to"), "{report:?}");
    assert_eq!(engine.state_digest(), digest2);
}

#[test]
fn loading_twice_or_opening_an_empty_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Engine::open(dir.path(), options(), clock()).unwrap_err();
    assert!(matches!(err, Error::NotLoaded(_)), "{err}");
    drop(create(dir.path(), 23));
    let city = small_city(23);
    let err = Engine::create(
        dir.path(),
        &city.input(),
        b"doctor,from,until\n",
        "x",
        options(),
        clock(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyLoaded { .. }), "{err}");
    // Bad absences: nothing is written.
    let empty = tempfile::tempdir().unwrap();
    let err = Engine::create(
        empty.path(),
        &city.input(),
        b"doctor,from,until\nnobody,2025-03-03,2025-03-04\n",
        "x",
        options(),
        clock(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "absences.csv:2: doctor: no doctor 'nobody' in the doctors file"
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

/// On both stores (see `backends.rs`).
pub(crate) fn concurrent_durable_bookings_replay_to_the_same_inventory(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    drop(create_on(store, dir.path(), 24));
    let (engine, _) = open_on(store, dir.path(), clock()).unwrap();
    let s = engine.schedule().clone();
    let contested: Vec<SlotRef> = (0..s.slot_count())
        .step_by(7)
        .take(200)
        .map(SlotRef)
        .collect();
    let booked = Mutex::new(HashMap::new());
    std::thread::scope(|scope| {
        for t in 0..12 {
            let (engine, contested, booked) = (&engine, &contested, &booked);
            scope.spawn(move || {
                for (k, &slot) in contested.iter().enumerate().skip(t * 3) {
                    let patient = format!("t{t}-{k}");
                    match engine.book(
                        "umias",
                        Booking::Slot {
                            patient: &patient,
                            slot,
                        },
                    ) {
                        Ok(b) => {
                            let prev = booked
                                .lock()
                                .unwrap()
                                .insert(slot, (b.appointment, patient));
                            assert!(prev.is_none(), "{slot} booked twice");
                        }
                        Err(Error::SlotTaken { .. } | Error::SlotStarted { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    let digest = engine.state_digest();
    let booked = booked.into_inner().unwrap();
    assert!(booked.len() > 150, "{}", booked.len());
    drop(engine);
    let (engine, _) = reopen_on(store, dir.path(), MONDAY_7AM);
    assert_eq!(engine.state_digest(), digest);
    for (slot, (appt, patient)) in booked {
        let v = engine.appointment(appt).unwrap();
        assert_eq!(
            (v.slot, v.patient.as_str(), v.status),
            (slot, patient.as_str(), AppointmentStatus::Booked)
        );
    }
}

const CHILD: &str = "ALLOT_APPOINTMENTS_CRASH_CHILD";
const RUN: &str = "ALLOT_APPOINTMENTS_CRASH_RUN";

#[test]
fn acknowledged_bookings_survive_sigkill() {
    match std::env::var_os(CHILD) {
        Some(dir) => crash_child(Path::new(&dir)),
        None => crash_parent(),
    }
}

/// Books free slots from several threads, printing each acknowledged booking, and snapshots
/// now and then, until killed.
fn crash_child(dir: &Path) {
    let opts = EngineOptions {
        snapshot_after: Some(200),
        ..EngineOptions::default()
    };
    let (engine, _) = Engine::open(dir, opts, clock()).expect("child opens");
    let engine = Arc::new(engine);
    // Distinct per run (the parent draws it from the test's seed).
    let seed: u64 = std::env::var(RUN)
        .ok()
        .and_then(|r| r.parse().ok())
        .expect("the parent names the run");
    let mut threads = Vec::new();
    for t in 0..6u64 {
        let engine = engine.clone();
        threads.push(std::thread::spawn(move || {
            let s = engine.schedule().clone();
            let mut k = seed * 31 + t;
            loop {
                k = k
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let slot = SlotRef(((k >> 33) % u64::from(s.slot_count())) as u32);
                let patient = format!("c{seed}-{t}-{}", k % 1000);
                match engine.book(
                    "umias",
                    Booking::Slot {
                        patient: &patient,
                        slot,
                    },
                ) {
                    Ok(b) => println!("ack {} {} {patient}", b.appointment, slot.0),
                    Err(
                        Error::SlotTaken { .. } | Error::Overlap { .. } | Error::SlotStarted { .. },
                    ) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let snapshots = engine.clone();
    threads.push(std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(30));
            snapshots.snapshot().expect("snapshot");
        }
    }));
    for t in threads {
        let _ = t.join();
    }
}

fn crash_parent() {
    let dir = tempfile::tempdir().unwrap();
    drop(create(dir.path(), 25));
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashMap<String, (u32, String)> = HashMap::new();
    let seed = TestSeed::new("acknowledged_bookings_survive_sigkill");
    let mut rng = seed.rng(0);
    for round in 0..8 {
        let mut child = Command::new(&exe)
            .args([
                "appointments_durable::acknowledged_bookings_survive_sigkill",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, dir.path())
            .env(RUN, (seed.value() % 1_000_000 + round).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let started = Instant::now();
        while lines.lock().unwrap().len() < 20 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: no bookings"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for line in lines.lock().unwrap().iter() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 4 && f[0] == "ack" {
                acked.insert(f[1].to_owned(), (f[2].parse().unwrap(), f[3].to_owned()));
            }
        }
        let (engine, report) = reopen(dir.path(), MONDAY_7AM);
        for (id, (slot, patient)) in &acked {
            let v = engine
                .appointment(id.parse().unwrap())
                .unwrap_or_else(|| panic!("round {round}: acknowledged {id} lost ({report:?})"));
            assert_eq!(
                (v.slot, v.patient.as_str()),
                (SlotRef(*slot), patient.as_str())
            );
            assert_eq!(v.status, AppointmentStatus::Booked);
        }
        let digest = engine.state_digest();
        drop(engine);
        // The log verifies, and a second restart agrees with the first.
        allot_engine::log::verify::verify(dir.path()).unwrap();
        assert_eq!(reopen(dir.path(), MONDAY_7AM).0.state_digest(), digest);
    }
    assert!(acked.len() > 100, "{}", acked.len());
    let log = Log::open_read_only(dir.path()).unwrap();
    assert!(log.size() > acked.len() as u64);
}

#[test]
fn a_log_shared_with_other_domains_rebuilds_the_same_inventory() {
    use allot_engine::log::decision::{ApplicationsClosed, Domain};
    use allot_engine::log::{Digest, LogOptions, Record};

    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), LogOptions::default()).unwrap());
    let city = small_city(26);
    let engine = Engine::create_with_log(
        log.clone(),
        &city.input(),
        b"doctor,from,until\n",
        "loader",
        options(),
        clock(),
    )
    .unwrap();
    let fairs = Record::new(
        MONDAY_7AM,
        "fair-admin",
        "2030-spring",
        ApplicationsClosed {
            domain: Domain::Fairs,
            applications: 3,
            set_digest: Digest([7; 32]),
        },
    );
    for k in 0..20u32 {
        log.append(&fairs).unwrap();
        engine
            .book(
                "umias",
                Booking::Slot {
                    patient: &format!("p{k}"),
                    slot: SlotRef(k * 5),
                },
            )
            .unwrap();
    }
    let digest = engine.state_digest();
    drop(engine);
    let (engine, report) = Engine::open_with_log(log.clone(), options(), clock()).unwrap();
    assert_eq!(report.replayed, 40);
    assert_eq!(engine.state_digest(), digest);
    assert_eq!(engine.counts().busy, 20);
}

/// The small city with bookings from twelve threads on `store`; the log's size after.
pub(crate) fn booked_city(store: &Store, dir: &Path) -> (Engine, u64) {
    drop(create_on(store, dir, 25));
    let (engine, _) = open_on(store, dir, clock()).unwrap();
    let slots = engine.schedule().slot_count();
    std::thread::scope(|scope| {
        for t in 0..12u32 {
            let engine = &engine;
            scope.spawn(move || {
                for k in (t..slots).step_by(97).take(20) {
                    let patient = format!("t{t}-{k}");
                    let booking = Booking::Slot {
                        patient: &patient,
                        slot: SlotRef(k),
                    };
                    match engine.book("umias", booking) {
                        Ok(_) | Err(Error::SlotTaken { .. } | Error::SlotStarted { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    let size = engine.log().unwrap().size();
    (engine, size)
}

/// The engine on `store` opened on the folder `dir` (new).
pub(crate) fn open_on_fresh(
    store: &Store,
    dir: &Path,
) -> (Engine, allot_engine::appointments::OpenReport) {
    reopen_on(store, dir, MONDAY_7AM)
}
