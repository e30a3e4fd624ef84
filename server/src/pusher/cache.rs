//! `Cache`: the last event of each Pusher cache channel (`cache-`, `private-cache-`,
//! `presence-cache-`, `private-encrypted-cache-`; docs/pusher.md#cache-channels) kept by this
//! process, written by the one publish pipeline (`fanout::pipeline`) wherever the event came
//! from, read by a subscribe.
//!
//! One entry per channel (its finished event frame's payload, copied out of the batch so the
//! batch's buffer is not kept alive), each for [`TTL`] after it was written. Bounded: entries
//! are charged their bytes plus [`ENTRY_OVERHEAD`] against [`MAX_BYTES`]; past it the least
//! recently written entries are dropped (counted), so a channel whose entry was dropped answers
//! `pusher:cache_miss` (or, in a cluster, what Redis holds). Written entries are ordered by a
//! write sequence, so both expiry and eviction take from the front: O(log n) per write, no
//! sweep. One mutex, taken once per batch of a cache channel (never for other channels).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an event stays cached: Pusher's documented 30 minutes.
pub const TTL: Duration = Duration::from_secs(30 * 60);

/// What the entries of one process may hold, payloads and overhead (64 MiB).
pub const MAX_BYTES: usize = 64 << 20;

/// Bytes charged per entry besides its payload: the topic name is charged too; this covers
/// the map slots, the order index and the allocation headers.
pub const ENTRY_OVERHEAD: usize = 128;

/// The channel-name prefix of Pusher topics (`ringcast_pusher::app::topic`).
const TOPIC_PREFIX: &str = "#pusher/";

/// A cached event as read by a subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The event frame's payload (`{"event":…,"channel":…,"data":…}`).
    pub payload: Arc<[u8]>,
    /// The id of the local room the event was delivered into when it was written (`None`:
    /// the channel had no subscriber in this process). In a cluster an entry written while
    /// the current room was open is known to be current: this node has received every
    /// node's events of the channel since.
    pub room_id: Option<u64>,
}

struct Entry {
    cached: Cached,
    written: Instant,
    seq: u64,
    charge: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Arc<str>, Entry>,
    /// Write sequence → topic, oldest first.
    order: BTreeMap<u64, Arc<str>>,
    next_seq: u64,
    bytes: usize,
}

/// This process's cache channels' last events.
pub struct Cache {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_bytes: usize,
    evicted: AtomicU64,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::new(TTL, MAX_BYTES)
    }
}

impl Cache {
    /// A cache keeping entries for `ttl`, within `max_bytes`.
    pub fn new(ttl: Duration, max_bytes: usize) -> Cache {
        Cache {
            inner: Mutex::default(),
            ttl,
            max_bytes,
            evicted: AtomicU64::new(0),
        }
    }

    /// How long entries live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `payload` as `topic`'s last event at `now`, delivered into local room
    /// `room_id`. An entry larger than the whole budget is not kept (and the older one is
    /// dropped: it is no longer the last event).
    pub fn put(&self, topic: &Arc<str>, payload: &[u8], room_id: Option<u64>, now: Instant) {
        let mut inner = self.lock();
        inner.remove(topic);
        inner.expire(now, self.ttl);
        let charge = payload.len() + topic.len() + ENTRY_OVERHEAD;
        if charge > self.max_bytes {
            self.evicted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        while inner.bytes + charge > self.max_bytes && inner.pop_oldest() {
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.insert(seq, topic.clone());
        inner.bytes += charge;
        let cached = Cached {
            payload: Arc::from(payload),
            room_id,
        };
        let entry = Entry {
            cached,
            written: now,
            seq,
            charge,
        };
        inner.entries.insert(topic.clone(), entry);
    }

    /// `topic`'s last event, if one was written within the TTL.
    pub fn get(&self, topic: &str, now: Instant) -> Option<Cached> {
        let inner = self.lock();
        let e = inner.entries.get(topic)?;
        (now.duration_since(e.written) < self.ttl).then(|| e.cached.clone())
    }

    /// (entries, bytes charged, entries evicted by the bound since start), for `/metrics`.
    pub fn stats(&self) -> (usize, usize, u64) {
        let inner = self.lock();
        let evicted = self.evicted.load(Ordering::Relaxed);
        (inner.entries.len(), inner.bytes, evicted)
    }

    /// The `/metrics` lines of the cache.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let (entries, bytes, evicted) = self.stats();
        let _ = write!(
            out,
            "# HELP ringcast_pusher_cache_entries Pusher cache channels with a cached event in this process.\n\
             # TYPE ringcast_pusher_cache_entries gauge\n\
             ringcast_pusher_cache_entries {entries}\n\
             # HELP ringcast_pusher_cache_bytes Bytes charged by the cached events (payload, name, overhead).\n\
             # TYPE ringcast_pusher_cache_bytes gauge\n\
             ringcast_pusher_cache_bytes {bytes}\n\
             # HELP ringcast_pusher_cache_evictions_total Cached events dropped before their TTL to stay within the cache's bytes.\n\
             # TYPE ringcast_pusher_cache_evictions_total counter\n\
             ringcast_pusher_cache_evictions_total {evicted}\n"
        );
    }
}

impl Inner {
    fn remove(&mut self, topic: &str) {
        if let Some(e) = self.entries.remove(topic) {
            self.order.remove(&e.seq);
            self.bytes -= e.charge;
        }
    }

    /// Drops the entries written `ttl` or more before `now` (all at the front).
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((_, topic)) = self.order.first_key_value() {
            let old =
                (self.entries.get(topic)).is_some_and(|e| now.duration_since(e.written) >= ttl);
            if !old {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drops the least recently written entry; `false` when there is none.
    fn pop_oldest(&mut self) -> bool {
        let Some((_, topic)) = self.order.pop_first() else {
            return false;
        };
        if let Some(e) = self.entries.remove(&topic) {
            self.bytes -= e.charge;
        }
        true
    }
}

/// Whether `topic` is a Pusher cache channel's (`#pusher/{app}/{channel}` with a channel
/// named `cache-…`, `private-cache-…`, `presence-cache-…` or `private-encrypted-cache-…`).
pub fn is_cache_topic(topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix(TOPIC_PREFIX) else {
        return false;
    };
    let Some((_, channel)) = rest.split_once('/') else {
        return false;
    };
    let base = ["private-encrypted-", "private-", "presence-"]
        .iter()
        .find_map(|p| channel.strip_prefix(p))
        .unwrap_or(channel);
    base.starts_with("cache-")
}

/// The `pusher:cache_miss` payload for a subscriber of cache channel `topic`, with the app
/// and the `cache_miss` webhook event the caller emits.
pub fn miss(topic: &str) -> (Vec<u8>, &str, ringcast_pusher::webhook::Event) {
    let (app, channel) = ringcast_pusher::app::split_topic(topic).unwrap_or(("", topic));
    let mut out = Vec::with_capacity(64 + channel.len());
    ringcast_pusher::write::cache_miss(&mut out, channel);
    let channel = channel.to_owned();
    (
        out,
        app,
        ringcast_pusher::webhook::Event::CacheMiss { channel },
    )
}

/// Whether `payload` is an event a cache channel remembers: a channel event (an HTTP API
/// event or a client event), not the server's own `pusher_internal:` / `pusher:` events.
pub fn is_cacheable(payload: &[u8]) -> bool {
    const HEAD: &[u8] = b"{\"event\":\"";
    match payload.strip_prefix(HEAD) {
        Some(rest) => !rest.starts_with(b"pusher_internal:") && !rest.starts_with(b"pusher:"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn cache_topics_are_the_four_cache_kinds_of_pusher_topics() {
        for yes in [
            "#pusher/1/cache-a",
            "#pusher/1/private-cache-a",
            "#pusher/1/presence-cache-a",
            "#pusher/1/private-encrypted-cache-a",
        ] {
            assert!(is_cache_topic(yes), "{yes}");
        }
        for no in [
            "#pusher/1/a",
            "#pusher/1/private-a",
            "#pusher/1/a-cache-b",
            "#pusher/cache-a",
            "cache-a",
            "#pusher/1/presence-private-cache-a",
        ] {
            assert!(!is_cache_topic(no), "{no}");
        }
    }

    #[test]
    fn only_channel_events_are_cacheable() {
        assert!(is_cacheable(br#"{"event":"e","channel":"c","data":"d"}"#));
        assert!(is_cacheable(
            br#"{"event":"client-x","channel":"c","data":"d"}"#
        ));
        assert!(!is_cacheable(
            br#"{"event":"pusher_internal:member_added","channel":"c"}"#
        ));
        assert!(!is_cacheable(
            br#"{"event":"pusher:cache_miss","channel":"c"}"#
        ));
        assert!(!is_cacheable(b"hello"));
    }

    #[test]
    fn the_last_event_is_kept_until_its_ttl() {
        let cache = Cache::new(Duration::from_secs(10), 1 << 20);
        let now = Instant::now();
        cache.put(&t("a"), b"1", None, now);
        cache.put(&t("a"), b"2", Some(4), now + Duration::from_secs(5));
        let got = cache
            .get("a", now + Duration::from_secs(14))
            .expect("cached");
        assert_eq!((&*got.payload, got.room_id), (&b"2"[..], Some(4)));
        assert_eq!(cache.get("a", now + Duration::from_secs(15)), None);
        assert_eq!(cache.stats().0, 1, "expired entries go at the next write");
        cache.put(&t("b"), b"x", None, now + Duration::from_secs(16));
        assert_eq!(cache.stats().0, 1);
    }

    #[test]
    fn past_the_bytes_the_least_recently_written_go_first() {
        let each = 100 + 1 + ENTRY_OVERHEAD;
        let cache = Cache::new(TTL, 3 * each);
        let now = Instant::now();
        let payload = [b'x'; 100];
        for name in ["a", "b", "c"] {
            cache.put(&t(name), &payload, None, now);
        }
        cache.put(&t("a"), &payload, None, now);
        cache.put(&t("d"), &payload, None, now);
        assert!(cache.get("b", now).is_none(), "b was the oldest write");
        for name in ["a", "c", "d"] {
            assert!(cache.get(name, now).is_some(), "{name}");
        }
        assert_eq!(cache.stats(), (3, 3 * each, 1));
        // Larger than the budget: not kept, and the older event is gone too.
        cache.put(&t("a"), &[0; 1000], None, now);
        assert!(cache.get("a", now).is_none());
        assert_eq!(cache.stats(), (2, 2 * each, 2));
    }
}
