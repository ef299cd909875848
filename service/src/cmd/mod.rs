//! The `allot` subcommands, one module each.

pub mod allocation;
pub mod api;
pub mod appointments;
pub mod audit;
pub mod fair;
pub mod mcf;
pub mod school;
pub mod serve;
pub mod simulate;
pub mod store;
pub mod token;
pub mod witness;
