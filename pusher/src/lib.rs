//! The Pusher Channels dialect of ringcast without I/O (issue 24): apps and the upgrade path,
//! protocol 7 events parsed and written, channel kinds with the channel and user auth
//! signatures, the signed HTTP API and webhook bodies.
//!
//! No sockets, threads or clocks: the server calls this crate (the current time is always an
//! argument), never the other way round. What each call is for, in the order a connection
//! meets them:
//!
//! - at the upgrade: [`upgrade::UpgradePath::parse`] names the [`app::App`] and the protocol,
//!   or the close code to answer with; [`socket_id::SocketId`] then
//!   [`write::connection_established`];
//! - per text message: [`message::Parser::parse`] then, by kind, [`channel::Channel::parse`],
//!   [`auth::verify_channel`] / [`auth::verify_user`], [`presence::parse_channel_data`] and
//!   the writers of [`mod@write`];
//! - for the HTTP API: [`http_api::route`], [`http_api::authenticate`], the body parsers and
//!   the query checks and answer writers of [`http_answer`];
//! - for webhooks: [`webhook::body`] and [`webhook::signature`].

pub mod app;
pub mod auth;
pub mod channel;
pub mod error;
pub mod hex;
pub mod http_answer;
pub mod http_api;
pub mod json;
pub mod message;
pub mod presence;
pub mod query;
pub mod socket_id;
pub mod upgrade;
pub mod webhook;
pub mod write;

#[cfg(test)]
mod tests;
