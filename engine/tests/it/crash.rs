//! Crash test: a child process appends from several threads and prints each acknowledged batch;
//! the parent kills it with SIGKILL at random moments, many times. After every kill, every
//! acknowledged entry is in the log with its content, every batch is whole or absent, and
//! `verify` passes once a writer has opened (and recovered) the folder.
//!
//! The child is this test binary running this same test with `ALLOT_CRASH_CHILD` set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use allot_engine::log::decision::SlotBooked;
use allot_engine::log::frame;
use allot_engine::log::verify::verify;
use allot_engine::log::{Error, Log, LogOptions, Record, Timestamp};
use allot_testkit::TestSeed;
use rand::RngExt as _;
use rand::rngs::StdRng;

const CHILD: &str = "ALLOT_CRASH_CHILD";
const RUN: &str = "ALLOT_CRASH_RUN";
const THREADS: u64 = 6;
const ROUNDS: usize = 24;

fn options() -> LogOptions {
    LogOptions {
        origin: Some("crash.test/log".into()),
        segment_bytes: 48 << 10,
        flush_entries: 300,
        ..LogOptions::default()
    }
}

/// The record of batch `seq` of thread `thread`, position `j` of `len`.
fn record(thread: u64, seq: u64, j: u64, len: u64) -> Record {
    Record::new(
        Timestamp::from_unix_micros(seq),
        format!("t{thread}"),
        format!("s{seq}-{j}/{len}"),
        SlotBooked {
            slot: format!("slot-{thread}-{seq}-{j}"),
            appointment: "a".repeat(40),
            hold: None,
        },
    )
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    match std::env::var_os(CHILD) {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}

/// Appends until killed. Each thread continues its sequence from where the last run stopped
/// (by a per-run offset), so records stay distinct across runs.
fn child(dir: &Path) {
    let log = Arc::new(Log::open(dir, options()).expect("child opens the log"));
    // Distinct per run (the parent draws it from the test's seed).
    let run: u64 = std::env::var(RUN)
        .ok()
        .and_then(|r| r.parse().ok())
        .expect("the parent names the run");
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let log = log.clone();
            thread::spawn(move || {
                let mut rng: StdRng =
                    rand::SeedableRng::seed_from_u64(run ^ ((thread + 1) * 0x9e37_79b9_7f4a_7c15));
                for k in 0.. {
                    let seq = (run % 1_000_000) * 1_000_000 + k;
                    let len = if rng.random_range(0..4) == 0 {
                        rng.random_range(1..=25)
                    } else {
                        1
                    };
                    let batch: Vec<Record> =
                        (0..len).map(|j| record(thread, seq, j, len)).collect();
                    let range = log.append_batch(&batch).expect("append");
                    println!("ack {} {thread} {seq} {len}", range.start);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let seed = TestSeed::new("acknowledged_entries_survive_sigkill");
    let mut rng = seed.rng(0);
    let exe = std::env::current_exe().unwrap();
    // index -> (thread, seq, j, len) of every acknowledged entry so far.
    let mut acked: HashMap<u64, (u64, u64, u64, u64)> = HashMap::new();
    let mut lock_checked = false;
    let mut torn_tails = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash::acknowledged_entries_survive_sigkill",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, dir.path())
            .env(RUN, (seed.value() % 1_000_000 + round as u64).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            let stdout = child.stdout.take().unwrap();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        if !lock_checked {
            // While the child holds the folder, a second writer process is refused.
            let started = Instant::now();
            while !lines.lock().unwrap().iter().any(|l| l.starts_with("ack ")) {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the child never acknowledged"
                );
                thread::sleep(Duration::from_millis(2));
            }
            let err = Log::open(dir.path(), options()).unwrap_err();
            let pid = child.id().to_string();
            assert!(
                matches!(&err, Error::Locked { holder: Some(h), .. } if *h == pid),
                "{err}"
            );
            lock_checked = true;
        }
        // Random moments: sometimes during start-up and recovery, mostly mid-append.
        let wait = match rng.random_range(0..5) {
            0 => rng.random_range(0..8),
            _ => rng.random_range(10..130),
        };
        thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for line in lines.lock().unwrap().iter() {
            let Some(rest) = line.strip_prefix("ack ") else {
                continue;
            };
            let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            for j in 0..f[3] {
                acked.insert(f[0] + j, (f[1], f[2], j, f[3]));
            }
        }
        let damaged = match rng.random_range(0..3) {
            0 => damage_unacknowledged_tail(dir.path(), &acked, &mut rng),
            _ => None,
        };
        let torn = check_after_crash(dir.path(), &acked, round);
        if let Some(damage) = damaged {
            assert!(torn, "round {round}: not reported: {damage}");
        }
        torn_tails += usize::from(torn);
    }
    assert!(
        acked.len() > 200,
        "too few appends to mean anything: {}",
        acked.len()
    );
    assert!(torn_tails > 0, "no round recovered a torn tail");
}

/// Simulates what a power loss can leave of writes that were never fsynced (SIGKILL alone never
/// tears a write: the page cache keeps it): from a random byte inside the records after the last
/// durable one, the rest of the last segment is cut off or zeroed. Returns whether it did so.
fn damage_unacknowledged_tail(
    dir: &Path,
    acked: &HashMap<u64, (u64, u64, u64, u64)>,
    rng: &mut StdRng,
) -> Option<String> {
    let mut segments: Vec<_> = std::fs::read_dir(dir.join("log/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    segments.sort();
    let last = segments.pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    // Entries are durable through the last acknowledged one, and through the derived-data
    // watermark (the flusher only writes durable entries): only what follows can be lost.
    let flushed = std::fs::read_to_string(dir.join("log/derived/meta"))
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("size ")?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let durable = acked.keys().map(|i| i + 1).max().unwrap_or(0).max(flushed);
    for piece in frame::layout(&bytes) {
        let Some(index) = piece.index else { continue };
        let (pos, len) = (piece.offset, piece.len);
        if index >= durable {
            // Keep the record's header, so some non-zero bytes of it remain (a cut that leaves
            // only zeros is indistinguishable from preallocated space, and loses nothing).
            let header = frame::FRAME_HEADER_BYTES;
            let cut = pos + header + rng.random_range(0..len - header);
            let truncate = rng.random::<bool>();
            if truncate {
                bytes.truncate(cut);
            } else {
                bytes[cut..].fill(0);
            }
            std::fs::write(&last, &bytes).unwrap();
            let how = if truncate { "cut" } else { "zeroed" };
            return Some(format!(
                "{how} {} at byte {cut} in entry {index} at {pos}",
                last.display()
            ));
        }
    }
    None
}

/// Reopens, checks, verifies; returns whether opening recovered a torn tail.
fn check_after_crash(dir: &Path, acked: &HashMap<u64, (u64, u64, u64, u64)>, round: usize) -> bool {
    let log = Log::open(dir, options()).unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
    let torn = log.report().torn_tail.is_some();
    let size = log.size();
    for (&index, &(thread, seq, j, len)) in acked {
        assert!(
            index < size,
            "round {round}: acknowledged entry {index} lost (size {size})"
        );
        let entry = log.entry(index).unwrap();
        assert_eq!(
            entry.record,
            record(thread, seq, j, len),
            "round {round}: entry {index}"
        );
    }
    // Every batch is whole: position j of len is followed by j + 1 of the same batch.
    let mut expect: Option<(String, u64, u64, u64)> = None;
    for raw in log.entries(0..size).unwrap() {
        let entry = raw.unwrap().decode().unwrap();
        let (seq_j, len) = entry.record.subject.split_once('/').unwrap();
        let (seq, j) = seq_j.split_once('-').unwrap();
        let (seq, j, len): (u64, u64, u64) = (
            seq[1..].parse().unwrap(),
            j.parse().unwrap(),
            len.parse().unwrap(),
        );
        if let Some(e) = expect.take() {
            assert_eq!(
                (entry.record.actor.clone(), seq, j, len),
                e,
                "round {round}: entry {}",
                entry.index
            );
        } else {
            assert_eq!(
                j, 0,
                "round {round}: entry {} starts mid-batch",
                entry.index
            );
        }
        if j + 1 < len {
            expect = Some((entry.record.actor.clone(), seq, j + 1, len));
        }
    }
    assert!(expect.is_none(), "round {round}: the log ends mid-batch");
    log.close().unwrap();
    let report = verify(dir).unwrap_or_else(|e| panic!("round {round}: verify: {e}"));
    assert_eq!(report.size, size);
    torn
}
