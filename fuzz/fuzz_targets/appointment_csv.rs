#![no_main]
//! See `allot_engine::fuzz::appointment_csv`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_engine::fuzz::appointment_csv(data));
