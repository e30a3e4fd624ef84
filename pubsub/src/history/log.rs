//! One topic's log (its epoch, newest offset and held messages, all changed under one lock)
//! and the positions, offset runs and replays it answers with.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// A topic's epoch: changes whenever continuity is lost; cheap to clone into replies.
pub type Epoch = Arc<str>;

/// The newest offset of a topic and its epoch: what `subscribed` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The topic's current epoch.
    pub epoch: Epoch,
    /// The newest message's offset; 0 for a topic that never had one.
    pub offset: u64,
}

/// Offsets one [`TopicHandle::append`](super::TopicHandle::append) took: `first..=last`, empty (`first == last + 1`) when
/// nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The epoch the offsets belong to; send it with the batch.
    pub epoch: Epoch,
    /// Offset of the first message appended.
    pub first: u64,
    /// Offset of the last message appended (the topic's newest).
    pub last: u64,
}

/// Messages handed back for a replay, oldest first, with the offsets they cover.
#[derive(Clone, Debug)]
pub struct Replay<E> {
    /// The epoch of the replayed offsets.
    pub epoch: Epoch,
    /// Offset of `entries[0]` (`through + 1` when empty).
    pub first: u64,
    /// The newest offset at the query: the `offset` of `subscribed`; live messages with an
    /// offset ≤ this are covered and must be skipped for this subscriber.
    pub through: u64,
    /// Clones of the held entries (for [`SharedSpan`](super::SharedSpan), `Arc` clones).
    pub entries: Vec<E>,
}

/// The answer to `since:{offset,epoch}`.
#[derive(Clone, Debug)]
pub enum Recovery<E> {
    /// The epoch matched and every message after the offset is held: replay them.
    Recovered(Replay<E>),
    /// Continuity cannot be proven: reply `recovered:false`, replay nothing, and go live after
    /// this position.
    NotRecovered(Position),
}

/// One held message.
pub(super) struct Held<E> {
    /// `now` at the append, for the TTL.
    pub(super) at: u64,
    pub(super) entry: E,
}

/// A topic's log; everything in it changes under one lock.
pub(super) struct Log<E> {
    pub(super) epoch: Epoch,
    /// Offset of the newest message appended (0 if none yet).
    pub(super) last: u64,
    pub(super) entries: VecDeque<Held<E>>,
    /// Bytes charged for this topic (its overhead included), mirrored in `Shared::bytes`.
    pub(super) bytes: usize,
    /// Evicted: the handle must resolve the name again (and gets a new epoch).
    pub(super) dead: bool,
    /// Messages after offsets below this one may have been missed (`History::mark_hole`): a
    /// resume from such an offset is not recovered, though what is held is still replayed to
    /// `since:{last:N}`.
    pub(super) recoverable_from: u64,
}

impl<E> Log<E> {
    /// A fresh log under `epoch`, charged `bytes` (the topic's own cost).
    pub(super) fn new(epoch: Epoch, bytes: usize) -> Log<E> {
        Log {
            epoch,
            last: 0,
            entries: VecDeque::new(),
            bytes,
            dead: false,
            recoverable_from: 0,
        }
    }

    /// Marks the log evicted and drops what it holds; returns the bytes it was charged, for
    /// the caller to take off the global total.
    pub(super) fn kill(&mut self) -> usize {
        self.dead = true;
        self.entries = VecDeque::new();
        std::mem::take(&mut self.bytes)
    }

    /// Offset of the oldest held message (`last + 1` when none is held).
    pub(super) fn first_held(&self) -> u64 {
        self.last + 1 - self.entries.len() as u64
    }

    /// Clones of the entries with offsets `from..=last`; `from` must be ≥ [`Log::first_held`].
    pub(super) fn replay(&self, from: u64) -> Replay<E>
    where
        E: Clone,
    {
        let skip = (from - self.first_held()) as usize;
        Replay {
            epoch: self.epoch.clone(),
            first: from,
            through: self.last,
            entries: self
                .entries
                .iter()
                .skip(skip)
                .map(|h| h.entry.clone())
                .collect(),
        }
    }
}

/// A topic: its log and when it was last appended to (for eviction by age).
pub(super) struct Topic<E> {
    pub(super) name: Arc<str>,
    pub(super) log: Mutex<Log<E>>,
    pub(super) stamp: AtomicU64,
}
