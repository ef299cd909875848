//! `allot audit ...` end to end, on a log filled through the engine's library.

use std::path::Path;
use std::process::{Command, Output};

use allot_engine::log::decision::{AllocationRun, Domain, Outcome, RunCounts};
use allot_engine::log::{Digest, Log, LogOptions, Record, Timestamp};
use sha2::{Digest as _, Sha256};

fn allot(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env_remove("ALLOT_SERVER")
        .arg("--data")
        .arg(data)
        .output()
        .expect("run allot")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A fair run as a domain would log it: the run and its outcomes in one batch.
fn fill(data: &Path, participants: u64) {
    let log = Log::open(data, LogOptions::default()).unwrap();
    let run = AllocationRun {
        domain: Domain::Fairs,
        mechanism: "da".into(),
        input_digest: Digest([1; 32]),
        parameters: Default::default(),
        seed: Some(Digest([2; 32])),
        outcome_digest: Digest([3; 32]),
        counts: RunCounts {
            participants,
            places: participants,
            assigned: participants,
        },
    };
    let t = Timestamp::from_unix_micros(1_740_821_400_000_000);
    let mut batch = vec![Record::new(t, "fair-admin", "2025-spring", run.clone())];
    for a in 0..participants {
        let outcome = Outcome {
            run: run.id(),
            assigned: Some(format!("fair-{}", a % 7)),
            rank: Some(1),
        };
        batch.push(Record::new(
            t,
            "fair-admin",
            format!("applicant-{a}"),
            outcome,
        ));
    }
    log.append_batch(&batch).unwrap();
    log.close().unwrap();
}

/// RFC 6962 MTH, independent of the engine's tree.
fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => Sha256::new()
            .chain_update([0])
            .chain_update(&leaves[0])
            .finalize()
            .into(),
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let (l, r) = (mth(&leaves[..k]), mth(&leaves[k..]));
            Sha256::new()
                .chain_update([1])
                .chain_update(l)
                .chain_update(r)
                .finalize()
                .into()
        }
    }
}

#[test]
fn export_checkpoint_and_pubkey_agree_with_an_independent_tree() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 300);
    let export = stdout(&allot(&["audit", "export"], dir.path()));
    let leaves: Vec<Vec<u8>> = export
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let (index, hex) = line.split_once(' ').unwrap();
            assert_eq!(index.parse::<usize>().unwrap(), i);
            hex::decode(hex).unwrap()
        })
        .collect();
    assert_eq!(leaves.len(), 301);

    let note = stdout(&allot(&["audit", "checkpoint"], dir.path()));
    let (body, sigs) = note.split_once("\n\n").unwrap();
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines[1], "301");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(b64.decode(lines[2]).unwrap(), mth(&leaves));
    assert!(note.ends_with('\n') && sigs.starts_with("\u{2014} "));

    let pubkey = stdout(&allot(&["audit", "pubkey"], dir.path()));
    let key = allot_engine::log::VerifierKey::parse(pubkey.trim()).unwrap();
    assert_eq!(key.name(), lines[0]);
    allot_engine::log::SignedCheckpoint::open(&note, &key).unwrap();
    // The same checkpoint again: the log has not grown.
    assert_eq!(stdout(&allot(&["audit", "checkpoint"], dir.path())), note);
    // Partial exports are the leaves of smaller trees.
    let first = stdout(&allot(&["audit", "export", "--to", "10"], dir.path()));
    assert_eq!(first.lines().count(), 10);
    let middle = stdout(&allot(&["audit", "export", "--from", "299"], dir.path()));
    assert!(middle.starts_with("299 ") && middle.lines().count() == 2);
}

#[test]
fn proofs_are_written_and_verified_offline() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let data = dir.path();
    // No checkpoint yet: a proof needs an explicit size.
    let out = allot(&["audit", "prove", "3"], data);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint has been signed yet"));
    stdout(&allot(&["audit", "checkpoint"], data));

    let proof = dir.path().join("p.txt");
    let p = proof.to_str().unwrap();
    stdout(&allot(&["audit", "prove", "3", "--out", p], data));
    let ok = stdout(&allot(&["audit", "verify-proof", p], data));
    assert!(
        ok.starts_with("ok: entry 3 is in the log of size 41"),
        "{ok}"
    );
    assert!(ok.contains("signed by allot.local/log/"), "{ok}");

    // One changed hash in the path: refused, non-zero exit.
    let text = std::fs::read_to_string(&proof).unwrap();
    let at = text.find("\npath ").unwrap() + 6;
    let mut bad = text.clone().into_bytes();
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&proof, bad).unwrap();
    let out = allot(&["audit", "verify-proof", p], data);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));

    let cons = dir.path().join("c.txt");
    let c = cons.to_str().unwrap();
    stdout(&allot(
        &["audit", "consistency", "5", "41", "--out", c],
        data,
    ));
    let ok = stdout(&allot(&["audit", "verify-proof", c], data));
    assert!(ok.starts_with("ok: the log of size 5 with root"), "{ok}");
    // A proof against an unsigned size still verifies, and says it is unsigned.
    let printed = stdout(&allot(&["audit", "prove", "3", "--size", "20"], data));
    std::fs::write(&proof, printed).unwrap();
    let ok = stdout(&allot(&["audit", "verify-proof", p], data));
    assert!(ok.contains("no signed checkpoint covers this root"), "{ok}");
}

#[test]
fn verify_show_tail_and_damage() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 20);
    let data = dir.path();
    let verified = stdout(&allot(&["audit", "verify"], data));
    assert!(
        verified.contains("size        21") && verified.ends_with("ok\n"),
        "{verified}"
    );
    let show = stdout(&allot(&["audit", "show", "0"], data));
    assert!(
        show.contains("kind        AllocationRun (0x0203)"),
        "{show}"
    );
    assert!(show.contains("mechanism     \"da\""), "{show}");
    let tail = stdout(&allot(&["audit", "tail", "-n", "2"], data));
    assert_eq!(tail.lines().count(), 2);
    assert!(
        tail.starts_with("19 ") && tail.contains("Outcome \"fair-admin\" \"applicant-19\""),
        "{tail}"
    );
    let out = allot(&["audit", "show", "21"], data);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("entry 21 does not exist: the log has 21 entries")
    );

    // Flip one byte of entry 7's record: verify names it and fails.
    let segment = data.join("log/segments/00000000000000000000.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let export = stdout(&allot(
        &["audit", "export", "--from", "7", "--to", "8"],
        data,
    ));
    let entry7 = hex::decode(export.split_whitespace().nth(1).unwrap()).unwrap();
    let at = bytes
        .windows(entry7.len())
        .position(|w| w == entry7.as_slice())
        .unwrap();
    bytes[at + 30] ^= 1;
    std::fs::write(&segment, bytes).unwrap();
    let out = allot(&["audit", "verify"], data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 7 at byte"), "{err}");
}

#[test]
fn checkpoint_while_another_process_writes_prints_its_last_one() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 5);
    let data = dir.path();
    let first = stdout(&allot(&["audit", "checkpoint"], data));
    let log = Log::open(data, LogOptions::default()).unwrap();
    let out = allot(&["audit", "checkpoint"], data);
    assert_eq!(stdout(&out), first);
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process is writing the log"));
    drop(log);
    let out = allot(&["audit", "verify"], &dir.path().join("missing"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no decision log in"));
    let help = stdout(
        &Command::new(env!("CARGO_BIN_EXE_allot"))
            .args(["audit", "--help"])
            .output()
            .unwrap(),
    );
    for command in [
        "verify",
        "show",
        "export",
        "checkpoint",
        "pubkey",
        "prove",
        "consistency",
        "verify-proof",
        "tail",
    ] {
        assert!(help.contains(command), "{command} missing from --help");
    }
}
