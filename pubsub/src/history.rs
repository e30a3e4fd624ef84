//! Per-topic message history (docs/pubsub.md#history): one total order per topic across workers, offsets that
//! count up by exactly 1, an epoch that changes whenever continuity is lost, and bounds by count
//! (`--history-size`), age (`--history-ttl`) and a global byte budget (`--history-max-bytes`).
//!
//! # Ordering: one lock per topic per turn
//! A worker appends a whole turn's messages for a topic with one [`TopicHandle::append`]: one
//! short lock on that topic, offsets handed out in a run, the first and last returned in
//! [`Appended`]. The topic lock is the per-topic sequencer; no lock is taken per message, and
//! workers holding a cached [`TopicHandle`] never touch the global index on the hot path.
//!
//! # Replay + live without gap or duplicate (the integrator's protocol)
//! A subscriber on worker C must see every message after its replay exactly once, whichever
//! worker appended it. The rules, each needed:
//! 1. **Interest before the query.** C makes itself a target for topic T (its member count or
//!    bit in the room's shared worker set) *before* it calls [`TopicHandle::since`] /
//!    [`TopicHandle::last`] / [`TopicHandle::position`].
//! 2. **Targets after the append.** An appending worker reads T's set of target workers *after*
//!    `append` returns. The topic lock orders the two: if the append took offsets after C's query,
//!    C's interest was published before C released the lock, so the appender sees C. If it took
//!    offsets before, they are ≤ the query's `through` offset and covered by the replay.
//! 3. **Skip what the replay covered.** Every query returns `through` (the newest offset at the
//!    query, also the `offset` of `subscribed`). Live messages with offset ≤ `through` are skipped
//!    for that subscriber (they may still be in flight from another worker); the rest are sent.
//! 4. **Deliver in offset order per worker.** Batches from different workers reach C through
//!    different sends, so C may get offsets 3..4 before 1..2. C keeps, per topic, the next offset
//!    it expects and holds a batch that arrives early until the gap fills (a gap that never fills
//!    means a lost batch: the lagging receivers are dropped, never shown a hole).
//! 5. **Epoch per batch.** Batches carry [`Appended::epoch`]; when it changes (eviction, bus
//!    loss), offsets restart and receivers reset their expected offset.
//!
//! # Memory
//! What is charged is the heap really kept alive (issue 21 row 6): every topic its name, its epoch
//! and [`TOPIC_OVERHEAD`], every log the capacity of its slot deque (not its length), and every
//! entry the whole allocation it keeps alive ([`Weigh::weight`]), once per run of entries sharing
//! it. When the total passes `max_bytes`, the topics appended to least
//! recently are evicted (whole) until the total is at most 15/16 of the budget, so a flood of new
//! topics costs one sort per 1/16 of the budget, not one per topic. A topic that comes back after
//! eviction gets a new epoch, so nobody recovers across the hole.
//!
//! Entries are shared, not copied: with [`SharedSpan`], a replay hands out clones of the `Arc` of
//! the turn's encoded buffer, so buffers should hold one topic's messages of one turn (the frozen
//! per-room batch), not a whole turn of every room. An entry keeps its whole buffer alive and is
//! charged for it, so a log would hold few messages if only a few of each batch stayed (a
//! history size below the batch size, or the oldest batch partly pruned): messages the size cap
//! drops at once are never stored, and when the oldest or newest run of a log uses less than
//! half its buffer it is copied into one buffer of its own ([`Weigh::compact`]; middle runs hold
//! their whole batch). Measured (`tests/history_memory.rs`, 4 MiB budget, 6,000 topics of 64 ×
//! 128-byte batches, 4 kept per topic): charging whole buffers alone kept 952 messages; copying
//! every message out at append kept 10,936 but copied all of them (53 ms against 19 ms); this
//! keeps 12,280 and copies only partial runs, the live heap within 1.0× of the budget each way
//! (11.9× before: each message was charged its own bytes only).

mod handle;
mod log;
mod span;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use handle::TopicHandle;
pub use log::{Appended, Epoch, Position, Recovery, Replay};
pub use span::{BLOCK_OVERHEAD, SharedSpan, Weigh};

use log::{Log, Topic};

/// Fixed charge per topic on top of its name's and epoch's bytes: measured, not guessed
/// (`tests/history_memory.rs`, `a_topic_costs_what_it_is_charged`). A topic is three heap blocks
/// (the topic with its lock and log; its name; its epoch, each an `Arc` with a 16-byte header) plus
/// its index slot (25 bytes at a load between 7/16 and 7/8). Right after the index grew, a topic
/// with a 12-byte name and a 27-byte epoch measured 313 bytes with the allocator's per-block
/// overhead counted ([`BLOCK_OVERHEAD`]): 274 beyond name and epoch; plus up to 15 of rounding for
/// longer names and one pointer in the TTL sweep's list gives 300. (160 before issue 21 row 6: a
/// flood of tiny topics reached 1.6× the budget.) The log's slots and entries are charged apart.
pub const TOPIC_OVERHEAD: usize = 300;

/// The smallest budget honoured: a fresh topic (name ≤ 256 bytes) always fits under it, so
/// creating one never evicts itself.
pub const MIN_MAX_BYTES: usize = 64 * 1024;

/// How often a handle re-resolves an evicted topic before working on the dead one (which holds
/// nothing) rather than spinning while other workers keep the budget overfull.
const RESOLVE_ATTEMPTS: u32 = 8;

/// Limits and identity of one node's history.
#[derive(Clone, Debug)]
pub struct HistoryConfig {
    /// `--history-size`: messages kept per topic (0 keeps none).
    pub size: usize,
    /// `--history-ttl` in seconds; 0 keeps messages regardless of age.
    pub ttl_secs: u64,
    /// `--history-max-bytes`: the budget over all topics together (raised to
    /// [`MIN_MAX_BYTES`] if smaller).
    pub max_bytes: usize,
    /// This node's id: every epoch starts with it, so another node never issues the same one.
    pub node_id: String,
    /// Unique per process start (for example [`random_instance`]), so a restart never reuses
    /// an epoch.
    pub instance: u64,
}

/// 64 random bits from the OS (through std's hash keys), for [`HistoryConfig::instance`].
pub fn random_instance() -> u64 {
    RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15_u64)
}

/// State shared by every handle of one node's history.
struct Shared<E> {
    cfg: HistoryConfig,
    index: Mutex<HashMap<Arc<str>, Arc<Topic<E>>>>,
    /// Bytes charged over all topics; changed only under the changed topic's log lock.
    bytes: AtomicUsize,
    /// Logical clock for `Topic::stamp`.
    clock: AtomicU64,
    /// Counter making each epoch of this instance unique.
    epochs: AtomicU64,
    /// Topics the current pass of the bounded TTL sweep has still to visit.
    sweep: Mutex<Vec<Arc<Topic<E>>>>,
}

/// A node's history of every topic; clone it into each worker.
pub struct History<E> {
    shared: Arc<Shared<E>>,
}

impl<E> Clone for History<E> {
    fn clone(&self) -> Self {
        History {
            shared: self.shared.clone(),
        }
    }
}

/// A lock that a panicked holder poisoned still guards consistent data here: every critical
/// section restores the invariants before anything can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<E: Weigh + Clone> History<E> {
    /// An empty history with these limits.
    pub fn new(mut cfg: HistoryConfig) -> History<E> {
        cfg.max_bytes = cfg.max_bytes.max(MIN_MAX_BYTES);
        History {
            shared: Arc::new(Shared {
                cfg,
                index: Mutex::new(HashMap::new()),
                bytes: AtomicUsize::new(0),
                clock: AtomicU64::new(0),
                epochs: AtomicU64::new(0),
                sweep: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The limits this history was built with.
    pub fn config(&self) -> &HistoryConfig {
        &self.shared.cfg
    }

    /// Bytes charged over all topics (for `/metrics`; stays ≤ `max_bytes` between calls).
    pub fn bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Number of topics held.
    pub fn topics(&self) -> usize {
        lock(&self.shared.index).len()
    }

    /// A handle on `name`, created (with a fresh epoch, offset 0) if absent. Cache it per room
    /// per worker: appends and queries through it take only the topic's lock.
    pub fn topic(&self, name: &str) -> TopicHandle<E> {
        TopicHandle {
            topic: self.resolve(name),
            history: self.clone(),
        }
    }

    /// The live topic object for `name`, created if absent.
    fn resolve(&self, name: &str) -> Arc<Topic<E>> {
        let sh = &self.shared;
        let topic = {
            let mut index = lock(&sh.index);
            if let Some(t) = index.get(name) {
                return t.clone();
            }
            let name: Arc<str> = name.into();
            let epoch = self.new_epoch();
            let bytes = TOPIC_OVERHEAD + name.len() + epoch.len();
            let topic = Arc::new(Topic {
                name: name.clone(),
                log: Mutex::new(Log::new(epoch, bytes)),
                stamp: AtomicU64::new(sh.clock.fetch_add(1, Ordering::Relaxed)),
            });
            sh.bytes.fetch_add(bytes, Ordering::Relaxed);
            index.insert(name, topic.clone());
            topic
        };
        self.enforce_budget();
        topic
    }

    /// `node-instance-n`: the node id names the node (docs/cluster.md#history-and-epochs), the instance the process start.
    fn new_epoch(&self) -> Epoch {
        let sh = &self.shared;
        let n = sh.epochs.fetch_add(1, Ordering::Relaxed);
        format!("{}-{:x}-{n:x}", sh.cfg.node_id, sh.cfg.instance).into()
    }

    /// Ends the continuity of topic `name` (every topic with `None`): its log is dropped as by
    /// an eviction, so the next append or query starts a new epoch and nobody recovers across
    /// the hole. For losses outside the history's view (a cluster bus gap or outage).
    pub fn break_continuity(&self, name: Option<&str>) {
        let sh = &self.shared;
        let mut index = lock(&sh.index);
        let victims: Vec<Arc<Topic<E>>> = match name {
            Some(n) => index.remove(n).into_iter().collect(),
            None => index.drain().map(|(_, t)| t).collect(),
        };
        for t in victims {
            sh.bytes.fetch_sub(lock(&t.log).kill(), Ordering::Relaxed);
        }
    }

    /// Notes that messages of topic `name` may have been missed after its newest offset (a
    /// cluster node that was not receiving the topic from the bus): a later resume from an
    /// offset before this point is not recovered, while the epoch, the offsets and what is
    /// held stay (so `since:{last:N}` still replays it, and later offsets recover).
    pub fn mark_hole(&self, name: &str) {
        let topic = lock(&self.shared.index).get(name).cloned();
        if let Some(t) = topic {
            let mut log = lock(&t.log);
            log.recoverable_from = log.last + 1;
        }
    }

    /// Drops every message older than the TTL in every topic (a periodic sweep, for topics
    /// nobody appends to or asks about; appends and queries prune their own topic).
    pub fn prune_expired(&self, now: u64) {
        if self.shared.cfg.ttl_secs == 0 {
            return;
        }
        let topics: Vec<_> = lock(&self.shared.index).values().cloned().collect();
        for t in topics {
            self.prune(&mut lock(&t.log), now);
        }
    }

    /// One step of a periodic TTL sweep shared by every caller: prunes at most `max_topics`
    /// topics, continuing where the last step stopped, so each call costs a bounded amount of
    /// work (a new pass copies the topic list once: one pointer per topic per pass). Returns
    /// how many topics it visited; 0 without a TTL, or when another caller is sweeping.
    pub fn sweep_expired(&self, now: u64, max_topics: usize) -> usize {
        if self.shared.cfg.ttl_secs == 0 {
            return 0;
        }
        let Ok(mut todo) = self.shared.sweep.try_lock() else {
            return 0;
        };
        if todo.is_empty() {
            todo.extend(lock(&self.shared.index).values().cloned());
        }
        let n = todo.len().min(max_topics);
        let from = todo.len() - n;
        for t in todo.drain(from..) {
            let mut log = lock(&t.log);
            if !log.dead {
                self.prune(&mut log, now);
            }
        }
        n
    }

    /// Drops expired messages (and any beyond `size`) from the front of `log`.
    fn prune(&self, log: &mut Log<E>, now: u64) {
        let cfg = &self.shared.cfg;
        let before = log.bytes;
        let mut pruned = false;
        while let Some(front) = log.entries.front() {
            let expired = cfg.ttl_secs != 0 && now >= front.at.saturating_add(cfg.ttl_secs);
            if !expired && log.entries.len() <= cfg.size {
                break;
            }
            log.pop_front();
            pruned = true;
        }
        if pruned {
            log.charge_slots();
            log.compact_ends();
        }
        Self::settle(&self.shared, before, log.bytes);
    }

    /// Mirrors a change of one log's charge (`before` → `after`, under its lock) in the total.
    fn settle(sh: &Shared<E>, before: usize, after: usize) {
        if after > before {
            sh.bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            sh.bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Evicts the least recently appended topics while the total is over the budget.
    fn enforce_budget(&self) {
        let sh = &self.shared;
        if sh.bytes.load(Ordering::Relaxed) <= sh.cfg.max_bytes {
            return;
        }
        let mut index = lock(&sh.index);
        if sh.bytes.load(Ordering::Relaxed) <= sh.cfg.max_bytes {
            return;
        }
        let low_water = sh.cfg.max_bytes - sh.cfg.max_bytes / 16;
        let mut by_age: Vec<_> = index
            .values()
            .map(|t| (t.stamp.load(Ordering::Relaxed), t.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(stamp, _)| *stamp);
        for (_, t) in by_age {
            if sh.bytes.load(Ordering::Relaxed) <= low_water {
                break;
            }
            sh.bytes.fetch_sub(lock(&t.log).kill(), Ordering::Relaxed);
            index.remove(&t.name);
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
