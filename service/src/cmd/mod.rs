//! The `allot` subcommands, one module each.

pub mod allocation;
pub mod appointments;
pub mod audit;
pub mod dev;
pub mod fair;
pub mod mcf;
pub mod remote;
pub mod school;
pub mod serve;
pub mod simulate;
pub mod token;
