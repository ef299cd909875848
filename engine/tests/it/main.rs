//! Integration tests of the engine (one test binary, as DEVELOPERS.md asks).

mod appointments;
mod appointments_durable;
mod appointments_rebalance;
mod backends;
mod crash;
mod decisions;
mod fair;
mod full_disk;
mod fuzz;
mod lock;
mod log;
mod postgres;
mod power_cut;
mod recovery;
mod school;
mod support;
mod tiles;
mod witness_power_cut;
