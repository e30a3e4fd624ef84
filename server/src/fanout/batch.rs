//! Per-turn room batches (the corking of uWebSockets' topic tree): every message published in a
//! room during one loop turn is appended to that room's [`BatchBuilder`]; at the end of the turn
//! the builder becomes a [`FrozenBatch`]: immutable, shareable across workers, holding each
//! message's span, sender and kind, and the encoded forms (one shared buffer per form), so a
//! receiver gets one iovec per room per turn and nobody copies a payload per receiver.

use std::sync::{Arc, OnceLock};

use ringcast_protocol::frame::{MAX_HEADER_LEN, OpCode, encode_header};
use ringcast_pubsub::envelope;
use ringcast_pubsub::history::Epoch;

use crate::fanout::ack::{Ack, AckTo};
use crate::rooms::local::Class;
use crate::rooms::stream::NodeChange;
use crate::rooms::{Directory, SharedRoom};

/// One message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Slab key of the sender on the batch's origin worker (`None`: not a connection of a
    /// worker, such as another node's message or event).
    pub sender: Option<usize>,
    /// Text or binary.
    pub kind: OpCode,
    /// The frame's bytes in the raw form: `start..end`.
    pub frame: (u32, u32),
    /// Where the payload starts in the raw form (after the frame header).
    pub payload_start: u32,
    /// A pub/sub publish: the payload is the raw JSON text of `data` (room members get it as
    /// a text frame, subscribers inside `{"op":"message",…,"data":…}` byte for byte).
    pub publish: bool,
}

/// An encoded form: frames back to back and each message's span in them.
pub type Form = (Arc<[u8]>, Vec<(u32, u32)>);

/// Messages of one topic (room) being collected during the current turn.
pub struct BatchBuilder {
    topic: Arc<str>,
    /// The room with members somewhere in the process; `None` for a publish to a topic
    /// without one (it still gets its history offsets and reaches other nodes; the pipeline
    /// looks the topic up again after the append: `FrozenBatch::resolve`).
    room: Option<Arc<SharedRoom>>,
    raw: Vec<u8>,
    messages: Vec<Message>,
    kind: Kind,
    /// (worker, slab key, message index): a connection that must not get that message (a
    /// Pusher HTTP API event's `socket_id`), on any worker; usually empty.
    excluded: Vec<(usize, usize, u32)>,
}

/// What a batch being built carries besides its frames, each kind with only its fields.
#[derive(Debug)]
enum Kind {
    /// Messages; the results waiting for their offsets: (message index, sender, who waits);
    /// `api`: `Some(skip_history)` for a batch of server API publishes (docs/api.md#publish).
    Messages {
        acks: Vec<(u32, usize, AckTo)>,
        api: Option<bool>,
    },
    /// This process's presence joins and leaves: each event's topic incarnation and `seq`
    /// (`pubsub::presence`).
    Events { seqs: Vec<(u64, u64)> },
    /// Joins and leaves on other nodes (cluster bus): what each changes.
    NodeEvents { changes: Vec<NodeChange> },
}

/// What a frozen batch carries besides its frames.
#[derive(Debug)]
enum Content {
    /// Messages: their acks, then (with history) their offsets, and their JSON form.
    Messages {
        acks: Vec<(u32, usize, AckTo)>,
        /// With history on: the epoch and the offset of the first message (the rest follow
        /// by 1).
        seq: Option<(Epoch, u64)>,
        /// The JSON envelopes, built by the first worker with a subscriber (or by the history
        /// append), then shared by every worker.
        json: OnceLock<Form>,
    },
    /// This process's presence events: each one's incarnation and `seq`.
    Events { seqs: Vec<(u64, u64)> },
    /// Other nodes' presence events: what each changes.
    NodeEvents { changes: Vec<NodeChange> },
}

impl BatchBuilder {
    /// An empty batch for `room`.
    pub fn new(room: Arc<SharedRoom>) -> BatchBuilder {
        BatchBuilder {
            room: Some(room.clone()),
            ..BatchBuilder::for_topic(room.name.clone())
        }
    }

    /// An empty batch for `topic`, whose room (if any) the pipeline resolves after the
    /// history append: a publish to a topic without local members, a batch from the bus.
    pub fn for_topic(topic: Arc<str>) -> BatchBuilder {
        BatchBuilder {
            topic,
            room: None,
            raw: Vec::new(),
            messages: Vec::new(),
            kind: Kind::Messages {
                acks: Vec::new(),
                api: None,
            },
            excluded: Vec::new(),
        }
    }

    /// The topic (room name).
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// An empty batch of this process's presence events (join/leave envelopes, as text
    /// frames) for `room`: only members of class `JsonPresence` get them, each but its own.
    pub fn events(room: Arc<SharedRoom>) -> BatchBuilder {
        BatchBuilder {
            kind: Kind::Events { seqs: Vec::new() },
            ..BatchBuilder::new(room)
        }
    }

    /// An empty batch of other nodes' presence events for `room` (cluster bus).
    pub fn node_events(room: Arc<SharedRoom>) -> BatchBuilder {
        BatchBuilder {
            kind: Kind::NodeEvents {
                changes: Vec::new(),
            },
            ..BatchBuilder::new(room)
        }
    }

    /// Appends a join or leave from another node (a node-event batch's): its `join`/`leave`
    /// envelope and what it changes.
    pub fn push_node_event(&mut self, change: NodeChange, envelope: &[u8]) {
        self.push(None, OpCode::Text, envelope);
        if let Kind::NodeEvents { changes } = &mut self.kind {
            changes.push(change);
        }
    }

    /// Appends one of this process's presence events about `sender`: its envelope and its
    /// incarnation and `seq`.
    pub(super) fn push_event(&mut self, sender: usize, envelope: &[u8], seq: (u64, u64)) {
        self.push(Some(sender), OpCode::Text, envelope);
        if let Kind::Events { seqs } = &mut self.kind {
            seqs.push(seq);
        }
    }

    /// Notes who waits for the result of the message about to be pushed by `sender`.
    pub(super) fn ack_next(&mut self, sender: usize, to: AckTo) {
        let next = self.messages.len() as u32;
        if let Kind::Messages { acks, .. } = &mut self.kind {
            acks.push((next, sender, to));
        }
    }

    /// Marks a batch of server API publishes (`pipeline::Source::Api`), appended to history
    /// unless `skip_history`.
    pub(super) fn for_api(mut self, skip_history: bool) -> BatchBuilder {
        self.kind = Kind::Messages {
            acks: Vec::new(),
            api: Some(skip_history),
        };
        self
    }

    /// `Some(skip_history)` for a batch of server API publishes (`pipeline::Source::Api`).
    pub fn api(&self) -> Option<bool> {
        match self.kind {
            Kind::Messages { api, .. } => api,
            _ => None,
        }
    }

    /// No message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Appends one pub/sub publish: `data` is the raw JSON text of the request's `data`.
    pub fn push_publish(&mut self, sender: Option<usize>, data: &[u8]) {
        self.push(sender, OpCode::Text, data);
        if let Some(m) = self.messages.last_mut() {
            m.publish = true;
        }
    }

    /// The next message pushed is not delivered to connection `key` of worker `worker`.
    pub fn exclude_next(&mut self, worker: usize, key: usize) {
        self.excluded
            .push((worker, key, self.messages.len() as u32));
    }

    /// Appends one message; its frame is encoded here, once.
    pub fn push(&mut self, sender: Option<usize>, kind: OpCode, payload: &[u8]) {
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut head, kind, true, false, payload.len() as u64);
        let start = self.raw.len() as u32;
        self.raw.extend_from_slice(&head[..n]);
        self.raw.extend_from_slice(payload);
        self.messages.push(Message {
            sender,
            kind,
            frame: (start, self.raw.len() as u32),
            payload_start: start + n as u32,
            publish: false,
        });
    }

    /// Freezes the batch. `origin` is the worker whose connections sent the messages (`None`
    /// for a source outside the workers); with `exclude_senders` (no `--echo`), a sender on
    /// the origin worker does not get its own messages back.
    pub fn freeze(self, origin: Option<usize>, exclude_senders: bool) -> FrozenBatch {
        let mut own = Vec::new();
        let events = !matches!(self.kind, Kind::Messages { .. });
        if (exclude_senders || events) && origin.is_some() {
            own = (0..self.messages.len() as u32)
                .filter_map(|i| Some((self.messages[i as usize].sender?, i)))
                .collect();
            // Grouped by sender, in arrival order within a sender: found by binary search.
            own.sort_unstable();
        }
        FrozenBatch {
            topic: self.topic,
            room: self.room,
            origin,
            raw: Arc::from(self.raw.as_slice()),
            messages: self.messages,
            own,
            excluded: {
                let mut excluded = self.excluded;
                excluded.sort_unstable();
                excluded
            },
            content: match self.kind {
                Kind::Messages { acks, .. } => Content::Messages {
                    acks,
                    seq: None,
                    json: OnceLock::new(),
                },
                Kind::Events { seqs } => Content::Events { seqs },
                Kind::NodeEvents { changes } => Content::NodeEvents { changes },
            },
            deflated: Default::default(),
        }
    }
}

/// A room's messages of one turn, frozen: what every receiver on every worker gets.
pub struct FrozenBatch {
    topic: Arc<str>,
    /// `None` until resolved when the topic had no room (`BatchBuilder::for_topic`); a batch
    /// handed to delivery always has one.
    room: Option<Arc<SharedRoom>>,
    origin: Option<usize>,
    messages: Vec<Message>,
    /// (sender, message index), sorted; empty when senders get their own messages back.
    own: Vec<(usize, u32)>,
    /// (worker, slab key, message index) of messages a connection must not get, sorted
    /// (`BatchBuilder::exclude_next`).
    excluded: Vec<(usize, usize, u32)>,
    /// The raw frames, back to back (class `Raw`; for an event batch, the event envelopes).
    raw: Arc<[u8]>,
    content: Content,
    /// The compressed forms of the raw and the JSON form (permessage-deflate), each built by
    /// the first worker with a member of a `*Deflate` class, then shared; `None` inside: no
    /// message was worth compressing, the plain form serves.
    deflated: [OnceLock<Option<Form>>; 2],
}

impl FrozenBatch {
    /// The room (`None`: the topic has no members in this process).
    pub fn room(&self) -> Option<&Arc<SharedRoom>> {
        self.room.as_ref()
    }

    /// The topic (room name).
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The workers to hand the batch to, read now, after the history append (history rule
    /// 2): the room's bitmask. A batch whose room emptied meanwhile, or that had none (a
    /// publish to a topic without members, a batch from the bus), looks its topic up again,
    /// since a client may have subscribed since (one directory lock, only then).
    pub fn resolve(&mut self, directory: &Directory) -> u64 {
        if let Some(room) = &self.room {
            let workers = room.workers.load(std::sync::atomic::Ordering::Acquire);
            if workers != 0 {
                return workers;
            }
        }
        self.room = directory.get(&self.topic);
        (self.room.as_ref()).map_or(0, |r| r.workers.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Bytes of the raw frames (what a queue of batches is budgeted by).
    pub fn bytes(&self) -> usize {
        self.raw.len()
    }

    /// The worker whose connections sent these messages (`None`: an outside source).
    pub fn origin(&self) -> Option<usize> {
        self.origin
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// The messages, in arrival order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The payload of message `i` (for forms built from payloads).
    pub fn payload(&self, i: usize) -> &[u8] {
        let m = &self.messages[i];
        &self.raw[m.payload_start as usize..m.frame.1 as usize]
    }

    /// The encoded form for members of `class`: every message back to back, built once.
    pub fn form(&self, class: Class) -> &Arc<[u8]> {
        if let Some(deflated) = self.deflated(class) {
            return &deflated.0;
        }
        match class.plain() {
            Class::Raw => &self.raw,
            _ => self.json().map_or(&self.raw, |j| &j.0),
        }
    }

    /// Where message `i` lies in the form of `class`.
    pub fn span(&self, class: Class, i: usize) -> (u32, u32) {
        if let Some(deflated) = self.deflated(class) {
            return deflated.1[i];
        }
        match class.plain() {
            Class::Raw => self.messages[i].frame,
            _ => self.json().map_or(self.messages[i].frame, |j| j.1[i]),
        }
    }

    /// The compressed form for a `*Deflate` class, built on first use (`None`: a plain class,
    /// or nothing was worth compressing).
    fn deflated(&self, class: Class) -> Option<&Form> {
        if !class.is_deflate() {
            return None;
        }
        let plain = class.plain();
        let which = usize::from(plain != Class::Raw);
        (self.deflated[which].get_or_init(|| {
            let spans: Vec<_> = (0..self.len()).map(|i| self.span(plain, i)).collect();
            crate::deflate::compress_form(self.form(plain), &spans)
        }))
        .as_ref()
    }

    /// Whether members of `class` get anything from this batch: presence events go only to
    /// subscribers that asked for them.
    pub fn wanted_by(&self, class: Class) -> bool {
        !self.is_events() || class.plain() == Class::JsonPresence
    }

    /// Takes the `published` replies to queue once the offsets are known: (offset with
    /// history on, sender, raw id).
    pub fn take_acks(&mut self) -> Vec<Ack> {
        let Content::Messages { acks, seq, .. } = &mut self.content else {
            return Vec::new();
        };
        let first = seq.as_ref().map(|s| s.1);
        std::mem::take(acks)
            .into_iter()
            .map(|(i, sender, id)| (first.map(|f| f + u64::from(i)), sender, id))
            .collect()
    }

    /// A batch of presence events.
    pub fn is_events(&self) -> bool {
        !matches!(self.content, Content::Messages { .. })
    }

    /// The topic incarnation and `seq` of event `i` of an event batch.
    pub fn event_seq(&self, i: usize) -> Option<(u64, u64)> {
        match &self.content {
            Content::Events { seqs } => seqs.get(i).copied(),
            _ => None,
        }
    }

    /// What event `i` of an event batch from the cluster bus changes (`None`: a local event).
    pub fn node_change(&self, i: usize) -> Option<&NodeChange> {
        match &self.content {
            Content::NodeEvents { changes } => changes.get(i),
            _ => None,
        }
    }

    /// An event batch from the cluster bus (joins and leaves on other nodes).
    pub fn is_node_events(&self) -> bool {
        matches!(self.content, Content::NodeEvents { .. })
    }

    /// With history on: the epoch and the offsets `first..=last` of the messages.
    pub fn seq(&self) -> Option<(&Epoch, u64, u64)> {
        let Content::Messages {
            seq: Some((epoch, first)),
            ..
        } = &self.content
        else {
            return None;
        };
        Some((epoch, *first, first + self.messages.len() as u64 - 1))
    }

    /// Gives the messages offsets from `first` in `epoch` (before the JSON form is built).
    pub fn set_seq(&mut self, epoch: &Epoch, first: u64) {
        if let Content::Messages { seq, .. } = &mut self.content {
            *seq = Some((epoch.clone(), first));
        }
    }

    /// The JSON form: one text frame per message, `{"op":"message",…}` (with its offset when
    /// history is on), built once.
    pub fn json(&self) -> Option<&Form> {
        let Content::Messages { seq, json, .. } = &self.content else {
            return None;
        };
        Some(json.get_or_init(|| {
            let topic = &*self.topic;
            let mut out = Vec::with_capacity(self.raw.len() + self.messages.len() * 48);
            let mut spans = Vec::with_capacity(self.messages.len());
            let mut env = Vec::with_capacity(256);
            for (i, m) in self.messages.iter().enumerate() {
                let offset = seq.as_ref().map(|(_, first)| first + i as u64);
                let payload = self.payload(i);
                env.clear();
                if m.publish {
                    envelope::message(&mut env, topic, payload, offset);
                } else if m.kind == OpCode::Text {
                    // Room text was validated as UTF-8 by the decoder.
                    let text = std::str::from_utf8(payload).unwrap_or_default();
                    envelope::message_text(&mut env, topic, text, offset);
                } else {
                    envelope::message_binary(&mut env, topic, payload, offset);
                }
                let mut head = [0u8; MAX_HEADER_LEN];
                let n = encode_header(&mut head, OpCode::Text, true, false, env.len() as u64);
                let start = out.len() as u32;
                out.extend_from_slice(&head[..n]);
                out.extend_from_slice(&env);
                spans.push((start, out.len() as u32));
            }
            (Arc::from(out.as_slice()), spans)
        }))
    }

    /// Indices of the messages `member` must not get back (its own, on the origin worker,
    /// without `--echo`; those excluded for it by `BatchBuilder::exclude_next`), in arrival
    /// order.
    pub fn own_messages(&self, worker: usize, member: usize) -> impl Iterator<Item = usize> + '_ {
        let own: &[(usize, u32)] = if self.origin == Some(worker) {
            let first = self.own.partition_point(|&(s, _)| s < member);
            let n = self.own[first..]
                .iter()
                .take_while(|&&(s, _)| s == member)
                .count();
            &self.own[first..first + n]
        } else {
            &[]
        };
        let first = (self.excluded).partition_point(|&(w, k, _)| (w, k) < (worker, member));
        let excluded = self.excluded[first..]
            .iter()
            .take_while(move |&&(w, k, _)| (w, k) == (worker, member))
            .map(|&(_, _, i)| i as usize);
        let mut own = own.iter().map(|&(_, i)| i as usize).peekable();
        let mut excluded = excluded.peekable();
        // Both in arrival order: merged, each index once.
        std::iter::from_fn(
            move || match (own.peek().copied(), excluded.peek().copied()) {
                (Some(a), Some(b)) if a == b => {
                    excluded.next();
                    own.next()
                }
                (Some(a), Some(b)) if b < a => excluded.next(),
                (Some(_), _) => own.next(),
                (None, _) => excluded.next(),
            },
        )
    }
}
