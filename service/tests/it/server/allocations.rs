//! The Fairs and Schools services end to end: application windows over client streams, the
//! logged commitment, runs, outcomes checked against a brute-force stability check, explanations,
//! withdrawals, verification, and windows and runs that survive a restart.

use std::collections::HashMap;

use allot_engine::log::decision::Decision;
use allot_service::proto::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use super::Harness;
use allot_service::proto::v1::schools_client::SchoolsClient;
use allot_service::rpc::client::Authorized;
use tokio_stream::StreamExt as _;

fn applicant(
    id: &str,
    category: &str,
    tier: u32,
    lottery: u64,
    choices: &[&str],
) -> pb::FairApplicant {
    pb::FairApplicant {
        second_factor: String::new(),
        id: id.to_owned(),
        category: category.to_owned(),
        tier: Some(tier),
        lottery: Some(lottery),
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn pool(fair: &str, category: &str, stalls: u32) -> pb::StallPool {
    pb::StallPool {
        fair: fair.to_owned(),
        district: format!("D-{fair}"),
        category: category.to_owned(),
        stalls,
    }
}

fn beacon() -> pb::Beacon {
    pb::Beacon {
        source: "test".into(),
        round: 7,
        value: vec![42; 32],
    }
}

/// A small market: 3 fairs, 2 categories and open pools, 14 applicants with their own lottery
/// numbers, sent as two stream messages.
fn fair_messages(window: &str) -> Vec<pb::SubmitFairApplicationsRequest> {
    let pools = vec![
        pool("F1", "food", 2),
        pool("F1", "*", 1),
        pool("F2", "food", 1),
        pool("F2", "crafts", 2),
        pool("F3", "*", 2),
    ];
    let cats = ["food", "crafts"];
    let fairs = [
        vec!["F1", "F2", "F3"],
        vec!["F2", "F1"],
        vec!["F3", "F1"],
        vec!["F1"],
    ];
    let applicants: Vec<pb::FairApplicant> = (0..14u32)
        .map(|i| {
            let choices = &fairs[(i as usize * 7) % fairs.len()];
            applicant(
                &format!("A{i:02}"),
                cats[(i as usize) % 2],
                i % 3,
                u64::from((i * 7919) % 101),
                choices,
            )
        })
        .collect();
    vec![
        pb::SubmitFairApplicationsRequest {
            amend: false,
            window: window.to_owned(),
            pools,
            applicants: applicants[..6].to_vec(),
        },
        pb::SubmitFairApplicationsRequest {
            amend: false,
            window: String::new(),
            pools: Vec::new(),
            applicants: applicants[6..].to_vec(),
        },
    ]
}

/// Brute force: in a stable fair assignment under own-category-first precedence, no applicant
/// prefers a fair with an eligible pool that has a free stall or holds someone of lower priority
/// (tier, lottery).
fn assert_stable(
    messages: &[pb::SubmitFairApplicationsRequest],
    got: &HashMap<String, pb::GetFairOutcomeResponse>,
) {
    let pools: Vec<&pb::StallPool> = messages.iter().flat_map(|m| &m.pools).collect();
    let applicants: Vec<&pb::FairApplicant> = messages.iter().flat_map(|m| &m.applicants).collect();
    let key = |a: &pb::FairApplicant| (a.tier.unwrap(), a.lottery.unwrap());
    for a in &applicants {
        let mine = &got[&a.id];
        let better = if mine.rank == 0 {
            a.choices.len()
        } else {
            mine.rank as usize - 1
        };
        for fair in &a.choices[..better] {
            for p in pools
                .iter()
                .filter(|p| p.fair == *fair && (p.category == a.category || p.category == "*"))
            {
                let holders: Vec<&&pb::FairApplicant> = applicants
                    .iter()
                    .filter(|b| {
                        let o = &got[&b.id];
                        o.fair == p.fair && o.category == p.category
                    })
                    .collect();
                assert!(
                    holders.len() as u32 >= p.stalls,
                    "{} prefers {} and pool {} has a free stall",
                    a.id,
                    fair,
                    p.category
                );
                assert!(
                    holders.iter().all(|b| key(b) < key(a)),
                    "{} envies a holder of pool {}/{}",
                    a.id,
                    p.fair,
                    p.category
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_window_from_submission_to_verification_and_restart() {
    let h = Harness::start(0).await;
    let mut f = h.fairs().await;
    let messages = fair_messages("spring");

    // A bad item rejects the whole call, naming its path, and nothing of it is kept.
    let mut bad = fair_messages("spring");
    bad[1].applicants[3].tier = Some(5);
    let status = f
        .submit_applications(tokio_stream::iter(bad))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("request[1].applicants[3].tier: "),
        "{}",
        status.message()
    );
    assert_eq!(
        status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "request[1].applicants[3].tier"
    );
    let mut bad = fair_messages("spring");
    bad[0].applicants[1].choices = vec!["F1".into(), "F1".into()];
    let status = f
        .submit_applications(tokio_stream::iter(bad))
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .starts_with("request[0].applicants[1].choices[1]: "),
        "{}",
        status.message()
    );

    let added = f
        .submit_applications(tokio_stream::iter(messages.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((added.pools_added, added.applicants_added), (5, 14));
    assert_eq!((added.pools_total, added.applicants_total), (5, 14));
    // The same applicant again is refused.
    let again = f
        .submit_applications(tokio_stream::iter(vec![
            pb::SubmitFairApplicationsRequest {
                amend: false,
                window: "spring".into(),
                pools: vec![],
                applicants: vec![applicant("A03", "food", 0, 1, &["F1"])],
            },
        ]))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(
        again.message().starts_with("request[0].applicants[0].id: "),
        "{}",
        again.message()
    );
    // Each item received is a decision, and its receipt names it: entry, leaf hash, and a
    // proof of inclusion that an independent RFC 6962 verifier accepts.
    assert_eq!(h.log.size(), 19, "a refused call logged something");
    assert_eq!(added.receipts.len(), 19);
    let checkpoint = h.log.sign_checkpoint().unwrap().checkpoint;
    for r in &added.receipts {
        let entry = h.log.read(r.log_index).unwrap();
        assert_eq!(r.leaf_hash, entry.leaf_hash().to_vec(), "{}", r.key);
        assert_eq!(r.window, "spring");
        let decision = h.log.entry(r.log_index).unwrap().record;
        assert_eq!(decision.subject, r.key);
        assert!(matches!(
            decision.decision,
            Decision::ApplicationSubmitted(ref d) if d.window == "spring"
        ));
        let proof = h.log.inclusion_proof(r.log_index, checkpoint.size).unwrap();
        let path: Vec<[u8; 32]> = proof.path.clone();
        assert_eq!(
            rfc6962_root(r.log_index, checkpoint.size, entry.leaf_hash(), &path),
            checkpoint.root,
            "{}",
            r.key
        );
    }

    // Running an open window is refused; closing logs the commitment.
    let run_request = pb::RunFairAllocationRequest {
        window: "spring".into(),
        mechanism: pb::FairMechanism::Da as i32,
        beacon: None,
        precedence: 0,
        request_id: String::new(),
    };
    let open = f.run_allocation(run_request.clone()).await.unwrap_err();
    assert_eq!(open.code(), Code::FailedPrecondition, "{}", open.message());
    let commitment = f
        .close_applications(pb::CloseFairApplicationsRequest {
            window: "spring".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!(commitment.applications, 14);
    match h.log.entry(commitment.log_index).unwrap().record.decision {
        Decision::ApplicationsClosed(c) => {
            assert_eq!(c.set_digest.0.to_vec(), commitment.set_digest);
            assert_eq!(c.applications, 14);
        }
        other => panic!("{other:?}"),
    }
    let closed_again = f
        .close_applications(pb::CloseFairApplicationsRequest {
            window: "spring".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!(closed_again, commitment);
    let late = f
        .submit_applications(tokio_stream::iter(fair_messages("spring")))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    // A bad run request names its field and logs nothing.
    let size = h.log.size();
    let mut no_mechanism = run_request.clone();
    no_mechanism.mechanism = 0;
    let status = f.run_allocation(no_mechanism).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("request.mechanism: "),
        "{}",
        status.message()
    );
    assert_eq!(h.log.size(), size);
    // Every applicant has its own lottery number: a beacon is refused.
    let mut with_beacon = run_request.clone();
    with_beacon.beacon = Some(beacon());
    let refused = f.run_allocation(with_beacon).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "{}",
        refused.message()
    );

    let run = f.run_allocation(run_request).await.unwrap().into_inner();
    let summary = run.summary.unwrap();
    assert_eq!(summary.applicants, 14);
    let range = run.log.unwrap();
    assert_eq!(range.end - range.start, 15, "14 outcomes and the run");
    assert!(matches!(
        h.log.entry(range.end - 1).unwrap().record.decision,
        Decision::AllocationRun(_)
    ));

    let mut got = HashMap::new();
    for a in messages.iter().flat_map(|m| &m.applicants) {
        let o = f
            .get_outcome(pb::GetFairOutcomeRequest {
                run_id: run.run_id.clone(),
                applicant: a.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        match h.log.entry(o.log_index).unwrap().record.decision {
            Decision::Outcome(logged) => {
                assert_eq!(logged.assigned.unwrap_or_default(), o.fair);
            }
            other => panic!("{other:?}"),
        }
        got.insert(a.id.clone(), o);
    }
    assert_eq!(
        got.values().filter(|o| !o.fair.is_empty()).count() as u64,
        summary.placed
    );
    assert_stable(&messages, &got);

    // Explain someone who did not get a first choice.
    let unlucky = got
        .values()
        .find(|o| o.rank != 1)
        .map(|o| o.applicant.clone())
        .unwrap();
    let explained = f
        .explain(pb::ExplainFairOutcomeRequest {
            run_id: run.run_id.clone(),
            applicant: unlucky.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!explained.better_choices.is_empty());
    assert!(!explained.lines.is_empty());

    // Withdraw a placed applicant: its stall is re-offered down the waitlist.
    let placed = got
        .values()
        .find(|o| !o.fair.is_empty())
        .map(|o| o.applicant.clone())
        .unwrap();
    let withdrawn = f
        .withdraw(pb::WithdrawFairStallRequest {
            run_id: run.run_id.clone(),
            applicant: placed.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.fair, got[&placed].fair);
    let after = f
        .get_outcome(pb::GetFairOutcomeRequest {
            run_id: run.run_id.clone(),
            applicant: placed.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(after.fair.is_empty());
    let twice = f
        .withdraw(pb::WithdrawFairStallRequest {
            run_id: run.run_id.clone(),
            applicant: placed.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        twice.code(),
        Code::FailedPrecondition,
        "{}",
        twice.message()
    );

    let verified = f
        .verify(pb::VerifyFairRunRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap();
    assert!(verified.ok, "{:?}", verified.checks);
    assert_eq!(verified.logged_outcome_digest, run.outcome_digest);
    let unknown = f
        .verify(pb::VerifyFairRunRequest {
            run_id: vec![0; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{}", unknown.message());

    // After a restart: the run is read back from the log (with the withdrawal), and the window
    // is still closed.
    let dir = h.into_dir().await;
    let h = Harness::reopen(dir).await;
    let mut f = h.fairs().await;
    let reread = f
        .get_outcome(pb::GetFairOutcomeRequest {
            run_id: run.run_id.clone(),
            applicant: placed.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reread, after);
    if let Some(next) = &withdrawn.re_offered_to {
        let now = f
            .get_outcome(pb::GetFairOutcomeRequest {
                run_id: run.run_id.clone(),
                applicant: next.applicant.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&now, next);
    }
    let late = f
        .submit_applications(tokio_stream::iter(fair_messages("spring")))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_intake_with_a_drawn_lottery() {
    let h = Harness::start(0).await;
    let mut s = h.schools().await;
    let schools: Vec<pb::School> = (0..4)
        .map(|j| pb::School {
            id: format!("SCH{j}"),
            capacity: 3,
            reserves: vec![],
        })
        .collect();
    let students: Vec<pb::Student> = (0..16)
        .map(|i| pb::Student {
            second_factor: String::new(),
            id: format!("S{i:02}"),
            lottery: None,
            choices: (0..3).map(|k| format!("SCH{}", (i + k) % 4)).collect(),
        })
        .collect();
    let priorities: Vec<pb::SchoolPriority> = (0..16)
        .filter(|i| i % 3 == 0)
        .map(|i| pb::SchoolPriority {
            school: format!("SCH{}", (i + 1) % 4),
            student: format!("S{i:02}"),
            priority: 0,
        })
        .collect();
    let added = s
        .submit_applications(tokio_stream::iter(vec![
            pb::SubmitSchoolApplicationsRequest {
                amend: false,
                window: "2026".into(),
                schools: schools.clone(),
                students: students.clone(),
                priorities: priorities.clone(),
            },
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((added.schools_total, added.students_total), (4, 16));
    let mut bad_reserve = schools[0].clone();
    bad_reserve.id = "SCH9".into();
    bad_reserve.reserves = vec![pb::SeatReserve {
        priority_class: 0,
        seats: 9,
    }];
    let status = s
        .submit_applications(tokio_stream::iter(vec![
            pb::SubmitSchoolApplicationsRequest {
                amend: false,
                window: "2026".into(),
                schools: vec![bad_reserve],
                students: vec![],
                priorities: vec![],
            },
        ]))
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .starts_with("request[0].schools[0].reserves[0].seats: "),
        "{}",
        status.message()
    );
    let too_many = pb::Student {
        second_factor: String::new(),
        id: "S99".into(),
        lottery: None,
        choices: (0..13).map(|k| format!("SCH{k}")).collect(),
    };
    let status = s
        .submit_applications(tokio_stream::iter(vec![
            pb::SubmitSchoolApplicationsRequest {
                amend: false,
                window: "2026".into(),
                schools: vec![],
                students: vec![too_many],
                priorities: vec![],
            },
        ]))
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .starts_with("request[0].students[0].choices: "),
        "{}",
        status.message()
    );
    s.close_applications(pb::CloseSchoolApplicationsRequest {
        window: "2026".into(),
    })
    .await
    .unwrap();
    // No lottery numbers were given: they are drawn, so a beacon is required.
    let mut request = pb::RunSchoolAllocationRequest {
        window: "2026".into(),
        ..Default::default()
    };
    let refused = s.run_allocation(request.clone()).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "{}",
        refused.message()
    );
    let short = pb::Beacon {
        value: vec![1; 8],
        ..beacon()
    };
    request.beacon = Some(short);
    let status = s.run_allocation(request.clone()).await.unwrap_err();
    assert!(
        status.message().starts_with("request.beacon.value: "),
        "{}",
        status.message()
    );
    request.beacon = Some(beacon());
    let run = s.run_allocation(request).await.unwrap().into_inner();
    assert_eq!(run.seed.len(), 32);
    let summary = run.summary.unwrap();
    assert_eq!(summary.students, 16);
    assert_eq!(
        summary.assigned, 12,
        "12 seats, each student lists 3 of the 4 schools"
    );
    assert_eq!(summary.blocking_pairs, 0, "student-proposing DA is stable");
    let range = run.log.unwrap();
    assert!(matches!(
        h.log.entry(range.start).unwrap().record.decision,
        Decision::SeedDrawn(_)
    ));
    for st in &students {
        let o = s
            .get_outcome(pb::GetSchoolOutcomeRequest {
                run_id: run.run_id.clone(),
                student: st.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if o.rank > 0 {
            assert_eq!(st.choices[o.rank as usize - 1], o.school);
        }
        // The student's history ends with the run's outcome; a placed student accepts its seat,
        // an unplaced one cannot.
        let history = s
            .get_application_status(pb::GetApplicationStatusRequest {
                window: "2026".into(),
                id: st.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let last = history.steps.last().unwrap();
        assert_eq!(
            (last.log_index, last.place.as_str()),
            (o.log_index, o.school.as_str())
        );
        let accepted = s
            .accept_place(pb::AcceptPlaceRequest {
                run_id: run.run_id.clone(),
                id: st.id.clone(),
            })
            .await;
        use pb::application_step::Kind;
        match (o.school.is_empty(), accepted) {
            (true, Err(status)) => {
                assert_eq!(last.kind(), Kind::Waitlisted);
                assert_eq!(status.code(), Code::FailedPrecondition);
            }
            (false, Ok(a)) => {
                assert_eq!(last.kind(), Kind::Placed);
                assert_eq!(a.into_inner().place, o.school);
            }
            (_, other) => panic!("{}: {other:?}", st.id),
        }
        let e = s
            .explain(pb::ExplainSchoolOutcomeRequest {
                run_id: run.run_id.clone(),
                student: st.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let better = if o.rank == 0 { 3 } else { o.rank - 1 };
        assert_eq!(e.better_choices.len() as u32, better);
        for b in &e.better_choices {
            // Each better school is full of students ahead of this one.
            let cutoff = b.cutoff.as_ref().unwrap();
            assert_eq!(cutoff.admitted, cutoff.capacity);
            let c = cutoff.cutoff.as_ref().unwrap();
            let own = b.own_priority.as_ref().unwrap();
            assert!((c.priority_class, c.lottery) < (own.priority_class, own.lottery));
        }
    }
    let unknown = s
        .get_outcome(pb::GetSchoolOutcomeRequest {
            run_id: run.run_id.clone(),
            student: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let verified = s
        .verify(pb::VerifySchoolRunRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap();
    assert!(
        verified.ok && verified.seed_matches,
        "{:?}",
        verified.checks
    );

    // A seat given back goes down the school's waitlist: the best student who listed it above
    // what it holds takes it, and the seat that student leaves moves on the same way.
    let before = school_assignment(&mut s, &run.run_id).await;
    let lottery = lotteries(&mut s, &run.run_id, &students).await;
    let leaver = before.iter().find(|(_, a)| a.is_some()).unwrap().0.clone();
    let given = s
        .withdraw(pb::WithdrawSchoolSeatRequest {
            run_id: run.run_id.clone(),
            student: leaver.clone(),
            request_id: "give-back-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(Some(&given.school), before[&leaver].as_ref().map(|a| &a.0));
    let after = school_assignment(&mut s, &run.run_id).await;
    assert_eq!(after[&leaver], None);
    let log = given.log.unwrap();
    assert_eq!(given.changes.len() as u64, log.end - log.start);
    assert!(given.changes.len() >= 2, "the freed seat was re-offered");
    for (k, change) in given.changes.iter().enumerate() {
        let entry = h.log.entry(change.log_index).unwrap();
        assert_eq!(entry.record.subject, change.participant);
        if k == 0 {
            assert!(matches!(entry.record.decision, Decision::Withdrawn(_)));
            continue;
        }
        // The mover now holds the seat, and every student still wanting that school and holding
        // something worse (or nothing) has a lower priority there.
        assert!(matches!(entry.record.decision, Decision::PlaceReOffered(_)));
        let mover = &change.participant;
        assert_eq!(after[mover].as_ref().map(|a| &a.0), Some(&change.place));
        // Class 0 where listed, else the default class 1; then the lottery.
        let key = |id: &str| {
            let listed = priorities
                .iter()
                .any(|p| p.school == change.place && p.student == id);
            (u32::from(!listed), lottery[id])
        };
        for st in students.iter().filter(|st| st.id != leaver) {
            let listed = st.choices.iter().position(|c| *c == change.place);
            let holds = after[&st.id].as_ref().map_or(u32::MAX, |a| a.1);
            if let Some(at) = listed
                && (at as u32) + 1 < holds
            {
                assert!(
                    key(mover) < key(&st.id),
                    "{} passed over for {mover}",
                    st.id
                );
            }
        }
    }
    if let Some(next) = &given.re_offered_to {
        assert_eq!(next.school, given.school);
        assert_eq!(next.log_index, given.changes[1].log_index);
    }
    let results = s
        .get_results(pb::GetSchoolResultsRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    let figures = results.summary.unwrap();
    assert_eq!(figures.blocking_pairs, 0, "no envy appears");
    assert_eq!(
        figures.assigned,
        after.values().filter(|a| a.is_some()).count() as u64
    );
    // Once given back, there is nothing to give back again; the retried call answers the same.
    let again = s
        .withdraw(pb::WithdrawSchoolSeatRequest {
            run_id: run.run_id.clone(),
            student: leaver.clone(),
            request_id: "give-back-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::FailedPrecondition,
        "{}",
        again.message()
    );
    let retried = s
        .withdraw(pb::WithdrawSchoolSeatRequest {
            run_id: run.run_id.clone(),
            student: leaver.clone(),
            request_id: "give-back-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, given);
    let history = s
        .get_application_status(pb::GetApplicationStatusRequest {
            window: "2026".into(),
            id: leaver.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = history.steps.last().unwrap();
    assert_eq!(
        (last.kind(), last.log_index),
        (pb::application_step::Kind::GivenBack, log.start)
    );
}

/// Every student's school and 1-based rank now, by id.
async fn school_assignment(
    s: &mut SchoolsClient<Authorized>,
    run_id: &[u8],
) -> HashMap<String, Option<(String, u32)>> {
    let mut stream = s
        .get_results(pb::GetSchoolResultsRequest {
            run_id: run_id.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = HashMap::new();
    while let Some(message) = stream.next().await {
        for a in message.unwrap().assignments {
            let held = (a.rank > 0).then_some((a.school, a.rank));
            out.insert(a.student, held);
        }
    }
    out
}

/// Every student's lottery number in a run (single tie-breaking: one per student), read from
/// the API's outcome or, for a student without a seat, its explanation.
async fn lotteries(
    s: &mut SchoolsClient<Authorized>,
    run_id: &[u8],
    students: &[pb::Student],
) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for st in students {
        let e = s
            .explain(pb::ExplainSchoolOutcomeRequest {
                run_id: run_id.to_vec(),
                student: st.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let own = e
            .outcome
            .unwrap()
            .priority
            .or_else(|| e.better_choices.first().and_then(|b| b.own_priority));
        out.insert(st.id.clone(), own.unwrap().lottery);
    }
    out
}

/// The root an inclusion proof implies, computed as RFC 9162 section 2.1.3.2 says, written here
/// apart from the log's own verifier.
fn rfc6962_root(index: u64, size: u64, leaf: [u8; 32], path: &[[u8; 32]]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let node = |left: &[u8; 32], right: &[u8; 32]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    };
    let (mut f_n, mut s_n, mut r) = (index, size - 1, leaf);
    for p in path {
        if f_n & 1 == 1 || f_n == s_n {
            r = node(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    r
}

/// A window holds at most `limits.max_window_items` items; a call that would pass the cap is
/// refused whole (RESOURCE_EXHAUSTED naming the window), and logs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_holds_at_most_its_configured_items() {
    let h = Harness::with(0, |c| c.limits.max_window_items = 10).await;
    let mut f = h.fairs().await;
    let mut exhausted = async |messages: Vec<pb::SubmitFairApplicationsRequest>| {
        let status = f
            .submit_applications(tokio_stream::iter(messages))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{}",
            status.message()
        );
        status
    };
    // fair_messages has 5 pools and 14 applications: 19 items.
    let status = exhausted(fair_messages("big")).await;
    assert!(
        status.message().starts_with("request[0].window: ") && status.message().contains("10"),
        "{}",
        status.message()
    );
    assert_eq!(h.log.size(), 0, "a refused call logged something");
    // Within the cap, items come in; a call that would pass it is refused whole.
    let mut first = fair_messages("big");
    first.truncate(1);
    first[0].applicants.truncate(2);
    let mut more = first.clone();
    more[0].pools.clear();
    more[0].applicants = fair_messages("big")[0].applicants[2..6].to_vec();
    // A second client: the first is borrowed by `exhausted`.
    let mut g = h.fairs().await;
    let added = g
        .submit_applications(tokio_stream::iter(first))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((added.pools_total, added.applicants_total), (5, 2));
    assert_eq!(h.log.size(), 7);
    exhausted(more).await;
    assert_eq!(h.log.size(), 7, "a refused call logged something");
}

/// Amendments and withdrawals before close, checked against the log entry by entry and against
/// the digest of the same final set read from files; then each applicant's history through the
/// run, a given-back stall and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amendments_withdrawals_and_an_applicants_history() {
    use pb::application_step::Kind;
    let h = Harness::start(0).await;
    let mut f = h.fairs().await;
    let mut messages = fair_messages("summer");
    f.submit_applications(tokio_stream::iter(messages.clone()))
        .await
        .unwrap();
    let amend = |applicants: Vec<pb::FairApplicant>| pb::SubmitFairApplicationsRequest {
        window: "summer".into(),
        applicants,
        amend: true,
        ..Default::default()
    };

    // Amending what is not there, or withdrawing it, is refused by name and logs nothing.
    let size = h.log.size();
    let ghost = applicant("A99", "food", 0, 5, &["F1"]);
    let refused = f
        .submit_applications(tokio_stream::iter(vec![amend(vec![ghost])]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{}", refused.message());
    assert!(
        refused
            .message()
            .starts_with("request[0].applicants[0].id: ")
    );
    let withdraw = |window: &str, ids: &[&str]| pb::WithdrawApplicationsRequest {
        window: window.into(),
        ids: ids.iter().map(|id| (*id).to_owned()).collect(),
    };
    for (request, code, path) in [
        (
            withdraw("summer", &["A99"]),
            Code::NotFound,
            "request.ids[0]",
        ),
        (
            withdraw("summer", &["A01", "A01"]),
            Code::InvalidArgument,
            "request.ids[1]",
        ),
        (
            withdraw("summer", &[]),
            Code::InvalidArgument,
            "request.ids",
        ),
        (
            withdraw("winter", &["A01"]),
            Code::NotFound,
            "request.window",
        ),
    ] {
        let status = f.withdraw_applications(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().starts_with(&format!("{path}: ")),
            "{}",
            status.message()
        );
    }
    assert_eq!(h.log.size(), size);

    // A02 amends its application, A05 and A07 withdraw, A07 applies again.
    let a02 = applicant("A02", "crafts", 0, 3, &["F2", "F3"]);
    let amended = f
        .submit_applications(tokio_stream::iter(vec![amend(vec![a02.clone()])]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amended.receipts.len(), 1);
    assert_eq!(amended.applicants_total, 14);
    let withdrawn = f
        .withdraw_applications(withdraw("summer", &["A05", "A07"]))
        .await
        .unwrap()
        .into_inner();
    for r in &withdrawn.receipts {
        let entry = h.log.entry(r.log_index).unwrap();
        assert_eq!(entry.record.subject, r.key);
        assert!(matches!(
            entry.record.decision,
            Decision::ApplicationWithdrawn(_)
        ));
        assert_eq!(
            h.log.read(r.log_index).unwrap().leaf_hash().to_vec(),
            r.leaf_hash
        );
    }
    let a07 = applicant("A07", "food", 2, 77, &["F1"]);
    let again = pb::SubmitFairApplicationsRequest {
        window: "summer".into(),
        applicants: vec![a07.clone()],
        ..Default::default()
    };
    f.submit_applications(tokio_stream::iter(vec![again]))
        .await
        .unwrap();
    let kinds = |status: &pb::ApplicationStatus| -> Vec<Kind> {
        status.steps.iter().map(|s| s.kind()).collect()
    };
    let status = |id: &str| pb::GetApplicationStatusRequest {
        window: "summer".into(),
        id: id.into(),
    };
    let history = f
        .get_application_status(status("A07"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        kinds(&history),
        [Kind::Received, Kind::Withdrawn, Kind::Received]
    );
    // Each step is the decision at its index.
    for step in &history.steps {
        let entry = h.log.entry(step.log_index).unwrap();
        assert_eq!(entry.record.subject, "applicant:A07");
        let withdrawal = matches!(entry.record.decision, Decision::ApplicationWithdrawn(_));
        assert_eq!(withdrawal, step.kind() == Kind::Withdrawn);
    }

    // The commitment is the digest of the final set, read independently from files.
    let commitment = f
        .close_applications(pb::CloseFairApplicationsRequest {
            window: "summer".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    for m in &mut messages {
        m.applicants.retain(|a| a.id != "A05" && a.id != "A07");
        for a in &mut m.applicants {
            if a.id == "A02" {
                *a = a02.clone();
            }
        }
    }
    messages[1].applicants.push(a07);
    let dir = tempfile::tempdir().unwrap();
    let mut fairs = String::from("fair,district,category,stalls\n");
    for p in messages.iter().flat_map(|m| &m.pools) {
        fairs += &format!("{},{},{},{}\n", p.fair, p.district, p.category, p.stalls);
    }
    let mut applicants = String::from("applicant,category,tier,lottery,choices\n");
    for a in messages.iter().flat_map(|m| &m.applicants) {
        let (tier, lottery) = (a.tier.unwrap(), a.lottery.unwrap());
        let choices = a.choices.join(";");
        applicants += &format!("{},{},{tier},{lottery},{choices}\n", a.id, a.category);
    }
    std::fs::write(dir.path().join("fairs.csv"), fairs).unwrap();
    std::fs::write(dir.path().join("applicants.csv"), applicants).unwrap();
    let files = allot_engine::fair::read(
        &dir.path().join("fairs.csv"),
        &dir.path().join("applicants.csv"),
    )
    .unwrap();
    let expected = allot_engine::allocation::set_digest::<allot_engine::fair::Fairs>(&files.input);
    assert_eq!(commitment.set_digest, expected.0.to_vec());
    assert_eq!(commitment.applications, 13);
    let late = f
        .withdraw_applications(withdraw("summer", &["A01"]))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{}", late.message());

    // After the run: each applicant's outcome is a step, at its Outcome entry.
    let run = f
        .run_allocation(pb::RunFairAllocationRequest {
            window: "summer".into(),
            mechanism: pb::FairMechanism::Da as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let outcome = |id: &str| pb::GetFairOutcomeRequest {
        run_id: run.run_id.clone(),
        applicant: id.into(),
    };
    let mut placed = None;
    let mut kinds_of = HashMap::new();
    for a in messages.iter().flat_map(|m| &m.applicants) {
        let o = f.get_outcome(outcome(&a.id)).await.unwrap().into_inner();
        let history = f
            .get_application_status(status(&a.id))
            .await
            .unwrap()
            .into_inner();
        let (closed, last) = (
            &history.steps[history.steps.len() - 2],
            history.steps.last().unwrap(),
        );
        assert_eq!(
            (closed.kind(), closed.log_index),
            (Kind::InClosedSet, commitment.log_index)
        );
        assert_eq!(last.log_index, o.log_index, "{}", a.id);
        assert_eq!(last.run_id, run.run_id);
        assert_eq!(last.place, o.fair);
        let expect = if o.fair.is_empty() {
            Kind::Waitlisted
        } else {
            Kind::Placed
        };
        assert_eq!(last.kind(), expect, "{}", a.id);
        if !o.fair.is_empty() {
            assert_eq!(last.rank, o.rank);
            placed.get_or_insert(a.id.clone());
        }
        kinds_of.insert(a.id.clone(), kinds(&history));
    }
    let history = f
        .get_application_status(status("A05"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        kinds(&history),
        [Kind::Received, Kind::Withdrawn],
        "not in the closed set"
    );
    let history = f
        .get_application_status(status("A02"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        &kinds(&history)[..3],
        [Kind::Received, Kind::Amended, Kind::InClosedSet]
    );

    // A placed applicant accepts its stall (once: again answers the same entry); one without a
    // stall cannot.
    let placed = placed.expect("someone is placed");
    let accept = |id: &str| pb::AcceptPlaceRequest {
        run_id: run.run_id.clone(),
        id: id.into(),
    };
    let accepted = f.accept_place(accept(&placed)).await.unwrap().into_inner();
    let again = f.accept_place(accept(&placed)).await.unwrap().into_inner();
    assert_eq!(again, accepted);
    let entry = h.log.entry(accepted.log_index).unwrap().record;
    assert_eq!(entry.subject, placed);
    match entry.decision {
        Decision::PlaceAccepted(d) => assert_eq!(d.place, accepted.place),
        other => panic!("{other:?}"),
    }
    let history = f
        .get_application_status(status(&placed))
        .await
        .unwrap()
        .into_inner();
    let last = history.steps.last().unwrap();
    assert_eq!(
        (last.kind(), last.log_index),
        (Kind::Accepted, accepted.log_index)
    );
    let waiting = messages
        .iter()
        .flat_map(|m| &m.applicants)
        .find(|a| {
            let history = &kinds_of[&a.id];
            history.last() == Some(&Kind::Waitlisted)
        })
        .map(|a| a.id.clone())
        .expect("13 applicants for 8 stalls: someone waits");
    let refused = f.accept_place(accept(&waiting)).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::FailedPrecondition,
        "{}",
        refused.message()
    );

    // A stall given back: a step for the giver and one for whoever is offered it.
    let given = f
        .withdraw(pb::WithdrawFairStallRequest {
            run_id: run.run_id.clone(),
            applicant: placed.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let history = f
        .get_application_status(status(&placed))
        .await
        .unwrap()
        .into_inner();
    let last = history.steps.last().unwrap();
    assert_eq!(
        (last.kind(), last.place.as_str()),
        (Kind::GivenBack, given.fair.as_str())
    );
    assert_eq!(last.log_index, given.changes[0].log_index);
    let offered = given.re_offered_to.as_ref().map(|o| o.applicant.clone());
    if let Some(next) = &offered {
        let history = f
            .get_application_status(status(next))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(history.steps.last().unwrap().kind(), Kind::Offered);
    }

    // The same histories after a restart, rebuilt from the log.
    let mut before = Vec::new();
    for id in ["A02", "A05", "A07", &placed] {
        before.push(
            f.get_application_status(status(id))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let h = Harness::reopen(h.into_dir().await).await;
    let mut f = h.fairs().await;
    for b in before {
        let id = b.key.trim_start_matches("applicant:");
        let after = f
            .get_application_status(status(id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(after, b);
    }
}
