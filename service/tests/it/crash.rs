//! Crash consistency of the real server: `allot serve --dev` on a small generated city, clients
//! booking slots concurrently (and a fair administrator running allocations), SIGKILL at a
//! random moment, 20 times over. After every kill: `allot audit verify` passes, every
//! acknowledged booking and run is in the log as acknowledged, no slot is booked twice; after
//! every restart: the acknowledged bookings are served back, and the new checkpoint is consistent
//! with every checkpoint seen before (consistency proofs verified here, signatures checked with
//! the log's key).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allot_engine::log::decision::Decision;
use allot_engine::log::proof::verify_consistency;
use allot_engine::log::{Log, SignedCheckpoint, VerifierKey};
use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_testkit::TestSeed;
use rand::RngExt as _;

const KILLS: usize = 20;
const CLIENTS: usize = 6;

struct Server {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args([
            "serve",
            "--dev",
            "--dev-scale",
            "0.01",
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut token = None;
    while url.is_none() || token.is_none() {
        let line = lines
            .next()
            .expect("the server printed its banner")
            .unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.to_owned());
        } else if let Some(t) = line.strip_prefix("development token (all roles): ") {
            token = Some(t.to_owned());
        }
    }
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        url: url.unwrap(),
        token: token.unwrap(),
    }
}

/// What the server acknowledged.
#[derive(Default)]
struct Acked {
    /// appointment id -> (slot id, log index)
    bookings: HashMap<String, (String, u64)>,
    /// run id -> log index of its `AllocationRun`
    runs: HashMap<Vec<u8>, u64>,
    /// Applications to the intake window: key -> entry of the acknowledged submission.
    applied: HashMap<String, u64>,
    /// key -> entry of the acknowledged withdrawal.
    withdrawn: HashMap<String, u64>,
    /// Every application key sent, acknowledged or not.
    sent: HashSet<String>,
    /// Every withdrawal sent, acknowledged or not.
    withdrawals_sent: HashSet<String>,
}

/// The school window the applicants of [`applicant`] submit to.
const INTAKE: &str = "crash-intake";

pub fn patient(id: String) -> pb::Patient {
    pb::Patient {
        id,
        home: Some(pb::Location {
            lat: 55.75,
            lon: 37.62,
        }),
        attached_clinic: String::new(),
    }
}

/// Books slots until the connection breaks.
async fn booker(server: (String, String), name: String, acked: Arc<Mutex<Acked>>) {
    let Ok(channel) = client::connect(&server.0, None).await else {
        return;
    };
    let mut c = client::appointments(channel, Bearer::new(Some(&server.1)).unwrap());
    for k in 0.. {
        let id = format!("{name}-{k}");
        let found = match c
            .find_slots(pb::FindSlotsRequest {
                patient: Some(patient(id.clone())),
                specialty: "therapist".into(),
                count: 3,
                ..Default::default()
            })
            .await
        {
            Ok(r) => r.into_inner().proposals,
            Err(_) => return,
        };
        let Some(slot) = found.first().and_then(|p| p.slot.clone()) else {
            return;
        };
        match c
            .book(pb::BookRequest {
                target: Some(pb::book_request::Target::SlotId(slot.id.clone())),
                patient: Some(patient(id)),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                let a = r.into_inner().appointment.unwrap();
                let slot_id = a.slot.as_ref().unwrap().id.clone();
                assert_eq!(slot_id, slot.id);
                acked
                    .lock()
                    .unwrap()
                    .bookings
                    .insert(a.id.clone(), (slot_id, a.log_index));
            }
            // Another client took the slot first: try again.
            Err(s) if s.code() == tonic::Code::Aborted => {}
            Err(_) => return,
        }
    }
}

/// Runs fair allocations on the development window until the connection breaks.
async fn allocator(server: (String, String), round: usize, acked: Arc<Mutex<Acked>>) {
    let Ok(channel) = client::connect(&server.0, None).await else {
        return;
    };
    let mut f = client::fairs(channel, Bearer::new(Some(&server.1)).unwrap());
    let window = "dev-fairs".to_owned();
    if f.close_applications(pb::CloseFairApplicationsRequest {
        window: window.clone(),
    })
    .await
    .is_err()
    {
        return;
    }
    for k in 0u64.. {
        let mechanism = [
            pb::FairMechanism::Da,
            pb::FairMechanism::Welfare,
            pb::FairMechanism::Rsd,
        ][(k % 3) as usize];
        match f
            .run_allocation(pb::RunFairAllocationRequest {
                window: window.clone(),
                mechanism: mechanism as i32,
                beacon: Some(pb::Beacon {
                    source: "test".into(),
                    round: round as u64 * 1000 + k,
                    value: format!("a public beacon value, round {round}, run {k}").into_bytes(),
                }),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                let log = r.log.expect("the run's log range");
                // The batch is the seed (if drawn), the run, then the outcomes.
                let run_index = (log.start..log.end).collect::<Vec<_>>();
                acked.lock().unwrap().runs.insert(r.run_id, run_index[0]);
                // Each run logs every applicant's outcome: pace them so the log stays small.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(_) => return,
        }
    }
}

/// Applies to the intake window, one student per call, and withdraws every fifth application
/// it got acknowledged, until the connection breaks.
async fn applicant(server: (String, String), name: String, acked: Arc<Mutex<Acked>>) {
    let Ok(channel) = client::connect(&server.0, None).await else {
        return;
    };
    let mut s = client::schools(channel, Bearer::new(Some(&server.1)).unwrap());
    let schools = pb::SubmitSchoolApplicationsRequest {
        window: INTAKE.into(),
        schools: (1..=3)
            .map(|k| pb::School {
                id: format!("S{k}"),
                capacity: 10,
                reserves: Vec::new(),
            })
            .collect(),
        ..Default::default()
    };
    match s.submit_applications(tokio_stream::iter([schools])).await {
        Ok(_) => {}
        Err(e) if e.code() == tonic::Code::AlreadyExists => {}
        Err(_) => return,
    }
    for k in 0u64.. {
        let id = format!("{name}-{k}");
        let key = format!("student:{id}");
        acked.lock().unwrap().sent.insert(key.clone());
        let request = pb::SubmitSchoolApplicationsRequest {
            window: INTAKE.into(),
            students: vec![pb::Student {
                second_factor: String::new(),
                id: id.clone(),
                lottery: None,
                choices: vec![format!("S{}", 1 + k % 3)],
            }],
            ..Default::default()
        };
        let Ok(answer) = s.submit_applications(tokio_stream::iter([request])).await else {
            return;
        };
        let receipt = &answer.into_inner().receipts[0];
        assert_eq!(receipt.key, key);
        acked
            .lock()
            .unwrap()
            .applied
            .insert(key.clone(), receipt.log_index);
        if k % 5 == 4 {
            acked.lock().unwrap().withdrawals_sent.insert(key.clone());
            let request = pb::WithdrawApplicationsRequest {
                window: INTAKE.into(),
                ids: vec![id],
            };
            let Ok(answer) = s.withdraw_applications(request).await else {
                return;
            };
            let index = answer.into_inner().receipts[0].log_index;
            acked.lock().unwrap().withdrawn.insert(key, index);
        }
    }
}

/// The intake window as the log has it: the students applied and not withdrawn; no key is
/// submitted twice (no client sends one twice).
fn intake_in_log(log: &Log, round: usize) -> HashSet<String> {
    let mut submitted = HashSet::new();
    let mut held = HashSet::new();
    for entry in log.entries(0..log.size()).unwrap() {
        let entry = entry.unwrap().decode().unwrap();
        let key = entry.record.subject;
        match entry.record.decision {
            Decision::ApplicationSubmitted(d)
                if d.window == INTAKE && key.starts_with("student:") =>
            {
                assert!(
                    submitted.insert(key.clone()),
                    "round {round}: {key} logged twice"
                );
                held.insert(key);
            }
            Decision::ApplicationWithdrawn(d) if d.window == INTAKE => {
                assert!(
                    held.remove(&key),
                    "round {round}: {key} withdrawn but not held"
                );
            }
            _ => {}
        }
    }
    held
}

/// Checks the log left by a kill: verify, acknowledged decisions, no double booking.
/// Panics, naming both entries, if a slot is booked twice without a cancellation between.
pub fn no_slot_booked_twice(entries: impl Iterator<Item = allot_engine::log::Entry>, label: &str) {
    let mut booked: HashMap<String, u64> = HashMap::new();
    let mut freed: HashSet<String> = HashSet::new();
    for entry in entries {
        match &entry.record.decision {
            Decision::SlotBooked(b) => {
                if let Some(first) = booked.insert(b.slot.clone(), entry.index)
                    && !freed.remove(&b.slot)
                {
                    panic!(
                        "{label}: slot {} booked twice (entries {first} and {})",
                        b.slot, entry.index
                    );
                }
            }
            Decision::AppointmentCancelled(c) => {
                freed.insert(c.slot.clone());
            }
            _ => {}
        }
    }
}

fn check_log(data: &Path, acked: &Acked, round: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["audit", "verify", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "round {round}: audit verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Log::open_read_only(data).unwrap();
    let size = log.size();
    let entries = log.entries(0..size).unwrap();
    no_slot_booked_twice(
        entries.map(|e| e.unwrap().decode().unwrap()),
        &format!("round {round}"),
    );
    for (appointment, (slot, index)) in &acked.bookings {
        assert!(*index < size, "round {round}: booking at {index} lost");
        match log.entry(*index).unwrap().record.decision {
            Decision::SlotBooked(b) => {
                assert_eq!(
                    (&b.appointment, &b.slot),
                    (appointment, slot),
                    "round {round}"
                )
            }
            other => panic!("round {round}: entry {index} is {}", other.name()),
        }
    }
    // Every acknowledged application and withdrawal is in the log at its entry; nothing is held
    // that was not sent.
    for (acks, withdrawal) in [(&acked.applied, false), (&acked.withdrawn, true)] {
        for (key, index) in acks {
            assert!(*index < size, "round {round}: {key} at {index} lost");
            let entry = log.entry(*index).unwrap().record;
            assert_eq!(&entry.subject, key, "round {round}");
            let is_withdrawal = matches!(entry.decision, Decision::ApplicationWithdrawn(_));
            assert_eq!(is_withdrawal, withdrawal, "round {round}: entry {index}");
        }
    }
    let held = intake_in_log(&log, round);
    for key in &held {
        assert!(
            acked.sent.contains(key),
            "round {round}: {key} was never sent"
        );
    }
    // An acknowledged application is held unless withdrawn: surely if the withdrawal was
    // acknowledged, possibly if its answer was lost in the kill.
    for key in acked.applied.keys() {
        if acked.withdrawn.contains_key(key) {
            assert!(
                !held.contains(key),
                "round {round}: {key} withdrawn but held"
            );
        } else if !held.contains(key) {
            assert!(
                acked.withdrawals_sent.contains(key),
                "round {round}: {key} lost"
            );
        }
    }
    for index in acked.runs.values() {
        assert!(*index < size, "round {round}: run at {index} lost");
        let decision = log.entry(*index).unwrap().record.decision;
        assert!(
            matches!(
                decision,
                Decision::AllocationRun(_) | Decision::SeedDrawn(_)
            ),
            "round {round}: entry {index} is {}",
            decision.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_decisions_survive_sigkill_of_the_server() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let seed = TestSeed::new("acknowledged_decisions_survive_sigkill_of_the_server");
    let mut rng = seed.rng(0);
    let acked = Arc::new(Mutex::new(Acked::default()));
    // (size, root) of every checkpoint seen, from the server and from the data folder.
    let mut seen: Vec<(u64, [u8; 32])> = Vec::new();
    let mut key: Option<VerifierKey> = None;
    let mut previous_bookings = 0;
    for round in 0..=KILLS {
        let server = start(&data);
        let key = key.get_or_insert_with(|| {
            VerifierKey::parse(&std::fs::read_to_string(data.join("log/verifier.key")).unwrap())
                .unwrap()
        });
        let channel = client::connect(&server.url, None).await.unwrap();
        let bearer = || Bearer::new(Some(&server.token)).unwrap();

        // The new checkpoint is consistent with every checkpoint seen before.
        let mut audit = client::audit(channel.clone(), bearer());
        let now = audit
            .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
            .await
            .unwrap()
            .into_inner()
            .checkpoint
            .unwrap();
        let now = SignedCheckpoint::open(&now.note, key).unwrap().checkpoint;
        for &(old_size, old_root) in &seen {
            assert!(old_size <= now.size, "round {round}: the log shrank");
            if old_size == now.size {
                assert_eq!(
                    old_root, now.root,
                    "round {round}: another root at {old_size}"
                );
                continue;
            }
            let proof = audit
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    old_size,
                    new_size: Some(now.size),
                })
                .await
                .unwrap()
                .into_inner();
            let path: Vec<[u8; 32]> = proof
                .path
                .iter()
                .map(|h| h.as_slice().try_into().unwrap())
                .collect();
            verify_consistency(old_size, now.size, &old_root, &now.root, &path)
                .unwrap_or_else(|e| panic!("round {round}: {old_size} -> {}: {e}", now.size));
        }
        seen.push((now.size, now.root));

        // Every booking acknowledged so far is served back as booked.
        {
            let snapshot: Vec<(String, String)> = acked
                .lock()
                .unwrap()
                .bookings
                .iter()
                .map(|(a, (s, _))| (a.clone(), s.clone()))
                .collect();
            let mut c = client::appointments(channel.clone(), bearer());
            for (appointment, slot) in snapshot {
                let a = c
                    .get_appointment(pb::GetAppointmentRequest {
                        appointment_id: appointment.clone(),
                    })
                    .await
                    .unwrap_or_else(|s| panic!("round {round}: {appointment}: {s:?}"))
                    .into_inner()
                    .appointment
                    .unwrap();
                assert_eq!(a.status, pb::AppointmentStatus::Booked as i32);
                assert_eq!(a.slot.unwrap().id, slot);
            }
        }
        if round == KILLS {
            // The window closes on exactly the applications the log holds.
            let mut s = client::schools(channel.clone(), bearer());
            let request = pb::CloseSchoolApplicationsRequest {
                window: INTAKE.into(),
            };
            let closed = s.close_applications(request).await.unwrap().into_inner();
            let log = Log::open_read_only(&data).unwrap();
            let held = intake_in_log(&log, round);
            assert_eq!(closed.commitment.unwrap().applications, held.len() as u64);
            break;
        }

        // Load, then a kill at a random moment.
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let who = (server.url.clone(), server.token.clone());
            tasks.push(tokio::spawn(booker(
                who,
                format!("P{round}x{i}"),
                acked.clone(),
            )));
        }
        tasks.push(tokio::spawn(allocator(
            (server.url.clone(), server.token.clone()),
            round,
            acked.clone(),
        )));
        tasks.push(tokio::spawn(applicant(
            (server.url.clone(), server.token.clone()),
            format!("R{round}"),
            acked.clone(),
        )));
        let wait = rng.random_range(150..750);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let mut server = server;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        drop(server);
        if let Ok(note) = std::fs::read_to_string(data.join("log/checkpoint")) {
            let cp = SignedCheckpoint::open(&note, key).unwrap().checkpoint;
            seen.push((cp.size, cp.root));
        }
        let acked = acked.lock().unwrap();
        check_log(&data, &acked, round);
        assert!(
            acked.bookings.len() > previous_bookings,
            "round {round}: no booking was acknowledged in this round"
        );
        previous_bookings = acked.bookings.len();
    }
    let acked = acked.lock().unwrap();
    eprintln!(
        "{KILLS} kills: {} bookings, {} allocation runs, {} applications and {} withdrawals \
         acknowledged, all present; {} checkpoints consistent; {:.1} s",
        acked.bookings.len(),
        acked.runs.len(),
        acked.applied.len(),
        acked.withdrawn.len(),
        seen.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        !acked.runs.is_empty(),
        "no allocation run was acknowledged in any round"
    );
}
