//! Counters per worker (relaxed atomics on the worker's own cache lines, so the hot path never
//! contends) and their Prometheus text rendering.

pub mod api;
pub mod pusher_api;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Close codes counted individually; anything else lands in `other`.
const CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011];
/// Rejection reasons, as `refusal::Refusal::label` names them.
pub const REJECT_REASONS: [&str; 13] = [
    "bad_request",
    "no_subprotocol",
    "unauthorized",
    "forbidden",
    "room_forbidden",
    "method",
    "upgrade_required",
    "version",
    "head_too_large",
    "connection_limit",
    "per_ip_limit",
    "too_many_rooms",
    "draining",
];

/// TLS failure reasons, as `tls::Failure::label` names them (docs/metrics.md#tls).
pub const TLS_FAILURE_REASONS: [&str; 12] = [
    "plain_http",
    "bad_record",
    "protocol_version",
    "alpn",
    "alert_received",
    "server_name",
    "client_certificate",
    "peer_misbehaved",
    "decrypt",
    "timeout",
    "eof",
    "other",
];

/// The counters of one worker.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerMetrics {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections closed (any reason).
    pub closed: AtomicU64,
    /// WebSocket upgrades completed.
    pub upgraded: AtomicU64,
    /// Requests refused, by `REJECT_REASONS` index.
    pub rejected: [AtomicU64; REJECT_REASONS.len()],
    /// Data messages received.
    pub messages_in: AtomicU64,
    /// Payload bytes received in data messages.
    pub bytes_in: AtomicU64,
    /// Frames queued to clients (fan-out deliveries included).
    pub messages_out: AtomicU64,
    /// Bytes handed to the kernel by completed sends.
    pub bytes_out: AtomicU64,
    /// Deliveries of a room message to one member.
    pub deliveries: AtomicU64,
    /// Batches of messages received from other workers.
    pub remote_batches: AtomicU64,
    /// Clients closed for exceeding `--max-backpressure`.
    pub backpressure_disconnects: AtomicU64,
    /// Close frames sent, by code (`CLOSE_CODES`, then other).
    pub close_sent: [AtomicU64; CLOSE_CODES.len() + 1],
    /// Clients dropped by the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Event-loop turns.
    pub loop_iterations: AtomicU64,
    /// Completions handled.
    pub completions: AtomicU64,
    /// Sends (writev SQEs) issued.
    pub sends: AtomicU64,
    /// TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// TLS connections failed, by `TLS_FAILURE_REASONS` index.
    pub tls_failures: [AtomicU64; TLS_FAILURE_REASONS.len()],
    /// Connections closed because their token expired (docs/tokens.md#expiry).
    pub token_expiries: AtomicU64,
    /// Server API calls (docs/metrics.md#server-api).
    pub api: api::ApiMetrics,
    /// Pusher HTTP API calls (docs/metrics.md#pusher).
    pub pusher_api: pusher_api::PusherApiMetrics,
}

impl WorkerMetrics {
    /// Counts a Close frame sent with `code`.
    pub fn close_sent(&self, code: u16) {
        let i = CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(CLOSE_CODES.len());
        self.close_sent[i].fetch_add(1, Relaxed);
    }

    /// Counts a failed TLS connection.
    pub fn tls_failed(&self, label: &str) {
        if let Some(i) = TLS_FAILURE_REASONS.iter().position(|&r| r == label) {
            self.tls_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// Counts a refused request.
    pub fn rejected(&self, label: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|&r| r == label) {
            self.rejected[i].fetch_add(1, Relaxed);
        }
    }
}

fn counter(
    out: &mut String,
    name: &str,
    help: &str,
    workers: &[&WorkerMetrics],
    f: impl Fn(&WorkerMetrics) -> u64,
) {
    let _ = writeln!(
        out,
        "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} counter"
    );
    let total: u64 = workers.iter().map(|w| f(w)).sum();
    let _ = writeln!(out, "ringcast_{name} {total}");
}

/// Renders every worker's counters in the Prometheus text format.
pub fn render(workers: &[&WorkerMetrics], rooms: usize) -> String {
    let mut out = String::with_capacity(4096);
    let get = |a: &AtomicU64| a.load(Relaxed);
    let open: u64 = workers
        .iter()
        .map(|w| get(&w.accepted).saturating_sub(get(&w.closed)))
        .sum();
    let _ = writeln!(
        out,
        "# HELP ringcast_connections_open Connections open now.\n# TYPE ringcast_connections_open gauge\nringcast_connections_open {open}"
    );
    let _ = writeln!(
        out,
        "# HELP ringcast_rooms Rooms with at least one member.\n# TYPE ringcast_rooms gauge\nringcast_rooms {rooms}"
    );
    counter(
        &mut out,
        "connections_accepted_total",
        "TCP connections accepted.",
        workers,
        |w| get(&w.accepted),
    );
    counter(
        &mut out,
        "upgrades_total",
        "WebSocket handshakes completed.",
        workers,
        |w| get(&w.upgraded),
    );
    let _ = writeln!(
        out,
        "# HELP ringcast_connections_rejected_total Requests refused, by reason.\n# TYPE ringcast_connections_rejected_total counter"
    );
    for (i, reason) in REJECT_REASONS.iter().enumerate() {
        let n: u64 = workers.iter().map(|w| get(&w.rejected[i])).sum();
        let _ = writeln!(
            out,
            "ringcast_connections_rejected_total{{reason=\"{reason}\"}} {n}"
        );
    }
    counter(
        &mut out,
        "messages_in_total",
        "Data messages received.",
        workers,
        |w| get(&w.messages_in),
    );
    counter(
        &mut out,
        "bytes_in_total",
        "Payload bytes received.",
        workers,
        |w| get(&w.bytes_in),
    );
    counter(
        &mut out,
        "messages_out_total",
        "Frames queued to clients.",
        workers,
        |w| get(&w.messages_out),
    );
    counter(
        &mut out,
        "bytes_out_total",
        "Bytes sent to clients.",
        workers,
        |w| get(&w.bytes_out),
    );
    counter(
        &mut out,
        "fanout_deliveries_total",
        "Room messages delivered to one member.",
        workers,
        |w| get(&w.deliveries),
    );
    counter(
        &mut out,
        "fanout_remote_batches_total",
        "Message batches received from other workers.",
        workers,
        |w| get(&w.remote_batches),
    );
    counter(
        &mut out,
        "backpressure_disconnects_total",
        "Clients closed with 1008 over --max-backpressure.",
        workers,
        |w| get(&w.backpressure_disconnects),
    );
    counter(
        &mut out,
        "idle_timeouts_total",
        "Clients dropped by --idle-timeout.",
        workers,
        |w| get(&w.idle_timeouts),
    );
    counter(
        &mut out,
        "sends_total",
        "Send operations issued.",
        workers,
        |w| get(&w.sends),
    );
    counter(
        &mut out,
        "tls_handshakes_total",
        "TLS handshakes completed.",
        workers,
        |w| get(&w.tls_handshakes),
    );
    let _ = writeln!(
        out,
        "# HELP ringcast_tls_handshake_failures_total TLS connections that failed, by reason.\n# TYPE ringcast_tls_handshake_failures_total counter"
    );
    for (i, reason) in TLS_FAILURE_REASONS.iter().enumerate() {
        let n: u64 = workers.iter().map(|w| get(&w.tls_failures[i])).sum();
        let _ = writeln!(
            out,
            "ringcast_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_close_sent_total Close frames sent, by code.\n# TYPE ringcast_close_sent_total counter"
    );
    for i in 0..=CLOSE_CODES.len() {
        let code = CLOSE_CODES
            .get(i)
            .map_or("other".to_string(), u16::to_string);
        let n: u64 = workers.iter().map(|w| get(&w.close_sent[i])).sum();
        let _ = writeln!(out, "ringcast_close_sent_total{{code=\"{code}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_loop_iterations_total Event-loop turns per worker.\n# TYPE ringcast_loop_iterations_total counter"
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "ringcast_loop_iterations_total{{worker=\"{i}\"}} {}",
            get(&w.loop_iterations)
        );
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_completions_total io_uring completions handled per worker.\n# TYPE ringcast_completions_total counter"
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "ringcast_completions_total{{worker=\"{i}\"}} {}",
            get(&w.completions)
        );
    }
    counter(
        &mut out,
        "token_expiries_total",
        "Connections closed with 1008 because their token expired.",
        workers,
        |w| get(&w.token_expiries),
    );
    api::render(&mut out, workers.iter().map(|w| &w.api));
    pusher_api::render(&mut out, workers.iter().map(|w| &w.pusher_api));
    out
}

/// Appends the cluster bus's state and counters (`None`: no cluster configured, all zero).
pub fn render_cluster(out: &mut String, stats: Option<ringcast_cluster::BusStats>) {
    let s = stats.unwrap_or_default();
    let _ = writeln!(
        out,
        "# HELP ringcast_cluster_up Whether every Redis shard of the cluster bus is connected (no cluster: 0).\n# TYPE ringcast_cluster_up gauge\nringcast_cluster_up {}",
        u8::from(s.up)
    );
    for (name, help, v) in [
        (
            "published",
            "Messages of this node accepted by Redis.",
            s.published,
        ),
        (
            "received",
            "Messages received from other nodes.",
            s.received,
        ),
        (
            "dropped",
            "Messages of this node that never reached Redis (queue full, Redis down).",
            s.dropped,
        ),
        (
            "gaps",
            "Messages of other nodes detected as lost (sequence gaps).",
            s.gaps,
        ),
        (
            "malformed",
            "Bus envelopes that did not decode.",
            s.malformed,
        ),
        (
            "sequence_forced_evictions",
            "Rooms whose outbound numbering was forgotten at the bound while a loss was unreported.",
            s.sequence_forced_evictions,
        ),
        (
            "duplicate_node_id",
            "Times another live process was found using this node's --node-id.",
            s.duplicate_node_id,
        ),
        (
            "bad_presence",
            "Presence entries in Redis skipped as malformed or expiring too far ahead.",
            s.bad_presence,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP ringcast_cluster_{name}_total {help}\n# TYPE ringcast_cluster_{name}_total counter\nringcast_cluster_{name}_total {v}"
        );
    }
    for (name, help, v) in [
        (
            "queued_bytes",
            "Bytes of this node's publishes waiting for Redis (bounded, over it: dropped).",
            s.queued_bytes,
        ),
        (
            "sequence_rooms",
            "Rooms whose outbound numbering this node keeps (bounded).",
            s.sequence_rooms,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP ringcast_cluster_{name} {help}\n# TYPE ringcast_cluster_{name} gauge\nringcast_cluster_{name} {v}"
        );
    }
}

/// The TLS certificate's expiry (docs/metrics.md#tls): its notAfter in unix seconds, written
/// only when TLS is on and the certificate's date could be read (`not_after` 0: neither).
pub fn render_tls_expiry(out: &mut String, not_after: i64) {
    if not_after != 0 {
        let _ = writeln!(
            out,
            "# HELP ringcast_tls_certificate_expiry_seconds notAfter of the TLS certificate in use (unix time), updated on reload.\n# TYPE ringcast_tls_certificate_expiry_seconds gauge\nringcast_tls_certificate_expiry_seconds {not_after}"
        );
    }
}
