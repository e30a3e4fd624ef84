//! ringcast's pub/sub layer without I/O (docs/pubsub.md, docs/tokens.md): JSON commands in, envelopes out, topic
//! history, presence and token auth.
//!
//! No sockets, threads or clocks: the worker calls this crate, never the other way round.

pub mod auth;
pub mod command;
pub mod envelope;
pub mod error;
pub mod history;
mod json_gaps;
pub mod presence;
