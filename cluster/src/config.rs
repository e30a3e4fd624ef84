//! Bus configuration and the room → Redis shard mapping.

use std::time::Duration;

use crate::ClusterError;

/// How a node joins the cluster. Every node of one cluster must list the same `urls` in the same
/// order (rooms are sharded by position) and use the same `prefix`. `Debug` shows the URLs with
/// their passwords hidden ([`Redacted`](crate::Redacted)).
#[derive(Clone)]
pub struct BusConfig {
    /// Redis URLs (`redis://host:port`); a room lives on `urls[shard_of(room)]`.
    pub urls: Vec<String>,
    /// Key and channel prefix: channels are `<prefix>:room:<name>`, presence hashes
    /// `<prefix>:presence:<name>`. Default `ringcast`.
    pub prefix: String,
    /// This node's id, carried in every bus message (at most 255 bytes, no `\n`). Default: random.
    pub node_id: String,
    /// How long a presence entry lives without a refresh; each node refreshes its entries every
    /// `presence_ttl / 3`, so a dead node's members vanish within this time. Default 30 s, at
    /// most 1 hour (an entry expiring later than that, plus a minute of clock skew, cannot have
    /// been written by a node: readers skip it as bad).
    pub presence_ttl: Duration,
    /// Capacity of each shard's publish queue (calls of `try_publish`, not messages); a full queue
    /// drops and counts. Default 65536.
    pub queue_capacity: usize,
    /// Bytes of publishes (payloads plus a small per-message overhead) the bus may hold, queued
    /// or on their way to Redis, over all shards: past it `try_publish` drops and counts, like a
    /// full queue. Default 64 MiB.
    pub max_queued_bytes: usize,
    /// Upper bound of the reconnect backoff (it starts at 50 ms and doubles). Default 5 s.
    pub reconnect_max: Duration,
    /// A Redis request unanswered for this long counts as a dead connection. Default 3 s.
    pub response_timeout: Duration,
}

impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<_> = self.urls.iter().map(|u| crate::Redacted(u)).collect();
        f.debug_struct("BusConfig")
            .field("urls", &urls)
            .field("prefix", &self.prefix)
            .field("node_id", &self.node_id)
            .field("presence_ttl", &self.presence_ttl)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("reconnect_max", &self.reconnect_max)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            prefix: "ringcast".to_owned(),
            node_id: random_node_id(),
            presence_ttl: Duration::from_secs(30),
            queue_capacity: 65536,
            max_queued_bytes: 64 << 20,
            reconnect_max: Duration::from_secs(5),
            response_timeout: Duration::from_secs(3),
        }
    }
}

impl BusConfig {
    /// A default configuration for these Redis URLs.
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Rejects what the bus cannot run with.
    pub(crate) fn validate(&self) -> Result<(), ClusterError> {
        let bad = |why: &str| Err(ClusterError::Config(why.to_owned()));
        if self.urls.is_empty() {
            return bad("at least one Redis URL is needed");
        }
        if self.node_id.is_empty() || self.node_id.len() > 255 || self.node_id.contains('\n') {
            return bad("node id must be 1..=255 bytes without a newline");
        }
        if self.prefix.is_empty() {
            return bad("prefix must not be empty");
        }
        if self.presence_ttl < Duration::from_millis(30) {
            return bad("presence TTL must be at least 30 ms");
        }
        if self.presence_ttl > crate::presence::MAX_TTL {
            return bad("presence TTL must be at most 1 hour");
        }
        if self.max_queued_bytes == 0 {
            return bad("max queued bytes must be at least 1");
        }
        if self.queue_capacity == 0 {
            return bad("queue capacity must be at least 1");
        }
        Ok(())
    }
}

/// The shard (index into `urls`) that holds `room`: FNV-1a 64 of the name, so every node and
/// every version agree on it (std's hasher is seeded per process and may change).
pub fn shard_of(room: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in room.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// 16 hex digits from std's per-process random hasher keys, the pid and the clock: unique enough
/// to tell nodes apart, and no extra dependency.
fn random_node_id() -> String {
    format!("{:016x}", random_u64())
}

/// 64 random bits from the same sources as [`random_node_id`] (stream ids, instance nonces).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_in_range() {
        // Pinned values: changing the hash would split a running cluster.
        assert_eq!(shard_of("", 7), (0xcbf2_9ce4_8422_2325u64 % 7) as usize);
        assert_eq!(shard_of("lobby", 1), 0);
        let spread: std::collections::HashSet<_> =
            (0..100).map(|i| shard_of(&format!("room{i}"), 3)).collect();
        assert_eq!(spread.len(), 3);
    }

    #[test]
    fn random_ids_differ_and_validate() {
        let a = BusConfig::new(["redis://127.0.0.1"]);
        let b = BusConfig::new(["redis://127.0.0.1"]);
        assert_ne!(a.node_id, b.node_id);
        assert!(a.validate().is_ok());
        let bad = BusConfig {
            node_id: "a\nb".into(),
            ..a.clone()
        };
        assert!(bad.validate().is_err());
        assert!(BusConfig::default().validate().is_err());
    }
}
