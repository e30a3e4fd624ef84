//! A worker's inbox from the other workers (and the main thread): a bounded crossbeam channel
//! plus what was dropped because the worker fell behind (docs/limits.md#between-workers: queues between workers are
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

use crate::limits::REMOTE_QUEUE_BYTES;

/// What a worker missed because it fell behind.
#[derive(Default)]
pub struct Lag {
    /// Rooms whose batches were dropped: their local members are cut.
    pub rooms: HashSet<u64>,
    /// Connections (slab key, slot generation) whose answers were dropped: they are cut.
    /// At most one per answer sent, and answers per connection are capped
    /// (`limits::MAX_ASKS_IN_FLIGHT`).
    pub conns: Vec<(usize, u32)>,
}

/// What the senders share with one target worker besides its channel.
#[derive(Default)]
pub struct Inbox {
    /// Batches were dropped and the target has not taken the note yet.
    lagging: AtomicBool,
    /// What was dropped: the rooms whose batches, the connections whose answers.
    dropped: Mutex<Lag>,
    /// Bytes of the batches queued in the channel (approximate budget across senders).
    queued_bytes: AtomicUsize,
    /// The main thread asked for a drain (never lost to a full channel).
    drain: AtomicBool,
}

impl Inbox {
    /// Reserves `bytes` of the target's budget for a send: false when the target is lagging
    /// or the budget is spent (then the batches are dropped: [`Inbox::note`]).
    pub fn reserve(&self, bytes: usize) -> bool {
        let spent = self.queued_bytes.load(Ordering::Relaxed);
        if self.lagging.load(Ordering::Acquire) || spent + bytes > REMOTE_QUEUE_BYTES {
            return false;
        }
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// The worker took (or a failed send gave back) a `Deliver` of `bytes` bytes.
    pub fn taken(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Batches of `rooms` were dropped on their way to the target.
    pub fn note(&self, rooms: impl IntoIterator<Item = u64>) {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        dropped.rooms.extend(rooms);
        self.lagging.store(true, Ordering::Release);
    }

    /// An answer for connection `key` (slot `generation`) was dropped on its way to the
    /// target: the connection is cut, never left waiting for it (a lost `presence` answer).
    pub fn note_conn(&self, key: usize, generation: u32) {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        dropped.conns.push((key, generation));
        self.lagging.store(true, Ordering::Release);
    }

    /// Asks the target to drain.
    pub fn ask_drain(&self) {
        self.drain.store(true, Ordering::Release);
    }

    /// Whether a drain was asked for.
    pub fn draining(&self) -> bool {
        self.drain.load(Ordering::Acquire)
    }

    /// When batches were dropped: runs `take_queued` (which empties the channel) under the
    /// note's lock, then returns what was dropped.
    pub fn take_lag(&self, take_queued: impl FnOnce()) -> Option<Lag> {
        if !self.lagging.load(Ordering::Acquire) {
            return None;
        }
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        take_queued();
        self.lagging.store(false, Ordering::Release);
        Some(std::mem::take(&mut *dropped))
    }
}
