//! Allocation algorithms on integer ids: min-cost flow, matching mechanisms and LP models.
//!
//! This crate knows nothing of clinics, fairs or schools, and does no I/O except reading and writing
//! the solver file formats (DIMACS).

pub mod dimacs;
pub mod matching;
pub mod mcf;
