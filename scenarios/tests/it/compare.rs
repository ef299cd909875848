//! Runs: deterministic whatever the thread count; removing capacity never helps.

use crate::{run, scenario};

const SMALL: &str = r#"
name = "small"
seed = 5
[city]
generate = { seed = 2, scale = 0.02 }
[period]
days = 3
[appointments]
window_days = 7
[[variant]]
name = "close"
close_clinics = ["C0001"]
[[variant]]
name = "mechanisms"
fair_mechanism = "rsd"
school_mechanism = "boston"
"#;

#[test]
fn same_seed_same_report_whatever_the_thread_count() {
    let s = scenario(SMALL);
    let one = run(&s, 3, 1).to_json();
    let two = run(&s, 3, 2).to_json();
    assert_eq!(one, two);
    // Another master seed gives other draws (the report is not a constant).
    let mut other = s.clone();
    other.seed = 6;
    assert_ne!(run(&other, 3, 2).to_json(), one);
}

#[test]
fn every_variant_reports_the_same_metrics_in_the_same_order() {
    let s = scenario(SMALL);
    let report = run(&s, 2, 2);
    assert_eq!(report.variants.len(), 3);
    assert!(report.variants[0].baseline && report.variants[0].name == "baseline");
    let names: Vec<&str> = report.variants[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    for v in &report.variants {
        let here: Vec<&str> = v.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(here, names);
        for m in &v.metrics {
            assert!(
                m.ci95_low <= m.mean && m.mean <= m.ci95_high,
                "{}: {m:?}",
                v.name
            );
        }
    }
    // Requests are the same stream for every variant (common random numbers).
    let requests: Vec<f64> = report
        .variants
        .iter()
        .map(|v| v.metric("appointment_requests").unwrap().mean)
        .collect();
    assert!(requests.windows(2).all(|w| w[0] == w[1]), "{requests:?}");
    // The figures add up: booked + unserved = requests in every run's mean.
    for v in &report.variants {
        let m = |n: &str| v.metric(n).unwrap().mean;
        let sum = m("appointments_booked") + m("unserved_requests");
        assert!((sum - m("appointment_requests")).abs() < 1e-6, "{}", v.name);
        assert!(m("clinic_utilisation_max") <= 1.0 + 1e-12);
    }
}

/// The variant's mean must not be better than the baseline's by more than the two confidence
/// half-widths together (a variant that only removes capacity cannot help in expectation).
fn not_better(report: &allot_scenarios::Report, metric: &str, higher_is_worse: bool) {
    let b = report.variants[0].metric(metric).unwrap();
    for v in &report.variants[1..] {
        let m = v.metric(metric).unwrap();
        let margin = (b.ci95_high - b.ci95_low) / 2.0 + (m.ci95_high - m.ci95_low) / 2.0;
        if higher_is_worse {
            assert!(
                m.mean >= b.mean - margin,
                "{}: {metric} {} < {} - {margin}",
                v.name,
                m.mean,
                b.mean
            );
        } else {
            assert!(
                m.mean <= b.mean + margin,
                "{}: {metric} {} > {} + {margin}",
                v.name,
                m.mean,
                b.mean
            );
        }
    }
}

#[test]
fn removing_capacity_never_improves_the_waiting_metrics() {
    // A busy city (demand near capacity) where closing clinics, losing doctors to flu or
    // lengthening visits all remove slots.
    let s = scenario(
        r#"
seed = 11
[city]
generate = { seed = 4, scale = 0.03 }
[period]
days = 4
[appointments]
window_days = 7
requests_per_day = 4800
[[variant]]
name = "close three clinics"
close_clinics = ["C0002", "C0005", "C0009"]
[[variant]]
name = "absences"
flu_wave = { from_day = 1, days = 3, absent = 0.15, extra_demand = 0.0 }
[[variant]]
name = "longer visits"
minutes_per_visit = [{ specialty = "therapist", minutes = 25 }, { specialty = "gp", minutes = 25 }]
[[variant]]
name = "fewer stalls and seats"
fair_stalls = [{ factor = 0.7 }]
school_capacity = [{ factor = 0.8 }]
"#,
    );
    let report = run(&s, 6, 2);
    for (metric, higher_is_worse) in [
        ("waiting_days_mean", true),
        ("waiting_days_p50", true),
        ("waiting_days_p95", true),
        ("unserved_requests", true),
        ("fair_placed", false),
        ("school_assigned", false),
    ] {
        not_better(&report, metric, higher_is_worse);
    }
    // And the city is busy enough for capacity to matter: closing clinics leaves more requests
    // unserved or waiting longer, clearly.
    let b = &report.variants[0];
    let c = &report.variants[1];
    let worse = |n: &str| c.metric(n).unwrap().mean > b.metric(n).unwrap().mean;
    assert!(worse("unserved_requests") || worse("waiting_days_mean"));
    let f = &report.variants[4];
    assert!(f.metric("fair_placed").unwrap().ci95_high < b.metric("fair_placed").unwrap().ci95_low);
    assert!(
        f.metric("school_unassigned").unwrap().ci95_low
            > b.metric("school_unassigned").unwrap().ci95_high
    );
}

#[test]
fn progress_counts_every_run_once() {
    use std::sync::Mutex;
    let s = scenario(SMALL);
    let seen = Mutex::new(Vec::new());
    let progress = |p: allot_scenarios::Progress| seen.lock().unwrap().push((p.done, p.total));
    allot_scenarios::run(&s, 2, Some(2), &progress).unwrap();
    let mut seen = seen.into_inner().unwrap();
    // 3 domains x 3 variants x 2 runs, plus the start.
    let total = 18;
    assert!(seen.iter().all(|&(_, t)| t == total));
    seen.sort_unstable();
    let done: Vec<u64> = seen.iter().map(|&(d, _)| d).collect();
    assert_eq!(done, (0..=total).collect::<Vec<_>>());
}

#[test]
fn a_cancelled_run_stops_with_cancelled() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = scenario(SMALL);
    let cancel = AtomicBool::new(false);
    // Cancel as soon as the first run finishes.
    let progress = |p: allot_scenarios::Progress| {
        if p.done >= 1 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let got = allot_scenarios::run_cancellable(&s, 50, Some(2), &progress, &cancel);
    assert!(
        matches!(got, Err(allot_scenarios::Error::Cancelled)),
        "{got:?}"
    );
}
