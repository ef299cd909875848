//! What can go wrong with an appointment operation, each with what the caller needs to act on it
//! (a taken slot comes with fresh proposals).

use std::path::PathBuf;

use super::find::Proposal;
use super::state::SlotStatus;
use crate::input::InputError;
use crate::log::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] InputError),

    #[error("decision log: {0}")]
    Log(#[from] Box<crate::log::Error>),

    #[error(
        "no schedule is loaded in {}: load the city's clinics and doctors first \
         (allot appointments load)",
        .0.display()
    )]
    NotLoaded(PathBuf),

    #[error(
        "a schedule is already loaded in {} (input {digest}); use another data folder for another city",
        dir.display()
    )]
    AlreadyLoaded { dir: PathBuf, digest: String },

    /// A request field is wrong (named as its path in the request, e.g. `specialty`).
    #[error("{field}: {problem}")]
    BadRequest {
        field: &'static str,
        problem: String,
    },

    #[error(
        "slot {slot} is taken ({}); {} other proposals attached",
        status.fhir(),
        alternatives.len()
    )]
    SlotTaken {
        slot: String,
        status: SlotStatus,
        alternatives: Vec<Proposal>,
    },

    #[error("slot {slot} has already started; {} other proposals attached", alternatives.len())]
    SlotStarted {
        slot: String,
        alternatives: Vec<Proposal>,
    },

    #[error("patient {patient} already has slot {other}, which overlaps {slot}")]
    Overlap {
        patient: String,
        slot: String,
        other: String,
    },

    #[error("no hold {0}: it was never made, or it ended (booked, released or expired)")]
    UnknownHold(String),

    #[error(
        "hold {hold} expired at {expires}; slot {slot} is free again; {} other proposals attached",
        alternatives.len()
    )]
    HoldExpired {
        hold: String,
        slot: String,
        expires: Timestamp,
        alternatives: Vec<Proposal>,
    },

    #[error("no appointment {0}")]
    UnknownAppointment(String),

    #[error("appointment {id} is {status}; this needs it {expected}")]
    WrongStatus {
        id: String,
        status: &'static str,
        expected: &'static str,
    },

    #[error(
        "the appointment engine stopped after a decision-log failure ({0}); \
         reopen it to rebuild the inventory from the log"
    )]
    Failed(String),

    /// A replica that follows was asked to decide (nothing changed; the engine goes on).
    #[error("{0}")]
    NotLeader(String),

    #[error("snapshot {}: {reason}", path.display())]
    Snapshot { path: PathBuf, reason: String },

    #[error("rebuilding the inventory from the decision log: entry {index}: {reason}")]
    Replay { index: u64, reason: String },

    #[error("snapshots need the durable decision log (this engine runs on another sink)")]
    NotDurable,

    #[error("the optimiser: {0}")]
    Solver(#[from] allot_solvers::mcf::McfError),

    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::log::Error> for Error {
    fn from(e: crate::log::Error) -> Self {
        Error::Log(Box::new(e))
    }
}

impl Error {
    /// Fresh proposals carried by a "slot taken", "started" or "hold expired" answer.
    pub fn alternatives(&self) -> &[Proposal] {
        match self {
            Error::SlotTaken { alternatives, .. }
            | Error::SlotStarted { alternatives, .. }
            | Error::HoldExpired { alternatives, .. } => alternatives,
            _ => &[],
        }
    }

    pub(crate) fn bad(field: &'static str, problem: impl Into<String>) -> Error {
        Error::BadRequest {
            field,
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
