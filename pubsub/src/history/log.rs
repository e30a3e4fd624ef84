//! One topic's log (its epoch, newest offset and held messages, all changed under one lock)
//! and the positions, offset runs and replays it answers with.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::span::{BLOCK_OVERHEAD, Weigh};

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
    /// Bytes charged for this topic (its overhead, its slots and its entries), mirrored in
    /// `Shared::bytes`.
    pub(super) bytes: usize,
    /// The part of `bytes` charged for the slots of `entries` (its capacity, not its length).
    pub(super) slots: usize,
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
            slots: 0,
            dead: false,
            recoverable_from: 0,
        }
    }

    /// Marks the log evicted and drops what it holds; returns the bytes it was charged, for
    /// the caller to take off the global total.
    pub(super) fn kill(&mut self) -> usize {
        self.dead = true;
        self.entries = VecDeque::new();
        self.slots = 0;
        std::mem::take(&mut self.bytes)
    }

    /// Appends `held`, charging its allocation unless the entry before it shares that.
    pub(super) fn push(&mut self, held: Held<E>)
    where
        E: Weigh,
    {
        if !(self.entries.back()).is_some_and(|b| b.entry.shares_allocation(&held.entry)) {
            self.bytes += held.entry.weight();
        }
        self.entries.push_back(held);
        self.charge_slots();
    }

    /// Drops the oldest entry, freeing its allocation unless the next entry shares it (which
    /// then carries the charge). Call [`Log::charge_slots`] after a run of these.
    pub(super) fn pop_front(&mut self) -> Option<Held<E>>
    where
        E: Weigh,
    {
        let front = self.entries.pop_front()?;
        if !(self.entries.front()).is_some_and(|n| n.entry.shares_allocation(&front.entry)) {
            self.bytes -= front.entry.weight();
        }
        Some(front)
    }

    /// Gives back the slots of a log that shrank to a quarter of its capacity (after a TTL
    /// prune), then charges what the slots now take.
    pub(super) fn charge_slots(&mut self) {
        let (len, cap) = (self.entries.len(), self.entries.capacity());
        if cap > 16 && len < cap / 4 {
            self.entries.shrink_to(len * 2);
        }
        let slots = match self.entries.capacity() {
            0 => 0,
            cap => cap * size_of::<Held<E>>() + BLOCK_OVERHEAD,
        };
        self.bytes = self.bytes - self.slots + slots;
        self.slots = slots;
    }

    /// Moves the oldest run of entries sharing one allocation, and the newest, into allocations
    /// of their own when they use less than half of what they keep alive (the rest of their
    /// batch was never kept, or was pruned). Elsewhere a run holds its whole batch.
    pub(super) fn compact_ends(&mut self)
    where
        E: Weigh,
    {
        let len = self.entries.len();
        let front = self.run_len(0..len);
        self.compact_run(0, front);
        if front < len {
            let back = self.run_len((0..len).rev());
            self.compact_run(len - back, back);
        }
    }

    /// Length of the run of entries sharing the allocation of the first index `order` yields.
    fn run_len(&self, mut order: impl Iterator<Item = usize>) -> usize
    where
        E: Weigh,
    {
        let Some(first) = order.next() else {
            return 0;
        };
        let first = &self.entries[first].entry;
        1 + order
            .take_while(|&i| self.entries[i].entry.shares_allocation(first))
            .count()
    }

    /// Compacts `entries[start..start + len]` (one run) if it uses less than half its weight.
    fn compact_run(&mut self, start: usize, len: usize)
    where
        E: Weigh,
    {
        let Some(first) = self.entries.get(start) else {
            return;
        };
        let old = first.entry.weight();
        let used: usize = (self.entries.range(start..start + len))
            .map(|h| h.entry.used())
            .sum();
        // Worth a copy only when most of the block is waste, and more waste than a compacted
        // run's own header (so a compacted run is never compacted again).
        let waste = old - used;
        if waste <= used || waste <= 4 * BLOCK_OVERHEAD {
            return;
        }
        let mut run: Vec<&mut E> = (self.entries.range_mut(start..start + len))
            .map(|h| &mut h.entry)
            .collect();
        E::compact(&mut run);
        let new = self.entries[start].entry.weight();
        self.bytes = self.bytes - old + new;
    }

    /// What `bytes` should be beyond the topic's own charge, counted from scratch (tests).
    #[cfg(test)]
    pub(super) fn recount(&self) -> usize
    where
        E: Weigh,
    {
        let mut total = self.slots;
        let mut prev: Option<&E> = None;
        for h in &self.entries {
            if !prev.is_some_and(|p| p.shares_allocation(&h.entry)) {
                total += h.entry.weight();
            }
            prev = Some(&h.entry);
        }
        total
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
