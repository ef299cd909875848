#![no_main]
//! See `allot_engine::fuzz::fair_csv`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_engine::fuzz::fair_csv(data));
