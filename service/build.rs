//! Compiles `proto/allot/v1/*.proto` with protox (no system `protoc`): Rust types and tonic
//! services with tonic-prost-build, and the encoded file descriptor set (with comments) that the
//! reflection service serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from("proto/allot/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "proto"));
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("allot_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::rpc::codec::ProtoCodec")
        // Ordered maps: a run's parameters encode the same way every time (retries compare
        // encoded answers) and print in order.
        .btree_map(".")
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
