//! The interface the server holds a cluster bus by ([`ClusterBus`]): what a node asks of any
//! bus, whatever carries it. Redis ([`BusHandle`]) is the one implementation today; another
//! transport (NATS, say) implements the same calls, reports through the same [`BusEvent`]s and
//! keeps the same promises (crate documentation: per-publisher order, loss counted as gaps,
//! presence with a TTL), and the server does not change.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{BusHandle, BusMessage, BusStats, ClusterError};

/// A running cluster bus seen from the server. Every call returns at once (a queue push): a
/// worker never blocks on the bus. Answers and deliveries come back as [`crate::BusEvent`]s
/// through the callback the bus was started with.
pub trait ClusterBus: Send + Sync {
    /// This node's id (origin of its envelopes, owner of its presence entries).
    fn node_id(&self) -> &str;
    /// Queues one turn's local messages of `room` for one publish; a full queue drops and
    /// counts them (receivers see the gap).
    fn try_publish(&self, room: Arc<str>, messages: Vec<BusMessage>) -> Result<(), ClusterError>;
    /// [`ClusterBus::try_publish`], then the room's cache value set to `cache` (a value and
    /// its TTL) for [`ClusterBus::cache_get`] on any node; dropped with the publish.
    fn try_publish_cached(
        &self,
        room: Arc<str>,
        messages: Vec<BusMessage>,
        cache: Option<(Bytes, Duration)>,
    ) -> Result<(), ClusterError>;
    /// Asks for the room's cache value; answered as `BusEvent::Cached` with `token`.
    fn cache_get(&self, room: Arc<str>, token: u64) -> Result<(), ClusterError>;
    /// Starts receiving `room` (its first local member joined).
    fn subscribe(&self, room: Arc<str>) -> Result<(), ClusterError>;
    /// Stops receiving `room` (its last local member left).
    fn unsubscribe(&self, room: Arc<str>) -> Result<(), ClusterError>;
    /// Adds local member `client` (presence `user`) to `room`'s cluster-wide presence.
    fn presence_join(&self, room: Arc<str>, client: &str, user: &str) -> Result<(), ClusterError>;
    /// Removes local member `client` from `room`'s cluster-wide presence.
    fn presence_leave(&self, room: Arc<str>, client: &str) -> Result<(), ClusterError>;
    /// Asks for `room`'s members on every node; answered as `BusEvent::Presence` with `token`.
    fn presence(&self, room: Arc<str>, token: u64) -> Result<(), ClusterError>;
    /// Counters and link state, for `/metrics`.
    fn stats(&self) -> BusStats;
    /// Stops the bus (this node's presence entries removed where the transport can).
    fn shutdown(&self);
}

impl ClusterBus for BusHandle {
    fn node_id(&self) -> &str {
        BusHandle::node_id(self)
    }

    fn try_publish(&self, room: Arc<str>, messages: Vec<BusMessage>) -> Result<(), ClusterError> {
        BusHandle::try_publish(self, room, messages)
    }

    fn try_publish_cached(
        &self,
        room: Arc<str>,
        messages: Vec<BusMessage>,
        cache: Option<(Bytes, Duration)>,
    ) -> Result<(), ClusterError> {
        BusHandle::try_publish_cached(self, room, messages, cache)
    }

    fn cache_get(&self, room: Arc<str>, token: u64) -> Result<(), ClusterError> {
        BusHandle::cache_get(self, room, token)
    }

    fn subscribe(&self, room: Arc<str>) -> Result<(), ClusterError> {
        BusHandle::subscribe(self, room)
    }

    fn unsubscribe(&self, room: Arc<str>) -> Result<(), ClusterError> {
        BusHandle::unsubscribe(self, room)
    }

    fn presence_join(&self, room: Arc<str>, client: &str, user: &str) -> Result<(), ClusterError> {
        BusHandle::presence_join(self, room, client, user)
    }

    fn presence_leave(&self, room: Arc<str>, client: &str) -> Result<(), ClusterError> {
        BusHandle::presence_leave(self, room, client)
    }

    fn presence(&self, room: Arc<str>, token: u64) -> Result<(), ClusterError> {
        BusHandle::presence(self, room, token)
    }

    fn stats(&self) -> BusStats {
        BusHandle::stats(self)
    }

    fn shutdown(&self) {
        BusHandle::shutdown(self)
    }
}
