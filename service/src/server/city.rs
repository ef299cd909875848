//! The commands that work only on a data folder's appointments (`allot appointments load`,
//! `snapshot`, `expire`): the engine opened or created there, on the CLI's clock.

use std::path::Path;
use std::sync::Arc;

use allot_engine::appointments::generate::{City, CitySpec};
use allot_engine::appointments::{
    Date, Engine, EngineOptions, Error, LocalTime, ManualClock, ScheduleInput, Zone,
};
use allot_engine::log::Timestamp;

/// The files of a city to load, and its horizon.
#[derive(Debug)]
pub struct CityFiles<'a> {
    pub clinics: &'a Path,
    pub doctors: &'a Path,
    pub absences: Option<&'a Path>,
    pub first: Date,
    pub days: u32,
    pub zone: Zone,
}

/// Loads a city into the data folder `data` (decisions logged as `actor`, at `now`).
pub fn load(
    data: &Path,
    files: CityFiles<'_>,
    actor: &str,
    now: Option<LocalTime>,
) -> Result<Engine, Error> {
    let CityFiles { first, days, .. } = files;
    let zone = files.zone.clone();
    let input = ScheduleInput::read(files.clinics, files.doctors, first, days, zone)?;
    let clock = Arc::new(ManualClock::new(match now {
        Some(t) => t.to_timestamp(&files.zone),
        None => Timestamp::now(),
    }));
    let options = EngineOptions::default();
    Engine::create_from_files(data, &input, files.absences, actor, options, clock)
}

/// The engine on the data folder with its clock at `now` (or the real time); what rebuilding
/// the inventory noticed goes to `warn`.
pub fn open_engine(
    data: &Path,
    now: Option<LocalTime>,
    warn: &mut dyn FnMut(&str),
) -> Result<Engine, Error> {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let (engine, report) = Engine::open(data, EngineOptions::default(), clock.clone())?;
    report.warnings.iter().for_each(|w| warn(w));
    if let Some(t) = now {
        clock.set(t.to_timestamp(&engine.schedule().zone));
    }
    Ok(engine)
}

/// `allot appointments generate`: a synthetic city of `scale` (0 to 4 times Moscow) from `seed`,
/// its horizon from `first` (default: today in Moscow) for `days`, written into `out` with
/// `requests` referrals and `absences` absences.
pub fn generate(
    out: &Path,
    (scale, seed, first, days): (f64, u64, Option<Date>, u32),
    requests: usize,
    absences: usize,
) -> Result<City, String> {
    if !(scale > 0.0 && scale <= 4.0) {
        return Err(format!(
            "--scale: expected a number in (0, 4], found {scale}"
        ));
    }
    let first = first
        .unwrap_or_else(|| LocalTime::from_timestamp(Timestamp::now(), &Zone::moscow()).date());
    let spec = CitySpec {
        first_day: first,
        days,
        ..CitySpec::scaled(seed, scale)
    };
    let city = City::generate(&spec);
    (city.write_files(out, seed, requests, absences))
        .map_err(|e| format!("writing the city into {}: {e}", out.display()))?;
    Ok(city)
}
