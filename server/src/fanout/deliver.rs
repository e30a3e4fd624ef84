//! Local delivery of a frozen batch: each member of the local room gets one slice of the form
//! of its class (a sender without `--echo` gets the slices around its own messages). Delivery
//! is mechanism only: it reports who went over the backpressure limit and never closes anyone;
//! the worker applies the policy (Close 1008).

use crate::conn::outq::OutQueue;
use crate::fanout::batch::FrozenBatch;
use crate::rooms::local::{Class, LocalRoom, LocalRooms};

/// Where delivery finds a member's outbound queue (the worker's connection table).
pub trait Outboxes {
    /// The queue of member `key`, which is marked to be flushed this turn.
    fn outbox(&mut self, key: usize) -> &mut OutQueue;
}

/// What one delivery did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages queued, summed over members.
    pub delivered: u64,
    /// Members whose queue exceeded the limit because of a backlog from earlier turns.
    pub over_limit: Vec<usize>,
}

impl DeliveryReport {
    fn add(&mut self, other: DeliveryReport) {
        self.delivered += other.delivered;
        self.over_limit.extend(other.over_limit);
    }
}

/// Delivers `batch` to the local members of its room, if this worker has any, adding to `report`.
pub fn deliver_to(
    batch: &FrozenBatch,
    rooms: &LocalRooms,
    worker: usize,
    limit: usize,
    out: &mut impl Outboxes,
    report: &mut DeliveryReport,
) {
    if let Some(room) = batch.room().and_then(|r| rooms.get(r.id)) {
        report.add(deliver(batch, room, worker, limit, out));
    }
}

/// Queues `batch` for every member of `room` (this is worker `worker`); `limit` is
/// `--max-backpressure`.
pub fn deliver(
    batch: &FrozenBatch,
    room: &LocalRoom,
    worker: usize,
    limit: usize,
    out: &mut impl Outboxes,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    let total = batch.len() as u64;
    let seq = batch.seq().map(|(_, first, last)| (first, last));
    for (class, members) in room.classes() {
        if !batch.wanted_by(class) {
            continue;
        }
        let form = batch.form(class);
        let len = form.len() as u32;
        // Room members without --echo and presence subscribers skip their own messages
        // (events); a subscriber gets its own publishes (docs/pubsub.md).
        let excludes_own = class.plain() == Class::Raw || batch.is_events();
        for &member in members {
            // Offsets a replay covered already (history rule 3).
            let mut from = 0usize;
            let covered = match seq {
                Some(_) if room.stream().has_replays() => room.stream().replayed_through(member),
                _ => None,
            };
            if let (Some(through), Some((first, last))) = (covered, seq) {
                if through >= last {
                    continue;
                }
                from = through.saturating_add(1).saturating_sub(first) as usize;
            }
            let queue = out.outbox(member);
            let backlog = queue.unsent();
            let mut own = from as u64;
            let mut cursor = if from > 0 {
                batch.span(class, from).0
            } else {
                0
            };
            if excludes_own {
                for i in batch.own_messages(worker, member) {
                    let (start, end) = batch.span(class, i);
                    if start < cursor {
                        continue;
                    }
                    if start > cursor {
                        queue.push_shared(form, cursor, start);
                    }
                    cursor = end;
                    own += 1;
                }
            }
            if cursor < len {
                queue.push_shared(form, cursor, len);
            }
            report.delivered += total - own;
            // A single turn's batch never trips the limit alone: the backlog before it must.
            if queue.over_limit(backlog, limit) {
                report.over_limit.push(member);
            }
        }
    }
    report
}

/// Members' queues by key, for delivery tests.
#[cfg(test)]
pub(crate) struct Queues(pub(crate) Vec<OutQueue>);

#[cfg(test)]
impl Outboxes for Queues {
    fn outbox(&mut self, key: usize) -> &mut OutQueue {
        &mut self.0[key]
    }
}

#[cfg(test)]
impl Queues {
    /// Empty queues for members `0..n`.
    pub(crate) fn new(n: usize) -> Queues {
        Queues((0..n).map(|_| OutQueue::new()).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use ringcast_protocol::frame::OpCode;

    use super::*;
    use crate::fanout::batch::BatchBuilder;
    use crate::rooms::SharedRoom;

    fn room() -> Arc<SharedRoom> {
        Arc::new(SharedRoom {
            id: 1,
            name: Arc::from("r"),
            workers: AtomicU64::new(1),
        })
    }

    /// Members 0 and 1 in one room on worker 0; member 0 sends `n` messages.
    fn setup(n: usize, echo: bool) -> (FrozenBatch, LocalRooms) {
        let mut b = BatchBuilder::new(room());
        for i in 0..n {
            b.push(Some(0), OpCode::Text, format!("m{i}").as_bytes());
        }
        let mut rooms = LocalRooms::default();
        rooms.join(1, 0, Class::Raw);
        rooms.join(1, 1, Class::Raw);
        (b.freeze(Some(0), !echo), rooms)
    }

    #[test]
    fn without_echo_the_sender_gets_nothing_and_the_other_member_all() {
        let (batch, rooms) = setup(10, false);
        let mut q = Queues::new(2);
        let report = deliver(&batch, rooms.get(1).expect("room"), 0, 1 << 20, &mut q);
        assert_eq!(report.delivered, 10);
        assert!(report.over_limit.is_empty());
        assert_eq!(q.0[0].unsent(), 0);
        assert_eq!(q.0[1].unsent(), batch.form(Class::Raw).len());
    }

    #[test]
    fn with_echo_ten_messages_to_two_members_count_twenty() {
        let (batch, rooms) = setup(10, true);
        let mut q = Queues::new(2);
        let report = deliver(&batch, rooms.get(1).expect("room"), 0, 1 << 20, &mut q);
        assert_eq!(report.delivered, 20);
        assert_eq!(q.0[0].unsent(), batch.form(Class::Raw).len());
        assert_eq!(q.0[1].unsent(), batch.form(Class::Raw).len());
    }

    #[test]
    fn an_excluded_connection_skips_its_messages_on_any_worker_merged_with_its_own() {
        // Worker 1 builds: member 1 sends "a", "c"; "b" and "c" exclude member 1 of worker 1,
        // "d" excludes member 0 of worker 0 (another worker's connection).
        let mut b = BatchBuilder::new(room());
        b.push(Some(1), OpCode::Text, b"a");
        b.exclude_next(1, 1);
        b.push(None, OpCode::Text, b"b");
        b.exclude_next(1, 1);
        b.push(Some(1), OpCode::Text, b"c");
        b.exclude_next(0, 0);
        b.push(None, OpCode::Text, b"d");
        let batch = b.freeze(Some(1), true);
        let own: Vec<usize> = batch.own_messages(1, 1).collect();
        assert_eq!(own, [0, 1, 2], "its own a and c, the excluded b, each once");
        assert_eq!(batch.own_messages(0, 0).collect::<Vec<_>>(), [3]);
        assert_eq!(batch.own_messages(0, 1).count(), 0);
        let mut rooms = LocalRooms::default();
        rooms.join(1, 0, Class::Raw);
        rooms.join(1, 1, Class::Raw);
        let mut q = Queues::new(2);
        let report = deliver(&batch, rooms.get(1).expect("room"), 0, 1 << 20, &mut q);
        assert_eq!(
            report.delivered,
            3 + 4,
            "worker 0: member 0 gets a, b, c; member 1 all"
        );
        assert_eq!(q.0[0].unsent(), 9);
    }

    #[test]
    fn a_sender_gets_the_slices_around_its_own_messages() {
        let mut b = BatchBuilder::new(room());
        b.push(Some(1), OpCode::Text, b"a");
        b.push(Some(0), OpCode::Text, b"b");
        b.push(Some(1), OpCode::Text, b"c");
        b.push(Some(1), OpCode::Binary, b"d");
        let batch = b.freeze(Some(0), true);
        let mut rooms = LocalRooms::default();
        rooms.join(1, 0, Class::Raw);
        rooms.join(1, 1, Class::Raw);
        let mut q = Queues::new(2);
        let report = deliver(&batch, rooms.get(1).expect("room"), 0, 1 << 20, &mut q);
        assert_eq!(report.delivered, 1 + 3);
        assert_eq!(q.0[0].unsent(), 9, "a, c, d: three 3-byte frames");
        assert_eq!(q.0[1].unsent(), 3, "b only");
    }

    #[test]
    fn on_another_worker_nobody_is_excluded() {
        let (batch, rooms) = setup(3, false);
        let mut q = Queues::new(2);
        let report = deliver(&batch, rooms.get(1).expect("room"), 1, 1 << 20, &mut q);
        assert_eq!(report.delivered, 6);
    }

    #[test]
    fn only_a_backlogged_member_is_reported_over_the_limit() {
        let (batch, rooms) = setup(4, true);
        let mut q = Queues::new(2);
        q.0[1].push_owned(vec![0; 5]);
        let limit = batch.form(Class::Raw).len();
        let report = deliver(&batch, rooms.get(1).expect("room"), 0, limit, &mut q);
        assert_eq!(report.over_limit, vec![1], "member 0 had no backlog");
        assert_eq!(report.delivered, 8, "delivery itself closes nobody");
    }

    #[test]
    fn frozen_batch_keeps_spans_kinds_and_payloads() {
        let mut b = BatchBuilder::new(room());
        b.push(Some(4), OpCode::Text, b"hi");
        b.push(Some(5), OpCode::Binary, &[7; 200]);
        let batch = b.freeze(None, true);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.origin(), None);
        let m = batch.messages();
        assert_eq!(
            (m[0].sender, m[0].kind, m[0].frame),
            (Some(4), OpCode::Text, (0, 4))
        );
        assert_eq!((m[1].kind, m[1].frame), (OpCode::Binary, (4, 4 + 4 + 200)));
        assert_eq!(batch.payload(0), b"hi");
        assert_eq!(batch.payload(1), &[7; 200][..]);
        assert_eq!(&batch.form(Class::Raw)[..4], b"\x81\x02hi");
        assert_eq!(
            batch.own_messages(0, 4).count(),
            0,
            "no origin: nothing excluded"
        );
    }
}
