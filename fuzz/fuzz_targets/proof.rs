#![no_main]
//! See `allot_engine::fuzz::proof`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_engine::fuzz::proof(data));
