//! A worker's handle on one topic: appends a turn's messages under one lock and answers the
//! queries of `subscribe` (position, last N, since an offset).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::log::{Appended, Epoch, Held, Log, Position, Recovery, Replay, Topic};
use super::{History, RESOLVE_ATTEMPTS, Weigh, lock};

/// A worker's handle on one topic. It survives eviction: the next use resolves the name again
/// and continues under a new epoch.
pub struct TopicHandle<E> {
    pub(super) topic: Arc<Topic<E>>,
    pub(super) history: History<E>,
}

impl<E: Weigh + Clone> TopicHandle<E> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.topic.name
    }

    /// Runs `f` on the topic's live log, pruned at `now`, under its lock.
    fn with_log<R>(&mut self, now: u64, f: impl FnOnce(&mut Log<E>) -> R) -> R {
        let mut attempts = 0;
        loop {
            let mut log = lock(&self.topic.log);
            attempts += 1;
            if !log.dead || attempts > RESOLVE_ATTEMPTS {
                self.history.prune(&mut log, now);
                return f(&mut log);
            }
            drop(log);
            self.topic = self.history.resolve(&self.topic.name);
        }
    }

    /// Appends one turn's messages for this topic, in order, under one lock; returns the offsets
    /// they took. Read the topic's target workers after this returns (module doc, rule 2).
    pub fn append(&mut self, entries: impl IntoIterator<Item = E>, now: u64) -> Appended {
        self.append_run(now, None, |_, _| entries)
    }

    /// Like [`TopicHandle::append`] for `n` messages whose entries depend on their offsets (an
    /// envelope that carries its own offset): `build(epoch, first)` runs under the topic's lock
    /// and returns the `n` entries for offsets `first..first + n`.
    pub fn append_with(
        &mut self,
        n: usize,
        now: u64,
        build: impl FnOnce(&Epoch, u64) -> Vec<E>,
    ) -> Appended {
        self.append_run(now, Some(n), |epoch, first| {
            let entries = build(epoch, first);
            debug_assert_eq!(entries.len(), n, "one entry per message");
            entries
        })
    }

    /// The one append path: `entries(epoch, first)` runs under the topic's lock; the run takes
    /// `n` offsets if given, else one per entry.
    fn append_run<I: IntoIterator<Item = E>>(
        &mut self,
        now: u64,
        n: Option<usize>,
        entries: impl FnOnce(&Epoch, u64) -> I,
    ) -> Appended {
        let history = self.history.clone();
        let sh = &history.shared;
        let appended = self.with_log(now, |log| {
            let first = log.last + 1;
            let before = log.bytes;
            // A dead log (evicted, budget overfull) counts offsets but holds nothing: its bytes
            // are no longer tracked by anyone.
            let size = sh.cfg.size;
            let keep = size != 0 && !log.dead;
            let entries = entries(&log.epoch, first).into_iter();
            // Entries the size cap would drop at once are never stored (nor charged); the lower
            // bound of the count (exact for the `Vec` of `append_with`) never skips too many.
            let skip = entries.size_hint().0.saturating_sub(size);
            let mut count = 0;
            for entry in entries {
                count += 1;
                if keep && count > skip as u64 {
                    if log.entries.len() >= size {
                        log.pop_front();
                    }
                    log.push(Held { at: now, entry });
                }
            }
            log.last += n.map_or(count, |n| n as u64);
            History::<E>::settle(sh, before, log.bytes);
            history.prune(log, now);
            let before = log.bytes;
            log.compact_ends();
            History::<E>::settle(sh, before, log.bytes);
            Appended {
                epoch: log.epoch.clone(),
                first,
                last: log.last,
            }
        });
        self.topic
            .stamp
            .store(sh.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        history.enforce_budget();
        appended
    }

    /// The current epoch and newest offset (for `subscribed`); live messages after it are new.
    pub fn position(&mut self, now: u64) -> Position {
        self.with_log(now, |log| Position {
            epoch: log.epoch.clone(),
            offset: log.last,
        })
    }

    /// `since:{last:N}`: the newest `n` held messages (fewer if fewer are held).
    pub fn last(&mut self, n: usize, now: u64) -> Replay<E> {
        self.with_log(now, |log| {
            let held = log.entries.len().min(n) as u64;
            log.replay(log.last + 1 - held)
        })
    }

    /// `since:{offset,epoch}`: every message after `offset` if `epoch` is current, `offset` is
    /// not in the future and nothing after it has been dropped; otherwise `NotRecovered`.
    pub fn since(&mut self, offset: u64, epoch: &str, now: u64) -> Recovery<E> {
        self.with_log(now, |log| {
            let held_from = log.first_held();
            if &*log.epoch == epoch
                && offset <= log.last
                && offset + 1 >= held_from
                && offset >= log.recoverable_from
            {
                Recovery::Recovered(log.replay(offset + 1))
            } else {
                Recovery::NotRecovered(Position {
                    epoch: log.epoch.clone(),
                    offset: log.last,
                })
            }
        })
    }
}
