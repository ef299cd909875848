//! The PostgreSQL backend against a real PostgreSQL (`.ci/postgres`): acknowledged means
//! committed, followers copy and check, a deposed leader's writes never land, the store refuses
//! gaps and rewritten history.

use std::sync::Arc;
use std::time::Duration;

use allot_engine::log::backend::BackendError;
use allot_engine::log::postgres::PgStore;
use allot_engine::log::replica::{Replica, ReplicaOptions, Role};
use allot_engine::log::{Error, Log, LogOptions, SigningKey};
use allot_testkit::postgres::database;

use super::support::{sample, small_options};

fn options(store: &Arc<PgStore>, key: &SigningKey) -> LogOptions {
    LogOptions {
        signing_key: Some(key.clone()),
        backend: Some(store.clone()),
        ..small_options()
    }
}

/// Takes the lease and starts writing.
fn elect(replica: &mut Replica, log: &Log) -> u64 {
    for _ in 0..100 {
        match replica.step(log).unwrap() {
            Role::Elected { term } => {
                assert!(replica.lead(term).unwrap());
                return term;
            }
            Role::Leader { term } => return term,
            Role::Follower { .. } => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!("the lease was never free");
}

#[test]
fn acknowledged_entries_are_committed_and_followers_copy_them() {
    let Some(url) = database("ack_commit") else {
        return;
    };
    let key = SigningKey::generate("test.example/pg-log").unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let (a, mut leader) = replica_at(&url, &dirs.path().join("a"), &key);
    elect(&mut leader, &a);
    // Eight appenders: groups of several batches, each group one transaction.
    let a = Arc::new(a);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let a = a.clone();
            s.spawn(move || {
                for i in 0..40u64 {
                    let n = t * 1000 + i;
                    if i % 5 == 0 {
                        a.append_batch(&[sample(n, 200), sample(n + 500, 300)])
                            .unwrap();
                    } else {
                        a.append(&sample(n, 150)).unwrap();
                    }
                }
            });
        }
    });
    let size = a.size();
    assert_eq!(size, 8 * 48);
    // Every acknowledged entry is in the store, checked as read.
    assert_eq!(leader.store.size().unwrap(), size);
    let stored = leader
        .store
        .read(0, size, &allot_engine::log::CHAIN_SEED)
        .unwrap();
    for e in &stored {
        assert_eq!(a.read(e.index).unwrap(), *e, "entry {}", e.index);
    }

    // A follower on an empty folder copies the log: same entries, same tree.
    let (b, follower) = replica_at(&url, &dirs.path().join("b"), &key);
    assert_eq!(b.size(), size);
    assert_eq!(b.head().unwrap(), a.head().unwrap());
    // It refuses writes, naming the leader.
    let refused = b.append(&sample(1, 100)).unwrap_err();
    assert!(
        matches!(&refused, Error::Backend(BackendError::NotLeader { leader: Some(l) }) if l.ends_with("/a")),
        "{refused}"
    );
    // More entries reach it by catching up; its checkpoint agrees with the leader's tree.
    a.append_batch(&[sample(9, 100), sample(10, 100)]).unwrap();
    assert_eq!(follower.catch_up(&b).unwrap(), 2);
    assert_eq!(b.head().unwrap(), a.head().unwrap());
    let signed = a.sign_checkpoint().unwrap();
    assert_eq!(
        b.root_at(signed.checkpoint.size).unwrap(),
        signed.checkpoint.root
    );
}

/// A replica of the store at `url` over `dir`, on connections of its own.
fn replica_at(url: &str, dir: &std::path::Path, key: &SigningKey) -> (Log, Replica) {
    let store = PgStore::connect(url).unwrap();
    let log = Log::open(dir, options(&store, key)).unwrap();
    let mut options = ReplicaOptions::new(dir.display().to_string());
    options.lease = Duration::from_millis(600);
    let replica = Replica::new(store, options);
    replica.open(&log).unwrap();
    (log, replica)
}

#[test]
fn a_deposed_leader_writes_nothing_even_before_it_knows() {
    let Some(url) = database("deposed") else {
        return;
    };
    let key = SigningKey::generate("test.example/pg-log").unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let (a, mut old) = replica_at(&url, &dirs.path().join("a"), &key);
    let first = elect(&mut old, &a);
    a.append(&sample(1, 100)).unwrap();
    // The old leader stops renewing (paused); its lease runs out and another replica takes it.
    let (b, mut new) = replica_at(&url, &dirs.path().join("b"), &key);
    std::thread::sleep(Duration::from_millis(700));
    let second = elect(&mut new, &b);
    assert!(second > first);
    assert_eq!(b.size(), 1);
    // The old one still believes it leads: its write reaches the store and is refused there.
    assert_eq!(old.store.term(), Some(first));
    let err = a.append(&sample(2, 100)).unwrap_err();
    assert!(err.to_string().contains("deposed"), "{err}");
    // It stopped: nothing more goes out, and it no longer claims to write.
    assert!(a.append(&sample(3, 100)).is_err());
    assert_eq!(old.store.term(), None);
    b.append(&sample(4, 100)).unwrap();
    assert_eq!(new.store.size().unwrap(), 2);
    let stored = new
        .store
        .read(0, 10, &allot_engine::log::CHAIN_SEED)
        .unwrap();
    assert_eq!(stored[1], b.read(1).unwrap());
}

#[test]
fn the_store_refuses_gaps_and_changed_history() {
    let Some(url) = database("gaps") else {
        return;
    };
    let key = SigningKey::generate("test.example/pg-log").unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let (a, mut leader) = replica_at(&url, &dirs.path().join("a"), &key);
    elect(&mut leader, &a);
    for n in 0..5 {
        a.append(&sample(n, 100)).unwrap();
    }
    // An import that does not continue the stored log: a gap, and a wrong chain.
    let seven = allot_engine::log::RawEntry {
        index: 7,
        ..a.read(4).unwrap()
    };
    let err = leader
        .store
        .import(&a.head().unwrap().chain, &[seven])
        .unwrap_err();
    assert!(err.to_string().contains("holds 5 entries, not 7"), "{err}");
    let five = allot_engine::log::RawEntry {
        index: 5,
        ..a.read(4).unwrap()
    };
    let err = leader.store.import(&[7; 32], &[five]).unwrap_err();
    assert!(err.to_string().contains("does not continue"), "{err}");

    // A row changed behind the log's back is caught when read.
    let mut sql = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    sql.execute(
        "UPDATE allot_entries SET body = overlay(body placing '\\x41'::bytea from 40) WHERE idx = 3",
        &[],
    )
    .unwrap();
    let err = leader
        .store
        .read(0, 10, &allot_engine::log::CHAIN_SEED)
        .unwrap_err();
    assert!(
        err.to_string().contains("entry 3") && err.to_string().contains("changed"),
        "{err}"
    );
    // And a follower copying from it stops there.
    let store = PgStore::connect(&url).unwrap();
    let b = Log::open(dirs.path().join("b"), options(&store, &key)).unwrap();
    let err = Replica::new(store, ReplicaOptions::new("b"))
        .open(&b)
        .unwrap_err();
    assert!(err.to_string().contains("entry 3"), "{err}");
    assert_eq!(b.size(), 0);
}

#[test]
fn a_folder_that_is_not_the_stores_cache_is_refused() {
    let Some(url) = database("foreign") else {
        return;
    };
    let key = SigningKey::generate("test.example/pg-log").unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let (a, mut leader) = replica_at(&url, &dirs.path().join("a"), &key);
    elect(&mut leader, &a);
    a.append(&sample(1, 100)).unwrap();
    a.append(&sample(2, 100)).unwrap();
    // A folder with a log of its own (written without the store).
    let other = dirs.path().join("other");
    {
        let log = Log::open(
            &other,
            LogOptions {
                signing_key: Some(key.clone()),
                ..small_options()
            },
        )
        .unwrap();
        log.append(&sample(5, 100)).unwrap();
    }
    let store = PgStore::connect(&url).unwrap();
    let log = Log::open(&other, options(&store, &key)).unwrap();
    let err = Replica::new(store, ReplicaOptions::new("x"))
        .open(&log)
        .unwrap_err();
    assert!(
        err.to_string().contains("not a copy of this store's log"),
        "{err}"
    );
    // Another signing key.
    let store = PgStore::connect(&url).unwrap();
    let stranger = SigningKey::generate("test.example/pg-log").unwrap();
    let log = Log::open(dirs.path().join("c"), options(&store, &stranger)).unwrap();
    let err = Replica::new(store, ReplicaOptions::new("y"))
        .open(&log)
        .unwrap_err();
    assert!(err.to_string().contains("same signing key"), "{err}");
}
