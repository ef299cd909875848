//! Bad requests (INVALID_ARGUMENT and friends naming the field path), message sizes, deadlines and
//! load shedding, over a real socket.

use std::time::{Duration, Instant};

use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::access::Role;
use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use super::Harness;

/// Checks a status: its code, and that its message starts with the field path, which the
/// BadRequest detail names too.
fn check(result: Result<impl std::fmt::Debug, Status>, code: Code, path: &str) {
    let status = result.expect_err("an error");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(
        status.message().starts_with(&format!("{path}: ")),
        "{:?} does not start with {path}",
        status.message()
    );
    let details = status.get_error_details();
    let violation = &details
        .bad_request()
        .expect("a BadRequest detail")
        .field_violations[0];
    assert_eq!(violation.field, path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let h = Harness::start(10).await;
    let mut a = h.auditor().await;
    check(
        a.get_entry(pb::GetEntryRequest { index: 10 }).await,
        Code::OutOfRange,
        "request.index",
    );
    let inclusion = |index, tree_size| pb::GetInclusionProofRequest {
        index,
        tree_size,
        ..Default::default()
    };
    check(
        a.get_inclusion_proof(inclusion(10, None)).await,
        Code::OutOfRange,
        "request.index",
    );
    // A size no checkpoint was signed at gets a proof all the same, without a checkpoint (its
    // reader checks the root against one they hold); a size beyond the log is refused.
    let unsigned = a.get_inclusion_proof(inclusion(3, Some(7))).await.unwrap();
    assert!(unsigned.get_ref().checkpoint.is_none());
    check(
        a.get_inclusion_proof(inclusion(3, Some(11))).await,
        Code::OutOfRange,
        "request.tree_size",
    );
    check(
        a.get_inclusion_proof(inclusion(10, Some(10))).await,
        Code::InvalidArgument,
        "request.index",
    );
    let consistency = |old_size, new_size| pb::GetConsistencyProofRequest { old_size, new_size };
    check(
        a.get_consistency_proof(consistency(0, None)).await,
        Code::InvalidArgument,
        "request.old_size",
    );
    check(
        a.get_consistency_proof(consistency(11, None)).await,
        Code::InvalidArgument,
        "request.old_size",
    );
    check(
        a.get_consistency_proof(consistency(1, Some(9))).await,
        Code::FailedPrecondition,
        "request.new_size",
    );
    let stream = |start, end, follow| pb::StreamEntriesRequest {
        start,
        end,
        follow,
        raw: false,
    };
    check(
        a.stream_entries(stream(5, Some(2), false)).await,
        Code::InvalidArgument,
        "request.end",
    );
    check(
        a.stream_entries(stream(0, Some(11), false)).await,
        Code::OutOfRange,
        "request.end",
    );
    check(
        a.stream_entries(stream(5, Some(2), true)).await,
        Code::InvalidArgument,
        "request.end",
    );
}

/// Sends and receives raw bytes as messages.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

async fn raw_call(h: &Harness, path: &'static str, message: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(h.channel().await);
    grpc.ready().await.unwrap();
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {}", h.token(Role::Auditor))
        .parse()
        .unwrap();
    request.metadata_mut().insert("authorization", value);
    grpc.unary(request, PathAndQuery::from_static(path), RawCodec)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages() {
    let h = Harness::with(10, |c| c.limits.max_request_bytes = 1024).await;
    let entry = "/allot.v1.Audit/GetEntry";
    // A field tag with no value.
    let status = raw_call(&h, entry, vec![0x08]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("request: not a valid GetEntryRequest message: "),
        "{}",
        status.message()
    );
    // Unknown fields are skipped as protobuf says: index 3 with an unknown field 9.
    let ok = raw_call(&h, entry, vec![0x08, 3, 0x48, 1]).await.unwrap();
    assert!(!ok.is_empty());
    // Above max_request_bytes, refused before it is read.
    let big = [vec![0x08, 3, 0x52, 0x80, 0x10], vec![0; 2048]].concat();
    let status = raw_call(&h, entry, big).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("the limit is: 1024 bytes"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_at_its_deadline() {
    let h = Harness::start(5).await;
    let mut request = Request::new(pb::StreamEntriesRequest {
        start: 0,
        end: None,
        follow: true,
        raw: true,
    });
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let mut stream = h
        .auditor()
        .await
        .stream_entries(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().entries.len(), 5);
    let status = stream.message().await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{}",
        status.message()
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrency_limit_are_shed() {
    let h = Harness::with(5, |c| c.limits.max_concurrent_calls = 1).await;
    // A following stream holds the only slot.
    let mut stream = h
        .auditor()
        .await
        .stream_entries(pb::StreamEntriesRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    let mut audit = h.auditor().await;
    let started = Instant::now();
    let status = audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shedding is immediate"
    );
    // The slot comes back when the stream ends.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match audit
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
        {
            Ok(_) => break,
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let mut metrics = client::metrics(h.channel().await, Bearer::new(Some(&h.all)).unwrap());
    let m = metrics
        .get_metrics(pb::GetMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(m.shed >= 1);
    assert_eq!(m.max_in_flight, 1);
    let checkpoint = m
        .methods
        .iter()
        .find(|m| m.method == "/allot.v1.Audit/GetCheckpoint")
        .unwrap();
    assert!(checkpoint.calls["RESOURCE_EXHAUSTED"] >= 1);
    assert!(checkpoint.calls["OK"] >= 1);
    let streams = m
        .methods
        .iter()
        .find(|m| m.method == "/allot.v1.Audit/StreamEntries")
        .unwrap();
    assert_eq!(streams.count, 1);
    assert!(m.prometheus.contains("allot_shed_calls_total"));
}
