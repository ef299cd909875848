//! Scenario files (TOML): the city, the period, the settings of each domain, and the variants to
//! compare with the baseline. `scenarios/examples/moscow-week.toml` is the annotated example.
//!
//! Reading a scenario loads (or generates) the city and applies every variant's changes up front,
//! so a bad field or an unknown id is reported before anything runs, as
//! `FILE:LINE: FIELD: problem`.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use allot_engine::appointments::Date;
use allot_engine::fair::{self, FairInput};
use allot_engine::input::{InputError, Table, clip_to};
use allot_engine::school::{self, SchoolInput};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use toml::Spanned;

use crate::city::{City, CitySpec, ClinicNetwork, Doctor};
use crate::error::Error;

/// The Moscow rate of appointment requests: about 190,000 a day for 30,000 doctors.
pub const REQUESTS_PER_DOCTOR_DAY: f64 = 190_000.0 / 30_000.0;

/// Appointment settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentSettings {
    pub first_day: Date,
    /// Days over which requests arrive.
    pub days: u32,
    /// How far ahead patients accept a slot; the schedule's horizon is `days + window_days`.
    pub window_days: u32,
    /// Mean requests per day (Poisson); by default [`REQUESTS_PER_DOCTOR_DAY`] per doctor of the
    /// baseline.
    pub requests_per_day: f64,
    /// Share of booked patients who do not come (default 0.10).
    pub no_show: f64,
    /// Share of booked patients who cancel before the visit (default 0.05).
    pub cancel: f64,
    /// Candidate clinics per `$find`.
    pub nearest: usize,
}

/// A flu wave: doctors absent and extra requests over some days of the period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FluWave {
    /// First day of the wave (0 is the period's `first_day`).
    pub from_day: u32,
    /// The day after the wave (at most the period's length).
    pub until_day: u32,
    /// Share of doctors absent for the whole wave (drawn per run).
    pub absent: f64,
    /// Extra requests during the wave, as a share of the normal rate.
    pub extra_demand: f64,
}

/// The appointments of one variant.
#[derive(Debug, Clone)]
pub struct AppointmentCase {
    pub network: Arc<ClinicNetwork>,
    /// Requests per day, after any demand change.
    pub requests_per_day: f64,
    pub flu: Option<FluWave>,
}

/// The baseline or one variant, with its changes applied.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub appointments: Option<AppointmentCase>,
    pub fairs: Option<(Arc<FairInput>, fair::Params)>,
    pub schools: Option<(Arc<SchoolInput>, school::Params)>,
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The master seed: every run's randomness derives from it.
    pub seed: u64,
    /// Runs per variant, unless the caller says otherwise.
    pub runs: u32,
    pub appointments: AppointmentSettings,
    /// The baseline first, then the variants in file order.
    pub variants: Vec<Variant>,
    /// The city as loaded, before any variant.
    pub city: Arc<City>,
}

// ---- The file, as written ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    seed: Option<u64>,
    runs: Option<u32>,
    domains: Option<Spanned<Vec<String>>>,
    city: Spanned<RawCity>,
    period: Option<RawPeriod>,
    appointments: Option<RawAppointments>,
    fairs: Option<RawFairs>,
    schools: Option<RawSchools>,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCity {
    generate: Option<RawGenerate>,
    csv: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerate {
    seed: Option<u64>,
    scale: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    first_day: Option<Spanned<String>>,
    days: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppointments {
    window_days: Option<Spanned<u32>>,
    requests_per_day: Option<Spanned<f64>>,
    no_show: Option<Spanned<f64>>,
    cancel: Option<Spanned<f64>>,
    nearest: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFairs {
    mechanism: Option<Spanned<String>>,
    precedence: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchools {
    mechanism: Option<Spanned<String>>,
    tie_breaking: Option<Spanned<String>>,
    reserve_order: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    // Appointments.
    #[serde(default)]
    close_clinics: Vec<Spanned<String>>,
    #[serde(default)]
    add_doctors: Vec<Spanned<RawAddDoctors>>,
    #[serde(default)]
    minutes_per_visit: Vec<Spanned<RawMinutes>>,
    flu_wave: Option<Spanned<RawFlu>>,
    demand_factor: Option<Spanned<f64>>,
    // Fairs.
    #[serde(default)]
    fair_stalls: Vec<Spanned<RawStalls>>,
    #[serde(default)]
    add_fair: Vec<Spanned<RawAddFair>>,
    #[serde(default)]
    fair_tiers: Vec<Spanned<RawTiers>>,
    fair_mechanism: Option<Spanned<String>>,
    fair_precedence: Option<Spanned<String>>,
    // Schools.
    #[serde(default)]
    open_school: Vec<Spanned<RawOpenSchool>>,
    #[serde(default)]
    school_capacity: Vec<Spanned<RawCapacity>>,
    #[serde(default)]
    school_reserves: Vec<Spanned<RawReserves>>,
    school_mechanism: Option<Spanned<String>>,
    tie_breaking: Option<Spanned<String>>,
    reserve_order: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddDoctors {
    district: Spanned<String>,
    specialty: Spanned<String>,
    count: u32,
    minutes: Option<u16>,
    schedule: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMinutes {
    specialty: Spanned<String>,
    minutes: Spanned<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlu {
    from_day: u32,
    days: u32,
    absent: f64,
    extra_demand: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStalls {
    fair: Option<Spanned<String>>,
    category: Option<Spanned<String>>,
    stalls: Option<u32>,
    factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddFair {
    fair: Spanned<String>,
    district: String,
    like: Spanned<String>,
    share: f64,
    stalls: std::collections::BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    from: u8,
    to: u8,
    share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenSchool {
    school: Spanned<String>,
    capacity: u32,
    like: Spanned<String>,
    share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    school: Option<Spanned<String>>,
    capacity: Option<u32>,
    factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReserves {
    #[serde(default)]
    schools: Vec<Spanned<String>>,
    every: Option<u32>,
    class: u32,
    share: f64,
}

// ---- Reading -------------------------------------------------------------------------------

/// Errors point into the scenario file.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn line(&self, span: Range<usize>) -> u64 {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1
    }

    fn err(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Error {
        InputError::at(self.file, self.line(span), field, problem).into()
    }
}

fn fraction(src: &Source<'_>, span: Range<usize>, field: &str, v: f64) -> Result<f64, Error> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(src.err(
            span,
            field,
            format!("expected a share from 0 to 1, found {v}"),
        ))
    }
}

impl Scenario {
    /// Reads a scenario file; CSV folders are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            let mut error = InputError::at(path.display().to_string(), line, "", "not UTF-8");
            error.field = None;
            Error::from(error)
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(text, &path.display().to_string(), base)
    }

    /// Reads a scenario from its text; `file` names it in errors, CSV folders are relative to
    /// `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Scenario, Error> {
        let src = Source { file, text };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| src.line(s));
            // serde quotes offending values in full: keep the error one short line.
            let problem = clip_to(e.message().trim(), 300);
            let mut field = field_of(&problem);
            if field.is_empty() {
                field = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
            }
            let mut error = InputError::at(file, line, field, problem);
            if error.field.as_deref() == Some("") {
                error.field = None;
            }
            Error::from(error)
        })?;
        let city_span = raw.city.span();
        let raw_city = raw.city.into_inner();
        let city = match (raw_city.generate, raw_city.csv) {
            (Some(g), None) => {
                let scale = match g.scale {
                    Some(s) => {
                        let v = *s.get_ref();
                        if !(v > 0.0 && v <= 4.0) {
                            return Err(src.err(
                                s.span(),
                                "city.generate.scale",
                                format!("expected a scale above 0 and at most 4, found {v}"),
                            ));
                        }
                        v
                    }
                    None => 1.0,
                };
                crate::city::generate(&CitySpec::scaled(g.seed.unwrap_or(1), scale))
            }
            (None, Some(dir)) => City::from_csv(&base.join(dir.get_ref()))?,
            _ => {
                return Err(src.err(
                    city_span,
                    "city",
                    "give exactly one of `generate = { seed, scale }` or `csv = \"FOLDER\"`",
                ));
            }
        };
        let mut city = city;
        if let Some(domains) = &raw.domains {
            let mut keep = [false; 3];
            for d in domains.get_ref() {
                match d.as_str() {
                    "appointments" => keep[0] = true,
                    "fairs" => keep[1] = true,
                    "schools" => keep[2] = true,
                    other => {
                        return Err(src.err(
                            domains.span(),
                            "domains",
                            format!("unknown domain '{other}' (appointments, fairs, schools)"),
                        ));
                    }
                }
            }
            if !keep[0] {
                city.appointments = None;
            }
            if !keep[1] {
                city.fairs = None;
            }
            if !keep[2] {
                city.schools = None;
            }
        }
        let city = Arc::new(city);
        let seed = raw.seed.unwrap_or(0);

        // The period and the appointment settings.
        let period = raw.period.unwrap_or(RawPeriod {
            first_day: None,
            days: None,
        });
        let first_day = match period.first_day {
            Some(d) => Date::parse(d.get_ref()).ok_or_else(|| {
                src.err(
                    d.span(),
                    "period.first_day",
                    format!("expected a date YYYY-MM-DD, found '{}'", d.get_ref()),
                )
            })?,
            None => Date(20_150),
        };
        let days = match period.days {
            Some(d) if (1..=180).contains(d.get_ref()) => *d.get_ref(),
            Some(d) => {
                return Err(src.err(d.span(), "period.days", "expected 1 to 180 days"));
            }
            None => 7,
        };
        let a = raw.appointments.unwrap_or(RawAppointments {
            window_days: None,
            requests_per_day: None,
            no_show: None,
            cancel: None,
            nearest: None,
        });
        let window_days = match a.window_days {
            Some(w) if (1..=90).contains(w.get_ref()) => *w.get_ref(),
            Some(w) => {
                return Err(src.err(
                    w.span(),
                    "appointments.window_days",
                    "expected 1 to 90 days",
                ));
            }
            None => 14,
        };
        let doctors = city.appointments.as_ref().map_or(0, |n| n.doctors.len());
        let requests_per_day = match a.requests_per_day {
            Some(r) if *r.get_ref() >= 0.0 && r.get_ref().is_finite() => *r.get_ref(),
            Some(r) => {
                return Err(src.err(
                    r.span(),
                    "appointments.requests_per_day",
                    "expected a number of requests, 0 or more",
                ));
            }
            None => REQUESTS_PER_DOCTOR_DAY * doctors as f64,
        };
        let share = |v: Option<Spanned<f64>>, field: &str, default: f64| -> Result<f64, Error> {
            match v {
                Some(v) => fraction(&src, v.span(), field, *v.get_ref()),
                None => Ok(default),
            }
        };
        let settings = AppointmentSettings {
            first_day,
            days,
            window_days,
            requests_per_day,
            no_show: share(a.no_show, "appointments.no_show", 0.10)?,
            cancel: share(a.cancel, "appointments.cancel", 0.05)?,
            nearest: match a.nearest {
                Some(n) if (1..=200).contains(n.get_ref()) => *n.get_ref(),
                Some(n) => {
                    return Err(src.err(
                        n.span(),
                        "appointments.nearest",
                        "expected 1 to 200 clinics",
                    ));
                }
                None => 12,
            },
        };

        // Domain parameters.
        let mut fair_params = fair::Params::default();
        if let Some(f) = raw.fairs {
            if let Some(m) = f.mechanism {
                fair_params.mechanism = fair_mechanism(&src, &m, "fairs.mechanism")?;
            }
            if let Some(p) = f.precedence {
                fair_params.precedence = fair_precedence(&src, &p, "fairs.precedence")?;
            }
        }
        let mut school_params = school::Params::default();
        if let Some(s) = raw.schools {
            if let Some(m) = s.mechanism {
                school_params.mechanism = school_mechanism(&src, &m, "schools.mechanism")?;
            }
            if let Some(t) = s.tie_breaking {
                school_params.tie_breaking = tie_breaking(&src, &t, "schools.tie_breaking")?;
            }
            if let Some(o) = s.reserve_order {
                school_params.reserve_order = reserve_order(&src, &o, "schools.reserve_order")?;
            }
        }

        let baseline = Variant {
            name: "baseline".into(),
            appointments: city.appointments.as_ref().map(|n| AppointmentCase {
                network: Arc::new(n.clone()),
                requests_per_day,
                flu: None,
            }),
            fairs: city
                .fairs
                .as_ref()
                .map(|f| (Arc::new(f.clone()), fair_params)),
            schools: city
                .schools
                .as_ref()
                .map(|s| (Arc::new(s.clone()), school_params)),
        };
        let mut variants = vec![baseline];
        for (k, v) in raw.variant.into_iter().enumerate() {
            let span = v.span();
            let v = v.into_inner();
            let name = v.name.get_ref().trim().to_owned();
            if name.is_empty() || name == "baseline" || variants.iter().any(|x| x.name == name) {
                return Err(src.err(
                    v.name.span(),
                    format!("variant[{k}].name"),
                    format!("'{name}': give each variant its own name (not empty, not `baseline`)"),
                ));
            }
            let rng_seed = seed ^ crate::city::sub_seed(seed, 1000 + k as u64);
            let variant = apply(
                &src,
                &variants[0],
                &name,
                k,
                span,
                v,
                rng_seed,
                settings.days,
            )?;
            variants.push(variant);
        }
        Ok(Scenario {
            name: raw.name.unwrap_or_else(|| file.to_owned()),
            seed,
            runs: raw.runs.unwrap_or(20).max(1),
            appointments: settings,
            variants,
            city,
        })
    }
}

/// The dotted key whose value is at byte `at` (`period.days` for the `-2` of `days = -2` under
/// `[period]`), for TOML errors that name no field; empty when the line is no `key = value`.
fn key_at(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let Some(before) = text.get(..at) else {
        return String::new();
    };
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let key = key.trim();
    if key.is_empty() || key.len() > 100 || key.chars().any(|c| c.is_control()) {
        return String::new();
    }
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    match table.map(|t| t.trim_matches(|c| c == '[' || c == ']').trim()) {
        Some(t) if !t.is_empty() && t.len() <= 100 => format!("{t}.{key}"),
        _ => key.to_owned(),
    }
}

/// The field a TOML error names, if any (e.g. "unknown field `foo`").
fn field_of(problem: &str) -> String {
    problem
        .split('`')
        .nth(1)
        .filter(|_| problem.contains("field"))
        .unwrap_or("")
        .to_owned()
}

fn fair_mechanism(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<fair::Mechanism, Error> {
    fair::Mechanism::parse(v.get_ref()).ok_or_else(|| {
        src.err(
            v.span(),
            field,
            format!(
                "unknown fair mechanism '{}' (da, welfare, rsd)",
                v.get_ref()
            ),
        )
    })
}

fn fair_precedence(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<fair::Precedence, Error> {
    fair::Precedence::parse(v.get_ref()).ok_or_else(|| {
        src.err(
            v.span(),
            field,
            format!(
                "unknown precedence '{}' (own-first, open-first)",
                v.get_ref()
            ),
        )
    })
}

fn school_mechanism(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<school::Mechanism, Error> {
    school::Mechanism::parse(v.get_ref()).ok_or_else(|| {
        src.err(
            v.span(),
            field,
            format!(
                "unknown school mechanism '{}' (da, school-da, ttc, boston, eada)",
                v.get_ref()
            ),
        )
    })
}

fn tie_breaking(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<school::TieBreaking, Error> {
    school::TieBreaking::parse(v.get_ref()).ok_or_else(|| {
        src.err(
            v.span(),
            field,
            format!("unknown tie-breaking '{}' (single, multiple)", v.get_ref()),
        )
    })
}

fn reserve_order(
    src: &Source<'_>,
    v: &Spanned<String>,
    field: &str,
) -> Result<school::ReserveOrder, Error> {
    school::ReserveOrder::parse(v.get_ref()).ok_or_else(|| {
        src.err(
            v.span(),
            field,
            format!(
                "unknown reserve order '{}' (reserved-first, open-first)",
                v.get_ref()
            ),
        )
    })
}

/// A domain a variant changes but the city does not have.
fn absent(src: &Source<'_>, span: Range<usize>, field: String, domain: &str) -> Error {
    src.err(span, field, format!("the city has no {domain}"))
}

#[allow(clippy::too_many_arguments)]
fn apply(
    src: &Source<'_>,
    base: &Variant,
    name: &str,
    k: usize,
    span: Range<usize>,
    v: RawVariant,
    seed: u64,
    period_days: u32,
) -> Result<Variant, Error> {
    let f = |field: &str| format!("variant[{k}].{field}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = base.clone();
    out.name = name.to_owned();

    // Appointments.
    let touches_appointments = !v.close_clinics.is_empty()
        || !v.add_doctors.is_empty()
        || !v.minutes_per_visit.is_empty()
        || v.flu_wave.is_some()
        || v.demand_factor.is_some();
    if touches_appointments {
        let Some(case) = out.appointments.as_mut() else {
            return Err(absent(
                src,
                span,
                f("appointments"),
                "clinics (clinics.csv, doctors.csv)",
            ));
        };
        let mut net = (*case.network).clone();
        let mut closed = vec![false; net.clinics.len()];
        for c in &v.close_clinics {
            let i = net.clinic(c.get_ref()).ok_or_else(|| {
                src.err(
                    c.span(),
                    f("close_clinics"),
                    format!("no clinic '{}'", c.get_ref()),
                )
            })?;
            closed[i] = true;
        }
        for a in &v.add_doctors {
            let a_span = a.span();
            let a = a.get_ref();
            let d = net.district(a.district.get_ref()).ok_or_else(|| {
                src.err(
                    a.district.span(),
                    f("add_doctors.district"),
                    format!("no district '{}'", a.district.get_ref()),
                )
            })?;
            let clinics: Vec<usize> = (0..net.clinics.len())
                .filter(|&c| net.clinics[c].district == d && !closed[c])
                .collect();
            if clinics.is_empty() {
                return Err(src.err(
                    a_span,
                    f("add_doctors.district"),
                    format!("district '{}' has no open clinic", a.district.get_ref()),
                ));
            }
            let specialty = a.specialty.get_ref().clone();
            let minutes = a
                .minutes
                .or_else(|| allot_engine::appointments::schedule::standard_minutes(&specialty))
                .ok_or_else(|| {
                    src.err(
                        a.specialty.span(),
                        f("add_doctors.minutes"),
                        format!("'{specialty}' has no standard minutes per visit: give `minutes`"),
                    )
                })?;
            for i in 0..a.count {
                net.doctors.push(Doctor {
                    id: format!("X{k}-{}-{i}", net.doctors.len()),
                    clinic: clinics[i as usize % clinics.len()],
                    specialty: specialty.clone(),
                    minutes,
                    schedule: a
                        .schedule
                        .clone()
                        .unwrap_or_else(|| "mon-fri 08:00-16:30; sat-sun 09:00-15:00".into()),
                });
            }
        }
        for m in &v.minutes_per_visit {
            let m = m.get_ref();
            let specialty = m.specialty.get_ref();
            if !net.doctors.iter().any(|d| &d.specialty == specialty) {
                return Err(src.err(
                    m.specialty.span(),
                    f("minutes_per_visit.specialty"),
                    format!("no doctors of specialty '{specialty}'"),
                ));
            }
            let minutes = *m.minutes.get_ref();
            if !allot_engine::appointments::inputs::VISIT_MINUTES.contains(&minutes) {
                return Err(src.err(
                    m.minutes.span(),
                    f("minutes_per_visit.minutes"),
                    "expected 5 to 240 minutes",
                ));
            }
            for d in net.doctors.iter_mut().filter(|d| &d.specialty == specialty) {
                d.minutes = minutes;
            }
        }
        if closed.iter().any(|&c| c) {
            // Remove the clinics and their doctors, renumbering the rest.
            let mut new_index = vec![usize::MAX; net.clinics.len()];
            let mut kept = Vec::new();
            for (i, c) in net.clinics.iter().enumerate() {
                if !closed[i] {
                    new_index[i] = kept.len();
                    kept.push(c.clone());
                }
            }
            if kept.is_empty() {
                return Err(src.err(span, f("close_clinics"), "every clinic would be closed"));
            }
            net.clinics = kept;
            net.doctors.retain(|d| !closed[d.clinic]);
            for d in &mut net.doctors {
                d.clinic = new_index[d.clinic];
            }
        }
        if let Some(flu) = &v.flu_wave {
            let fl = flu.get_ref();
            if fl.days == 0 || fl.from_day >= period_days {
                return Err(src.err(
                    flu.span(),
                    f("flu_wave"),
                    format!("the wave must start within the {period_days} days of the period and last a day or more"),
                ));
            }
            fraction(src, flu.span(), &f("flu_wave.absent"), fl.absent)?;
            if !(0.0..=10.0).contains(&fl.extra_demand) {
                return Err(src.err(flu.span(), f("flu_wave.extra_demand"), "expected 0 to 10"));
            }
            case.flu = Some(FluWave {
                from_day: fl.from_day,
                until_day: (fl.from_day + fl.days).min(period_days),
                absent: fl.absent,
                extra_demand: fl.extra_demand,
            });
        }
        if let Some(d) = &v.demand_factor {
            if !(0.0..=10.0).contains(d.get_ref()) {
                return Err(src.err(d.span(), f("demand_factor"), "expected 0 to 10"));
            }
            case.requests_per_day *= d.get_ref();
        }
        case.network = Arc::new(net);
    }

    // Fairs.
    let touches_fairs = !v.fair_stalls.is_empty()
        || !v.add_fair.is_empty()
        || !v.fair_tiers.is_empty()
        || v.fair_mechanism.is_some()
        || v.fair_precedence.is_some();
    if touches_fairs {
        let Some((input, params)) = out.fairs.as_mut() else {
            return Err(absent(
                src,
                span,
                f("fairs"),
                "fairs (fairs.csv, applicants.csv)",
            ));
        };
        if let Some(m) = &v.fair_mechanism {
            params.mechanism = fair_mechanism(src, m, &f("fair_mechanism"))?;
        }
        if let Some(p) = &v.fair_precedence {
            params.precedence = fair_precedence(src, p, &f("fair_precedence"))?;
        }
        if !v.fair_stalls.is_empty() || !v.add_fair.is_empty() || !v.fair_tiers.is_empty() {
            let mut rows = FairRows::of(input);
            for s in &v.fair_stalls {
                let s_span = s.span();
                let s = s.get_ref();
                if let Some(fair) = &s.fair
                    && !rows.pools.iter().any(|p| &p.0 == fair.get_ref())
                {
                    return Err(src.err(
                        fair.span(),
                        f("fair_stalls.fair"),
                        format!("no fair '{}'", fair.get_ref()),
                    ));
                }
                let mut hit = false;
                for p in rows.pools.iter_mut() {
                    let fair_ok = s.fair.as_ref().is_none_or(|x| x.get_ref() == &p.0);
                    let cat_ok = s.category.as_ref().is_none_or(|x| x.get_ref() == &p.2);
                    if fair_ok && cat_ok {
                        hit = true;
                        p.3 = match (s.stalls, s.factor) {
                            (Some(n), None) => n,
                            (None, Some(x)) if x >= 0.0 => (f64::from(p.3) * x).round() as u32,
                            _ => {
                                return Err(src.err(
                                    s_span.clone(),
                                    f("fair_stalls"),
                                    "give exactly one of `stalls` (a number) or `factor` (0 or more)",
                                ));
                            }
                        };
                    }
                }
                if !hit {
                    let c = s.category.as_ref().expect("a fair always has pools");
                    return Err(src.err(
                        c.span(),
                        f("fair_stalls.category"),
                        format!("no stall pool of category '{}' there", c.get_ref()),
                    ));
                }
            }
            for a in &v.add_fair {
                let a_span = a.span();
                let a = a.get_ref();
                if rows.pools.iter().any(|p| &p.0 == a.fair.get_ref()) {
                    return Err(src.err(
                        a.fair.span(),
                        f("add_fair.fair"),
                        format!("fair '{}' exists already", a.fair.get_ref()),
                    ));
                }
                if !rows.pools.iter().any(|p| &p.0 == a.like.get_ref()) {
                    return Err(src.err(
                        a.like.span(),
                        f("add_fair.like"),
                        format!("no fair '{}'", a.like.get_ref()),
                    ));
                }
                let share = fraction(src, a_span.clone(), &f("add_fair.share"), a.share)?;
                if a.stalls.is_empty() {
                    return Err(src.err(
                        a_span,
                        f("add_fair.stalls"),
                        "give the stalls per category, e.g. { produce = 20, \"*\" = 5 }",
                    ));
                }
                for (category, &n) in &a.stalls {
                    rows.pools.push((
                        a.fair.get_ref().clone(),
                        a.district.clone(),
                        category.clone(),
                        n,
                    ));
                }
                // Applicants who listed the fair it is like list it too, just before it.
                for app in rows.applicants.iter_mut() {
                    if let Some(pos) = app.choices.iter().position(|c| c == a.like.get_ref())
                        && rng.random::<f64>() < share
                    {
                        app.choices.insert(pos, a.fair.get_ref().clone());
                    }
                }
            }
            for t in &v.fair_tiers {
                let t_span = t.span();
                let t = t.get_ref();
                if t.from > 2 || t.to > 2 {
                    return Err(src.err(t_span, f("fair_tiers"), "tiers are 0, 1 and 2"));
                }
                let share = fraction(src, t_span, &f("fair_tiers.share"), t.share)?;
                for app in rows.applicants.iter_mut() {
                    if app.tier == t.from && rng.random::<f64>() < share {
                        app.tier = t.to;
                    }
                }
            }
            *input = Arc::new(rows.build().map_err(|e| {
                src.err(
                    span.clone(),
                    f("fairs"),
                    format!("the changed fairs are not valid: {e}"),
                )
            })?);
        }
    }

    // Schools.
    let touches_schools = !v.open_school.is_empty()
        || !v.school_capacity.is_empty()
        || !v.school_reserves.is_empty()
        || v.school_mechanism.is_some()
        || v.tie_breaking.is_some()
        || v.reserve_order.is_some();
    if touches_schools {
        let Some((input, params)) = out.schools.as_mut() else {
            return Err(absent(
                src,
                span,
                f("schools"),
                "schools (schools.csv, students.csv, priorities.csv)",
            ));
        };
        if let Some(m) = &v.school_mechanism {
            params.mechanism = school_mechanism(src, m, &f("school_mechanism"))?;
        }
        if let Some(t) = &v.tie_breaking {
            params.tie_breaking = tie_breaking(src, t, &f("tie_breaking"))?;
        }
        if let Some(o) = &v.reserve_order {
            params.reserve_order = reserve_order(src, o, &f("reserve_order"))?;
        }
        if !v.open_school.is_empty()
            || !v.school_capacity.is_empty()
            || !v.school_reserves.is_empty()
        {
            let mut s = (**input).clone();
            let find =
                |s: &SchoolInput, id: &Spanned<String>, field: &str| -> Result<usize, Error> {
                    s.schools
                        .binary_search_by(|x| x.id.as_str().cmp(id.get_ref()))
                        .map_err(|_| {
                            src.err(id.span(), f(field), format!("no school '{}'", id.get_ref()))
                        })
                };
            for c in &v.school_capacity {
                let c_span = c.span();
                let c = c.get_ref();
                let targets: Vec<usize> = match &c.school {
                    Some(id) => vec![find(&s, id, "school_capacity.school")?],
                    None => (0..s.schools.len()).collect(),
                };
                for j in targets {
                    let cap = &mut s.schools[j].capacity;
                    *cap = match (c.capacity, c.factor) {
                        (Some(n), None) => n,
                        (None, Some(x)) if x >= 0.0 => (f64::from(*cap) * x).round() as u32,
                        _ => {
                            return Err(src.err(
                                c_span,
                                f("school_capacity"),
                                "give exactly one of `capacity` (a number) or `factor` (0 or more)",
                            ));
                        }
                    };
                }
            }
            for r in &v.school_reserves {
                let r_span = r.span();
                let r = r.get_ref();
                let share = fraction(src, r_span.clone(), &f("school_reserves.share"), r.share)?;
                let mut targets = Vec::new();
                for id in &r.schools {
                    targets.push(find(&s, id, "school_reserves.schools")?);
                }
                if let Some(every) = r.every {
                    targets.extend((0..s.schools.len()).step_by(every.max(1) as usize));
                }
                if targets.is_empty() {
                    return Err(src.err(
                        r_span,
                        f("school_reserves"),
                        "give `schools = [...]` or `every = N`",
                    ));
                }
                targets.sort_unstable();
                targets.dedup();
                for j in targets {
                    let seats = (f64::from(s.schools[j].capacity) * share).floor() as u32;
                    s.reserves
                        .retain(|x| !(x.school == j as u32 && x.class == r.class));
                    if seats > 0 {
                        s.reserves.push(school::Reserve {
                            school: j as u32,
                            class: r.class,
                            seats,
                        });
                    }
                }
                s.reserves.sort_unstable();
            }
            for o in &v.open_school {
                let o_span = o.span();
                let o = o.get_ref();
                if find(&s, &o.school, "open_school.school").is_ok() {
                    return Err(src.err(
                        o.school.span(),
                        f("open_school.school"),
                        format!("school '{}' exists already", o.school.get_ref()),
                    ));
                }
                let like = find(&s, &o.like, "open_school.like")? as u32;
                let share = fraction(src, o_span, &f("open_school.share"), o.share)?;
                s = open_school(&s, o.school.get_ref(), o.capacity, like, share, &mut rng);
            }
            if !s.reserves.is_empty() && !params.mechanism.supports_reserves() {
                return Err(src.err(
                    span,
                    f("school_mechanism"),
                    format!(
                        "{} does not support seat reserves (da, school-da and boston do)",
                        params.mechanism.name()
                    ),
                ));
            }
            *input = Arc::new(s);
        }
    }
    Ok(out)
}

/// A new school: students who list `like` list it too, just before, with probability `share`
/// (they live nearby); their priority there is their priority at `like`. Ids stay sorted.
fn open_school(
    s: &SchoolInput,
    id: &str,
    capacity: u32,
    like: u32,
    share: f64,
    rng: &mut ChaCha8Rng,
) -> SchoolInput {
    let at = s.schools.partition_point(|x| x.id.as_str() < id) as u32;
    let shift = |j: u32| if j >= at { j + 1 } else { j };
    let mut out = s.clone();
    out.schools.insert(
        at as usize,
        school::School {
            id: id.to_owned(),
            capacity,
        },
    );
    let class_at = |student: u32| {
        s.priorities
            .binary_search_by(|p| (p.school, p.student).cmp(&(like, student)))
            .ok()
            .map(|i| s.priorities[i].class)
    };
    let mut added = Vec::new();
    for (i, st) in out.students.iter_mut().enumerate() {
        let choices: Vec<u32> = st.choices.iter().map(|&j| shift(j)).collect();
        st.choices = choices;
        if let Some(pos) = st.choices.iter().position(|&j| j == shift(like))
            && rng.random::<f64>() < share
        {
            st.choices.insert(pos, at);
            if let Some(class) = class_at(i as u32) {
                added.push(school::Priority {
                    school: at,
                    student: i as u32,
                    class,
                });
            }
        }
    }
    for p in out.priorities.iter_mut() {
        p.school = shift(p.school);
    }
    out.priorities.extend(added);
    out.priorities.sort_unstable();
    for r in out.reserves.iter_mut() {
        r.school = shift(r.school);
    }
    out
}

/// A row of `fairs.csv`: `(fair, district, category, stalls)`.
type PoolRow = (String, String, String, u32);

/// A row of `applicants.csv`.
struct ApplicantRow {
    id: String,
    category: String,
    tier: u8,
    lottery: Option<u64>,
    /// Fair ids, best first.
    choices: Vec<String>,
}

/// A fair input as editable rows, rebuilt through the engine's reader, which checks and orders
/// them.
struct FairRows {
    pools: Vec<PoolRow>,
    applicants: Vec<ApplicantRow>,
}

impl FairRows {
    fn of(input: &FairInput) -> FairRows {
        FairRows {
            pools: input
                .pools
                .iter()
                .map(|p| {
                    let fair = &input.fairs[p.fair as usize];
                    (
                        fair.id.clone(),
                        fair.district.clone(),
                        p.category.clone(),
                        p.stalls,
                    )
                })
                .collect(),
            applicants: input
                .applicants
                .iter()
                .map(|a| ApplicantRow {
                    id: a.id.clone(),
                    category: a.category.clone(),
                    tier: a.tier,
                    lottery: a.lottery,
                    choices: a
                        .choices
                        .iter()
                        .map(|&c| input.fairs[c as usize].id.clone())
                        .collect(),
                })
                .collect(),
        }
    }

    fn build(&self) -> Result<FairInput, InputError> {
        let mut fairs = String::from("fair,district,category,stalls\n");
        for p in &self.pools {
            fairs += &format!("{},{},{},{}\n", p.0, p.1, p.2, p.3);
        }
        let lottery = self.applicants.iter().all(|a| a.lottery.is_some());
        let mut apps = String::from(if lottery {
            "applicant,category,tier,lottery,choices\n"
        } else {
            "applicant,category,tier,choices\n"
        });
        for a in &self.applicants {
            match a.lottery {
                Some(l) if lottery => {
                    apps += &format!(
                        "{},{},{},{l},{}\n",
                        a.id,
                        a.category,
                        a.tier,
                        a.choices.join(";")
                    )
                }
                _ => {
                    apps += &format!(
                        "{},{},{},{}\n",
                        a.id,
                        a.category,
                        a.tier,
                        a.choices.join(";")
                    )
                }
            }
        }
        let f = Table::from_bytes("fairs.csv", fairs.into_bytes())?;
        let a = Table::from_bytes("applicants.csv", apps.into_bytes())?;
        Ok(fair::read_tables(&f, &a)?.input)
    }
}

/// `round(n * share)` of `0..n`, drawn without replacement, in increasing order.
pub(crate) fn choose_share(rng: &mut ChaCha8Rng, n: usize, share: f64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(rng);
    all.truncate((n as f64 * share).round() as usize);
    all.sort_unstable();
    all
}
