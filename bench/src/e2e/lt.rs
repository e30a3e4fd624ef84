//! The fields of loadtest's JSON report (`--json FILE`) that the runner reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Latency fields of loadtest's JSON report (microseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LtLatency {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

/// The `pubsub` part of loadtest's JSON report the runner uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LtPubsub {
    /// `{"op":"error"}` replies.
    pub server_errors: u64,
    /// (topic, offset) pairs compared between subscribers.
    pub order_checked: u64,
    /// Offset gaps.
    pub offset_gaps: u64,
}

/// The fields of loadtest's JSON report the runner uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LtReport {
    /// Connections attempted.
    pub connections: u64,
    /// Connections upgraded.
    pub connected: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Messages sent in the window.
    pub sent: u64,
    /// Copies delivered in the window.
    pub delivered: u64,
    /// Sent per second.
    pub sent_per_s: f64,
    /// Delivered per second.
    pub delivered_per_s: f64,
    /// Copies expected.
    pub expected: u64,
    /// Copies missing at receivers the server did not close.
    pub lost: u64,
    /// Copies missing at receivers the server closed (backpressure drops).
    pub lost_at_closed_receivers: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Late copies.
    pub reordered: u64,
    /// Messages without a loadtest header.
    pub foreign: u64,
    /// TCP connects failed.
    pub connect_errors: u64,
    /// Handshakes failed.
    pub handshake_errors: u64,
    /// `wss://` connections whose TLS handshake resumed a session.
    pub tls_resumed: u64,
    /// Connections broken without a close frame.
    pub unexpected_closes: u64,
    /// Connections the server closed, by close code.
    pub closed_by_server: BTreeMap<String, u64>,
    /// Latency.
    pub latency: LtLatency,
    /// Several `--url`: latency of copies received on their publisher's server.
    pub latency_same_node: Option<LtLatency>,
    /// Several `--url`: latency of copies whose publisher is on another server.
    pub latency_cross_node: Option<LtLatency>,
    /// Connection setup rate.
    pub connect_rate_per_s: f64,
    /// Rounds completed.
    pub rounds: u64,
    /// Rounds per second.
    pub rounds_per_s: f64,
    /// Server RSS before connecting, KiB.
    pub server_rss_before_kib: Option<u64>,
    /// Server RSS with every connection open, KiB.
    pub server_rss_after_kib: Option<u64>,
    /// RSS growth per connection, KiB.
    pub server_rss_per_conn_kib: Option<f64>,
    /// loadtest CPU seconds.
    pub loadtest_cpu_s: f64,
    /// `pubsub` only: the JSON-mode checks.
    pub pubsub: Option<LtPubsub>,
    /// loadtest wall seconds.
    pub wall_s: f64,
    /// Messages received per loadtest CPU second.
    pub received_per_loadtest_cpu_s: f64,
}
