//! Every Audit method over a real socket; every proof checked with the engine's verifiers against
//! the signed checkpoint it came with, under the key read from the data folder.

use allot_engine::log::proof::{verify_consistency, verify_inclusion};
use allot_engine::log::{Entry, Hash, SignedCheckpoint, merkle};
use allot_service::proto::v1 as pb;
use sha2::{Digest as _, Sha256};
use tokio_stream::StreamExt as _;

use super::{Harness, append};

fn hash(bytes: &[u8]) -> Hash {
    bytes.try_into().expect("32 bytes")
}

/// RFC 6962 MTH of the leaves, written out here independently of the engine's tree.
fn mth(leaves: &[Vec<u8>]) -> Hash {
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

/// Opens a checkpoint message under the trusted key; its fields must repeat the note's.
fn open(h: &Harness, signed: &Option<pb::SignedCheckpoint>) -> SignedCheckpoint {
    let signed = signed.as_ref().expect("a checkpoint");
    let opened = SignedCheckpoint::open(&signed.note, &h.trusted_key()).expect("a valid signature");
    assert_eq!(opened.checkpoint.size, signed.tree_size);
    assert_eq!(opened.checkpoint.root.to_vec(), signed.root_hash);
    assert_eq!(opened.checkpoint.origin, signed.origin);
    opened
}

async fn all_entries(h: &Harness, request: pb::StreamEntriesRequest) -> Vec<pb::LogEntry> {
    let mut stream = h
        .auditor()
        .await
        .stream_entries(request)
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        assert!(batch.entries.len() <= 1024);
        out.extend(batch.entries);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_entries() {
    let h = Harness::start(37).await;
    let mut audit = h.auditor().await;
    let answer = audit
        .get_checkpoint(pb::GetCheckpointRequest { refresh: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.log_size, 37);
    assert_eq!(answer.verifier_key, h.trusted_key().to_text());
    let signed = open(&h, &answer.checkpoint);
    assert_eq!(signed.checkpoint.size, 37, "the server signs at start");

    let entries = all_entries(&h, pb::StreamEntriesRequest::default()).await;
    assert_eq!(entries.len(), 37);
    let leaves: Vec<Vec<u8>> = entries.iter().map(|e| e.data.clone()).collect();
    assert_eq!(signed.checkpoint.root, mth(&leaves));

    for index in [0, 1, 17, 36] {
        let entry = audit
            .get_entry(pb::GetEntryRequest { index })
            .await
            .unwrap()
            .into_inner()
            .entry
            .unwrap();
        let stored = h.log.read(index).unwrap();
        assert_eq!(entry.index, index);
        assert_eq!(entry.data, stored.bytes);
        assert_eq!(hash(&entry.leaf_hash), merkle::leaf_hash(&entry.data));
        assert_eq!(hash(&entry.chain_hash), stored.chain);
        let decoded = entry.decoded.unwrap();
        let expect = Entry::decode(&entry.data).unwrap().record;
        assert_eq!(decoded.kind_name, expect.decision.name());
        assert_eq!(decoded.kind, u32::from(expect.decision.kind().0));
        assert_eq!(decoded.actor, "umias");
        assert_eq!(decoded.subject, format!("patient-{index}"));
        let time = decoded.time.unwrap();
        let micros = time.seconds as u64 * 1_000_000 + time.nanos as u64 / 1000;
        assert_eq!(micros, expect.time.unix_micros());
        let fields: Vec<(String, String)> = decoded
            .fields
            .into_iter()
            .map(|f| (f.name, f.value))
            .collect();
        let expect: Vec<(String, String)> = expect
            .decision
            .fields()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        assert_eq!(fields, expect);
    }

    // New entries are not in the latest checkpoint until one is signed.
    append(&h.log, 5);
    let stale = audit
        .get_checkpoint(pb::GetCheckpointRequest { refresh: false })
        .await;
    let stale = stale.unwrap().into_inner();
    assert_eq!(
        (stale.log_size, open(&h, &stale.checkpoint).checkpoint.size),
        (42, 37)
    );
    let fresh = audit
        .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
        .await;
    assert_eq!(
        open(&h, &fresh.unwrap().into_inner().checkpoint)
            .checkpoint
            .size,
        42
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inclusion_proofs_verify_against_their_checkpoint() {
    let h = Harness::start(37).await;
    let mut audit = h.auditor().await;
    for index in 0..37 {
        let proof = audit
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                index,
                tree_size: None,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let signed = open(&h, &proof.checkpoint);
        assert_eq!((proof.tree_size, signed.checkpoint.size), (37, 37));
        assert_eq!(proof.root_hash, signed.checkpoint.root.to_vec());
        let entry = proof.entry.unwrap();
        assert_eq!(entry.index, index);
        let path: Vec<Hash> = proof.path.iter().map(|h| hash(h)).collect();
        verify_inclusion(
            &merkle::leaf_hash(&entry.data),
            index,
            37,
            &path,
            &signed.checkpoint.root,
        )
        .unwrap();
        // The proof does not verify for another entry's bytes.
        let other = h.log.read((index + 1) % 37).unwrap().bytes;
        assert!(
            verify_inclusion(
                &merkle::leaf_hash(&other),
                index,
                37,
                &path,
                &signed.checkpoint.root
            )
            .is_err()
        );
    }

    // An entry past the latest checkpoint: the server signs a new one that covers it.
    append(&h.log, 20);
    let proof = audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            index: 50,
            tree_size: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let signed = open(&h, &proof.checkpoint);
    assert_eq!(signed.checkpoint.size, 57);
    let path: Vec<Hash> = proof.path.iter().map(|h| hash(h)).collect();
    let leaf = merkle::leaf_hash(&proof.entry.unwrap().data);
    verify_inclusion(&leaf, 50, 57, &path, &signed.checkpoint.root).unwrap();

    // An older signed size the server holds.
    let proof = audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            index: 5,
            tree_size: Some(37),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let signed = open(&h, &proof.checkpoint);
    assert_eq!(signed.checkpoint.size, 37);
    let path: Vec<Hash> = proof.path.iter().map(|h| hash(h)).collect();
    let leaf = merkle::leaf_hash(&proof.entry.unwrap().data);
    verify_inclusion(&leaf, 5, 37, &path, &signed.checkpoint.root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_proofs_verify_between_checkpoints() {
    let h = Harness::start(37).await;
    let mut audit = h.auditor().await;
    let first = audit
        .get_checkpoint(pb::GetCheckpointRequest { refresh: false })
        .await;
    let first = open(&h, &first.unwrap().into_inner().checkpoint);
    append(&h.log, 26);
    let second = audit
        .get_checkpoint(pb::GetCheckpointRequest { refresh: true })
        .await;
    let second = open(&h, &second.unwrap().into_inner().checkpoint);
    assert_eq!(second.checkpoint.size, 63);

    let proof = audit
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: 37,
            new_size: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((proof.old_size, proof.new_size), (37, 63));
    let new = open(&h, &proof.checkpoint);
    let old = open(&h, &proof.old_checkpoint);
    assert_eq!(
        (old.checkpoint.root, new.checkpoint.root),
        (first.checkpoint.root, second.checkpoint.root)
    );
    let path: Vec<Hash> = proof.path.iter().map(|h| hash(h)).collect();
    verify_consistency(
        37,
        63,
        &first.checkpoint.root,
        &second.checkpoint.root,
        &path,
    )
    .unwrap();

    // From every old size to the latest (old roots checked against the entries themselves).
    let leaves: Vec<Vec<u8>> = all_entries(&h, pb::StreamEntriesRequest::default())
        .await
        .into_iter()
        .map(|e| e.data)
        .collect();
    for old_size in 1..=63 {
        let proof = audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size,
                new_size: Some(63),
            })
            .await
            .unwrap()
            .into_inner();
        let old_root = hash(&proof.old_root_hash);
        assert_eq!(
            old_root,
            mth(&leaves[..old_size as usize]),
            "old size {old_size}"
        );
        let path: Vec<Hash> = proof.path.iter().map(|h| hash(h)).collect();
        verify_consistency(old_size, 63, &old_root, &second.checkpoint.root, &path).unwrap();
        assert_eq!(
            proof.old_checkpoint.is_some(),
            old_size == 37 || old_size == 63
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_send_ranges_raw_or_decoded_and_follow_new_entries() {
    let h = Harness::start(3000).await;
    let entries = all_entries(&h, pb::StreamEntriesRequest::default()).await;
    assert_eq!(entries.len(), 3000);
    assert!(entries.iter().enumerate().all(|(i, e)| e.index == i as u64));
    assert!(
        entries
            .iter()
            .all(|e| e.decoded.is_some() && e.leaf_hash.len() == 32)
    );

    let raw = all_entries(
        &h,
        pb::StreamEntriesRequest {
            start: 2990,
            end: Some(2995),
            follow: false,
            raw: true,
        },
    )
    .await;
    assert_eq!(
        raw.iter().map(|e| e.index).collect::<Vec<_>>(),
        [2990, 2991, 2992, 2993, 2994]
    );
    assert!(
        raw.iter()
            .all(|e| e.decoded.is_none() && e.leaf_hash.is_empty())
    );
    assert_eq!(raw[0].data, entries[2990].data);
    assert_eq!(raw[0].chain_hash, entries[2990].chain_hash);

    let past = all_entries(
        &h,
        pb::StreamEntriesRequest {
            start: 5000,
            ..Default::default()
        },
    )
    .await;
    assert!(past.is_empty());

    // Following: entries appended while the stream is open arrive, up to `end`.
    let mut stream = h
        .auditor()
        .await
        .stream_entries(pb::StreamEntriesRequest {
            start: 2998,
            end: Some(3010),
            follow: true,
            raw: true,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        first.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        [2998, 2999]
    );
    let log = h.log.clone();
    tokio::task::spawn_blocking(move || append(&log, 20))
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(batch) = stream.next().await {
        rest.extend(batch.unwrap().entries.into_iter().map(|e| e.index));
    }
    assert_eq!(rest, (3000..3010).collect::<Vec<_>>());
}

/// A reader that stops reading mid-export holds nothing the log's writer needs: appends go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_does_not_hold_up_appends() {
    let h = Harness::start(20_000).await;
    let mut export = h
        .auditor()
        .await
        .stream_entries(pb::StreamEntriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    export.message().await.unwrap().unwrap();
    // The export is now blocked on flow control.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let log = h.log.clone();
    let started = std::time::Instant::now();
    let appended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::task::spawn_blocking(move || {
            for _ in 0..50 {
                append(&log, 1);
            }
            log.size()
        }),
    )
    .await
    .expect("appends finish while the export is stalled")
    .unwrap();
    assert_eq!(appended, 20_050);
    eprintln!(
        "50 durable appends during a stalled export: {:?}",
        started.elapsed()
    );
    drop(export);
}
