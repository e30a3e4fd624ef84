//! Per-thread counters and the latency histogram; merged by the main thread at the end.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly (60 s, in nanoseconds); larger values saturate.
const MAX_TRACKED_NS: u64 = 60_000_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

/// Latency split by path when connections span several servers (`--url` repeated).
#[derive(Debug, Clone)]
pub struct NodeLatency {
    /// Copies received on the node their publisher is connected to, ns.
    pub same: Histogram<u64>,
    /// Copies that crossed nodes (publisher on another node), ns.
    pub cross: Histogram<u64>,
}

impl Default for NodeLatency {
    fn default() -> Self {
        Self {
            same: histogram(),
            cross: histogram(),
        }
    }
}

/// Everything one event-loop thread measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Send-to-receive latency of measured messages, nanoseconds.
    pub latency: Histogram<u64>,
    /// The same samples split into same-node and cross-node, when several servers were given.
    pub by_node: Option<Box<NodeLatency>>,
    /// Messages sent inside the measured window.
    pub sent: u64,
    /// Messages received inside the measured window (first copies only).
    pub delivered: u64,
    /// Copies the receivers should have seen (sent in window × receivers), known at the end.
    pub expected: u64,
    /// Expected copies that never arrived at a receiver the server did not close.
    pub lost: u64,
    /// Expected copies missing at receivers the server closed (explained loss).
    pub lost_closed: u64,
    /// A sequence number seen twice by the same receiver.
    pub duplicates: u64,
    /// A message that arrived after a later one from the same publisher.
    pub reordered: u64,
    /// Received messages without our header (not counted anywhere else).
    pub foreign: u64,
    /// Connections whose TCP connect failed.
    pub connect_errors: u64,
    /// Connections the server refused or answered wrongly during the handshake.
    pub handshake_errors: u64,
    /// `wss://` connections whose TLS handshake resumed a session (first connects only).
    pub tls_resumed: u64,
    /// Connections that broke without a close frame (reset, EOF, protocol error).
    pub unexpected_closes: u64,
    /// Close frames the server sent first, by close code (0: no code).
    pub server_closes: BTreeMap<u16, u64>,
    /// Connections that completed the handshake.
    pub connected: u64,
    /// Handshakes completed again after a scenario dropped the connection on purpose (churn).
    pub reconnects: u64,
    /// Monotonic ns of the first connect attempt and of the last handshake completed.
    pub connect_span: Option<(u64, u64)>,
    /// Data messages received over the whole run, measured or not.
    pub received_all: u64,
    /// All-to-all rounds completed inside the measured window (rounds scenario).
    pub rounds: u64,
    /// Bytes received from the servers over the whole run (frames, handshakes included).
    pub wire_bytes: u64,
    /// Payload bytes of the data messages received over the whole run (inflated, with
    /// `--compression`).
    pub payload_bytes: u64,
    /// Data messages received compressed (RSV1).
    pub compressed: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty counters.
    pub fn new() -> Self {
        Self {
            latency: histogram(),
            by_node: None,
            sent: 0,
            delivered: 0,
            expected: 0,
            lost: 0,
            lost_closed: 0,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            connect_errors: 0,
            handshake_errors: 0,
            tls_resumed: 0,
            unexpected_closes: 0,
            server_closes: BTreeMap::new(),
            connected: 0,
            reconnects: 0,
            connect_span: None,
            received_all: 0,
            rounds: 0,
            wire_bytes: 0,
            payload_bytes: 0,
            compressed: 0,
        }
    }

    /// Records one latency sample.
    pub fn record_latency(&mut self, ns: u64) {
        self.latency.saturating_record(ns.clamp(1, MAX_TRACKED_NS));
    }

    /// Records one latency sample and, when the path is known (`Some(true)`: publisher and
    /// receiver on the same server, `Some(false)`: on different servers), into that side of
    /// [`Stats::by_node`] too.
    pub fn record_latency_on(&mut self, ns: u64, same_node: Option<bool>) {
        self.record_latency(ns);
        if let Some(same) = same_node {
            let split = self.by_node.get_or_insert_with(Box::default);
            let h = if same {
                &mut split.same
            } else {
                &mut split.cross
            };
            h.saturating_record(ns.clamp(1, MAX_TRACKED_NS));
        }
    }

    /// Notes a connect attempt started at `now` or a handshake finished at `now`.
    pub fn note_connect_time(&mut self, now: u64) {
        self.connect_span = Some(match self.connect_span {
            None => (now, now),
            Some((a, b)) => (a.min(now), b.max(now)),
        });
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        if let Some(o) = &other.by_node {
            let split = self.by_node.get_or_insert_with(Box::default);
            let _ = split.same.add(&o.same);
            let _ = split.cross.add(&o.cross);
        }
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.expected += other.expected;
        self.lost += other.lost;
        self.lost_closed += other.lost_closed;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.foreign += other.foreign;
        self.connect_errors += other.connect_errors;
        self.handshake_errors += other.handshake_errors;
        self.tls_resumed += other.tls_resumed;
        self.unexpected_closes += other.unexpected_closes;
        for (code, n) in &other.server_closes {
            *self.server_closes.entry(*code).or_default() += n;
        }
        self.connected += other.connected;
        self.reconnects += other.reconnects;
        if let Some((a, b)) = other.connect_span {
            self.note_connect_time(a);
            self.note_connect_time(b);
        }
        self.received_all += other.received_all;
        self.rounds += other.rounds;
        self.wire_bytes += other.wire_bytes;
        self.payload_bytes += other.payload_bytes;
        self.compressed += other.compressed;
    }
}

/// Per (receiver, publisher) order tracking: detects duplicates and reordering exactly for gaps
/// up to [`MAX_GAP`] sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct SeqTrack {
    next: u64,
    missing: Vec<u64>,
}

/// Largest gap whose sequence numbers are remembered individually.
pub const MAX_GAP: usize = 4096;

/// What a sequence number was, relative to what this receiver saw before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    /// In order, or ahead (a gap opens).
    Fresh,
    /// Filled an earlier gap: it arrived late.
    Reordered,
    /// Already seen.
    Duplicate,
}

impl SeqTrack {
    /// The next sequence number expected in order.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Sequence numbers below [`SeqTrack::next`] not seen yet (gaps up to [`MAX_GAP`]).
    pub fn missing(&self) -> &[u64] {
        &self.missing
    }

    /// Continues at `seq` as if everything before it had been seen (a gap the receiver knows
    /// about, e.g. after a resume the server did not recover): nothing before it is missing.
    pub fn restart_at(&mut self, seq: u64) {
        self.missing.clear();
        self.next = self.next.max(seq);
    }

    /// Classifies `seq` and updates the state.
    pub fn observe(&mut self, seq: u64) -> SeqEvent {
        if seq == self.next {
            self.next += 1;
            SeqEvent::Fresh
        } else if seq > self.next {
            let gap = seq - self.next;
            if self.missing.len() + (gap as usize) <= MAX_GAP {
                self.missing.extend(self.next..seq);
            }
            self.next = seq + 1;
            SeqEvent::Fresh
        } else if let Some(i) = self.missing.iter().position(|&m| m == seq) {
            self.missing.swap_remove(i);
            SeqEvent::Reordered
        } else {
            SeqEvent::Duplicate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_split_by_node() {
        let mut a = Stats::new();
        a.record_latency_on(1_000, None);
        assert!(a.by_node.is_none(), "one server: no split");
        a.record_latency_on(2_000, Some(true));
        a.record_latency_on(9_000, Some(false));
        let mut b = Stats::new();
        b.record_latency_on(3_000, Some(true));
        let mut total = Stats::new();
        total.merge(&a);
        total.merge(&b);
        assert_eq!(total.latency.len(), 4);
        let split = total.by_node.expect("split kept by merge");
        assert_eq!((split.same.len(), split.cross.len()), (2, 1));
        assert!(split.same.equivalent(split.same.max(), 3_000));
        assert!(split.cross.equivalent(split.cross.min(), 9_000));
    }

    #[test]
    fn seq_tracking() {
        let mut t = SeqTrack::default();
        assert_eq!(t.observe(0), SeqEvent::Fresh);
        assert_eq!(t.observe(2), SeqEvent::Fresh);
        assert_eq!(t.observe(1), SeqEvent::Reordered);
        assert_eq!(t.observe(1), SeqEvent::Duplicate);
        assert_eq!(t.observe(3), SeqEvent::Fresh);
        assert_eq!(t.observe(3), SeqEvent::Duplicate);
    }
}
