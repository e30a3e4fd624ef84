//! Presence events in `seq` order (docs/pubsub.md#order-after-a-subscribe, `ringcast_pubsub::presence`): join/leave events of
//! one topic come from every worker that has a member in it, each through its own channel, so a
//! worker may get `seq` 7 before 6, or an event its subscriber's snapshot already reflects. Each
//! local room keeps the incarnation and the next `seq` it delivers (`rooms::stream::RoomStream`, set
//! by the first snapshot taken on this worker); an early event waits here until the gap fills, an
//! event at or below a subscriber's snapshot `seq` is not sent to it.
//! Events are delivered one at a time: they are rare next to messages.
//!
//! Joins and leaves on other nodes (cluster bus) have no `seq` here: they come in the bus's
//! order, through the same channel as the answer to a subscriber's snapshot, and each presence
//! subscriber with a view (`rooms::stream::NodeView`, what its snapshot listed) gets a join of
//! a client not in it and a leave of one in it, updating it; anything else repeats what its
//! snapshot showed (`ringcast_cluster`: a change published after the snapshot's query whose
//! HSET / HDEL ran before it) and is dropped, so each change arrives exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::fanout::batch::FrozenBatch;
use crate::fanout::deliver::{DeliveryReport, Outboxes};
use crate::rooms::local::{Class, LocalRoom, LocalRooms};

/// Early events a worker holds for one room before it gives up on a gap (a lost event: never
/// in one process; a bounded wait once a bus feeds events).
const MAX_HELD: usize = 4096;

/// A room's early events: (incarnation, seq) → (batch, event index).
type Held = BTreeMap<(u64, u64), (Arc<FrozenBatch>, usize)>;

/// Early events, per room id.
#[derive(Default)]
pub struct PresenceOrder {
    held: HashMap<u64, Held>,
}

impl PresenceOrder {
    /// Delivers the events of `batch` (an event batch) to the presence subscribers of its room
    /// on this worker, each exactly once and in `seq` order.
    pub fn deliver(
        &mut self,
        batch: &Arc<FrozenBatch>,
        rooms: &mut LocalRooms,
        worker: usize,
        limit: usize,
        out: &mut impl Outboxes,
        report: &mut DeliveryReport,
    ) {
        let Some(id) = batch.room().map(|r| r.id) else {
            return;
        };
        let Some(local) = rooms.get_mut(id) else {
            self.held.remove(&id);
            return;
        };
        if batch.is_node_events() {
            return deliver_node_events(batch, local, limit, out, report);
        }
        let Some((mut incarnation, mut next)) = local.stream().next_event() else {
            // No snapshot was taken here: nobody on this worker waits for these events.
            self.held.remove(&id);
            return;
        };
        let held = self.held.entry(id).or_default();
        for i in 0..batch.len() {
            let Some((inc, seq)) = batch.event_seq(i) else {
                continue;
            };
            if inc > incarnation {
                // The topic emptied and filled again: its events start over at 1.
                (incarnation, next) = (inc, 1);
                held.clear();
                local.stream_mut().restart_events(inc);
            }
            if inc < incarnation || seq < next {
                continue; // an older life of the topic, or reflected in every snapshot here
            }
            held.insert((inc, seq), (batch.clone(), i));
        }
        loop {
            let len = held.len();
            let Some(entry) = held.first_entry() else {
                break;
            };
            let (inc, seq) = *entry.key();
            if inc < incarnation || seq < next {
                entry.remove();
                continue;
            }
            if seq > next {
                if len <= MAX_HELD {
                    break;
                }
                tracing::warn!(room = %batch.topic(), "presence gap never filled");
            }
            let (event, i) = entry.remove();
            send_event(&event, i, seq, local, worker, limit, out, report);
            next = seq + 1;
        }
        local.stream_mut().events_delivered(incarnation, next);
        if held.is_empty() {
            self.held.remove(&id);
        }
    }
}

/// Queues each join/leave of `batch` (from other nodes) for the presence subscribers in `room`
/// whose view it changes (`RoomStream::apply_node_change`).
fn deliver_node_events(
    batch: &FrozenBatch,
    room: &mut LocalRoom,
    limit: usize,
    out: &mut impl Outboxes,
    report: &mut DeliveryReport,
) {
    // Who negotiated permessage-deflate gets the compressed form (a cluster's events only).
    let deflate: HashSet<usize> = room
        .members(Class::JsonPresenceDeflate)
        .iter()
        .copied()
        .collect();
    for i in 0..batch.len() {
        let Some(change) = batch.node_change(i) else {
            continue;
        };
        room.stream_mut().apply_node_change(change, |member| {
            let class = Class::JsonPresence.with_deflate(deflate.contains(&member));
            let (form, span) = (batch.form(class), batch.span(class, i));
            push_event(form, span, member, limit, out, report);
        });
    }
}

/// Queues one event frame for `member` and reports it (and whether it went over the limit).
fn push_event(
    form: &Arc<[u8]>,
    (start, end): (u32, u32),
    member: usize,
    limit: usize,
    out: &mut impl Outboxes,
    report: &mut DeliveryReport,
) {
    let queue = out.outbox(member);
    let backlog = queue.unsent();
    queue.push_shared(form, start, end);
    report.delivered += 1;
    if queue.over_limit(backlog, limit) {
        report.over_limit.push(member);
    }
}

/// Queues event `i` (number `seq`) of `batch` for every presence subscriber in `room` whose
/// snapshot does not reflect it already and that it is not about.
#[allow(clippy::too_many_arguments)]
fn send_event(
    batch: &FrozenBatch,
    i: usize,
    seq: u64,
    room: &LocalRoom,
    worker: usize,
    limit: usize,
    out: &mut impl Outboxes,
    report: &mut DeliveryReport,
) {
    let about = (batch.origin() == Some(worker))
        .then(|| batch.messages()[i].sender)
        .flatten();
    // Subscribers that negotiated permessage-deflate get the batch's compressed form (each
    // long event compressed once for all of them), the others the plain one.
    for class in [Class::JsonPresence, Class::JsonPresenceDeflate] {
        let members = room.members(class);
        if members.is_empty() {
            continue;
        }
        let (form, span) = (batch.form(class), batch.span(class, i));
        for &member in members {
            if about == Some(member) || !room.stream().wants_event(member, seq) {
                continue;
            }
            push_event(form, span, member, limit, out, report);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::fanout::deliver::Queues;
    use crate::fanout::turn::TurnBatches;
    use crate::rooms::SharedRoom;

    /// Events `seqs` (incarnation 1) of room 1, as worker 1 sends them: 12-byte frames.
    fn events(room: &Arc<SharedRoom>, seqs: &[u64]) -> Arc<FrozenBatch> {
        let mut batches = TurnBatches::default();
        for &seq in seqs {
            batches.push_event(room, 9, format!("event-{seq:04}").as_bytes(), (1, seq));
        }
        let builder = batches.take().pop().expect("one event batch");
        Arc::new(builder.freeze(Some(1), false))
    }

    /// Room 1 ("t") on worker 0, with members `0..members` subscribed with presence.
    fn presence_room(members: usize) -> (Arc<SharedRoom>, LocalRooms) {
        let room = Arc::new(SharedRoom {
            id: 1,
            name: Arc::from("t"),
            workers: AtomicU64::new(1),
        });
        let mut rooms = LocalRooms::default();
        for key in 0..members {
            rooms.join(1, key, Class::JsonPresence);
        }
        (room, rooms)
    }

    #[test]
    fn a_member_awaiting_its_snapshot_gets_only_the_events_after_it() {
        let (room, mut rooms) = presence_room(2);
        let local = rooms.get_mut(1).expect("room");
        // Member 1 asked for a cluster-wide snapshot; member 0's arrives first, and is the
        // first on this worker: member 1 must stay held.
        local.stream_mut().snapshot_awaited(1);
        local.stream_mut().snapshot_taken(0, 1, 2);
        let mut q = Queues::new(2);
        let mut order = PresenceOrder::default();
        let mut report = DeliveryReport::default();
        let frame = 12;
        // Event 4 before 3 (another worker's channel): held until 3 comes.
        for seqs in [&[4][..], &[3]] {
            (order).deliver(
                &events(&room, seqs),
                &mut rooms,
                0,
                1 << 20,
                &mut q,
                &mut report,
            );
        }
        assert_eq!((q.0[0].unsent(), q.0[1].unsent()), (2 * frame, 0));
        // Member 1's snapshot is taken now and reflects events up to 5 (5 still in flight).
        rooms
            .get_mut(1)
            .expect("room")
            .stream_mut()
            .snapshot_taken(1, 1, 5);
        (order).deliver(
            &events(&room, &[5, 6]),
            &mut rooms,
            0,
            1 << 20,
            &mut q,
            &mut report,
        );
        assert_eq!(q.0[0].unsent(), 4 * frame, "member 0: 3, 4, 5, 6");
        assert_eq!(q.0[1].unsent(), frame, "member 1: 6 alone");
        assert_eq!(report.delivered, 5);
    }

    #[test]
    fn other_nodes_changes_reach_each_view_once_and_stop_above_the_max() {
        use std::collections::HashSet;

        use crate::fanout::batch::BatchBuilder;
        use crate::rooms::stream::{NodeChange, NodeView};

        let (room, mut rooms) = presence_room(3);
        let local = rooms.get_mut(1).expect("room");
        let view = |key, clients: &[&str], max| NodeView {
            key,
            clients: clients.iter().map(|&c| c.into()).collect::<HashSet<_>>(),
            max,
        };
        // 0's snapshot listed x; 1's did not (taken earlier); 2 has a small max; 3 none.
        local.stream_mut().set_view(view(0, &["x"], 10));
        local.stream_mut().set_view(view(1, &[], 10));
        local.stream_mut().set_view(view(2, &["x"], 1));
        let mut events = BatchBuilder::node_events(room.clone());
        for (client, join) in [("x", true), ("y", true), ("x", false), ("z", false)] {
            let change = NodeChange {
                client: client.into(),
                join,
            };
            events.push_node_event(change, format!("{client}{}", u8::from(join)).as_bytes());
        }
        let batch = Arc::new(events.freeze(None, false));
        let mut q = Queues::new(3);
        let mut report = DeliveryReport::default();
        let mut order = PresenceOrder::default();
        order.deliver(&batch, &mut rooms, 0, 1 << 20, &mut q, &mut report);
        let frame = 4; // 2-byte header + 2-byte envelope
        assert_eq!(
            q.0[0].unsent(),
            2 * frame,
            "0: y joins, x leaves (x's join repeated its snapshot)"
        );
        assert_eq!(
            q.0[1].unsent(),
            3 * frame,
            "1: x and y join, x leaves (z was not there)"
        );
        assert_eq!(
            q.0[2].unsent(),
            0,
            "2: past its max at y's join, no more events"
        );
        let local = rooms.get_mut(1).expect("room");
        let keys: Vec<_> = local.stream().viewers().collect();
        assert_eq!(keys, [0, 1]);
    }
}
