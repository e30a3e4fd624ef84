//! Cache values per room (the Pusher dialect's cache channels, docs/pusher.md#cache-channels):
//! a publish may carry a value that is `SET` under `<prefix>:cache:<room>` with a TTL right
//! after its PUBLISH, on the same connection (so a value never lands before its publish, and
//! one lost with its publish is lost with it); a read is one `GET`, answered as
//! [`BusEvent::Cached`]. One key per room, on the room's shard, expired by Redis itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::Value;

use super::Shard;
use crate::batch::Tag;
use crate::{BusEvent, ClusterError};

impl Shard {
    fn cache_key(&self, room: &str) -> String {
        format!("{}:cache:{room}", self.cfg.prefix)
    }

    /// Stores `value` as `room`'s cache value for `ttl` (called after its PUBLISH is batched).
    pub(super) fn cache_set(&mut self, room: &str, value: &[u8], ttl: Duration) {
        let mut cmd = redis::cmd("SET");
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        cmd.arg(self.cache_key(room)).arg(value).arg("PX").arg(ms);
        self.push_cmd(cmd, Tag::Other);
    }

    /// Reads `room`'s cache value, answered as `BusEvent::Cached` with `token` (at once
    /// `Unavailable` while the link is down).
    pub(super) fn cache_get(&mut self, room: Arc<str>, token: u64) {
        if !self.link.is_up() {
            return self.emit_cached(room, token, Err(ClusterError::Unavailable));
        }
        let cmd = redis::Cmd::get(self.cache_key(&room));
        self.push_cmd(cmd, Tag::Cache { room, token });
    }

    /// The reply to a cache read: the value, nothing, or (anything else) `Unavailable`.
    pub(super) fn answer_cache(&mut self, room: Arc<str>, token: u64, value: Value) {
        let value = match value {
            Value::Nil => Ok(None),
            Value::BulkString(v) => Ok(Some(Bytes::from(v))),
            other => {
                tracing::warn!(
                    shard = self.cfg.index,
                    "cluster: bad cache reply: {other:?}"
                );
                Err(ClusterError::Unavailable)
            }
        };
        self.emit_cached(room, token, value);
    }

    /// A cache read that Redis will never answer.
    pub(super) fn fail_cache(&mut self, room: Arc<str>, token: u64) {
        self.emit_cached(room, token, Err(ClusterError::Unavailable));
    }

    fn emit_cached(&self, room: Arc<str>, token: u64, value: Result<Option<Bytes>, ClusterError>) {
        (self.emit)(BusEvent::Cached { room, token, value });
    }
}
