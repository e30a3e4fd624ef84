//! The final report: a plain-text table on stdout and the same numbers as JSON (`--json FILE`).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::pubsub::PubsubSummary;
use crate::stats::Stats;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples recorded.
    pub samples: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            samples: h.len(),
            mean_us: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}  (mean {:.0}, n={})",
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.mean_us,
            self.samples
        )
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Server URL (several, space-separated, when `--url` was repeated).
    pub url: String,
    /// Event-loop threads of the load generator.
    pub threads: usize,
    /// Connections attempted.
    pub connections: u64,
    /// Connections that completed the handshake.
    pub connected: u64,
    /// Connections dropped on purpose and upgraded again (`pubsub --churn`).
    pub reconnects: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Messages sent in the measured window.
    pub sent: u64,
    /// Message copies received in the measured window (first copies).
    pub delivered: u64,
    /// `sent / duration_s`.
    pub sent_per_s: f64,
    /// `delivered / duration_s`.
    pub delivered_per_s: f64,
    /// Copies expected at receivers.
    pub expected: u64,
    /// Expected copies missing at receivers the server did not close.
    pub lost: u64,
    /// Expected copies missing at receivers the server closed (explained).
    pub lost_at_closed_receivers: u64,
    /// Duplicate copies.
    pub duplicates: u64,
    /// Copies that arrived after a later one of the same publisher.
    pub reordered: u64,
    /// Messages that did not carry our header (or were unexpected).
    pub foreign: u64,
    /// TCP connects that failed.
    pub connect_errors: u64,
    /// Handshakes refused or broken.
    pub handshake_errors: u64,
    /// `wss://` connections whose TLS handshake resumed a session.
    pub tls_resumed: u64,
    /// Connections that broke without a close frame.
    pub unexpected_closes: u64,
    /// Connections the server closed, by close code.
    pub closed_by_server: BTreeMap<u16, u64>,
    /// Send-to-receive latency.
    pub latency: Latency,
    /// Several servers: latency of copies received on their publisher's server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_same_node: Option<Latency>,
    /// Several servers: latency of copies whose publisher is on another server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_cross_node: Option<Latency>,
    /// Connections per second while connecting (first attempt to last handshake).
    pub connect_rate_per_s: f64,
    /// Rounds completed in the measured window (`rounds` only).
    pub rounds: u64,
    /// Rounds per second (`rounds` only).
    pub rounds_per_s: f64,
    /// Server RSS before connecting, KiB (`connect --server-pid`).
    pub server_rss_before_kib: Option<u64>,
    /// Server RSS with every connection open, KiB.
    pub server_rss_after_kib: Option<u64>,
    /// `(after - before) / connected`, KiB.
    pub server_rss_per_conn_kib: Option<f64>,
    /// CPU seconds the load generator used (user + system) over the whole run.
    pub loadtest_cpu_s: f64,
    /// Messages received over the whole run per CPU second of the load generator: what one
    /// loadtest core can consume at this load (an upper bound needs the server to keep up).
    pub received_per_loadtest_cpu_s: f64,
    /// Wall seconds of the whole run (connecting, warm-up, measuring, draining).
    pub wall_s: f64,
    /// Bytes received from the servers over the whole run (handshakes and frame headers
    /// included).
    pub wire_bytes: u64,
    /// Payload bytes of the data messages received over the whole run, inflated when they
    /// arrived compressed (`--compression`).
    pub payload_bytes: u64,
    /// Data messages that arrived compressed (RSV1).
    pub compressed_messages: u64,
    /// `pubsub` only: subscriptions, offsets, order and recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pubsub: Option<PubsubSummary>,
}

impl Report {
    /// Fills the common fields from merged stats.
    pub fn new(scenario: &str, url: &str, threads: usize, connections: u64, s: &Stats) -> Self {
        let latency = Latency::of(&s.latency);
        let connect_rate_per_s = match s.connect_span {
            Some((a, b)) if b > a => s.connected as f64 / ((b - a) as f64 / 1e9),
            _ => 0.0,
        };
        Self {
            scenario: scenario.to_owned(),
            url: url.to_owned(),
            threads,
            connections,
            connected: s.connected,
            reconnects: s.reconnects,
            duration_s: 0.0,
            sent: s.sent,
            delivered: s.delivered,
            sent_per_s: 0.0,
            delivered_per_s: 0.0,
            expected: s.expected,
            lost: s.lost,
            lost_at_closed_receivers: s.lost_closed,
            duplicates: s.duplicates,
            reordered: s.reordered,
            foreign: s.foreign,
            connect_errors: s.connect_errors,
            handshake_errors: s.handshake_errors,
            tls_resumed: s.tls_resumed,
            unexpected_closes: s.unexpected_closes,
            closed_by_server: s.server_closes.clone(),
            latency,
            latency_same_node: s.by_node.as_ref().map(|b| Latency::of(&b.same)),
            latency_cross_node: s.by_node.as_ref().map(|b| Latency::of(&b.cross)),
            connect_rate_per_s,
            rounds: s.rounds,
            rounds_per_s: 0.0,
            server_rss_before_kib: None,
            server_rss_after_kib: None,
            server_rss_per_conn_kib: None,
            loadtest_cpu_s: 0.0,
            received_per_loadtest_cpu_s: 0.0,
            wall_s: 0.0,
            wire_bytes: s.wire_bytes,
            payload_bytes: s.payload_bytes,
            compressed_messages: s.compressed,
            pubsub: None,
        }
    }

    /// Sets the measured duration and the rates derived from it.
    pub fn set_duration(&mut self, secs: f64) {
        self.duration_s = secs;
        if secs > 0.0 {
            self.sent_per_s = self.sent as f64 / secs;
            self.delivered_per_s = self.delivered as f64 / secs;
            self.rounds_per_s = self.rounds as f64 / secs;
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        row(
            "scenario",
            format!("{} against {}", self.scenario, self.url),
        );
        row(
            "connections",
            format!(
                "{} of {} ({} loadtest threads)",
                self.connected, self.connections, self.threads
            ),
        );
        row("measured", format!("{:.2} s", self.duration_s));
        row("sent", format!("{} ({:.0}/s)", self.sent, self.sent_per_s));
        row(
            "delivered",
            format!("{} ({:.0}/s)", self.delivered, self.delivered_per_s),
        );
        if self.scenario == "rounds" {
            row(
                "rounds",
                format!("{} ({:.1}/s)", self.rounds, self.rounds_per_s),
            );
        }
        if let Some(ps) = &self.pubsub {
            let c = &ps.counters;
            row(
                "pubsub",
                format!(
                    "subscribed {}  late {}  server errors {}{}",
                    c.subscribed,
                    c.late_subscribers,
                    c.server_errors,
                    ps.first_error
                        .as_deref()
                        .map_or(String::new(), |e| format!(" (first: {e})"))
                ),
            );
            row(
                "offsets / order",
                format!(
                    "gaps {}  dups {}  missing {}  order checked {} mismatched {}",
                    c.offset_gaps,
                    c.offset_dups,
                    c.missing_offsets,
                    c.order_checked,
                    c.order_mismatches
                ),
            );
            row(
                "churn / recovery",
                format!(
                    "{} drops, {} reconnected; recovered true {} (replayed {}, broken {}) false {} (skipped {})",
                    c.churns,
                    self.reconnects,
                    c.recovered_true,
                    c.replayed,
                    c.recovery_failures,
                    c.recovered_false,
                    c.lost_unrecovered
                ),
            );
            if c.unsubscribe_churns + c.epoch_restarts + c.presence_snapshots > 0 {
                row(
                    "unsub / epochs / presence",
                    format!(
                        "{} unsubscribe resumes; {} live epoch restarts; presence snapshots {} events {} out of place {} anomalies {}",
                        c.unsubscribe_churns,
                        c.epoch_restarts,
                        c.presence_snapshots,
                        c.presence_events,
                        c.presence_order_violations,
                        c.presence_anomalies
                    ),
                );
            }
            for (i, n) in ps.nodes.iter().enumerate().filter(|_| ps.nodes.len() > 1) {
                row(
                    &format!("lost at server {i}"),
                    format!(
                        "same-node {}  cross-node {} ({} distinct messages)",
                        n.lost_same_node, n.lost_cross_node, n.lost_cross_distinct
                    ),
                );
            }
        }
        row("latency µs", self.latency.line());
        if let Some(l) = &self.latency_same_node {
            row("  same-node µs", l.line());
        }
        if let Some(l) = &self.latency_cross_node {
            row("  cross-node µs", l.line());
        }
        row(
            "lost",
            format!(
                "{} of {} expected (+{} at server-closed receivers)",
                self.lost, self.expected, self.lost_at_closed_receivers
            ),
        );
        row(
            "dup / reordered",
            format!("{} / {}", self.duplicates, self.reordered),
        );
        if self.tls_resumed > 0 {
            row(
                "TLS resumed",
                format!("{} of {} connections", self.tls_resumed, self.connected),
            );
        }
        row(
            "errors",
            format!(
                "connect {}  handshake {}  broken {}  foreign msgs {}",
                self.connect_errors, self.handshake_errors, self.unexpected_closes, self.foreign
            ),
        );
        let closes: Vec<String> = self
            .closed_by_server
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect();
        row(
            "closed by server",
            if closes.is_empty() {
                "0".to_owned()
            } else {
                closes.join(" ")
            },
        );
        row(
            "connect rate",
            format!("{:.0} conn/s", self.connect_rate_per_s),
        );
        if let (Some(b), Some(a)) = (self.server_rss_before_kib, self.server_rss_after_kib) {
            row(
                "server RSS",
                format!(
                    "{b} KiB -> {a} KiB ({:.2} KiB/conn)",
                    self.server_rss_per_conn_kib.unwrap_or(0.0)
                ),
            );
        }
        row(
            "received bytes",
            format!(
                "{} on the wire for {} of payload ({:.3}x; {} messages arrived compressed)",
                self.wire_bytes,
                self.payload_bytes,
                self.wire_bytes as f64 / (self.payload_bytes as f64).max(1.0),
                self.compressed_messages,
            ),
        );
        row(
            "loadtest CPU",
            format!(
                "{:.2} s over {:.2} s wall ({:.0}% of one core; {:.2} M msgs received per CPU-s)",
                self.loadtest_cpu_s,
                self.wall_s,
                100.0 * self.loadtest_cpu_s / self.wall_s.max(1e-9),
                self.received_per_loadtest_cpu_s / 1e6
            ),
        );
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}

/// CPU seconds (user + system) this process used so far.
pub fn process_cpu_s() -> f64 {
    // SAFETY: rusage is plain old data; getrusage fills it and cannot fail for RUSAGE_SELF.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_split_only_with_several_servers() {
        let mut one = Stats::new();
        one.record_latency_on(5_000, None);
        let rep = Report::new("broadcast", "ws://a/", 1, 2, &one);
        let json = serde_json::to_string(&rep).expect("serializes");
        assert!(!json.contains("same_node") && !rep.table().contains("node"));

        let mut many = Stats::new();
        many.record_latency_on(5_000, Some(true));
        many.record_latency_on(7_000, Some(false));
        many.record_latency_on(8_000, Some(false));
        let rep = Report::new("broadcast", "ws://a/ ws://b/", 1, 2, &many);
        let json = serde_json::to_string(&rep).expect("serializes");
        assert!(json.contains("\"latency_same_node\"") && json.contains("\"latency_cross_node\""));
        let (same, cross) = (
            rep.latency_same_node.as_ref().expect("same"),
            rep.latency_cross_node.as_ref().expect("cross"),
        );
        assert_eq!(
            (same.samples, cross.samples, rep.latency.samples),
            (1, 2, 3)
        );
        assert!((cross.max_us - 8.0).abs() < 0.01, "{}", cross.max_us);
        let table = rep.table();
        assert!(
            table.contains("same-node µs") && table.contains("cross-node µs"),
            "{table}"
        );
    }
}
