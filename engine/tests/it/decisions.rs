//! Entry encoding: layouts written out by hand from FORMAT.md, round trips, canonicity, and
//! clear rejection of unknown versions and kinds.

use std::collections::HashSet;

use allot_engine::log::decision::{AllocationRun, Domain, Outcome, RunCounts, SlotHeld};
use allot_engine::log::{DecisionKind, Digest, Entry, Record, Timestamp};
use proptest::prelude::*;
use sha2::Digest as _;

use crate::support;

/// One data-driven check: an entry and its bytes, spelled out field by field from FORMAT.md.
fn check(entry: Entry, expect: &[&str]) {
    let expect = expect.concat();
    let bytes = entry.encode().expect("encodes");
    assert_eq!(hex::encode(&bytes), expect, "encoding of {entry:?}");
    assert_eq!(Entry::decode(&bytes).expect("decodes"), entry);
}

#[test]
fn layouts_match_format_md() {
    let t0 = Timestamp::from_unix_micros(1_740_821_400_000_000);
    check(
        Entry {
            index: 5,
            record: Record::new(
                t0,
                "umias",
                "p-1",
                SlotHeld {
                    slot: "s-9".into(),
                    hold: "h-2".into(),
                    expires: Timestamp::from_unix_micros(1_740_822_000_000_000),
                },
            ),
        },
        &[
            "01",                 // entry version
            "0000000000000005",   // index
            "00062f44912a1600",   // time, µs since the epoch
            "0101",               // kind: SlotHeld
            "00000005756d696173", // actor "umias"
            "00000003702d31",     // subject "p-1"
            "00000003732d39",     // slot "s-9"
            "00000003682d32",     // hold "h-2"
            "00062f44b4ed5c00",   // expires
        ],
    );
    check(
        Entry {
            index: 1 << 40,
            record: Record::new(
                t0,
                "fair-admin",
                "applicant-4",
                Outcome {
                    run: Digest([0xab; 32]),
                    assigned: Some("fair-12".into()),
                    rank: Some(2),
                },
            ),
        },
        &[
            "01",
            "0000010000000000",
            "00062f44912a1600",
            "0204", // kind: Outcome
            "0000000a666169722d61646d696e",
            "0000000b6170706c6963616e742d34",
            &"ab".repeat(32),           // run id
            "0100000007666169722d3132", // assigned: present, "fair-12"
            "0100000002",               // rank: present, 2
        ],
    );
    check(
        Entry {
            index: 0,
            record: Record::new(
                Timestamp::from_unix_micros(0),
                "",
                "",
                Outcome {
                    run: Digest([0; 32]),
                    assigned: None,
                    rank: None,
                },
            ),
        },
        &[
            "01",
            "0000000000000000",
            "0000000000000000",
            "0204",
            "00000000",
            "00000000",
            &"00".repeat(32),
            "00",
            "00",
        ],
    );
}

#[test]
fn unknown_versions_and_kinds_are_rejected_clearly() {
    let entry = Entry {
        index: 3,
        record: support::sample(3, 100),
    };
    let bytes = entry.encode().unwrap();
    let mut newer = bytes.clone();
    newer[0] = 2;
    assert_eq!(
        Entry::decode(&newer).unwrap_err().to_string(),
        "byte 0 (version): encoding version 2 is not supported (this build reads version 1)"
    );
    let mut unknown = bytes.clone();
    unknown[17..19].copy_from_slice(&0x7777u16.to_be_bytes());
    let err = Entry::decode(&unknown).unwrap_err().to_string();
    assert!(err.contains("unknown decision kind 0x7777"), "{err}");
    let mut longer = bytes.clone();
    longer.push(0);
    let err = Entry::decode(&longer).unwrap_err().to_string();
    assert!(err.contains("1 bytes left over"), "{err}");
    assert!(Entry::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(Entry::decode(&[]).is_err());
}

#[test]
fn kind_codes_are_unique_and_named() {
    let codes: HashSet<u16> = DecisionKind::ALL.iter().map(|k| k.0).collect();
    assert_eq!(codes.len(), DecisionKind::ALL.len());
    for kind in DecisionKind::ALL {
        assert!(kind.name().is_some(), "{kind:?}");
    }
    assert_eq!(DecisionKind(0x7777).name(), None);
}

/// A run's id is SHA-256 of its kind code and payload, recomputable from the logged entry.
#[test]
fn run_id_is_recomputable_from_the_entry() {
    let run = AllocationRun {
        domain: Domain::Fairs,
        mechanism: "da".into(),
        input_digest: Digest([1; 32]),
        parameters: [("precedence".to_owned(), "own-first".to_owned())].into(),
        seed: Some(Digest([2; 32])),
        outcome_digest: Digest([3; 32]),
        counts: RunCounts {
            participants: 20_000,
            places: 15_000,
            assigned: 14_321,
        },
    };
    let record = Record::new(
        Timestamp::from_unix_micros(9),
        "fair-admin",
        "2025-spring",
        run.clone(),
    );
    let bytes = record.encode(77).unwrap();
    // Payload = everything after version, index, time, kind, actor and subject.
    let header = 1 + 8 + 8 + 2 + (4 + "fair-admin".len()) + (4 + "2025-spring".len());
    let mut hashed = bytes[17..19].to_vec();
    hashed.extend_from_slice(&bytes[header..]);
    assert_eq!(run.id().0, <[u8; 32]>::from(sha2::Sha256::digest(&hashed)));
    let mut other = run.clone();
    other.counts.assigned += 1;
    assert_ne!(other.id(), run.id());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn entries_round_trip(record in support::record(), index: u64) {
        let entry = Entry { index, record };
        let bytes = entry.encode().unwrap();
        prop_assert_eq!(&Entry::decode(&bytes).unwrap(), &entry);
        // Canonical: the same decision always gives the same bytes.
        prop_assert_eq!(entry.clone().encode().unwrap(), bytes);
    }

    /// No value has two encodings: any mutation that still decodes re-encodes to itself.
    #[test]
    fn mutated_encodings_are_canonical_or_rejected(
        record in support::record(), at: usize, value: u8, cut: usize,
    ) {
        let bytes = Entry { index: 1, record }.encode().unwrap();
        let mut mutated = bytes.clone();
        let at = at % mutated.len();
        mutated[at] = value;
        if let Ok(entry) = Entry::decode(&mutated) {
            prop_assert_eq!(entry.encode().unwrap(), mutated);
        }
        let cut = cut % bytes.len();
        prop_assert!(Entry::decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(entry) = Entry::decode(&bytes) {
            prop_assert_eq!(entry.encode().unwrap(), bytes);
        }
    }
}

/// FORMAT.md's table lists every kind with its code and name (so the documentation cannot fall
/// behind the code).
#[test]
fn format_md_lists_every_kind() {
    let doc = include_str!("../../src/log/FORMAT.md");
    for kind in DecisionKind::ALL {
        let row = format!("| `0x{:04x}` | {} |", kind.0, kind.name().unwrap());
        assert!(doc.contains(&row), "FORMAT.md lacks {row}");
    }
}
