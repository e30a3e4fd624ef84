//! Room mode: decoded frames become room messages, pongs and closes. Every text or binary
//! message is published to the connection's room; the rest of the fan-out happens at the end
//! of the turn (`fanout`).

use std::sync::Arc;

use ringcast_protocol::frame::{Event, MessageKind, OpCode};
use ringcast_protocol::{CloseCode, Decoder};
use ringcast_pubsub::auth::Access;
use ringcast_pubsub::presence::ClientId;

use crate::rooms::SharedRoom;
use crate::rooms::local::Slot;
use crate::session::sink::Sink;

/// A member of one room.
pub struct RoomSession {
    /// Cluster-unique id (room-mode members count in presence).
    pub client: ClientId,
    /// The token's `sub` (the server API's `disconnect` finds a user's connections by it).
    pub user: Option<Box<str>>,
    /// The token's `exp` (unix seconds): closed with 1008 once it passed, plus the leeway
    /// (docs/tokens.md#expiry; room mode has no refresh).
    pub expires: Option<i64>,
    room: Arc<SharedRoom>,
    slot: Slot,
    decoder: Box<Decoder>,
    /// Listed only in the token's `read` claim: a data message closes with 1008 (docs/tokens.md#claims).
    read_only: bool,
}

impl RoomSession {
    /// A member of `room` sitting at `slot`, decoding with `decoder`, known to others as
    /// `client`, with the `access` the token's claims give to this room (`Full` without
    /// auth).
    pub fn new(
        room: Arc<SharedRoom>,
        slot: Slot,
        decoder: Decoder,
        client: ClientId,
        access: Access,
    ) -> RoomSession {
        RoomSession {
            client,
            user: None,
            expires: None,
            room,
            slot,
            decoder: Box::new(decoder),
            read_only: access == Access::Read,
        }
    }

    /// Bytes the decoder holds for an unfinished message.
    pub fn pending_bytes(&self) -> usize {
        self.decoder.pending_bytes()
    }

    /// Decodes `data` (unmasked in place) and acts on every event, until the data ends or the
    /// session closes.
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) {
        let mut pos = 0;
        while pos < data.len() {
            let (n, event) = match self.decoder.decode(&mut data[pos..]) {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(error = %e, "closing client for a protocol violation");
                    sink.close(Some(CloseCode::from(&e)), e.to_string());
                    return;
                }
            };
            pos += n;
            match event {
                None | Some(Event::Pong(_)) => {}
                Some(Event::Message { .. }) if self.read_only => {
                    sink.close(Some(CloseCode::POLICY), "read-only member".to_string());
                    return;
                }
                Some(message @ Event::Message { .. }) => {
                    let Some((kind, payload)) = sink.received(message) else {
                        return;
                    };
                    let kind = match kind {
                        MessageKind::Text => OpCode::Text,
                        MessageKind::Binary => OpCode::Binary,
                    };
                    sink.publish(&self.room, kind, &payload);
                }
                Some(Event::Ping(payload)) => sink.pong(payload),
                Some(Event::Close(frame)) => {
                    // Echo the client's code (an empty Close gets an empty Close back).
                    sink.close(frame.code, String::new());
                    return;
                }
            }
        }
    }

    /// Where this member sits in local room `room_id`, if that is its room.
    pub fn slot_mut(&mut self, room_id: u64) -> Option<&mut Slot> {
        (self.room.id == room_id).then_some(&mut self.slot)
    }

    /// The room and slot, to leave the room.
    pub fn into_membership(self) -> (Arc<SharedRoom>, Slot) {
        (self.room, self.slot)
    }
}
