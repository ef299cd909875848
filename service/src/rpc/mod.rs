//! What the client and the server share.

pub mod allocation;
pub mod client;
pub mod codec;
pub mod session;
