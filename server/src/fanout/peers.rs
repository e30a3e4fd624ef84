//! Between workers: what one worker (or the main thread, or the bus thread) tells another
//! ([`Remote`]), and every worker's address ([`Peers`]): its bounded channel, its inbox and its
//! ring's fd for MSG_RING wake-ups.

use std::os::fd::RawFd;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use ringcast_cluster::PresenceMember;

use crate::conn::outq::HoldId;
use crate::fanout::batch::FrozenBatch;
use crate::fanout::inbox::Inbox;
use crate::limits::REMOTE_QUEUE;

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
    /// Every node's members of a topic, for the server API call on connection `key` (if it
    /// still has `generation`) that asked under `token` (`bridge::AskFor::Api`); `None` when
    /// Redis could not answer.
    ApiPresence {
        /// Slab key on the target worker.
        key: usize,
        /// Slot generation of the intended connection.
        generation: u32,
        /// The token of the ask.
        token: u64,
        /// Members on every node (this one's included).
        members: Option<Vec<PresenceMember>>,
    },
    /// A text frame of `payload` for the place `hold` keeps in connection `key`'s queue (if
    /// it still has `generation`): a Pusher cache channel's answer from Redis
    /// (`bridge::AskFor::PusherCache`).
    Fill {
        /// Slab key on the target worker.
        key: usize,
        /// Slot generation of the intended connection.
        generation: u32,
        /// The place held.
        hold: HoldId,
        /// The frame's payload.
        payload: Vec<u8>,
    },
}

impl Remote {
    /// A Pusher cache channel's answer (`payload`: an event or `pusher:cache_miss`) for the
    /// place `hold` in connection `key`'s queue (if it still has `generation`).
    pub fn fill(key: usize, generation: u32, hold: HoldId, payload: Vec<u8>) -> Remote {
        Remote::Fill {
            key,
            generation,
            hold,
            payload,
        }
    }
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
            // One answer for one connection (a connection has at most
            // `limits::MAX_ASKS_IN_FLIGHT`); if the target is that far behind, the asker is
            // cut rather than left without its answer.
            reply @ (Remote::Reply { .. } | Remote::ApiPresence { .. } | Remote::Fill { .. }) => {
                return match self.senders[to].try_send(reply) {
                    Err(TrySendError::Disconnected(_)) => None,
                    Err(TrySendError::Full(
                        Remote::Reply {
                            key, generation, ..
                        }
                        | Remote::ApiPresence {
                            key, generation, ..
                        }
                        | Remote::Fill {
                            key, generation, ..
                        },
                    )) => {
                        inbox.note_conn(key, generation);
                        Some(self.ring_fds[to])
                    }
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
            inbox.note(batches.iter().filter_map(|b| b.room().map(|r| r.id)));
        } else {
            match self.senders[to].try_send(Remote::Deliver(batches)) {
                Ok(()) => {}
                Err(TrySendError::Disconnected(_)) => return None,
                Err(TrySendError::Full(back)) => {
                    inbox.taken(bytes);
                    if let Remote::Deliver(batches) = back {
                        inbox.note(batches.iter().filter_map(|b| b.room().map(|r| r.id)));
                    }
                }
            }
        }
        Some(self.ring_fds[to])
    }
}
