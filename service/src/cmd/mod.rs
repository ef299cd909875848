//! The `allot` subcommands, one module each.

pub mod mcf;
