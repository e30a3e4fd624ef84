//! Per thread and topic, an [`OrderBook`] that proves every subscriber saw the same message at
//! the same offset (docs/pubsub.md#history); [`TopicBooks`] keeps one per epoch.

use std::collections::HashMap;

use super::check::PubsubCounters;

/// Largest offset span one book holds per topic (32 MiB of entries).
const MAX_BOOK: u64 = 1 << 22;

/// Which message each offset of a topic carried, as the first subscriber on this thread saw it.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    epoch: Option<String>,
    base: u64,
    /// `(publisher + 1) << 32 | (seq & 0xFFFF_FFFF)` per offset from `base`; 0 = not seen.
    entries: Vec<u64>,
}

fn pack(publisher: u32, seq: u64) -> u64 {
    ((publisher as u64 + 1) << 32) | (seq & 0xFFFF_FFFF)
}

impl OrderBook {
    /// Records or compares the message (`publisher`, `seq`) seen at `offset` in `epoch`.
    pub fn record(
        &mut self,
        epoch: Option<&str>,
        offset: u64,
        publisher: u32,
        seq: u64,
        c: &mut PubsubCounters,
    ) {
        if epoch.is_none() {
            return; // an epoch this subscriber does not know: nothing to compare under
        }
        if self.entries.is_empty() && self.epoch.is_none() {
            self.epoch = epoch.map(str::to_owned);
            // Room for subscribers a little behind the first one.
            self.base = offset.saturating_sub(4096);
        }
        if self.epoch.as_deref() != epoch || offset < self.base || offset - self.base >= MAX_BOOK {
            return;
        }
        let i = (offset - self.base) as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, 0);
        }
        let v = pack(publisher, seq);
        match self.entries[i] {
            0 => self.entries[i] = v,
            old => {
                c.order_checked += 1;
                if old != v {
                    c.order_mismatches += 1;
                }
            }
        }
    }

    /// Compares with another thread's book of the same topic.
    pub fn compare(&self, other: &OrderBook, c: &mut PubsubCounters) {
        if self.epoch != other.epoch {
            return;
        }
        for (i, &v) in other.entries.iter().enumerate() {
            let offset = other.base + i as u64;
            if v == 0 || offset < self.base {
                continue;
            }
            if let Some(&mine) = self.entries.get((offset - self.base) as usize)
                && mine != 0
            {
                c.order_checked += 1;
                if mine != v {
                    c.order_mismatches += 1;
                }
            }
        }
    }
}

/// The order books of one topic, one per epoch (a cluster node's topic has its own epochs, and
/// a bus outage starts new ones).
#[derive(Debug, Clone, Default)]
pub struct TopicBooks(HashMap<String, OrderBook>);

/// Epochs one topic's books keep (each at most [`MAX_BOOK`] entries).
const MAX_EPOCHS: usize = 16;

impl TopicBooks {
    /// [`OrderBook::record`] in the book of `epoch`; nothing for an unknown epoch.
    pub fn record(
        &mut self,
        epoch: Option<&str>,
        offset: u64,
        publisher: u32,
        seq: u64,
        c: &mut PubsubCounters,
    ) {
        let Some(e) = epoch else { return };
        if !self.0.contains_key(e) && self.0.len() >= MAX_EPOCHS {
            return;
        }
        (self.0.entry(e.to_owned()).or_default()).record(epoch, offset, publisher, seq, c);
    }

    /// [`OrderBook::compare`] epoch by epoch.
    pub fn compare(&self, other: &TopicBooks, c: &mut PubsubCounters) {
        for (e, book) in &self.0 {
            if let Some(o) = other.0.get(e) {
                book.compare(o, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_books_agree_or_count_mismatches() {
        let mut c = PubsubCounters::default();
        let mut a = OrderBook::default();
        a.record(Some("e"), 100, 0, 7, &mut c);
        a.record(Some("e"), 101, 1, 3, &mut c);
        // A second subscriber on the same thread.
        a.record(Some("e"), 100, 0, 7, &mut c);
        a.record(Some("e"), 101, 0, 8, &mut c);
        assert_eq!((c.order_checked, c.order_mismatches), (2, 1));
        // Another thread's book: same at 100, different at 101, 102 only there.
        let mut b = OrderBook::default();
        let mut cb = PubsubCounters::default();
        b.record(Some("e"), 100, 0, 7, &mut cb);
        b.record(Some("e"), 101, 2, 3, &mut cb);
        b.record(Some("e"), 102, 2, 4, &mut cb);
        let mut x = PubsubCounters::default();
        a.compare(&b, &mut x);
        assert_eq!((x.order_checked, x.order_mismatches), (2, 1));
        // Another epoch is not comparable.
        a.record(Some("other"), 100, 9, 9, &mut c);
        assert_eq!(c.order_checked, 2);
    }

    #[test]
    fn topic_books_per_epoch() {
        let mut c = PubsubCounters::default();
        let (mut a, mut b) = (TopicBooks::default(), TopicBooks::default());
        a.record(Some("e1"), 5, 0, 1, &mut c);
        a.record(Some("e2"), 5, 0, 9, &mut c);
        a.record(None, 5, 3, 3, &mut c);
        b.record(Some("e2"), 5, 0, 9, &mut c);
        b.record(Some("e1"), 5, 1, 1, &mut c);
        assert_eq!(c.order_checked, 0);
        a.compare(&b, &mut c);
        assert_eq!((c.order_checked, c.order_mismatches), (2, 1));
    }
}
