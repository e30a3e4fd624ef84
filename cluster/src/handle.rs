//! The worker-facing side: a cheap, cloneable handle that never blocks and never runs async code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::shard_of;
use crate::{BusMessage, ClusterError, PresenceMember};

/// What the bus tells the server. Delivered by the `on_event` callback, on the bus thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// `true`: every shard is connected (again). `false`: a shard just lost its connection (sent
    /// for each one that does). On `false` the server must treat every room as having lost
    /// continuity (docs/cluster.md#history-and-epochs: change the epoch of every topic with history): messages published
    /// while a link is down are lost, and only those followed by a later one show up as a `Gap`.
    Up(bool),
    /// One envelope from another node: messages of `room`, in the order `origin` sent them.
    Messages {
        /// The room (topic) name.
        room: Arc<str>,
        /// The publishing node's id.
        origin: Arc<str>,
        /// The messages, oldest first.
        messages: Vec<BusMessage>,
    },
    /// `missed` messages of `room` from `origin` never arrived (Redis outage, a full queue on
    /// the origin): the server changes the room's history epoch. Sent before the `Messages`
    /// event that revealed the gap. `missed: 0`: continuity broke by an unknown amount (the
    /// origin's sequence went backwards: a replay, a forgery, or an old-version node restarting).
    Gap {
        /// The room (topic) name.
        room: Arc<str>,
        /// The node whose messages were lost.
        origin: Arc<str>,
        /// How many messages were lost.
        missed: u64,
    },
    /// The end of a burst: the `Messages` (and `Gap`) events since the previous `Flush` were
    /// taken from Redis in one go (at most a bounded number of envelopes), and nothing more is
    /// ready now. A receiver may hold what those events produce and act on it as one group here
    /// (the server sends each worker one hand-off and one wake per burst). Every `Messages`
    /// event is followed by a `Flush`; `Up` is not part of bursts. A `Presence` answer may
    /// come inside one, at its place among the room's envelopes (`shard::queries`).
    Flush,
    /// The answer to [`BusHandle::presence`]: the room's live members on every node.
    Presence {
        /// The room asked about.
        room: Arc<str>,
        /// The caller's token, returned as given.
        token: u64,
        /// Members sorted by (node, client), or `Unavailable` when Redis could not answer.
        members: Result<Vec<PresenceMember>, ClusterError>,
    },
    /// The answer to [`BusHandle::cache_get`]: the value a [`BusHandle::try_publish_cached`]
    /// last stored for the room on any node (while its TTL runs).
    Cached {
        /// The room asked about.
        room: Arc<str>,
        /// The caller's token, returned as given.
        token: u64,
        /// The stored value, `None` when there is none, `Unavailable` when Redis could not
        /// answer.
        value: Result<Option<Bytes>, ClusterError>,
    },
}

/// A snapshot of the bus counters (all in messages, since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Every shard is connected.
    pub up: bool,
    /// Messages Redis accepted from this node.
    pub published: u64,
    /// Messages received from other nodes and delivered to `on_event` (presence changes not
    /// counted).
    pub received: u64,
    /// Messages of this node that never reached Redis (queue full, or Redis down).
    pub dropped: u64,
    /// Messages of other nodes detected as lost (sequence gaps).
    pub gaps: u64,
    /// Envelopes on our channels that did not decode (ignored).
    pub malformed: u64,
    /// Bytes of publishes held now, queued or on their way to Redis (a gauge, at most
    /// `BusConfig::max_queued_bytes`).
    pub queued_bytes: usize,
    /// Rooms whose outbound sequence numbering is kept now (a gauge, bounded: idle rooms are
    /// forgotten, at most 65,536 per shard).
    pub sequence_rooms: usize,
    /// Rooms forgotten over that bound although a loss in them was not yet visible to
    /// receivers as a gap (that loss is then only in `dropped`).
    pub sequence_forced_evictions: u64,
    /// Times another running process was seen using this node's id (see `shard::members`).
    pub duplicate_node_id: u64,
    /// Presence entries read from Redis that no node could have written (not UTF-8, not
    /// parseable, or an expiry beyond the longest TTL): skipped and deleted.
    pub bad_presence: u64,
}

/// Counters shared by the handle and the bus thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub gaps: AtomicU64,
    pub malformed: AtomicU64,
    pub up_shards: AtomicUsize,
    /// Bytes of publishes accepted by `try_publish` and not yet answered by Redis (or dropped).
    pub queued_bytes: AtomicUsize,
    /// Rooms with outbound numbering kept, all shards (`streams`).
    pub sequence_rooms: AtomicUsize,
    pub sequence_forced_evictions: AtomicU64,
    pub duplicate_node_id: AtomicU64,
    pub bad_presence: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds without ever wrapping (for counts a forged envelope can make huge: `gaps`).
    pub fn add_saturating(counter: &AtomicU64, n: u64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_add(n))
        });
    }

    /// Takes `bytes` of the publish budget; `false` (nothing taken) when that would exceed `max`.
    pub fn reserve(&self, bytes: usize, max: usize) -> bool {
        self.queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                q.checked_add(bytes).filter(|&after| after <= max)
            })
            .is_ok()
    }

    /// Gives back what `reserve` took, once the publish is answered or dropped.
    pub fn release(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What a publish of `messages` in `room` is charged against `max_queued_bytes`: its payloads
/// plus the envelope and command overhead (it is held once encoded, until Redis answers).
pub(crate) fn publish_cost(room: &str, messages: &[BusMessage]) -> usize {
    const PER_PUBLISH: usize = 64;
    const PER_MESSAGE: usize = 5;
    let payloads: usize = messages.iter().map(|m| PER_MESSAGE + m.payload.len()).sum();
    PER_PUBLISH + room.len() + payloads
}

/// One turn's messages of one room, on its way to the bus thread.
#[derive(Debug)]
pub(crate) struct Publish {
    pub room: Arc<str>,
    pub messages: Vec<BusMessage>,
    /// Its [`publish_cost`], reserved in `Counters::queued_bytes` until released.
    pub bytes: usize,
    /// A value to store under the room's cache key after the PUBLISH, with its TTL.
    pub cache: Option<(Bytes, Duration)>,
}

/// Everything but publishing. Unbounded: these come at client connect/subscribe rate, and
/// dropping one would leave a subscription or a presence entry wrong until restart.
#[derive(Debug)]
pub(crate) enum Control {
    Subscribe(Arc<str>),
    Unsubscribe(Arc<str>),
    PresenceJoin {
        room: Arc<str>,
        client: Arc<str>,
        user: Arc<str>,
    },
    PresenceLeave {
        room: Arc<str>,
        client: Arc<str>,
    },
    Presence {
        room: Arc<str>,
        token: u64,
    },
    CacheGet {
        room: Arc<str>,
        token: u64,
    },
    Shutdown,
}

/// The sending side of one shard. Publishes dropped on a full queue are remembered per room so
/// the bus thread skips their sequence numbers: receivers then see the loss as a gap.
#[derive(Debug)]
pub(crate) struct ShardTx {
    pub data: mpsc::Sender<Publish>,
    pub control: mpsc::UnboundedSender<Control>,
    pub skipped: Mutex<HashMap<Arc<str>, u64>>,
    pub has_skipped: AtomicBool,
}

impl ShardTx {
    /// `n` messages of `room` dropped before reaching the bus thread: counted, and their
    /// sequence numbers skipped so receivers see the gap.
    fn skip(&self, counters: &Counters, room: Arc<str>, n: u64) {
        Counters::add(&counters.dropped, n);
        if let Ok(mut skipped) = self.skipped.lock() {
            *skipped.entry(room).or_insert(0) += n;
        }
        self.has_skipped.store(true, Ordering::Release);
    }

    /// Takes the per-room counts of messages dropped on a full queue.
    pub fn take_skipped(&self) -> Option<HashMap<Arc<str>, u64>> {
        if !self.has_skipped.swap(false, Ordering::Acquire) {
            return None;
        }
        self.skipped
            .lock()
            .ok()
            .map(|mut m| std::mem::take(&mut *m))
    }
}

/// The node's handle on the bus: `Clone + Send`, every method is non-blocking (a `try_send` or an
/// unbounded send), none needs an async runtime.
#[derive(Debug, Clone)]
pub struct BusHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node_id: Arc<str>,
    shards: Vec<Arc<ShardTx>>,
    counters: Arc<Counters>,
    max_queued_bytes: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl BusHandle {
    pub(crate) fn new(
        node_id: Arc<str>,
        shards: Vec<Arc<ShardTx>>,
        counters: Arc<Counters>,
        max_queued_bytes: usize,
        thread: JoinHandle<()>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                node_id,
                shards,
                counters,
                max_queued_bytes,
                thread: Mutex::new(Some(thread)),
            }),
        }
    }

    fn shard(&self, room: &str) -> &ShardTx {
        &self.inner.shards[shard_of(room, self.inner.shards.len())]
    }

    fn control(&self, room: &str, op: Control) -> Result<(), ClusterError> {
        self.shard(room)
            .control
            .send(op)
            .map_err(|_| ClusterError::Closed)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Queues one turn's messages of `room` for one PUBLISH. Never blocks: on a full queue (in
    /// count, `queue_capacity` per shard, or in bytes, `max_queued_bytes` in all) the messages
    /// are dropped, counted in `dropped`, and receivers will see the gap.
    pub fn try_publish(
        &self,
        room: impl Into<Arc<str>>,
        messages: Vec<BusMessage>,
    ) -> Result<(), ClusterError> {
        self.try_publish_cached(room, messages, None)
    }

    /// [`BusHandle::try_publish`], and with `cache` (a value and its TTL) a `SET` of the
    /// room's cache key right after the PUBLISH, on the same connection, dropped with it:
    /// what [`BusHandle::cache_get`] answers on any node.
    pub fn try_publish_cached(
        &self,
        room: impl Into<Arc<str>>,
        messages: Vec<BusMessage>,
        cache: Option<(Bytes, Duration)>,
    ) -> Result<(), ClusterError> {
        if messages.is_empty() {
            return Ok(());
        }
        let room = room.into();
        let shard = self.shard(&room);
        let counters = &self.inner.counters;
        let extra = cache.as_ref().map_or(0, |(v, _)| v.len());
        let bytes = publish_cost(&room, &messages) + extra;
        if !counters.reserve(bytes, self.inner.max_queued_bytes) {
            shard.skip(counters, room, messages.len() as u64);
            return Err(ClusterError::QueueFull);
        }
        let p = Publish {
            room,
            messages,
            bytes,
            cache,
        };
        match shard.data.try_send(p) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(p)) => {
                counters.release(p.bytes);
                shard.skip(counters, p.room, p.messages.len() as u64);
                Err(ClusterError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(p)) => {
                counters.release(p.bytes);
                Counters::add(&counters.dropped, p.messages.len() as u64);
                Err(ClusterError::Closed)
            }
        }
    }

    /// Starts receiving `room` from other nodes: call on the room's first local member.
    pub fn subscribe(&self, room: impl Into<Arc<str>>) -> Result<(), ClusterError> {
        let room = room.into();
        self.control(&room.clone(), Control::Subscribe(room))
    }

    /// Stops receiving `room`: call when its last local member leaves. Envelopes still in flight
    /// are discarded, and what is published while unsubscribed is not counted as a gap.
    pub fn unsubscribe(&self, room: impl Into<Arc<str>>) -> Result<(), ClusterError> {
        let room = room.into();
        self.control(&room.clone(), Control::Unsubscribe(room))
    }

    /// Adds a local client to `room`'s cluster-wide presence (refreshed until it leaves).
    pub fn presence_join(
        &self,
        room: impl Into<Arc<str>>,
        client: impl Into<Arc<str>>,
        user: impl Into<Arc<str>>,
    ) -> Result<(), ClusterError> {
        let room = room.into();
        let op = Control::PresenceJoin {
            room: room.clone(),
            client: client.into(),
            user: user.into(),
        };
        self.control(&room, op)
    }

    /// Removes a local client from `room`'s presence.
    pub fn presence_leave(
        &self,
        room: impl Into<Arc<str>>,
        client: impl Into<Arc<str>>,
    ) -> Result<(), ClusterError> {
        let room = room.into();
        self.control(
            &room.clone(),
            Control::PresenceLeave {
                room,
                client: client.into(),
            },
        )
    }

    /// Asks for `room`'s members on every node; the answer comes as [`BusEvent::Presence`] with
    /// this `token` (so a worker is woken like for any other bus event).
    pub fn presence(&self, room: impl Into<Arc<str>>, token: u64) -> Result<(), ClusterError> {
        let room = room.into();
        self.control(&room.clone(), Control::Presence { room, token })
    }

    /// Asks for the value last stored for `room` by [`BusHandle::try_publish_cached`] on any
    /// node; the answer comes as [`BusEvent::Cached`] with this `token` (at once `Unavailable`
    /// while the shard's link is down).
    pub fn cache_get(&self, room: impl Into<Arc<str>>, token: u64) -> Result<(), ClusterError> {
        let room = room.into();
        self.control(&room.clone(), Control::CacheGet { room, token })
    }

    /// The counters now.
    pub fn stats(&self) -> BusStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BusStats {
            up: c.up_shards.load(Ordering::Acquire) == self.inner.shards.len(),
            published: get(&c.published),
            received: get(&c.received),
            dropped: get(&c.dropped),
            gaps: get(&c.gaps),
            malformed: get(&c.malformed),
            queued_bytes: c.queued_bytes.load(Ordering::Relaxed),
            sequence_rooms: c.sequence_rooms.load(Ordering::Relaxed),
            sequence_forced_evictions: get(&c.sequence_forced_evictions),
            duplicate_node_id: get(&c.duplicate_node_id),
            bad_presence: get(&c.bad_presence),
        }
    }

    /// Removes this node's presence entries (best effort, at most ~1 s), stops the bus thread and
    /// waits for it. Later calls on any clone fail with `Closed`. Must not be called from
    /// `on_event` (the bus thread would wait for itself); there it only asks the thread to stop.
    pub fn shutdown(&self) {
        for s in &self.inner.shards {
            let _ = s.control.send(Control::Shutdown);
        }
        let thread = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}
