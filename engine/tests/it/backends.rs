//! One suite, two stores: the log's, the tiles' and the durable appointment engine's tests run
//! on the data folder and on PostgreSQL (the folder then the store's cache). On PostgreSQL, a last check
//! reopens the engine on an empty folder: everything comes back from the store.

use crate::support::Store;

macro_rules! on_both_stores {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod folder {
            $(#[test]
            fn $name() {
                crate::$module::$name(&crate::support::Store::Folder);
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                if let Some(store) = crate::support::Store::postgres(stringify!($name)) {
                    crate::$module::$name(&store);
                }
            })*
        }
    };
}

on_both_stores!(
    log::appends_read_back_and_prove_against_the_rfc_oracle,
    log::many_writers_and_readers_at_once,
    log::checkpoints_are_signed_consistent_and_checked_on_open,
    log::tickets_resolve_as_futures,
    log::bad_requests_name_the_problem,
    log::empty_log_has_the_empty_root,
    appointments_durable::restart_rebuilds_the_same_inventory_from_the_log_and_from_a_snapshot,
    appointments_durable::concurrent_durable_bookings_replay_to_the_same_inventory,
    tiles::tlog_tiles_reads_our_tiles_and_bundles,
    tiles::published_tiles_are_read_from_files_by_tlog_tiles,
    tiles::signed_note_verifies_our_checkpoints,
);

/// A replica's folder is only a cache: a new, empty one rebuilds the same log and inventory
/// from the store alone (entries, the schedule's blob, and the newest snapshot).
#[test]
fn an_empty_folder_rebuilds_everything_from_the_store() {
    let Some(store) = Store::postgres("empty_folder") else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let (digest, head, covers) = {
        let (engine, _) = crate::appointments_durable::booked_city(&store, &dirs.path().join("a"));
        let info = engine.snapshot().unwrap();
        // One more decision after the snapshot, for the replay.
        let slot = allot_engine::appointments::SlotRef(engine.schedule().slot_count() - 1);
        let booking = allot_engine::appointments::Booking::Slot {
            patient: "after-the-snapshot",
            slot,
        };
        engine.book("umias", booking).unwrap();
        let log = engine.log().unwrap();
        (engine.state_digest(), log.head().unwrap(), info.covers)
    };
    let (engine, report) =
        crate::appointments_durable::open_on_fresh(&store, &dirs.path().join("b"));
    assert_eq!(report.snapshot, Some(covers), "{report:?}");
    assert!(report.replayed >= 2, "{report:?}");
    assert_eq!(engine.log().unwrap().head().unwrap(), head);
    assert_eq!(engine.state_digest(), digest);
}
