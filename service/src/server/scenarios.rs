//! The `Scenarios` service: `Simulate` runs a planner scenario with the scenarios crate
//! (`allot_scenarios::run_cancellable`) on the blocking pool and streams its progress, then the
//! report. When the caller goes away (cancel, deadline), the runs stop at the next run (or
//! simulated day) after the next progress report.
//!
//! The runs read nothing of the server's state and write nothing to the decision log. CSV folders
//! a scenario names are read relative to the server's data folder.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allot_scenarios::{Progress, Report, Scenario};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::state::AppState;
use super::validate::{FieldError, FieldPath, check_range};
use crate::proto::v1 as pb;
use crate::proto::v1::scenarios_server::Scenarios;

/// The largest scenario file accepted.
pub const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// Progress messages are sent about this often (and when the runs are done).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The Scenarios service.
#[derive(Debug, Clone)]
pub struct ScenariosService {
    state: Arc<AppState>,
}

impl ScenariosService {
    pub fn new(state: Arc<AppState>) -> Self {
        ScenariosService { state }
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn result(report: &Report, include_html: bool, elapsed: Duration) -> pb::SimulationResult {
    pb::SimulationResult {
        variants: report
            .variants
            .iter()
            .map(|v| pb::VariantReport {
                name: v.name.clone(),
                baseline: v.baseline,
                runs: v.runs,
                metrics: v
                    .metrics
                    .iter()
                    .map(|m| pb::SimulationMetric {
                        name: m.name.clone(),
                        unit: m.unit.clone(),
                        mean: m.mean,
                        ci95_low: m.ci95_low,
                        ci95_high: m.ci95_high,
                    })
                    .collect(),
            })
            .collect(),
        report_json: report.to_json(),
        report_html: if include_html {
            allot_scenarios::html::render(report).into_bytes()
        } else {
            Vec::new()
        },
        elapsed: Some(duration(elapsed)),
    }
}

type SimulationStream = Pin<Box<dyn Stream<Item = Result<pb::SimulateResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Scenarios for ScenariosService {
    type SimulateStream = SimulationStream;

    async fn simulate(
        &self,
        request: Request<pb::SimulateRequest>,
    ) -> Result<Response<SimulationStream>, Status> {
        let r = request.into_inner();
        let at = FieldPath::request();
        let text_path = at.field("scenario_toml");
        if r.scenario_toml.trim().is_empty() {
            return Err(FieldError::invalid(&text_path, "is required").into());
        }
        if r.scenario_toml.len() > MAX_SCENARIO_BYTES {
            return Err(FieldError::invalid(
                &text_path,
                format!(
                    "is {} bytes; a scenario has at most {MAX_SCENARIO_BYTES}",
                    r.scenario_toml.len()
                ),
            )
            .into());
        }
        check_range(r.runs, 0, allot_scenarios::MAX_RUNS, &at.field("runs"))?;
        let base = self.state.data_dir.clone();
        let text = r.scenario_toml;
        let mut scenario = tokio::task::spawn_blocking(move || {
            Scenario::parse(&text, "request.scenario_toml", &base).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| Status::internal(format!("the server failed: {e}")))?
        .map_err(|problem| FieldError::invalid(&text_path, problem))?;
        if let Some(seed) = r.seed {
            scenario.seed = seed;
        }
        let (tx, rx) = mpsc::channel(16);
        let (runs, include_html) = (r.runs, r.include_html);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let last = Mutex::new(None::<Instant>);
            let cancel = AtomicBool::new(false);
            let progress = |p: Progress| {
                if tx.is_closed() {
                    // Nobody reads the stream any more: stop the remaining runs.
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
                if !due && p.done < p.total {
                    return;
                }
                *last = Some(Instant::now());
                // A client that reads slowly misses progress messages, never the result.
                let _ = tx.try_send(Ok(pb::SimulateResponse {
                    event: Some(pb::simulate_response::Event::Progress(
                        pb::SimulationProgress {
                            phase: p.phase,
                            done: p.done,
                            total: p.total,
                            elapsed: Some(duration(started.elapsed())),
                        },
                    )),
                }));
            };
            let answer =
                match allot_scenarios::run_cancellable(&scenario, runs, None, &progress, &cancel) {
                    Ok(report) => Ok(pb::SimulateResponse {
                        event: Some(pb::simulate_response::Event::Result(result(
                            &report,
                            include_html,
                            started.elapsed(),
                        ))),
                    }),
                    Err(allot_scenarios::Error::Request(m)) => Err(Status::invalid_argument(m)),
                    Err(e @ allot_scenarios::Error::Input(_)) => {
                        Err(Status::invalid_argument(e.to_string()))
                    }
                    Err(allot_scenarios::Error::Cancelled) => Err(Status::cancelled(
                        "the caller went away; the remaining runs were not started",
                    )),
                    Err(e) => Err(Status::failed_precondition(e.to_string())),
                };
            let _ = tx.blocking_send(answer);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
