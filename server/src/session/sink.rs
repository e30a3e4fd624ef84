//! The one interface through which a session acts: publish into a room, reply to its client,
//! close (and, for the handshake, join a room). A session never sees a socket, a ring or
//! another connection; what must be ordered with the rest of the worker is returned as an
//! [`End`] for the worker to apply.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::{Event, MessageKind, OpCode, encode_frame};

use ringcast_pubsub::history::SharedSpan;
use ringcast_pubsub::presence::ClientId;

use crate::bridge::Bridge;
use crate::config::Config;
use crate::conn::outq::{HoldId, OutQueue};
use crate::fanout::turn::TurnBatches;
use crate::limits::MAX_COLLAPSED_PONGS;
use crate::metrics::WorkerMetrics;
use crate::pubsub::Hub;
use crate::rooms::local::{Class, LocalRooms, Slot};
use crate::rooms::stream::NodeView;
use crate::rooms::{JoinError, SharedRoom};
use crate::shared::Shared;

/// How a session ends its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Queue a Close frame (empty when `code` is `None`) after this turn's batches, leave the
    /// room, and close once it is flushed.
    Close {
        /// The code; `None` for an empty Close (echoing an empty one).
        code: Option<CloseCode>,
        /// The reason.
        reason: String,
    },
    /// The last bytes (an HTTP answer) are queued: close once they are flushed.
    Finish,
    /// The client does not keep up: what it has not started to receive is dropped, and it
    /// gets Close 1008 with the cut's reason (counted in
    /// `ringcast_backpressure_disconnects_total`).
    Cut(Cut),
}

/// Why a client that does not keep up is cut (docs/limits.md#backpressure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Its unsent bytes passed `--max-backpressure` (`OutQueue::over_limit`).
    Backpressure,
    /// It sent more than `MAX_COLLAPSED_PONGS` Pings without taking a byte.
    PingFlood,
    /// Its worker fell behind the others and dropped messages meant for it.
    FellBehind,
}

impl Cut {
    /// The Close reason the client gets.
    pub fn reason(self) -> &'static str {
        match self {
            Cut::Backpressure => "backpressure limit exceeded",
            Cut::PingFlood => "ping flood",
            Cut::FellBehind => "server fell behind",
        }
    }
}

/// What a session did through its sink.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes were queued for this connection: flush it this turn.
    pub queued: bool,
    /// The session asked to end the connection.
    pub end: Option<End>,
}

/// The one interface through which a session acts on the world.
pub struct Sink<'a> {
    key: usize,
    worker: usize,
    shared: &'a Shared,
    out: &'a mut OutQueue,
    batches: &'a mut TurnBatches,
    rooms: &'a mut LocalRooms,
    queued: bool,
    end: Option<End>,
    generation: u32,
    /// Members (other than this connection) moved to another slot by a leave: (key, room id,
    /// new slot), for the worker to write into their sessions.
    moved: Vec<(usize, u64, Slot)>,
    /// The connection negotiated permessage-deflate: long replies and replays go compressed.
    deflate: bool,
}

impl<'a> Sink<'a> {
    /// A sink for connection `key` on worker `worker`, queueing into `out` and `batches`.
    pub fn new(
        key: usize,
        worker: usize,
        shared: &'a Shared,
        out: &'a mut OutQueue,
        batches: &'a mut TurnBatches,
        rooms: &'a mut LocalRooms,
    ) -> Sink<'a> {
        Sink {
            key,
            worker,
            shared,
            out,
            batches,
            rooms,
            queued: false,
            end: None,
            generation: 0,
            moved: Vec::new(),
            deflate: false,
        }
    }

    /// Whether the connection negotiated permessage-deflate (docs/compression.md): its
    /// replies, snapshots and replays at least `--compression-min-size` long go compressed.
    pub fn set_deflate(&mut self, deflate: bool) {
        self.deflate = deflate;
    }

    /// The connection's slot generation (for its cluster-unique client id).
    pub fn with_generation(mut self, generation: u32) -> Sink<'a> {
        self.generation = generation;
        self
    }

    /// Worker, slab key and slot generation: where an answer computed elsewhere is sent.
    pub fn address(&self) -> (usize, usize, u32) {
        (self.worker, self.key, self.generation)
    }

    /// This connection's cluster-unique client id.
    pub fn client_id(&self) -> ClientId {
        self.shared
            .hub
            .client_id(self.worker, self.key, self.generation)
    }

    /// Publishes a pub/sub `data` (raw JSON text) to `topic`, into `room` when the topic has
    /// one (`None`: no members in this process yet; the pipeline still appends it to history,
    /// publishes it to the cluster and looks the topic up again). With an `id`, the
    /// `published` reply (with the offset when history is on) is queued by the pipeline at
    /// the end of the turn.
    pub fn publish_json(
        &mut self,
        topic: &Arc<str>,
        room: Option<&Arc<SharedRoom>>,
        data: &[u8],
        ack: Option<&str>,
    ) {
        self.batches.push_publish(topic, room, self.key, data, ack);
    }

    /// Sends a presence event (an encoded join/leave envelope) about this connection to the
    /// presence subscribers of `room`, through the fan-out.
    pub fn event(&mut self, room: &Arc<SharedRoom>, envelope: &[u8], seq: (u64, u64)) {
        self.batches.push_event(room, self.key, envelope, seq);
    }

    /// This connection (a presence subscriber of `room`) got a snapshot that reflects events
    /// up to `seq` of `incarnation`: it gets the later ones, in order, and none of those
    /// (`RoomStream::snapshot_taken`).
    pub fn snapshot_taken(&mut self, room: &SharedRoom, incarnation: u64, seq: u64) {
        if let Some(local) = self.rooms.get_mut(room.id) {
            local
                .stream_mut()
                .snapshot_taken(self.key, incarnation, seq);
        }
    }

    /// This connection (a presence subscriber of `room`) waits for a snapshot computed
    /// elsewhere: it gets no event of the room until [`Sink::snapshot_taken`] says where its
    /// snapshot stands.
    pub fn snapshot_awaited(&mut self, room: &SharedRoom) {
        if let Some(local) = self.rooms.get_mut(room.id) {
            local.stream_mut().snapshot_awaited(self.key);
        }
    }

    /// This connection (a presence subscriber of `room`) got a snapshot that listed `clients`
    /// as the other nodes' members: it gets their later joins and leaves from the bus.
    pub fn node_view(&mut self, room: &SharedRoom, clients: HashSet<Box<str>>) {
        if let Some(local) = self.rooms.get_mut(room.id) {
            local.stream_mut().set_view(NodeView {
                key: self.key,
                clients,
                max: self.shared.config.presence_max,
            });
        }
    }

    /// Queues a history replay for this client, one shared, already-framed slice per message
    /// (no copy), as one unit of the backpressure rule.
    pub fn replay(&mut self, entries: &[SharedSpan]) {
        let backlog = self.out.unsent();
        for span in entries {
            let (start, end) = (span.range().start as u32, span.range().end as u32);
            // Compressed once per worker for every subscriber resuming the same range.
            let compressed = self
                .deflate
                .then(|| crate::deflate::replay::frame(span.buffer(), start, end));
            match compressed.flatten() {
                Some(frame) => (self.out).push_shared(&frame, 0, frame.len() as u32),
                None => (self.out).push_shared(span.buffer(), start, end),
            }
        }
        self.metrics()
            .messages_out
            .fetch_add(entries.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.charged(backlog);
    }

    /// Live messages of `room` with an offset ≤ `through` are not sent to this connection: its
    /// replay covered them (`RoomStream::replayed`).
    pub fn skip_through(&mut self, room: &SharedRoom, through: u64) {
        if let Some(local) = self.rooms.get_mut(room.id) {
            local.stream_mut().replayed(self.key, through);
        }
    }

    /// Leaves `room` (this connection sits at `slot`); returns the member of this connection's
    /// own that moved into the slot, if it is this connection (a re-subscribe in one read).
    pub fn leave(&mut self, room: &Arc<SharedRoom>, slot: Slot) -> Option<Slot> {
        let left = self.rooms.leave(room.id, slot);
        if left.empty {
            self.shared.directory.leave(room, self.worker);
        }
        match left.moved {
            Some(m) if m == self.key => Some(slot),
            Some(m) => {
                self.moved.push((m, room.id, slot));
                None
            }
            None => None,
        }
    }

    /// Slots moved by [`Sink::leave`], for the worker to apply to the moved members' sessions.
    pub fn take_moved(&mut self) -> Vec<(usize, u64, Slot)> {
        std::mem::take(&mut self.moved)
    }

    /// Publishes a message from this connection into `room` (delivered at the end of the turn).
    pub fn publish(&mut self, room: &Arc<SharedRoom>, kind: OpCode, payload: &[u8]) {
        self.batches.push(room, self.key, kind, payload);
    }

    /// Queues bytes for this client alone (an HTTP answer, whole frames).
    pub fn reply(&mut self, bytes: Vec<u8>) {
        self.out.push_owned(bytes);
        self.queued = true;
    }

    /// Queues one frame for this client alone. Replies count towards `--max-backpressure` like
    /// room frames: a client over it loses what it has not started to receive and is closed
    /// with 1008 (docs/limits.md#backpressure: every outbound byte counts).
    pub fn reply_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let backlog = self.out.unsent();
        if self.deflate {
            self.out.push_owned(self.frame(opcode, payload));
        } else {
            self.out.push_frame(opcode, payload);
        }
        self.count_reply();
        self.charged(backlog);
    }

    /// Reserves the place of a reply computed later (a cluster-wide presence snapshot): what is
    /// queued for this client after it waits until [`Sink::fill_frame`].
    pub fn hold(&mut self) -> HoldId {
        self.out.hold()
    }

    /// Puts one frame built from `payload` in the place of `hold` (nothing if a Close or a
    /// backpressure cut dropped the hold), which releases what waits behind it.
    pub fn fill_frame(&mut self, hold: HoldId, opcode: OpCode, payload: &[u8]) {
        let frame = self.frame(opcode, payload);
        self.fill(hold, frame);
    }

    /// `payload` as one frame, compressed when the connection negotiated it and it is long.
    fn frame(&self, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        if self.deflate {
            crate::deflate::reply::encode(&mut frame, opcode, payload);
        } else {
            encode_frame(&mut frame, opcode, payload);
        }
        frame
    }

    /// Puts `bytes` (whole frames, or whole HTTP answers) in the place of `hold`, under the
    /// backpressure rule (nothing if a Close or a cut dropped the hold).
    pub fn fill(&mut self, hold: HoldId, bytes: Vec<u8>) {
        let backlog = self.out.unsent();
        if self.out.fill(hold, bytes) {
            self.count_reply();
            self.charged(backlog);
        }
    }

    /// Queues whole frames computed elsewhere for this client (an answer from the cluster),
    /// under the backpressure rule.
    pub fn reply_bytes(&mut self, bytes: Vec<u8>) {
        let backlog = self.out.unsent();
        self.out.push_owned(bytes);
        self.count_reply();
        self.charged(backlog);
    }

    fn count_reply(&self) {
        (self.metrics().messages_out).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes were queued on top of `backlog`: flush this turn, and apply the backpressure
    /// rule (`OutQueue::over_limit`); over it, the worker cuts the client (`End::Cut`).
    fn charged(&mut self, backlog: usize) {
        self.queued = true;
        if self
            .out
            .over_limit(backlog, self.shared.config.max_backpressure)
        {
            self.cut(Cut::Backpressure);
        }
    }

    /// Asks the worker to cut this client: its unsent bytes dropped, Close 1008.
    pub fn cut(&mut self, cut: Cut) {
        self.end.get_or_insert(End::Cut(cut));
    }

    /// Owes this client a Pong for `payload`: only the latest owed one is sent (docs/limits.md#backpressure). A
    /// client that sends more than `MAX_COLLAPSED_PONGS` Pings without taking a byte is
    /// flooding: it is closed with 1008 (counted as backpressure), so it costs no more CPU.
    pub fn pong(&mut self, payload: &[u8]) {
        if self.out.set_pong(payload) {
            self.metrics()
                .messages_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.queued = true;
        if self.out.collapsed_pongs() > MAX_COLLAPSED_PONGS {
            self.cut(Cut::PingFlood);
        }
    }

    /// Asks for a Close frame and the end of the connection; nothing is read after it.
    pub fn close(&mut self, code: Option<CloseCode>, reason: String) {
        self.end.get_or_insert(End::Close { code, reason });
    }

    /// A received data message (`Event::Message`), counted (`messages_in`, `bytes_in` once
    /// inflated): its kind and payload, inflated with the worker's inflater when it was
    /// compressed (docs/compression.md#receiving); `None` when it does not inflate within
    /// `--max-message-bytes` or is not UTF-8 text: the connection is then closed (1009, 1007).
    pub fn received<'p>(&mut self, message: Event<'p>) -> Option<(MessageKind, Cow<'p, [u8]>)> {
        let Event::Message {
            kind,
            payload,
            compressed,
        } = message
        else {
            return None;
        };
        let max = self.shared.config.max_message_bytes;
        match crate::deflate::inflated(payload, compressed, kind, max) {
            Ok(p) => {
                let m = self.metrics();
                m.messages_in
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (m.bytes_in).fetch_add(p.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Some((kind, p))
            }
            Err(e) => {
                tracing::debug!(error = %e, "closing client for a bad compressed message");
                self.close(Some(CloseCode::from(&e)), e.to_string());
                None
            }
        }
    }

    /// The last bytes are queued: close once they are flushed.
    pub fn finish(&mut self) {
        self.end.get_or_insert(End::Finish);
    }

    /// Joins room `name` as a member of `class`; the worker's bit is set in the directory before
    /// this returns, so every publish the client can observe after its 101 reaches it.
    pub fn join(&mut self, name: &str, class: Class) -> Result<(Arc<SharedRoom>, Slot), JoinError> {
        let room = self.shared.directory.join(name, self.worker)?;
        let slot = self.rooms.join(room.id, self.key, class);
        // With history on, a worker's first member fixes the offset it delivers from: the bit
        // is set already, so every later append reaches this worker (history rule 1).
        let history = self.shared.hub.history.as_ref();
        match (history, self.rooms.get_mut(room.id)) {
            (Some(history), Some(local)) if local.stream().next_offset().is_none() => {
                let p = history.topic(name).position(self.shared.hub.now());
                local.stream_mut().start_offsets(p.epoch, p.offset);
            }
            _ => {}
        }
        Ok((room, slot))
    }

    /// The settings.
    pub fn config(&self) -> &'a Config {
        &self.shared.config
    }

    /// The pub/sub state every worker shares: topic history, the presence registry, the
    /// clock and the node's id.
    pub fn hub(&self) -> &'a Hub {
        &self.shared.hub
    }

    /// The Pusher channels of this process (docs/pusher.md).
    pub fn pusher(&self) -> &'a crate::pusher::registry::Registry {
        &self.shared.pusher
    }

    /// The last events of the Pusher cache channels (docs/pusher.md#cache-channels).
    pub fn pusher_cache(&self) -> &'a crate::pusher::cache::Cache {
        &self.shared.pusher_cache
    }

    /// Where webhook events go (docs/pusher.md#webhooks).
    pub fn webhooks(&self) -> &'a crate::webhooks::Webhooks {
        &self.shared.webhooks
    }

    /// The cluster bus (`--cluster`), if this node is in one.
    pub fn cluster(&self) -> Option<&'a Bridge> {
        self.shared.cluster.as_deref()
    }

    /// The room called `topic`, if it has members somewhere in this process.
    pub fn find_room(&self, topic: &str) -> Option<Arc<SharedRoom>> {
        self.shared.directory.get(topic)
    }

    /// The names of the rooms with members in this process (the server API's `channels`).
    pub fn room_names(&self) -> Vec<Arc<str>> {
        self.shared.directory.names()
    }

    /// This node's figures (the server API's `info`).
    pub fn node_info(&self) -> crate::pubsub::nodes::NodeInfo {
        self.shared.node_info()
    }

    /// The `/metrics` page: every worker's counters, rooms, pub/sub and cluster gauges.
    pub fn render_metrics(&self) -> String {
        self.shared.render_metrics()
    }

    /// This worker's counters.
    pub fn metrics(&self) -> &'a WorkerMetrics {
        &self.shared.metrics[self.worker]
    }

    /// The session asked to end the connection (close, finish or cut): input after it is not
    /// handled (a TLS connection feeds one record at a time; what follows a fatal frame in a
    /// later record of the same read must not be answered, as over a plain socket).
    pub fn ending(&self) -> bool {
        self.end.is_some()
    }

    /// What the session did.
    pub fn outcome(self) -> Outcome {
        Outcome {
            queued: self.queued,
            end: self.end,
        }
    }
}

/// What the server API session (`crate::api`, docs/api.md) does through its sink.
impl Sink<'_> {
    /// Publishes an API request's `data` (raw JSON text) to `topic` through the one pipeline
    /// (`fanout::pipeline::Source::Api`), into `room` when the topic has one; `ack` is the
    /// place this connection's queue holds for the result.
    pub fn publish_api(
        &mut self,
        topic: &Arc<str>,
        room: Option<&Arc<SharedRoom>>,
        data: &[u8],
        skip_history: bool,
        ack: crate::fanout::ack::AckTo,
    ) {
        (self.batches).push_api_publish(topic, room, self.key, data, skip_history, ack);
    }

    /// Publishes a Pusher HTTP API event (its finished frame) to `topic` through the one
    /// pipeline (`Source::Api`), into `room` when the topic has one; connection `exclude`
    /// (worker, slab key: the call's `socket_id` on this node) does not get it.
    pub fn publish_pusher(
        &mut self,
        topic: &Arc<str>,
        room: Option<&Arc<SharedRoom>>,
        frame: &[u8],
        exclude: Option<(usize, usize)>,
    ) {
        (self.batches).push_pusher_event(topic, room, self.key, frame, exclude);
    }

    /// Bytes queued for this connection and not sent yet.
    pub fn unsent(&self) -> usize {
        self.out.unsent()
    }
}
