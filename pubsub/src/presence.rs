//! Per-topic presence (docs/pubsub.md#presence): who is subscribed to (or a room-mode member of) each topic,
//! snapshots, join/leave events and `--presence-max`.
//!
//! Shared by all workers (clone the [`Presence`]); topics are spread over a few locked shards, so
//! a join takes one short lock and never blocks message traffic.
//!
//! # Snapshot + events without gap or duplicate
//! The same protocol as history (see [`crate::history`]): every emitted event takes the next
//! `seq` of its topic (1, 2, 3, … with no hole), and a [`Snapshot`] says which `seq` it reflects.
//! A presence subscriber's worker registers its interest before taking the snapshot, the joining
//! or leaving worker reads the targets after [`Presence::join`] / [`Presence::leave`] return,
//! receivers deliver events in `seq` order per topic, and a subscriber skips events with
//! `seq` ≤ its snapshot's. A topic that empties is forgotten; when it fills again it starts over
//! at `seq` 1 under a new `incarnation` (like a history epoch), so an event still in flight from
//! the old one is recognised and dropped (a receiver resets when the incarnation changes). The
//! client's own join/leave is filtered out at
//! delivery (compare [`Change::member`] with the receiver's id).
//!
//! # `--presence-max` (issue 21 row 9)
//! Events only ever concern members the topic's watchers were shown. A member is *shown* when its
//! join was announced, which happens when the topic has at most `max` members after it; a member
//! that joins above `max` is counted but never announced, and neither is its leave. A shown
//! member's leave is always announced, above `max` too, so no listed view keeps a ghost. A
//! snapshot lists the members only when every member is shown (so at most `max`); otherwise it is
//! count-only, and its subscriber must get no event at all (the server holds them back), since it
//! was shown nobody. A listed view is thus always the set of shown members, the same for every
//! listed watcher, and never contradicted by an event. The price: until the members that joined
//! above `max` have left, snapshots stay count-only even at or below `max` (a watcher that wants a
//! list asks again later).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Number of independently locked shards of the topic map.
const SHARDS: usize = 16;

/// A client id unique in the cluster: node id, worker, slot and slot generation, as
/// `node.worker.slot.generation` (numbers in hex), e.g. `n1.0.1f.3`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// The id of the connection in `slot` (reused with a new `generation`) of `worker` on `node`.
    /// Node ids must be unique in the cluster; a node id may contain dots, the parts are read
    /// from the right.
    pub fn new(node: &str, worker: u16, slot: u32, generation: u32) -> ClientId {
        ClientId(format!("{node}.{worker:x}.{slot:x}.{generation:x}").into())
    }

    /// The id as sent in `client` fields.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member of a topic: its client id and, with auth, its token's `sub`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Server-assigned client id.
    pub client: ClientId,
    /// The `user` field: the token's `sub`, absent without auth.
    pub user: Option<Arc<str>>,
}

/// Whether a [`Change`] is a join or a leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// `{"op":"join",…}`.
    Join,
    /// `{"op":"leave",…}`.
    Leave,
}

/// A join or leave to fan out to the topic's presence subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Join or leave.
    pub kind: ChangeKind,
    /// Who joined or left.
    pub member: Member,
    /// Which life of the topic this event belongs to (new each time it fills from empty).
    pub incarnation: u64,
    /// This topic's event number within the incarnation: the previous event's + 1, from 1.
    pub seq: u64,
}

/// The members of a topic at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Every member (in no particular order), or `None` (`count` only) when some member is not
    /// shown: above `--presence-max`, or while members that joined above it are still in.
    pub members: Option<Vec<Member>>,
    /// How many members the topic has.
    pub count: usize,
    /// The topic's incarnation (0 for a topic without members).
    pub incarnation: u64,
    /// The last event `seq` this snapshot includes: skip events with `seq` ≤ this.
    pub seq: u64,
}

/// One topic's members.
struct Topic {
    /// Every member: its `user`, and whether it is shown (its join was announced).
    members: HashMap<ClientId, (Option<Arc<str>>, bool)>,
    /// Members not shown (joined above `--presence-max`).
    unshown: usize,
    incarnation: u64,
    /// Last event number handed out.
    seq: u64,
}

/// Topics whose name hashes to one shard.
type Shard = HashMap<Arc<str>, Topic>;

/// The presence registry of one node; clone it into each worker.
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

struct Inner {
    /// `--presence-max`: a join that brings more members than this is not announced.
    max: usize,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Source of topic incarnations (starts at 1).
    incarnations: AtomicU64,
}

impl Presence {
    /// An empty registry with `--presence-max` = `max`.
    pub fn new(max: usize) -> Presence {
        Presence {
            inner: Arc::new(Inner {
                max,
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                hasher: RandomState::new(),
                incarnations: AtomicU64::new(1),
            }),
        }
    }

    /// The shard holding `topic`, locked.
    fn shard(&self, topic: &str) -> MutexGuard<'_, Shard> {
        let i = self.inner.hasher.hash_one(topic) as usize % SHARDS;
        // A poisoned shard still holds a consistent map: no section panics half-way.
        self.inner.shards[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `member` to `topic`. Returns the join event to fan out, or `None` when the client
    /// was already a member (a repeated subscribe) or the topic is now above `--presence-max`
    /// (the member is then never shown: see the module doc).
    pub fn join(&self, topic: &str, member: Member) -> Option<Change> {
        let mut shard = self.shard(topic);
        if !shard.contains_key(topic) {
            let incarnation = self.inner.incarnations.fetch_add(1, Ordering::Relaxed);
            shard.insert(
                topic.into(),
                Topic {
                    members: HashMap::new(),
                    unshown: 0,
                    incarnation,
                    seq: 0,
                },
            );
        }
        let t = shard.get_mut(topic)?;
        if t.members.contains_key(&member.client) {
            return None;
        }
        let shown = t.members.len() < self.inner.max;
        t.members
            .insert(member.client.clone(), (member.user.clone(), shown));
        if !shown {
            t.unshown += 1;
            return None;
        }
        t.seq += 1;
        Some(Change {
            kind: ChangeKind::Join,
            member,
            incarnation: t.incarnation,
            seq: t.seq,
        })
    }

    /// Removes `client` from `topic` (unsubscribe, disconnect, leaving the room). Returns the
    /// leave event, or `None` when it was not a member or was never shown (it joined above
    /// `--presence-max`). A shown member's leave is announced even above the max.
    pub fn leave(&self, topic: &str, client: &ClientId) -> Option<Change> {
        let mut shard = self.shard(topic);
        let t = shard.get_mut(topic)?;
        let (user, shown) = t.members.remove(client)?;
        if !shown {
            t.unshown -= 1;
        }
        let change = shown.then(|| {
            t.seq += 1;
            let member = Member {
                client: client.clone(),
                user,
            };
            Change {
                kind: ChangeKind::Leave,
                member,
                incarnation: t.incarnation,
                seq: t.seq,
            }
        });
        if t.members.is_empty() {
            shard.remove(topic);
        }
        change
    }

    /// The members of `topic` now (an unknown topic has none): listed when every member is
    /// shown, else count-only (see the module doc).
    pub fn snapshot(&self, topic: &str) -> Snapshot {
        let shard = self.shard(topic);
        let Some(t) = shard.get(topic) else {
            return Snapshot {
                members: Some(Vec::new()),
                count: 0,
                incarnation: 0,
                seq: 0,
            };
        };
        let count = t.members.len();
        let members = (t.unshown == 0).then(|| {
            t.members
                .iter()
                .map(|(client, (user, _))| Member {
                    client: client.clone(),
                    user: user.clone(),
                })
                .collect()
        });
        Snapshot {
            members,
            count,
            incarnation: t.incarnation,
            seq: t.seq,
        }
    }

    /// How many members `topic` has and how many distinct users they are (members without a
    /// `user` count as one user together).
    pub fn stats(&self, topic: &str) -> (usize, usize) {
        let shard = self.shard(topic);
        let Some(t) = shard.get(topic) else {
            return (0, 0);
        };
        let users: std::collections::HashSet<Option<&str>> =
            t.members.values().map(|(u, _)| u.as_deref()).collect();
        (t.members.len(), users.len())
    }

    /// How many members `topic` has.
    pub fn count(&self, topic: &str) -> usize {
        self.shard(topic).get(topic).map_or(0, |t| t.members.len())
    }

    /// How many topics have members (for `/metrics`).
    pub fn topics(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.inner.shards[i]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .len()
            })
            .sum()
    }
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
