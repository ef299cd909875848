//! One writer per data folder; readers need no lock. (A second *process* is refused too: see the
//! crash test, which tries to open the folder while its child holds it.)

use allot_engine::log::{Error, Log};

use crate::support::{open, sample, small_options};

#[test]
fn a_second_writer_is_refused_and_readers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(&sample(1, 100)).unwrap();
    let err = Log::open(dir.path(), small_options()).unwrap_err();
    let pid = std::process::id().to_string();
    assert!(
        matches!(&err, Error::Locked { holder: Some(h), .. } if *h == pid),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "is open for writing by another process (pid {pid})"
        )),
        "{message}"
    );
    let reader = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.size(), 1);
    drop(log);
    let again = open(dir.path());
    assert_eq!(again.size(), 1);
}

#[test]
fn reading_a_folder_without_a_log_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = Log::open_read_only(dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("there is no decision log in"), "{err}");
    assert!(!Log::exists(dir.path()));
}
