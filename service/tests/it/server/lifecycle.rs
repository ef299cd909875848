//! Health, reflection, TLS, and graceful shutdown with calls in flight (in-process and the
//! binary under SIGTERM).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use allot_engine::log::{Log, LogOptions};
use allot_service::proto::v1 as pb;
use allot_service::rpc::client::{self, Bearer};
use allot_service::server::config::TlsIdentity;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use super::{Harness, append, trusted_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serves_then_turns_not_serving_on_shutdown() {
    let mut h = Harness::start(1).await;
    let mut health = HealthClient::new(h.channel().await);
    let status = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    for service in [
        "",
        "allot.v1.Appointments",
        "allot.v1.Fairs",
        "allot.v1.Schools",
        "allot.v1.Scenarios",
        "allot.v1.Audit",
        "allot.v1.Metrics",
    ] {
        let answer = health.check(status(service)).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    // Not a service of this server: unknown to health.
    let unknown = health.check(status("allot.v1.Nothing")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut watch = health.watch(status("")).await.unwrap().into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    h.shutdown();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap();
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    drop(watch);
    let stopped = h.stop().await;
    assert!(!stopped.cut_off);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_describes_them() {
    let h = Harness::start(1).await;
    let mut reflection = ServerReflectionClient::new(h.channel().await);
    let ask = |request: MessageRequest| {
        tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        }])
    };
    let mut answers = reflection
        .server_reflection_info(ask(MessageRequest::ListServices(String::new())))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list")
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    let expect: BTreeSet<String> = [
        "allot.v1.Appointments",
        "allot.v1.Audit",
        "allot.v1.Fairs",
        "allot.v1.Metrics",
        "allot.v1.Scenarios",
        "allot.v1.Schools",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, expect);

    let mut answers = reflection
        .server_reflection_info(ask(MessageRequest::FileContainingSymbol(
            "allot.v1.Audit".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no descriptors")
    };
    use prost::Message as _;
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|f| {
            prost_types::FileDescriptorProto::decode(&f[..])
                .unwrap()
                .name()
                .to_owned()
        })
        .collect();
    assert!(
        names.contains(&"allot/v1/audit.proto".to_owned()),
        "{names:?}"
    );

    // Older tools (grpcurl before 1.9) ask v1alpha.
    use tonic_reflection::pb::v1alpha as alpha;
    let mut old = alpha::server_reflection_client::ServerReflectionClient::new(h.channel().await);
    let request = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = old
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a service list")
    };
    assert_eq!(list.service.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let identity = TlsIdentity {
        cert_pem: cert_pem.clone().into_bytes(),
        key_pem: cert.signing_key.serialize_pem().into_bytes(),
    };
    let h = Harness::with(4, |c| c.tls = Some(identity)).await;
    assert!(h.url.starts_with("https://127.0.0.1:"));
    let url = h.url.replace("127.0.0.1", "localhost");
    let channel = client::connect(&url, Some(cert_pem.as_bytes()))
        .await
        .unwrap();
    let mut audit = client::audit(
        channel,
        Bearer::new(Some(h.token(allot_service::server::access::Role::Auditor))).unwrap(),
    );
    let answer = audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.log_size, 4);
    // Plain HTTP/2 to a TLS port fails; so does TLS to a server whose certificate is not trusted.
    let plain = url.replace("https://", "http://");
    let failed = async {
        let channel = client::connect(&plain, None).await.ok()?;
        client::audit(channel, Bearer::default())
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .ok()
    };
    assert!(failed.await.is_none());
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    assert!(
        client::connect(&url, Some(other.cert.pem().as_bytes()))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_calls_in_flight_finish_and_ends_followers() {
    let mut h = Harness::start(20_000).await;
    let mut audit = h.auditor().await;
    // A long export in flight, read slowly.
    let mut export = audit
        .stream_entries(pb::StreamEntriesRequest {
            raw: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut received = export.message().await.unwrap().unwrap().entries.len();
    // A follower.
    let mut follower = h
        .auditor()
        .await
        .stream_entries(pb::StreamEntriesRequest {
            start: 20_000,
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    h.shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(5), follower.message())
        .await
        .unwrap();
    let status = ended.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("resume from entry 20000"),
        "{}",
        status.message()
    );
    // New connections are refused once the server stops accepting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = async {
        let channel = client::connect(&h.url, None).await.ok()?;
        client::audit(channel, Bearer::new(Some(&h.all)).unwrap())
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .ok()
    };
    assert!(
        fresh.await.is_none(),
        "a new call was taken after shutdown began"
    );
    // The export in flight completes.
    while let Some(batch) = export.message().await.unwrap() {
        received += batch.entries.len();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(received, 20_000);
    let stopped = h.stop().await;
    assert!(!stopped.cut_off);
    // Only the test's handles remain: the server let go of the log, which can now be closed.
    assert_eq!(std::sync::Arc::strong_count(&stopped.log), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_never_finishes_is_cut_off_after_the_grace_period() {
    let mut h = Harness::with(20_000, |c| {
        c.limits.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    let mut export = h
        .auditor()
        .await
        .stream_entries(pb::StreamEntriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    export.message().await.unwrap().unwrap();
    // The client stops reading: flow control stalls the stream.
    let started = Instant::now();
    let stopped = h.stop().await;
    assert!(stopped.cut_off);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(export);
}

/// Reads `listening on URL` and the development token from the binary's stdout.
fn read_banner(stdout: impl std::io::Read) -> (String, String) {
    let mut lines = BufReader::new(stdout).lines();
    let url = lines.next().unwrap().unwrap();
    let token = lines.next().unwrap().unwrap();
    (
        url.strip_prefix("listening on ").unwrap().to_owned(),
        token
            .strip_prefix("development token (all roles): ")
            .unwrap()
            .to_owned(),
    )
}

#[test]
fn the_binary_stops_on_sigterm_after_its_calls_finish_and_exits_0() {
    let dir = tempfile::TempDir::new().unwrap();
    {
        let log = Log::open(dir.path(), LogOptions::default()).unwrap();
        append(&log, 20_000);
        log.close().unwrap();
    }
    let mut server = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data",
        ])
        .arg(dir.path())
        .env_remove("ALLOT_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (url, token) = read_banner(server.stdout.take().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let received = runtime.block_on(async {
        let channel = client::connect(&url, None).await.unwrap();
        let mut audit = client::audit(channel, Bearer::new(Some(&token)).unwrap());
        let mut export = audit
            .stream_entries(pb::StreamEntriesRequest {
                raw: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut received = export.message().await.unwrap().unwrap().entries.len();
        let kill = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        while let Some(batch) = export.message().await.unwrap() {
            received += batch.entries.len();
        }
        received
    });
    assert_eq!(received, 20_000);
    let output = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // JSON logs, one object per line.
    for line in stderr.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line}"
        );
    }
    assert!(
        stderr.contains("SIGTERM") && stderr.contains("stopped"),
        "{stderr}"
    );
    // The log was closed (its lock is free) and the last checkpoint covers every entry.
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    let checkpoint = log.checkpoint().unwrap();
    assert_eq!(checkpoint.checkpoint.size, 20_000);
    assert!(
        allot_engine::log::SignedCheckpoint::open(&checkpoint.note, &trusted_key(dir.path()))
            .is_ok()
    );
}

#[test]
fn serve_refuses_to_start_without_tokens() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env_remove("ALLOT_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no tokens are configured"), "{stderr}");
    assert!(!dir.path().join("log").exists(), "nothing was created");
}
