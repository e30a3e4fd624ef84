//! The bridge between the workers and the cluster bus (docs/cluster.md, crate `ringcast-cluster`).
//!
//! * **Out.** After a worker freezes a room's batch of local messages it calls
//!   [`Bridge::publish`] (`fanout::Fanout::flush_batches`): one `try_publish` per room per
//!   turn, payloads shared with the batch's buffer (`fanout::bus::outbound`, no copy). Batches
//!   that came from the bus are delivered through `Remote::Deliver` and never reach `publish`,
//!   so nothing is re-published.
//! * **Subscriptions.** The bridge is the room directory's [`RoomWatch`]: SUBSCRIBE on a room's
//!   first member in the process, UNSUBSCRIBE on its last (both under the directory's lock, so
//!   in order).
//! * **Presence.** Every member (room mode and pub/sub subscribers) is registered with
//!   `presence_join` / `presence_leave` under its cluster-unique client id, so the Redis hash
//!   spans nodes. A pub/sub `presence` request is answered from that hash
//!   ([`Bridge::ask_presence`]; the bus thread formats the reply and hands it to the asking
//!   worker as `Remote::Reply`); so is the snapshot of a `subscribe` with `"presence":true`
//!   (the other nodes' members go to the worker as `Remote::Snapshot`, merged there with its
//!   own registry's, see [`AskFor::Subscribe`]).
//! * **In.** `fanout::bus::Inbound` turns bus events into batches for the local workers
//!   (`main` builds it with the workers' `Peers` and the bus thread's waker, so this module
//!   imports neither the fan-out nor the workers).
//! * **Continuity.** `Gap` and `Up(false)` are forwarded too: `fanout::bus::Inbound` starts a
//!   new history epoch for the room (every room), so nobody recovers across a hole.
//!
//! Workers never block on the bus: every call here is a queue push.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringcast_cluster::{
    Bus, BusConfig, BusEvent, BusMessage, BusStats, Bytes, ClusterBus, ClusterError, MessageKind,
};
use ringcast_pubsub::history::{History, SharedSpan};

use crate::config::Config;
use crate::conn::outq::HoldId;
use crate::rooms::RoomWatch;

/// The bus room of the server API's orders (docs/api.md#across-the-cluster): longer than any
/// topic (256 bytes) or room (64) a client may name, so no client can join or publish to it.
pub const API_ORDERS_ROOM: &str = concat!(
    "ringcast-server-api-orders/",
    "................................................................",
    "................................................................",
    "................................................................",
    "................................................................",
);

/// The bus room of the Pusher dialect's channel state (docs/pusher.md#across-a-cluster,
/// `crate::pusher::nodes`): subscription counts and presence users per node. Like
/// [`API_ORDERS_ROOM`], longer than any name a client may use.
pub const PUSHER_STATE_ROOM: &str = concat!(
    "ringcast-pusher-state/",
    "................................................................",
    "................................................................",
    "................................................................",
    "................................................................",
);

/// What the bus thread's event handler remembers (to log changes only).
#[derive(Default)]
pub struct BusState {
    /// Every shard is connected (as last reported by `BusEvent::Up`).
    up: AtomicBool,
}

impl BusState {
    /// Records an `Up` report; logs when the node-level state changes.
    fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::AcqRel) != up {
            if up {
                tracing::info!("cluster bus up: every Redis shard connected");
            } else {
                tracing::warn!("cluster bus down: a Redis shard is unreachable, reconnecting");
            }
        }
    }
}

/// A question about a topic's cluster-wide presence waiting for Redis: where the answer goes.
pub struct PresenceAsk {
    /// The asking connection's worker, slab key and slot generation.
    pub conn: (usize, usize, u32),
    /// The topic asked about.
    pub topic: Arc<str>,
    /// What the answer is for.
    pub purpose: AskFor,
}

/// What a cluster-wide presence answer is for.
pub enum AskFor {
    /// A pub/sub `presence` request: the bus thread replies with the snapshot, this `id`
    /// echoed.
    Request {
        /// The request's `id`.
        id: Option<Box<str>>,
    },
    /// The snapshot of a `subscribe` with `"presence":true` in local room `room_id`: the
    /// asking worker merges the other nodes' members with its own registry's, whose events it
    /// holds back until then.
    Subscribe {
        /// The subscribed room's id (its members are cut if the answer cannot be queued).
        room_id: u64,
    },
    /// A server API `presence` or `presence_stats` call (docs/api.md#across-the-cluster): the
    /// asking worker hands the members to the API connection, which fills its held answer.
    Api,
    /// Not presence: the last event of a Pusher cache channel for a subscriber
    /// (`Bridge::ask_cache`, docs/pusher.md#cache-channels), which fills `hold` in its queue.
    PusherCache {
        /// The place held after its `subscription_succeeded`.
        hold: HoldId,
    },
}

/// A node's link to the cluster. One per process, in `Shared`.
pub struct Bridge {
    /// The bus, by its interface (Redis today; another transport plugs in here).
    bus: Box<dyn ClusterBus>,
    asks: Mutex<HashMap<u64, PresenceAsk>>,
    next_token: AtomicU64,
    /// Messages from other nodes dropped here for an invalid payload (added to the bus's
    /// `malformed` count).
    malformed: AtomicU64,
}

impl Bridge {
    /// Starts the bus thread when `--cluster` is set, as node `node_id` (the pub/sub hub's, so
    /// history epochs and client ids name the same node); `None` otherwise (no thread, no
    /// cost). `Up` and `Gap` update the bus state here; every event then goes to `forward`, on
    /// the bus thread.
    pub fn start(
        config: &Config,
        node_id: &str,
        forward: impl Fn(BusEvent) + Send + 'static,
    ) -> Result<Option<Arc<Bridge>>, ClusterError> {
        if config.cluster.is_empty() {
            return Ok(None);
        }
        let mut cfg = BusConfig::new(config.cluster.iter().cloned());
        cfg.prefix = config.cluster_prefix.clone();
        cfg.node_id = node_id.to_owned();
        cfg.presence_ttl = config.cluster_presence_ttl();
        let events_state = BusState::default();
        let bus = Bus::start(cfg, move |event: BusEvent| match event {
            BusEvent::Up(up) => {
                events_state.set_up(up);
                forward(BusEvent::Up(up));
            }
            BusEvent::Gap {
                room,
                origin,
                missed,
            } => {
                if missed == 0 {
                    tracing::warn!(%room, %origin, "cluster bus: sequence went back, continuity broken");
                } else {
                    tracing::warn!(%room, %origin, missed, "cluster bus: messages lost");
                }
                forward(BusEvent::Gap {
                    room,
                    origin,
                    missed,
                });
            }
            other => forward(other),
        })?;
        tracing::info!(
            node = bus.node_id(),
            shards = config.cluster.len(),
            "cluster bus started"
        );
        let bridge = Bridge {
            bus: Box::new(bus),
            asks: Mutex::default(),
            next_token: AtomicU64::new(1),
            malformed: AtomicU64::new(0),
        };
        // A node that serves the server API hears the other nodes' orders, members or not
        // (docs/cluster.md#what-travels); one without subscribes to rooms with members only.
        if config.api.is_some() {
            let _ = bridge.bus.subscribe(Arc::from(API_ORDERS_ROOM));
        }
        // A node with Pusher apps hears every node's Pusher channel state from its start.
        if config.pusher.is_some() {
            let _ = bridge.bus.subscribe(Arc::from(PUSHER_STATE_ROOM));
        }
        Ok(Some(Arc::new(bridge)))
    }

    /// Publishes an order of the server API (disconnect, subscribe, unsubscribe, ban) for the
    /// other nodes, on the room they all subscribe to (docs/api.md#across-the-cluster).
    pub fn publish_order(&self, json: Vec<u8>) {
        let message = BusMessage::new(MessageKind::Json, json);
        let _ = self
            .bus
            .try_publish(Arc::from(API_ORDERS_ROOM), vec![message]);
    }

    /// Publishes a delta of this node's Pusher channel state for the other nodes.
    pub fn publish_pusher_state(&self, json: Vec<u8>) {
        let message = BusMessage::new(MessageKind::Json, json);
        let _ = (self.bus).try_publish(Arc::from(PUSHER_STATE_ROOM), vec![message]);
    }

    /// Queues one turn's local messages of `room` for one PUBLISH, with `cache` (a Pusher
    /// cache channel's last event and its TTL) stored under the room's key in Redis after it
    /// (docs/pusher.md#cache-channels). A full queue is counted by the bus (`dropped`, and
    /// receivers see the gap).
    pub fn publish(
        &self,
        room: Arc<str>,
        messages: Vec<BusMessage>,
        cache: Option<(Bytes, Duration)>,
    ) {
        let _ = self.bus.try_publish_cached(room, messages, cache);
    }

    /// Asks Redis for the cache value of `ask.topic` (a Pusher cache channel's last event on
    /// any node); the answer comes back on the bus thread as `BusEvent::Cached`. `None` when
    /// the bus did not take the question (no answer will come).
    pub fn ask_cache(&self, ask: PresenceAsk) -> Option<u64> {
        self.ask(ask, |bus, topic, token| bus.cache_get(topic, token))
    }

    /// Adds a local member to the room's cluster-wide presence.
    pub fn presence_join(&self, room: &Arc<str>, client: &str, user: &str) {
        let _ = self.bus.presence_join(room.clone(), client, user);
    }

    /// Removes a local member from the room's cluster-wide presence.
    pub fn presence_leave(&self, room: &Arc<str>, client: &str) {
        let _ = self.bus.presence_leave(room.clone(), client);
    }

    /// Asks Redis for the members of `ask.topic` on every node; the answer comes back on the
    /// bus thread (`fanout::bus::Inbound`), which hands it to the asking connection's worker.
    /// Returns the token the answer carries.
    pub fn ask_presence(&self, ask: PresenceAsk) -> u64 {
        self.try_ask_presence(ask).unwrap_or(0)
    }

    /// [`Bridge::ask_presence`], or `None` when the bus did not take the question (no answer
    /// will come: the caller answers without the other nodes).
    pub fn try_ask_presence(&self, ask: PresenceAsk) -> Option<u64> {
        self.ask(ask, |bus, topic, token| bus.presence(topic, token))
    }

    /// Notes `ask` under a new token and puts the question to the bus with `put`; `None`
    /// (the ask forgotten) when the bus did not take it.
    fn ask(
        &self,
        ask: PresenceAsk,
        put: impl FnOnce(&dyn ClusterBus, Arc<str>, u64) -> Result<(), ClusterError>,
    ) -> Option<u64> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let topic = ask.topic.clone();
        let mut asks = self.asks.lock().unwrap_or_else(|e| e.into_inner());
        asks.insert(token, ask);
        drop(asks);
        if put(&*self.bus, topic, token).is_err() {
            self.take_ask(token);
            return None;
        }
        Some(token)
    }

    /// This node's id (the `node` of its members in Redis).
    pub fn node_id(&self) -> &str {
        self.bus.node_id()
    }

    /// The request an answer with `token` belongs to.
    pub fn take_ask(&self, token: u64) -> Option<PresenceAsk> {
        let mut asks = self.asks.lock().unwrap_or_else(|e| e.into_inner());
        asks.remove(&token)
    }

    /// A message from another node was dropped for an invalid payload (text not UTF-8, a
    /// publish's data not one JSON value).
    pub fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// The bus counters (`malformed` includes the payloads dropped here).
    pub fn stats(&self) -> BusStats {
        let mut stats = self.bus.stats();
        stats.malformed += self.malformed.load(Ordering::Relaxed);
        stats
    }

    /// Waits until every Redis link is up, at most `within`; true when they are. The start
    /// calls it before the listening line, so a node does not announce itself while what its
    /// clients publish would be dropped (docs/cluster.md#starting). Polls: it runs once, at
    /// start, off the workers.
    pub fn wait_up(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.stats().up {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes this node's presence entries and stops the bus thread (after the drain).
    pub fn shutdown(&self) {
        self.bus.shutdown();
    }
}

/// The room directory's watch in a cluster: SUBSCRIBE on a room's first member in the
/// process, UNSUBSCRIBE on its last. While a node is not subscribed it receives nothing of the
/// topic from other nodes, so its history of the topic has a hole there: the first member
/// marks it (`History::mark_hole`), synchronously, before its own subscribe reads the position
/// or answers a resume, so a resume from before that point is never answered
/// `recovered:true` (issue 21 row 2); what is held is still replayed to `since:{last:N}`.
pub struct BusRooms {
    bridge: Arc<Bridge>,
    history: Option<History<SharedSpan>>,
}

impl BusRooms {
    /// The watch for `bridge`, ending continuity in `history` (with history on).
    pub fn new(bridge: Arc<Bridge>, history: Option<History<SharedSpan>>) -> BusRooms {
        BusRooms { bridge, history }
    }
}

impl RoomWatch for BusRooms {
    fn opened(&self, name: &Arc<str>) {
        if let Some(history) = &self.history {
            history.mark_hole(name);
        }
        let _ = self.bridge.bus.subscribe(name.clone());
    }

    fn closed(&self, name: &Arc<str>) {
        let _ = self.bridge.bus.unsubscribe(name.clone());
    }
}
