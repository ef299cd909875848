//! What the client and the server share.

pub mod client;
pub mod codec;
