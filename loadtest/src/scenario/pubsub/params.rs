//! [`Params`]: what one pub/sub run asks for (the CLI's `pubsub` and `api` options).

/// Parameters of a pub/sub run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Topics.
    pub topics: usize,
    /// Subscribers per topic.
    pub subscribers: usize,
    /// Publishers per topic.
    pub publishers: usize,
    /// Bytes of each `data` value (a JSON string, quotes included).
    pub size: usize,
    /// Messages per second per publisher; 0 = as fast as the window allows.
    pub rate: u64,
    /// Own messages a publisher may have in flight (not yet back at itself).
    pub window: u64,
    /// The server keeps history: check offsets and order, resume with `since`.
    pub history: bool,
    /// Subscriber drops and resumes per second (all threads together).
    pub churn: f64,
    /// Subscriber unsubscribes and resumes (same connection) per second (all threads together).
    pub unsubscribe_churn: f64,
    /// How long an unsubscribed subscriber stays away before it resumes, ns (so that the resume
    /// has something to replay).
    pub unsubscribe_pause: u64,
    /// Subscribers subscribe with `"presence":true` and check the snapshot and events.
    pub presence: bool,
    /// Subprotocol of JSON mode.
    pub protocol: String,
    /// Topic `i` is `{prefix}{i}`.
    pub prefix: String,
    /// The `api` scenario: publishers publish through the server API with this key
    /// (`POST /api/publish` on plain HTTP keep-alive connections, [`super::api`]) instead of over
    /// WebSocket.
    pub api_key: Option<String>,
    /// Servers the connections are spread over (`--url` given this many times); with more
    /// than one, latency is also split into same-node and cross-node.
    pub servers: usize,
}
