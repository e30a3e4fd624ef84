//! The server side of the Pusher Channels dialect (docs/pusher.md) that is not a session:
//! the apps of the configuration ([`apps`]) and the process-wide channel registry
//! ([`registry`]: subscriptions and presence members per channel, with the connections per
//! app in [`app_connections`] and the signed-in users in [`signins`]). The sessions live in
//! `session::pusher`; the protocol itself (parsing, writing, signatures) is the sans-I/O
//! crate `ringcast-pusher`.
//!
//! Imports nothing of this crate, so `config` and `shared` may import it.

pub mod app_connections;
pub mod apps;
pub mod cache;
pub mod channel;
pub mod liveness;
pub mod nodes;
pub mod registry;
pub mod shift;
pub mod signins;
