#![no_main]
//! See `allot_engine::fuzz::dimacs`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_engine::fuzz::dimacs(data));
