//! Shared helpers for allot's criterion benchmarks (see `benches/README.md`).

pub mod mcf_gen;
