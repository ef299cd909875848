//! A data folder opened to be served: its decision log (what opening it noticed goes to the
//! logs), and the domains' state rebuilt from it, or on an empty folder in development mode a
//! generated city. `allot serve` starts from here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use allot_engine::log::{self, Log, LogOptions};

use super::Domains;
use super::dev::{self, DevError, Example};
use crate::rpc::session::open_notes;

/// What [`open`] made.
#[derive(Debug)]
pub struct Opened {
    pub log: Arc<Log>,
    pub domains: Domains,
    /// The makings of a first call, when a development city was generated.
    pub dev_example: Option<Example>,
}

/// Why a data folder could not be opened to be served.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the decision log in {}", dir.display())]
    Log {
        dir: PathBuf,
        #[source]
        source: log::Error,
    },
    #[error("reopening the appointments of {}", dir.display())]
    Appointments {
        dir: PathBuf,
        #[source]
        source: allot_engine::appointments::Error,
    },
    #[error(transparent)]
    Dev(#[from] DevError),
}

/// Opens `data` for writing; with `dev_scale`, an empty folder first gets a generated city of
/// that scale (see [`dev::generate_city`]).
pub fn open(
    data: &Path,
    dev_scale: Option<f64>,
    signing_key: Option<log::SigningKey>,
) -> Result<Opened, OpenError> {
    let dir = data.to_owned();
    let options = LogOptions {
        signing_key,
        ..LogOptions::default()
    };
    let log = Log::open(data, options).map_err(|source| OpenError::Log {
        dir: dir.clone(),
        source,
    })?;
    for note in open_notes(log.report()) {
        tracing::warn!("{note}");
    }
    tracing::info!(data = %data.display(), entries = log.size(), origin = log.origin(), "decision log open");
    let log = Arc::new(log);
    let started = std::time::Instant::now();
    if let Some(scale) = dev_scale.filter(|_| log.size() == 0) {
        tracing::info!(scale, "empty data folder: generating a city (--dev)");
        let city = dev::generate_city(&log, scale, 1)?;
        tracing::info!(
            clinics = city.clinics,
            doctors = city.doctors,
            slots = city.slots,
            fair_applicants = city.fair_applicants,
            school_students = city.school_students,
            seconds = started.elapsed().as_secs_f64(),
            "generated city loaded"
        );
        return Ok(Opened {
            log,
            domains: city.domains,
            dev_example: Some(city.example),
        });
    }
    let domains = Domains::open(&log).map_err(|source| OpenError::Appointments { dir, source })?;
    Ok(Opened {
        log,
        domains,
        dev_example: None,
    })
}
