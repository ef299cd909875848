//! The `allot` subcommands, one module each.

pub mod allocation;
pub mod audit;
pub mod fair;
pub mod mcf;
pub mod school;
