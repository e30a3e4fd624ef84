//! The pub/sub part of the report: the threads' counters summed, their order books compared,
//! and what makes a run fail.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Pubsub;
use super::check::PubsubCounters;

/// The pub/sub part of the report: counters summed over threads, the cross-thread order check
/// included.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PubsubSummary {
    /// The counters.
    #[serde(flatten)]
    pub counters: PubsubCounters,
    /// No connection got an answer to `subscribe`: the server has no JSON mode on the
    /// subprotocol (loadtest exits with 3).
    pub unanswered: bool,
    /// The first `error` reply, `code: message`.
    pub first_error: Option<String>,
    /// Per server (`--url` order): the loss seen by subscribers connected to it.
    pub nodes: Vec<NodeLoss>,
}

/// The loss at the subscribers of one server that the server did not close, split by where the
/// publisher was (see the module documentation).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct NodeLoss {
    /// Copies missing from publishers on the same server.
    pub lost_same_node: u64,
    /// Copies missing from publishers on other servers.
    pub lost_cross_node: u64,
    /// Distinct messages (publisher, sequence) of other servers missing at one or more of its
    /// subscribers: what the node's `ringcast_cluster_gaps_total` must account for.
    pub lost_cross_distinct: u64,
}

impl PubsubSummary {
    /// What makes the run fail: a broken recovery promise, different orders, offsets that go
    /// backwards or are missing with history on; with `fail_on_loss` also offset gaps.
    pub fn problem(&self, fail_on_loss: bool) -> Option<String> {
        let c = &self.counters;
        if c.recovery_failures > 0 {
            return Some(format!(
                "{} recovered:true resume(s) followed by a gap or a duplicate",
                c.recovery_failures
            ));
        }
        if c.presence_order_violations > 0 {
            return Some(format!(
                "{} presence snapshot(s) missing or out of place after subscribed",
                c.presence_order_violations
            ));
        }
        if c.order_mismatches > 0 {
            return Some(format!(
                "{} offset(s) carried different messages at different subscribers",
                c.order_mismatches
            ));
        }
        if c.offset_dups > 0 || c.missing_offsets > 0 {
            return Some(format!(
                "{} message(s) with an offset not above the previous one, {} without offset",
                c.offset_dups, c.missing_offsets
            ));
        }
        if fail_on_loss && c.offset_gaps > 0 {
            return Some(format!("{} offset gap(s)", c.offset_gaps));
        }
        None
    }
}

/// Sums the threads' counters and compares their order books topic by topic.
pub fn summarize(threads: &[Pubsub]) -> PubsubSummary {
    let mut s = PubsubSummary::default();
    for t in threads {
        s.counters.merge(&t.counters);
        s.unanswered |= t.common.unanswered.load(Ordering::Relaxed);
        if s.first_error.is_none() {
            s.first_error = t.first_error.clone();
        }
    }
    if let Some(t) = threads.first()
        && let Ok(loss) = t.common.loss.lock()
    {
        s.nodes = (loss.iter())
            .map(|l| NodeLoss {
                lost_same_node: l.same,
                lost_cross_node: l.cross,
                lost_cross_distinct: l.distinct.len() as u64,
            })
            .collect();
    }
    if let Some((first, rest)) = threads.split_first() {
        for other in rest {
            for (a, b) in first.books.iter().zip(&other.books) {
                a.compare(b, &mut s.counters);
            }
        }
    }
    s
}
