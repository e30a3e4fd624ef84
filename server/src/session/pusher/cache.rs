//! A cache channel's answer to a subscribe (docs/pusher.md#cache-channels): right after
//! `pusher_internal:subscription_succeeded`, the channel's last event, or `pusher:cache_miss`
//! and a `cache_miss` webhook when it has none.
//!
//! On one node the process's cache (`pusher::cache`, written by the publish pipeline) is the
//! answer. In a cluster an entry is the answer only when it was written into the very room the
//! subscriber joined (this node has received every node's events of the channel since the
//! room opened); otherwise the subscriber's queue holds the answer's place and Redis is asked
//! (`bridge::Bridge::ask_cache`, answered on the bus thread by `fanout::bus`, which hands the
//! payload back as `Remote::Fill`): live events wait behind the hold, so the cached event
//! still comes first. Redis unreachable, or this connection with `MAX_ASKS_IN_FLIGHT` asks
//! waiting already: the local entry, whatever room it was written into, or a miss.

use std::time::Instant;

use ringcast_protocol::frame::OpCode;

use super::Conn;
use crate::bridge::{AskFor, PresenceAsk};
use crate::conn::outq::HoldId;
use crate::limits::MAX_ASKS_IN_FLIGHT;
use crate::rooms::SharedRoom;
use crate::session::sink::Sink;
use crate::webhooks::Webhooks;

impl Conn {
    /// Queues cache channel `room`'s answer for this subscriber (after its
    /// `subscription_succeeded`).
    pub(super) fn cache_answer(&mut self, room: &SharedRoom, sink: &mut Sink<'_>) {
        let found = sink.pusher_cache().get(&room.name, Instant::now());
        let current = found.as_ref().is_some_and(|c| c.room_id == Some(room.id));
        if let Some(bridge) = sink.cluster()
            && !current
            && usize::from(self.cache_asks) < MAX_ASKS_IN_FLIGHT
        {
            let hold = sink.hold();
            let ask = PresenceAsk {
                conn: sink.address(),
                topic: room.name.clone(),
                purpose: AskFor::PusherCache { hold },
            };
            if bridge.ask_cache(ask).is_some() {
                self.cache_asks += 1;
                return;
            }
            let payload = payload(
                sink.webhooks(),
                &room.name,
                found.map(|c| c.payload.to_vec()),
            );
            return sink.fill_frame(hold, OpCode::Text, &payload);
        }
        let payload = payload(
            sink.webhooks(),
            &room.name,
            found.map(|c| c.payload.to_vec()),
        );
        sink.reply_frame(OpCode::Text, &payload);
    }

    /// Redis's answer (or its stand-in) for an ask of [`Conn::cache_answer`]: fills its hold.
    pub(super) fn cache_filled(&mut self, hold: HoldId, payload: &[u8], sink: &mut Sink<'_>) {
        self.cache_asks = self.cache_asks.saturating_sub(1);
        sink.fill_frame(hold, OpCode::Text, payload);
    }
}

/// What a subscriber of cache channel `topic` gets: its last event `found`, or
/// `pusher:cache_miss` (then the app's `cache_miss` webhook is emitted).
fn payload(webhooks: &Webhooks, topic: &str, found: Option<Vec<u8>>) -> Vec<u8> {
    found.unwrap_or_else(|| {
        let (out, app, event) = crate::pusher::cache::miss(topic);
        webhooks.emit(app, event);
        out
    })
}
