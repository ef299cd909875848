//! The `allot` subcommands, one module each.

pub mod appointments;
pub mod audit;
pub mod mcf;
pub mod remote;
pub mod serve;
pub mod token;
