//! The Pusher Channels dialect (docs/pusher.md): a connection upgraded at
//! `{--pusher-path-prefix}/app/{key}?protocol=7…` ([`upgrade`]), then one protocol 7 JSON
//! event per text message (`ringcast_pusher::message`).
//!
//! A Pusher channel is the fan-out topic `#pusher/{app_id}/{channel}`; a subscriber is a
//! member of class `Raw`, and every channel event (a client event, `member_added`,
//! `member_removed`, an HTTP API publish) is published into that room as the finished
//! Pusher text frame, so it is encoded once per turn for every receiver on every core and
//! rides the cluster bus unchanged. The sender of an event never gets it back (no `--echo`
//! for this dialect, `fanout::Fanout::flush_batches`).
//!
//! Subscriptions are in [`channels`] (a cache channel's answer in [`cache`]), client events
//! and signin in [`events`], its watchlist in [`watchlist`].

pub mod cache;
pub mod calls;
pub mod channels;
mod count;
pub mod demo;
pub mod events;
pub mod http;
pub mod upgrade;
pub mod watchlist;

use std::cell::RefCell;
use std::sync::Arc;

use ringcast_protocol::frame::{MessageKind, OpCode};
use ringcast_protocol::{CloseCode, Decoder};
use ringcast_pubsub::presence::ClientId;
use ringcast_pusher::app::{self, App, ClientEventBudget};
use ringcast_pusher::channel::Kind;
use ringcast_pusher::error::ErrorCode;
use ringcast_pusher::message::{ClientMessage, Parser};
use ringcast_pusher::socket_id::SocketId;
use ringcast_pusher::write;

use crate::rooms::SharedRoom;
use crate::rooms::local::Slot;
use crate::session::messages;
use crate::session::sink::Sink;

thread_local! {
    /// The worker's parser (one worker per thread): buffers reused across messages.
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// One subscribed channel.
struct Sub {
    /// The channel name as the client wrote it.
    channel: Box<str>,
    /// Its kind.
    kind: Kind,
    room: Arc<SharedRoom>,
    slot: Slot,
    /// The presence user this subscription made a member (presence channels).
    member: Option<Box<str>>,
    /// Its count changes are announced (`count`: the app counts subscriptions, and it is not
    /// a presence channel).
    counted: bool,
}

/// A connection speaking the Pusher dialect.
pub struct PusherSession {
    decoder: Box<Decoder>,
    conn: Conn,
}

/// A Pusher connection's state apart from its decoder (which lends out the message being
/// handled).
struct Conn {
    /// The app's id (looked up again per use: apps are fixed for the process's life).
    app_id: Box<str>,
    socket_id: SocketId,
    /// `socket_id` as text: part of every signature checked for this connection.
    socket_text: Box<str>,
    client: ClientId,
    subs: Vec<Sub>,
    budget: ClientEventBudget,
    /// The user of a successful `pusher:signin`.
    user: Option<Box<str>>,
    /// [`user_key`] of `user`: what orders (`terminate_connections`) name it by.
    user_key: Option<Box<str>>,
    /// The registry and the app's connection count no longer count this connection.
    released: bool,
    /// It negotiated permessage-deflate: its channel memberships get the compressed form.
    deflate: bool,
    /// Cache channel answers asked of Redis and not back yet (`cache`).
    cache_asks: u8,
    /// Memberships of the watched users' topics ([`watchlist`]).
    watching: Vec<(Arc<SharedRoom>, Slot)>,
}

impl PusherSession {
    /// Bytes the decoder holds for an unfinished message.
    pub fn pending_bytes(&self) -> usize {
        self.decoder.pending_bytes()
    }

    /// This connection's cluster-unique client id.
    pub fn client(&self) -> &ClientId {
        &self.conn.client
    }

    /// The signed-in user as [`user_key`] names it (apps apart from each other and from
    /// the tokens' `sub` of the other dialects), if any.
    pub fn user(&self) -> Option<&str> {
        self.conn.user_key.as_deref()
    }

    /// Where this connection sits in local room `room_id`.
    pub fn slot_mut(&mut self, room_id: u64) -> Option<&mut Slot> {
        let channels = (self.conn.subs.iter_mut()).map(|s| (&s.room, &mut s.slot));
        let watched = (self.conn.watching.iter_mut()).map(|(room, slot)| (&*room, slot));
        (channels.chain(watched))
            .find(|(room, _)| room.id == room_id)
            .map(|(_, slot)| slot)
    }

    /// Every subscription's room and slot, to leave them (after [`Self::release`]).
    pub fn into_memberships(self) -> Vec<(Arc<SharedRoom>, Slot)> {
        let channels = self.conn.subs.into_iter().map(|s| (s.room, s.slot));
        channels.chain(self.conn.watching).collect()
    }

    /// Decodes `data` and handles every event, until the data ends or the session closes.
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) {
        let conn = &mut self.conn;
        messages::feed(
            &mut self.decoder,
            data,
            sink,
            |kind, payload, sink| match kind {
                MessageKind::Text => conn.message(payload, sink),
                MessageKind::Binary => error(sink, None, "binary frames are not Pusher events"),
            },
        );
    }

    /// The answer to a cache channel subscribe this connection asked of Redis: `payload`
    /// (an event, or `pusher:cache_miss`) into the place `hold` keeps for it.
    pub fn cache_filled(
        &mut self,
        hold: crate::conn::outq::HoldId,
        payload: &[u8],
        sink: &mut Sink<'_>,
    ) {
        self.conn.cache_filled(hold, payload, sink);
    }

    /// The connection ends: it no longer counts in the Pusher registry or its app's
    /// connections; returns the `member_removed` events to publish before its memberships
    /// are left. Idempotent.
    pub fn release(
        &mut self,
        registry: &crate::pusher::registry::Registry,
        webhooks: &crate::webhooks::Webhooks,
    ) -> Vec<channels::Farewell> {
        self.conn.release(registry, webhooks)
    }
}

impl Conn {
    fn message(&mut self, text: &[u8], sink: &mut Sink<'_>) {
        let parsed = PARSER.with(|p| p.borrow_mut().parse(text));
        let message = match parsed {
            Ok(m) => m,
            // A bad event is answered and affects nothing else (issue 24 item 5).
            Err(e) => return error(sink, None, &e.to_string()),
        };
        let Some(app) = app(sink, &self.app_id) else {
            return;
        };
        match message {
            ClientMessage::Ping => {
                let mut out = Vec::with_capacity(40);
                write::pong(&mut out);
                sink.reply_frame(OpCode::Text, &out);
            }
            ClientMessage::Pong | ClientMessage::OtherSystem { .. } => {}
            ClientMessage::Subscribe(s) => self.subscribe(app, &s, sink),
            ClientMessage::Unsubscribe { channel } => self.unsubscribe(app, &channel, sink),
            ClientMessage::Signin { auth, user_data } => {
                self.signin(app, &auth, &user_data, sink);
            }
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(app, &event, &channel, &data, sink),
        }
    }
}

/// How the connections of Pusher user `user` of app `app_id` are named in orders:
/// `#pusher/{app_id}/{user}`, which no token `sub` of another app or dialect can be
/// confused with.
pub fn user_key(app_id: &str, user: &str) -> String {
    app::topic(app_id, user)
}

/// The app `id` of the configuration (`None` only if the dialect is off, which a session of
/// it cannot see).
fn app<'a>(sink: &Sink<'a>, id: &str) -> Option<&'a App> {
    sink.config().pusher.as_deref().and_then(|a| a.by_id(id))
}

/// Queues a `pusher:error` (the connection stays open).
fn error(sink: &mut Sink<'_>, code: Option<ErrorCode>, message: &str) {
    let mut out = Vec::with_capacity(64 + message.len());
    match code {
        Some(c) => write::error_code(&mut out, c),
        None => write::error(&mut out, None, message),
    }
    sink.reply_frame(OpCode::Text, &out);
}

/// The Close frame's code and reason for a documented `code`.
pub fn close_code(code: ErrorCode) -> (CloseCode, &'static str) {
    (CloseCode(code.code()), code.message())
}

/// `pusher:error` with `code`, then Close with `code` and its documented message.
fn close_with(sink: &mut Sink<'_>, code: ErrorCode) {
    error(sink, Some(code), "");
    sink.close(Some(CloseCode(code.code())), code.message().to_owned());
}
