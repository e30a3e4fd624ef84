//! ringcast's cluster bus (docs/cluster.md): rooms and topics span nodes through Redis.
//!
//! * **Threading.** [`Bus::start`] spawns one thread, `ringcast-bus`, running a current-thread
//!   Tokio runtime: the only async runtime in ringcast. Workers talk to it through a
//!   [`BusHandle`] whose methods never block; the bus talks back through the `on_event` callback,
//!   called on the bus thread (push into the worker's queue, wake it with `MSG_RING`).
//! * **Sharding.** Each room lives on one Redis, `urls[shard_of(room)]` (FNV-1a of the name), one
//!   connection per URL. Every node must list the same URLs in the same order.
//! * **Publishing.** [`BusHandle::try_publish`] queues one turn's messages of one room (queue
//!   bounded in count and in bytes, `max_queued_bytes`; full → dropped and counted) and the bus sends them as one `PUBLISH` on
//!   `<prefix>:room:<name>`, in a compact binary envelope ([`wire`](crate::wire) format: origin
//!   node id, stream id, per-(origin, room, stream) sequence number counting messages, then
//!   kind + payload per message). Batches are pipelined, one in flight per connection, so order
//!   is kept. A room's numbering is forgotten when idle (bounded: `streams`); its next publish
//!   starts a new stream, which receivers take as a fresh start, not a gap.
//! * **Receiving.** Only rooms subscribed with [`BusHandle::subscribe`] (first local member) are
//!   received, until [`BusHandle::unsubscribe`] (last local member leaves). A node never
//!   delivers its own envelopes. Sequence gaps become [`BusEvent::Gap`] and the `gaps` counter;
//!   a sequence going backwards within a stream is a `Gap` with `missed: 0` (continuity broken
//!   by an unknown amount), never a silent second delivery.
//!   Envelopes already waiting are handled as one burst (at most 256), closed by
//!   [`BusEvent::Flush`], so the server can hand each worker one group per burst.
//! * **Presence.** A Redis hash per room, a field per client with its own expiry, refreshed every
//!   TTL/3; readers skip expired entries, so a killed node's members vanish within the TTL.
//!   A join or leave in a room on the bus is also published (a `Join` / `Leave` message, right
//!   after its HSET / HDEL on the same connection), and a query's answer
//!   ([`BusEvent::Presence`]) is emitted exactly where Redis executed it among the room's
//!   received envelopes: every `Join` / `Leave` emitted after it was published after the
//!   query ran (see `shard::members`).
//! * **Redis down.** Local delivery is untouched. Publishes while down are dropped and counted
//!   (receivers see the sequence gap); the shard reconnects with backoff (50 ms doubling, capped
//!   at `reconnect_max`, 5 s), resubscribes every room with local members and re-writes its
//!   presence before it counts as up. [`BusEvent::Up`] and a log line mark each change.
//!
//! Promise: per-publisher order; at-most-once across an outage, every loss counted where it can
//! be seen (a gap is noticed at the origin's next envelope in that room).

mod batch;
mod bus;
mod config;
mod error;
mod gaps;
mod handle;
mod link;
mod presence;
mod redact;
mod shard;
mod streams;
mod transport;
mod wire;

pub use bus::Bus;
/// Re-exported so callers build payloads without naming the `bytes` crate themselves.
pub use bytes::Bytes;
pub use config::{BusConfig, shard_of};
pub use error::ClusterError;
pub use handle::{BusEvent, BusHandle, BusStats};
pub use presence::PresenceMember;
pub use redact::{Redacted, redact_url};
pub use transport::ClusterBus;
pub use wire::{BusMessage, MessageKind, decode_member, encode_member};
