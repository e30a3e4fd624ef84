//! `idempotency_key` of the server API's publishes (docs/api.md#publish): the result of a
//! publish is kept for a window under (channel, key), and a publish that repeats the key
//! within it is answered with that result and not published again. Process-wide (any worker's
//! API connection may retry), bounded in time and count.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a result is kept (Centrifugo keeps its for five minutes too).
pub const WINDOW: Duration = Duration::from_secs(300);

/// Keys kept at most; past it the oldest is forgotten early.
pub const MAX_KEYS: usize = 100_000;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// Where a publish's result lands once the pipeline knows it: `Some((epoch, offset))` with
/// history, `None` without (the same type as `fanout::batch::ResultCell`).
pub type ResultCell = Arc<OnceLock<Option<(Arc<str>, u64)>>>;

/// What a publish with a key finds.
pub enum Seen {
    /// The first publish with this key in the window: publish, and fill this cell.
    First(ResultCell),
    /// A repeat whose first publish has its result.
    Done(Option<(Arc<str>, u64)>),
    /// A repeat whose first publish is still in the pipeline (the same event-loop turn).
    Pending,
}

/// The keys of the window.
#[derive(Default)]
pub struct Idempotency {
    inner: Mutex<Keys>,
}

/// (channel, key).
type Key = (Box<str>, Box<str>);

#[derive(Default)]
struct Keys {
    map: HashMap<Key, ResultCell>,
    /// Insertion order, for the expiry and the cap.
    order: VecDeque<(Instant, Key)>,
}

impl Idempotency {
    /// Looks `key` of `channel` up, noting it when it is new.
    pub fn check(&self, channel: &str, key: &str) -> Seen {
        let mut keys = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while let Some((at, _)) = keys.order.front() {
            if now.duration_since(*at) <= WINDOW && keys.order.len() < MAX_KEYS {
                break;
            }
            if let Some((_, k)) = keys.order.pop_front() {
                keys.map.remove(&k);
            }
        }
        let k: Key = (channel.into(), key.into());
        if let Some(cell) = keys.map.get(&k) {
            return match cell.get() {
                Some(result) => Seen::Done(result.clone()),
                None => Seen::Pending,
            };
        }
        let cell = ResultCell::default();
        keys.map.insert(k.clone(), cell.clone());
        keys.order.push_back((now, k));
        Seen::First(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_finds_the_first_result_per_channel() {
        let i = Idempotency::default();
        let Seen::First(cell) = i.check("c", "k") else {
            panic!("first")
        };
        assert!(matches!(i.check("c", "k"), Seen::Pending));
        assert!(matches!(i.check("d", "k"), Seen::First(_)), "per channel");
        cell.set(Some(("e".into(), 4))).unwrap();
        assert!(matches!(i.check("c", "k"), Seen::Done(Some((_, 4)))));
    }
}
