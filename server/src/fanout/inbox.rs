//! A worker's inbox from the other workers (and the main thread): a bounded crossbeam channel
//! plus what was dropped because the worker fell behind (SPEC §7: queues between workers are
//! bounded; a worker that falls behind costs its lagging receivers, never unbounded memory).
//!
//! A sender never blocks. When the target's channel is full or its byte budget
//! (`REMOTE_QUEUE_BYTES`) is spent, the batches are dropped and their rooms noted here; from
//! then on every batch for that worker is dropped (and noted) until the worker has taken the
//! note. The worker takes the note together with what its channel holds (under the note's
//! lock, so nothing slips between the two), delivers what was queued, then cuts (1008) its
//! members of every noted room: they missed messages and must not see later ones as if
//! nothing happened.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::fanout::Remote;
use crate::limits::REMOTE_QUEUE_BYTES;

/// What the senders share with one target worker besides its channel.
#[derive(Default)]
pub struct Inbox {
    /// Batches were dropped and the target has not taken the note yet.
    lagging: AtomicBool,
    /// Ids of the rooms whose batches were dropped.
    dropped: Mutex<HashSet<u64>>,
    /// Bytes of the batches queued in the channel (approximate budget across senders).
    queued_bytes: AtomicUsize,
    /// The main thread asked for a drain (never lost to a full channel).
    drain: AtomicBool,
}

/// What a lagging worker takes out of its inbox at once.
pub struct Lag {
    /// Messages queued before the drop, in order.
    pub queued: Vec<Remote>,
    /// Rooms whose members missed batches.
    pub rooms: HashSet<u64>,
}

impl Inbox {
    /// Sends `msg` to the worker behind `tx` without blocking; returns false when that worker
    /// has exited.
    pub fn send(&self, tx: &Sender<Remote>, msg: Remote) -> bool {
        let batches = match msg {
            Remote::Drain => {
                self.drain.store(true, Ordering::Release);
                return true;
            }
            Remote::Deliver(batches) => batches,
        };
        let bytes = batches.iter().map(|b| b.bytes()).sum::<usize>();
        let spent = self.queued_bytes.load(Ordering::Relaxed);
        if !self.lagging.load(Ordering::Acquire) && spent + bytes <= REMOTE_QUEUE_BYTES {
            self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
            match tx.try_send(Remote::Deliver(batches)) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(Remote::Deliver(back))) => {
                    self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                    self.note(&back);
                }
                Err(TrySendError::Full(Remote::Drain)) => {}
            }
        } else {
            self.note(&batches);
        }
        true
    }

    fn note(&self, batches: &[std::sync::Arc<super::batch::FrozenBatch>]) {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        dropped.extend(batches.iter().map(|b| b.room().id));
        self.lagging.store(true, Ordering::Release);
    }

    /// The worker took a queued `Deliver` of `bytes` bytes off its channel.
    pub fn taken(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether a drain was asked for.
    pub fn draining(&self) -> bool {
        self.drain.load(Ordering::Acquire)
    }

    /// When batches were dropped: what the channel holds and the rooms that missed batches.
    pub fn take_lag(&self, rx: &Receiver<Remote>) -> Option<Lag> {
        if !self.lagging.load(Ordering::Acquire) {
            return None;
        }
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        let queued = rx.try_iter().collect();
        self.lagging.store(false, Ordering::Release);
        Some(Lag {
            queued,
            rooms: std::mem::take(&mut *dropped),
        })
    }
}
