//! The other nodes' Pusher channels (docs/pusher.md#across-a-cluster): how many connections
//! each node has subscribed to each channel and which presence users it has, learnt from
//! the deltas every node publishes on one bus room (`crate::bridge::PUSHER_STATE_ROOM`) and
//! from the full states a node sends when another asks (`Delta::Sync`, at start and after
//! Redis comes back). The registry (`super::registry`) reads it to decide cluster-wide
//! events: `member_added` / `member_removed` once per user, `channel_occupied` /
//! `channel_vacated` once per cluster.
//!
//! **Cross-node debounce.** The node that sends a cluster's `channel_vacated` (or a user's
//! `member_removed`) webhook holds it in its own debounce window. Its delta says so
//! (`hook`), and the others remember it (a *tombstone*) for [`TOMBSTONE`]: a node whose
//! subscription occupies the channel again meanwhile sends no `channel_occupied` itself but
//! names that node in its delta (`owe`), and that node emits the `channel_occupied` into its
//! own debounce, which cancels the held `channel_vacated` (or, past its window, sends it):
//! one webhook pair or none, never two.
//!
//! Imports nothing of this crate (see `super`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::liveness::{FirstFull, Heard, Liveness};
use super::shift::Shift;

/// How long a tombstone names the node that holds a vacated / removed webhook: past the
/// webhook debounce window (3 s), with room for the bus's delay.
pub const TOMBSTONE: Duration = Duration::from_secs(5);

/// One message of the Pusher state room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delta {
    /// The origin now has `n` subscriptions to `topic`. `hook`: it sent the channel's
    /// occupied (n > 0) or vacated (n = 0) webhook; `owe`: the node that must send the
    /// occupied webhook instead (it holds a vacated one).
    Subs {
        /// The fan-out topic (`#pusher/{app}/{channel}`).
        topic: String,
        /// The origin's subscriptions now.
        n: u64,
        /// The origin sent the cluster's webhook.
        #[serde(default)]
        hook: bool,
        /// The node that sends the occupied webhook.
        #[serde(default)]
        owe: Option<String>,
    },
    /// User `id` is now present (`on`) or gone from presence channel `topic` on the origin.
    User {
        /// The fan-out topic.
        topic: String,
        /// The user id.
        id: String,
        /// Its `user_info` JSON text.
        #[serde(default)]
        info: Option<String>,
        /// Present or gone.
        on: bool,
        /// The origin sent the cluster's member webhook.
        #[serde(default)]
        hook: bool,
        /// The node that sends the `member_added` webhook (it holds a `member_removed`).
        #[serde(default)]
        owe: Option<String>,
    },
    /// An HTTP API event whose `socket_id` names a connection of node `node`: that node
    /// publishes it (to every node) without that connection (docs/pusher.md#http-api).
    Event {
        /// The node the excluded connection is on.
        node: String,
        /// The fan-out topic.
        topic: String,
        /// The channel event frame's text.
        frame: String,
        /// The excluded connection's worker.
        worker: u64,
        /// Its slab key.
        key: u64,
    },
    /// Every node answers with its [`Delta::Full`] state.
    Sync,
    /// The origin is alive: sent every `super::liveness::BEAT_EVERY` (a node silent for
    /// `super::liveness::SILENT_FOR` is forgotten).
    Beat {
        /// The origin's run (`super::liveness::Run`).
        #[serde(default)]
        run: u64,
    },
    /// The origin's whole state: replaces what was known of it.
    Full {
        /// (topic, subscriptions).
        subs: Vec<(String, u64)>,
        /// (topic, user id, user_info).
        users: Vec<(String, String, Option<String>)>,
        /// The origin's run (`super::liveness::Run`).
        #[serde(default)]
        run: Option<u64>,
    },
}

impl Delta {
    /// The origin's run, for the messages that say it.
    pub fn run(&self) -> Option<u64> {
        match self {
            Delta::Beat { run } => Some(*run),
            Delta::Full { run, .. } => *run,
            _ => None,
        }
    }

    /// The JSON text published on the bus.
    pub fn encode(&self) -> Vec<u8> {
        simd_json::serde::to_vec(self).unwrap_or_default()
    }

    /// Reads a message of the state room; `None` when it is not one.
    pub fn decode(payload: &[u8]) -> Option<Delta> {
        let mut copy = payload.to_vec();
        simd_json::serde::from_slice(&mut copy).ok()
    }
}

/// Bits of a node's tag in a socket id (`node_tag`).
pub const TAG_BITS: u32 = 20;

/// A node's tag: 20 bits of a hash (FNV-1a) of its id, written into the high part of its
/// connections' socket ids so an HTTP API call on another node can tell whose they are.
/// Two nodes of a cluster share one with a chance of about one in a million per pair.
pub fn node_tag(node_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) & ((1 << TAG_BITS) - 1)
}

/// A webhook this node owes to the cluster (another node occupied what it vacated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owed {
    /// `channel_occupied` of the topic.
    Occupied(String),
    /// `member_added` of (topic, user).
    MemberAdded(String, String),
}

/// A remote user of one presence channel.
#[derive(Debug, Default)]
struct User {
    info: Option<String>,
    /// The nodes where it is present.
    nodes: Vec<Arc<str>>,
}

/// What the other nodes have of one channel.
#[derive(Debug, Default)]
struct Topic {
    subs: HashMap<Arc<str>, u64>,
    users: BTreeMap<String, User>,
    /// The node holding the channel's vacated webhook, since when.
    vacated_by: Option<(Arc<str>, Instant)>,
    /// Per user: the node holding its removed webhook, since when.
    removed_by: HashMap<String, (Arc<str>, Instant)>,
}

impl Topic {
    fn is_empty(&self) -> bool {
        self.subs.is_empty()
            && self.users.is_empty()
            && self.vacated_by.is_none()
            && self.removed_by.is_empty()
    }
}

/// The other nodes' channels, per topic.
#[derive(Debug, Default)]
pub struct Nodes {
    topics: HashMap<String, Topic>,
    /// The nodes heard from, by tag (`node_tag`).
    tags: HashMap<u64, Arc<str>>,
    /// When each node was last heard from (`super::liveness`).
    liveness: Liveness,
}

impl Nodes {
    /// The node with tag `tag`, if it was heard from.
    pub fn node_of_tag(&self, tag: u64) -> Option<&str> {
        self.tags.get(&tag).map(|n| &**n)
    }

    /// Subscriptions to `topic` on the other nodes.
    pub fn subscriptions(&self, topic: &str) -> u64 {
        self.topics.get(topic).map_or(0, |t| t.subs.values().sum())
    }

    /// Whether a user is present in `topic` on another node.
    pub fn has_user(&self, topic: &str, user: &str) -> bool {
        self.topics
            .get(topic)
            .is_some_and(|t| t.users.contains_key(user))
    }

    /// The users of `topic` on the other nodes, with their `user_info`, by id.
    pub fn users(&self, topic: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
        (self.topics.get(topic).into_iter())
            .flat_map(|t| t.users.iter())
            .map(|(id, u)| (id.as_str(), u.info.as_deref()))
    }

    /// Topics with subscriptions on other nodes, with their counts.
    pub fn occupied(&self) -> impl Iterator<Item = (&str, u64, usize)> {
        (self.topics.iter())
            .map(|(name, t)| (name.as_str(), t.subs.values().sum::<u64>(), t.users.len()))
            .filter(|(_, n, _)| *n > 0)
    }

    /// The node holding `topic`'s vacated webhook, if recent: it sends the occupied one
    /// (module doc). Taken: one occupied per vacated.
    pub fn take_vacated_by(&mut self, topic: &str, now: Instant) -> Option<String> {
        let t = self.topics.get_mut(topic)?;
        let (node, at) = t.vacated_by.take()?;
        (now.duration_since(at) < TOMBSTONE).then(|| node.to_string())
    }

    /// The node holding `user`'s removed webhook in `topic`, if recent (taken).
    pub fn take_removed_by(&mut self, topic: &str, user: &str, now: Instant) -> Option<String> {
        let t = self.topics.get_mut(topic)?;
        let (node, at) = t.removed_by.remove(user)?;
        (now.duration_since(at) < TOMBSTONE).then(|| node.to_string())
    }

    /// Node `origin` was heard from (any message), saying its `run` or not.
    pub fn heard(&mut self, origin: &str, run: Option<u64>, now: Instant) -> Heard {
        self.liveness.heard(&Arc::from(origin), run, now)
    }

    /// How `origin`'s full state is taken, when it is the first since it was heard anew.
    pub fn take_first_full(&mut self, origin: &str) -> Option<FirstFull> {
        self.liveness.take_first_full(origin)
    }

    /// This node's Redis link as the bus reports it (`super::liveness::Liveness::link`).
    pub fn link(&mut self, up: bool, published: u64, now: Instant) -> bool {
        self.liveness.link(up, published, now)
    }

    /// Forgets the nodes silent for `super::liveness::SILENT_FOR` (none while this node's
    /// own link is not trusted): what they leave behind comes back.
    pub fn expire(&mut self, now: Instant) -> Shift {
        let mut shift = Shift::default();
        for node in self.liveness.expire(now) {
            tracing::warn!(
                node = &*node,
                "Pusher cluster state: node silent, forgotten with its channels"
            );
            self.depart(&node, &mut shift);
        }
        self.settle(&mut shift);
        shift
    }

    /// Drops `node` as gone (silent, or restarted): its channels, and the webhooks it held
    /// (it will never settle them: whoever comes next sends its own).
    pub fn depart(&mut self, node: &str, shift: &mut Shift) {
        self.tags.retain(|_, n| **n != *node);
        self.drop_node(node, shift);
        for t in self.topics.values_mut() {
            t.vacated_by.take_if(|(n, _)| **n == *node);
            t.removed_by.retain(|_, (n, _)| **n != *node);
        }
        self.topics.retain(|_, t| !t.is_empty());
    }

    /// Replaces what is known of `origin` by its full state: the difference comes back.
    pub fn full(
        &mut self,
        origin: &str,
        subs: Vec<(String, u64)>,
        users: Vec<(String, String, Option<String>)>,
    ) -> Shift {
        let node = self.note_tag(origin);
        let mut shift = Shift::default();
        self.drop_node(origin, &mut shift);
        for (topic, n) in subs.into_iter().filter(|(_, n)| *n > 0) {
            let t = self.topics.entry(topic.clone()).or_default();
            if t.subs.is_empty() {
                shift.occupied.push(topic);
            }
            t.subs.insert(node.clone(), n);
        }
        for (topic, id, info) in users {
            let t = self.topics.entry(topic.clone()).or_default();
            let u = t.users.entry(id.clone()).or_default();
            if u.nodes.is_empty() {
                shift.added.push((topic, id, info.clone()));
            }
            u.info = info;
            if !u.nodes.contains(&node) {
                u.nodes.push(node.clone());
            }
        }
        self.topics.retain(|_, t| !t.is_empty());
        self.settle(&mut shift);
        shift
    }

    /// Remembers `origin`'s tag (`node_tag`); its id as shared text comes back.
    fn note_tag(&mut self, origin: &str) -> Arc<str> {
        let node: Arc<str> = Arc::from(origin);
        let tag = node_tag(origin);
        if self.tags.get(&tag).is_none_or(|n| **n != *origin) {
            self.tags.insert(tag, node.clone());
        }
        node
    }

    /// [`Shift::settle`] against what the other nodes have now.
    pub fn settle(&self, shift: &mut Shift) {
        shift.settle(|t, u| self.has_user(t, u), |t| self.subscriptions(t) > 0);
    }

    /// Whether this node (`me`) sends the webhooks of a departure (the smallest live id).
    pub fn sends_hooks(&self, me: &str, now: Instant) -> bool {
        self.liveness.sends_hooks(me, now)
    }

    /// Applies a delta of node `origin`; `me` is this node's id. What this node owes the
    /// cluster comes back.
    pub fn apply(&mut self, origin: &str, delta: Delta, me: &str, now: Instant) -> Option<Owed> {
        let node = self.note_tag(origin);
        match delta {
            Delta::Subs {
                topic,
                n,
                hook,
                owe,
            } => {
                let t = self.topics.entry(topic.clone()).or_default();
                if n == 0 {
                    t.subs.remove(origin);
                    if hook {
                        t.vacated_by = Some((node, now));
                    }
                } else {
                    t.subs.insert(node, n);
                    t.vacated_by = None;
                }
                self.forget_if_empty(&topic);
                (owe.as_deref() == Some(me)).then_some(Owed::Occupied(topic))
            }
            Delta::User {
                topic,
                id,
                info,
                on,
                hook,
                owe,
            } => {
                let t = self.topics.entry(topic.clone()).or_default();
                if on {
                    t.removed_by.remove(&id);
                    let u = t.users.entry(id.clone()).or_default();
                    u.info = info;
                    if !u.nodes.contains(&node) {
                        u.nodes.push(node);
                    }
                } else {
                    if let Some(u) = t.users.get_mut(&id) {
                        u.nodes.retain(|n| **n != *origin);
                        if u.nodes.is_empty() {
                            t.users.remove(&id);
                        }
                    }
                    if hook {
                        t.removed_by.insert(id.clone(), (node, now));
                    }
                }
                self.forget_if_empty(&topic);
                (owe.as_deref() == Some(me)).then_some(Owed::MemberAdded(topic, id))
            }
            Delta::Full { subs, users, .. } => {
                self.full(origin, subs, users);
                None
            }
            Delta::Sync | Delta::Beat { .. } | Delta::Event { .. } => None,
        }
    }

    /// Drops everything known of `origin`: the channels and users no other node has now
    /// go into `shift` (settled by the caller).
    fn drop_node(&mut self, origin: &str, shift: &mut Shift) {
        for (topic, t) in &mut self.topics {
            if t.subs.remove(origin).is_some() && t.subs.is_empty() {
                shift.vacated.push(topic.clone());
            }
            t.users.retain(|id, u| {
                let had = u.nodes.len();
                u.nodes.retain(|n| **n != *origin);
                if had > 0 && u.nodes.is_empty() {
                    shift.removed.push((topic.clone(), id.clone()));
                }
                !u.nodes.is_empty()
            });
        }
        self.topics.retain(|_, t| !t.is_empty());
    }

    fn forget_if_empty(&mut self, topic: &str) {
        if self.topics.get(topic).is_some_and(Topic::is_empty) {
            self.topics.remove(topic);
        }
    }
}

#[cfg(test)]
#[path = "nodes_tests.rs"]
mod tests;
