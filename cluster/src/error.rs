//! The crate's one error type.

/// Everything the bus can report to its caller.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    /// `Bus::start` got a configuration it cannot run with (no URL, a bad node id, a zero TTL).
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// A Redis URL does not parse (`redis://host:port[/db]`).
    #[error("invalid Redis URL {url:?}: {reason}")]
    Url {
        /// The URL as given, its password hidden (`redis://user:***@host`).
        url: String,
        /// What the Redis client said about it.
        reason: String,
    },
    /// The bus thread could not be spawned or its runtime not built.
    #[error("cannot start the bus thread: {0}")]
    Spawn(String),
    /// The bounded publish queue is full: the messages were dropped and counted.
    #[error("bus queue full, messages dropped")]
    QueueFull,
    /// The bus has shut down; nothing more is accepted.
    #[error("bus is shut down")]
    Closed,
    /// Redis (the shard holding this room) is unreachable right now.
    #[error("Redis unreachable")]
    Unavailable,
}
