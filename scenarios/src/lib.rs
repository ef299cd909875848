//! Planner scenarios: a synthetic Moscow-scale city ([`city`]), what-if variants read from TOML
//! ([`scenario`]), simulated many times in parallel ([`run`]) and compared with 95% confidence
//! intervals ([`Report`], rendered by [`html`]).
//!
//! - Appointments run as a discrete-event simulation through the real engine (`$find`, `$hold`,
//!   `$book`, cancellations, no-shows, absences) with a non-durable sink: nothing is logged.
//! - Fairs and schools run as Monte Carlo over lottery seeds through the engine's allocations.
//!
//! Determinism: every run's randomness comes from a seed derived from the master seed and the
//! run's index alone (not the thread, not the variant), results are collected in run order and
//! reduced in a fixed order, so a report is the same whatever the number of threads. No network
//! I/O here; the CLI and the gRPC service call [`run`] with their own progress reporting.

pub mod city;
pub mod fair_gen;
#[doc(hidden)]
pub mod fuzz;
pub mod html;
pub mod report;
pub mod scenario;
pub mod school_gen;

mod allocation;
mod appointments;
mod error;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ndarray::Array2;
use rayon::prelude::*;

pub use error::Error;
pub use report::{
    AllocationDetail, AppointmentDetail, DistrictUtilisation, Estimate, Metric, Progress, Report,
    VariantReport,
};
pub use scenario::Scenario;

use allocation::AllocOutcome;
use appointments::RunOutcome;

/// Most runs per variant.
pub const MAX_RUNS: u32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    Appointments,
    Fairs,
    Schools,
}

impl Domain {
    fn name(self) -> &'static str {
        match self {
            Domain::Appointments => "appointments",
            Domain::Fairs => "fairs",
            Domain::Schools => "schools",
        }
    }
}

#[derive(Debug)]
enum Outcome {
    Appointments(RunOutcome),
    Allocation(AllocOutcome),
}

/// Runs every variant of `scenario` `runs` times (0: the scenario's own number) on `threads`
/// worker threads (`None`: rayon's global pool), calling `progress` as runs finish (from the
/// worker threads), and compares them. The report depends only on the scenario (with its seed)
/// and `runs`.
pub fn run(
    scenario: &Scenario,
    runs: u32,
    threads: Option<usize>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, Error> {
    run_cancellable(scenario, runs, threads, progress, &AtomicBool::new(false))
}

/// [`run`] that stops early, with [`Error::Cancelled`], once `cancel` is set (checked before
/// each run and at every simulated day), e.g. when a gRPC caller goes away.
pub fn run_cancellable(
    scenario: &Scenario,
    runs: u32,
    threads: Option<usize>,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Report, Error> {
    let runs = if runs == 0 { scenario.runs } else { runs };
    if runs > MAX_RUNS {
        return Err(Error::Request(format!(
            "runs: at most {MAX_RUNS} per variant, not {runs}"
        )));
    }
    match threads {
        None => run_here(scenario, runs, progress, cancel),
        Some(t) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t.max(1))
                .build()
                .map_err(|e| Error::Threads {
                    threads: t,
                    problem: e.to_string(),
                })?;
            pool.install(|| run_here(scenario, runs, progress, cancel))
        }
    }
}

fn run_here(
    scenario: &Scenario,
    runs: u32,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Report, Error> {
    let settings = &scenario.appointments;
    let demand = scenario.variants[0]
        .appointments
        .as_ref()
        .map(|c| appointments::Demand::of(&c.network));
    // Every (domain, variant, run), appointments first: they are the longest.
    let mut tasks: Vec<(Domain, usize, u32)> = Vec::new();
    for domain in [Domain::Appointments, Domain::Fairs, Domain::Schools] {
        for (v, variant) in scenario.variants.iter().enumerate() {
            let present = match domain {
                Domain::Appointments => variant.appointments.is_some(),
                Domain::Fairs => variant.fairs.is_some(),
                Domain::Schools => variant.schools.is_some(),
            };
            if present {
                tasks.extend((0..runs).map(|r| (domain, v, r)));
            }
        }
    }
    let total = tasks.len() as u64;
    progress(Progress {
        phase: "preparing schedules".into(),
        done: 0,
        total,
    });
    let prepared: Vec<Option<appointments::Prepared>> = scenario
        .variants
        .par_iter()
        .map(|v| {
            v.appointments
                .as_ref()
                .map(|c| appointments::prepare(c, settings, &v.name))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    let fair_base = allocation::base_seed(scenario.seed, "fairs");
    let school_base = allocation::base_seed(scenario.seed, "schools");
    let done = AtomicU64::new(0);
    let outcomes: Vec<Outcome> = tasks
        .par_iter()
        .with_max_len(1)
        .map(|&(domain, v, r)| {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let variant = &scenario.variants[v];
            let out = match domain {
                Domain::Appointments => {
                    let case = variant
                        .appointments
                        .as_ref()
                        .expect("listed only when present");
                    let prep = prepared[v].as_ref().expect("prepared when present");
                    let demand = demand.as_ref().expect("the baseline has appointments");
                    let seed = city::sub_seed(scenario.seed, 0xA000_0000 + u64::from(r));
                    Outcome::Appointments(appointments::simulate(
                        prep,
                        case,
                        demand,
                        settings,
                        seed,
                        &variant.name,
                        cancel,
                    )?)
                }
                Domain::Fairs => {
                    let (input, params) = variant.fairs.as_ref().expect("present");
                    Outcome::Allocation(allocation::fair_run(
                        input,
                        params,
                        &fair_base,
                        u64::from(r),
                        &variant.name,
                    )?)
                }
                Domain::Schools => {
                    let (input, params) = variant.schools.as_ref().expect("present");
                    Outcome::Allocation(allocation::school_run(
                        input,
                        params,
                        &school_base,
                        u64::from(r),
                        &variant.name,
                    )?)
                }
            };
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress {
                phase: format!("{}: variant {}", domain.name(), variant.name),
                done: n,
                total,
            });
            Ok(out)
        })
        .collect::<Result<_, Error>>()?;

    // Reduce in task order.
    let mut per: Vec<[Vec<&Outcome>; 3]> = (0..scenario.variants.len())
        .map(|_| Default::default())
        .collect();
    for (&(domain, v, _), out) in tasks.iter().zip(&outcomes) {
        per[v][domain as usize].push(out);
    }
    let variants = scenario
        .variants
        .iter()
        .zip(&per)
        .enumerate()
        .map(|(i, (variant, outs))| {
            let mut metrics = Vec::new();
            let appts: Vec<&RunOutcome> = outs[0]
                .iter()
                .filter_map(|o| match o {
                    Outcome::Appointments(a) => Some(a),
                    Outcome::Allocation(_) => None,
                })
                .collect();
            let alloc = |k: usize| -> Vec<&AllocOutcome> {
                outs[k]
                    .iter()
                    .filter_map(|o| match o {
                        Outcome::Allocation(a) => Some(a),
                        Outcome::Appointments(_) => None,
                    })
                    .collect()
            };
            let (fairs, schools) = (alloc(1), alloc(2));
            let appointments = (!appts.is_empty())
                .then(|| appointment_metrics(&mut metrics, &appts, &scenario.variants[0], variant));
            let fairs = (!fairs.is_empty()).then(|| fair_metrics(&mut metrics, &fairs));
            let schools = (!schools.is_empty()).then(|| school_metrics(&mut metrics, &schools));
            VariantReport {
                name: variant.name.clone(),
                baseline: i == 0,
                runs: u64::from(runs),
                metrics,
                appointments,
                fairs,
                schools,
            }
        })
        .collect();
    Ok(Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        runs,
        setup: setup(scenario),
        variants,
    })
}

fn setup(scenario: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let base = &scenario.variants[0];
    if let Some(c) = &base.appointments {
        let s = &scenario.appointments;
        out.push(format!(
            "appointments: {} days from {}, {} districts, {} clinics, {} doctors, {:.0} requests a \
             day (Poisson), window {} days, no-shows {:.0}%, cancellations {:.0}%",
            s.days,
            s.first_day,
            c.network.districts.len(),
            c.network.clinics.len(),
            c.network.doctors.len(),
            c.requests_per_day,
            s.window_days,
            s.no_show * 100.0,
            s.cancel * 100.0
        ));
    }
    if let Some((f, p)) = &base.fairs {
        out.push(format!(
            "fairs: {} fairs, {} stalls, {} applicants, mechanism {}, precedence {}",
            f.fairs.len(),
            f.total_stalls(),
            f.applicants.len(),
            p.mechanism.name(),
            p.precedence.name()
        ));
    }
    if let Some((s, p)) = &base.schools {
        out.push(format!(
            "schools: {} schools, {} seats, {} applicants, mechanism {}, {} tie-breaking",
            s.schools.len(),
            s.total_seats(),
            s.students.len(),
            p.mechanism.name(),
            p.tie_breaking.name()
        ));
    }
    out
}

/// A metric's name, unit and how to read it off one run.
type Measure<T> = (&'static str, &'static str, fn(&T) -> f64);

fn push<T>(metrics: &mut Vec<Metric>, runs: &[&T], table: &[Measure<T>]) {
    let values = matrix(runs, table.len(), |r, m| (table[m].2)(r));
    for (&(name, unit, _), e) in table.iter().zip(Estimate::columns(values.view())) {
        metrics.push(Metric {
            name: name.into(),
            unit: unit.into(),
            mean: e.mean,
            ci95_low: e.ci95_low,
            ci95_high: e.ci95_high,
        });
    }
}

/// The runs x `columns` matrix of `value(run, column)`.
fn matrix<T>(runs: &[&T], columns: usize, value: impl Fn(&T, usize) -> f64) -> Array2<f64> {
    Array2::from_shape_fn((runs.len(), columns), |(r, c)| value(runs[r], c))
}

const APPOINTMENT_METRICS: &[Measure<RunOutcome>] = &[
    ("appointment_requests", "requests", |r| r.requests as f64),
    ("appointments_booked", "requests", |r| r.booked as f64),
    ("unserved_requests", "requests", |r| r.unserved as f64),
    ("unserved_share", "ratio", |r| {
        r.unserved as f64 / r.requests.max(1) as f64
    }),
    ("waiting_days_p50", "days", |r| r.wait_p50),
    ("waiting_days_p95", "days", |r| r.wait_p95),
    ("waiting_days_mean", "days", |r| r.wait_mean),
    ("travel_km_mean", "km", |r| r.travel_mean),
    ("clinic_utilisation_max", "ratio", |r| r.util_max),
    ("clinic_utilisation_mean", "ratio", |r| r.util_mean),
    ("district_utilisation_spread", "ratio", |r| r.util_spread),
    ("cancellations", "appointments", |r| r.cancelled as f64),
    ("no_shows", "appointments", |r| r.no_shows as f64),
    ("re_offered_after_absence", "appointments", |r| {
        r.reoffered as f64
    }),
];

const FAIR_METRICS: &[Measure<AllocOutcome>] = &[
    ("fair_fill_rate", "ratio", |r| {
        r.placed as f64 / r.places.max(1) as f64
    }),
    ("fair_placed", "applicants", |r| r.placed as f64),
    ("fair_placed_tier0", "applicants", |r| {
        r.placed_per_tier[0] as f64
    }),
    ("fair_placed_tier1", "applicants", |r| {
        r.placed_per_tier[1] as f64
    }),
    ("fair_placed_tier2", "applicants", |r| {
        r.placed_per_tier[2] as f64
    }),
    ("fair_unplaced", "applicants", |r| r.unplaced() as f64),
    ("fair_mean_rank", "rank", AllocOutcome::mean_rank),
    (
        "fair_first_choice_share",
        "ratio",
        AllocOutcome::first_choice_share,
    ),
];

const SCHOOL_METRICS: &[Measure<AllocOutcome>] = &[
    ("school_assigned", "students", |r| r.placed as f64),
    ("school_unassigned", "students", |r| r.unplaced() as f64),
    ("school_mean_rank", "rank", AllocOutcome::mean_rank),
    (
        "school_first_choice_share",
        "ratio",
        AllocOutcome::first_choice_share,
    ),
    ("school_justified_envy", "pairs", |r| {
        r.justified_envy as f64
    }),
    ("school_blocking_pairs", "pairs", |r| {
        r.blocking_pairs as f64
    }),
];

fn appointment_metrics(
    metrics: &mut Vec<Metric>,
    runs: &[&RunOutcome],
    baseline: &scenario::Variant,
    variant: &scenario::Variant,
) -> AppointmentDetail {
    push(metrics, runs, APPOINTMENT_METRICS);
    let net = &variant
        .appointments
        .as_ref()
        .or(baseline.appointments.as_ref())
        .expect("appointments present")
        .network;
    let by_district = matrix(runs, net.districts.len(), |r, d| r.district_util[d]);
    let districts = net
        .districts
        .iter()
        .zip(Estimate::columns(by_district.view()))
        .map(|(district, utilisation)| DistrictUtilisation {
            district: district.id.clone(),
            utilisation,
        })
        .collect();
    let days = runs.first().map_or(0, |r| r.wait_shares.len());
    let waiting_days = Estimate::columns(matrix(runs, days, |r, d| r.wait_shares[d]).view());
    AppointmentDetail {
        districts,
        waiting_days,
    }
}

fn rank_detail(runs: &[&AllocOutcome]) -> AllocationDetail {
    let longest = runs.iter().map(|r| r.rank_counts.len()).max().unwrap_or(0);
    let share = |r: &AllocOutcome, n: u64| n as f64 / r.participants.max(1) as f64;
    let ranks = matrix(runs, longest, |r, k| {
        share(r, r.rank_counts.get(k).copied().unwrap_or(0))
    });
    let unplaced = matrix(runs, 1, |r, _| share(r, r.unplaced()));
    AllocationDetail {
        rank_shares: Estimate::columns(ranks.view()),
        unplaced_share: Estimate::columns(unplaced.view())[0],
    }
}

fn fair_metrics(metrics: &mut Vec<Metric>, runs: &[&AllocOutcome]) -> AllocationDetail {
    push(metrics, runs, FAIR_METRICS);
    rank_detail(runs)
}

fn school_metrics(metrics: &mut Vec<Metric>, runs: &[&AllocOutcome]) -> AllocationDetail {
    push(metrics, runs, SCHOOL_METRICS);
    rank_detail(runs)
}
