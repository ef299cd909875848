//! Appointments for UMIAS: clinics, doctors and slots over a planning horizon, and the
//! operations of the IHE scheduling profile on them — `$find` (ranked proposals across clinics),
//! `$hold`, `$book`, cancel, reschedule — plus doctors' absences with re-offers and batch
//! re-balancing of queued referrals by min-cost flow.
//!
//! - [`schedule`]: the fixed structure (clinics, districts, doctors, weekly templates) and the
//!   implicit slot layout; [`inputs`] reads it from CSV with file:line:field errors.
//! - [`Engine`]: the live inventory (a status byte per slot, records only for non-free slots),
//!   every change a decision sent to a [`DecisionSink`] — the decision log, or memory for
//!   simulations. Durable engines are created from CSVs and reopened from the log (with
//!   snapshots) by [`Engine::create`] and [`Engine::open`].
//! - [`Engine::mark_absence`]: a doctor's absence, his patients re-offered together by min-cost
//!   flow over `$find`'s proposals.
//! - [`find`]: the ranking; [`rebalance`]: the batch optimiser; [`generate`]: synthetic cities;
//!   [`simulate`]: the month that compares the ranking with "nearest clinic, earliest slot".
//!
//! Every operation has a blocking form (`hold`, `book`, ...) and a `begin_` form returning a
//! [`Pending`] to `.await`: the change is made in memory under fine-grained locks, its decisions
//! queued to the log, and the answer given once they are durable.

mod absence;
mod booking;
mod change;
mod clock;
mod engine;
mod error;
pub mod find;
pub mod generate;
mod ids;
pub mod inputs;
mod nearest;
mod pending;
mod persist;
pub mod rebalance;
pub mod schedule;
pub mod simulate;
mod sink;
mod state;
pub mod time;

pub use absence::{AbsenceOutcome, ReOffer};
pub use booking::{Booked, Booking, Held, Moved};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{AppointmentView, Engine, EngineOptions, FindRequest, HoldView, MemoryReport};
pub use error::{Error, Result};
pub use find::{FindQuery, Only, Proposal, Score, Weights};
pub use ids::{AppointmentId, HoldId};
pub use inputs::{AbsenceRow, Request, ScheduleInput};
pub use pending::{Pending, WithEntries};
pub use persist::{OpenReport, SnapshotInfo};
pub use schedule::{
    ClinicRef, DistrictRef, DoctorRef, Location, Schedule, SlotInfo, SlotRef, SpecialtyRef,
};
pub use sink::{Ack, DecisionSink, DiscardSink, MemorySink};
pub use state::{AppointmentStatus, SlotStatus, StatusCounts};
pub use time::{Date, LocalTime, Zone};
