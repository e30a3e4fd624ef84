//! Subscriptions and what arrives on them: SUBSCRIBE / UNSUBSCRIBE per room, and pushes from
//! Redis (pub/sub messages, disconnection) handled in bursts, each envelope checked for its
//! origin and sequence gaps before it is emitted.

use std::sync::Arc;

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value};

use super::Shard;
use crate::BusEvent;
use crate::batch::Tag;
use crate::gaps::{Continuity, GapTracker};
use crate::handle::Counters;
use crate::link::Link;
use crate::wire::{self, MessageKind};

/// Pushes handled in one burst before `BusEvent::Flush` (bounds what the server holds back
/// and how long other work on the bus thread waits).
const MAX_BURST: usize = 256;

impl Shard {
    /// The room's first local member: receive it (SUBSCRIBE, now or on reconnect).
    pub(super) fn subscribe(&mut self, room: Arc<str>) {
        let r = self.room_mut(&room);
        if !r.subscribed {
            r.subscribed = true;
            if self.batching() {
                let mut cmd = redis::cmd("SUBSCRIBE");
                cmd.arg(self.channel(&room));
                self.push_cmd(cmd, Tag::Other);
            }
        }
    }

    /// The room's last local member left: stop receiving it, forget its continuity.
    pub(super) fn unsubscribe(&mut self, room: Arc<str>) {
        let Some(r) = self.rooms.get_mut(&*room) else {
            return;
        };
        if !r.subscribed {
            return;
        }
        r.subscribed = false;
        r.gaps = GapTracker::default();
        if r.members.is_empty() {
            self.rooms.remove(&*room);
        }
        if self.batching() {
            let mut cmd = redis::cmd("UNSUBSCRIBE");
            cmd.arg(self.channel(&room));
            self.push_cmd(cmd, Tag::Other);
        }
    }

    /// Handles `first` and the pushes already waiting behind it (at most `MAX_BURST` in all),
    /// then emits `Flush`, so the server hands each worker one group per burst.
    pub(super) fn on_burst(&mut self, first: PushInfo) {
        self.on_push(first);
        for _ in 1..MAX_BURST {
            let Link::Up { pushes, .. } = &mut self.link else {
                break;
            };
            if self.queries.holding_pushes() {
                break;
            }
            match pushes.try_recv() {
                Ok(push) => self.on_push(push),
                Err(_) => break,
            }
        }
        (self.emit)(BusEvent::Flush);
    }

    fn on_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                    (data.next(), data.next())
                else {
                    Counters::add(&self.counters.malformed, 1);
                    return;
                };
                self.on_message(&channel, Bytes::from(payload));
            }
            PushKind::Disconnection => self.go_down("connection lost"),
            _ => {}
        }
    }

    fn on_message(&mut self, channel: &[u8], payload: Bytes) {
        let Some(name) = channel.strip_prefix(self.channel_prefix.as_bytes()) else {
            return;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        let env = wire::decode(&payload);
        if let Ok(env) = &env
            && env.origin == &*self.cfg.node
        {
            // Our own envelope: only a query's marker matters, subscribed or not by now.
            for m in &env.messages {
                if let (MessageKind::Mark, Some(token)) = (m.kind, m.payload.first_chunk::<8>()) {
                    self.on_mark(u64::from_le_bytes(*token));
                }
            }
            return;
        }
        // After an unsubscribe, envelopes already on the wire are discarded here.
        let Some(r) = self.rooms.get_mut(name) else {
            return;
        };
        let room = &r.name;
        if !r.subscribed {
            return;
        }
        let Ok(env) = env else {
            Counters::add(&self.counters.malformed, 1);
            return;
        };
        let n = env.messages.len() as u64;
        let (origin, verdict) = r.gaps.observe(env.origin, env.stream, env.first_seq, n);
        let missed = match verdict {
            Continuity::Gap { missed } => {
                Counters::add_saturating(&self.counters.gaps, missed);
                tracing::warn!(room = %room, origin = %origin, missed, "cluster: bus gap");
                Some(missed)
            }
            Continuity::Restarted => {
                tracing::warn!(room = %room, origin = %origin, seq = env.first_seq,
                    "cluster: bus sequence went backwards (replayed, forged, or an origin restarted without a stream id): continuity broken");
                Some(0)
            }
            Continuity::First | Continuity::InOrder => None,
        };
        if let Some(missed) = missed {
            (self.emit)(BusEvent::Gap {
                room: room.clone(),
                origin: origin.clone(),
                missed,
            });
        }
        if env.messages.iter().all(|m| m.kind == MessageKind::Mark) {
            return; // another node's query marker: it only took a sequence number
        }
        // `received` counts messages; presence changes travel as messages but are not.
        let changes = env.messages.iter().filter(|m| m.kind.is_presence()).count();
        Counters::add(&self.counters.received, n - changes as u64);
        (self.emit)(BusEvent::Messages {
            room: room.clone(),
            origin,
            messages: env.messages,
        });
    }
}
