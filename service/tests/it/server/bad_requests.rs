//! The gRPC bad-input table: every method, sent raw bytes over a real socket — an empty message,
//! a truncated one, one nested 200 levels deep, an oversized one, a 1 MB id — each answered with
//! one status of the right code whose message starts with the field path, and nothing written
//! (the log keeps its size, the data folder is byte-identical).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut};
use sha2::{Digest as _, Sha256};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};

use super::Harness;

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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Unary,
    Upload,
    ServerStream,
}

/// Sends `message` to `method` as the caller with every role; a stream's first message or
/// status is its answer.
async fn call(
    h: &Harness,
    method: &'static str,
    kind: Kind,
    message: Vec<u8>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(h.channel().await);
    grpc.ready().await.unwrap();
    let bearer: MetadataValue<_> = format!("Bearer {}", h.all).parse().unwrap();
    let path = PathAndQuery::from_static(method);
    match kind {
        Kind::Unary => {
            let mut request = Request::new(message);
            request.metadata_mut().insert("authorization", bearer);
            grpc.unary(request, path, RawCodec).await.map(|_| ())
        }
        Kind::Upload => {
            let mut request = Request::new(tokio_stream::iter(vec![message]));
            request.metadata_mut().insert("authorization", bearer);
            grpc.client_streaming(request, path, RawCodec)
                .await
                .map(|_| ())
        }
        Kind::ServerStream => {
            let mut request = Request::new(message);
            request.metadata_mut().insert("authorization", bearer);
            let mut stream = grpc
                .server_streaming(request, path, RawCodec)
                .await?
                .into_inner();
            stream.message().await.map(|_| ())
        }
    }
}

/// Every file under `dir`: its length and SHA-256.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, [u8; 32])> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(
                    path.strip_prefix(dir).unwrap().to_owned(),
                    (bytes.len() as u64, Sha256::digest(&bytes).into()),
                );
            }
        }
    }
    out
}

/// A string field as protobuf bytes: tag (field, wire type 2), length, bytes.
fn string_field(field: u32, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(field, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(text.len() as u64, &mut out);
    out.extend_from_slice(text);
    out
}

/// Puts a string into one of a request's id fields.
type IdField = fn(&[u8]) -> Vec<u8>;

fn f1(t: &[u8]) -> Vec<u8> {
    string_field(1, t)
}

fn f2(t: &[u8]) -> Vec<u8> {
    string_field(2, t)
}

/// `patient.id` (field 1 of the message in field 1).
fn patient_id(t: &[u8]) -> Vec<u8> {
    string_field(1, &string_field(1, t))
}

/// Every method: its kind, what an empty request gets (code and field path; OK: it is a valid
/// request), and how to put a string into one of its id fields, with that field's path.
type Row = (
    &'static str,
    Kind,
    Code,
    &'static str,
    Option<IdField>,
    &'static str,
);

#[rustfmt::skip]
const METHODS: &[Row] = &[
    ("/allot.v1.Appointments/FindSlots", Kind::Unary, Code::InvalidArgument, "request.patient", Some(patient_id), "request.patient.id"),
    ("/allot.v1.Appointments/HoldSlot", Kind::Unary, Code::InvalidArgument, "request.slot_id", Some(f1), "request.slot_id"),
    ("/allot.v1.Appointments/Book", Kind::Unary, Code::InvalidArgument, "request.target", Some(f2), "request.slot_id"),
    ("/allot.v1.Appointments/ReleaseHold", Kind::Unary, Code::InvalidArgument, "request.hold_id", Some(f1), "request.hold_id"),
    ("/allot.v1.Appointments/Cancel", Kind::Unary, Code::InvalidArgument, "request.appointment_id", Some(f1), "request.appointment_id"),
    ("/allot.v1.Appointments/AcceptOffer", Kind::Unary, Code::InvalidArgument, "request.appointment_id", Some(f1), "request.appointment_id"),
    ("/allot.v1.Appointments/RecordAttendance", Kind::Unary, Code::InvalidArgument, "request.appointment_id", Some(f1), "request.appointment_id"),
    ("/allot.v1.Appointments/Reschedule", Kind::Unary, Code::InvalidArgument, "request.appointment_id", Some(f1), "request.appointment_id"),
    ("/allot.v1.Appointments/GetAppointment", Kind::Unary, Code::InvalidArgument, "request.appointment_id", Some(f1), "request.appointment_id"),
    ("/allot.v1.Appointments/GetHold", Kind::Unary, Code::InvalidArgument, "request.hold_id", Some(f1), "request.hold_id"),
    ("/allot.v1.Appointments/GetInventory", Kind::Unary, Code::Ok, "", None, ""),
    ("/allot.v1.Appointments/MarkAbsence", Kind::Unary, Code::InvalidArgument, "request.doctor_id", Some(f1), "request.doctor_id"),
    ("/allot.v1.Appointments/Rebalance", Kind::Unary, Code::InvalidArgument, "request.requests", None, ""),
    ("/allot.v1.Fairs/SubmitApplications", Kind::Upload, Code::InvalidArgument, "request[0].window", Some(f1), "request[0].window"),
    ("/allot.v1.Fairs/CloseApplications", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Fairs/WithdrawApplications", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Fairs/GetApplicationStatus", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Fairs/AcceptPlace", Kind::Unary, Code::InvalidArgument, "request.id", Some(f2), "request.id"),
    ("/allot.v1.Fairs/RunAllocation", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Fairs/GetOutcome", Kind::Unary, Code::InvalidArgument, "request.applicant", Some(f2), "request.applicant"),
    ("/allot.v1.Fairs/Explain", Kind::Unary, Code::InvalidArgument, "request.applicant", Some(f2), "request.applicant"),
    ("/allot.v1.Fairs/Withdraw", Kind::Unary, Code::InvalidArgument, "request.applicant", Some(f2), "request.applicant"),
    ("/allot.v1.Fairs/Verify", Kind::Unary, Code::InvalidArgument, "request.run_id", None, ""),
    ("/allot.v1.Fairs/GetRun", Kind::Unary, Code::NotFound, "request.run", Some(f1), "request.run"),
    ("/allot.v1.Fairs/GetResults", Kind::ServerStream, Code::InvalidArgument, "request.run_id", None, ""),
    ("/allot.v1.Schools/SubmitApplications", Kind::Upload, Code::InvalidArgument, "request[0].window", Some(f1), "request[0].window"),
    ("/allot.v1.Schools/CloseApplications", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Schools/WithdrawApplications", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Schools/GetApplicationStatus", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Schools/AcceptPlace", Kind::Unary, Code::InvalidArgument, "request.id", Some(f2), "request.id"),
    ("/allot.v1.Schools/RunAllocation", Kind::Unary, Code::InvalidArgument, "request.window", Some(f1), "request.window"),
    ("/allot.v1.Schools/GetOutcome", Kind::Unary, Code::InvalidArgument, "request.student", Some(f2), "request.student"),
    ("/allot.v1.Schools/Explain", Kind::Unary, Code::InvalidArgument, "request.student", Some(f2), "request.student"),
    ("/allot.v1.Schools/Withdraw", Kind::Unary, Code::InvalidArgument, "request.student", Some(f2), "request.student"),
    ("/allot.v1.Schools/Verify", Kind::Unary, Code::InvalidArgument, "request.run_id", None, ""),
    ("/allot.v1.Schools/GetRun", Kind::Unary, Code::NotFound, "request.run", Some(f1), "request.run"),
    ("/allot.v1.Schools/GetResults", Kind::ServerStream, Code::InvalidArgument, "request.run_id", None, ""),
    ("/allot.v1.Audit/GetEntry", Kind::Unary, Code::Ok, "", None, ""),
    ("/allot.v1.Audit/GetInclusionProof", Kind::Unary, Code::Ok, "", None, ""),
    ("/allot.v1.Audit/GetConsistencyProof", Kind::Unary, Code::InvalidArgument, "request.old_size", None, ""),
    ("/allot.v1.Audit/StreamEntries", Kind::ServerStream, Code::Ok, "", None, ""),
    ("/allot.v1.Scenarios/Simulate", Kind::ServerStream, Code::InvalidArgument, "request.scenario_toml", Some(f1), "request.scenario_toml"),
    ("/allot.v1.Metrics/GetMetrics", Kind::Unary, Code::Ok, "", None, ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_refuses_malformed_requests_naming_the_field_and_writes_nothing() {
    let h = Harness::city_with(0.01, |c| c.limits.max_request_bytes = 2 << 20).await;
    let data = h.dir.path().to_owned();
    let size = h.log.size();
    let before = snapshot(&data);
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut expect = |method: &str, what: &str, got: Result<(), Status>, code: Code, path: &str| {
        cases += 1;
        match got {
            Ok(()) if code == Code::Ok => {}
            Ok(()) => failures.push(format!("{method} {what}: accepted")),
            Err(s) if s.code() != code || !s.message().starts_with(path) => failures.push(format!(
                "{method} {what}: {:?} {:?}, expected {code:?} starting with {path:?}",
                s.code(),
                allot_engine::input::clip_to(s.message(), 200)
            )),
            Err(s) if s.message().len() > 1000 || s.message().contains('\n') => {
                failures.push(format!("{method} {what}: a long or multi-line message"))
            }
            Err(_) => {}
        }
    };
    // Deep nesting: 200 groups of an unknown field inside one another.
    let deep = [vec![0x7b; 200], vec![0x7c; 200]].concat();
    let huge_id = vec![b'x'; 1 << 20];
    for &(method, kind, code, path, id_field, id_path) in METHODS {
        let got = call(&h, method, kind, Vec::new()).await;
        expect(method, "empty", got, code, path);
        // A field tag with no value.
        // Decoding comes before the handler, which alone knows a stream message's index.
        let decode_path = "request";
        let got = call(&h, method, kind, vec![0x0a]).await;
        expect(method, "truncated", got, Code::InvalidArgument, decode_path);
        let got = call(&h, method, kind, deep.clone()).await;
        expect(
            method,
            "nested 200 deep",
            got,
            Code::InvalidArgument,
            decode_path,
        );
        let got = call(&h, method, kind, vec![0x0a; 3 << 20]).await;
        expect(method, "3 MB", got, Code::ResourceExhausted, "");
        if let Some(id) = id_field {
            let got = call(&h, method, kind, id(&huge_id)).await;
            expect(method, "a 1 MB id", got, Code::InvalidArgument, id_path);
            let got = call(&h, method, kind, id(b"a\nb")).await;
            expect(
                method,
                "a control character",
                got,
                Code::InvalidArgument,
                id_path,
            );
            let got = call(&h, method, kind, id(b"\xff\xfe")).await;
            expect(method, "not UTF-8", got, Code::InvalidArgument, decode_path);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(h.log.size(), size, "a refused request logged something");
    assert_eq!(
        snapshot(&data),
        before,
        "a refused request changed the data folder"
    );
    eprintln!(
        "gRPC bad-request table: {cases} cases over {} methods, all green",
        METHODS.len()
    );
}
