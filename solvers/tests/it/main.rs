//! Integration tests of allot-solvers: one binary, one module per area.

mod matching;
mod reserves;
