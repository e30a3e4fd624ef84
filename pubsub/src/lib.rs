//! Sans-I/O JSON pub/sub codec of ringcast (SPEC §5).
//!
//! Client text messages in, borrowed commands out; server envelopes out into a caller's buffer.
//! No sockets, threads or clocks: the worker calls this crate, never the other way round.

pub mod command;
pub mod envelope;
pub mod error;
