//! Integration tests of allot-solvers (one test binary, as DEVELOPERS.md asks).

mod dimacs;
mod lp;
mod mcf;
mod support;
