//! Where a worker and each subscriber stand in one local room's ordered streams: the one owner
//! of the rule "snapshot, then replay, then live, with no gap and no repeat"
//! (docs/pubsub.md#order-after-a-subscribe). Nothing outside this file reads or writes its
//! fields; the fan-out (`fanout::order`, `fanout::presence`, `fanout::deliver`) and the
//! sessions' sink ask and tell it through its methods.
//!
//! Two streams, both per local room:
//! - **messages**, ordered by history offset (with history on): the worker's next offset to
//!   deliver is fixed by its first member's join; a subscriber whose replay covered offsets up
//!   to N gets no live message ≤ N.
//! - **presence events**, ordered by `seq` within a topic incarnation: the worker's next `seq`
//!   is fixed by the first snapshot taken here; a subscriber gets no event its snapshot
//!   reflects, and none at all while its snapshot is awaited from the cluster. Joins and leaves
//!   on other nodes have no `seq`: each presence subscriber keeps a [`NodeView`] (what its
//!   snapshot listed) and gets only the changes that change it.

use std::collections::HashSet;
use std::sync::Arc;

/// Where a batch of offsets `first..=last` stands against the worker's message stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Every offset was delivered already.
    Covered,
    /// It starts after the next expected offset: hold it until the gap fills. `restarted`: it
    /// is the first batch seen of a new epoch, which starts at offset 1 (what was held for the
    /// old epoch is moot).
    Early {
        /// The stream moved to the batch's epoch.
        restarted: bool,
    },
    /// It holds the next expected offset: deliver it now (`restarted` as for `Early`).
    Next {
        /// The stream moved to the batch's epoch.
        restarted: bool,
    },
    /// It belongs to an older epoch of this process's history than the stream's (it was
    /// appended before the topic's eviction and came through a slower channel than the new
    /// epoch's first batch): deliver it as it is rather than lose it; the stream stays.
    Stale,
}

/// The process's order of `epoch` among the epochs of one history: an epoch is
/// `node-instance-n` with `n` counting up in hex (`ringcast_pubsub::history`), so two epochs
/// with the same `node-instance` compare by `n`. `None` for a foreign shape.
fn epoch_order(epoch: &str) -> Option<(&str, u64)> {
    let (prefix, n) = epoch.rsplit_once('-')?;
    Some((prefix, u64::from_str_radix(n, 16).ok()?))
}

/// `a` is an older epoch of the same history than `b`.
fn older(a: &str, b: &str) -> bool {
    match (epoch_order(a), epoch_order(b)) {
        (Some((pa, na)), Some((pb, nb))) => pa == pb && na < nb,
        _ => false,
    }
}

/// A presence subscriber's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    /// Asked of the cluster, not answered yet: no event reaches the subscriber meanwhile.
    Awaited,
    /// Reflects the events up to this `seq` of the current incarnation.
    Through(u64),
}

/// A presence subscriber's view of the members of a room on other nodes (cluster): what its
/// snapshot listed, then changed by every join and leave from the bus it got.
#[derive(Debug)]
pub struct NodeView {
    /// The subscriber (slab key).
    pub key: usize,
    /// Client ids on other nodes it knows as present.
    pub clients: HashSet<Box<str>>,
    /// `--presence-max`: past it the view is dropped (no events above it).
    pub max: usize,
}

/// A join or leave of a member on another node: whom it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeChange {
    /// The member's client id.
    pub client: Box<str>,
    /// A join (else a leave).
    pub join: bool,
}

/// The positions in one local room's streams.
#[derive(Debug, Default)]
pub struct RoomStream {
    /// With history on: the epoch and the next offset this worker delivers.
    next_offset: Option<(Arc<str>, u64)>,
    /// Subscribers whose replay covered offsets up to `.1` (short-lived: an entry goes once
    /// the worker delivered past it).
    replayed: Vec<(usize, u64)>,
    /// The topic incarnation and the next event `seq` this worker delivers.
    next_event: Option<(u64, u64)>,
    /// Presence subscribers whose snapshot is awaited or reflects events up to a `seq` this
    /// worker has not delivered yet.
    snapshots: Vec<(usize, Snapshot)>,
    /// Presence subscribers' views of the other nodes' members.
    views: Vec<NodeView>,
}

impl RoomStream {
    // ---- messages --------------------------------------------------------------------------

    /// The worker's first member joined at history position `(epoch, last)`: it delivers from
    /// `last + 1` (kept if already set: a later member's join changes nothing).
    pub fn start_offsets(&mut self, epoch: Arc<str>, last: u64) {
        if self.next_offset.is_none() {
            self.next_offset = Some((epoch, last + 1));
        }
    }

    /// Where offsets `first..=last` of `epoch` stand. A new epoch restarts the stream at
    /// offset 1, where every epoch starts (a history log is new, or evicted and new again):
    /// the batches of one epoch reach a worker through several channels, so its offsets 2..
    /// may come before 1, which must then wait, not be dropped. With no expectation at all
    /// (no history position was read), the stream starts at `first`.
    pub fn place(&mut self, epoch: &Arc<str>, first: u64, last: u64) -> Place {
        let restarted = match &self.next_offset {
            Some((e, _)) if **e == **epoch => false,
            Some((e, _)) if older(epoch, e) => return Place::Stale,
            Some(_) => {
                self.next_offset = Some((epoch.clone(), 1));
                true
            }
            None => {
                self.next_offset = Some((epoch.clone(), first));
                true
            }
        };
        let next = self.next_offset().unwrap_or(first);
        if last < next {
            Place::Covered
        } else if first > next {
            Place::Early { restarted }
        } else {
            Place::Next { restarted }
        }
    }

    /// The next offset this worker delivers.
    pub fn next_offset(&self) -> Option<u64> {
        self.next_offset.as_ref().map(|(_, next)| *next)
    }

    /// A gap before `next` will never fill: the stream goes on from `next`.
    pub fn skip_to(&mut self, next: u64) {
        if let Some((_, n)) = &mut self.next_offset {
            *n = next;
        }
    }

    /// Offsets up to `last` were delivered: the stream goes on from `last + 1`, and replays
    /// that covered no more than that are forgotten.
    pub fn delivered_through(&mut self, last: u64) {
        if let Some((_, next)) = &mut self.next_offset {
            *next = last + 1;
        }
        self.replayed.retain(|&(_, through)| through > last);
    }

    /// Subscriber `member`'s replay covered offsets up to `through`: it gets no live message
    /// at or below it (a replay that ends before the stream's next offset needs no entry).
    pub fn replayed(&mut self, member: usize, through: u64) {
        self.replayed.retain(|&(k, _)| k != member);
        if through >= self.next_offset().unwrap_or(0) {
            self.replayed.push((member, through));
        }
    }

    /// The offset up to which `member`'s replay covered the live stream, if it did.
    pub fn replayed_through(&self, member: usize) -> Option<u64> {
        (self.replayed.iter())
            .find(|&&(k, _)| k == member)
            .map(|&(_, t)| t)
    }

    /// Some subscriber's replay covers live offsets (the common case: none, one branch).
    pub fn has_replays(&self) -> bool {
        !self.replayed.is_empty()
    }

    // ---- presence events -------------------------------------------------------------------

    /// Subscriber `member` got a snapshot that reflects events up to `seq` of `incarnation`:
    /// it gets the later ones, in order, and none of those. The first snapshot on this worker
    /// (or the first of a new incarnation) fixes where the worker's event stream starts.
    pub fn snapshot_taken(&mut self, member: usize, incarnation: u64, seq: u64) {
        match self.next_event {
            Some((inc, _)) if inc == incarnation => {}
            _ => {
                self.next_event = Some((incarnation, seq + 1));
                self.snapshots.retain(|&(_, s)| s == Snapshot::Awaited);
            }
        }
        self.snapshots.retain(|&(k, _)| k != member);
        if self.next_event.is_some_and(|(_, next)| seq >= next) {
            self.snapshots.push((member, Snapshot::Through(seq)));
        }
    }

    /// Subscriber `member` waits for a snapshot computed elsewhere (the cluster): no event
    /// reaches it until [`RoomStream::snapshot_taken`]; its view of other nodes is dropped.
    pub fn snapshot_awaited(&mut self, member: usize) {
        self.snapshots.retain(|&(k, _)| k != member);
        self.snapshots.push((member, Snapshot::Awaited));
        self.views.retain(|v| v.key != member);
    }

    /// The worker's event stream: incarnation and next `seq` (`None`: no snapshot was taken
    /// here, so nobody here waits for events).
    pub fn next_event(&self) -> Option<(u64, u64)> {
        self.next_event
    }

    /// The topic emptied and filled again: its events start over at 1 under `incarnation`;
    /// snapshots of the older life no longer hold anything back.
    pub fn restart_events(&mut self, incarnation: u64) {
        self.next_event = Some((incarnation, 1));
        self.snapshots.retain(|&(_, s)| s == Snapshot::Awaited);
    }

    /// Events before `next` of `incarnation` were delivered.
    pub fn events_delivered(&mut self, incarnation: u64, next: u64) {
        self.next_event = Some((incarnation, next));
        self.snapshots.retain(|&(_, s)| match s {
            Snapshot::Awaited => true,
            Snapshot::Through(through) => through >= next,
        });
    }

    /// Whether subscriber `member` gets event `seq` (not awaiting its snapshot, and its
    /// snapshot does not reflect the event).
    pub fn wants_event(&self, member: usize, seq: u64) -> bool {
        !self.snapshots.iter().any(|&(k, s)| {
            k == member
                && match s {
                    Snapshot::Awaited => true,
                    Snapshot::Through(through) => seq <= through,
                }
        })
    }

    // ---- other nodes' members --------------------------------------------------------------

    /// Subscriber `view.key` got a snapshot that listed `view.clients` as the other nodes'
    /// members: it gets their later joins and leaves.
    pub fn set_view(&mut self, view: NodeView) {
        self.views.retain(|v| v.key != view.key);
        self.views.push(view);
    }

    /// Applies a join or leave on another node to every view; `changed` is called with each
    /// subscriber whose view it changed (it gets the event). A view that grows past its
    /// `--presence-max` is dropped: no more node events for that subscriber.
    pub fn apply_node_change(&mut self, change: &NodeChange, mut changed: impl FnMut(usize)) {
        self.views.retain_mut(|view| {
            let did = if change.join {
                view.clients.insert(change.client.clone())
            } else {
                view.clients.remove(&change.client)
            };
            if view.clients.len() > view.max {
                return false;
            }
            if did {
                changed(view.key);
            }
            true
        });
    }

    /// The subscribers that have a view.
    #[cfg(test)]
    pub fn viewers(&self) -> impl Iterator<Item = usize> + '_ {
        self.views.iter().map(|v| v.key)
    }

    // ---- membership ------------------------------------------------------------------------

    /// `member` left the room: it holds nothing back any more.
    pub fn forget(&mut self, member: usize) {
        self.replayed.retain(|&(k, _)| k != member);
        self.snapshots.retain(|&(k, _)| k != member);
        self.views.retain(|v| v.key != member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn a_replay_racing_live_messages_skips_what_it_covered_then_forgets_it() {
        let mut s = RoomStream::default();
        s.start_offsets(epoch("e"), 4); // first member joined at offset 4: next is 5
        // A subscriber's replay covered up to 7; 5..=7 are still in flight to this worker.
        s.replayed(1, 7);
        // A replay that ends before the next offset holds nothing back.
        s.replayed(2, 3);
        assert_eq!(
            (s.replayed_through(1), s.replayed_through(2)),
            (Some(7), None)
        );
        let (next, early) = (
            Place::Next { restarted: false },
            Place::Early { restarted: false },
        );
        assert_eq!(s.place(&epoch("e"), 5, 6), next);
        s.delivered_through(6);
        assert!(s.has_replays(), "7 not delivered yet");
        assert_eq!(s.place(&epoch("e"), 8, 8), early, "7 is missing");
        assert_eq!(s.place(&epoch("e"), 7, 7), next);
        s.delivered_through(7);
        assert!(!s.has_replays(), "the replay is behind the live stream now");
        assert_eq!(s.place(&epoch("e"), 3, 7), Place::Covered);
    }

    #[test]
    fn a_new_epoch_starts_at_offset_1_even_when_its_offset_2_comes_first() {
        let (e, f) = (epoch("n1-abc-1"), epoch("n1-abc-2"));
        let mut s = RoomStream::default();
        s.start_offsets(e.clone(), 4);
        // The topic was evicted: epoch f; the other worker's offsets 2..=3 arrive first.
        assert_eq!(
            s.place(&f, 2, 3),
            Place::Early { restarted: true },
            "held for offset 1, not dropped"
        );
        assert_eq!(s.place(&f, 1, 1), Place::Next { restarted: false });
        s.delivered_through(1);
        assert_eq!(s.place(&f, 2, 3), Place::Next { restarted: false });
        // A late batch of the older epoch is delivered, not lost, and moves nothing.
        assert_eq!(s.place(&e, 5, 5), Place::Stale);
        assert_eq!(s.next_offset(), Some(2));
        // Epochs of this process compare by their counter (hex), not as strings.
        let (a, b) = (epoch("n1-abc-f"), epoch("n1-abc-10"));
        let mut t = RoomStream::default();
        t.start_offsets(b.clone(), 0);
        assert_eq!(t.place(&a, 3, 3), Place::Stale);
        // No position read at all: the stream starts where the first batch does.
        let mut fresh = RoomStream::default();
        assert_eq!(
            fresh.place(&epoch("g"), 5, 5),
            Place::Next { restarted: true }
        );
    }

    #[test]
    fn a_snapshot_awaited_from_the_cluster_holds_every_event_back_until_taken() {
        let mut s = RoomStream::default();
        s.snapshot_awaited(1);
        // Member 0's local snapshot reflects events up to 2: the stream starts at 3.
        s.snapshot_taken(0, 1, 2);
        assert_eq!(s.next_event(), Some((1, 3)));
        assert!(s.wants_event(0, 3));
        assert!(!s.wants_event(1, 3), "awaiting its snapshot");
        // Member 1's answer arrives; its snapshot reflects up to 5 (4 and 5 still in flight).
        s.snapshot_taken(1, 1, 5);
        s.events_delivered(1, 5); // 3 and 4 delivered
        assert!(!s.wants_event(1, 5), "reflected in its snapshot");
        assert!(s.wants_event(0, 5));
        s.events_delivered(1, 7);
        assert!(s.wants_event(1, 7), "past its snapshot: live");
    }

    #[test]
    fn a_resubscribe_during_churn_gets_each_event_once() {
        let mut s = RoomStream::default();
        s.snapshot_taken(0, 1, 10);
        s.events_delivered(1, 14);
        // Member 0 unsubscribes and subscribes again: its new snapshot reflects up to 16.
        s.forget(0);
        s.snapshot_taken(0, 1, 16);
        assert!(!s.wants_event(0, 15) && !s.wants_event(0, 16));
        assert!(s.wants_event(0, 17));
        // The topic empties and fills again: a new incarnation starts at 1 for everyone.
        s.restart_events(2);
        assert_eq!(s.next_event(), Some((2, 1)));
        assert!(s.wants_event(0, 1));
    }

    #[test]
    fn node_changes_reach_only_the_views_they_change() {
        let mut s = RoomStream::default();
        let view = |key, clients: &[&str], max| NodeView {
            key,
            clients: clients.iter().map(|&c| c.into()).collect(),
            max,
        };
        s.set_view(view(0, &["x"], 10));
        s.set_view(view(1, &[], 1));
        let mut got = Vec::new();
        for (client, join) in [("x", true), ("y", true), ("x", false)] {
            let change = NodeChange {
                client: client.into(),
                join,
            };
            s.apply_node_change(&change, |k| got.push((k, client, join)));
        }
        assert_eq!(
            got,
            [(1, "x", true), (0, "y", true), (0, "x", false)],
            "x's join repeats 0's snapshot; 1 is past its max at y"
        );
        assert_eq!(s.viewers().collect::<Vec<_>>(), [0]);
        s.snapshot_awaited(0);
        assert_eq!(s.viewers().count(), 0, "a new snapshot replaces the view");
    }
}
