//! Which other nodes are alive, for the Pusher channel state (docs/pusher.md#across-a-cluster):
//! every node with Pusher apps says so on the state room every [`BEAT_EVERY`]
//! (`super::nodes::Delta::Beat`), and a node not heard from for [`SILENT_FOR`] is forgotten
//! (its channels and presence users dropped by `super::nodes::Nodes::expire`).
//!
//! **Our own link first.** A node cut off from Redis hears nobody: it cannot tell that from
//! everybody else dying, and forgetting them all would remove every remote member from its
//! own clients' channels (and, past its link's return, leave them missing). So nothing is
//! forgotten unless this node's link is *trusted*: the bus says every shard is up and Redis
//! has acknowledged one of this node's own publishes (its beats, at least) within
//! [`ACKED_WITHIN`], which also catches a link that hangs without closing. When trust comes
//! back, every node's clock restarts: each known node gets a whole [`SILENT_FOR`] to be
//! heard again (its answer to the `Sync` this node sends then, or its next beat).
//!
//! **Who sends the webhooks.** Every survivor drops the node and tells its own clients; the
//! webhooks its departure means are sent by one node only: the live node with the smallest
//! id ([`Liveness::sends_hooks`]), which every survivor computes alike from the nodes it
//! hears.
//!
//! Pure: time is passed in. Imports nothing of this crate (see `super`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a node says it is alive.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// How long a node may stay silent before it is forgotten: five beats missed. Long enough
/// that a busy Redis or a slow bus thread (hundreds of milliseconds) forgets nobody, and
/// longer than [`ACKED_WITHIN`] plus a beat, so a node whose own link stalls stops trusting
/// it before anyone it last heard from could expire; short enough that a crashed node's
/// members leave within seconds (the debounce of the webhooks, 3 s, comes on top).
pub const SILENT_FOR: Duration = Duration::from_secs(5);

/// How recently Redis must have acknowledged a publish of this node for its link to be
/// trusted: three beats.
pub const ACKED_WITHIN: Duration = Duration::from_secs(3);

/// More forgotten nodes than any cluster has: older ones are not remembered (a bound).
const MAX_FORGOTTEN: usize = 1024;

/// The other nodes' last word, and whether this node's own link can be trusted.
#[derive(Debug, Default)]
pub struct Liveness {
    /// When each live node was last heard from.
    heard: HashMap<Arc<str>, Instant>,
    /// Nodes forgotten for their silence: one heard again must be asked for its state.
    forgotten: HashSet<Arc<str>>,
    /// This node's link is trusted (module doc).
    trusted: bool,
    /// The bus's count of acknowledged publishes at the last check, and when it last grew.
    acked: (u64, Option<Instant>),
}

impl Liveness {
    /// Node `node` was heard from; true when it had been forgotten (ask for its state).
    pub fn heard(&mut self, node: &Arc<str>, now: Instant) -> bool {
        self.heard.insert(node.clone(), now);
        !self.forgotten.is_empty() && self.forgotten.remove(node)
    }

    /// This node's link as the bus reports it: `up` (every shard connected) and
    /// `published` (its count of publishes Redis acknowledged). Returns whether it is
    /// trusted now; on regaining trust every node's clock restarts at `now`.
    pub fn link(&mut self, up: bool, published: u64, now: Instant) -> bool {
        if published != self.acked.0 {
            self.acked = (published, Some(now));
        }
        let acked = self.acked.1.is_some_and(|at| now - at < ACKED_WITHIN);
        let trusted = up && acked;
        if trusted && !self.trusted {
            for at in self.heard.values_mut() {
                *at = now;
            }
        }
        self.trusted = trusted;
        trusted
    }

    /// The nodes silent for [`SILENT_FOR`], now forgotten; none while the link is not
    /// trusted.
    pub fn expire(&mut self, now: Instant) -> Vec<Arc<str>> {
        if !self.trusted {
            return Vec::new();
        }
        let mut gone: Vec<Arc<str>> = (self.heard.iter())
            .filter(|(_, at)| now.saturating_duration_since(**at) >= SILENT_FOR)
            .map(|(n, _)| n.clone())
            .collect();
        gone.sort_unstable();
        for node in &gone {
            self.heard.remove(node);
            if self.forgotten.len() >= MAX_FORGOTTEN {
                self.forgotten.clear();
            }
            self.forgotten.insert(node.clone());
        }
        gone
    }

    /// Whether this node (`me`) sends the webhooks of a departure: it has the smallest id
    /// of the live nodes it knows.
    pub fn sends_hooks(&self, me: &str) -> bool {
        self.heard.keys().all(|n| me < &**n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Arc<str> {
        Arc::from(id)
    }

    #[test]
    fn a_silent_node_is_forgotten_once_and_asked_again_when_heard() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert!(l.link(true, 1, t0));
        assert!(!l.heard(&node("b"), t0));
        l.heard(&node("c"), t0);
        assert!(l.sends_hooks("a"));
        assert!(!l.sends_hooks("bb"), "b is smaller");
        let t = t0 + Duration::from_secs(3);
        l.link(true, 2, t);
        l.heard(&node("c"), t);
        assert!(l.expire(t).is_empty());
        let t = t0 + SILENT_FOR;
        l.link(true, 3, t);
        assert_eq!(l.expire(t), [node("b")]);
        assert!(l.expire(t).is_empty(), "once");
        assert!(l.sends_hooks("bb"), "b is gone");
        assert!(l.heard(&node("b"), t), "forgotten: ask for its state");
        assert!(!l.heard(&node("b"), t));
    }

    #[test]
    fn nobody_is_forgotten_while_our_own_link_is_down_or_stalled() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.link(true, 1, t0);
        l.heard(&node("b"), t0);
        // Down: the bus says so.
        let t = t0 + SILENT_FOR * 3;
        assert!(!l.link(false, 1, t));
        assert!(l.expire(t).is_empty());
        // Up again, but nothing of ours acknowledged: a stalled link.
        assert!(!l.link(true, 1, t));
        assert!(l.expire(t).is_empty());
        // Trusted again: b gets a whole window from now.
        assert!(l.link(true, 2, t));
        assert!(
            l.expire(t + SILENT_FOR - Duration::from_millis(1))
                .is_empty()
        );
        l.link(true, 3, t + SILENT_FOR);
        assert_eq!(l.expire(t + SILENT_FOR), [node("b")]);
    }

    #[test]
    fn acknowledgements_must_be_recent() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert!(!l.link(true, 0, t0), "nothing acknowledged yet");
        assert!(l.link(true, 5, t0));
        assert!(l.link(true, 5, t0 + ACKED_WITHIN - Duration::from_millis(1)));
        assert!(!l.link(true, 5, t0 + ACKED_WITHIN));
    }
}
