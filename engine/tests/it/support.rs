//! Shared test helpers: proptest strategies for every decision, and small log fixtures.

use allot_engine::log::decision::*;
use allot_engine::log::{Bytes, Decision, Digest, Log, LogOptions, Parameters, Record, Timestamp};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Mostly ids, sometimes any Unicode (the encoding must not care).
    prop_oneof![3 => "[a-z0-9:-]{0,12}", 1 => any::<String>()]
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn time() -> impl Strategy<Value = Timestamp> {
    any::<u64>().prop_map(Timestamp::from_unix_micros)
}

fn domain() -> impl Strategy<Value = Domain> {
    proptest::sample::select(Domain::ALL)
}

fn parameters() -> impl Strategy<Value = Parameters> {
    proptest::collection::btree_map(text(), text(), 0..4)
}

pub fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        (text(), text(), time()).prop_map(|(slot, hold, expires)| SlotHeld {
            slot,
            hold,
            expires
        }
        .into()),
        (text(), text(), proptest::sample::select(HoldEnd::ALL))
            .prop_map(|(slot, hold, reason)| HoldReleased { slot, hold, reason }.into()),
        (text(), text(), proptest::option::of(text())).prop_map(|(slot, appointment, hold)| {
            SlotBooked {
                slot,
                appointment,
                hold,
            }
            .into()
        }),
        (text(), text(), proptest::sample::select(CancelledBy::ALL)).prop_map(
            |(appointment, slot, by)| AppointmentCancelled {
                appointment,
                slot,
                by
            }
            .into()
        ),
        (text(), text(), text()).prop_map(|(appointment, from_slot, to_slot)| {
            Rescheduled {
                appointment,
                from_slot,
                to_slot,
            }
            .into()
        }),
        (time(), time(), any::<u32>()).prop_map(|(from, until, freed_slots)| AbsenceMarked {
            from,
            until,
            freed_slots
        }
        .into()),
        (text(), text(), text(), time()).prop_map(
            |(appointment, from_slot, offered_slot, expires)| {
                ReOffered {
                    appointment,
                    from_slot,
                    offered_slot,
                    expires,
                }
                .into()
            }
        ),
        (text(), proptest::sample::select(Attendance::ALL)).prop_map(|(appointment, status)| {
            AttendanceRecorded {
                appointment,
                status,
            }
            .into()
        }),
        (domain(), any::<u64>(), digest()).prop_map(|(domain, applications, set_digest)| {
            ApplicationsClosed {
                domain,
                applications,
                set_digest,
            }
            .into()
        }),
        (
            domain(),
            digest(),
            text(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            digest()
        )
            .prop_map(
                |(domain, commitment, beacon_source, beacon_round, value, seed)| {
                    SeedDrawn {
                        domain,
                        commitment,
                        beacon_source,
                        beacon_round,
                        beacon_value: Bytes(value),
                        seed,
                    }
                    .into()
                }
            ),
        (
            domain(),
            text(),
            digest(),
            parameters(),
            proptest::option::of(digest()),
            digest(),
            any::<(u64, u64, u64)>()
        )
            .prop_map(
                |(domain, mechanism, input_digest, parameters, seed, outcome_digest, c)| {
                    AllocationRun {
                        domain,
                        mechanism,
                        input_digest,
                        parameters,
                        seed,
                        outcome_digest,
                        counts: RunCounts {
                            participants: c.0,
                            places: c.1,
                            assigned: c.2,
                        },
                    }
                    .into()
                }
            ),
        (
            digest(),
            proptest::option::of(text()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(run, assigned, rank)| Outcome {
                run,
                assigned,
                rank
            }
            .into()),
        (domain(), digest(), text()).prop_map(|(domain, run, place)| Withdrawn {
            domain,
            run,
            place
        }
        .into()),
        (domain(), digest(), text()).prop_map(|(domain, run, place)| PlaceAccepted {
            domain,
            run,
            place
        }
        .into()),
        (
            domain(),
            text(),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(domain, window, item)| ApplicationSubmitted {
                domain,
                window,
                item: Bytes(item),
            }
            .into()),
        (domain(), text())
            .prop_map(|(domain, window)| ApplicationWithdrawn { domain, window }.into()),
        (domain(), any::<u64>(), digest()).prop_map(|(domain, covers, digest)| WindowsSaved {
            domain,
            covers,
            digest
        }
        .into()),
        (domain(), digest(), text(), text()).prop_map(|(domain, run, place, from)| {
            PlaceReOffered {
                domain,
                run,
                place,
                from,
            }
            .into()
        }),
        (digest(), text(), any::<(u32, u32, u32, u64)>()).prop_map(
            |(input_digest, first_day, n)| {
                ScheduleLoaded {
                    input_digest,
                    first_day,
                    days: n.0,
                    clinics: n.1,
                    doctors: n.2,
                    slots: n.3,
                }
                .into()
            }
        ),
        (any::<u64>(), digest(), digest(), any::<u64>(), any::<u64>()).prop_map(
            |(covers, digest, schedule, slots, records)| SnapshotTaken {
                covers,
                digest,
                schedule,
                slots,
                records,
            }
            .into()
        ),
    ]
}

pub fn record() -> impl Strategy<Value = Record> {
    (time(), text(), text(), decision()).prop_map(|(time, actor, subject, decision)| Record {
        time,
        actor,
        subject,
        decision,
    })
}

/// A deterministic record, distinct per `n`, about `size` bytes when encoded.
pub fn sample(n: u64, size: usize) -> Record {
    let pad = "x".repeat(size.saturating_sub(120));
    Record::new(
        Timestamp::from_unix_micros(1_740_821_400_000_000 + n),
        "test",
        format!("patient-{n}"),
        SlotBooked {
            slot: format!("clinic-7/dr-3/slot-{n}{pad}"),
            appointment: format!("appt-{n}"),
            hold: Some(format!("hold-{n}")),
        },
    )
}

/// Options that make segments roll and derived data flush often.
pub fn small_options() -> LogOptions {
    LogOptions {
        origin: Some("test.example/log".into()),
        segment_bytes: 8 << 10,
        flush_entries: 37,
        ..LogOptions::default()
    }
}

pub fn open(dir: &std::path::Path) -> Log {
    Log::open(dir, small_options()).expect("open the log")
}

/// RFC 6962 2.1 MTH, transcribed literally: the oracle for roots computed from stored nodes.
pub fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
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

/// Where a test's log keeps its entries: the data folder, or a PostgreSQL store (the folder
/// then its cache) on a fresh database of the test cluster, led by this process. The tests of
/// `backends.rs` run once on each.
pub enum Store {
    Folder,
    Postgres {
        store: std::sync::Arc<allot_engine::log::postgres::PgStore>,
        key: Box<allot_engine::log::SigningKey>,
    },
}

impl Store {
    /// A store on a fresh database named after `test`, or `None` when the test is skipped.
    pub fn postgres(test: &str) -> Option<Store> {
        let url = allot_testkit::postgres::database(test)?;
        Some(Store::Postgres {
            store: allot_engine::log::postgres::PgStore::connect(&url).expect("the test database"),
            key: Box::new(allot_engine::log::SigningKey::generate("test.example/log").unwrap()),
        })
    }

    /// Opens the log of `dir` with `base` options on this store: on PostgreSQL the folder is
    /// checked against the store, catches up, and this process leads.
    pub fn open_with(&self, dir: &std::path::Path, base: LogOptions) -> Log {
        use allot_engine::log::replica::{Replica, ReplicaOptions, Role};
        let Store::Postgres { store, key } = self else {
            return Log::open(dir, base).expect("open the log");
        };
        let log = Log::open(
            dir,
            LogOptions {
                signing_key: Some((**key).clone()),
                backend: Some(store.clone()),
                ..base
            },
        )
        .expect("open the log on the store");
        let mut replica = Replica::new(store.clone(), ReplicaOptions::new("test"));
        replica.open(&log).expect("the folder is the store's cache");
        while store.term().is_none() {
            match replica.step(&log).expect("the store answers") {
                Role::Elected { term } => {
                    replica.lead(term).unwrap();
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        log
    }

    /// [`Store::open_with`] with the options that make segments roll and derived data flush.
    pub fn open(&self, dir: &std::path::Path) -> Log {
        self.open_with(dir, small_options())
    }
}
