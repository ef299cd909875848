//! The allot engine: the domain (appointments, fairs, schools), validation, and the decision log
//! that every decision is written to and that state is rebuilt from.
//!
//! This crate does no network I/O. See [`log`] for the tamper-evident decision log.

pub mod allocation;
pub mod appointments;
pub mod blobs;
pub mod fair;
pub mod fs;
#[doc(hidden)]
pub mod fuzz;
pub mod input;
pub mod log;
pub mod school;
pub mod witness;
