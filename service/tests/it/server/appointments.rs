//! The Appointments service end to end over a real socket, on a small generated city whose
//! horizon starts today: every method, bad requests (naming the field path, logging nothing),
//! deadlines, many clients racing for one slot, and bookings acknowledged before a shutdown
//! surviving the restart.

use std::time::Duration;

use allot_engine::appointments::{LocalTime, Zone};
use allot_engine::log::decision::Decision;
use allot_engine::log::{Entry, Log, Timestamp};
use allot_service::proto::v1 as pb;
use allot_service::server::appointments::slot_taken_detail;
use sha2::{Digest as _, Sha256};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use super::Harness;

const CITY_SCALE: f64 = 0.01;

fn patient(id: &str) -> pb::Patient {
    pb::Patient {
        id: id.to_owned(),
        home: Some(pb::Location {
            lat: 55.75,
            lon: 37.62,
        }),
        attached_clinic: String::new(),
    }
}

fn find(id: &str, count: u32) -> pb::FindSlotsRequest {
    pb::FindSlotsRequest {
        patient: Some(patient(id)),
        specialty: "therapist".into(),
        count,
        ..Default::default()
    }
}

fn decoded(log: &Log, index: u64) -> Entry {
    log.entry(index).unwrap()
}

/// RFC 6962 section 2.1.1, written from the RFC for this test: the root from a leaf and its path.
fn root_from_path(leaf: [u8; 32], index: u64, size: u64, path: &[Vec<u8>]) -> Option<[u8; 32]> {
    let node = |l: &[u8], r: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    };
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_on_a_generated_city() {
    let h = Harness::city(CITY_SCALE).await;
    let mut c = h.clinic().await;

    // FindSlots: ranked, free, best first.
    let found = c.find_slots(find("P1", 5)).await.unwrap().into_inner();
    assert_eq!(found.proposals.len(), 5);
    for (i, p) in found.proposals.iter().enumerate() {
        assert_eq!(p.rank as usize, i + 1);
        let slot = p.slot.as_ref().unwrap();
        assert_eq!(slot.status, pb::SlotStatus::Free as i32);
        assert_eq!(slot.specialty, "therapist");
        let score = p.score.as_ref().unwrap();
        let sum = score.travel + score.waiting + score.load - score.preference;
        assert!((score.total - sum).abs() < 1e-6, "{score:?}");
    }
    let totals: Vec<f64> = found
        .proposals
        .iter()
        .map(|p| p.score.as_ref().unwrap().total)
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");

    // HoldSlot, then Book the hold.
    let first = found.proposals[0].slot.clone().unwrap();
    let hold = c
        .hold_slot(pb::HoldSlotRequest {
            slot_id: first.id.clone(),
            patient: Some(patient("P1")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(
        hold.slot.as_ref().unwrap().status,
        pb::SlotStatus::BusyTentative as i32
    );
    assert!(matches!(
        decoded(&h.log, hold.log_index).record.decision,
        Decision::SlotHeld(ref held) if held.slot == first.id
    ));
    let booked = c
        .book(pb::BookRequest {
            target: Some(pb::book_request::Target::HoldId(hold.id.clone())),
            patient: Some(patient("P1")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(booked.status, pb::AppointmentStatus::Booked as i32);
    assert_eq!(booked.slot.as_ref().unwrap().id, first.id);
    // The answer's log index is the booking, provable against a signed checkpoint.
    let entry = decoded(&h.log, booked.log_index);
    assert!(matches!(
        entry.record.decision,
        Decision::SlotBooked(ref b) if b.appointment == booked.id && b.slot == first.id
    ));
    let proof = h
        .auditor()
        .await
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            index: booked.log_index,
            tree_size: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let data = &proof.entry.as_ref().unwrap().data;
    let leaf: [u8; 32] = Sha256::new()
        .chain_update([0u8])
        .chain_update(data)
        .finalize()
        .into();
    let root = root_from_path(leaf, booked.log_index, proof.tree_size, &proof.path).unwrap();
    assert_eq!(root.to_vec(), proof.root_hash);

    // GetAppointment.
    let got = c
        .get_appointment(pb::GetAppointmentRequest {
            appointment_id: booked.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(got.patient_id, "P1");
    assert_eq!(got.slot.unwrap().status, pb::SlotStatus::Busy as i32);

    // Reschedule to the second proposal.
    let second = found.proposals[1].slot.clone().unwrap();
    let moved = c
        .reschedule(pb::RescheduleRequest {
            appointment_id: booked.id.clone(),
            target: Some(pb::reschedule_request::Target::SlotId(second.id.clone())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(moved.id, booked.id);
    assert_eq!(moved.slot.unwrap().id, second.id);
    assert!(matches!(
        decoded(&h.log, moved.log_index).record.decision,
        Decision::Rescheduled(_)
    ));

    // Cancel.
    let cancelled = c
        .cancel(pb::CancelRequest {
            appointment_id: booked.id.clone(),
            cancelled_by: pb::CancelledBy::Patient as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(cancelled.status, pb::AppointmentStatus::Cancelled as i32);
    let again = c
        .cancel(pb::CancelRequest {
            appointment_id: booked.id.clone(),
            cancelled_by: pb::CancelledBy::Patient as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::FailedPrecondition,
        "{}",
        again.message()
    );

    // ReleaseHold: the slot is free again, and the hold is gone.
    let fourth = found.proposals[3].slot.clone().unwrap();
    let held = c
        .hold_slot(pb::HoldSlotRequest {
            slot_id: fourth.id.clone(),
            patient: Some(patient("P3")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    let released = c
        .release_hold(pb::ReleaseHoldRequest {
            hold_id: held.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        decoded(&h.log, released.log_index).record.decision,
        Decision::HoldReleased(_)
    ));
    let gone = c
        .release_hold(pb::ReleaseHoldRequest {
            hold_id: held.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{}", gone.message());

    // RecordAttendance on a booking of that freed slot.
    let visit = c
        .book(pb::BookRequest {
            target: Some(pb::book_request::Target::SlotId(fourth.id.clone())),
            patient: Some(patient("P3")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    let attended = c
        .record_attendance(pb::RecordAttendanceRequest {
            appointment_id: visit.id.clone(),
            attendance: pb::Attendance::Noshow as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(attended.status, pb::AppointmentStatus::Noshow as i32);
    assert!(matches!(
        decoded(&h.log, attended.log_index).record.decision,
        Decision::AttendanceRecorded(_)
    ));
    let twice = c
        .record_attendance(pb::RecordAttendanceRequest {
            appointment_id: visit.id.clone(),
            attendance: pb::Attendance::Fulfilled as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        twice.code(),
        Code::FailedPrecondition,
        "{}",
        twice.message()
    );

    // Book a free slot directly, then mark its doctor absent: the patient is re-offered.
    let slot = found.proposals[2].slot.clone().unwrap();
    let direct = c
        .book(pb::BookRequest {
            target: Some(pb::book_request::Target::SlotId(slot.id.clone())),
            patient: Some(patient("P2")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    let absence = c
        .mark_absence(pb::MarkAbsenceRequest {
            doctor_id: slot.doctor.clone(),
            from: slot.start,
            until: slot.end,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(absence.unavailable_slots, 1);
    assert_eq!(absence.freed_bookings, 1);
    assert_eq!(
        absence.re_offers.len() + absence.cancelled_appointments.len(),
        1
    );
    {
        let offer = absence
            .re_offers
            .first()
            .expect("the city has room: the patient is re-offered a slot");
        assert_eq!(offer.appointment_id, direct.id);
        // The re-offer's score is broken down as the proto promises:
        // total = travel + waiting + load - preference, with the parts filled in.
        let score = offer.offer.as_ref().unwrap().score.unwrap();
        assert!(
            (score.total - (score.travel + score.waiting + score.load - score.preference)).abs()
                < 1e-9,
            "{score:?}"
        );
        assert!(score.total != 0.0, "a re-offer has a score: {score:?}");
        assert_eq!(offer.patient_id, "P2");
        let offered = offer.offer.as_ref().unwrap().slot.clone().unwrap();
        assert_ne!(offered.doctor, slot.doctor);
        // AcceptOffer: booked again, in the offered slot.
        let accepted = c
            .accept_offer(pb::AcceptOfferRequest {
                appointment_id: direct.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .appointment
            .unwrap();
        assert_eq!(accepted.status, pb::AppointmentStatus::Booked as i32);
        assert_eq!(accepted.slot.unwrap().id, offered.id);
        assert!(matches!(
            decoded(&h.log, accepted.log_index).record.decision,
            Decision::Rescheduled(_)
        ));
    }
    // An appointment without a re-offer cannot accept one.
    let no_offer = c
        .accept_offer(pb::AcceptOfferRequest {
            appointment_id: visit.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        no_offer.code(),
        Code::FailedPrecondition,
        "{}",
        no_offer.message()
    );
    let range = absence.log.unwrap();
    assert!(matches!(
        decoded(&h.log, range.start).record.decision,
        Decision::AbsenceMarked(_)
    ));

    // Rebalance: a plan, then a committed one that books.
    let today = &slot.id[slot.id.find('@').unwrap() + 1..][..10];
    let district = slot.district.clone();
    let requests: Vec<pb::QueuedRequest> = (0..20)
        .map(|i| pb::QueuedRequest {
            id: format!("R{i}"),
            patient_id: format!("Q{i}"),
            district: district.clone(),
            specialty: "therapist".into(),
            earliest_day: today.to_owned(),
        })
        .collect();
    let size = h.log.size();
    let plan = c
        .rebalance(pb::RebalanceRequest {
            requests: requests.clone(),
            commit: false,
            request_id: String::new(),
            nearest_clinics: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.assignments.len() + plan.unassigned.len(), 20);
    assert!(plan.log.is_none());
    assert_eq!(h.log.size(), size, "a plan logs nothing");
    let committed = c
        .rebalance(pb::RebalanceRequest {
            requests,
            commit: true,
            request_id: "rebalance-1".into(),
            nearest_clinics: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let range = committed.log.unwrap();
    let bookings = (range.start..range.end)
        .filter(|&i| matches!(decoded(&h.log, i).record.decision, Decision::SlotBooked(_)))
        .count();
    assert_eq!(bookings, committed.assignments.len());
    assert!(
        committed
            .assignments
            .iter()
            .all(|a| !a.appointment_id.is_empty())
    );

    // GetInventory: every slot in one status, the bookings among the busy ones.
    let inventory = c
        .get_inventory(pb::GetInventoryRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        inventory.free + inventory.busy_tentative + inventory.busy + inventory.busy_unavailable,
        inventory.slots
    );
    assert!(inventory.busy > committed.assignments.len() as u64);
    assert!(inventory.busy_unavailable >= 1, "the absent doctor's slot");
    assert_eq!(inventory.log_entries, h.log.size());
    assert!(inventory.specialties.iter().any(|s| s == "therapist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field_and_log_nothing() {
    let h = Harness::city(CITY_SCALE).await;
    let mut c = h.clinic().await;
    let free = c
        .find_slots(find("P1", 1))
        .await
        .unwrap()
        .into_inner()
        .proposals[0]
        .slot
        .clone()
        .unwrap();
    let size = h.log.size();

    fn check<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, path: &str) {
        let status = result.expect_err(path);
        assert_eq!(status.code(), code, "{path}: {}", status.message());
        assert!(
            status.message().starts_with(&format!("{path}: ")),
            "{:?} does not start with {path}",
            status.message()
        );
        let details = status.get_error_details();
        let violation = &details
            .bad_request()
            .expect("a BadRequest detail")
            .field_violations[0];
        assert_eq!(violation.field, path);
    }

    let mut r = find("P1", 5);
    r.patient.as_mut().unwrap().home.as_mut().unwrap().lat = 91.0;
    check(
        c.find_slots(r).await,
        Code::InvalidArgument,
        "request.patient.home.lat",
    );
    let mut r = find("", 5);
    r.specialty = "therapist".into();
    check(
        c.find_slots(r).await,
        Code::InvalidArgument,
        "request.patient.id",
    );
    let mut r = find("P1", 5);
    r.specialty = "astrologer".into();
    check(c.find_slots(r).await, Code::NotFound, "request.specialty");
    check(
        c.find_slots(find("P1", 51)).await,
        Code::InvalidArgument,
        "request.count",
    );
    let mut r = find("P1", 5);
    r.preferred_clinics = vec!["C0001".into(), "no-such-clinic".into()];
    check(
        c.find_slots(r).await,
        Code::NotFound,
        "request.preferred_clinics[1]",
    );
    let mut r = find("P1", 5);
    r.window_start = Some(prost_types::Timestamp {
        seconds: 2_000_000_000,
        nanos: 0,
    });
    r.window_end = Some(prost_types::Timestamp {
        seconds: 1_900_000_000,
        nanos: 0,
    });
    check(
        c.find_slots(r).await,
        Code::InvalidArgument,
        "request.window_end",
    );

    let hold = |slot: &str, p: Option<pb::Patient>, ttl: Option<i64>| pb::HoldSlotRequest {
        slot_id: slot.to_owned(),
        patient: p,
        ttl: ttl.map(|s| prost_types::Duration {
            seconds: s,
            nanos: 0,
        }),
        request_id: String::new(),
    };
    check(
        c.hold_slot(hold("", Some(patient("P1")), None)).await,
        Code::InvalidArgument,
        "request.slot_id",
    );
    check(
        c.hold_slot(hold("V99999@2030-01-01T08:00", Some(patient("P1")), None))
            .await,
        Code::NotFound,
        "request.slot_id",
    );
    check(
        c.hold_slot(hold(&free.id, None, None)).await,
        Code::InvalidArgument,
        "request.patient",
    );
    check(
        c.hold_slot(hold(&free.id, Some(patient("P1")), Some(1)))
            .await,
        Code::InvalidArgument,
        "request.ttl",
    );
    let mut r = find("P1", 5);
    r.patient.as_mut().unwrap().home = None;
    check(
        c.find_slots(r).await,
        Code::InvalidArgument,
        "request.patient.home",
    );
    check(
        c.book(pb::BookRequest {
            patient: Some(patient("P1")),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "request.target",
    );
    check(
        c.book(pb::BookRequest {
            target: Some(pb::book_request::Target::HoldId("x7".into())),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "request.hold_id",
    );
    check(
        c.cancel(pb::CancelRequest {
            appointment_id: "a1".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "request.cancelled_by",
    );
    check(
        c.get_appointment(pb::GetAppointmentRequest {
            appointment_id: "a999999".into(),
        })
        .await,
        Code::NotFound,
        "request.appointment_id",
    );
    check(
        c.mark_absence(pb::MarkAbsenceRequest {
            doctor_id: "nobody".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "request.doctor_id",
    );
    check(
        c.mark_absence(pb::MarkAbsenceRequest {
            doctor_id: free.doctor.clone(),
            from: free.end,
            until: free.start,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "request.until",
    );
    let referral = |earliest_day: &str| pb::QueuedRequest {
        id: "R1".into(),
        patient_id: "P1".into(),
        district: free.district.clone(),
        specialty: "therapist".into(),
        earliest_day: earliest_day.into(),
    };
    check(
        c.rebalance(pb::RebalanceRequest::default()).await,
        Code::InvalidArgument,
        "request.requests",
    );
    check(
        c.rebalance(pb::RebalanceRequest {
            requests: vec![referral("tomorrow")],
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "request.requests[0].earliest_day",
    );
    check(
        c.rebalance(pb::RebalanceRequest {
            requests: vec![referral(&free.id.rsplit_once('@').unwrap().1[..10])],
            nearest_clinics: 100_000,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "request.nearest_clinics",
    );
    // Unknown holds and appointments are NOT_FOUND (from the engine), still logging nothing.
    let unknown = c
        .book(pb::BookRequest {
            target: Some(pb::book_request::Target::HoldId("h999999".into())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{}", unknown.message());
    assert_eq!(h.log.size(), size, "a bad request logged a decision");

    // An idempotent retry answers the first booking; the same id for another request is refused.
    let book = pb::BookRequest {
        target: Some(pb::book_request::Target::SlotId(free.id.clone())),
        patient: Some(patient("P9")),
        request_id: "book-1".into(),
    };
    let first = c.book(book.clone()).await.unwrap().into_inner();
    let retry = c.book(book.clone()).await.unwrap().into_inner();
    assert_eq!(first, retry);
    assert_eq!(h.log.size(), size + 1);
    let mut other = book;
    other.patient = Some(patient("P10"));
    let refused = c.book(other).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{}", refused.message());
    assert_eq!(h.log.size(), size + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passes_is_deadline_exceeded() {
    // The server's own limit on a call (the client's `grpc-timeout` is enforced by the client's
    // channel too, which would answer CANCELLED first).
    let h = Harness::city_with(CITY_SCALE, |c| {
        c.limits.max_call = Some(Duration::from_millis(1));
    })
    .await;
    let mut c = h.clinic().await;
    let today = LocalTime::from_timestamp(Timestamp::now(), &Zone::moscow()).date();
    // A valid request (the generated city's first district), so that the handler reaches the
    // solver (on the blocking pool) and the deadline passes while it works.
    let request = Request::new(pb::RebalanceRequest {
        requests: (0..50_000)
            .map(|i| pb::QueuedRequest {
                id: format!("R{i}"),
                patient_id: format!("Q{i}"),
                district: "D001".into(),
                specialty: "therapist".into(),
                earliest_day: today.to_string(),
            })
            .collect(),
        commit: false,
        request_id: String::new(),
        nearest_clinics: 0,
    });
    let size = h.log.size();
    let status = c.rebalance(request).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{}",
        status.message()
    );
    assert_eq!(h.log.size(), size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_booking_one_slot_exactly_one_wins() {
    const CLIENTS: usize = 48;
    let h = Harness::city(CITY_SCALE).await;
    let slot = h
        .clinic()
        .await
        .find_slots(find("P0", 1))
        .await
        .unwrap()
        .into_inner()
        .proposals[0]
        .slot
        .clone()
        .unwrap();
    let size = h.log.size();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        // Each client on its own connection.
        let mut c = h.clinic().await;
        let slot_id = slot.id.clone();
        tasks.push(tokio::spawn(async move {
            c.book(pb::BookRequest {
                target: Some(pb::book_request::Target::SlotId(slot_id)),
                patient: Some(patient(&format!("P{i}"))),
                ..Default::default()
            })
            .await
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(answer) => won.push(answer.into_inner().appointment.unwrap()),
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{}", status.message());
                let taken = slot_taken_detail(&status).expect("a SlotTaken detail");
                assert_eq!(taken.slot_id, slot.id);
                assert_eq!(taken.status, pb::SlotStatus::Busy as i32);
                assert!(!taken.alternatives.is_empty());
                assert!(
                    taken
                        .alternatives
                        .iter()
                        .all(|p| p.slot.as_ref().unwrap().id != slot.id)
                );
            }
        }
    }
    assert_eq!(won.len(), 1, "exactly one client books the slot");
    // The log has exactly one booking of it, and nothing else was logged.
    let bookings: Vec<Entry> = (size..h.log.size())
        .map(|i| decoded(&h.log, i))
        .filter(|e| matches!(&e.record.decision, Decision::SlotBooked(b) if b.slot == slot.id))
        .collect();
    assert_eq!(bookings.len(), 1);
    assert_eq!(h.log.size(), size + 1);
    assert_eq!(bookings[0].index, won[0].log_index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_acknowledged_before_a_shutdown_survive_the_restart() {
    let h = Harness::city(CITY_SCALE).await;
    let proposals = h
        .clinic()
        .await
        .find_slots(find("P0", 50))
        .await
        .unwrap()
        .into_inner()
        .proposals;
    let mut tasks = Vec::new();
    for (i, p) in proposals.iter().enumerate() {
        let mut c = h.clinic().await;
        let slot_id = p.slot.as_ref().unwrap().id.clone();
        tasks.push(tokio::spawn(async move {
            c.book(pb::BookRequest {
                target: Some(pb::book_request::Target::SlotId(slot_id)),
                patient: Some(patient(&format!("P{i}"))),
                ..Default::default()
            })
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    h.shutdown();
    let mut acknowledged = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(answer) => acknowledged.push(answer.into_inner().appointment.unwrap()),
            Err(status) => assert!(
                matches!(status.code(), Code::Unavailable | Code::Cancelled),
                "{status:?}"
            ),
        }
    }
    let dir = h.into_dir().await;
    let h = Harness::reopen(dir).await;
    let mut c = h.clinic().await;
    for a in &acknowledged {
        let now = c
            .get_appointment(pb::GetAppointmentRequest {
                appointment_id: a.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .appointment
            .unwrap();
        assert_eq!(now.status, pb::AppointmentStatus::Booked as i32);
        assert_eq!(
            now.slot,
            a.slot.clone().map(|mut s| {
                s.status = pb::SlotStatus::Busy as i32;
                s
            })
        );
    }
}

/// The operating system's file system, with each group commit's fsync made slow while `slow`
/// is set: a booking stays in flight long enough for its caller's deadline to pass.
#[derive(Debug, Default)]
struct SlowSyncs {
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug)]
struct SlowFile {
    inner: std::sync::Arc<dyn allot_engine::fs::File>,
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl allot_engine::fs::File for SlowFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self, point: allot_engine::fs::SyncPoint) -> std::io::Result<()> {
        if point == allot_engine::fs::SyncPoint::LogGroup
            && self.slow.load(std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(400));
        }
        self.inner.sync_data(point)
    }
    fn sync_all(&self, point: allot_engine::fs::SyncPoint) -> std::io::Result<()> {
        self.inner.sync_all(point)
    }
    fn try_lock(&self) -> std::io::Result<bool> {
        self.inner.try_lock()
    }
}

impl allot_engine::fs::FileSystem for SlowSyncs {
    fn open(
        &self,
        path: &std::path::Path,
        options: allot_engine::fs::OpenOptions,
    ) -> std::io::Result<std::sync::Arc<dyn allot_engine::fs::File>> {
        Ok(std::sync::Arc::new(SlowFile {
            inner: allot_engine::fs::OsFs.open(path, options)?,
            slow: self.slow.clone(),
        }))
    }
    fn metadata(&self, path: &std::path::Path) -> std::io::Result<allot_engine::fs::Metadata> {
        allot_engine::fs::OsFs.metadata(path)
    }
    fn list_dir(&self, path: &std::path::Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        allot_engine::fs::OsFs.list_dir(path)
    }
    fn create_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        allot_engine::fs::OsFs.create_dir(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        allot_engine::fs::OsFs.rename(from, to)
    }
    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        allot_engine::fs::OsFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        allot_engine::fs::OsFs.remove_dir_all(path)
    }
    fn sync_dir(
        &self,
        path: &std::path::Path,
        point: allot_engine::fs::SyncPoint,
    ) -> std::io::Result<()> {
        allot_engine::fs::OsFs.sync_dir(path, point)
    }
}

/// A Book whose caller gave up at its deadline while the booking waited for its fsync, then
/// retried with the same `request_id` (at once, and again later): the slot is booked once, and
/// every retry gets that booking as its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_while_the_first_call_is_in_flight_does_not_act_twice() {
    let fs = SlowSyncs::default();
    let slow = fs.slow.clone();
    let h = Harness::city_on(std::sync::Arc::new(fs), CITY_SCALE).await;
    let mut c = h.clinic().await;
    let found = c
        .find_slots(pb::FindSlotsRequest {
            patient: Some(patient("P-retry")),
            specialty: "therapist".into(),
            count: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let slot = found.proposals[0].slot.clone().unwrap();
    let book = || pb::BookRequest {
        target: Some(pb::book_request::Target::SlotId(slot.id.clone())),
        patient: Some(patient("P-retry")),
        request_id: "retry-1".into(),
    };
    let size = h.log.size();
    slow.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut first = Request::new(book());
    first.set_timeout(Duration::from_millis(100));
    let gave_up = c.book(first).await.unwrap_err();
    assert!(
        matches!(gave_up.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{gave_up:?}"
    );
    // At once: the first call is still waiting for its fsync.
    let retried = c
        .book(book())
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    slow.store(false, std::sync::atomic::Ordering::SeqCst);
    let again = c
        .book(book())
        .await
        .unwrap()
        .into_inner()
        .appointment
        .unwrap();
    assert_eq!(retried, again);
    assert_eq!(retried.slot.unwrap().id, slot.id);
    let booked: Vec<_> = (size..h.log.size())
        .map(|i| h.log.entry(i).unwrap().record.decision)
        .filter(|d| matches!(d, Decision::SlotBooked(_)))
        .collect();
    assert_eq!(booked.len(), 1, "booked {} times", booked.len());
}
