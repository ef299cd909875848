//! The allot service: the gRPC API (`proto/allot/v1/*.proto`), the server behind `allot serve`,
//! and the client the `allot` CLI uses in remote mode (`--server`).
//!
//! - [`proto`]: the generated messages, services and clients, and the file descriptor set.
//! - [`rpc`]: what client and server share: the codec, field-path validation, connecting.
//! - [`render`]: answers as people read them (text, JSON, CSV), one printer per answer.
//! - [`server`]: configuration, tokens and roles, the gate every call passes (authentication,
//!   concurrency limit, deadlines, metrics, logs), the application state and the services.

#[doc(hidden)]
pub mod fuzz;
pub mod keys;
pub mod monitor;
pub mod process;
pub mod progress;
pub mod proto;
pub mod render;
pub mod rpc;
pub mod server;
pub mod witness;
