//! The city `allot serve --dev` loads into an empty data folder, so that a new user can call
//! every service at once: the appointment inventory of a generated city (Moscow at scale 1: 125
//! districts, 600 clinics, 30,000 doctors, 14 days from today), an open fair window and an open
//! school intake with generated applications.
//!
//! [`generate_city`] is the one place that chooses the generators: it uses the engine's
//! appointment city generator, and a small fair and school generator here.

use std::path::Path;
use std::sync::Arc;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::{Engine, EngineOptions, LocalTime, SystemClock, UtcOffset};
use allot_engine::fair::Fairs;
use allot_engine::log::{Log, Timestamp};
use allot_engine::school::Schools;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// What [`generate_city`] made.
#[derive(Debug)]
pub struct DevCity {
    pub domains: Domains,
    pub clinics: usize,
    pub doctors: usize,
    pub slots: u32,
    pub fair_applicants: usize,
    pub school_students: usize,
    /// A clinic, a specialty and a home location for a first `FindSlots`.
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
/// appointment horizon starts today, in Moscow time.
pub fn generate_city(log: &Arc<Log>, scale: f64, seed: u64) -> anyhow::Result<DevCity> {
    let data = data_dir(log);
    let today = LocalTime::from_timestamp(Timestamp::now(), UtcOffset::MOSCOW).date();
    let spec = CitySpec {
        first_day: today,
        ..CitySpec::scaled(seed, scale)
    };
    let city = City::generate(&spec);
    let engine = Engine::create_with_log(
        log.clone(),
        &data,
        &city.input(),
        b"doctor,from,until\n",
        DEV_ACTOR,
        EngineOptions::default(),
        Arc::new(SystemClock),
    )?;
    let clinic = &city.clinics[0];
    let example = Example {
        specialty: "therapist".to_owned(),
        lat: (clinic.location.lat * 1e4).round() / 1e4,
        lon: (clinic.location.lon * 1e4).round() / 1e4,
    };
    let districts: Vec<String> = city.districts.iter().map(|d| d.id.clone()).collect();
    let fair_applicants = fairs(&data, &districts, scale, seed)?;
    let school_students = schools(&data, scale, seed)?;
    Ok(DevCity {
        clinics: city.clinics.len(),
        doctors: city.doctors.len(),
        slots: engine.schedule().slot_count(),
        domains: Domains {
            appointments: Some(engine),
        },
        fair_applicants,
        school_students,
        example,
    })
}

const CATEGORIES: [&str; 6] = ["vegetables", "fruit", "dairy", "meat", "honey", "crafts"];

/// Weekend fairs: about 15,000 stalls and 20,000 applications at scale 1, in an open window.
fn fairs(data: &Path, districts: &[String], scale: f64, seed: u64) -> anyhow::Result<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa1e);
    let fairs = ((250.0 * scale).round() as usize).max(3);
    let applicants = ((20_000.0 * scale).round() as usize).max(20);
    let mut chunk = FairChunk::default();
    for f in 0..fairs {
        let fair = format!("F{:04}", f + 1);
        let district = districts[f % districts.len()].clone();
        for category in CATEGORIES.iter().chain(&["*"]) {
            chunk.pools.push(PoolRow {
                fair: fair.clone(),
                district: district.clone(),
                category: (*category).to_owned(),
                stalls: rng.random_range(1..18),
            });
        }
    }
    for a in 0..applicants {
        let n = rng.random_range(1..6usize).min(fairs);
        let mut choices: Vec<String> = Vec::with_capacity(n);
        while choices.len() < n {
            let c = format!("F{:04}", rng.random_range(0..fairs) + 1);
            if !choices.contains(&c) {
                choices.push(c);
            }
        }
        chunk.applicants.push(ApplicantRow {
            id: format!("A{:05}", a + 1),
            category: CATEGORIES[rng.random_range(0..CATEGORIES.len())].to_owned(),
            tier: rng.random_range(0..3),
            lottery: None,
            choices,
        });
    }
    let windows: Windows<Fairs> = Windows::new(data);
    windows
        .submit(
            DEV_FAIR_WINDOW,
            &FieldPath::request().field("window"),
            chunk,
            Vec::new(),
        )
        .map_err(|s| anyhow::anyhow!("the development fair window: {}", s.message()))?;
    Ok(applicants)
}

/// A school intake: about 80,000 students and 1,000 schools at scale 1 (NYC's size), with
/// sibling (class 0) and district (class 1) priorities, in an open window.
fn schools(data: &Path, scale: f64, seed: u64) -> anyhow::Result<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5c001);
    let schools = ((1_000.0 * scale).round() as usize).max(5);
    let students = ((80_000.0 * scale).round() as usize).max(50);
    let mut chunk = SchoolChunk::default();
    for s in 0..schools {
        chunk.schools.push(SchoolRow {
            id: format!("SCH{:04}", s + 1),
            capacity: rng.random_range(40..120),
            reserves: Vec::new(),
        });
    }
    for st in 0..students {
        let id = format!("S{:06}", st + 1);
        let home = rng.random_range(0..schools);
        let n = rng.random_range(1..13usize).min(schools);
        let mut choices: Vec<usize> = vec![home];
        while choices.len() < n {
            // Mostly nearby schools (by number), sometimes anywhere.
            let c = if rng.random_range(0..4) == 0 {
                rng.random_range(0..schools)
            } else {
                (home + rng.random_range(1..20)) % schools
            };
            if !choices.contains(&c) {
                choices.push(c);
            }
        }
        let school_id = |c: usize| format!("SCH{:04}", c + 1);
        chunk.priorities.push(PriorityRow {
            school: school_id(home),
            student: id.clone(),
            priority: if rng.random_range(0..10) == 0 { 0 } else { 1 },
        });
        chunk.students.push(StudentRow {
            id,
            lottery: None,
            choices: choices.into_iter().map(school_id).collect(),
        });
    }
    let windows: Windows<Schools> = Windows::new(data);
    windows
        .submit(
            DEV_SCHOOL_WINDOW,
            &FieldPath::request().field("window"),
            chunk,
            Vec::new(),
        )
        .map_err(|s| anyhow::anyhow!("the development school window: {}", s.message()))?;
    Ok(students)
}
