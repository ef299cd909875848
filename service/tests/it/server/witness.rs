//! Witnesses (c2sp.org/tlog-witness) and the cosigning policy end to end, read by code written
//! by others: Cloudflare's `signed_note` parses the notes and checks the log's signatures, and
//! the witnesses' cosignatures are checked by a tlog-cosignature v1 verifier written here from the
//! spec (not allot's). Witnesses run in process on real sockets; the monitor is the `allot`
//! binary.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allot_engine::log::proof::verify_consistency;
use allot_engine::log::tlog_proof::TlogProof;
use allot_engine::log::{Log, LogOptions, SigningKey, TrustPolicy, VerifierKey};
use allot_engine::witness::{AddCheckpoint, SIZE_CONTENT_TYPE, Witness};
use allot_service::proto::v1 as pb;
use allot_service::server::config::{ServerConfig, WitnessConfig};
use allot_service::server::{Domains, ServeError};
use allot_service::witness::{CosignError, WitnessClient, http_client};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tempfile::TempDir;
use tokio::sync::watch;

use super::{Harness, append, record};

/// A tlog-cosignature v1 verifier from the spec: key id = SHA-256(name || "\n" || 0x04 || key)[:4],
/// signature = u64 big-endian timestamp || Ed25519 over "cosignature/v1\ntime <t>\n" || body.
struct CosignatureV1 {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl CosignatureV1 {
    fn new(vkey: &str) -> CosignatureV1 {
        let mut parts = vkey.trim().splitn(3, '+');
        let (name, id, key) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let key = B64.decode(key).unwrap();
        assert_eq!(key[0], 0x04, "a cosignature/v1 key");
        let id = u32::from_str_radix(id, 16).unwrap();
        assert_eq!(signed_note::key_id(name, &key), id, "the key id of {vkey}");
        CosignatureV1 {
            name: name.to_owned(),
            id,
            key: ed25519_dalek::VerifyingKey::from_bytes(&key[1..].try_into().unwrap()).unwrap(),
        }
    }
}

impl signed_note::Verifier for CosignatureV1 {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((stamp, signature)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let mut message = format!("cosignature/v1\ntime {}\n", u64::from_be_bytes(*stamp));
        message.push_str(std::str::from_utf8(msg).unwrap());
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key
            .verify_strict(message.as_bytes(), &signature)
            .is_ok()
    }
}

/// The names whose signatures on `note` verify under Cloudflare's `signed_note`, with the log's
/// key and the witnesses' keys; an invalid signature by a known key fails.
fn independently_verified(note: &str, log: &VerifierKey, witnesses: &[VerifierKey]) -> Vec<String> {
    let mut known: Vec<Box<dyn signed_note::Verifier>> = vec![Box::new(
        signed_note::StandardVerifier::new(&log.to_text()).unwrap(),
    )];
    for w in witnesses {
        known.push(Box::new(CosignatureV1::new(&w.to_text())));
    }
    let note = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    let (verified, _) = note.verify(&signed_note::VerifierList::new(known)).unwrap();
    verified.iter().map(|s| s.name().to_owned()).collect()
}

/// A witness in this process on 127.0.0.1.
pub(crate) struct RunningWitness {
    witness: Arc<Witness>,
    pub(crate) url: String,
    stop: watch::Sender<bool>,
    _dir: TempDir,
}

impl RunningWitness {
    pub(crate) async fn start(name: &str, logs: &[VerifierKey]) -> RunningWitness {
        let dir = TempDir::new().unwrap();
        let witness = Arc::new(Witness::open(dir.path(), name, logs).unwrap());
        let (listener, addr) = allot_service::witness::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(allot_service::witness::serve(
            witness.clone(),
            listener,
            stopped,
        ));
        RunningWitness {
            witness,
            url: format!("http://{addr}"),
            stop,
            _dir: dir,
        }
    }

    fn config(&self) -> WitnessConfig {
        WitnessConfig {
            url: self.url.clone(),
            key: self.witness.verifier(),
        }
    }

    pub(crate) fn key(&self) -> VerifierKey {
        self.witness.verifier()
    }
}

fn with_witnesses(
    witnesses: &[&RunningWitness],
    quorum: usize,
) -> impl FnOnce(&mut ServerConfig) + use<> {
    let configs: Vec<WitnessConfig> = witnesses.iter().map(|w| w.config()).collect();
    move |c: &mut ServerConfig| {
        c.witnesses = configs;
        c.witness_quorum = quorum;
        c.checkpoint_interval = Duration::from_millis(50);
        c.tiles_listen = Some("127.0.0.1:0".parse().unwrap());
    }
}

/// A POST of `body` to the witness: status, content type, body.
async fn post(url: &str, body: String) -> (u16, String, String) {
    let response = http_client(Duration::from_secs(5))
        .unwrap()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

/// A log in a temporary folder with `n` entries, and its signed checkpoint.
fn log_with(n: u64) -> (TempDir, Log) {
    let dir = TempDir::new().unwrap();
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    append(&log, n);
    (dir, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_answers_add_checkpoint_as_the_spec_says() {
    let (_d1, log) = log_with(40);
    let (_d2, stranger) = log_with(3);
    let w = RunningWitness::start("witness.test/w1", &[log.verifier_key().clone()]).await;
    let at_40 = log.sign_checkpoint().unwrap();

    // First contact: old size 0, no proof. The cosignature verifies independently.
    let (status, _, body) = post(&w.url, AddCheckpoint::to_body(0, &[], &at_40.note)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("\u{2014} witness.test/w1 ") && body.ends_with('\n'));
    let cosigned = format!("{}{body}", at_40.note);
    let names = independently_verified(&cosigned, log.verifier_key(), &[w.key()]);
    assert_eq!(names, [log.origin(), "witness.test/w1"]);

    // A stale old size: 409 with the witness's size, as text/x.tlog.size.
    let (status, kind, body) = post(&w.url, AddCheckpoint::to_body(0, &[], &at_40.note)).await;
    assert_eq!(
        (status, kind.as_str(), body.as_str()),
        (409, SIZE_CONTENT_TYPE, "40\n")
    );
    // An unknown origin: 404. The right origin signed by another key: 403.
    let other = stranger.sign_checkpoint().unwrap();
    assert_eq!(
        post(&w.url, AddCheckpoint::to_body(0, &[], &other.note))
            .await
            .0,
        404
    );
    let impostor = SigningKey::from_seed(log.origin(), [9; 32]).unwrap();
    let forged = impostor.sign_note(&at_40.checkpoint.body()).unwrap();
    assert_eq!(
        post(&w.url, AddCheckpoint::to_body(40, &[], &forged))
            .await
            .0,
        403
    );
    // An old size beyond the checkpoint's, and a malformed body: 400.
    assert_eq!(
        post(&w.url, AddCheckpoint::to_body(41, &[], &at_40.note))
            .await
            .0,
        400
    );
    assert_eq!(post(&w.url, "old 40\nnot base64\n\n".into()).await.0, 400);

    // The log grows: a proof that does not verify is 422, the right one 200.
    append(&log, 25);
    let at_65 = log.sign_checkpoint().unwrap();
    let mut proof = log.consistency_proof(40, 65).unwrap().path;
    let good = AddCheckpoint::to_body(40, &proof, &at_65.note);
    proof[0][0] ^= 1;
    let (status, _, _) = post(&w.url, AddCheckpoint::to_body(40, &proof, &at_65.note)).await;
    assert_eq!(status, 422);
    let (status, _, body) = post(&w.url, good).await;
    assert_eq!(status, 200, "{body}");
    let seen = w.witness.seen(log.origin()).unwrap();
    assert_eq!((seen.size, seen.root), (65, at_65.checkpoint.root));
    // The same checkpoint again is cosigned again; another root at that size is 409.
    assert_eq!(
        post(&w.url, AddCheckpoint::to_body(65, &[], &at_65.note))
            .await
            .0,
        200
    );
    let mut other_root = at_65.checkpoint.clone();
    other_root.root[0] ^= 1;
    let other_root =
        SigningKey::parse(&std::fs::read_to_string(log.dir().join("signing.key")).unwrap())
            .unwrap()
            .sign_note(&other_root.body())
            .unwrap();
    let (status, kind, body) = post(&w.url, AddCheckpoint::to_body(65, &[], &other_root)).await;
    assert_eq!(
        (status, kind.as_str(), body.as_str()),
        (409, SIZE_CONTENT_TYPE, "65\n")
    );
    let _ = w.stop.send(true);
}

/// Waits until the tiles serve a checkpoint of at least `size` entries; returns its note.
async fn published(tiles: &str, size: u64, within: Duration) -> String {
    let http = http_client(Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + within;
    loop {
        let response = http
            .get(format!("{tiles}/checkpoint"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            let note = response.text().await.unwrap();
            let served: u64 = note.lines().nth(1).unwrap().parse().unwrap();
            if served >= size {
                return note;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size} published within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_published_once_a_quorum_of_witnesses_cosigned_them() {
    // The log's key comes first so the witnesses can know it; it lives outside the data folder.
    let key_dir = TempDir::new().unwrap();
    let key = SigningKey::generate("quorum.test/log").unwrap();
    std::fs::write(key_dir.path().join("signing.key"), key.to_text()).unwrap();
    let logs = [key.verifier()];
    let (w1, w2, w3) = (
        RunningWitness::start("w1.test", &logs).await,
        RunningWitness::start("w2.test", &logs).await,
        RunningWitness::start("w3.test", &logs).await,
    );
    // The third witness is down: it must delay nothing while two answer.
    let _ = w3.stop.send(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dir = TempDir::new().unwrap();
    let options = LogOptions {
        signing_key: Some(key.clone()),
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(dir.path(), options).unwrap());
    assert!(!dir.path().join("log/signing.key").exists());
    append(&log, 100);
    let tweak = with_witnesses(&[&w1, &w2, &w3], 2);
    let h = Harness::launch(dir, log, Domains::default(), tweak).await;
    let tiles = h.tiles_url.clone().unwrap();
    let witnesses = [w1.key(), w2.key(), w3.key()];

    let note = published(&tiles, 100, Duration::from_secs(5)).await;
    let names = independently_verified(&note, &key.verifier(), &witnesses);
    assert_eq!(names, ["quorum.test/log", "w1.test", "w2.test"]);
    // More entries: published again within a second of being logged.
    append(&h.log, 57);
    let started = Instant::now();
    let note = published(&tiles, 157, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        independently_verified(&note, &key.verifier(), &witnesses).len(),
        3
    );
    // The Audit API names the same cosigned checkpoint.
    let answer = h
        .auditor()
        .await
        .get_checkpoint(pb::GetCheckpointRequest { refresh: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.cosigned.map(|c| (c.tree_size, c.note)),
        Some((157, note.clone()))
    );
    // A receipt for entry 120 in the cosigned checkpoint verifies offline under the policy.
    let answer = h
        .auditor()
        .await
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            index: 120,
            cosigned: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let policy = TrustPolicy {
        log: key.verifier(),
        witnesses: witnesses.to_vec(),
        quorum: 2,
    };
    let receipt = TlogProof::parse(&answer.tlog_proof).unwrap();
    let trusted = receipt.verify(&policy, None).unwrap();
    assert_eq!(trusted.checkpoint.size, 157);
    assert_eq!(
        receipt.extra.as_deref(),
        Some(&answer.entry.unwrap().data[..])
    );
    let strict = TrustPolicy {
        quorum: 3,
        ..policy.clone()
    };
    assert!(receipt.verify(&strict, None).is_err());

    // The kept history only grows, and a restart keeps the newest cosigned checkpoint.
    let dir = h.into_dir().await;
    let history = std::fs::read_to_string(dir.path().join("log/cosigned-history")).unwrap();
    let sizes: Vec<u64> = history
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] < w[1]) && sizes.last() == Some(&157),
        "{sizes:?}"
    );
    let kept = std::fs::read_to_string(dir.path().join("log/cosigned")).unwrap();
    assert_eq!(policy.check(&kept).unwrap().checkpoint.size, 157);
    let _ = (w1.stop.send(true), w2.stop.send(true));
}

/// Opens `dir` with `key` and starts a server configured by `tweak`.
async fn restart(
    dir: TempDir,
    key: &SigningKey,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Result<Harness, (TempDir, ServeError)> {
    let options = LogOptions {
        signing_key: Some(key.clone()),
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(dir.path(), options).unwrap());
    Harness::try_launch(dir, log, Domains::default(), tweak).await
}

/// `allot audit monitor` once on `tiles`: exit code and output.
fn monitor(
    tiles: &str,
    state: &Path,
    log: &VerifierKey,
    witnesses: &[VerifierKey],
) -> (i32, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_allot"));
    command.args(["audit", "monitor", "--log", tiles, "--log-key"]);
    command.arg(log.to_text()).arg("--state").arg(state);
    for w in witnesses {
        command.arg("--witness-key").arg(w.to_text());
    }
    command.args(["--quorum", "2"]);
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_log_resigned_with_its_own_key_convinces_no_one() {
    let key = SigningKey::generate("attack.test/log").unwrap();
    let logs = [key.verifier()];
    let witnesses = [
        RunningWitness::start("w1.test", &logs).await,
        RunningWitness::start("w2.test", &logs).await,
        RunningWitness::start("w3.test", &logs).await,
    ];
    let keys: Vec<VerifierKey> = witnesses.iter().map(RunningWitness::key).collect();
    let policy = TrustPolicy {
        log: key.verifier(),
        witnesses: keys.clone(),
        quorum: 2,
    };
    let configured = || with_witnesses(&[&witnesses[0], &witnesses[1], &witnesses[2]], 2);

    // The honest log: 200 entries, cosigned; a client and a monitor keep that checkpoint.
    let dir = TempDir::new().unwrap();
    let options = LogOptions {
        signing_key: Some(key.clone()),
        ..LogOptions::default()
    };
    let log = Arc::new(Log::open(dir.path(), options.clone()).unwrap());
    append(&log, 200);
    let h = Harness::try_launch(dir, log, Domains::default(), configured())
        .await
        .map_err(|e| e.1)
        .unwrap();
    let earlier = published(h.tiles_url.as_ref().unwrap(), 200, Duration::from_secs(5)).await;
    let earlier_root = policy.check(&earlier).unwrap().checkpoint.root;
    let monitor_state = TempDir::new().unwrap();
    let (code, out) = monitor(
        h.tiles_url.as_ref().unwrap(),
        monitor_state.path(),
        &key.verifier(),
        &keys,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: size 200 "), "{out}");
    let dir = h.into_dir().await;

    // The attack: the same records but entry 50, plus ten more, re-signed with the log's key,
    // put in place of the log's files (the cosigned checkpoint kept beside them).
    let forged_dir = TempDir::new().unwrap();
    let forged = Log::open(forged_dir.path(), options.clone()).unwrap();
    for i in 0..210 {
        let i = if i == 50 { 1_000_050 } else { i };
        forged.append(&record(i)).unwrap();
    }
    forged.sign_checkpoint().unwrap();
    forged.close().unwrap();
    let log_dir = dir.path().join("log");
    for kept in ["cosigned", "cosigned-history"] {
        std::fs::rename(log_dir.join(kept), forged_dir.path().join("log").join(kept)).unwrap();
    }
    std::fs::remove_dir_all(&log_dir).unwrap();
    std::fs::rename(forged_dir.path().join("log"), &log_dir).unwrap();

    // The server refuses the log: it disagrees with the newest cosigned checkpoint.
    let (dir, refused) = match restart(dir, &key, configured()).await {
        Ok(_) => panic!("a rewritten log was served"),
        Err(refused) => refused,
    };
    let refused = refused.to_string();
    assert!(
        refused.contains("log/cosigned") && refused.contains("rewritten"),
        "{refused}"
    );

    // The attacker removes the cosigned checkpoint too: the server starts, but every witness
    // refuses the rewritten tree (409 or 422) and no checkpoint reaches the quorum.
    std::fs::remove_file(dir.path().join("log/cosigned")).unwrap();
    let h = restart(dir, &key, configured())
        .await
        .map_err(|e| e.1)
        .unwrap();
    let signed = h.log.sign_checkpoint().unwrap();
    assert_eq!(signed.checkpoint.size, 210);
    let http = http_client(Duration::from_secs(5)).unwrap();
    for w in &witnesses {
        let client = WitnessClient::new(&w.url, w.key(), http.clone());
        match client.cosign(&h.log, &signed).await {
            Err(CosignError::Refused { status, .. }) => assert!(status == 409 || status == 422),
            other => panic!("{}: {other:?}", w.url),
        }
        let seen = w.witness.seen("attack.test/log").unwrap();
        assert_eq!((seen.size, seen.root), (200, earlier_root));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tiles = h.tiles_url.clone().unwrap();
    let status = http
        .get(format!("{tiles}/checkpoint"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        status, 503,
        "nothing reaches the quorum, so nothing is published"
    );

    // A client holding the earlier cosigned checkpoint rejects the new one: it lacks the
    // quorum, and the log's own consistency proof from 200 does not lead to its root.
    let later = h
        .auditor()
        .await
        .get_checkpoint(pb::GetCheckpointRequest { refresh: false })
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap();
    assert!(policy.check(&later.note).is_err());
    let proof = h
        .auditor()
        .await
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: 200,
            new_size: Some(later.tree_size),
        })
        .await
        .unwrap()
        .into_inner();
    let path: Vec<[u8; 32]> = proof
        .path
        .iter()
        .map(|h| h[..].try_into().unwrap())
        .collect();
    let new_root: [u8; 32] = later.root_hash[..].try_into().unwrap();
    assert!(verify_consistency(200, later.tree_size, &earlier_root, &new_root, &path).is_err());
    let dir = h.into_dir().await;

    // The attacker drops the witnesses and serves the re-signed checkpoint: the monitor, which
    // verified size 200, exits 3 with both checkpoints.
    let h = restart(dir, &key, |c| {
        c.tiles_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await
    .map_err(|e| e.1)
    .unwrap();
    let (code, out) = monitor(
        h.tiles_url.as_ref().unwrap(),
        monitor_state.path(),
        &key.verifier(),
        &keys,
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("EVIDENCE") && out.contains(&earlier) && out.contains(&later.note),
        "{out}"
    );
    for w in &witnesses {
        let _ = w.stop.send(true);
    }
}

/// The `allot witness serve` binary on a free port: the child and its URL.
fn spawn_witness(data: &Path, log_key: &VerifierKey) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args([
            "witness",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "kill.test/w",
        ])
        .arg("--data")
        .arg(data)
        .arg("--log-key")
        .arg(log_key.to_text())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if let Some(url) = line.unwrap().strip_prefix("listening on ") {
            return (child, url.to_owned());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the witness did not start");
}

/// A checkpoint note of `log`'s tree at `size`, signed with `key`.
fn note_at(log: &Log, key: &SigningKey, size: u64) -> String {
    let checkpoint = allot_engine::log::Checkpoint {
        origin: key.name().to_owned(),
        size,
        root: log.root_at(size).unwrap(),
        extensions: Vec::new(),
    };
    key.sign_note(&checkpoint.body()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_killed_at_random_never_cosigns_two_inconsistent_checkpoints() {
    use rand::RngExt as _;
    let seed = allot_testkit::TestSeed::new(
        "a_witness_killed_at_random_never_cosigns_two_inconsistent_checkpoints",
    );
    let mut rng = seed.rng(0);
    // Two forks of one log (same origin and key) that agree on their first 20 entries.
    let key = SigningKey::generate("kill.test/log").unwrap();
    let options = LogOptions {
        signing_key: Some(key.clone()),
        ..LogOptions::default()
    };
    let (da, db) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let forks = [
        Log::open(da.path(), options.clone()).unwrap(),
        Log::open(db.path(), options).unwrap(),
    ];
    const SHARED: u64 = 20;
    const SIZE: u64 = 5_000;
    for i in 0..SIZE {
        forks[0].append(&record(i)).unwrap();
        forks[1]
            .append(&record(if i < SHARED { i } else { 10_000 + i }))
            .unwrap();
    }
    let data = TempDir::new().unwrap();
    let http = http_client(Duration::from_secs(5)).unwrap();
    // Every cosignature received, in order: (fork, size).
    let mut cosigned: Vec<(usize, u64)> = Vec::new();
    let mut kills = 0;
    while kills < 25 {
        let (mut child, url) = spawn_witness(data.path(), &key.verifier());
        // What the witness says it holds must cover every cosignature it gave.
        let mut known = 0;
        let body = AddCheckpoint::to_body(0, &[], &note_at(&forks[0], &key, 0));
        let response = http
            .post(format!("{url}/add-checkpoint"))
            .body(body)
            .send()
            .await
            .unwrap();
        if response.status() == 409 {
            known = response.text().await.unwrap().trim().parse().unwrap();
        }
        let acknowledged = cosigned.last().map_or(0, |c| c.1);
        assert!(
            known >= acknowledged,
            "the witness forgot size {acknowledged} (holds {known})"
        );
        let kill_after = Duration::from_millis(rng.random_range(5..80));
        let started = Instant::now();
        while started.elapsed() < kill_after {
            // Mostly the fork it follows, sometimes the other one.
            let fork = usize::from(rng.random_bool(0.3));
            let size = (known + rng.random_range(0..20)).min(SIZE);
            let proof = match known {
                0 => Vec::new(),
                old => forks[fork].consistency_proof(old, size).unwrap().path,
            };
            let body = AddCheckpoint::to_body(known, &proof, &note_at(&forks[fork], &key, size));
            let Ok(response) = http
                .post(format!("{url}/add-checkpoint"))
                .body(body)
                .send()
                .await
            else {
                break;
            };
            match response.status().as_u16() {
                200 => {
                    cosigned.push((fork, size));
                    known = size;
                }
                409 => {
                    if let Ok(size) = response.text().await.unwrap_or_default().trim().parse() {
                        known = size;
                    }
                }
                422 => {}
                other => panic!("status {other}"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    // Sizes never went back, and past the shared prefix only one fork was ever cosigned.
    assert!(cosigned.len() > 50, "only {} cosignatures", cosigned.len());
    assert!(
        cosigned.windows(2).all(|w| w[0].1 <= w[1].1),
        "{cosigned:?}"
    );
    let forks_cosigned: std::collections::BTreeSet<usize> = cosigned
        .iter()
        .filter(|c| c.1 > SHARED)
        .map(|c| c.0)
        .collect();
    assert!(
        forks_cosigned.len() <= 1,
        "both forks cosigned: {cosigned:?}"
    );
    let sizes: Vec<u64> = cosigned.iter().map(|c| c.1).collect();
    eprintln!(
        "{kills} kills, {} cosignatures up to size {:?}",
        sizes.len(),
        sizes.last()
    );
}
