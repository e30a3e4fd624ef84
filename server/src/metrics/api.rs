//! The server API's counters (docs/metrics.md#server-api): calls by method and result, and a
//! latency histogram per method. Labels come from fixed lists, so a client cannot grow them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Methods counted by name; any other name is `other`.
pub const METHODS: [&str; 13] = [
    "publish",
    "broadcast",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "disconnect",
    "subscribe",
    "unsubscribe",
    "batch",
    "other",
];

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `{"result":…}` (or a batch's replies).
    Ok,
    /// The call ran and answered `{"error":…}` with 200 (history off, a channel outside
    /// `--rooms`, …).
    Error,
    /// Refused before it ran: bad JSON or fields (400), unknown method (404), not a POST (405),
    /// a body over `--api-max-body` (413).
    Invalid,
    /// No valid key (401).
    Unauthorized,
}

const OUTCOMES: [&str; 4] = ["ok", "error", "invalid", "unauthorized"];

/// Latency bucket bounds, in microseconds (the handling of the request on its worker; a
/// publish's result is filled at the end of the same turn).
const BUCKETS_US: [u64; 10] = [25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 100_000];

/// One worker's server API counters.
#[derive(Default)]
pub struct ApiMetrics {
    calls: [[AtomicU64; OUTCOMES.len()]; METHODS.len()],
    /// Per method: one count per bucket, then +Inf.
    buckets: [[AtomicU64; BUCKETS_US.len() + 1]; METHODS.len()],
    sum_us: [AtomicU64; METHODS.len()],
}

impl ApiMetrics {
    /// Counts a call to `method` that ended as `outcome` after `took`.
    pub fn record(&self, method: &str, outcome: Outcome, took: Duration) {
        let m = (METHODS.iter().position(|&n| n == method)).unwrap_or(METHODS.len() - 1);
        let o = match outcome {
            Outcome::Ok => 0,
            Outcome::Error => 1,
            Outcome::Invalid => 2,
            Outcome::Unauthorized => 3,
        };
        self.calls[m][o].fetch_add(1, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[m][b].fetch_add(1, Relaxed);
        self.sum_us[m].fetch_add(us, Relaxed);
    }
}

/// Appends the server API series, summed over `workers`.
pub fn render<'a>(out: &mut String, workers: impl Iterator<Item = &'a ApiMetrics> + Clone) {
    let _ = writeln!(
        out,
        "# HELP ringcast_api_requests_total Server API calls, by method and result.\n# TYPE ringcast_api_requests_total counter"
    );
    for (m, method) in METHODS.iter().enumerate() {
        for (o, outcome) in OUTCOMES.iter().enumerate() {
            let n: u64 = workers.clone().map(|w| w.calls[m][o].load(Relaxed)).sum();
            let _ = writeln!(
                out,
                "ringcast_api_requests_total{{method=\"{method}\",result=\"{outcome}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_api_request_duration_seconds Time a server API call took on its worker.\n# TYPE ringcast_api_request_duration_seconds histogram"
    );
    for (m, method) in METHODS.iter().enumerate() {
        let mut cumulative = 0;
        for b in 0..=BUCKETS_US.len() {
            cumulative += workers
                .clone()
                .map(|w| w.buckets[m][b].load(Relaxed))
                .sum::<u64>();
            let le = BUCKETS_US
                .get(b)
                .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(
                out,
                "ringcast_api_request_duration_seconds_bucket{{method=\"{method}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum: u64 = workers.clone().map(|w| w.sum_us[m].load(Relaxed)).sum();
        let _ = writeln!(
            out,
            "ringcast_api_request_duration_seconds_sum{{method=\"{method}\"}} {}\nringcast_api_request_duration_seconds_count{{method=\"{method}\"}} {cumulative}",
            sum as f64 / 1e6
        );
    }
}
