//! The city `allot serve --dev` loads into an empty data folder, so that a new user can call
//! every service at once: the appointment inventory of a generated city (Moscow at scale 1: 125
//! districts, 600 clinics, 30,000 doctors, 14 days from today), an open fair window (about 150
//! fairs, 20,000 applications) and an open school intake (1,000 schools, 100,000 students).
//!
//! [`generate_city`] is the one place that chooses the generator: the scenarios crate's
//! (`allot_scenarios::city`), the same city planners simulate.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use super::Domains;
use super::allocation::windows::Codes;
use super::allocation::{fairs, schools};
use super::local::InProcess;
use allot_engine::appointments::{Engine, EngineOptions, LocalTime, SystemClock, Zone};
use allot_engine::log::{Log, Timestamp};
use allot_scenarios::city::{CitySpec, generate};

/// The open fair window of the development city.
pub const DEV_FAIR_WINDOW: &str = "dev-fairs";
/// The open school intake of the development city.
pub const DEV_SCHOOL_WINDOW: &str = "dev-schools";
/// The actor of what the generator logs.
pub const DEV_ACTOR: &str = "allot-dev";
/// Days in the appointment horizon.
pub const DEV_DAYS: u32 = 14;

/// Why the development city could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("the generator made no clinics")]
    NoClinics,
    #[error("loading the city: {0}")]
    Load(#[from] allot_engine::appointments::Error),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the development windows: {0}")]
    Windows(String),
}

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
/// appointment horizon starts today, in Moscow time. The windows' applications are submitted
/// through the API (in process) without lottery numbers: they are drawn from a beacon when the
/// window runs.
pub fn generate_city(log: &Arc<Log>, scale: f64, seed: u64) -> Result<DevCity, DevError> {
    let city = generate(&CitySpec::scaled(seed, scale));
    let network = city.appointments.ok_or(DevError::NoClinics)?;
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
    let mut fair_messages = match &city.fairs {
        Some(input) => fairs::submissions(DEV_FAIR_WINDOW, input, &Codes::new()),
        None => Vec::new(),
    };
    fair_messages
        .iter_mut()
        .flat_map(|m| &mut m.applicants)
        .for_each(|a| a.lottery = None);
    let mut school_messages = match &city.schools {
        Some(input) => schools::submissions(DEV_SCHOOL_WINDOW, input, &Codes::new()),
        None => Vec::new(),
    };
    school_messages
        .iter_mut()
        .flat_map(|m| &mut m.students)
        .for_each(|s| s.lottery = None);
    let api = InProcess::new(log.clone(), Domains::default(), DEV_ACTOR);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DevError::Runtime)?;
    runtime
        .block_on(async {
            if !fair_messages.is_empty() {
                let stream = tokio_stream::iter(fair_messages);
                api.api().fairs().submit_applications(stream).await?;
            }
            if !school_messages.is_empty() {
                let stream = tokio_stream::iter(school_messages);
                api.api().schools().submit_applications(stream).await?;
            }
            Ok::<_, tonic::Status>(())
        })
        .map_err(|s| DevError::Windows(s.message().to_owned()))?;
    Ok(DevCity {
        clinics: network.clinics.len(),
        doctors: network.doctors.len(),
        slots: engine.schedule().slot_count(),
        domains: Domains {
            appointments: Some(engine),
        },
        fair_applicants: city.fairs.as_ref().map_or(0, |f| f.applicants.len()),
        school_students: city.schools.as_ref().map_or(0, |s| s.students.len()),
        example,
    })
}

/// What to try first on a server started with `--dev`, for a person at a terminal: `city` is the
/// development city's example, when the server generated one.
pub fn first_calls(
    url: &str,
    addr: SocketAddr,
    tls: bool,
    token: &str,
    city: Option<&Example>,
    fhir: Option<&str>,
) -> String {
    let mut out = String::new();
    let plain = if tls { "" } else { "-plaintext " };
    out.push('\n');
    let _ = writeln!(out, "First calls (in another terminal):");
    let _ = writeln!(out, "  export ALLOT_SERVER={url} ALLOT_TOKEN={token}");
    let _ = writeln!(
        out,
        "  grpcurl {plain}{addr} list                      # every service, by reflection"
    );
    let (specialty, lat, lon) = city.map_or(("therapist", 55.7558, 37.6173), |c| {
        (c.specialty.as_str(), c.lat, c.lon)
    });
    let _ = writeln!(
        out,
        "  grpcurl {plain}-H \"authorization: Bearer $ALLOT_TOKEN\" -d '{{\"patient\": {{\"id\": \"P1\", \"home\": {{\"lat\": {lat}, \"lon\": {lon}}}}}, \"specialty\": \"{specialty}\", \"count\": 3}}' {addr} allot.v1.Appointments/FindSlots"
    );
    let _ = writeln!(
        out,
        "  allot appointments find --specialty {specialty} --home {lat},{lon} --count 3"
    );
    let _ = writeln!(
        out,
        "  allot appointments book --patient P1 --slot SLOT_ID_FROM_FIND"
    );
    if city.is_some() {
        let _ = writeln!(
            out,
            "  allot fair run-window --window {} --beacon 00112233445566778899aabbccddeeff",
            DEV_FAIR_WINDOW
        );
        let _ = writeln!(
            out,
            "  allot school run-window --window {} --beacon 00112233445566778899aabbccddeeff",
            DEV_SCHOOL_WINDOW
        );
    }
    let _ = writeln!(out, "  allot audit checkpoint");
    if let Some(fhir) = fhir {
        let _ = writeln!(out, "FHIR (IHE Scheduling; see docs/fhir.md):");
        let _ = writeln!(out, "  curl -s {fhir}/metadata");
        let _ = writeln!(
            out,
            "  curl -s -H \"Authorization: Bearer $ALLOT_TOKEN\" -H 'Content-Type: application/fhir+json' -d '{{\"resourceType\": \"Parameters\", \"parameter\": [{{\"name\": \"specialty\", \"valueCoding\": {{\"code\": \"{specialty}\"}}}}, {{\"name\": \"patient-resource\", \"resource\": {{\"resourceType\": \"Patient\", \"id\": \"P1\", \"address\": [{{\"extension\": [{{\"url\": \"http://hl7.org/fhir/StructureDefinition/geolocation\", \"extension\": [{{\"url\": \"latitude\", \"valueDecimal\": {lat}}}, {{\"url\": \"longitude\", \"valueDecimal\": {lon}}}]}}]}}]}}}}, {{\"name\": \"_count\", \"valueInteger\": 3}}]}}' {fhir}/Appointment/\\$find"
        );
    }
    out
}
