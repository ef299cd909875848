//! Latency percentiles from an HDR histogram (`hdrhistogram`): constant memory whatever the
//! number of samples, three significant digits, merged across threads and tasks.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Recorded latencies, in nanoseconds (1 ns to an hour).
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
        )
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.0.saturating_record(nanos.max(1));
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The latency at quantile `q` (0 to 1; 1 is the largest).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.0.value_at_quantile(q))
    }

    /// [`Latencies::quantile`] in seconds.
    pub fn seconds(&self, q: f64) -> f64 {
        self.quantile(q).as_secs_f64()
    }
}
