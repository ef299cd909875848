#![no_main]
//! See `allot_scenarios::fuzz::scenario_toml`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_scenarios::fuzz::scenario_toml(data));
