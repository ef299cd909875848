//! Call counters and latency histograms per method, lock-free, and their rendering for the
//! `allot.v1.Metrics` service (structured and Prometheus text).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tonic::Code;

use super::access::METHODS;
use crate::proto::v1::MethodMetrics;

/// Histogram bucket upper bounds in microseconds: 1, 1.5, 2, 3, 5 and 7 times each power of ten
/// from 10 µs to 70 s, then 100 s.
pub const BUCKETS_MICROS: [u64; 43] = {
    let steps = [10, 15, 20, 30, 50, 70];
    let mut out = [0u64; 43];
    let mut decade = 1u64;
    let mut i = 0;
    while i < 42 {
        out[i] = steps[i % 6] * decade;
        if i % 6 == 5 {
            decade *= 10;
        }
        i += 1;
    }
    out[42] = 100_000_000;
    out
};

const CODES: usize = 17;

/// Counters of one method.
#[derive(Debug)]
struct MethodCounters {
    by_code: [AtomicU64; CODES],
    /// Non-cumulative: `buckets[i]` counts calls in (bound[i-1], bound[i]]; the last slot counts
    /// calls above every bound.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Default for MethodCounters {
    fn default() -> Self {
        MethodCounters {
            by_code: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The server's counters.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// One per row of [`METHODS`], then one for every unknown path.
    methods: Vec<MethodCounters>,
    shed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            methods: (0..=METHODS.len())
                .map(|_| MethodCounters::default())
                .collect(),
            shed: AtomicU64::new(0),
        }
    }
}

/// The path under which calls to paths outside the method table are counted.
pub const UNKNOWN_METHOD: &str = "(unknown)";

impl Metrics {
    /// Records a finished call of method `index` in [`METHODS`] (`None`: an unknown path).
    pub fn record(&self, index: Option<usize>, code: Code, elapsed: Duration) {
        let m = &self.methods[index.unwrap_or(METHODS.len()).min(METHODS.len())];
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        m.by_code[(code as usize).min(CODES - 1)].fetch_add(1, Relaxed);
        let bucket = BUCKETS_MICROS.partition_point(|&b| b < micros);
        m.buckets[bucket].fetch_add(1, Relaxed);
        m.sum_micros.fetch_add(micros, Relaxed);
    }

    /// Counts a call refused by the concurrency limit.
    pub fn record_shed(&self) {
        self.shed.fetch_add(1, Relaxed);
    }

    pub fn shed(&self) -> u64 {
        self.shed.load(Relaxed)
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Per-method snapshots of the methods that were called.
    pub fn snapshot(&self) -> Vec<MethodMetrics> {
        self.methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let path = METHODS.get(i).map_or(UNKNOWN_METHOD, |m| m.path);
                let counts: Vec<u64> = m.buckets.iter().map(|b| b.load(Relaxed)).collect();
                let count: u64 = counts.iter().sum();
                if count == 0 {
                    return None;
                }
                let calls = m
                    .by_code
                    .iter()
                    .enumerate()
                    .filter_map(|(code, n)| {
                        let n = n.load(Relaxed);
                        (n > 0).then(|| (code_name(Code::from(code as i32)).to_owned(), n))
                    })
                    .collect();
                let mut cumulative = Vec::with_capacity(BUCKETS_MICROS.len());
                let mut total = 0;
                for c in &counts[..BUCKETS_MICROS.len()] {
                    total += c;
                    cumulative.push(total);
                }
                Some(MethodMetrics {
                    method: path.to_owned(),
                    calls,
                    buckets: cumulative,
                    bucket_bounds_micros: BUCKETS_MICROS.to_vec(),
                    count,
                    sum_micros: m.sum_micros.load(Relaxed),
                    p50_micros: quantile(&counts, 0.5),
                    p99_micros: quantile(&counts, 0.99),
                    p999_micros: quantile(&counts, 0.999),
                })
            })
            .collect()
    }
}

/// The `q` quantile of non-cumulative bucket counts (the last one above every bound),
/// interpolating linearly within the bucket; calls above every bound count as the last bound.
pub fn quantile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0 && (below + c) as f64 >= rank {
            let Some(&hi) = BUCKETS_MICROS.get(i) else {
                return BUCKETS_MICROS[BUCKETS_MICROS.len() - 1] as f64;
            };
            let lo = if i == 0 { 0 } else { BUCKETS_MICROS[i - 1] };
            let within = ((rank - below as f64) / c as f64).clamp(0.0, 1.0);
            return lo as f64 + within * (hi - lo) as f64;
        }
        below += c;
    }
    BUCKETS_MICROS[BUCKETS_MICROS.len() - 1] as f64
}

/// The canonical name of a status code, as in the gRPC documentation (`INVALID_ARGUMENT`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Server-wide figures rendered next to the per-method ones.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    pub in_flight: u64,
    pub max_in_flight: u64,
    pub shed: u64,
    pub log_size: u64,
    pub checkpoint_size: u64,
    /// Tree size of the latest checkpoint the witnesses' quorum cosigned (0: none, or no
    /// witnesses).
    pub cosigned_size: u64,
    /// Requests to witnesses that gave no cosignature.
    pub cosign_failures: u64,
    pub uptime: Duration,
}

/// The Prometheus text exposition (format 0.0.4) of the counters.
pub fn prometheus(methods: &[MethodMetrics], g: &Gauges) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        "allot_uptime_seconds",
        "Time since the server started.",
        "gauge",
        format!("{:.3}", g.uptime.as_secs_f64()),
    );
    gauge(
        "allot_in_flight_calls",
        "Calls being served.",
        "gauge",
        g.in_flight.to_string(),
    );
    gauge(
        "allot_max_in_flight_calls",
        "The server-wide concurrency limit.",
        "gauge",
        g.max_in_flight.to_string(),
    );
    gauge(
        "allot_shed_calls_total",
        "Calls refused with RESOURCE_EXHAUSTED at the concurrency limit.",
        "counter",
        g.shed.to_string(),
    );
    gauge(
        "allot_log_entries",
        "Durable entries in the decision log.",
        "gauge",
        g.log_size.to_string(),
    );
    gauge(
        "allot_checkpoint_size",
        "Tree size of the latest signed checkpoint.",
        "gauge",
        g.checkpoint_size.to_string(),
    );
    gauge(
        "allot_cosigned_checkpoint_size",
        "Tree size of the latest checkpoint the witnesses' quorum cosigned (0 without witnesses).",
        "gauge",
        g.cosigned_size.to_string(),
    );
    gauge(
        "allot_cosign_failures_total",
        "Requests to witnesses that gave no cosignature (down, refused, or a bad answer).",
        "counter",
        g.cosign_failures.to_string(),
    );
    let _ = writeln!(
        out,
        "# HELP allot_calls_total Finished calls by method and gRPC status code.\n\
         # TYPE allot_calls_total counter"
    );
    for m in methods {
        let mut codes: Vec<_> = m.calls.iter().collect();
        codes.sort();
        for (code, n) in codes {
            let _ = writeln!(
                out,
                "allot_calls_total{{method=\"{}\",code=\"{code}\"}} {n}",
                m.method
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP allot_call_duration_seconds Call latency, from the request to the end of the response.\n\
         # TYPE allot_call_duration_seconds histogram"
    );
    for m in methods {
        for (bound, count) in m.bucket_bounds_micros.iter().zip(&m.buckets) {
            let _ = writeln!(
                out,
                "allot_call_duration_seconds_bucket{{method=\"{}\",le=\"{}\"}} {count}",
                m.method,
                *bound as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "allot_call_duration_seconds_bucket{{method=\"{0}\",le=\"+Inf\"}} {1}\n\
             allot_call_duration_seconds_sum{{method=\"{0}\"}} {2}\n\
             allot_call_duration_seconds_count{{method=\"{0}\"}} {1}",
            m.method,
            m.count,
            m.sum_micros as f64 / 1e6
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_increase() {
        assert_eq!(&BUCKETS_MICROS[..7], &[10, 15, 20, 30, 50, 70, 100]);
        assert_eq!(BUCKETS_MICROS[41], 70_000_000);
        assert!(BUCKETS_MICROS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn records_land_in_their_bucket_and_quantiles_interpolate() {
        let metrics = Metrics::default();
        let health =
            Some(super::super::access::method_index("/grpc.health.v1.Health/Check").unwrap());
        // 90 calls of 12 µs (bucket (10, 15]) and 10 of 1.2 ms (bucket (1000, 1500]).
        for _ in 0..90 {
            metrics.record(health, Code::Ok, Duration::from_micros(12));
        }
        for _ in 0..10 {
            metrics.record(health, Code::NotFound, Duration::from_micros(1200));
        }
        metrics.record(None, Code::Unimplemented, Duration::from_micros(5));
        let snap = metrics.snapshot();
        assert_eq!(snap.len(), 2);
        let m = &snap[0];
        assert_eq!(m.method, "/grpc.health.v1.Health/Check");
        assert_eq!(m.count, 100);
        assert_eq!(m.calls["OK"], 90);
        assert_eq!(m.calls["NOT_FOUND"], 10);
        assert_eq!(m.sum_micros, 90 * 12 + 10 * 1200);
        assert_eq!(m.buckets[0], 0);
        assert_eq!(m.buckets[1], 90);
        assert_eq!(*m.buckets.last().unwrap(), 100);
        // p50: rank 50 of the 90 in (10, 15] -> 10 + 50/90 * 5.
        assert!((m.p50_micros - (10.0 + 50.0 / 90.0 * 5.0)).abs() < 1e-9);
        // p99: rank 99, 9 into the 10 in (1000, 1500].
        assert!((m.p99_micros - 1450.0).abs() < 1e-9, "{}", m.p99_micros);
        assert_eq!(snap[1].method, UNKNOWN_METHOD);
        let text = prometheus(
            &snap,
            &Gauges {
                in_flight: 1,
                max_in_flight: 8,
                shed: 2,
                log_size: 3,
                checkpoint_size: 3,
                cosigned_size: 2,
                cosign_failures: 0,
                uptime: Duration::from_secs(1),
            },
        );
        assert!(text.contains(
            "allot_calls_total{method=\"/grpc.health.v1.Health/Check\",code=\"NOT_FOUND\"} 10\n"
        ));
        assert!(text.contains(
            "allot_call_duration_seconds_bucket{method=\"/grpc.health.v1.Health/Check\",le=\"0.000015\"} 90\n"
        ));
        assert!(text.contains("allot_shed_calls_total 2\n"));
    }
}
