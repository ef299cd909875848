//! The log's behaviour through its public API: appends, reads, proofs against an RFC oracle,
//! reopening, read-only opening, concurrency, checkpoints and async tickets.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use allot_engine::log::frame::FRAME_OVERHEAD;
use allot_engine::log::merkle::leaf_hash;
use allot_engine::log::proof::{verify_consistency, verify_inclusion};
use allot_engine::log::verify::verify;
use allot_engine::log::{Error, Log, LogOptions, Record, SignedCheckpoint, VerifierKey};

use crate::support::{Store, mth, open, sample, small_options};

/// Every root, inclusion and consistency proof of the log checks out against the oracle tree
/// over `bytes` (the canonical bytes of all entries so far).
fn check_against_oracle(log: &Log, bytes: &[Vec<u8>]) {
    let n = bytes.len() as u64;
    assert_eq!(log.size(), n);
    assert_eq!(log.head().unwrap().root, mth(bytes), "root of {n}");
    let sizes: Vec<u64> = [1, 2, 3, 7, 8, 9, 36, 37, 38, 64, 100, n / 2, n - 1, n]
        .into_iter()
        .filter(|&m| m >= 1 && m <= n)
        .collect();
    for &m in &sizes {
        let root_m = mth(&bytes[..m as usize]);
        assert_eq!(log.root_at(m).unwrap(), root_m, "root at {m}");
        for i in (0..m).step_by(((m / 13) as usize).max(1)).chain([m - 1]) {
            let proof = log.inclusion_proof(i, m).unwrap();
            let leaf = leaf_hash(&bytes[i as usize]);
            verify_inclusion(&leaf, i, m, &proof.path, &root_m)
                .unwrap_or_else(|e| panic!("inclusion {i} in {m}: {e}"));
        }
        for &k in sizes.iter().filter(|&&k| k <= m) {
            let proof = log.consistency_proof(k, m).unwrap();
            verify_consistency(k, m, &mth(&bytes[..k as usize]), &root_m, &proof.path)
                .unwrap_or_else(|e| panic!("consistency {k} -> {m}: {e}"));
        }
    }
}

/// On both stores (see `backends.rs`).
pub(crate) fn appends_read_back_and_prove_against_the_rfc_oracle(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let log = store.open(dir.path());
        assert!(log.report().torn_tail.is_none());
        for n in 0..150u64 {
            let index = log.append(&sample(n, 200)).unwrap();
            assert_eq!(index, n);
            bytes.push(sample(n, 200).encode(n).unwrap());
        }
        let batch: Vec<Record> = (150..260).map(|n| sample(n, 90)).collect();
        assert_eq!(log.append_batch(&batch).unwrap(), 150..260);
        bytes.extend(batch.iter().zip(150..).map(|(r, n)| r.encode(n).unwrap()));
        check_against_oracle(&log, &bytes);
        for (i, b) in bytes.iter().enumerate() {
            let raw = log.read(i as u64).unwrap();
            assert_eq!(&raw.bytes, b, "entry {i}");
        }
        let streamed: Vec<Vec<u8>> = log
            .entries(0..u64::MAX)
            .unwrap()
            .map(|e| e.unwrap().bytes)
            .collect();
        assert_eq!(streamed, bytes);
        let middle: Vec<u64> = log
            .entries(40..45)
            .unwrap()
            .map(|e| e.unwrap().index)
            .collect();
        assert_eq!(middle, vec![40, 41, 42, 43, 44]);
        assert_eq!(log.entry(7).unwrap().record, sample(7, 200));
        log.close().unwrap();
    }
    // Reopened: nodes and offsets come from the derived files; entries after the watermark are
    // re-derived. Both ways give the same answers.
    let log = store.open(dir.path());
    assert!(log.report().torn_tail.is_none(), "{:?}", log.report());
    check_against_oracle(&log, &bytes);
    let head = log.head().unwrap();
    for n in 260..300u64 {
        log.append(&sample(n, 150)).unwrap();
        bytes.push(sample(n, 150).encode(n).unwrap());
    }
    check_against_oracle(&log, &bytes);
    drop(log);
    let read_only = Log::open_read_only(dir.path()).unwrap();
    check_against_oracle(&read_only, &bytes);
    assert!(matches!(
        read_only.append(&sample(0, 100)),
        Err(Error::ReadOnly)
    ));
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.size, report.root), (300, mth(&bytes)));
    assert!(
        report.segments > 3,
        "small segments roll: {}",
        report.segments
    );
    assert!(report.derived_checked > 0);
    assert_ne!(head.chain, report.chain);
    assert!(matches!(
        read_only.read(300),
        Err(Error::OutOfRange {
            index: 300,
            size: 300
        })
    ));
}

/// On both stores (see `backends.rs`).
pub(crate) fn many_writers_and_readers_at_once(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(store.open(dir.path()));
    let writers: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for k in 0..60u64 {
                    let n = t * 1000 + k;
                    if k % 10 == 9 {
                        let batch: Vec<Record> = (0..5).map(|j| sample(n * 10 + j, 120)).collect();
                        let range = log.append_batch(&batch).unwrap();
                        got.extend(range.zip((0..5).map(move |j| n * 10 + j)));
                    } else {
                        got.push((log.append(&sample(n * 10, 120)).unwrap(), n * 10));
                    }
                }
                got
            })
        })
        .collect();
    let reader = {
        let log = log.clone();
        thread::spawn(move || {
            let mut proofs = 0;
            while proofs < 300 {
                let head = log.head().unwrap();
                if head.size < 2 {
                    thread::yield_now();
                    continue;
                }
                let i = proofs % head.size;
                let proof = log.inclusion_proof(i, head.size).unwrap();
                let leaf = log.read(i).unwrap().leaf_hash();
                verify_inclusion(&leaf, i, head.size, &proof.path, &head.root).unwrap();
                proofs += 1;
            }
        })
    };
    let mut all: Vec<(u64, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    reader.join().unwrap();
    all.sort();
    assert_eq!(all.len(), 8 * (54 + 6 * 5));
    for (expected, (index, n)) in all.iter().enumerate() {
        assert_eq!(*index, expected as u64);
        assert_eq!(log.entry(*index).unwrap().record, sample(*n, 120));
    }
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.size, all.len() as u64);
}

/// Groups bounded by `max_group_bytes` under concurrent load (the committer waits for the
/// syncer to take a full group), across segment rolls; a group-commit wait set by the user
/// still lets a lone appender through at once.
#[test]
fn bounded_groups_and_waits_keep_every_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        max_group_bytes: 2 << 10,
        max_group_wait: std::time::Duration::from_millis(2),
        ..small_options()
    };
    let log = Arc::new(Log::open(dir.path(), options.clone()).unwrap());
    let writers: Vec<_> = (0..16u64)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                (0..40u64)
                    .map(|k| {
                        let n = t * 1000 + k;
                        (log.append(&sample(n, 200)).unwrap(), n)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<(u64, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all.len(), 16 * 40);
    for (expected, (index, n)) in all.iter().enumerate() {
        assert_eq!(*index, expected as u64);
        assert_eq!(log.entry(*index).unwrap().record, sample(*n, 200));
    }
    // No group beyond 2 KiB: at least as many groups as 2 KiB pieces of the framed bytes.
    let framed: usize = (0..all.len() as u64)
        .map(|i| log.read(i).unwrap().bytes.len() + FRAME_OVERHEAD)
        .sum();
    let per_group = (2 << 10) / (framed / all.len());
    let stats = log.stats();
    assert!(
        stats.commits >= (all.len() / per_group) as u64,
        "{} entries of {} framed bytes in {} groups",
        all.len(),
        framed,
        stats.commits
    );
    // Alone, an appender commits without waiting out the group-commit wait (its group is as
    // large as the one before it). The wait is long here so that a busy machine's slow fsyncs
    // cannot be mistaken for waiting it out: 20 appends in under half of 20 waits.
    let lone_dir = tempfile::tempdir().unwrap();
    let wait = std::time::Duration::from_millis(100);
    let lone = Log::open(
        lone_dir.path(),
        LogOptions {
            max_group_wait: wait,
            ..options.clone()
        },
    )
    .unwrap();
    lone.append(&sample(80_000, 200)).unwrap();
    let started = std::time::Instant::now();
    for k in 0..20 {
        lone.append(&sample(80_001 + k, 200)).unwrap();
    }
    assert!(started.elapsed() < wait * 10, "{:?}", started.elapsed());
    drop(lone);
    for k in 0..50 {
        log.append(&sample(90_000 + k, 200)).unwrap();
    }
    drop(log);
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.size, 16 * 40 + 50);
    let reopened = Log::open(dir.path(), options).unwrap();
    assert_eq!(reopened.size(), 16 * 40 + 50);
}

/// On both stores (see `backends.rs`).
pub(crate) fn checkpoints_are_signed_consistent_and_checked_on_open(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        let log = store.open(dir.path());
        let empty = log.sign_checkpoint().unwrap();
        assert_eq!(empty.checkpoint.size, 0);
        for n in 0..20 {
            log.append(&sample(n, 100)).unwrap();
        }
        let first = log.sign_checkpoint().unwrap();
        let key = VerifierKey::parse(&log.verifier_key().to_text()).unwrap();
        let opened = SignedCheckpoint::open(&first.note, &key).unwrap();
        assert_eq!(opened.checkpoint.size, 20);
        assert_eq!(opened.checkpoint.origin, "test.example/log");
        assert_eq!(opened.checkpoint.root, log.root_at(20).unwrap());
        assert!(first.note.starts_with("test.example/log\n20\n"));
        assert!(first.note.ends_with('\n'));
        // Not grown: the same checkpoint, not a second signature.
        assert_eq!(log.sign_checkpoint().unwrap(), first);
        log.append(&sample(20, 100)).unwrap();
        let second = log.sign_checkpoint().unwrap();
        assert_eq!(second.checkpoint.size, 21);
        let proof = log.consistency_proof(20, 21).unwrap();
        proof
            .verify(&first.checkpoint.root, &second.checkpoint.root)
            .unwrap();
        key
    };
    let log = Log::open_read_only(dir.path()).unwrap();
    let stored = log.checkpoint().unwrap();
    assert_eq!(stored.checkpoint.size, 21);
    SignedCheckpoint::open(&stored.note, &key).unwrap();
    assert!(matches!(log.sign_checkpoint(), Err(Error::ReadOnly)));
}

/// A minimal executor: the ticket must wake its task when the batch becomes durable.
/// On both stores (see `backends.rs`).
pub(crate) fn tickets_resolve_as_futures(store: &Store) {
    use std::future::Future as _;
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let log = store.open(dir.path());
    let records: Vec<Record> = (0..3).map(|n| sample(n, 100)).collect();
    let mut ticket = log.submit(&records).unwrap();
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let range = loop {
        match std::pin::Pin::new(&mut ticket).poll(&mut cx) {
            Poll::Ready(result) => break result.unwrap(),
            Poll::Pending => thread::park(),
        }
    };
    assert_eq!(range, 0..3);
    assert_eq!(log.size(), 3);
}

/// On both stores (see `backends.rs`).
pub(crate) fn bad_requests_name_the_problem(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = store.open(dir.path());
    for n in 0..5 {
        log.append(&sample(n, 100)).unwrap();
    }
    check(
        log.inclusion_proof(5, 5).map(|_| ()),
        "entry 5 does not exist: the log has 5 entries",
    );
    check(
        log.inclusion_proof(0, 6).map(|_| ()),
        "a tree of size 6 does not exist: the log has 5 entries",
    );
    check(
        log.consistency_proof(0, 5).map(|_| ()),
        "a consistency proof from the empty tree is not defined (RFC 9162 2.1.4)",
    );
    check(
        log.consistency_proof(4, 3).map(|_| ()),
        "the old size 4 is above the new size 3",
    );
    check(log.append_batch(&[]).map(|_| ()), "an empty batch");
    let huge = sample(0, 70_000);
    let err = log.append(&huge).unwrap_err().to_string();
    assert!(err.contains("above the limit of 65535"), "{err}");
    assert_eq!(log.size(), 5, "nothing was logged");

    fn check(got: Result<(), Error>, expect: &str) {
        assert_eq!(got.unwrap_err().to_string(), expect);
    }
}

/// On both stores (see `backends.rs`).
pub(crate) fn empty_log_has_the_empty_root(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = store.open(dir.path());
    assert_eq!(log.head().unwrap().root, mth(&[]));
    assert_eq!(log.head().unwrap().chain, [0u8; 32]);
    drop(log);
    assert_eq!(verify(dir.path()).unwrap().size, 0);
    let again = store.open(dir.path());
    assert_eq!(again.size(), 0);
}

#[test]
fn the_signing_key_is_made_on_first_start_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let key = dir.path().join("log/signing.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", key.display());
    let text = std::fs::read_to_string(&key).unwrap();
    let signer = allot_engine::log::SigningKey::parse(&text).unwrap();
    assert_eq!(signer.verifier(), *log.verifier_key());
    assert_eq!(log.origin(), "test.example/log");
    drop(log);
    // Reopening keeps the key.
    assert_eq!(
        open(dir.path()).verifier_key().to_text(),
        signer.verifier().to_text()
    );
}

/// A signing key kept outside the data folder: the folder holds only the verifier key; opening
/// for writing without the key, with another key, or with a second key in the folder is refused
/// naming the file; reading needs no key.
#[test]
fn a_signing_key_kept_outside_the_folder() {
    use allot_engine::log::SigningKey;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_seed("apart.test/log", [7; 32]).unwrap();
    let with = |key: &SigningKey| LogOptions {
        signing_key: Some(key.clone()),
        ..LogOptions::default()
    };
    let log = Log::open(dir.path(), with(&key)).unwrap();
    for n in 0..3 {
        log.append(&sample(n, 100)).unwrap();
    }
    let signed = log.sign_checkpoint().unwrap();
    SignedCheckpoint::open(&signed.note, &key.verifier()).unwrap();
    log.close().unwrap();
    let folder = dir.path().join("log");
    assert!(!folder.join("signing.key").exists());
    let verifier = std::fs::read_to_string(folder.join("verifier.key")).unwrap();
    assert_eq!(verifier.trim(), key.verifier().to_text());

    let refused = |options: LogOptions| Log::open(dir.path(), options).unwrap_err().to_string();
    let err = refused(LogOptions::default());
    assert!(
        err.contains("signing.key") && err.contains("has 3 entries"),
        "{err}"
    );
    let other = SigningKey::from_seed("apart.test/log", [8; 32]).unwrap();
    let err = refused(with(&other));
    assert!(err.contains("is not this log's key"), "{err}");
    std::fs::write(folder.join("signing.key"), key.to_text()).unwrap();
    let err = refused(with(&key));
    assert!(err.contains("keep only one"), "{err}");
    std::fs::remove_file(folder.join("signing.key")).unwrap();
    assert_eq!(Log::open_read_only(dir.path()).unwrap().size(), 3);
    assert_eq!(Log::open(dir.path(), with(&key)).unwrap().size(), 3);
}

/// The cosigned history only grows, and a line a crash tore does not swallow the next one.
#[test]
fn the_cosigned_history_survives_a_torn_line() {
    use allot_engine::log::TrustPolicy;
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let policy = TrustPolicy {
        log: log.verifier_key().clone(),
        witnesses: Vec::new(),
        quorum: 0,
    };
    let history = dir.path().join("log/cosigned-history");
    for (n, time) in [(3, 100), (5, 200)] {
        while log.size() < n {
            log.append(&sample(log.size(), 100)).unwrap();
        }
        let signed = log.sign_checkpoint().unwrap();
        let trusted = policy.check(&signed.note).unwrap();
        log.keep_cosigned(&signed.note, &trusted, time).unwrap();
        if n == 3 {
            // A crash cut the line short.
            let text = std::fs::read_to_string(&history).unwrap();
            std::fs::write(&history, &text[..text.len() - 4]).unwrap();
        }
    }
    let text = std::fs::read_to_string(&history).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(
        lines[1].starts_with("5 ") && lines[1].ends_with(" 200"),
        "{text:?}"
    );
    let (kept, trusted) = log.cosigned(&policy).unwrap().unwrap();
    assert_eq!((trusted.checkpoint.size, kept.is_empty()), (5, false));
}
