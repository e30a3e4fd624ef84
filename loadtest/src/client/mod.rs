//! Minimal RFC 6455 client codec: the opening handshake and frames as a client sends and
//! receives them. Sans-I/O: bytes in, bytes out; the event loop in [`crate::driver`] owns the
//! sockets.

pub mod frame;
pub mod handshake;
