//! The city `allot serve --dev` loads into an empty data folder, so that a new user can call
//! every service at once: the appointment inventory of a generated city (Moscow at scale 1: 125
//! districts, 600 clinics, 30,000 doctors, 14 days from today), an open fair window (about 150
//! fairs, 20,000 applications) and an open school intake (1,000 schools, 100,000 students).
//!
//! [`generate_city`] is the one place that chooses the generator: the scenarios crate's
//! (`allot_scenarios::city`), the same city planners simulate.

use std::path::Path;
use std::sync::Arc;

use allot_engine::appointments::{Engine, EngineOptions, LocalTime, SystemClock, Zone};
use allot_engine::fair::{FairInput, Fairs};
use allot_engine::log::{Log, Timestamp};
use allot_engine::school::{SchoolInput, Schools};
use allot_scenarios::city::{CitySpec, generate};
use anyhow::Context;

use allot_service::server::Domains;
use allot_service::server::fairs::{ApplicantRow, FairChunk, PoolRow};
use allot_service::server::schools::{PriorityRow, SchoolChunk, SchoolRow, StudentRow};
use allot_service::server::state::data_dir;
use allot_service::server::validate::FieldPath;
use allot_service::server::windows::Windows;

/// The open fair window of the development city.
pub const DEV_FAIR_WINDOW: &str = "dev-fairs";
/// The open school intake of the development city.
pub const DEV_SCHOOL_WINDOW: &str = "dev-schools";
/// The actor of what the generator logs.
pub const DEV_ACTOR: &str = "allot-dev";
/// Days in the appointment horizon.
pub const DEV_DAYS: u32 = 14;

/// What [`generate_city`] made.
#[derive(Debug)]
pub struct DevCity {
    pub domains: Domains,
    pub clinics: usize,
    pub doctors: usize,
    pub slots: u32,
    pub fair_applicants: usize,
    pub school_students: usize,
    /// A specialty and a home location for a first `FindSlots`.
    pub example: Example,
}

/// The makings of a first call.
#[derive(Debug, Clone)]
pub struct Example {
    pub specialty: String,
    pub lat: f64,
    pub lon: f64,
}

/// Loads a generated city of `scale` (1 is Moscow) into the empty data folder of `log`; the
/// appointment horizon starts today, in Moscow time. The windows' applications carry no lottery
/// numbers: they are drawn from a beacon when the window runs.
pub fn generate_city(log: &Arc<Log>, scale: f64, seed: u64) -> anyhow::Result<DevCity> {
    let data = data_dir(log);
    let city = generate(&CitySpec::scaled(seed, scale));
    let network = city.appointments.context("the generator made no clinics")?;
    let today = LocalTime::from_timestamp(Timestamp::now(), &Zone::moscow()).date();
    let engine = Engine::create_with_log(
        log.clone(),
        &network.schedule_input(today, DEV_DAYS),
        b"doctor,from,until\n",
        DEV_ACTOR,
        EngineOptions::default(),
        Arc::new(SystemClock),
    )?;
    let clinic = &network.clinics[0];
    let example = Example {
        specialty: "therapist".to_owned(),
        lat: (clinic.location.lat * 1e4).round() / 1e4,
        lon: (clinic.location.lon * 1e4).round() / 1e4,
    };
    let fair_applicants = match &city.fairs {
        Some(input) => fairs(&data, input)?,
        None => 0,
    };
    let school_students = match &city.schools {
        Some(input) => schools(&data, input)?,
        None => 0,
    };
    Ok(DevCity {
        clinics: network.clinics.len(),
        doctors: network.doctors.len(),
        slots: engine.schedule().slot_count(),
        domains: Domains {
            appointments: Some(engine),
        },
        fair_applicants,
        school_students,
        example,
    })
}

/// The generated fairs as the open window [`DEV_FAIR_WINDOW`].
fn fairs(data: &Path, input: &FairInput) -> anyhow::Result<usize> {
    let chunk = FairChunk {
        pools: input
            .pools
            .iter()
            .map(|p| {
                let fair = &input.fairs[p.fair as usize];
                PoolRow {
                    fair: fair.id.clone(),
                    district: fair.district.clone(),
                    category: p.category.clone(),
                    stalls: p.stalls,
                }
            })
            .collect(),
        applicants: input
            .applicants
            .iter()
            .map(|a| ApplicantRow {
                id: a.id.clone(),
                category: a.category.clone(),
                tier: u32::from(a.tier),
                lottery: None,
                choices: a
                    .choices
                    .iter()
                    .map(|&f| input.fairs[f as usize].id.clone())
                    .collect(),
            })
            .collect(),
    };
    let windows: Windows<Fairs> = Windows::new(data);
    windows
        .submit(
            DEV_FAIR_WINDOW,
            &FieldPath::request().field("window"),
            chunk,
            Vec::new(),
        )
        .map_err(|s| anyhow::anyhow!("the development fair window: {}", s.message()))?;
    Ok(input.applicants.len())
}

/// The generated school places as the open intake [`DEV_SCHOOL_WINDOW`].
fn schools(data: &Path, input: &SchoolInput) -> anyhow::Result<usize> {
    let chunk = SchoolChunk {
        schools: input
            .schools
            .iter()
            .enumerate()
            .map(|(j, s)| SchoolRow {
                id: s.id.clone(),
                capacity: s.capacity,
                reserves: input
                    .reserves
                    .iter()
                    .filter(|r| r.school as usize == j)
                    .map(|r| (r.class, r.seats))
                    .collect(),
            })
            .collect(),
        students: input
            .students
            .iter()
            .map(|st| StudentRow {
                id: st.id.clone(),
                lottery: None,
                choices: st
                    .choices
                    .iter()
                    .map(|&j| input.schools[j as usize].id.clone())
                    .collect(),
            })
            .collect(),
        priorities: input
            .priorities
            .iter()
            .map(|p| PriorityRow {
                school: input.schools[p.school as usize].id.clone(),
                student: input.students[p.student as usize].id.clone(),
                priority: p.class,
            })
            .collect(),
    };
    let windows: Windows<Schools> = Windows::new(data);
    windows
        .submit(
            DEV_SCHOOL_WINDOW,
            &FieldPath::request().field("window"),
            chunk,
            Vec::new(),
        )
        .map_err(|s| anyhow::anyhow!("the development school window: {}", s.message()))?;
    Ok(input.students.len())
}
