//! `Scenarios.Simulate` over a real socket: progress, then exactly one result, then the end of
//! the stream; a bad scenario names the request field and the line in the text.

use allot_service::proto::v1 as pb;
use allot_service::rpc::client::Bearer;
use allot_service::server::access::Role;
use tonic::Code;

use super::Harness;

const SCENARIO: &str = r#"
name = "tiny city"
seed = 5
runs = 3

[city]
generate = { seed = 3, scale = 0.01 }

[period]
days = 2

[appointments]
requests_per_day = 2000

[[variant]]
name = "demand +20%"
demand_factor = 1.2
"#;

async fn planner(
    h: &Harness,
) -> pb::scenarios_client::ScenariosClient<allot_service::rpc::client::Authorized> {
    pb::scenarios_client::ScenariosClient::with_interceptor(
        h.channel().await,
        Bearer::new(Some(h.token(Role::Planner))).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_streams_progress_then_one_result() {
    let h = Harness::start(0).await;
    let mut c = planner(&h).await;
    let mut stream = c
        .simulate(pb::SimulateRequest {
            scenario_toml: SCENARIO.into(),
            runs: 2,
            seed: Some(9),
            include_html: true,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        events.push(message.event.unwrap());
    }
    let (last, before) = events.split_last().unwrap();
    assert!(!before.is_empty(), "at least one progress message");
    let mut done = 0;
    for e in before {
        match e {
            pb::simulate_response::Event::Progress(p) => {
                assert!(p.done >= done && p.done <= p.total, "{p:?}");
                done = p.done;
            }
            pb::simulate_response::Event::Result(_) => panic!("a result before the end"),
        }
    }
    let pb::simulate_response::Event::Result(result) = last else {
        panic!("the last message is not the result")
    };
    let names: Vec<&str> = result.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["baseline", "demand +20%"]);
    assert!(result.variants[0].baseline);
    for v in &result.variants {
        assert_eq!(v.runs, 2);
        assert!(!v.metrics.is_empty());
        for m in &v.metrics {
            assert!(m.ci95_low <= m.mean && m.mean <= m.ci95_high, "{m:?}");
        }
    }
    let report: serde_json::Value = serde_json::from_str(&result.report_json).unwrap();
    assert_eq!(report["seed"], 9);
    assert!(
        String::from_utf8(result.report_html.clone())
            .unwrap()
            .contains("<svg")
    );
    assert_eq!(h.log.size(), 0, "simulations log nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_scenario_is_invalid_argument() {
    let h = Harness::start(0).await;
    let mut c = planner(&h).await;
    let status = c
        .simulate(pb::SimulateRequest {
            scenario_toml: "name = \"x\"\nseed = \"not a number\"\n".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("request.scenario_toml: "),
        "{}",
        status.message()
    );
    let status = c
        .simulate(pb::SimulateRequest {
            scenario_toml: SCENARIO.into(),
            runs: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("request.runs: "),
        "{}",
        status.message()
    );
}
