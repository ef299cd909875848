//! The `allot` subcommands, one module each.

pub mod audit;
pub mod mcf;
