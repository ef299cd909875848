//! The appointment engine through its public API: find against a brute-force ranking, the
//! hold/book/cancel life cycle, hold expiry on a controlled clock, reschedule failure paths,
//! races for the same slots, absences, and log failures.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::schedule::{ClinicRef, km};
use allot_engine::appointments::{
    Ack, AppointmentStatus, Booking, Clock, DecisionSink, Engine, EngineOptions, Error, FindQuery,
    LocalTime, ManualClock, MemorySink, SlotRef, SlotStatus, Weights,
};
use allot_engine::log::decision::{Attendance, CancelledBy};
use allot_engine::log::{Decision, Digest, Record, Timestamp};
use allot_testkit::TestSeed;
use rand::RngExt as _;

/// Monday 2025-03-03, 07:00 in Moscow (04:00 UTC): before any slot of the horizon starts.
pub const MONDAY_7AM: Timestamp = Timestamp::from_unix_micros(1_740_974_400_000_000);

pub fn small_city(seed: u64) -> City {
    City::generate(&CitySpec {
        days: 7,
        ..CitySpec::scaled(seed, 0.004)
    })
}

pub fn options() -> EngineOptions {
    EngineOptions {
        // Every clinic is a candidate, so the brute force needs no nearest-clinic rule.
        nearest: 1000,
        ..EngineOptions::default()
    }
}

/// An in-memory engine on `city` that keeps its decisions, with a controlled clock.
pub fn memory_engine(city: &City) -> (Engine, Arc<MemorySink>, Arc<ManualClock>) {
    let sink = Arc::new(MemorySink::default());
    let clock = Arc::new(ManualClock::new(MONDAY_7AM));
    let schedule = Arc::new(city.input().build().unwrap());
    let engine = Engine::new(
        schedule,
        Digest([0; 32]),
        sink.clone(),
        clock.clone(),
        options(),
    );
    (engine, sink, clock)
}

fn kinds(sink: &MemorySink) -> Vec<&'static str> {
    sink.records
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.decision.name())
        .collect()
}

fn last(sink: &MemorySink) -> Record {
    sink.records.lock().unwrap().last().unwrap().clone()
}

/// Free slots of a specialty at a clinic on a horizon day, by the public slot states.
fn free_slots(engine: &Engine, clinic: usize, specialty: usize, day: u32) -> Vec<SlotRef> {
    let s = engine.schedule();
    let mut out = Vec::new();
    for (d, doc) in s.doctors.iter().enumerate() {
        if doc.clinic.index() != clinic || doc.specialty.index() != specialty {
            continue;
        }
        for n in s.doctor_day(allot_engine::appointments::DoctorRef(d as u32), day) {
            if engine.slot_status(SlotRef(n)) == SlotStatus::Free {
                out.push(SlotRef(n));
            }
        }
    }
    out
}

/// The ranking by its definition, over every free slot: per clinic-day the earliest slot in
/// the window, scored, best `count` first.
fn brute_force(engine: &Engine, q: &FindQuery, now: LocalTime) -> Vec<(SlotRef, f64)> {
    let s = engine.schedule();
    let w = engine.options().weights;
    let start = q.from.unwrap_or(now).max(now.add_minutes(1));
    let end = q.until.unwrap_or(s.horizon().end);
    let today = s.day_of(now);
    let mut best: HashMap<(usize, u32), (LocalTime, SlotRef)> = HashMap::new();
    for n in 0..s.slot_count() {
        let slot = SlotRef(n);
        let i = s.slot(slot);
        if i.specialty != q.specialty
            || engine.slot_status(slot) != SlotStatus::Free
            || i.start < start
            || i.start >= end
        {
            continue;
        }
        let key = (i.clinic.index(), i.day);
        let e = best.entry(key).or_insert((i.start, slot));
        if i.start < e.0 {
            *e = (i.start, slot);
        }
    }
    let mut scored: Vec<(f64, usize, u32, SlotRef)> = best
        .into_iter()
        .map(|((c, day), (_, slot))| {
            let (used, avail) = engine.clinic_day_load(ClinicRef(c as u32), day);
            let preferred = q.attached.is_some_and(|a| a.index() == c)
                || q.preferred.iter().any(|p| p.index() == c);
            let score = w.travel_per_km * f64::from(km(q.home, s.clinics[c].xy))
                + w.wait_per_day * (i64::from(day) - today).max(0) as f64
                + w.load * f64::from(used) / f64::from(avail.max(1))
                - if preferred { w.preferred } else { 0.0 };
            (score, c, day, slot)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    scored
        .into_iter()
        .take(q.count)
        .map(|(score, _, _, slot)| (slot, score))
        .collect()
}

#[test]
fn find_matches_a_brute_force_ranking_and_explains_scores() {
    let city = small_city(11);
    let (engine, _, clock) = memory_engine(&city);
    let s = engine.schedule().clone();
    let seed = TestSeed::new("find_matches_a_brute_force_ranking_and_explains_scores");
    let mut rng = seed.rng(0);
    // Load the inventory unevenly: book a third of the slots of half the clinics.
    for n in 0..s.slot_count() {
        let info = s.slot(SlotRef(n));
        if info.clinic.index() % 2 == 0 && rng.random_range(0..3) == 0 {
            engine
                .book(
                    "test",
                    Booking::Slot {
                        patient: &format!("load-{n}"),
                        slot: SlotRef(n),
                    },
                )
                .unwrap();
        }
    }
    clock.set(Timestamp::from_unix_micros(
        MONDAY_7AM.unix_micros() + 26 * 3_600_000_000,
    ));
    let now = LocalTime::from_timestamp(clock.now(), &s.zone);
    for round in 0..40 {
        let c = rng.random_range(0..s.clinics.len() as u64) as usize;
        let q = FindQuery {
            specialty: allot_engine::appointments::SpecialtyRef(
                rng.random_range(0..s.specialties.len() as u64) as u8,
            ),
            home: (
                s.clinics[c].xy.0 + rng.random_range(0..5) as f32 - 2.0,
                s.clinics[c].xy.1 + rng.random_range(0..5) as f32 - 2.0,
            ),
            attached: (round % 3 == 0)
                .then_some(s.clinics[c].id.as_ref())
                .and_then(|id| s.clinic(id)),
            preferred: Vec::new(),
            from: (round % 4 == 1).then(|| now.add_minutes(24 * 60 + 13)),
            until: (round % 5 == 2).then(|| now.add_minutes(3 * 24 * 60)),
            count: 1 + rng.random_range(0..6) as usize,
            patient: None,
            exclude_doctor: None,
            only: Default::default(),
            weights: None,
        };
        let got = engine.find(&q).unwrap();
        let expect = brute_force(&engine, &q, now);
        assert_eq!(got.len(), expect.len(), "round {round}: {q:?}");
        for (p, (slot, score)) in got.iter().zip(&expect) {
            assert!((p.score.total - score).abs() < 1e-6, "round {round}");
            assert_eq!(p.slot, *slot, "round {round}");
            let parts = p.score.travel + p.score.wait + p.score.load - p.score.preference;
            assert!((parts - p.score.total).abs() < 1e-9);
            assert!(p.start > now);
            assert_eq!(engine.slot_status(p.slot), SlotStatus::Free);
        }
    }
}

#[test]
fn hold_book_cancel_and_attendance_are_logged_in_fhir_terms() {
    let city = small_city(12);
    let (engine, sink, _) = memory_engine(&city);
    let slot = free_slots(&engine, 0, 0, 1)[0];
    let held = engine.hold("umias", "p-1", slot, None).unwrap();
    assert_eq!(engine.slot_status(slot), SlotStatus::BusyTentative);
    assert_eq!(
        held.expires.unix_micros() - MONDAY_7AM.unix_micros(),
        5 * 60 * 1_000_000,
        "the default hold lasts 5 minutes"
    );
    let booked = engine.book("umias", Booking::Hold(held.hold)).unwrap();
    assert_eq!(engine.slot_status(slot), SlotStatus::Busy);
    let view = engine.appointment(booked.appointment).unwrap();
    assert_eq!(
        (view.status, view.patient.as_str(), view.slot),
        (AppointmentStatus::Booked, "p-1", slot)
    );
    assert!(
        engine.hold_info(held.hold).is_none(),
        "the hold was consumed"
    );
    let Decision::SlotBooked(b) = last(&sink).decision else {
        panic!()
    };
    assert_eq!(b.slot, engine.slot_id(slot));
    assert_eq!(b.hold, Some(held.hold.to_string()));
    assert_eq!(b.appointment, booked.appointment.to_string());

    engine
        .cancel("umias", booked.appointment, CancelledBy::Patient)
        .unwrap();
    assert_eq!(engine.slot_status(slot), SlotStatus::Free);
    assert_eq!(
        engine.appointment(booked.appointment).unwrap().status,
        AppointmentStatus::Cancelled
    );
    let again = engine
        .cancel("umias", booked.appointment, CancelledBy::Patient)
        .unwrap_err();
    assert!(matches!(again, Error::WrongStatus { .. }), "{again}");

    let direct = engine
        .book(
            "umias",
            Booking::Slot {
                patient: "p-2",
                slot,
            },
        )
        .unwrap();
    engine
        .record_attendance("clinic", direct.appointment, Attendance::NoShow)
        .unwrap();
    assert_eq!(
        engine.appointment(direct.appointment).unwrap().status,
        AppointmentStatus::NoShow
    );
    assert_eq!(
        kinds(&sink),
        [
            "SlotHeld",
            "SlotBooked",
            "AppointmentCancelled",
            "SlotBooked",
            "AttendanceRecorded"
        ]
    );
    let r = last(&sink);
    assert_eq!((r.actor.as_str(), r.subject.as_str()), ("clinic", "p-2"));
}

#[test]
fn holds_expire_on_the_clock() {
    let city = small_city(13);
    let (engine, sink, clock) = memory_engine(&city);
    let slots = free_slots(&engine, 0, 0, 2);
    let a = engine.hold("umias", "p-1", slots[0], None).unwrap();
    let b = engine
        .hold("umias", "p-2", slots[1], Some(Duration::from_secs(600)))
        .unwrap();
    clock.advance(Duration::from_secs(4 * 60));
    assert_eq!(engine.expire_holds().unwrap(), 0);
    assert_eq!(engine.slot_status(slots[0]), SlotStatus::BusyTentative);

    // Past its time, booking with the hold says so, frees the slot and proposes others.
    clock.advance(Duration::from_secs(2 * 60));
    let err = engine.book("umias", Booking::Hold(a.hold)).unwrap_err();
    assert!(matches!(err, Error::HoldExpired { .. }), "{err}");
    assert!(!err.alternatives().is_empty());
    assert!(err.alternatives().iter().all(|p| p.slot != slots[1]));
    assert_eq!(engine.slot_status(slots[0]), SlotStatus::Free);
    let Decision::HoldReleased(r) = last(&sink).decision else {
        panic!()
    };
    assert_eq!((r.hold, r.reason.name()), (a.hold.to_string(), "Expired"));

    // The other hold expires on its own: the next operation sweeps it.
    clock.advance(Duration::from_secs(5 * 60));
    let q = engine
        .resolve_find(&allot_engine::appointments::FindRequest {
            specialty: engine.schedule().specialties[0].to_string(),
            attached: Some(engine.schedule().clinics[0].id.to_string()),
            count: 1,
            ..Default::default()
        })
        .unwrap();
    engine.find(&q).unwrap();
    assert_eq!(engine.slot_status(slots[1]), SlotStatus::Free);
    assert!(engine.hold_info(b.hold).is_none());
    let err = engine.book("umias", Booking::Hold(b.hold)).unwrap_err();
    assert!(matches!(err, Error::UnknownHold(_)), "{err}");
    assert_eq!(
        kinds(&sink),
        ["SlotHeld", "SlotHeld", "HoldReleased", "HoldReleased"]
    );
}

#[test]
fn taken_started_and_overlapping_slots_are_refused_with_proposals() {
    let city = small_city(14);
    let (engine, _, clock) = memory_engine(&city);
    let s = engine.schedule().clone();
    let slot = free_slots(&engine, 0, 0, 1)[0];
    engine.hold("umias", "p-1", slot, None).unwrap();
    let err = engine.hold("umias", "p-2", slot, None).unwrap_err();
    let Error::SlotTaken {
        status,
        alternatives,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*status, SlotStatus::BusyTentative);
    assert!(!alternatives.is_empty());
    let info = s.slot(slot);
    for p in alternatives {
        assert_eq!(engine.slot_status(p.slot), SlotStatus::Free);
        assert_eq!(s.slot(p.slot).specialty, info.specialty);
    }
    // Another doctor's slot at the same time overlaps p-1's hold.
    let same_time = (0..s.slot_count())
        .map(SlotRef)
        .find(|&x| x != slot && s.slot(x).overlaps(&info))
        .expect("two doctors work at the same time");
    let err = engine
        .book(
            "umias",
            Booking::Slot {
                patient: "p-1",
                slot: same_time,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Overlap { .. }), "{err}");
    // Started slots are not held.
    let next = free_slots(&engine, 0, 0, 1)[0];
    clock.set(s.slot(next).start.to_timestamp(&s.zone));
    let err = engine.hold("umias", "p-3", next, None).unwrap_err();
    assert!(matches!(err, Error::SlotStarted { .. }), "{err}");
    // Bad ids and fields are named.
    let err = engine.parse_slot("V99999@2025-03-03T08:00").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("slot: no slot 'V99999@2025-03-03T08:00'"),
        "{err}"
    );
    let err = engine.hold("umias", "", slot, None).unwrap_err();
    assert_eq!(err.to_string(), "patient: empty, expected an id");
}

#[test]
fn reschedule_is_atomic_and_failures_leave_the_booking() {
    let city = small_city(15);
    let (engine, sink, _) = memory_engine(&city);
    let s = engine.schedule().clone();
    let day1 = free_slots(&engine, 0, 0, 1);
    let day2 = free_slots(&engine, 0, 0, 2);
    let a = engine
        .book(
            "umias",
            Booking::Slot {
                patient: "p-1",
                slot: day1[0],
            },
        )
        .unwrap();
    let intact = |engine: &Engine| {
        let v = engine.appointment(a.appointment).unwrap();
        assert_eq!((v.status, v.slot), (AppointmentStatus::Booked, day1[0]));
        assert_eq!(engine.slot_status(day1[0]), SlotStatus::Busy);
    };
    // The target is taken.
    engine
        .book(
            "umias",
            Booking::Slot {
                patient: "p-2",
                slot: day2[0],
            },
        )
        .unwrap();
    let err = engine
        .reschedule("umias", a.appointment, day2[0], None)
        .unwrap_err();
    assert!(
        matches!(err, Error::SlotTaken { .. }) && !err.alternatives().is_empty(),
        "{err}"
    );
    intact(&engine);
    // The target overlaps another of the patient's appointments.
    let other = engine
        .book(
            "umias",
            Booking::Slot {
                patient: "p-1",
                slot: day2[1],
            },
        )
        .unwrap();
    let clash = (0..s.slot_count())
        .map(SlotRef)
        .find(|&x| {
            x != day2[1]
                && engine.slot_status(x) == SlotStatus::Free
                && s.slot(x).overlaps(&s.slot(day2[1]))
        })
        .unwrap();
    let err = engine
        .reschedule("umias", a.appointment, clash, None)
        .unwrap_err();
    assert!(matches!(err, Error::Overlap { .. }), "{err}");
    intact(&engine);
    // A hold of someone else's is not the patient's to use.
    let theirs = engine.hold("umias", "p-3", day2[2], None).unwrap();
    let err = engine
        .reschedule("umias", a.appointment, day2[2], Some(theirs.hold))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownHold(_)), "{err}");
    intact(&engine);
    // A cancelled appointment cannot move.
    engine
        .cancel("umias", other.appointment, CancelledBy::Clinic)
        .unwrap();
    let err = engine
        .reschedule("umias", other.appointment, day2[3], None)
        .unwrap_err();
    assert!(matches!(err, Error::WrongStatus { .. }), "{err}");
    // Success with the patient's own hold: one decision moves it, the hold is consumed.
    let mine = engine.hold("umias", "p-1", day2[4], None).unwrap();
    let before = sink.records.lock().unwrap().len();
    let moved = engine
        .reschedule("umias", a.appointment, day2[4], Some(mine.hold))
        .unwrap();
    assert_eq!((moved.from, moved.to), (day1[0], day2[4]));
    assert_eq!(engine.slot_status(day1[0]), SlotStatus::Free);
    assert_eq!(engine.slot_status(day2[4]), SlotStatus::Busy);
    assert!(engine.hold_info(mine.hold).is_none());
    let added: Vec<&str> = kinds(&sink)[before..].to_vec();
    assert_eq!(added, ["HoldReleased", "Rescheduled"]);
    assert_eq!(engine.patient_slots("p-1"), vec![day2[4]]);
}

/// A sink whose batches fail after being queued (as when the disk fails under the log).
#[derive(Debug, Default)]
struct FailingSink {
    fail: std::sync::atomic::AtomicBool,
}

impl DecisionSink for FailingSink {
    fn submit(&self, _: &[Record]) -> Result<Ack, allot_engine::log::Error> {
        Ok(if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            Ack::Failed("fdatasync: Input/output error".into())
        } else {
            Ack::Done
        })
    }
}

#[test]
fn a_log_failure_rolls_the_operation_back_and_stops_the_engine() {
    let city = small_city(16);
    let sink = Arc::new(FailingSink::default());
    let schedule = Arc::new(city.input().build().unwrap());
    let clock = Arc::new(ManualClock::new(MONDAY_7AM));
    let engine = Engine::new(schedule, Digest([0; 32]), sink.clone(), clock, options());
    let slots = free_slots(&engine, 0, 0, 1);
    let a = engine
        .book(
            "umias",
            Booking::Slot {
                patient: "p-1",
                slot: slots[0],
            },
        )
        .unwrap();
    sink.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = engine
        .reschedule("umias", a.appointment, slots[1], None)
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err}");
    // The move was undone: the old booking stands, the new slot is free.
    let v = engine.appointment(a.appointment).unwrap();
    assert_eq!((v.status, v.slot), (AppointmentStatus::Booked, slots[0]));
    assert_eq!(engine.slot_status(slots[1]), SlotStatus::Free);
    // And nothing else is accepted until the engine is rebuilt from the log.
    let err = engine.hold("umias", "p-2", slots[2], None).unwrap_err();
    assert!(err.to_string().contains("reopen it"), "{err}");
}

#[test]
fn racing_threads_never_share_a_slot_and_lose_no_hold() {
    let seed = TestSeed::new("racing_threads_never_share_a_slot_and_lose_no_hold");
    let city = small_city(17);
    let (engine, sink, _) = memory_engine(&city);
    // 24 contested slots, 16 threads, each trying every slot in its own order.
    let slots: Vec<SlotRef> = free_slots(&engine, 0, 0, 1).into_iter().take(24).collect();
    assert_eq!(slots.len(), 24);
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let wins = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (engine, slots, barrier, wins, seed) =
                (&engine, &slots, barrier.clone(), wins.clone(), &seed);
            scope.spawn(move || {
                let mut rng = seed.rng(t as u64);
                let mut order = slots.clone();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.random_range(0..i as u64 + 1) as usize);
                }
                barrier.wait();
                for (k, &slot) in order.iter().enumerate() {
                    let patient = format!("t{t}-{k}");
                    let won = if k % 2 == 0 {
                        engine
                            .hold("umias", &patient, slot, None)
                            .map(|h| (slot, Some(h.hold)))
                    } else {
                        engine
                            .book(
                                "umias",
                                Booking::Slot {
                                    patient: &patient,
                                    slot,
                                },
                            )
                            .map(|_| (slot, None))
                    };
                    match won {
                        Ok(w) => wins.lock().unwrap().push(w),
                        Err(Error::SlotTaken { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    let wins = wins.lock().unwrap();
    let won: HashSet<SlotRef> = wins.iter().map(|w| w.0).collect();
    assert_eq!(wins.len(), slots.len(), "each slot won exactly once");
    assert_eq!(won.len(), slots.len());
    for &(slot, hold) in wins.iter() {
        match hold {
            Some(h) => {
                assert_eq!(engine.slot_status(slot), SlotStatus::BusyTentative);
                assert_eq!(engine.hold_info(h).unwrap().slot, slot, "hold {h} lost");
            }
            None => assert_eq!(engine.slot_status(slot), SlotStatus::Busy),
        }
    }
    // The decisions say the same: one SlotHeld or SlotBooked per contested slot.
    let records = sink.records.lock().unwrap();
    assert_eq!(records.len(), slots.len());
    let logged: HashSet<String> = records
        .iter()
        .map(|r| match &r.decision {
            Decision::SlotHeld(h) => h.slot.clone(),
            Decision::SlotBooked(b) => b.slot.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(logged.len(), slots.len());
}

#[test]
fn one_patient_racing_for_overlapping_slots_gets_one() {
    let city = small_city(18);
    let (engine, _, _) = memory_engine(&city);
    let s = engine.schedule().clone();
    let first = free_slots(&engine, 0, 0, 1)[0];
    // Slots running at one instant overlap each other pairwise.
    let instant = s.slot(first).start.add_minutes(1);
    let overlapping: Vec<SlotRef> = (0..s.slot_count())
        .map(SlotRef)
        .filter(|&x| s.slot(x).start <= instant && instant < s.slot(x).end())
        .collect();
    assert!(overlapping.len() >= 3, "{}", overlapping.len());
    let wins = Mutex::new(0);
    std::thread::scope(|scope| {
        for &slot in &overlapping {
            let (engine, wins) = (&engine, &wins);
            scope.spawn(
                move || match engine.hold("umias", "same-patient", slot, None) {
                    Ok(_) => *wins.lock().unwrap() += 1,
                    Err(Error::Overlap { .. }) => {}
                    Err(e) => panic!("{e}"),
                },
            );
        }
    });
    assert_eq!(*wins.lock().unwrap(), 1);
    assert_eq!(engine.patient_slots("same-patient").len(), 1);
}

#[test]
fn an_absence_re_offers_each_displaced_patient_a_distinct_slot() {
    let city = small_city(19);
    let (engine, sink, clock) = memory_engine(&city);
    let s = engine.schedule().clone();
    let doctor = allot_engine::appointments::DoctorRef(0);
    let day = 2;
    // Every slot of the doctor's day booked but one, which is held.
    let theirs: Vec<SlotRef> = s
        .doctor_day(doctor, day)
        .map(SlotRef)
        .enumerate()
        .filter(|&(k, _)| k != 8)
        .map(|(_, x)| x)
        .collect();
    assert!(theirs.len() > 16, "{}", theirs.len());
    let mut appts = Vec::new();
    for (i, &slot) in theirs.iter().enumerate() {
        appts.push(
            engine
                .book(
                    "umias",
                    Booking::Slot {
                        patient: &format!("p-{i}"),
                        slot,
                    },
                )
                .unwrap(),
        );
    }
    let held = engine
        .hold(
            "umias",
            "p-h",
            s.doctor_day(doctor, day).map(SlotRef).nth(8).unwrap(),
            None,
        )
        .unwrap();
    let midnight = s.date(day).start();
    let out = engine
        .mark_absence("registry", doctor, midnight, midnight.add_minutes(24 * 60))
        .unwrap();
    assert_eq!(out.released, [held.hold.to_string()]);
    // The city has room: everyone is re-offered, though all want the same clinic and day.
    assert_eq!(out.reoffered.len(), appts.len(), "{out:?}");
    assert!(out.cancelled.is_empty());
    for slot in s.doctor_day(doctor, day) {
        assert_eq!(
            engine.slot_status(SlotRef(slot)),
            SlotStatus::BusyUnavailable
        );
    }
    let offered: HashSet<SlotRef> = out.reoffered.iter().map(|r| r.offer.slot).collect();
    assert_eq!(offered.len(), out.reoffered.len(), "distinct slots");
    for r in &out.reoffered {
        let (appt, from, to) = (r.appointment, r.from, r.offer.slot);
        // The score is broken down as for `$find`, and its parts add up.
        let sc = r.offer.score;
        assert!(
            (sc.total - (sc.travel + sc.wait + sc.load - sc.preference)).abs() < 1e-9,
            "{sc:?}"
        );
        let v = engine.appointment(appt).unwrap();
        assert_eq!(v.status, AppointmentStatus::Pending);
        assert_eq!(v.slot, from);
        assert_eq!(v.offered.unwrap().0, to);
        assert_eq!(engine.slot_status(to), SlotStatus::BusyTentative);
        assert_ne!(s.slot(to).doctor, doctor);
        assert_eq!(s.slot(to).specialty, s.slot(from).specialty);
    }
    let mut expect = vec!["HoldReleased", "AbsenceMarked"];
    expect.extend(std::iter::repeat_n("ReOffered", out.reoffered.len()));
    expect.extend(std::iter::repeat_n(
        "AppointmentCancelled",
        out.cancelled.len(),
    ));
    let all = kinds(&sink);
    assert_eq!(all[all.len() - expect.len()..], expect[..]);

    // Accept one, decline one, let one lapse.
    let (a, to) = (out.reoffered[0].appointment, out.reoffered[0].offer.slot);
    engine.accept_offer("umias", a).unwrap();
    let v = engine.appointment(a).unwrap();
    assert_eq!(
        (v.status, v.slot, v.offered),
        (AppointmentStatus::Booked, to, None)
    );
    assert_eq!(engine.slot_status(to), SlotStatus::Busy);
    if let Some((b, to_b)) = out.reoffered.get(1).map(|r| (r.appointment, r.offer.slot)) {
        engine.cancel("umias", b, CancelledBy::Patient).unwrap();
        assert_eq!(
            engine.appointment(b).unwrap().status,
            AppointmentStatus::Cancelled
        );
        assert_eq!(engine.slot_status(to_b), SlotStatus::Free);
    }
    if let Some((c, to_c)) = out.reoffered.get(2).map(|r| (r.appointment, r.offer.slot)) {
        clock.advance(Duration::from_secs(25 * 3600));
        engine.expire_holds().unwrap();
        assert_eq!(
            engine.appointment(c).unwrap().status,
            AppointmentStatus::Cancelled
        );
        assert_eq!(engine.slot_status(to_c), SlotStatus::Free);
    }
    // The accepted one stays.
    assert_eq!(
        engine.appointment(a).unwrap().status,
        AppointmentStatus::Booked
    );
}

#[test]
fn weights_of_the_baseline_pick_the_nearest_clinic_first() {
    let city = small_city(20);
    let (engine, _, _) = memory_engine(&city);
    let s = engine.schedule().clone();
    let home = s.clinics[1].xy;
    let q = FindQuery {
        specialty: s.specialty("therapist").unwrap(),
        home,
        attached: None,
        preferred: Vec::new(),
        from: None,
        until: None,
        count: 3,
        patient: None,
        exclude_doctor: None,
        only: Default::default(),
        weights: Some(Weights::nearest_earliest()),
    };
    let got = engine.find(&q).unwrap();
    // By brute force over every clinic with a therapist (not the engine's grid).
    let nearest = (0..s.clinics.len() as u32)
        .map(ClinicRef)
        .filter(|&c| !s.clinic_doctors(c, q.specialty).is_empty())
        .min_by(|a, b| {
            km(home, s.clinics[a.index()].xy).total_cmp(&km(home, s.clinics[b.index()].xy))
        })
        .unwrap();
    assert_eq!(got[0].clinic, nearest);
    assert_eq!(got[1].clinic, nearest);
    assert!(got[0].start < got[1].start);
}

#[test]
fn find_spreads_demand_better_than_nearest_clinic_earliest_slot() {
    use allot_engine::appointments::simulate::{MonthSpec, simulate_month};
    // Two weeks of a small city at 80% demand, the same patients in the same order.
    let spec = MonthSpec {
        days: 14,
        ..MonthSpec::small(7)
    };
    let find = simulate_month(&spec, Weights::default());
    let nearest = simulate_month(&spec, Weights::nearest_earliest());
    assert_eq!(find.requests, nearest.requests);
    assert!(find.requests > 40_000, "{find:?}");
    assert!(
        find.max_utilisation < nearest.max_utilisation,
        "max clinic-day utilisation: find {find:?}, nearest {nearest:?}"
    );
    assert!(
        find.p95_wait_days < nearest.p95_wait_days,
        "95th percentile of waiting days: find {find:?}, nearest {nearest:?}"
    );
}
