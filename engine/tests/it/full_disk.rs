//! A full disk: appends fail with a clear error, and no acknowledged entry is lost.
//!
//! The test re-runs itself in a child process inside its own user and mount namespaces
//! (`unshare -Urm`), on a tmpfs of a few hundred KiB that the child fills (no root needed where
//! unprivileged user namespaces are allowed; the tmpfs disappears with the child). The child does
//! the whole check, since the parent cannot see the tmpfs, and reports it on stdout.

use std::path::Path;
use std::process::Command;

use allot_engine::log::verify::verify;
use allot_engine::log::{Log, LogOptions};

use crate::support::sample;

const CHILD: &str = "ALLOT_TEST_FULL_DISK_DIR";
const TMPFS_KIB: u64 = 320;
const FILLER_BYTES: usize = 96 << 10;

fn options() -> LogOptions {
    LogOptions {
        origin: Some("test.example/log".into()),
        segment_bytes: 16 << 10,
        flush_entries: 16,
        ..LogOptions::default()
    }
}

#[test]
fn a_full_disk_fails_appends_clearly_and_loses_no_acknowledged_entry() {
    if let Some(dir) = std::env::var_os(CHILD) {
        return child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let script =
        format!("mount -t tmpfs -o size={TMPFS_KIB}k tmpfs \"$1\" || exit 97; shift; exec \"$@\"");
    let out = Command::new("unshare")
        .args(["-Urm", "sh", "-c", &script, "sh"])
        .arg(dir.path())
        .arg(&exe)
        .args([
            "full_disk::a_full_disk_fails_appends_clearly_and_loses_no_acknowledged_entry",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, dir.path())
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("full disk: ok"),
        "the child failed ({:?}; exit 97 means no tmpfs could be mounted)\n{stdout}\n{stderr}",
        out.status
    );
    eprint!("{stdout}");
}

fn child(dir: &Path) {
    // Room to free later, so the log can go on once the operator makes space.
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![1u8; FILLER_BYTES]).unwrap();

    let log = Log::open(dir, options()).expect("open on the tmpfs");
    let mut acked: Vec<(u64, u64)> = Vec::new();
    let mut failure = None;
    for k in 0..100_000u64 {
        let record = sample(k, 300);
        let result = if k % 5 == 0 {
            log.append_batch(&[record, sample(k + 1_000_000, 200)])
                .map(|r| r.start)
        } else {
            log.append(&record)
        };
        match result {
            Ok(index) => acked.push((index, k)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the tmpfs fills up").to_string();
    println!("{} acknowledged, then: {failure}", acked.len());
    assert!(
        failure.contains("No space left on device") || failure.contains("os error 28"),
        "{failure}"
    );
    assert!(acked.len() > 50, "{} acknowledged", acked.len());
    // Later appends fail too (nothing is half-accepted), and closing does not hang.
    assert!(log.append(&sample(7, 10)).is_err());
    let _ = log.close();

    // Make room and reopen: every acknowledged entry is there, unchanged, and verifies.
    std::fs::remove_file(&filler).unwrap();
    let log = Log::open(dir, options()).expect("reopen after space was freed");
    let report = log.report().clone();
    println!("reopened: {report:?}");
    assert!(log.size() >= acked.len() as u64);
    for &(index, k) in &acked {
        let stored = log.read(index).unwrap();
        assert_eq!(
            stored.bytes,
            sample(k, 300).encode(index).unwrap(),
            "entry {index}"
        );
    }
    let appended = log.append(&sample(9_999_999, 100)).expect("appends go on");
    assert_eq!(appended, log.size() - 1);
    log.close().unwrap();
    verify(dir).expect("verify after a full disk");
    println!("full disk: ok");
}
