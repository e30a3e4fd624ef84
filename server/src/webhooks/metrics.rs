//! Webhook counters per app (docs/metrics.md#pusher-webhooks) and their Prometheus text.
//! Labels come from the configured app ids, so no client can grow them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What became of events, the `result` label of `ringcast_webhook_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered: a URL answered 2xx (counted once per URL).
    Sent,
    /// Every attempt to a URL failed (counted once per URL).
    Failed,
    /// A queue was full: `emit`'s intake, or a URL's queue of batches (once per URL).
    Dropped,
    /// A vacated/removed and the occupied/added that cancelled it (both counted).
    Debounced,
}

const FATES: [&str; 4] = ["sent", "failed", "dropped", "debounced"];

/// Why an attempt failed, the `reason` label of `ringcast_webhook_request_failures_total`.
const REASONS: [&str; 5] = ["status", "timeout", "connect", "io", "tls"];

/// Latency bucket bounds in milliseconds: from the oldest event's `emit` to the 2xx (the
/// batch window, a debounce and retries included).
const BUCKETS_MS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 60_000,
];

#[derive(Default)]
struct AppCounters {
    events: [AtomicU64; FATES.len()],
    retries: AtomicU64,
    failures: [AtomicU64; REASONS.len()],
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    sum_ms: AtomicU64,
    /// Bytes the app's waiting events hold: their strings while they wait as events, then
    /// their batch's signed body, once however many URLs share it (per app, so one app's
    /// dead receiver cannot use another's budget: `WebhookConfig::max_queued_bytes`).
    bytes: AtomicU64,
}

/// Every app's webhook counters, plus a count of batches settled (sent or given up) that
/// tests can wait on.
pub struct WebhookMetrics {
    apps: Vec<(String, AppCounters)>,
    /// Events accepted by `emit` and not settled yet, once per URL past the batcher.
    queued: AtomicU64,
    settled: Mutex<u64>,
    settled_cv: Condvar,
}

impl WebhookMetrics {
    /// Counters for the apps `ids` (by index).
    #[must_use]
    pub fn new(ids: Vec<String>) -> WebhookMetrics {
        WebhookMetrics {
            apps: ids
                .into_iter()
                .map(|i| (i, AppCounters::default()))
                .collect(),
            queued: AtomicU64::new(0),
            settled: Mutex::new(0),
            settled_cv: Condvar::new(),
        }
    }

    /// `n` more events wait (accepted by `emit`, or copied for a second URL).
    pub fn queue(&self, n: u64) {
        self.queued.fetch_add(n, Relaxed);
    }

    /// Events waiting now.
    #[must_use]
    pub fn queued(&self) -> u64 {
        self.queued.load(Relaxed)
    }

    /// Takes `bytes` more of app `app`'s budget `max`; false (nothing taken) when they do
    /// not fit.
    pub fn reserve(&self, app: usize, bytes: u64, max: u64) -> bool {
        let Some((_, c)) = self.apps.get(app) else {
            return false;
        };
        let before = c.bytes.fetch_add(bytes, Relaxed);
        if before.saturating_add(bytes) > max {
            c.bytes.fetch_sub(bytes, Relaxed);
            return false;
        }
        true
    }

    /// Counts `bytes` more held by app `app` past the budget check (a signed body replacing
    /// its events).
    pub fn hold(&self, app: usize, bytes: u64) {
        if let Some((_, c)) = self.apps.get(app) {
            c.bytes.fetch_add(bytes, Relaxed);
        }
    }

    /// Gives back `bytes` app `app` reserved or held.
    pub fn release(&self, app: usize, bytes: u64) {
        if let Some((_, c)) = self.apps.get(app) {
            c.bytes.fetch_sub(bytes, Relaxed);
        }
    }

    #[cfg(test)]
    /// Bytes held now, all apps together.
    #[must_use]
    pub fn held_bytes(&self) -> u64 {
        self.apps.iter().map(|(_, c)| c.bytes.load(Relaxed)).sum()
    }

    /// Counts an event of app `app` dropped before it waited (no room in the byte budget).
    pub fn refused(&self, app: usize) {
        if let Some((_, c)) = self.apps.get(app) {
            c.events[Fate::Dropped as usize].fetch_add(1, Relaxed);
        }
    }

    /// Counts `n` waiting events of app `app` that met `fate` (they no longer wait).
    pub fn events(&self, app: usize, fate: Fate, n: u64) {
        if let Some((_, c)) = self.apps.get(app) {
            c.events[fate as usize].fetch_add(n, Relaxed);
        }
        self.queued.fetch_sub(n, Relaxed);
    }

    /// Counts a failed attempt (`reason`: a `PostError::label`) and whether it is retried.
    pub fn attempt_failed(&self, app: usize, reason: &str, retried: bool) {
        if let Some((_, c)) = self.apps.get(app) {
            if let Some(i) = REASONS.iter().position(|&r| r == reason) {
                c.failures[i].fetch_add(1, Relaxed);
            }
            if retried {
                c.retries.fetch_add(1, Relaxed);
            }
        }
    }

    /// Records the latency of a delivered batch.
    pub fn delivered_after(&self, app: usize, took: Duration) {
        if let Some((_, c)) = self.apps.get(app) {
            let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
            let b = (BUCKETS_MS.iter().position(|&le| ms <= le)).unwrap_or(BUCKETS_MS.len());
            c.buckets[b].fetch_add(1, Relaxed);
            c.sum_ms.fetch_add(ms, Relaxed);
        }
    }

    /// One more batch is settled (delivered, given up or dropped at a URL's queue).
    pub fn settled(&self) {
        let mut n = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.settled_cv.notify_all();
    }

    /// Waits until `n` batches are settled or `timeout` passes; whether they are.
    #[cfg(test)]
    pub fn wait_settled(&self, n: u64, timeout: Duration) -> bool {
        let guard = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .settled_cv
            .wait_timeout_while(guard, timeout, |s| *s < n)
            .unwrap_or_else(|e| e.into_inner());
        *guard >= n
    }

    /// The count of `fate` for app `app` (tests and the queue bound check).
    #[cfg(test)]
    pub fn count(&self, app: usize, fate: Fate) -> u64 {
        self.apps
            .get(app)
            .map_or(0, |(_, c)| c.events[fate as usize].load(Relaxed))
    }

    /// Appends every series.
    pub fn render(&self, out: &mut String) {
        let queued = self.queued();
        let _ = writeln!(
            out,
            "# HELP ringcast_webhook_events_total Pusher webhook events, by app and result.\n# TYPE ringcast_webhook_events_total counter"
        );
        for (id, c) in &self.apps {
            for (i, fate) in FATES.iter().enumerate() {
                let n = c.events[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "ringcast_webhook_events_total{{app=\"{id}\",result=\"{fate}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ringcast_webhook_retries_total Webhook POSTs tried again after a failure.\n# TYPE ringcast_webhook_retries_total counter"
        );
        for (id, c) in &self.apps {
            let n = c.retries.load(Relaxed);
            let _ = writeln!(out, "ringcast_webhook_retries_total{{app=\"{id}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP ringcast_webhook_request_failures_total Webhook POSTs that failed, by reason.\n# TYPE ringcast_webhook_request_failures_total counter"
        );
        for (id, c) in &self.apps {
            for (i, reason) in REASONS.iter().enumerate() {
                let n = c.failures[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "ringcast_webhook_request_failures_total{{app=\"{id}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ringcast_webhook_latency_seconds From emit to the receiver's 2xx, per delivered batch.\n# TYPE ringcast_webhook_latency_seconds histogram"
        );
        for (id, c) in &self.apps {
            let mut cumulative = 0;
            for (i, le) in BUCKETS_MS.iter().enumerate() {
                cumulative += c.buckets[i].load(Relaxed);
                let le = *le as f64 / 1000.0;
                let _ = writeln!(
                    out,
                    "ringcast_webhook_latency_seconds_bucket{{app=\"{id}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += c.buckets[BUCKETS_MS.len()].load(Relaxed);
            let sum = c.sum_ms.load(Relaxed) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "ringcast_webhook_latency_seconds_bucket{{app=\"{id}\",le=\"+Inf\"}} {cumulative}\nringcast_webhook_latency_seconds_sum{{app=\"{id}\"}} {sum}\nringcast_webhook_latency_seconds_count{{app=\"{id}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ringcast_webhook_queued_events Webhook events waiting to be sent (bounded).\n# TYPE ringcast_webhook_queued_events gauge\nringcast_webhook_queued_events {queued}\n# HELP ringcast_webhook_queued_bytes Bytes an app's waiting webhook events hold (bounded per app).\n# TYPE ringcast_webhook_queued_bytes gauge"
        );
        for (id, c) in &self.apps {
            let n = c.bytes.load(Relaxed);
            let _ = writeln!(out, "ringcast_webhook_queued_bytes{{app=\"{id}\"}} {n}");
        }
    }
}
