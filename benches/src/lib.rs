//! Shared helpers for allot's criterion benchmarks and side-by-side runners (see `benches/README.md`).

pub mod school_csv;
pub mod school_gen;
