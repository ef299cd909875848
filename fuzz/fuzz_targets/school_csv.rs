#![no_main]
//! See `allot_engine::fuzz::school_csv`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_engine::fuzz::school_csv(data));
