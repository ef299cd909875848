//! The generated code of `proto/allot/v1/*.proto` (package `allot.v1`).

/// Package `allot.v1`: messages, `<service>_server` and `<service>_client` modules.
#[allow(
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    missing_debug_implementations,
    rustdoc::all
)]
pub mod v1 {
    tonic::include_proto!("allot.v1");
}

/// The encoded `FileDescriptorSet` of the API (with the well-known types it imports and the
/// comments), served by the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/allot_descriptor.bin"));
