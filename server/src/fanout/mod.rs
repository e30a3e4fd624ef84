//! Fan-out: per-turn room batches ([`batch`]), their local delivery ([`deliver`]), and the
//! hand-off of frozen batches to other workers through crossbeam channels, the target woken
//! inside its ring by IORING_OP_MSG_RING.
//!
//! A batch need not come from a local socket: anything that can name a room can build a
//! [`batch::FrozenBatch`] (`BatchBuilder::new(room)`, `push`, `freeze(None, false)`) and send
//! `Remote::Deliver` to the workers in the room's bitmask (a cluster bus reader, for one; wake
//! them with `worker::sq::Waker`).

pub mod batch;
pub mod bus;
pub mod deliver;
pub mod inbox;
pub mod order;
pub mod presence;

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use ringcast_cluster::PresenceMember;
use ringcast_protocol::frame::OpCode;
use ringcast_pubsub::envelope;
use ringcast_pubsub::history::{SharedSpan, TopicHandle};

use crate::fanout::batch::{FrozenBatch, TurnBatches};
use crate::fanout::deliver::{DeliveryReport, Outboxes};
use crate::fanout::inbox::Inbox;
use crate::fanout::order::Order;
use crate::limits::REMOTE_QUEUE;
use crate::rooms::local::LocalRooms;
use crate::shared::Shared;

/// What one worker (or the main thread) tells another.
pub enum Remote {
    /// Deliver these batches, in order, to the local members of their rooms.
    Deliver(Vec<Arc<FrozenBatch>>),
    /// Stop accepting, send Close 1001 to every client and exit once they are gone.
    Drain,
    /// Queue these bytes (whole frames) for connection `key` if it still has `generation`
    /// (an answer computed off the worker, such as a cluster-wide presence reply).
    Reply {
        /// Slab key on the target worker.
        key: usize,
        /// Slot generation of the intended connection.
        generation: u32,
        /// Whole frames.
        bytes: Vec<u8>,
    },
    /// The other nodes' members of local room `room_id`, for the presence snapshot that
    /// connection `key` (if it still has `generation`) awaits under `token`
    /// (`bridge::AskFor::Subscribe`); empty when Redis could not answer.
    Snapshot {
        /// Slab key on the target worker.
        key: usize,
        /// Slot generation of the intended connection.
        generation: u32,
        /// The subscribed room.
        room_id: u64,
        /// The token of the ask.
        token: u64,
        /// Members on other nodes.
        remote: Vec<PresenceMember>,
    },
}

/// The addresses of every worker: its bounded channel, its [`Inbox`] (what was dropped when it
/// fell behind) and its ring's fd for MSG_RING wake-ups.
#[derive(Clone)]
pub struct Peers {
    senders: Vec<Sender<Remote>>,
    ring_fds: Vec<RawFd>,
    inboxes: Arc<[Inbox]>,
}

impl Peers {
    /// Channels for `n` workers (bounded, `REMOTE_QUEUE`); returns the shared sender side and
    /// each worker's receiver.
    pub fn channels(n: usize) -> (Vec<Sender<Remote>>, Vec<Receiver<Remote>>) {
        (0..n)
            .map(|_| crossbeam_channel::bounded(REMOTE_QUEUE))
            .unzip()
    }

    /// Peers from the senders and the ring fds each worker published at start-up.
    pub fn new(senders: Vec<Sender<Remote>>, ring_fds: Vec<RawFd>) -> Peers {
        let inboxes = (0..senders.len()).map(|_| Inbox::default()).collect();
        Peers {
            senders,
            ring_fds,
            inboxes,
        }
    }

    /// Every worker's inbox (index: worker id).
    pub fn inboxes(&self) -> Arc<[Inbox]> {
        self.inboxes.clone()
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Queues `msg` for worker `to` without blocking (see [`Inbox::send`]: batches for a worker
    /// that fell behind are dropped and noted, its receivers of them cut); returns the ring fd
    /// to wake it through (MSG_RING), or `None` when that worker has exited.
    pub fn send(&self, to: usize, msg: Remote) -> Option<RawFd> {
        let inbox = &self.inboxes[to];
        let batches = match msg {
            Remote::Drain => {
                inbox.ask_drain();
                return Some(self.ring_fds[to]);
            }
            // One answer for one connection (bounded by its asker); lost if the target is
            // that far behind.
            reply @ Remote::Reply { .. } => {
                return match self.senders[to].try_send(reply) {
                    Err(TrySendError::Disconnected(_)) => None,
                    _ => Some(self.ring_fds[to]),
                };
            }
            // A lost snapshot would hold the subscriber's events back for good: like a lost
            // batch, it is noted and the room's members there are cut.
            snapshot @ Remote::Snapshot { .. } => {
                return match self.senders[to].try_send(snapshot) {
                    Err(TrySendError::Disconnected(_)) => None,
                    Err(TrySendError::Full(Remote::Snapshot { room_id, .. })) => {
                        inbox.note([room_id]);
                        Some(self.ring_fds[to])
                    }
                    _ => Some(self.ring_fds[to]),
                };
            }
            Remote::Deliver(batches) => batches,
        };
        let bytes = batches.iter().map(|b| b.bytes()).sum();
        if !inbox.reserve(bytes) {
            inbox.note(batches.iter().map(|b| b.room().id));
        } else {
            match self.senders[to].try_send(Remote::Deliver(batches)) {
                Ok(()) => {}
                Err(TrySendError::Disconnected(_)) => return None,
                Err(TrySendError::Full(back)) => {
                    inbox.taken(bytes);
                    if let Remote::Deliver(batches) = back {
                        inbox.note(batches.iter().map(|b| b.room().id));
                    }
                }
            }
        }
        Some(self.ring_fds[to])
    }
}

/// A worker's fan-out state: this turn's room batches and the outbox to other workers.
pub struct Fanout {
    /// Messages published this turn, per room (sessions publish into it through their `Sink`).
    pub batches: TurnBatches,
    outbox: Outbox,
    order: Order,
    /// History handles of the rooms this worker appended to, by room id (bounded cache).
    topics: HashMap<u64, TopicHandle<SharedSpan>>,
}

/// Topic handles a worker keeps before it starts afresh.
const MAX_TOPIC_HANDLES: usize = 4096;

impl Fanout {
    /// Fan-out state sending to `peers`.
    pub fn new(peers: Peers) -> Fanout {
        Fanout {
            batches: TurnBatches::default(),
            outbox: Outbox::new(peers),
            order: Order::default(),
            topics: HashMap::new(),
        }
    }

    /// Freezes each room's batch of this turn (worker `worker`), publishes it on the cluster
    /// bus (one `try_publish` per room per turn), appends it to its topic's history (one lock
    /// per room per turn), queues it for the other workers with members in
    /// the room, and delivers it to the local members in `rooms`.
    pub fn flush_batches(
        &mut self,
        worker: usize,
        shared: &Shared,
        rooms: &mut LocalRooms,
        out: &mut impl Outboxes,
    ) -> DeliveryReport {
        let (echo, limit) = (shared.config.echo, shared.config.max_backpressure);
        let mut report = DeliveryReport::default();
        for builder in self.batches.take() {
            let mut batch = builder.freeze(Some(worker), !echo);
            if !batch.is_events() {
                // Local clients' messages only: batches from the bus never pass here.
                if let Some(bus) = &shared.cluster {
                    bus.publish(batch.room().name.clone(), bus::outbound(&batch));
                }
                self.append_history(&mut batch, shared);
                for (offset, sender, id) in batch.take_acks() {
                    let mut reply = Vec::with_capacity(64 + id.len());
                    envelope::published(&mut reply, &batch.room().name, &id, Some(offset));
                    out.outbox(sender).push_frame(OpCode::Text, &reply);
                }
            }
            // Targets are read after the append (history protocol rule 2).
            let others = batch.room().workers.load(Ordering::Acquire) & !(1u64 << worker);
            let batch = Arc::new(batch);
            if others != 0 {
                self.outbox.push(others, &batch);
            }
            (self.order).deliver(&batch, rooms, worker, limit, out, &mut report);
        }
        report
    }

    /// Delivers a batch another worker sent, in offset order.
    pub fn deliver_remote(
        &mut self,
        batch: &Arc<FrozenBatch>,
        rooms: &mut LocalRooms,
        worker: usize,
        limit: usize,
        out: &mut impl Outboxes,
        report: &mut DeliveryReport,
    ) {
        self.order.deliver(batch, rooms, worker, limit, out, report);
    }

    /// With history on: gives the batch's messages their offsets and stores their JSON form.
    fn append_history(&mut self, batch: &mut FrozenBatch, shared: &Shared) {
        let Some(history) = &shared.hub.history else {
            return;
        };
        let room = batch.room().clone();
        if self.topics.len() >= MAX_TOPIC_HANDLES && !self.topics.contains_key(&room.id) {
            self.topics.clear();
        }
        let handle = (self.topics)
            .entry(room.id)
            .or_insert_with(|| history.topic(&room.name));
        let n = batch.len();
        handle.append_with(n, shared.hub.now(), |epoch, first| {
            batch.set_seq(epoch, first);
            let (buf, spans) = batch.json();
            spans
                .iter()
                .filter_map(|&(s, e)| SharedSpan::new(buf.clone(), s as usize..e as usize))
                .collect()
        });
        // A room nobody is in any more (or a publish to a topic without members) may have a
        // successor that subscribed meanwhile: look it up (one directory lock, only then).
        if room.workers.load(Ordering::Acquire) == 0 {
            match shared.directory.get(&room.name) {
                Some(live) => batch.set_room(live),
                None => self.topics.remove(&room.id).map_or((), drop),
            }
        }
    }

    /// Sends what the outbox collected this turn; `wake` gets each target's ring fd.
    pub fn send(&mut self, wake: impl FnMut(RawFd)) {
        self.outbox.send(wake);
    }

    /// Every worker's inbox (index: worker id).
    pub fn inboxes(&self) -> Arc<[Inbox]> {
        self.outbox.peers.inboxes()
    }
}

/// Frozen batches for other workers, collected during a turn and sent as one message per
/// target worker at its end.
pub struct Outbox {
    peers: Peers,
    per_worker: Vec<Vec<Arc<FrozenBatch>>>,
}

impl Outbox {
    /// An outbox to `peers`.
    pub fn new(peers: Peers) -> Outbox {
        let per_worker = (0..peers.len()).map(|_| Vec::new()).collect();
        Outbox { peers, per_worker }
    }

    /// Adds `batch` for every worker in the bitmask `workers`.
    pub fn push(&mut self, workers: u64, batch: &Arc<FrozenBatch>) {
        let mut bits = workers;
        while bits != 0 {
            let to = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(out) = self.per_worker.get_mut(to) {
                out.push(batch.clone());
            }
        }
    }

    /// Sends what was collected; `wake` gets the ring fd of every worker sent to.
    pub fn send(&mut self, mut wake: impl FnMut(RawFd)) {
        for (to, out) in self.per_worker.iter_mut().enumerate() {
            if out.is_empty() {
                continue;
            }
            if let Some(fd) = self.peers.send(to, Remote::Deliver(std::mem::take(out))) {
                wake(fd);
            }
        }
    }
}
