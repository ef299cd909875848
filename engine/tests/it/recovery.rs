//! Damage and crash leftovers: what opening repairs, what it refuses, and what `verify` finds.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use allot_engine::log::frame::{self, SEGMENT_HEADER_BYTES};
use allot_engine::log::merkle::leaf_hash;
use allot_engine::log::verify::verify;
use allot_engine::log::{Error, Log, Record, chain_hash};

use crate::support::{mth, open, sample};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir.join("log/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    out.sort();
    out
}

/// (index, byte offset, frame length) of every record in a segment file (commit trailers and
/// zero-filled space are between and after them).
fn records(path: &Path) -> Vec<(u64, usize, usize)> {
    let bytes = fs::read(path).unwrap();
    frame::layout(&bytes)
        .into_iter()
        .filter_map(|p| Some((p.index?, p.offset, p.len)))
        .collect()
}

/// Where the records of a segment (and the last group's trailer) end.
fn data_end(path: &Path) -> usize {
    let bytes = fs::read(path).unwrap();
    frame::layout(&bytes)
        .last()
        .map_or(SEGMENT_HEADER_BYTES, |p| p.offset + p.len)
}

/// Writes `bytes` right after the last record, as a crash could have left them.
fn write_after_records(path: &Path, bytes: &[u8]) {
    let at = data_end(path);
    let file = OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, bytes, at as u64).unwrap();
}

/// A log of `n` entries in small segments, closed; returns the canonical bytes of its entries.
fn fixture(dir: &Path, n: u64) -> Vec<Vec<u8>> {
    let log = open(dir);
    let mut bytes = Vec::new();
    for k in 0..n {
        if k % 7 == 3 {
            let batch: Vec<Record> = (0..3).map(|j| sample(k * 10 + j, 150)).collect();
            let range = log.append_batch(&batch).unwrap();
            bytes.extend(batch.iter().zip(range).map(|(r, i)| r.encode(i).unwrap()));
        } else {
            let i = log.append(&sample(k * 10, 150)).unwrap();
            bytes.push(sample(k * 10, 150).encode(i).unwrap());
        }
    }
    log.close().unwrap();
    bytes
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

#[test]
fn torn_tails_are_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture(dir.path(), 40);
    let last = segments(dir.path()).pop().unwrap();
    let good_len = data_end(&last) as u64;
    let n = bytes.len() as u64;

    let mut frame = Vec::new();
    let body = sample(999, 150).encode(n).unwrap();
    frame::encode_frame(&mut frame, &body, &[0; 32], true);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut short", frame[..30].to_vec()),
        ("cut inside the header", frame[..5].to_vec()),
        (
            "cut short, zeros after",
            [&frame[..30], &[0u8; 300]].concat(),
        ),
        ("whole but bad checksum", {
            let mut f = frame.clone();
            let at = f.len() - 10;
            f[at] ^= 1;
            f
        }),
    ];
    for (what, tail) in cases {
        write_after_records(&last, &tail);
        let err = verify(dir.path()).unwrap_err().to_string();
        let at = format!("entry {n} at byte {good_len}");
        assert!(err.contains(&at), "{what}: {err}");
        let log = open(dir.path());
        let report = log.report().clone();
        let torn = report
            .torn_tail
            .unwrap_or_else(|| panic!("{what}: not reported"));
        let written = tail.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
        let got = (torn.offset, torn.bytes, torn.first_index);
        assert_eq!(got, (good_len, written, n), "{what}");
        assert!(torn.truncated);
        assert_eq!(log.size(), n, "{what}");
        drop(log);
        let after = fs::read(&last).unwrap();
        let rest = &after[good_len as usize..];
        assert!(rest.iter().all(|&b| b == 0), "{what}: removed");
        assert_eq!(verify(dir.path()).unwrap().root, mth(&bytes), "{what}");
    }
}

#[test]
fn an_unfinished_batch_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture(dir.path(), 10);
    let n = bytes.len() as u64;
    let head = Log::open_read_only(dir.path()).unwrap().head().unwrap();
    let last = segments(dir.path()).pop().unwrap();
    // Two complete, valid records of a batch whose end-of-batch record never arrived.
    let mut chain = head.chain;
    let mut tail = Vec::new();
    for k in 0..2 {
        let body = sample(500 + k, 150).encode(n + k).unwrap();
        chain = chain_hash(&chain, &leaf_hash(&body));
        frame::encode_frame(&mut tail, &body, &chain, false);
    }
    write_after_records(&last, &tail);
    let err = verify(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no commit trailer"), "{err}");
    let read_only = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(read_only.size(), n);
    let torn = read_only.report().torn_tail.clone().unwrap();
    assert_eq!((torn.unfinished_group, torn.truncated), (2, false));
    let log = open(dir.path());
    assert_eq!(log.report().torn_tail.as_ref().unwrap().unfinished_group, 2);
    assert_eq!(log.size(), n);
    assert_eq!(log.append(&sample(1, 100)).unwrap(), n);
}

/// Every byte of every segment matters: flipping any one makes `verify` fail, naming the entry
/// that holds the byte (or the file, for a header byte).
#[test]
fn verify_finds_a_flipped_byte_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 30);
    for path in segments(dir.path()) {
        let original = fs::read(&path).unwrap();
        let records = records(&path);
        // Every header byte, every byte of the first and last record, and a stride elsewhere.
        let mut positions: Vec<usize> = (0..SEGMENT_HEADER_BYTES).collect();
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            positions.extend(first.1..first.1 + first.2);
            positions.extend(last.1..last.1 + last.2);
        }
        positions.extend((0..original.len()).step_by(7));
        for at in positions {
            flip(&path, at);
            let err = verify(dir.path())
                .expect_err("a flipped byte must fail verify")
                .to_string();
            match records
                .iter()
                .find(|(_, off, len)| (*off..off + len).contains(&at))
            {
                Some((index, _, _)) => {
                    assert!(err.contains(&format!("entry {index} ")), "byte {at}: {err}")
                }
                None => assert!(
                    err.contains(&path.display().to_string()),
                    "byte {at}: {err}"
                ),
            }
            fs::write(&path, &original).unwrap();
        }
    }
    verify(dir.path()).unwrap();
}

#[test]
fn damage_before_the_tail_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 30);
    let last = segments(dir.path()).pop().unwrap();
    let records = records(&last);
    assert!(records.len() >= 2);
    let (index, offset, _) = records[records.len() - 2];
    flip(&last, offset + 20);
    let err = Log::open(dir.path(), crate::support::small_options()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { index: i, offset: o, .. } if *i == index && *o == offset as u64),
        "{err}"
    );
    let err = Log::open_read_only(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("entry {index} at byte {offset}")),
        "{err}"
    );
}

#[test]
fn unknown_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 5);
    let last = segments(dir.path()).pop().unwrap();
    let original = fs::read(&last).unwrap();

    let mut newer_segment = original.clone();
    newer_segment[..SEGMENT_HEADER_BYTES].copy_from_slice(&frame::segment_header_version(0, 3));
    fs::write(&last, &newer_segment).unwrap();
    let err = Log::open_read_only(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("segment format version 3 is not supported"),
        "{err}"
    );

    // A valid record (checksums and all) holding an entry of a newer encoding version.
    let (index, offset, _) = *records_of(&original).last().unwrap();
    let mut body = sample(1, 100).encode(index).unwrap();
    body[0] = 2;
    let mut rewritten = original[..offset].to_vec();
    frame::encode_frame(&mut rewritten, &body, &[0; 32], true);
    fs::write(&last, &rewritten).unwrap();
    let err = open_err(dir.path());
    assert!(
        err.contains(&format!(
            "entry {index} at byte {offset}: entry version 2 is not supported"
        )),
        "{err}"
    );

    fn records_of(bytes: &[u8]) -> Vec<(u64, usize, usize)> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        fs::write(tmp.path(), bytes).unwrap();
        records(tmp.path())
    }
    fn open_err(dir: &Path) -> String {
        Log::open(dir, crate::support::small_options())
            .unwrap_err()
            .to_string()
    }
}

#[test]
fn a_log_that_lost_or_changed_signed_entries_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 30);
    let log = open(dir.path());
    let signed = log.sign_checkpoint().unwrap();
    drop(log);

    // Entries removed below the signed size.
    let last = segments(dir.path()).pop().unwrap();
    let original = fs::read(&last).unwrap();
    let cut = records(&last)[0].1;
    fs::write(&last, &original[..cut]).unwrap();
    fs::remove_dir_all(dir.path().join("log/derived")).unwrap();
    let err = Log::open(dir.path(), crate::support::small_options()).unwrap_err();
    assert!(
        matches!(err, Error::BehindCheckpoint { signed: s, .. } if s == signed.checkpoint.size),
        "{err}"
    );
    fs::write(&last, &original).unwrap();

    // Same size, other content: a rewritten history signed by the same key is refused.
    let other = tempfile::tempdir().unwrap();
    fs::create_dir_all(other.path().join("log")).unwrap();
    for key in ["signing.key", "verifier.key"] {
        fs::copy(
            dir.path().join("log").join(key),
            other.path().join("log").join(key),
        )
        .unwrap();
    }
    {
        let log = open(other.path());
        for n in 0..signed.checkpoint.size {
            log.append(&sample(n + 7, 150)).unwrap();
        }
    }
    fs::copy(
        dir.path().join("log/checkpoint"),
        other.path().join("log/checkpoint"),
    )
    .unwrap();
    let err = Log::open(other.path(), crate::support::small_options()).unwrap_err();
    assert!(matches!(err, Error::CheckpointMismatch { .. }), "{err}");
    assert!(matches!(
        Log::open_read_only(other.path()),
        Err(Error::CheckpointMismatch { .. })
    ));
    let err = verify(other.path()).unwrap_err();
    assert!(matches!(err, Error::CheckpointMismatch { .. }), "{err}");
}

#[test]
fn derived_data_is_rebuilt_or_its_damage_found() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture(dir.path(), 60);
    let derived = dir.path().join("log/derived");
    let level0 = derived.join("level-00.hashes");
    flip(&level0, 40);
    let err = verify(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("level-00.hashes") && err.contains("derived data is damaged"),
        "{err}"
    );
    flip(&level0, 40);
    verify(dir.path()).unwrap();

    // A watermark whose root the files do not give: the derived data is discarded and rebuilt.
    let meta = fs::read_to_string(derived.join("meta")).unwrap();
    let root_at = meta.find("root ").unwrap() + 5;
    let mut bad = meta.clone().into_bytes();
    bad[root_at] = if bad[root_at] == b'0' { b'1' } else { b'0' };
    fs::write(derived.join("meta"), bad).unwrap();
    let log = open(dir.path());
    let why = log.report().derived_rebuilt.clone().expect("reported");
    assert!(why.contains("derived/meta says"), "{why}");
    assert_eq!(log.report().rescanned, bytes.len() as u64);
    assert_eq!(log.head().unwrap().root, mth(&bytes));
    drop(log);
    verify(dir.path()).unwrap();

    // No derived data at all: everything is re-derived from the segments.
    fs::remove_dir_all(&derived).unwrap();
    let log = open(dir.path());
    assert_eq!(log.report().rescanned, bytes.len() as u64);
    assert_eq!(log.head().unwrap().root, mth(&bytes));
    drop(log);
    verify(dir.path()).unwrap();
}

/// A roll renames the zero-filled spare into place, then writes the header: a crash in between
/// leaves a last segment of zeros, which the next writer re-initialises and appends to.
#[test]
fn a_segment_whose_header_never_reached_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fixture(dir.path(), 12);
    let n = bytes.len() as u64;
    let crashed_roll = dir.path().join(format!("log/segments/{n:020}.seg"));
    fs::write(&crashed_roll, vec![0u8; 4096]).unwrap();
    assert!(
        verify(dir.path()).is_err(),
        "a header-less segment is not a valid log"
    );
    let log = open(dir.path());
    let torn = log.report().torn_tail.clone().expect("reported");
    assert!(
        torn.reason.contains("header was never completely written"),
        "{torn}"
    );
    assert_eq!(log.append(&sample(77, 150)).unwrap(), n);
    bytes.push(sample(77, 150).encode(n).unwrap());
    drop(log);
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.size, report.root), (n + 1, mth(&bytes)));
    let reopened = open(dir.path());
    assert_eq!(reopened.entry(n).unwrap().record, sample(77, 150));
}

/// Every single byte of a small log matters, not a sample: each flipped byte of the segment's
/// records (and of the zero-filled space after them) makes `verify` fail naming the entry that
/// holds it (the file for header and trailing bytes), and each flipped byte of the signed
/// checkpoint makes `verify` and opening fail naming the checkpoint.
#[test]
fn every_flipped_byte_of_a_small_log_and_its_checkpoint_is_found() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 5);
    let log = open(dir.path());
    log.sign_checkpoint().unwrap();
    log.close().unwrap();
    let paths = segments(dir.path());
    assert_eq!(paths.len(), 1);
    let path = &paths[0];
    let records = records(path);
    let original = fs::read(path).unwrap();
    let end = data_end(path);
    for at in 0..end + 64 {
        flip(path, at);
        let err = verify(dir.path())
            .expect_err("a flipped byte must fail verify")
            .to_string();
        match records
            .iter()
            .find(|(_, off, len)| (*off..off + len).contains(&at))
        {
            Some((index, _, _)) => {
                assert!(err.contains(&format!("entry {index} ")), "byte {at}: {err}")
            }
            None => assert!(
                err.contains(&path.display().to_string()),
                "byte {at}: {err}"
            ),
        }
        fs::write(path, &original).unwrap();
    }

    let checkpoint = dir.path().join("log/checkpoint");
    let original = fs::read(&checkpoint).unwrap();
    for at in 0..original.len() {
        flip(&checkpoint, at);
        let err = verify(dir.path())
            .expect_err("a flipped checkpoint byte must fail verify")
            .to_string();
        assert!(err.contains("checkpoint"), "byte {at}: {err}");
        let err = Log::open_read_only(dir.path())
            .expect_err("a damaged checkpoint must refuse to open")
            .to_string();
        assert!(err.contains("checkpoint"), "byte {at}: {err}");
        fs::write(&checkpoint, &original).unwrap();
    }
    verify(dir.path()).unwrap();
}

/// A power cut while a multi-page group was being written, before its fsync: the disk kept a
/// later page of it but not an earlier one (zeros, then data, at the end of the segment). The
/// group was never acknowledged; opening drops it, reports it and goes on. (Before segments had
/// commit trailers, such a tail was refused as damage.)
#[test]
fn a_torn_group_of_zeros_then_data_is_recovered() {
    use allot_engine::fs::powercut::PowerCutFs;
    use allot_engine::fs::{DataDir, FileSystem, SyncPoint};
    use std::sync::Arc;

    let fs = PowerCutFs::new();
    let data = DataDir::on(Arc::new(fs.clone()), "/data");
    let options = || allot_engine::log::LogOptions {
        origin: Some("torn.test/log".into()),
        segment_bytes: 1 << 20,
        ..allot_engine::log::LogOptions::default()
    };
    let log = Log::open(&data, options()).unwrap();
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    for k in 0..5 {
        let i = log.append(&sample(k, 300)).unwrap();
        bytes.push(sample(k, 300).encode(i).unwrap());
    }
    // A batch of about 12 KiB: its write spans four pages; the power goes as it is synced.
    fs.cut_at_sync(SyncPoint::LogGroup, 1);
    let batch: Vec<Record> = (0..40).map(|k| sample(100 + k, 300)).collect();
    assert!(log.append_batch(&batch).is_err());
    drop(log);

    let segment = Path::new("/data/log/segments/00000000000000000000.seg");
    let end_of_acked = {
        let image = fs.restart(0).read(segment).unwrap();
        frame::layout(&image)
            .iter()
            .find(|p| p.index == Some(5))
            .map_or(0, |p| p.offset)
    };
    // Find a restart whose tail is zeros then data.
    let restarted = (0..500)
        .map(|seed| fs.restart(seed))
        .find(|after| {
            let image = after.read(segment).unwrap();
            let last = image.iter().rposition(|&b| b != 0).unwrap_or(0);
            let block = end_of_acked.div_ceil(512) * 512;
            last > block + 512 && image[block..block + 512].iter().all(|&b| b == 0)
        })
        .expect("some restart keeps a later page and loses an earlier one");
    let data = DataDir::on(Arc::new(restarted.clone()), "/data");
    let log = Log::open(&data, options()).unwrap();
    let torn = log
        .report()
        .torn_tail
        .clone()
        .expect("the torn group is reported");
    assert_eq!((torn.first_index, torn.offset), (5, end_of_acked as u64));
    assert!(torn.truncated, "{torn}");
    assert_eq!(log.size(), 5);
    let i = log.append(&sample(7, 300)).unwrap();
    bytes.push(sample(7, 300).encode(i).unwrap());
    drop(log);
    let report = verify(&data).unwrap();
    assert_eq!((report.size, report.root), (6, mth(&bytes)));
}

/// Damage inside the last group of the log, whose commit trailer is intact and which misses no
/// block: it was written whole and acknowledged, so it is damage, named by entry and byte.
#[test]
fn damage_inside_the_last_complete_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(&sample(1, 150)).unwrap();
    let batch: Vec<Record> = (0..3).map(|k| sample(10 + k, 150)).collect();
    log.append_batch(&batch).unwrap();
    drop(log);
    let last = segments(dir.path()).pop().unwrap();
    let records = records(&last);
    let (index, offset, _) = records[records.len() - 2];
    flip(&last, offset + 30);
    for err in [
        Log::open(dir.path(), crate::support::small_options())
            .unwrap_err()
            .to_string(),
        Log::open_read_only(dir.path()).unwrap_err().to_string(),
    ] {
        assert!(
            err.contains(&format!("entry {index} at byte {offset}"))
                && err.contains("is damage, not a write cut short"),
            "{err}"
        );
    }
}

/// An entry edited in place, its record checksums made right again (but not the chain or the
/// tree), is refused by every reader of the log, not only by `verify`.
#[test]
fn an_entry_edited_in_place_is_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), 12);
    let last = segments(dir.path())[0].clone();
    let (index, offset, len) = records(&last)[3];
    let mut bytes = fs::read(&last).unwrap();
    let raw = Log::open_read_only(dir.path())
        .unwrap()
        .read(index)
        .unwrap();
    // Change one byte of the entry's subject and re-frame the record with its stored chain hash.
    let mut body = raw.bytes.clone();
    let at = body.len() - 5;
    body[at] ^= 0x01;
    let mut framed = Vec::new();
    frame::encode_frame(&mut framed, &body, &raw.chain, true);
    assert_eq!(framed.len(), len);
    bytes[offset..offset + len].copy_from_slice(&framed);
    // The group's trailer covers these bytes too: re-seal it as a careful forger would.
    let pieces = frame::layout(&fs::read(&last).unwrap());
    let trailer = pieces
        .iter()
        .find(|p| p.index.is_none() && p.offset > offset)
        .unwrap();
    let group_start = pieces
        .iter()
        .rev()
        .find(|p| p.index.is_none() && p.offset < offset)
        .map_or(SEGMENT_HEADER_BYTES, |p| p.offset + p.len);
    let records_in_group = pieces
        .iter()
        .filter(|p| p.index.is_some() && p.offset >= group_start && p.offset < trailer.offset)
        .count();
    let mut sealed = Vec::new();
    frame::Trailer::of(&bytes[group_start..trailer.offset], records_in_group).encode(&mut sealed);
    bytes[trailer.offset..trailer.offset + frame::TRAILER_BYTES].copy_from_slice(&sealed);
    fs::write(&last, &bytes).unwrap();

    let log = Log::open(dir.path(), crate::support::small_options()).unwrap();
    let err = log
        .entries(0..log.size())
        .unwrap()
        .find_map(|e| e.err())
        .expect("reading the log meets the edited entry")
        .to_string();
    assert!(
        err.contains(&format!("entry {index} at byte {offset}")) && err.contains("changed"),
        "{err}"
    );
}
