//! Power cuts during an application intake. The server runs in process over a log on the
//! power-cut file system (`allot_engine::fs::powercut`); clients apply to one school window, one
//! student per call, and withdraw every fifth application they got acknowledged. The power is
//! cut at a random file-system operation or group commit; the machine comes back with what a
//! disk could hold. Then, on the recovered folder:
//!
//! - every acknowledged application and withdrawal is in the log at the entry its receipt named;
//! - no application is logged twice, and none is held that was never sent;
//! - an acknowledged application is held unless a withdrawal of it was sent;
//! - a server started on the folder closes the window on exactly that set: its commitment is the
//!   digest of the set read independently, from CSV text of what the clients sent.
//!
//! `ALLOT_TEST_SEED` replays the cut points and what survives each cut (thread interleavings are
//! the machine's); `ALLOT_INTAKE_POWER_CUTS` sets the number of cuts (200 by default).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use allot_engine::allocation::set_digest;
use allot_engine::fs::powercut::PowerCutFs;
use allot_engine::fs::{DataDir, SyncPoint};
use allot_engine::input::Table;
use allot_engine::log::{Decision, Log, LogOptions};
use allot_engine::school::{self, Schools};
use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::access::Roles;
use allot_service::server::config::{Caller, ServerConfig, mint_token};
use allot_service::server::{Domains, ServerHandle};
use allot_testkit::TestSeed;
use rand::RngExt as _;
use rand::rngs::StdRng;

const DATA: &str = "/data";
const WINDOW: &str = "intake";
const CLIENTS: usize = 4;
const APPLICATIONS_PER_CLIENT: u64 = 25;
const SCHOOLS: u64 = 3;

/// What the clients sent and what the server acknowledged.
#[derive(Default)]
struct Acks {
    /// key -> entry of the acknowledged submission.
    applied: HashMap<String, u64>,
    /// key -> entry of the acknowledged withdrawal.
    withdrawn: HashMap<String, u64>,
    sent: HashSet<String>,
    withdrawals_sent: HashSet<String>,
}

fn choices(id: &str) -> Vec<String> {
    let k: u64 = id.bytes().map(u64::from).sum();
    (0..=k % 2)
        .map(|j| format!("S{}", (k + j) % SCHOOLS))
        .collect()
}

fn start(fs: &PowerCutFs, runtime: &tokio::runtime::Runtime, token: &str) -> Option<ServerHandle> {
    let data = DataDir::on(Arc::new(fs.clone()), DATA);
    let options = LogOptions {
        segment_bytes: 64 << 10,
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(&data, options).ok()?);
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let caller = Caller {
        name: "intake".into(),
        roles: Roles::ALL,
    };
    config.tokens.insert_token(token, caller);
    let started = runtime.block_on(allot_service::server::start_with(
        config,
        log,
        Domains::default(),
    ));
    started.ok()
}

fn stop(handle: ServerHandle, runtime: &tokio::runtime::Runtime) {
    handle.shutdown();
    let _ = runtime.block_on(handle.wait());
}

/// The window's schools.
fn schools() -> pb::SubmitSchoolApplicationsRequest {
    pb::SubmitSchoolApplicationsRequest {
        window: WINDOW.into(),
        schools: (0..SCHOOLS)
            .map(|k| pb::School {
                id: format!("S{k}"),
                capacity: 20,
                reserves: Vec::new(),
            })
            .collect(),
        ..Default::default()
    }
}

/// The schools, then the clients' applications and withdrawals, until done or refused.
async fn intake(url: String, token: String, acks: Arc<Mutex<Acks>>) {
    let Ok(channel) = client::connect(&url, None).await else {
        return;
    };
    let bearer = Bearer::new(Some(&token)).unwrap();
    let mut s = client::schools(channel.clone(), bearer.clone());
    if s.submit_applications(tokio_stream::iter([schools()]))
        .await
        .is_err()
    {
        return;
    }
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (acks, mut s) = (
            acks.clone(),
            client::schools(channel.clone(), bearer.clone()),
        );
        tasks.push(tokio::spawn(async move {
            for k in 0..APPLICATIONS_PER_CLIENT {
                let id = format!("C{c}-{k}");
                let key = format!("student:{id}");
                acks.lock().unwrap().sent.insert(key.clone());
                let request = pb::SubmitSchoolApplicationsRequest {
                    window: WINDOW.into(),
                    students: vec![pb::Student {
                        second_factor: String::new(),
                        id: id.clone(),
                        lottery: None,
                        choices: choices(&id),
                    }],
                    ..Default::default()
                };
                let Ok(answer) = s.submit_applications(tokio_stream::iter([request])).await else {
                    return;
                };
                let index = answer.into_inner().receipts[0].log_index;
                acks.lock().unwrap().applied.insert(key.clone(), index);
                if k % 5 == 4 {
                    acks.lock().unwrap().withdrawals_sent.insert(key.clone());
                    let request = pb::WithdrawApplicationsRequest {
                        window: WINDOW.into(),
                        ids: vec![id],
                    };
                    let Ok(answer) = s.withdraw_applications(request).await else {
                        return;
                    };
                    let index = answer.into_inner().receipts[0].log_index;
                    acks.lock().unwrap().withdrawn.insert(key, index);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The window's students as the log has them (applied, not withdrawn), checking that none is
/// logged twice and that every acknowledged step is at its entry.
fn check_log(log: &Log, acks: &Acks) -> Result<HashSet<String>, String> {
    for (steps, withdrawal) in [(&acks.applied, false), (&acks.withdrawn, true)] {
        for (key, &index) in steps {
            if index >= log.size() {
                return Err(format!(
                    "{key}: acknowledged entry {index} lost (log size {})",
                    log.size()
                ));
            }
            let record = log.entry(index).map_err(|e| e.to_string())?.record;
            let is_withdrawal = matches!(record.decision, Decision::ApplicationWithdrawn(_));
            if record.subject != *key || is_withdrawal != withdrawal {
                return Err(format!(
                    "{key}: entry {index} is {}",
                    record.decision.name()
                ));
            }
        }
    }
    let mut submitted = HashSet::new();
    let mut held = HashSet::new();
    for raw in log.entries(0..log.size()).map_err(|e| e.to_string())? {
        let entry = raw
            .map_err(|e| e.to_string())?
            .decode()
            .map_err(|e| e.to_string())?;
        let key = entry.record.subject;
        match entry.record.decision {
            Decision::ApplicationSubmitted(_) if key.starts_with("student:") => {
                if !submitted.insert(key.clone()) {
                    return Err(format!("{key} logged twice"));
                }
                held.insert(key);
            }
            Decision::ApplicationWithdrawn(_) => {
                held.remove(&key);
            }
            _ => {}
        }
    }
    for key in &held {
        if !acks.sent.contains(key) {
            return Err(format!("{key} held but never sent"));
        }
    }
    for key in acks.applied.keys() {
        let lost = !held.contains(key) && !acks.withdrawals_sent.contains(key);
        if lost {
            return Err(format!("{key}: acknowledged, never withdrawn, lost"));
        }
        if held.contains(key) && acks.withdrawn.contains_key(key) {
            return Err(format!("{key}: withdrawal acknowledged, still held"));
        }
    }
    Ok(held)
}

/// The digest of the window's set, read from CSV text of what the clients sent.
fn expected_digest(held: &HashSet<String>) -> [u8; 32] {
    let mut students = String::from("student,choices\n");
    for key in held {
        let id = key.trim_start_matches("student:");
        students += &format!("{id},{}\n", choices(id).join(";"));
    }
    let schools: String =
        (0..SCHOOLS).fold("school,capacity\n".into(), |s, k| s + &format!("S{k},20\n"));
    let table = |name: &str, text: String| Table::from_bytes(name, text.into_bytes()).unwrap();
    let files = school::read_tables(
        &table("schools.csv", schools),
        &table("students.csv", students),
        &table("priorities.csv", "school,student,priority\n".into()),
        None,
    )
    .unwrap();
    set_digest::<Schools>(&files.input).0
}

fn trial(
    seed: u64,
    span: (u64, u64),
    skip: Option<SyncPoint>,
    runtime: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let mut rng: StdRng = rand::SeedableRng::seed_from_u64(seed);
    let fs = PowerCutFs::new();
    if let Some(point) = skip {
        fs.skip_sync(point);
    }
    match rng.random_range(0..2) {
        0 => fs.cut_after(rng.random_range(1..=span.0)),
        _ => fs.cut_at_sync(SyncPoint::LogGroup, rng.random_range(1..=span.1)),
    }
    let acks = Arc::new(Mutex::new(Acks::default()));
    let token = mint_token().unwrap();
    if let Some(server) = start(&fs, runtime, &token) {
        let url = format!("http://{}", server.local_addr());
        runtime.block_on(intake(url, token.clone(), acks.clone()));
        stop(server, runtime);
    }
    fs.cut();
    let fs = fs.restart(rng.random());
    let acks = acks.lock().unwrap();
    let server = start(&fs, runtime, &token).ok_or("the recovered folder does not open")?;
    let url = format!("http://{}", server.local_addr());
    let closed = runtime.block_on(async {
        let channel = client::connect(&url, None).await.unwrap();
        let mut s = client::schools(channel, Bearer::new(Some(&token)).unwrap());
        let request = pb::CloseSchoolApplicationsRequest {
            window: WINDOW.into(),
        };
        s.close_applications(request).await
    });
    stop(server, runtime);
    let data = DataDir::on(Arc::new(fs.clone()), DATA);
    let log = Log::open(&data, LogOptions::default()).map_err(|e| e.to_string())?;
    let held = check_log(&log, &acks)?;
    match closed {
        Ok(closed) => {
            let commitment = closed.into_inner().commitment.unwrap_or_default();
            if commitment.applications != held.len() as u64 {
                return Err(format!(
                    "closed {} of {} held",
                    commitment.applications,
                    held.len()
                ));
            }
            if commitment.set_digest != expected_digest(&held) {
                return Err("the commitment is not the digest of the held set".into());
            }
        }
        // The window never got its schools, or has no student: nothing to close.
        Err(status) if held.is_empty() => {
            let _ = status;
        }
        Err(status) => return Err(format!("close: {status:?}")),
    }
    Ok(())
}

#[test]
fn acknowledged_applications_survive_power_cuts() {
    let seed = TestSeed::new("acknowledged_applications_survive_power_cuts");
    let cuts: usize = std::env::var("ALLOT_INTAKE_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runtime = runtime();
    let span = span(&runtime);
    let mut rng = seed.rng(0);
    for trial_number in 0..cuts {
        let trial_seed: u64 = rng.random();
        if let Err(e) = trial(trial_seed, span, None, &runtime) {
            panic!("trial {trial_number} (seed {trial_seed}): {e}");
        }
    }
    println!(
        "{cuts} power cuts during intakes of {} applications ({} file-system operations, {} group \
         commits each)",
        CLIENTS as u64 * APPLICATIONS_PER_CLIENT,
        span.0,
        span.1
    );
}

/// Without the log group's fsync the same checks fail: the test sees acknowledged applications
/// lost (a folder whose signed checkpoint is ahead of its log, which refuses to open, is
/// another symptom; the search goes on past it).
#[test]
fn without_the_group_fsync_acknowledged_applications_are_lost() {
    let seed = TestSeed::new("without_the_group_fsync_acknowledged_applications_are_lost");
    let runtime = runtime();
    let span = span(&runtime);
    let mut rng = seed.rng(0);
    for trial_number in 0..2_000 {
        let trial_seed: u64 = rng.random();
        match trial(trial_seed, span, Some(SyncPoint::LogGroup), &runtime) {
            Err(e) if e.contains("lost") => {
                println!("trial {trial_number}: {e}");
                return;
            }
            _ => {}
        }
    }
    panic!("2,000 power cuts without the group fsync lost nothing acknowledged");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What an intake takes without a cut (file-system operations, group commits): the range cuts
/// are drawn from.
fn span(runtime: &tokio::runtime::Runtime) -> (u64, u64) {
    let fs = PowerCutFs::new();
    let token = mint_token().unwrap();
    let server = start(&fs, runtime, &token).unwrap();
    let url = format!("http://{}", server.local_addr());
    let acks = Arc::new(Mutex::new(Acks::default()));
    runtime.block_on(intake(url, token, acks.clone()));
    stop(server, runtime);
    let acked = acks.lock().unwrap().applied.len() as u64;
    assert_eq!(
        acked,
        CLIENTS as u64 * APPLICATIONS_PER_CLIENT,
        "an intake without cuts"
    );
    let groups = fs.syncs().get(&SyncPoint::LogGroup).copied().unwrap_or(1);
    (fs.ops(), groups)
}

/// The torn write of issue 16's report, through the API: 400 applications acknowledged, the
/// power cut while the next one's group is written (so the disk may hold any part of it), one
/// more application after the restart, then the close: the 400 and the one after are in the
/// closed set, whose digest is that of the set read independently. Over 20 restarts, each
/// keeping a different part of the torn group.
#[test]
fn a_torn_write_loses_no_acknowledged_application() {
    let seed = TestSeed::new("a_torn_write_loses_no_acknowledged_application");
    let runtime = runtime();
    let mut rng = seed.rng(0);
    for restart in 0..20 {
        let fs = PowerCutFs::new();
        let token = mint_token().unwrap();
        let server = start(&fs, &runtime, &token).unwrap();
        let url = format!("http://{}", server.local_addr());
        let acks = Arc::new(Mutex::new(Acks::default()));
        let submit = |url: String, token: String, id: String, acks: Arc<Mutex<Acks>>| async move {
            let channel = client::connect(&url, None).await.unwrap();
            let mut s = client::schools(channel, Bearer::new(Some(&token)).unwrap());
            let key = format!("student:{id}");
            acks.lock().unwrap().sent.insert(key.clone());
            let request = pb::SubmitSchoolApplicationsRequest {
                window: WINDOW.into(),
                students: vec![pb::Student {
                    second_factor: String::new(),
                    choices: choices(&id),
                    id,
                    lottery: None,
                }],
                ..Default::default()
            };
            let answer = s.submit_applications(tokio_stream::iter([request])).await;
            if let Ok(answer) = answer {
                let index = answer.into_inner().receipts[0].log_index;
                acks.lock().unwrap().applied.insert(key, index);
            }
        };
        // The schools and 400 students, through the intake's first steps, then one at a time.
        runtime.block_on(async {
            let channel = client::connect(&url, None).await.unwrap();
            let mut s = client::schools(channel, Bearer::new(Some(&token)).unwrap());
            s.submit_applications(tokio_stream::iter([schools()]))
                .await
                .unwrap();
            for k in 0..400 {
                submit(url.clone(), token.clone(), format!("T{k}"), acks.clone()).await;
            }
        });
        assert_eq!(acks.lock().unwrap().applied.len(), 400);
        fs.cut_at_sync(SyncPoint::LogGroup, 1);
        runtime.block_on(submit(url, token.clone(), "T400".into(), acks.clone()));
        stop(server, &runtime);
        fs.cut();
        let fs = fs.restart(rng.random());
        let server = start(&fs, &runtime, &token).expect("the recovered folder opens");
        let url = format!("http://{}", server.local_addr());
        runtime.block_on(submit(
            url.clone(),
            token.clone(),
            "T401".into(),
            acks.clone(),
        ));
        let closed = runtime.block_on(async {
            let channel = client::connect(&url, None).await.unwrap();
            let mut s = client::schools(channel, Bearer::new(Some(&token)).unwrap());
            let request = pb::CloseSchoolApplicationsRequest {
                window: WINDOW.into(),
            };
            s.close_applications(request).await.unwrap().into_inner()
        });
        stop(server, &runtime);
        let acks = acks.lock().unwrap();
        assert!(
            acks.applied.contains_key("student:T401"),
            "restart {restart}"
        );
        let data = DataDir::on(Arc::new(fs.clone()), DATA);
        let log = Log::open(&data, LogOptions::default()).unwrap();
        let held = check_log(&log, &acks).unwrap_or_else(|e| panic!("restart {restart}: {e}"));
        let commitment = closed.commitment.unwrap();
        assert_eq!(
            commitment.applications,
            held.len() as u64,
            "restart {restart}"
        );
        assert!(
            (401..=402).contains(&held.len()),
            "restart {restart}: {}",
            held.len()
        );
        assert_eq!(
            commitment.set_digest,
            expected_digest(&held),
            "restart {restart}"
        );
    }
}
