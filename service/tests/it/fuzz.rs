//! The gRPC request fuzz target as an ordinary test: the committed seeds in
//! `fuzz/corpus/grpc_request/` and seeded mutations of them (see `allot_engine::fuzz::driver`).

use std::path::Path;

use allot_engine::fuzz::driver;

#[test]
fn grpc_request() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    assert!(root.join("fuzz_targets/grpc_request.rs").exists());
    driver::run(
        "grpc_request",
        allot_service::fuzz::grpc_request,
        &root.join("corpus/grpc_request"),
        driver::MUTATIONS / 2,
    );
    let _ = std::fs::remove_dir_all(allot_service::fuzz::scratch_dir());
}
