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

pub mod handshake;
pub mod room;
pub mod sink;

use std::sync::Arc;

use crate::rooms::SharedRoom;
use crate::rooms::local::Slot;

use self::handshake::Handshake;
use self::room::RoomSession;
pub use self::sink::{End, Outcome, Sink};

/// A connection's mode.
pub enum Session {
    /// Reading the HTTP request head.
    Handshake(Handshake),
    /// Upgraded: a member of one room.
    Room(RoomSession),
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
            Session::Handshake(h) => {
                if let Some(room) = h.feed(data, sink) {
                    *self = Session::Room(room);
                }
            }
            Session::Room(r) => r.feed(data, sink),
            Session::Closing => {}
        }
    }

    /// Upgraded and not closing: WebSocket traffic flows.
    pub fn is_open(&self) -> bool {
        matches!(self, Session::Room(_))
    }

    /// Ends the mode (the session becomes [`Session::Closing`]) and returns the membership to
    /// remove from the local room, if any.
    pub fn close(&mut self) -> Option<(Arc<SharedRoom>, Slot)> {
        match std::mem::replace(self, Session::Closing) {
            Session::Room(r) => Some(r.into_membership()),
            Session::Handshake(_) | Session::Closing => None,
        }
    }

    /// Where this connection sits in local room `room_id` (updated when another member's
    /// removal moves it).
    pub fn slot_mut(&mut self, room_id: u64) -> Option<&mut Slot> {
        match self {
            Session::Room(r) => r.slot_mut(room_id),
            Session::Handshake(_) | Session::Closing => None,
        }
    }
}
