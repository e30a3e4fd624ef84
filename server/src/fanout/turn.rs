//! One worker's batches of the current turn (the corking of uWebSockets' topic tree): every
//! message a session publishes is appended to its topic's [`BatchBuilder`] here, one per room
//! (messages, presence events), per topic without a room, and per topic for server API
//! publishes; the worker freezes and flushes them at the end of the turn.

use std::collections::HashMap;
use std::sync::Arc;

use ringcast_protocol::frame::{MAX_HEADER_LEN, OpCode};

use crate::fanout::ack::AckTo;
use crate::fanout::batch::BatchBuilder;
use crate::rooms::SharedRoom;

/// What a builder of [`TurnBatches`] collects: a room's messages, a room's presence events,
/// or publishes to a topic without a room.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Messages(u64),
    Events(u64),
    Topic(Arc<str>),
    /// Server API publishes to a topic (with `skip_history` or not).
    Api(Arc<str>, bool),
}

/// All room batches of the current turn on one worker.
#[derive(Default)]
pub struct TurnBatches {
    index: HashMap<Key, usize>,
    rooms: Vec<BatchBuilder>,
    /// Frame bytes batched since the last `take`.
    bytes: usize,
}

impl TurnBatches {
    /// Appends one message from `sender` to `room`'s batch.
    pub fn push(&mut self, room: &Arc<SharedRoom>, sender: usize, kind: OpCode, payload: &[u8]) {
        let i = self.builder(Key::Messages(room.id), || BatchBuilder::new(room.clone()));
        self.rooms[i].push(Some(sender), kind, payload);
        self.bytes += payload.len() + MAX_HEADER_LEN;
    }

    /// Frame bytes batched since the last `take` (an upper bound).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one pub/sub publish from `sender` to `topic`, into `room`'s batch (`None`: the
    /// topic has no members in this process; the pipeline still appends it to history,
    /// publishes it to the cluster, acks it and looks the topic up again after the append).
    /// With `ack`, the sender gets `published` once the pipeline has run.
    pub fn push_publish(
        &mut self,
        topic: &Arc<str>,
        room: Option<&Arc<SharedRoom>>,
        sender: usize,
        data: &[u8],
        ack: Option<&str>,
    ) {
        let i = match room {
            Some(room) => self.builder(Key::Messages(room.id), || BatchBuilder::new(room.clone())),
            None => self.builder(Key::Topic(topic.clone()), || {
                BatchBuilder::for_topic(topic.clone())
            }),
        };
        let b = &mut self.rooms[i];
        if let Some(id) = ack {
            b.ack_next(sender, AckTo::Client(id.into()));
        }
        b.push_publish(Some(sender), data);
        self.bytes += data.len() + MAX_HEADER_LEN;
    }

    /// Appends one server API publish (docs/api.md#publish) from API connection `sender` to
    /// `topic`: into a batch of API publishes of its own (`pipeline::Source::Api`), the room's
    /// when the topic has one; `ack` waits for its result.
    pub fn push_api_publish(
        &mut self,
        topic: &Arc<str>,
        room: Option<&Arc<SharedRoom>>,
        sender: usize,
        data: &[u8],
        skip_history: bool,
        ack: AckTo,
    ) {
        let i = self.builder(Key::Api(topic.clone(), skip_history), || {
            let b = match room {
                Some(room) => BatchBuilder::new(room.clone()),
                None => BatchBuilder::for_topic(topic.clone()),
            };
            b.for_api(skip_history)
        });
        let b = &mut self.rooms[i];
        b.ack_next(sender, ack);
        b.push_publish(Some(sender), data);
        self.bytes += data.len() + MAX_HEADER_LEN;
    }

    /// Appends one Pusher HTTP API event (docs/pusher.md#http-api) from API connection
    /// `sender` to `topic`: the finished frame, into the topic's batch of API publishes
    /// (`pipeline::Source::Api`, no result awaited); `exclude` (worker, slab key) is the
    /// connection of the call's `socket_id`, which does not get it.
    pub fn push_pusher_event(
        &mut self,
        topic: &Arc<str>,
        room: Option<&Arc<SharedRoom>>,
        sender: usize,
        frame: &[u8],
        exclude: Option<(usize, usize)>,
    ) {
        let i = self.builder(Key::Api(topic.clone(), false), || {
            let b = match room {
                Some(room) => BatchBuilder::new(room.clone()),
                None => BatchBuilder::for_topic(topic.clone()),
            };
            b.for_api(false)
        });
        let b = &mut self.rooms[i];
        if let Some((worker, key)) = exclude {
            b.exclude_next(worker, key);
        }
        b.push_publish(Some(sender), frame);
        self.bytes += frame.len() + MAX_HEADER_LEN;
    }

    /// Appends a presence event (an encoded envelope) about `sender` to `room`'s event batch;
    /// `seq` is the event's topic incarnation and number (`pubsub::presence::Change`).
    pub fn push_event(
        &mut self,
        room: &Arc<SharedRoom>,
        sender: usize,
        envelope: &[u8],
        seq: (u64, u64),
    ) {
        let i = self.builder(Key::Events(room.id), || BatchBuilder::events(room.clone()));
        self.rooms[i].push_event(sender, envelope, seq);
    }

    fn builder(&mut self, key: Key, new: impl FnOnce() -> BatchBuilder) -> usize {
        *self.index.entry(key).or_insert_with(|| {
            self.rooms.push(new());
            self.rooms.len() - 1
        })
    }

    /// No message this turn.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Takes this turn's batches, in the order their rooms first got a message.
    pub fn take(&mut self) -> Vec<BatchBuilder> {
        self.index.clear();
        self.bytes = 0;
        std::mem::take(&mut self.rooms)
    }
}
