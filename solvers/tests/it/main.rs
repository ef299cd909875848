//! Integration tests of allot-solvers: one binary, one module per area.

mod dimacs;
mod lp;
mod matching;
mod mcf;
mod reserves;
mod support;
