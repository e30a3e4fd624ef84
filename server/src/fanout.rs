//! Cross-core fan-out: batches of encoded-once frames handed to other workers through
//! crossbeam channels, with the target woken inside its ring by IORING_OP_MSG_RING.
//!
//! A batch need not come from a local socket: anything that can name a room and hold a frame
//! (a cluster bus reader, for one) can send `Remote::Deliver` to a worker.

use std::os::fd::RawFd;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use io_uring::{opcode, squeue, types};

use crate::ring::Op;
use crate::room::SharedRoom;

/// Room messages for another worker: the room, a shared buffer of already-encoded frames, and
/// how many frames it holds.
pub type Delivery = (Arc<SharedRoom>, Arc<[u8]>, u32);

/// What one worker (or the main thread) tells another.
pub enum Remote {
    /// Deliver these frames, in order, to the local members of their rooms.
    Deliver(Vec<Delivery>),
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

    /// Queues `msg` for worker `to` and returns the SQE that wakes it, to submit on the
    /// caller's own ring. A worker that has exited is skipped.
    pub fn send(&self, to: usize, msg: Remote) -> Option<squeue::Entry> {
        self.senders[to].send(msg).ok()?;
        Some(
            opcode::MsgRingData::new(types::Fd(self.ring_fds[to]), 0, Op::Wake.encode(), None)
                .build()
                .user_data(Op::Ignore.encode()),
        )
    }
}
