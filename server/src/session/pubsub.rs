//! Pub/sub mode (docs/pubsub.md#requests): each text message is one JSON request, parsed with the worker's
//! reused simd-json [`Parser`] (zero allocations once warm); subscriptions are memberships of
//! class `Json` / `JsonPresence` in the shared namespace of rooms, so room messages reach
//! subscribers and publishes reach room members through the same frozen batches.
//!
//! Order after a subscribe: `subscribed`, the presence snapshot, the replay (shared history
//! buffers, no copy), then live messages, which the fan-out delivers at the end of the turn at
//! the earliest. Live messages the replay covered are skipped (`Sink::skip_through`). In a
//! cluster the snapshot comes once Redis answered (`session::presence`); its place in the
//! outbound queue is held meanwhile, so the order is the same.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ringcast_cluster::PresenceMember;
use ringcast_protocol::Decoder;
use ringcast_protocol::frame::{MessageKind, OpCode};
use ringcast_pubsub::auth::Claims;
use ringcast_pubsub::command::{Command, Parser, Since};
use ringcast_pubsub::envelope::{self, Position};
use ringcast_pubsub::error::ErrorCode;
use ringcast_pubsub::history::{Recovery, Replay, SharedSpan};
use ringcast_pubsub::presence::{ChangeKind, ClientId};

use crate::bridge::{AskFor, PresenceAsk};
use crate::config::Config;
use crate::limits::MAX_ASKS_IN_FLIGHT;
use crate::rooms::SharedRoom;
use crate::rooms::local::{Class, Slot};
use crate::session::messages;
use crate::session::presence::{self, Awaited, announce, snapshot};
use crate::session::sink::Sink;

thread_local! {
    /// The worker's parser (one worker per thread): buffers reused across commands.
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Rooms a publisher that is not subscribed keeps at hand, so a publish does not take the
/// directory lock each time.
const PUBLISH_CACHE: usize = 8;

/// One subscription.
struct Sub {
    room: Arc<SharedRoom>,
    slot: Slot,
    /// The token of the cluster-wide presence snapshot it waits for (`session::presence`).
    awaiting: Option<u64>,
}

/// A connection in JSON pub/sub mode.
pub struct PubSubSession {
    decoder: Box<Decoder>,
    topics: Topics,
}

/// The subscriptions and publish targets of a connection (apart from its decoder, which
/// lends out the message being handled).
struct Topics {
    client: ClientId,
    /// The verified token's claims (`None` without `--auth-secret`): `forbidden` outside them.
    claims: Option<Box<Claims>>,
    subs: Vec<Sub>,
    publish_rooms: Vec<Arc<SharedRoom>>,
    /// Snapshots asked of the cluster and not answered yet (each holds its place in the
    /// outbound queue, so it is answered even after an unsubscribe).
    awaited: Vec<Awaited>,
    /// `presence` requests asked of the cluster and not answered yet.
    asked: usize,
    /// Subscriptions get the compressed form of batches (permessage-deflate negotiated).
    deflate: bool,
}

impl PubSubSession {
    /// Bytes the decoder holds for an unfinished message.
    pub fn pending_bytes(&self) -> usize {
        self.decoder.pending_bytes()
    }

    /// A session decoding with `decoder`, known to others as `client`, allowed what `claims`
    /// list (everything without a token); with `deflate` (permessage-deflate negotiated) its
    /// subscriptions get batches' compressed form (docs/compression.md).
    pub fn new(
        decoder: Decoder,
        client: ClientId,
        claims: Option<Box<Claims>>,
        deflate: bool,
    ) -> PubSubSession {
        PubSubSession {
            decoder: Box::new(decoder),
            topics: Topics {
                client,
                claims,
                subs: Vec::new(),
                publish_rooms: Vec::new(),
                awaited: Vec::new(),
                asked: 0,
                deflate,
            },
        }
    }

    /// This connection's client id.
    pub fn client(&self) -> &ClientId {
        &self.topics.client
    }

    /// A subscribe (or unsubscribe) of `topic` the server API made for this connection
    /// (docs/api.md#subscribe): handled as this client's own request, with every check it
    /// gets (`--rooms`, the token's claims, `--max-subscriptions`), answered with `"id":null`.
    pub fn server_request(&mut self, topic: &str, subscribe: bool, sink: &mut Sink<'_>) {
        let id = Some("null");
        let command = if subscribe {
            Command::Subscribe {
                topic,
                id,
                since: None,
                presence: false,
            }
        } else {
            Command::Unsubscribe { topic, id }
        };
        sink.set_deflate(self.topics.deflate);
        self.topics.command(command, sink);
    }

    /// When the token ends (unix seconds, its `exp`), if the connection has one.
    pub fn expires(&self) -> Option<i64> {
        self.topics.claims.as_ref().and_then(|c| c.exp)
    }

    /// The token's `sub`, if it had one.
    pub fn user(&self) -> Option<&str> {
        self.topics.claims.as_ref().and_then(|c| c.sub.as_deref())
    }

    /// Where this connection sits in local room `room_id`.
    pub fn slot_mut(&mut self, room_id: u64) -> Option<&mut Slot> {
        (self.topics.subs.iter_mut())
            .find(|s| s.room.id == room_id)
            .map(|s| &mut s.slot)
    }

    /// The answer to the presence snapshot asked for under `token` (`Remote::Snapshot`): the
    /// other nodes' members. Queues the snapshot if a subscription still waits for it.
    pub fn presence_answer(&mut self, token: u64, remote: &[PresenceMember], sink: &mut Sink<'_>) {
        let topics = &mut self.topics;
        sink.set_deflate(topics.deflate);
        let Some(i) = topics.awaited.iter().position(|a| a.token == token) else {
            return;
        };
        let awaited = topics.awaited.swap_remove(i);
        let sub = (topics.subs.iter_mut()).find(|s| s.awaiting == Some(token));
        let subscribed = sub.is_some();
        if let Some(sub) = sub {
            sub.awaiting = None;
        }
        presence::answer_snapshot(sink, &awaited, remote, subscribed);
    }

    /// The answer to a `presence` request this connection asked of the cluster
    /// (`Remote::Reply`): whole frames, queued under the backpressure rule.
    pub fn presence_reply(&mut self, bytes: Vec<u8>, sink: &mut Sink<'_>) {
        self.topics.asked = self.topics.asked.saturating_sub(1);
        sink.reply_bytes(bytes);
    }

    /// Every subscription's room and slot, to leave them.
    pub fn into_memberships(self) -> Vec<(Arc<SharedRoom>, Slot)> {
        (self.topics.subs.into_iter())
            .map(|s| (s.room, s.slot))
            .collect()
    }

    /// Decodes `data` and answers every request, until the data ends or the session closes.
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) {
        let topics = &mut self.topics;
        sink.set_deflate(topics.deflate);
        messages::feed(
            &mut self.decoder,
            data,
            sink,
            |kind, payload, sink| match kind {
                MessageKind::Text => topics.request(payload, sink),
                MessageKind::Binary => error(
                    sink,
                    None,
                    ErrorCode::BinaryFrame,
                    "binary frames are not requests",
                ),
            },
        );
    }
}

impl Topics {
    fn request(&mut self, text: &[u8], sink: &mut Sink<'_>) {
        PARSER.with(|parser| {
            let mut parser = parser.borrow_mut();
            match parser.parse(text) {
                Ok(command) => self.command(command, sink),
                Err(e) => {
                    let mut out = Vec::with_capacity(96);
                    envelope::parse_error(&mut out, &e);
                    sink.reply_frame(OpCode::Text, &out);
                }
            }
        });
    }

    fn command(&mut self, command: Command<'_>, sink: &mut Sink<'_>) {
        let (Command::Subscribe { topic, id, .. }
        | Command::Publish { topic, id, .. }
        | Command::Presence { topic, id }) = command
        else {
            return self.command_allowed(command, sink);
        };
        if !topic_allowed(sink.config(), topic) {
            let msg = "the topic is not in the server's --rooms list";
            return error(sink, id, ErrorCode::Forbidden, msg);
        }
        self.command_allowed(command, sink);
    }

    fn command_allowed(&mut self, command: Command<'_>, sink: &mut Sink<'_>) {
        let asks_cluster = sink.cluster().is_some()
            && matches!(
                command,
                Command::Presence { .. } | Command::Subscribe { presence: true, .. }
            );
        if asks_cluster && self.asked + self.awaited.len() >= MAX_ASKS_IN_FLIGHT {
            let id = match command {
                Command::Presence { id, .. } | Command::Subscribe { id, .. } => id,
                _ => None,
            };
            return error(
                sink,
                id,
                ErrorCode::TooManyRequests,
                "too many presence questions in flight",
            );
        }
        match command {
            Command::Subscribe {
                topic,
                id,
                since,
                presence,
            } => self.subscribe(topic, id, since, presence, sink),
            Command::Unsubscribe { topic, id } => self.unsubscribe(topic, id, sink),
            Command::Refresh { id, token } => self.refresh(id, token, sink),
            Command::Publish { topic, id, data } => self.publish(topic, id, data, sink),
            // Who is in a topic is what a subscriber would learn: the same claim applies.
            Command::Presence { topic, id } if !self.may_read(topic) => error(
                sink,
                id,
                ErrorCode::Forbidden,
                "topic not allowed by the token",
            ),
            Command::Presence { topic, id } => match sink.cluster() {
                // Every node's members: the answer comes from Redis, a moment later.
                Some(bus) => {
                    self.asked += 1;
                    bus.ask_presence(PresenceAsk {
                        conn: sink.address(),
                        topic: Arc::from(topic),
                        purpose: AskFor::Request {
                            id: id.map(Box::from),
                        },
                    });
                }
                None => {
                    snapshot(sink, topic, id, &[]);
                }
            },
        }
    }

    /// `refresh` (docs/tokens.md#expiry): a new token for the same `sub`, checked like the
    /// first; its claims and `exp` replace the old ones (subscriptions made stay).
    fn refresh(&mut self, id: Option<&str>, token: &str, sink: &mut Sink<'_>) {
        let Some(verifier) = sink.config().auth.as_deref() else {
            let msg = "tokens are not in use (no --auth-secret)";
            return error(sink, id, ErrorCode::Unauthorized, msg);
        };
        let claims = match verifier.verify(token, crate::session::auth::now_unix()) {
            Ok(claims) => claims,
            // The reason names what was wrong, never the token.
            Err(e) => return error(sink, id, ErrorCode::Unauthorized, &e.to_string()),
        };
        let old_sub = self.claims.as_ref().and_then(|c| c.sub.as_deref());
        if claims.sub.as_deref() != old_sub {
            let msg = "the token is for another sub";
            return error(sink, id, ErrorCode::Unauthorized, msg);
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"{\"op\":\"refreshed\"");
        if let Some(id) = id {
            out.extend_from_slice(b",\"id\":");
            out.extend_from_slice(id.as_bytes());
        }
        if let Some(exp) = claims.exp {
            out.extend_from_slice(b",\"exp\":");
            out.extend_from_slice(exp.to_string().as_bytes());
        }
        out.push(b'}');
        self.claims = Some(Box::new(claims));
        sink.reply_frame(OpCode::Text, &out);
    }

    /// Whether the token lets this connection subscribe to `topic` (always, without auth).
    fn may_read(&self, topic: &str) -> bool {
        self.claims.as_ref().is_none_or(|c| c.may_read(topic))
    }

    fn subscribe(
        &mut self,
        topic: &str,
        id: Option<&str>,
        since: Option<Since<'_>>,
        presence: bool,
        sink: &mut Sink<'_>,
    ) {
        if !self.may_read(topic) {
            return error(
                sink,
                id,
                ErrorCode::Forbidden,
                "topic not allowed by the token",
            );
        }
        let hub = sink.hub();
        let now = hub.now();
        if let Some(sub) = self.subs.iter_mut().find(|s| &*s.room.name == topic) {
            // Idempotent: `subscribed` again (and the snapshot if asked), no second copy.
            let position = hub.history.as_ref().map(|h| h.topic(topic).position(now));
            if let Some(id) = id {
                let mut out = Vec::with_capacity(96);
                let pos = position.as_ref().map(|p| Position {
                    epoch: &p.epoch,
                    offset: p.offset,
                });
                envelope::subscribed(&mut out, &sub.room.name, id, pos, None);
                sink.reply_frame(OpCode::Text, &out);
            }
            if presence {
                let awaited = presence::subscribe_snapshot(sink, &sub.room);
                sub.awaiting = awaited.as_ref().map(|a| a.token);
                self.awaited.extend(awaited);
            }
            return;
        }
        if self.subs.len() >= sink.config().max_subscriptions {
            let msg = "--max-subscriptions reached";
            return error(sink, id, ErrorCode::TooManySubscriptions, msg);
        }
        let class = if presence {
            Class::JsonPresence
        } else {
            Class::Json
        }
        .with_deflate(self.deflate);
        // Interest first (directory bit, local member), then the history query (rule 1).
        let Ok((room, slot)) = sink.join(topic, class) else {
            let msg = "the server's room limit is reached";
            return error(sink, id, ErrorCode::TooManySubscriptions, msg);
        };
        self.subs.push(Sub {
            room: room.clone(),
            slot,
            awaiting: None,
        });
        let user = self.claims.as_ref().and_then(|c| c.sub.as_deref());
        announce(sink, &room, &self.client, user, ChangeKind::Join);
        let (replay, recovered) = match &hub.history {
            None => (
                None,
                matches!(since, Some(Since::Offset { .. })).then_some(false),
            ),
            Some(h) => {
                let mut handle = h.topic(topic);
                match since {
                    None => {
                        let p = handle.position(now);
                        (Some(empty_replay(p.epoch, p.offset)), None)
                    }
                    Some(Since::Last(n)) => {
                        let n = usize::try_from(n).unwrap_or(usize::MAX);
                        (Some(handle.last(n, now)), None)
                    }
                    Some(Since::Offset { offset, epoch }) => {
                        match handle.since(offset, epoch, now) {
                            Recovery::Recovered(r) => (Some(r), Some(true)),
                            Recovery::NotRecovered(p) => {
                                (Some(empty_replay(p.epoch, p.offset)), Some(false))
                            }
                        }
                    }
                }
            }
        };
        if let Some(r) = &replay {
            sink.skip_through(&room, r.through);
        }
        if let Some(id) = id {
            let mut out = Vec::with_capacity(128);
            let pos = replay.as_ref().map(|r| Position {
                epoch: &r.epoch,
                offset: r.through,
            });
            envelope::subscribed(&mut out, topic, id, pos, recovered);
            sink.reply_frame(OpCode::Text, &out);
        }
        if presence && let Some(sub) = self.subs.last_mut() {
            let awaited = presence::subscribe_snapshot(sink, &room);
            sub.awaiting = awaited.as_ref().map(|a| a.token);
            self.awaited.extend(awaited);
        }
        if let Some(r) = replay {
            sink.replay(&r.entries);
        }
    }

    fn unsubscribe(&mut self, topic: &str, id: Option<&str>, sink: &mut Sink<'_>) {
        let Some(i) = self.subs.iter().position(|s| &*s.room.name == topic) else {
            return error(sink, id, ErrorCode::NotSubscribed, "not subscribed");
        };
        let sub = self.subs.swap_remove(i);
        announce(sink, &sub.room, &self.client, None, ChangeKind::Leave);
        self.leave(sub, sink);
        if let Some(id) = id {
            let mut out = Vec::with_capacity(96);
            envelope::unsubscribed(&mut out, topic, id);
            sink.reply_frame(OpCode::Text, &out);
        }
    }

    fn leave(&mut self, sub: Sub, sink: &mut Sink<'_>) {
        if let Some(own) = sink.leave(&sub.room, sub.slot) {
            // Only one membership per room: the moved one cannot be ours.
            debug_assert!(own == sub.slot);
        }
    }

    fn publish(&mut self, topic: &str, id: Option<&str>, data: &str, sink: &mut Sink<'_>) {
        if self.claims.as_ref().is_some_and(|c| !c.may_publish(topic)) {
            return error(
                sink,
                id,
                ErrorCode::Forbidden,
                "publishing not allowed by the token",
            );
        }
        // Every publish enters the pipeline, with or without members here: it is appended to
        // history, published to the cluster and acked there (`fanout::pipeline`).
        let room = self.publish_room(topic, sink);
        let name = room
            .as_ref()
            .map_or_else(|| Arc::from(topic), |r| r.name.clone());
        sink.publish_json(&name, room.as_ref(), data.as_bytes(), id);
    }

    /// The room a publish to `topic` goes into: this connection's subscription, a cached room
    /// that still has members, or the directory's; `None` when the topic has no members in
    /// this process (the pipeline looks it up again after the history append).
    fn publish_room(&mut self, topic: &str, sink: &Sink<'_>) -> Option<Arc<SharedRoom>> {
        if let Some(sub) = self.subs.iter().find(|s| &*s.room.name == topic) {
            return Some(sub.room.clone());
        }
        if let Some(i) = self.publish_rooms.iter().position(|r| &*r.name == topic) {
            if self.publish_rooms[i].workers.load(Ordering::Acquire) != 0 {
                return Some(self.publish_rooms[i].clone());
            }
            self.publish_rooms.swap_remove(i);
        }
        let room = sink.find_room(topic)?;
        if self.publish_rooms.len() >= PUBLISH_CACHE {
            self.publish_rooms.swap_remove(0);
        }
        self.publish_rooms.push(room.clone());
        Some(room)
    }
}

/// Whether `topic` may be subscribed to, published to or asked about: an explicit `--rooms` list
/// names every room and topic of the one namespace (docs/room-mode.md#which-room, docs/pubsub.md); without one, any topic.
fn topic_allowed(config: &Config, topic: &str) -> bool {
    // Pusher channels' topics are the Pusher dialect's alone (their auth is there).
    !topic.starts_with(ringcast_pusher::app::TOPIC_PREFIX)
        && (config.rooms.is_empty() || config.rooms.iter().any(|r| r == topic))
}

fn empty_replay(epoch: Arc<str>, through: u64) -> Replay<SharedSpan> {
    Replay {
        epoch,
        first: through + 1,
        through,
        entries: Vec::new(),
    }
}

/// Queues an `error` envelope; the connection stays open.
fn error(sink: &mut Sink<'_>, id: Option<&str>, code: ErrorCode, message: &str) {
    let mut out = Vec::with_capacity(96);
    envelope::error(&mut out, id, code, message);
    sink.reply_frame(OpCode::Text, &out);
}
