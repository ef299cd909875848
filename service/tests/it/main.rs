//! Integration tests of the `allot` binary (one test binary, modules per command).

mod appointments;
mod audit;
mod bad_input;
mod crash;
mod fair;
mod fuzz;
mod mcf;
mod power_cut;
mod replicas;
mod school;
mod server;
mod simulate;
