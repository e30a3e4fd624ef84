//! Fan-out: per-turn room batches ([`batch`]), their local delivery ([`deliver`]), and the
//! hand-off of frozen batches to other workers through crossbeam channels, the target woken
//! inside its ring by IORING_OP_MSG_RING.
//!
//! A batch need not come from a local socket: anything that can name a room can build a
//! [`batch::FrozenBatch`] (`BatchBuilder::new(room)`, `push`, `freeze(None, false)`) and send
//! `Remote::Deliver` to the workers in the room's bitmask (a cluster bus reader, for one; wake
//! them with `worker::sq::Waker`).

pub mod batch;
pub mod deliver;

use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

use crate::fanout::batch::{FrozenBatch, TurnBatches};
use crate::fanout::deliver::{DeliveryReport, Outboxes, deliver_to};
use crate::rooms::local::LocalRooms;

/// What one worker (or the main thread) tells another.
pub enum Remote {
    /// Deliver these batches, in order, to the local members of their rooms.
    Deliver(Vec<Arc<FrozenBatch>>),
    /// Stop accepting, send Close 1001 to every client and exit once they are gone.
    Drain,
}

/// The addresses of every worker: its channel and its ring's fd for MSG_RING wake-ups.
#[derive(Clone)]
pub struct Peers {
    senders: Vec<Sender<Remote>>,
    ring_fds: Vec<RawFd>,
}

impl Peers {
    /// Channels for `n` workers; returns the shared sender side and each worker's receiver.
    pub fn channels(n: usize) -> (Vec<Sender<Remote>>, Vec<Receiver<Remote>>) {
        (0..n).map(|_| crossbeam_channel::unbounded()).unzip()
    }

    /// Peers from the senders and the ring fds each worker published at start-up.
    pub fn new(senders: Vec<Sender<Remote>>, ring_fds: Vec<RawFd>) -> Peers {
        Peers { senders, ring_fds }
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Queues `msg` for worker `to`; returns the ring fd to wake it through (MSG_RING), or
    /// `None` when that worker has exited.
    pub fn send(&self, to: usize, msg: Remote) -> Option<RawFd> {
        self.senders[to].send(msg).ok()?;
        Some(self.ring_fds[to])
    }
}

/// A worker's fan-out state: this turn's room batches and the outbox to other workers.
pub struct Fanout {
    /// Messages published this turn, per room (sessions publish into it through their `Sink`).
    pub batches: TurnBatches,
    outbox: Outbox,
}

impl Fanout {
    /// Fan-out state sending to `peers`.
    pub fn new(peers: Peers) -> Fanout {
        Fanout {
            batches: TurnBatches::default(),
            outbox: Outbox::new(peers),
        }
    }

    /// Freezes each room's batch of this turn (worker `worker`), hands it to `frozen` (the
    /// cluster bus publishes it: these are local clients' messages only), queues it for the
    /// other workers with members in the room, and delivers it to the local members in `rooms`.
    pub fn flush_batches(
        &mut self,
        worker: usize,
        echo: bool,
        limit: usize,
        rooms: &LocalRooms,
        out: &mut impl Outboxes,
        mut frozen: impl FnMut(&FrozenBatch),
    ) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        for builder in self.batches.take() {
            let batch = builder.freeze(Some(worker), !echo);
            frozen(&batch);
            let others = batch.room().workers.load(Ordering::Acquire) & !(1u64 << worker);
            if others == 0 {
                deliver_to(&batch, rooms, worker, limit, out, &mut report);
            } else {
                let batch = Arc::new(batch);
                self.outbox.push(others, &batch);
                deliver_to(&batch, rooms, worker, limit, out, &mut report);
            }
        }
        report
    }

    /// Sends what the outbox collected this turn; `wake` gets each target's ring fd.
    pub fn send(&mut self, wake: impl FnMut(RawFd)) {
        self.outbox.send(wake);
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
