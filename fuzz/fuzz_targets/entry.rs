#![no_main]
//! See `allot_engine::fuzz::entry`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_engine::fuzz::entry(data));
