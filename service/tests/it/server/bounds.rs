//! Resource bounds over a real socket: connections beyond the limit are closed, silent ones
//! time out, an upload beyond its cap is refused with nothing stored, and the server keeps
//! serving after each.

use std::time::{Duration, Instant};

use allot_service::proto::v1 as pb;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::Code;

use super::Harness;

/// Waits until the server closes `s` (EOF or reset), at most `within`; returns how long it took.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(within.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            // The server's HTTP/2 settings: keep reading until it closes.
            Ok(Ok(_)) => {}
        }
    }
}

async fn still_serves(h: &Harness) {
    let mut a = h.auditor().await;
    a.get_checkpoint(pb::GetCheckpointRequest { refresh: false })
        .await
        .expect("the server still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_and_silent_ones_time_out() {
    let h = Harness::with(3, |c| {
        c.limits.max_connections = 3;
        c.limits.handshake_timeout = Duration::from_millis(400);
    })
    .await;
    let addr = h.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push((TcpStream::connect(&addr).await.unwrap(), Instant::now()));
    }
    // Silent, but within the handshake timeout: still open.
    assert!(
        closed_within(&mut held[0].0, Duration::from_millis(150))
            .await
            .is_none(),
        "closed before the handshake timeout"
    );
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let refused = closed_within(&mut extra, Duration::from_millis(300)).await;
    assert!(refused.is_some(), "a 4th connection was kept open");
    // The silent three are closed after the handshake timeout, not before.
    for (s, connected) in &mut held {
        closed_within(s, Duration::from_secs(3))
            .await
            .expect("a silent connection is closed");
        let t = connected.elapsed();
        assert!(
            t >= Duration::from_millis(350),
            "closed {t:?} after connecting"
        );
    }
    // Their slots are free again.
    still_serves(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_beyond_its_cap_is_refused_and_nothing_is_stored() {
    let h = Harness::with(0, |c| c.limits.max_upload_bytes = 64 << 10).await;
    let size = h.log.size();
    let applicants = |k: usize| pb::SubmitFairApplicationsRequest {
        amend: false,
        window: "big".into(),
        pools: Vec::new(),
        applicants: (0..100)
            .map(|i| pb::FairApplicant {
                second_factor: String::new(),
                id: format!("A{k:03}{i:03}-{}", "x".repeat(60)),
                category: "food".into(),
                tier: Some(1),
                lottery: None,
                choices: vec!["F1".into()],
            })
            .collect(),
    };
    let mut first = applicants(0);
    first.pools.push(pb::StallPool {
        fair: "F1".into(),
        district: "D1".into(),
        category: "food".into(),
        stalls: 3,
    });
    // About 9 KB a message, an endless stream: the server must stop it at 64 KiB.
    let messages = std::iter::once(first).chain((1..).map(applicants));
    let mut f = h.fairs().await;
    let err = f
        .submit_applications(tokio_stream::iter(messages))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(
        err.message()
            .starts_with("request[7]: the upload exceeds 65536 bytes"),
        "{}",
        err.message()
    );
    // Nothing stored: the window does not exist, nothing was logged.
    let close = f
        .close_applications(pb::CloseFairApplicationsRequest {
            window: "big".into(),
        })
        .await
        .expect_err("no such window");
    assert_eq!(close.code(), Code::NotFound, "{}", close.message());
    assert_eq!(h.log.size(), size);
    // Under the cap, the same upload goes through.
    let small = std::iter::once(applicants(0)).map(|mut m| {
        m.pools.push(pb::StallPool {
            fair: "F1".into(),
            district: "D1".into(),
            category: "food".into(),
            stalls: 3,
        });
        m
    });
    f.submit_applications(tokio_stream::iter(small))
        .await
        .expect("a small upload is accepted");
    still_serves(&h).await;
}
