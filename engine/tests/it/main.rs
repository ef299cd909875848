//! Integration tests of the engine (one test binary, as DEVELOPERS.md asks).

mod crash;
mod decisions;
mod fair;
mod lock;
mod log;
mod recovery;
mod school;
mod support;
