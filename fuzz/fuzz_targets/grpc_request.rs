#![no_main]
//! See `allot_service::fuzz::grpc_request`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| allot_service::fuzz::grpc_request(data));
