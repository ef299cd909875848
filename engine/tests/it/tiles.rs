//! The log's tiles read by Cloudflare's `tlog_tiles` (a port of Go's `tlog`, written apart from
//! allot): for trees of many sizes its `TileHashReader` loads our hash tiles, checks each against
//! the tree hash, and recomputes the root, which must be the log's; every entry bundle holds the
//! entries whose leaf hashes (computed here with SHA-256) are the level-0 tile; Cloudflare's
//! `signed_note` verifies the checkpoints.

use crate::support::Store;
use allot_engine::log::decision::SlotHeld;
use allot_engine::log::tiles::{TILE_WIDTH, TileId};
use allot_engine::log::{Log, LogOptions, Record, Timestamp};
use allot_testkit::{TestSeed, c2sp_tile_path};
use rand::RngExt as _;
use sha2::{Digest as _, Sha256};
use tlog_tiles::{HashReader as _, TileHashReader, TileReader};

/// The log's tiles, with one byte of every tile changed when `forged`.
struct Tiles<'a>(&'a Log, bool);

impl TileReader for Tiles<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let id = TileId {
                    level: t.level(),
                    index: t.level_index(),
                    width: t.width(),
                };
                let mut bytes = self
                    .0
                    .tile(id)
                    .map_err(|_| tlog_tiles::Error::IndexesNotInTree)?;
                if self.1 {
                    bytes[0] ^= 1;
                }
                Ok(bytes)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

fn append(log: &Log, n: u64) {
    let records: Vec<Record> = (0..n)
        .map(|k| {
            let held = SlotHeld {
                slot: format!("V{k}"),
                hold: format!("h{k}"),
                expires: Timestamp::from_unix_micros(k),
            };
            Record::new(Timestamp::from_unix_micros(k), "t", format!("p{k}"), held)
        })
        .collect();
    for chunk in records.chunks(4096) {
        log.append_batch(chunk).unwrap();
    }
}

/// On both stores (see `backends.rs`).
pub(crate) fn tlog_tiles_reads_our_tiles_and_bundles(store: &Store) {
    let seed = TestSeed::new("tlog_tiles_reads_our_tiles_and_bundles");
    let mut rng = seed.rng(0);
    let dir = tempfile::tempdir().unwrap();
    let log = store.open_with(dir.path(), LogOptions::default());
    // Past 65,536 entries: level-1 tiles are read too.
    let total = 66_000 + rng.random_range(0..1_000);
    append(&log, total);
    let mut sizes: Vec<u64> = vec![1, 255, 256, 257, 65_535, 65_536, 65_537, total];
    sizes.extend((0..12).map(|_| rng.random_range(1..=total)));
    let reader = Tiles(&log, false);
    for size in sizes {
        let root = log.root_at(size).unwrap();
        let hashes = TileHashReader::new(size, tlog_tiles::Hash(root), &reader);
        let theirs =
            tlog_tiles::tree_hash(size, &hashes).unwrap_or_else(|e| panic!("size {size}: {e:?}"));
        assert_eq!(theirs.0, root, "size {size}");
        // A leaf read through the verified tiles is the entry's leaf hash.
        let index = rng.random_range(0..size);
        let stored = tlog_tiles::stored_hash_index(0, index);
        let leaf = hashes.read_hashes(&[stored]).unwrap()[0];
        assert_eq!(leaf.0, log.read(index).unwrap().leaf_hash(), "size {size}");
    }

    // Forged tiles do not pass its check against the tree hash.
    let forged = Tiles(&log, true);
    let root = log.root_at(total).unwrap();
    let hashes = TileHashReader::new(total, tlog_tiles::Hash(root), &forged);
    assert!(tlog_tiles::tree_hash(total, &hashes).is_err());

    // Entry bundles: u16 lengths and entries whose SHA-256(0x00 || entry) are the level-0 tile.
    for index in [0, 1, total / 256 - 1, total / 256] {
        let width = (total - index * 256).min(u64::from(TILE_WIDTH)) as u32;
        let id = TileId {
            level: 0,
            index,
            width,
        };
        let bundle = log.entry_bundle(id).unwrap();
        let tile = log.tile(id).unwrap();
        let (mut at, mut k) = (0usize, 0usize);
        while at < bundle.len() {
            let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
            let entry = &bundle[at + 2..at + 2 + len];
            let leaf: [u8; 32] = Sha256::new_with_prefix([0u8])
                .chain_update(entry)
                .finalize()
                .into();
            assert_eq!(leaf, tile[k * 32..k * 32 + 32], "bundle {index}, entry {k}");
            at += 2 + len;
            k += 1;
        }
        assert_eq!(k, width as usize, "bundle {index}");
    }
    // Beyond the tree: refused.
    let beyond = TileId {
        level: 0,
        index: total / 256 + 1,
        width: 256,
    };
    assert!(log.tile(beyond).is_err());
}

/// Tiles read from the static files of `DATA/tiles/`, by their spec paths.
struct Files(std::path::PathBuf);

impl TileReader for Files {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        (tiles.iter())
            .map(|t| {
                let path = c2sp_tile_path(Some(t.level()), t.level_index(), t.width());
                std::fs::read(self.0.join(path)).map_err(|_| tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

/// Published as static files, twice as the log grows: the checkpoint file is the signed note,
/// and `tlog_tiles` verifies the tiles on disk against it; the second publication writes only
/// what the tree gained.
/// On both stores (see `backends.rs`).
pub(crate) fn published_tiles_are_read_from_files_by_tlog_tiles(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = store.open_with(dir.path(), LogOptions::default());
    let files = Files(dir.path().join("tiles"));
    let mut written = Vec::new();
    for grow in [66_000, 1_000] {
        append(&log, grow);
        let signed = log.sign_checkpoint().unwrap();
        let size = signed.checkpoint.size;
        written.push(log.publish_tiles(&signed.note, size).unwrap());
        let note = std::fs::read_to_string(dir.path().join("tiles/checkpoint")).unwrap();
        assert_eq!(note, signed.note);
        let text = note.split_once("\n\n").unwrap().0.to_owned() + "\n";
        let checkpoint = tlog_tiles::Checkpoint::from_bytes(text.as_bytes()).unwrap();
        let hashes = TileHashReader::new(size, *checkpoint.hash(), &files);
        let root = tlog_tiles::tree_hash(size, &hashes).unwrap();
        assert_eq!(root.0, log.root_at(size).unwrap());
        let last = (size - 1) / 256;
        let width = (size - last * 256) as u32;
        let bundle = std::fs::read(
            dir.path()
                .join("tiles")
                .join(c2sp_tile_path(None, last, width)),
        );
        assert!(bundle.is_ok(), "the last bundle of {size}");
    }
    // 66,000 entries: 258 level-0 tiles and bundles; 257 nodes of 256 leaves, so 2 level-1 tiles
    // (256 and 1 hashes); 1 node of 65,536 leaves, a level-2 tile; the checkpoint. Then 1,000
    // more: level 0 from the partial tile 257 to tile 261 (5 tiles, 5 bundles), level 1's
    // partial tile grown (261 nodes), level 2 unchanged, the checkpoint.
    assert_eq!(written, [2 * 258 + 2 + 1 + 1, 2 * 5 + 1 + 1]);
}

/// The published checkpoint is a C2SP signed note that Cloudflare's `signed_note` verifies with
/// the log's verifier key (`DATA/log/verifier.key`), and refuses once its text is changed.
/// On both stores (see `backends.rs`).
pub(crate) fn signed_note_verifies_our_checkpoints(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = store.open_with(dir.path(), LogOptions::default());
    append(&log, 300);
    let signed = log.sign_checkpoint().unwrap();
    let vkey = std::fs::read_to_string(dir.path().join("log/verifier.key")).unwrap();
    let verifier = signed_note::StandardVerifier::new(vkey.trim()).unwrap();
    let known = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let note = signed_note::Note::from_bytes(signed.note.as_bytes()).unwrap();
    let (verified, unverified) = note.verify(&known).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    let size = signed.checkpoint.size.to_string();
    let forged = signed.note.replacen(&format!("\n{size}\n"), "\n299\n", 1);
    assert_ne!(forged, signed.note);
    let forged = signed_note::Note::from_bytes(forged.as_bytes()).unwrap();
    assert!(forged.verify(&known).is_err());
}
