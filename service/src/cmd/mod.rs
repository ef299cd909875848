//! The `allot` subcommands, one module each.

pub mod appointments;
pub mod audit;
pub mod mcf;
