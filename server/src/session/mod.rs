//! What a connection is doing, as a type: reading its HTTP request head ([`handshake`]), then
//! a mode (today only room membership, [`room`]; a `PubSub` variant comes next).
//!
//! Sessions turn received bytes into actions through one small interface, the [`Sink`]
//! (`sink.rs`):
//! publish into a room, reply to this client, close. A session never sees a socket, a ring or
//! another connection, so the path from bytes to session is transport-agnostic: a TLS layer can
//! decrypt between the receive buffer and [`Session::feed`], and encrypt what a `Sink` queued
//! before the WRITEV. Ordering rules that involve the rest of the worker (frames a sender batched
//! earlier in the turn leave before its Close) are applied by the worker when it takes the
//! [`End`] out of the sink, in one place (`worker::Worker::end`).

pub mod api;
pub mod auth;
pub mod handshake;
pub mod http_framing;
pub mod messages;
pub mod presence;
pub mod pubsub;
pub mod pusher;
pub mod room;
pub mod sink;

use std::sync::Arc;

use crate::rooms::SharedRoom;
use crate::rooms::local::Slot;

use ringcast_pubsub::presence::ClientId;

use self::api::ApiSession;
use self::handshake::{Handshake, Upgraded};
use self::pubsub::PubSubSession;
use self::pusher::PusherSession;
use self::pusher::channels::Farewell;
use self::pusher::http::PusherApiSession;
use self::room::RoomSession;
pub use self::sink::{Cut, End, Outcome, Sink};

/// A connection's mode.
pub enum Session {
    /// Reading the HTTP request head.
    Handshake(Handshake),
    /// Upgraded: a member of one room.
    Room(RoomSession),
    /// Upgraded: JSON pub/sub, subscribed to any number of topics.
    PubSub(PubSubSession),
    /// The server API (docs/api.md): HTTP/1.1 requests after the first one to `/api/…`.
    Api(ApiSession),
    /// Upgraded: the Pusher Channels dialect (docs/pusher.md).
    Pusher(PusherSession),
    /// The Pusher HTTP API (docs/pusher.md#http-api): HTTP/1.1 requests under
    /// `{--pusher-path-prefix}/apps/`.
    PusherApi(PusherApiSession),
    /// Its last bytes are queued (an HTTP answer or a Close frame), or it was torn down: what
    /// the client still sends is read and dropped.
    Closing,
}

impl Default for Session {
    fn default() -> Self {
        Session::Handshake(Handshake::default())
    }
}

impl Session {
    /// Handles bytes received (decrypted, once TLS exists) in whatever mode the session is.
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) {
        match self {
            Session::Handshake(h) => match h.feed(data, sink) {
                Some(Upgraded::Room(r)) => *self = Session::Room(r),
                Some(Upgraded::PubSub(p)) => *self = Session::PubSub(p),
                Some(Upgraded::Api(a)) => *self = Session::Api(a),
                Some(Upgraded::Pusher(p)) => *self = Session::Pusher(p),
                Some(Upgraded::PusherApi(a)) => *self = Session::PusherApi(a),
                None => {}
            },
            // `--api-listen` serves the Pusher HTTP API too (docs/pusher.md#http-api): a
            // request whose line names its path turns the connection into one of it (the
            // line may arrive in pieces: the API session holds them meanwhile).
            Session::Api(a)
                if a.before_request_line()
                    && sink.config().pusher.is_some()
                    && data.contains(&b'\n') =>
            {
                let mut head = a.take_partial();
                head.extend_from_slice(data);
                if pusher::http::is_request(&head, sink.config()) {
                    let mut p = PusherApiSession::default();
                    p.feed(&mut head, sink);
                    *self = Session::PusherApi(p);
                } else {
                    a.feed(&mut head, sink);
                }
            }
            Session::Api(a) => a.feed(data, sink),
            Session::Room(r) => r.feed(data, sink),
            Session::PubSub(p) => p.feed(data, sink),
            Session::Pusher(p) => p.feed(data, sink),
            Session::PusherApi(a) => a.feed(data, sink),
            Session::Closing => {}
        }
    }

    /// Bytes the decoder holds for a message (or frame) not complete yet (`--max-pending-bytes`).
    pub fn pending_bytes(&self) -> usize {
        match self {
            Session::Room(r) => r.pending_bytes(),
            Session::PubSub(p) => p.pending_bytes(),
            Session::Api(a) => a.pending_bytes(),
            Session::Pusher(p) => p.pending_bytes(),
            Session::PusherApi(a) => a.pending_bytes(),
            Session::Handshake(_) | Session::Closing => 0,
        }
    }

    /// The cluster-unique client id of an upgraded connection.
    pub fn client(&self) -> Option<&ClientId> {
        match self {
            Session::Room(r) => Some(&r.client),
            Session::PubSub(p) => Some(p.client()),
            Session::Pusher(p) => Some(p.client()),
            Session::Handshake(_) | Session::Api(_) | Session::PusherApi(_) | Session::Closing => {
                None
            }
        }
    }

    /// The token's `sub` of an upgraded connection, if it had one.
    pub fn user(&self) -> Option<&str> {
        match self {
            Session::Room(r) => r.user.as_deref(),
            Session::PubSub(p) => p.user(),
            Session::Pusher(p) => p.user(),
            Session::Handshake(_) | Session::Api(_) | Session::PusherApi(_) | Session::Closing => {
                None
            }
        }
    }

    /// When the connection's token ends (its `exp`, unix seconds), if it has one.
    pub fn expires(&self) -> Option<i64> {
        match self {
            Session::Room(r) => r.expires,
            Session::PubSub(p) => p.expires(),
            Session::Handshake(_)
            | Session::Api(_)
            | Session::PusherApi(_)
            | Session::Pusher(_)
            | Session::Closing => None,
        }
    }

    /// The Close of an open connection when the server drains: 1001, or for a Pusher
    /// connection the documented 4200 (reconnect at once: another node will take it).
    pub fn drain_close(&self) -> (ringcast_protocol::CloseCode, &'static str) {
        match self {
            Session::Pusher(_) => {
                pusher::close_code(ringcast_pusher::error::ErrorCode::ReconnectImmediately)
            }
            _ => (
                ringcast_protocol::CloseCode::GOING_AWAY,
                "server shutting down",
            ),
        }
    }

    /// The Close of an open connection silent past `--idle-timeout` (it answered no ping):
    /// 1008, or for a Pusher connection the documented 4201 (pong not received).
    pub fn idle_close(&self) -> (ringcast_protocol::CloseCode, &'static str) {
        match self {
            Session::Pusher(_) => {
                pusher::close_code(ringcast_pusher::error::ErrorCode::PongNotReceived)
            }
            _ => (ringcast_protocol::CloseCode::POLICY, "idle timeout"),
        }
    }

    /// What must be published before the connection's memberships are left (a Pusher
    /// connection's `member_removed` events), having taken it out of the Pusher registry.
    /// Idempotent; nothing for the other modes.
    pub fn release(&mut self, shared: &crate::shared::Shared) -> Vec<Farewell> {
        match self {
            Session::Pusher(p) => p.release(&shared.pusher, &shared.webhooks),
            _ => Vec::new(),
        }
    }

    /// Ends the mode (the session becomes [`Session::Closing`]) and returns every membership
    /// to remove from the local rooms.
    pub fn close(&mut self) -> Vec<(Arc<SharedRoom>, Slot)> {
        match std::mem::replace(self, Session::Closing) {
            Session::Room(r) => vec![r.into_membership()],
            Session::PubSub(p) => p.into_memberships(),
            Session::Pusher(p) => p.into_memberships(),
            Session::Handshake(_) | Session::Api(_) | Session::PusherApi(_) | Session::Closing => {
                Vec::new()
            }
        }
    }

    /// Where this connection sits in local room `room_id` (updated when another member's
    /// removal moves it).
    pub fn slot_mut(&mut self, room_id: u64) -> Option<&mut Slot> {
        match self {
            Session::Room(r) => r.slot_mut(room_id),
            Session::PubSub(p) => p.slot_mut(room_id),
            Session::Pusher(p) => p.slot_mut(room_id),
            Session::Handshake(_) | Session::Api(_) | Session::PusherApi(_) | Session::Closing => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use ringcast_protocol::CloseCode;
    use ringcast_protocol::frame::{OpCode, encode_masked_frame};

    use super::*;
    use crate::config::Config;
    use crate::conn::outq::OutQueue;
    use crate::fanout::turn::TurnBatches;
    use crate::rooms::local::{Class, LocalRooms};
    use crate::shared::Shared;

    /// What a worker lends a sink, without a ring or a socket.
    #[derive(Default)]
    struct Parts {
        out: OutQueue,
        batches: TurnBatches,
        rooms: LocalRooms,
    }

    fn feed(session: &mut Session, shared: &Shared, p: &mut Parts, bytes: &[u8]) -> Outcome {
        let mut data = bytes.to_vec();
        let mut sink = Sink::new(3, 0, shared, &mut p.out, &mut p.batches, &mut p.rooms);
        session.feed(&mut data, &mut sink);
        sink.outcome()
    }

    fn shared() -> Shared {
        Shared::new(Config::parse_from(["ringcast"]), 1)
    }

    #[test]
    fn upgrade_in_two_pieces_then_pipelined_frames_publish_then_close() {
        let shared = shared();
        let mut p = Parts::default();
        let mut session = Session::default();
        let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
            .to_vec();
        encode_masked_frame(&mut bytes, OpCode::Text, true, b"hi", [1, 2, 3, 4]);
        encode_masked_frame(&mut bytes, OpCode::Close, true, &[0x03, 0xe8], [5, 6, 7, 8]);
        let first = feed(&mut session, &shared, &mut p, &bytes[..20]);
        assert_eq!(
            first,
            Outcome {
                queued: false,
                end: None
            }
        );
        let rest = feed(&mut session, &shared, &mut p, &bytes[20..]);
        assert!(rest.queued, "the 101");
        assert_eq!(
            rest.end,
            Some(End::Close {
                code: Some(CloseCode::NORMAL),
                reason: String::new()
            }),
            "the Close is left to the worker, behind this turn's batches"
        );
        assert!(matches!(session, Session::Room(_)));
        let room = shared.directory.get("chat").expect("joined before the 101");
        assert_eq!(
            p.rooms.get(room.id).map(|r| r.members(Class::Raw)),
            Some(&[3][..])
        );
        let batch = p
            .batches
            .take()
            .pop()
            .expect("a batch")
            .freeze(Some(0), true);
        assert_eq!((batch.len(), batch.payload(0)), (1, &b"hi"[..]));
        assert_eq!(
            batch.own_messages(0, 3).count(),
            1,
            "the sender's own message"
        );
        let (left, slot) = session.close().pop().expect("a membership");
        assert_eq!((left.id, slot.index), (room.id, 0));
        assert!(matches!(session, Session::Closing));
    }

    #[test]
    fn a_plain_get_is_answered_and_finishes() {
        let shared = shared();
        let mut p = Parts::default();
        let mut session = Session::default();
        let done = feed(
            &mut session,
            &shared,
            &mut p,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(
            done,
            Outcome {
                queued: true,
                end: Some(End::Finish)
            }
        );
        assert!(p.out.unsent() > 0 && p.batches.is_empty());
        assert!(session.close().is_empty());
    }

    #[test]
    fn bytes_after_the_end_are_dropped() {
        let shared = shared();
        let mut p = Parts::default();
        let mut session = Session::Closing;
        let done = feed(&mut session, &shared, &mut p, b"anything");
        assert_eq!(
            done,
            Outcome {
                queued: false,
                end: None
            }
        );
    }
}
