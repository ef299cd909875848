//! What the client and the server share.

pub mod codec;
