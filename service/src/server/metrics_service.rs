//! `allot.v1.Metrics`: the gate's counters, the concurrency limit and the log's size.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::gate::GateState;
use super::metrics::{Gauges, prometheus};
use super::state::AppState;
use crate::proto::v1 as pb;
use crate::proto::v1::metrics_server::Metrics;

#[derive(Debug, Clone)]
pub struct MetricsService {
    gate: Arc<GateState>,
    state: Arc<AppState>,
}

impl MetricsService {
    pub fn new(gate: Arc<GateState>, state: Arc<AppState>) -> Self {
        MetricsService { gate, state }
    }
}

#[tonic::async_trait]
impl Metrics for MetricsService {
    async fn get_metrics(
        &self,
        _request: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        let methods = self.gate.metrics.snapshot();
        let gauges = Gauges {
            in_flight: self.gate.in_flight() as u64,
            max_in_flight: self.gate.max_in_flight() as u64,
            shed: self.gate.metrics.shed(),
            log_size: self.state.log.size(),
            checkpoint_size: self
                .state
                .checkpoints
                .latest()
                .map_or(0, |c| c.checkpoint.size),
            cosigned_size: (self.state.cosigned.latest()).map_or(0, |c| c.checkpoint.size),
            cosign_failures: self.state.cosigned.failures(),
            uptime: self.gate.metrics.uptime(),
        };
        let text = prometheus(&methods, &gauges);
        Ok(Response::new(pb::GetMetricsResponse {
            uptime: prost_types::Duration::try_from(gauges.uptime).ok(),
            in_flight: gauges.in_flight,
            max_in_flight: gauges.max_in_flight,
            shed: gauges.shed,
            methods,
            log_size: gauges.log_size,
            checkpoint_size: gauges.checkpoint_size,
            prometheus: text,
        }))
    }
}
