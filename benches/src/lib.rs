//! Shared helpers for allot's criterion benchmarks (see `benches/README.md`).
