//! Per-topic message history (SPEC §5): one total order per topic across workers, offsets that
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
//! Every entry is charged [`Weigh::weight`] plus a fixed per-entry overhead, every topic its name,
//! its epoch and a fixed overhead. When the total passes `max_bytes`, the topics appended to least
//! recently are evicted (whole) until the total is at most 15/16 of the budget, so a flood of new
//! topics costs one sort per 1/16 of the budget, not one per topic. A topic that comes back after
//! eviction gets a new epoch, so nobody recovers across the hole.
//!
//! Entries are shared, not copied: with [`SharedSpan`], a replay hands out clones of the `Arc` of
//! the turn's encoded buffer. An entry keeps its whole buffer alive, so buffers should hold one
//! topic's messages of one turn (the frozen per-room batch), not a whole turn of every room.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The bytes an entry is charged against `--history-max-bytes`.
pub trait Weigh {
    /// Payload bytes this entry keeps alive (the fixed per-entry overhead is added separately).
    fn weight(&self) -> usize;
}

/// One message inside a shared, already-encoded buffer: replay clones the `Arc`, never the bytes.
#[derive(Clone, Debug)]
pub struct SharedSpan {
    buf: Arc<[u8]>,
    start: u32,
    end: u32,
}

impl SharedSpan {
    /// The message at `range` of `buf`; `None` if the range is not inside it.
    pub fn new(buf: Arc<[u8]>, range: Range<usize>) -> Option<SharedSpan> {
        if range.start > range.end || range.end > buf.len() {
            return None;
        }
        let start = u32::try_from(range.start).ok()?;
        let end = u32::try_from(range.end).ok()?;
        Some(SharedSpan { buf, start, end })
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }

    /// The shared buffer the message lives in.
    pub fn buffer(&self) -> &Arc<[u8]> {
        &self.buf
    }

    /// Where the message lies in [`SharedSpan::buffer`].
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl Weigh for SharedSpan {
    fn weight(&self) -> usize {
        (self.end - self.start) as usize
    }
}

/// A topic's epoch: changes whenever continuity is lost; cheap to clone into replies.
pub type Epoch = Arc<str>;

/// Fixed charge per topic on top of its name and epoch (the map slot, locks, counters).
pub const TOPIC_OVERHEAD: usize = 160;

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

/// The newest offset of a topic and its epoch: what `subscribed` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The topic's current epoch.
    pub epoch: Epoch,
    /// The newest message's offset; 0 for a topic that never had one.
    pub offset: u64,
}

/// Offsets one [`TopicHandle::append`] took: `first..=last`, empty (`first == last + 1`) when
/// nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The epoch the offsets belong to; send it with the batch.
    pub epoch: Epoch,
    /// Offset of the first message appended.
    pub first: u64,
    /// Offset of the last message appended (the topic's newest).
    pub last: u64,
}

/// Messages handed back for a replay, oldest first, with the offsets they cover.
#[derive(Clone, Debug)]
pub struct Replay<E> {
    /// The epoch of the replayed offsets.
    pub epoch: Epoch,
    /// Offset of `entries[0]` (`through + 1` when empty).
    pub first: u64,
    /// The newest offset at the query: the `offset` of `subscribed`; live messages with an
    /// offset ≤ this are covered and must be skipped for this subscriber.
    pub through: u64,
    /// Clones of the held entries (for [`SharedSpan`], `Arc` clones).
    pub entries: Vec<E>,
}

/// The answer to `since:{offset,epoch}`.
#[derive(Clone, Debug)]
pub enum Recovery<E> {
    /// The epoch matched and every message after the offset is held: replay them.
    Recovered(Replay<E>),
    /// Continuity cannot be proven: reply `recovered:false`, replay nothing, and go live after
    /// this position.
    NotRecovered(Position),
}

/// One held message.
struct Held<E> {
    /// `now` at the append, for the TTL.
    at: u64,
    entry: E,
}

/// A topic's log; everything in it changes under one lock.
struct Log<E> {
    epoch: Epoch,
    /// Offset of the newest message appended (0 if none yet).
    last: u64,
    entries: VecDeque<Held<E>>,
    /// Bytes charged for this topic (its overhead included), mirrored in `Shared::bytes`.
    bytes: usize,
    /// Evicted: the handle must resolve the name again (and gets a new epoch).
    dead: bool,
}

impl<E> Log<E> {
    /// Offset of the oldest held message (`last + 1` when none is held).
    fn first_held(&self) -> u64 {
        self.last + 1 - self.entries.len() as u64
    }

    /// Clones of the entries with offsets `from..=last`; `from` must be ≥ [`Log::first_held`].
    fn replay(&self, from: u64) -> Replay<E>
    where
        E: Clone,
    {
        let skip = (from - self.first_held()) as usize;
        Replay {
            epoch: self.epoch.clone(),
            first: from,
            through: self.last,
            entries: self
                .entries
                .iter()
                .skip(skip)
                .map(|h| h.entry.clone())
                .collect(),
        }
    }
}

/// A topic: its log and when it was last appended to (for eviction by age).
struct Topic<E> {
    name: Arc<str>,
    log: Mutex<Log<E>>,
    stamp: AtomicU64,
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

fn entry_cost<E: Weigh>(e: &E) -> usize {
    size_of::<Held<E>>() + e.weight()
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
                log: Mutex::new(Log {
                    epoch,
                    last: 0,
                    entries: VecDeque::new(),
                    bytes,
                    dead: false,
                }),
                stamp: AtomicU64::new(sh.clock.fetch_add(1, Ordering::Relaxed)),
            });
            sh.bytes.fetch_add(bytes, Ordering::Relaxed);
            index.insert(name, topic.clone());
            topic
        };
        self.enforce_budget();
        topic
    }

    /// `node-instance-n`: the node id names the node (SPEC §8), the instance the process start.
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
            let mut log = lock(&t.log);
            log.dead = true;
            log.entries = VecDeque::new();
            sh.bytes.fetch_sub(log.bytes, Ordering::Relaxed);
            log.bytes = 0;
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
        let mut freed = 0;
        while let Some(front) = log.entries.front() {
            let expired = cfg.ttl_secs != 0 && now >= front.at.saturating_add(cfg.ttl_secs);
            if !expired && log.entries.len() <= cfg.size {
                break;
            }
            freed += entry_cost(&front.entry);
            log.entries.pop_front();
        }
        log.bytes -= freed;
        self.shared.bytes.fetch_sub(freed, Ordering::Relaxed);
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
            let mut log = lock(&t.log);
            log.dead = true;
            log.entries = VecDeque::new();
            sh.bytes.fetch_sub(log.bytes, Ordering::Relaxed);
            log.bytes = 0;
            drop(log);
            index.remove(&t.name);
        }
    }
}

/// A worker's handle on one topic. It survives eviction: the next use resolves the name again
/// and continues under a new epoch.
pub struct TopicHandle<E> {
    topic: Arc<Topic<E>>,
    history: History<E>,
}

impl<E: Weigh + Clone> TopicHandle<E> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.topic.name
    }

    /// Runs `f` on the topic's live log, pruned at `now`, under its lock.
    fn with_log<R>(&mut self, now: u64, f: impl FnOnce(&mut Log<E>) -> R) -> R {
        let mut attempts = 0;
        loop {
            let mut log = lock(&self.topic.log);
            attempts += 1;
            if !log.dead || attempts > RESOLVE_ATTEMPTS {
                self.history.prune(&mut log, now);
                return f(&mut log);
            }
            drop(log);
            self.topic = self.history.resolve(&self.topic.name);
        }
    }

    /// Appends one turn's messages for this topic, in order, under one lock; returns the offsets
    /// they took. Read the topic's target workers after this returns (module doc, rule 2).
    pub fn append(&mut self, entries: impl IntoIterator<Item = E>, now: u64) -> Appended {
        let history = self.history.clone();
        let sh = &history.shared;
        let appended = self.with_log(now, |log| {
            let first = log.last + 1;
            let mut added = 0;
            for entry in entries {
                log.last += 1;
                // A dead log (evicted, budget overfull) counts offsets but holds nothing: its
                // bytes are no longer tracked by anyone.
                if sh.cfg.size == 0 || log.dead {
                    continue;
                }
                added += entry_cost(&entry);
                log.entries.push_back(Held { at: now, entry });
            }
            log.bytes += added;
            sh.bytes.fetch_add(added, Ordering::Relaxed);
            history.prune(log, now);
            Appended {
                epoch: log.epoch.clone(),
                first,
                last: log.last,
            }
        });
        self.topic
            .stamp
            .store(sh.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        history.enforce_budget();
        appended
    }

    /// Like [`TopicHandle::append`] for `n` messages whose entries depend on their offsets (an
    /// envelope that carries its own offset): `build(epoch, first)` runs under the topic's lock
    /// and returns the `n` entries for offsets `first..first + n`.
    pub fn append_with(
        &mut self,
        n: usize,
        now: u64,
        build: impl FnOnce(&Epoch, u64) -> Vec<E>,
    ) -> Appended {
        let history = self.history.clone();
        let sh = &history.shared;
        let appended = self.with_log(now, |log| {
            let first = log.last + 1;
            let entries = build(&log.epoch, first);
            debug_assert_eq!(entries.len(), n, "one entry per message");
            log.last += n as u64;
            if sh.cfg.size != 0 && !log.dead {
                let mut added = 0;
                for entry in entries {
                    added += entry_cost(&entry);
                    log.entries.push_back(Held { at: now, entry });
                }
                log.bytes += added;
                sh.bytes.fetch_add(added, Ordering::Relaxed);
            }
            history.prune(log, now);
            Appended {
                epoch: log.epoch.clone(),
                first,
                last: log.last,
            }
        });
        self.topic
            .stamp
            .store(sh.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        history.enforce_budget();
        appended
    }

    /// The current epoch and newest offset (for `subscribed`); live messages after it are new.
    pub fn position(&mut self, now: u64) -> Position {
        self.with_log(now, |log| Position {
            epoch: log.epoch.clone(),
            offset: log.last,
        })
    }

    /// `since:{last:N}`: the newest `n` held messages (fewer if fewer are held).
    pub fn last(&mut self, n: usize, now: u64) -> Replay<E> {
        self.with_log(now, |log| {
            let held = log.entries.len().min(n) as u64;
            log.replay(log.last + 1 - held)
        })
    }

    /// `since:{offset,epoch}`: every message after `offset` if `epoch` is current, `offset` is
    /// not in the future and nothing after it has been dropped; otherwise `NotRecovered`.
    pub fn since(&mut self, offset: u64, epoch: &str, now: u64) -> Recovery<E> {
        self.with_log(now, |log| {
            let held_from = log.first_held();
            if &*log.epoch == epoch && offset <= log.last && offset + 1 >= held_from {
                Recovery::Recovered(log.replay(offset + 1))
            } else {
                Recovery::NotRecovered(Position {
                    epoch: log.epoch.clone(),
                    offset: log.last,
                })
            }
        })
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
