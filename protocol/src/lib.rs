//! Sans-I/O RFC 6455 core of ringcast.
//!
//! Bytes in, events out; frames out into a caller's buffer. This crate knows nothing of sockets,
//! threads or clocks, so the server can drive it from io_uring completions and the fuzzers and
//! benchmarks can drive it from plain slices.

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::CloseCode;
pub use error::ProtocolError;
pub use frame::{Decoder, DecoderConfig, Event, OpCode};
