//! What a scenario run reports: per variant, a fixed list of metrics with the mean over the runs
//! and its 95% confidence interval, plus the distributions the charts draw. Serialised as
//! `report.json`; [`crate::html`] renders it.

use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// How far a run is, for progress bars and the gRPC progress stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What is running, e.g. `appointments: variant close-clinic`.
    pub phase: String,
    /// Runs finished, over all variants and domains.
    pub done: u64,
    /// Runs planned, over all variants and domains.
    pub total: u64,
}

/// A mean over runs and its 95% confidence interval (Student's t; a single run gives the point).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
}

/// One metric of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// E.g. `waiting_days_p95`, `clinic_utilisation_max`, `fair_fill_rate`, `school_unassigned`.
    pub name: String,
    /// E.g. `days`, `ratio`, `students`.
    pub unit: String,
    pub mean: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
}

impl Metric {
    pub fn estimate(&self) -> Estimate {
        Estimate {
            mean: self.mean,
            ci95_low: self.ci95_low,
            ci95_high: self.ci95_high,
        }
    }
}

/// One district's share of its available slots booked over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistrictUtilisation {
    pub district: String,
    pub utilisation: Estimate,
}

/// The appointments' distributions of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppointmentDetail {
    /// Per district (in the city's order).
    pub districts: Vec<DistrictUtilisation>,
    /// Share of booked requests that waited `d` days, at index `d`.
    pub waiting_days: Vec<Estimate>,
}

/// A fair or school allocation's distributions of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationDetail {
    /// Share of participants placed at their `r`-th choice, at index `r - 1`.
    pub rank_shares: Vec<Estimate>,
    /// Share of participants not placed.
    pub unplaced_share: Estimate,
}

/// One variant (or the baseline) over its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    /// The variant's name from the scenario file; the baseline is `baseline`.
    pub name: String,
    pub baseline: bool,
    /// Runs done.
    pub runs: u64,
    /// The metrics, in a fixed order (the same for every variant of a report).
    pub metrics: Vec<Metric>,
    pub appointments: Option<AppointmentDetail>,
    pub fairs: Option<AllocationDetail>,
    pub schools: Option<AllocationDetail>,
}

impl VariantReport {
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// A scenario's report: the baseline first, then the variants in file order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    /// Runs per variant.
    pub runs: u32,
    /// What was simulated, for the reader: e.g. `appointments: 7 days from 2025-03-03, ...`.
    pub setup: Vec<String>,
    pub variants: Vec<VariantReport>,
}

impl Report {
    /// `report.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }
}

/// Student's t quantile at 0.975 for `df` degrees of freedom.
fn t975(df: u64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df as usize - 1],
        _ => {
            // Cornish-Fisher expansion around the normal quantile.
            let z: f64 = 1.959_963_985;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

impl Estimate {
    /// The mean of `values` and its 95% confidence interval.
    pub fn of(values: &[f64]) -> Estimate {
        let column = ArrayView2::from_shape((values.len(), 1), values).expect("one column");
        Estimate::columns(column).pop().unwrap_or(Estimate {
            mean: 0.0,
            ci95_low: 0.0,
            ci95_high: 0.0,
        })
    }

    /// Each column's mean and 95% confidence interval, over the rows of a runs x quantities
    /// matrix. Deterministic: the same matrix gives bit-for-bit the same estimates, however the
    /// runs were computed.
    pub fn columns(values: ArrayView2<'_, f64>) -> Vec<Estimate> {
        let n = values.nrows();
        let Some(mean) = values.mean_axis(Axis(0)) else {
            return vec![
                Estimate {
                    mean: 0.0,
                    ci95_low: 0.0,
                    ci95_high: 0.0,
                };
                values.ncols()
            ];
        };
        let half = if n > 1 {
            let var = values.var_axis(Axis(0), 1.0);
            var.mapv(|v| t975(n as u64 - 1) * (v / n as f64).sqrt())
        } else {
            mean.mapv(|_| 0.0)
        };
        mean.iter()
            .zip(&half)
            .map(|(&mean, &half)| Estimate {
                mean,
                ci95_low: mean - half,
                ci95_high: mean + half,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_join_the_table_smoothly() {
        // Published values: t(0.975; 40) = 2.021, t(0.975; 120) = 1.980.
        assert!((t975(40) - 2.021).abs() < 0.002);
        assert!((t975(120) - 1.980).abs() < 0.001);
        assert!(t975(31) < t975(30) && t975(31) > 2.03);
    }

    #[test]
    fn estimates_cover_the_textbook_interval() {
        // 1..=10: mean 5.5, sd 3.0277, t(9) 2.262 -> half width 2.1659.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let e = Estimate::of(&v);
        assert!((e.mean - 5.5).abs() < 1e-12);
        assert!((e.ci95_high - 5.5 - 2.1659).abs() < 1e-3);
        assert!((5.5 - e.ci95_low - 2.1659).abs() < 1e-3);
        let one = Estimate::of(&[3.0]);
        assert_eq!((one.ci95_low, one.ci95_high), (3.0, 3.0));
    }
}
