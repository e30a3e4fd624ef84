//! The process's compression counters (docs/metrics.md#compression): process-wide atomics,
//! since a batch's compressed form is built wherever it is first needed, with no worker's
//! metrics at hand, and it is built once per batch, so they are touched rarely.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of compressed and inflated messages.
#[derive(Debug, Default)]
pub struct Stats {
    /// Sent messages compressed (each once, whatever its number of receivers).
    compressed: AtomicU64,
    /// Their payload bytes before compression.
    bytes_before: AtomicU64,
    /// Their payload bytes after compression.
    bytes_after: AtomicU64,
    /// Received compressed messages inflated.
    inflated: AtomicU64,
    /// Their payload bytes as received (compressed).
    inflate_in: AtomicU64,
    /// Their payload bytes once inflated.
    inflate_out: AtomicU64,
    /// Received compressed messages that failed to inflate (invalid data, too big, bad UTF-8).
    inflate_failures: AtomicU64,
}

/// The process's counters.
pub static STATS: Stats = Stats {
    compressed: AtomicU64::new(0),
    bytes_before: AtomicU64::new(0),
    bytes_after: AtomicU64::new(0),
    inflated: AtomicU64::new(0),
    inflate_in: AtomicU64::new(0),
    inflate_out: AtomicU64::new(0),
    inflate_failures: AtomicU64::new(0),
};

impl Stats {
    /// One message compressed from `before` to `after` payload bytes.
    pub fn compressed(&self, before: usize, after: usize) {
        self.compressed.fetch_add(1, Ordering::Relaxed);
        self.bytes_before
            .fetch_add(before as u64, Ordering::Relaxed);
        self.bytes_after.fetch_add(after as u64, Ordering::Relaxed);
    }

    /// One received message inflated from `input` to `output` bytes, or failed.
    pub fn inflated(&self, input: usize, output: usize, ok: bool) {
        if !ok {
            self.inflate_failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inflated.fetch_add(1, Ordering::Relaxed);
        self.inflate_in.fetch_add(input as u64, Ordering::Relaxed);
        self.inflate_out.fetch_add(output as u64, Ordering::Relaxed);
    }
}

/// Appends the compression counters to a Prometheus page.
pub fn render(out: &mut String) {
    let s = &STATS;
    for (name, help, v) in [
        (
            "compression_messages_total",
            "Sent messages compressed with permessage-deflate (once per message, for all its receivers).",
            &s.compressed,
        ),
        (
            "compression_bytes_before_total",
            "Payload bytes of the compressed sent messages, before compression.",
            &s.bytes_before,
        ),
        (
            "compression_bytes_after_total",
            "Payload bytes of the compressed sent messages, after compression.",
            &s.bytes_after,
        ),
        (
            "inflate_messages_total",
            "Received compressed messages inflated.",
            &s.inflated,
        ),
        (
            "inflate_bytes_in_total",
            "Payload bytes of the inflated received messages, as received.",
            &s.inflate_in,
        ),
        (
            "inflate_bytes_out_total",
            "Payload bytes of the inflated received messages, once inflated.",
            &s.inflate_out,
        ),
        (
            "inflate_failures_total",
            "Received compressed messages that did not inflate (invalid data, over --max-message-bytes, not UTF-8).",
            &s.inflate_failures,
        ),
    ] {
        let v = v.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} counter\nringcast_{name} {v}"
        );
    }
}
