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

use std::collections::HashMap;
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

/// A node heard within this is live when choosing who sends a departure's webhooks: three
/// beats.
pub const LIVE_WITHIN: Duration = Duration::from_secs(3);

/// More forgotten nodes than any cluster has: older ones are not remembered (a bound).
const MAX_FORGOTTEN: usize = 1024;

/// This process's run: a random number in its beats and full states, so the others tell a
/// node restarted under the same id (even within [`SILENT_FOR`]) from the run they knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run(pub u64);

impl Default for Run {
    fn default() -> Run {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        Run(h.finish())
    }
}

/// How a node's next full state is taken (`Liveness::take_first_full`), when it is the
/// first since the node was heard anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFull {
    /// Learnt without a word: a node heard for the first time, or the new run of a
    /// restarted one, announced its own arrivals.
    Silent,
    /// Announced: the node was forgotten, and its departure was.
    Announced,
}

/// What hearing from a node means (`Liveness::heard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Alive since it was last heard, the same run.
    Known,
    /// Never heard (or a new run of a forgotten node): learnt without a word, as its own
    /// arrivals were announced by itself.
    New,
    /// Forgotten for its silence but alive: its state is asked for and, when it comes,
    /// announced ([`FirstFull::Announced`]).
    Back,
    /// A new run under the id of a live node: the old run is gone, as if forgotten now.
    Restarted,
}

/// The other nodes' last word, and whether this node's own link can be trusted.
#[derive(Debug, Default)]
pub struct Liveness {
    /// When each live node was last heard from.
    heard: HashMap<Arc<str>, Instant>,
    /// The run of each live node, once it said it.
    runs: HashMap<Arc<str>, u64>,
    /// Nodes forgotten for their silence, with their run.
    forgotten: HashMap<Arc<str>, Option<u64>>,
    /// Nodes heard anew (first heard, restarted, back) whose full state has not come yet.
    first_full: HashMap<Arc<str>, FirstFull>,
    /// This node's link is trusted (module doc).
    trusted: bool,
    /// The bus's count of acknowledged publishes at the last check, and when it last grew.
    acked: (u64, Option<Instant>),
}

impl Liveness {
    /// Node `node` was heard from, saying its `run` (beats and full states do).
    pub fn heard(&mut self, node: &Arc<str>, run: Option<u64>, now: Instant) -> Heard {
        let live = self.heard.insert(node.clone(), now).is_some();
        let known = match run {
            Some(r) => self.runs.insert(node.clone(), r),
            None => self.runs.get(node).copied(),
        };
        let heard = if live {
            match (run, known) {
                (Some(r), Some(k)) if r != k => Heard::Restarted,
                _ => Heard::Known,
            }
        } else {
            match self.forgotten.remove(node) {
                None => Heard::New,
                Some(Some(old)) if run.is_some_and(|r| r != old) => Heard::New,
                Some(_) => Heard::Back,
            }
        };
        let first = match heard {
            Heard::Known => None,
            Heard::New | Heard::Restarted => Some(FirstFull::Silent),
            Heard::Back => Some(FirstFull::Announced),
        };
        if let Some(first) = first {
            self.first_full.insert(node.clone(), first);
        }
        heard
    }

    /// How `node`'s full state is taken when it is the first since the node was heard anew
    /// (taken: once); `None` for a node known all along.
    pub fn take_first_full(&mut self, node: &str) -> Option<FirstFull> {
        self.first_full.remove(node)
    }

    /// This node's link as the bus reports it: `up` (every shard connected) and
    /// `published` (its count of publishes Redis acknowledged). Returns whether it is
    /// trusted now; on regaining trust every node's clock restarts at `now`.
    pub fn link(&mut self, up: bool, published: u64, now: Instant) -> bool {
        if published != self.acked.0 {
            self.acked = (published, Some(now));
        }
        let acked =
            (self.acked.1).is_some_and(|at| now.saturating_duration_since(at) < ACKED_WITHIN);
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
        // Only nodes that said their run beat: one of a version without beats is never
        // forgotten (rolling upgrades).
        let mut gone: Vec<Arc<str>> = (self.heard.iter())
            .filter(|(n, at)| {
                now.saturating_duration_since(**at) >= SILENT_FOR && self.runs.contains_key(*n)
            })
            .map(|(n, _)| n.clone())
            .collect();
        gone.sort_unstable();
        for node in &gone {
            self.heard.remove(node);
            self.first_full.remove(node);
            if self.forgotten.len() >= MAX_FORGOTTEN {
                self.forgotten.clear();
            }
            self.forgotten.insert(node.clone(), self.runs.remove(node));
        }
        gone
    }

    /// Whether this node (`me`) sends the webhooks of a departure: it has the smallest id
    /// of the nodes heard within [`LIVE_WITHIN`] (a node dead at the same moment as the
    /// one departing, silent for seconds but not forgotten yet, does not count).
    pub fn sends_hooks(&self, me: &str, now: Instant) -> bool {
        (self.heard.iter())
            .filter(|(_, at)| now.saturating_duration_since(**at) < LIVE_WITHIN)
            .all(|(n, _)| me < &**n)
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
        assert_eq!(l.heard(&node("b"), Some(7), t0), Heard::New);
        l.heard(&node("c"), Some(3), t0);
        l.heard(&node("old"), None, t0);
        assert!(l.sends_hooks("a", t0));
        assert!(!l.sends_hooks("bb", t0), "b is smaller");
        let t = t0 + Duration::from_secs(3);
        l.link(true, 2, t);
        assert_eq!(l.heard(&node("c"), None, t), Heard::Known);
        assert!(l.expire(t).is_empty());
        let t = t0 + SILENT_FOR;
        l.link(true, 3, t);
        assert_eq!(l.expire(t), [node("b")], "not `old`, which does not beat");
        assert!(l.expire(t).is_empty(), "once");
        assert!(l.sends_hooks("bb", t), "b is gone");
        assert_eq!(l.heard(&node("b"), None, t), Heard::Back, "ask its state");
        assert_eq!(l.heard(&node("b"), Some(7), t), Heard::Known);
        assert_eq!(l.take_first_full("b"), Some(FirstFull::Announced));
        assert_eq!(l.take_first_full("b"), None, "once");
        assert_eq!(l.heard(&node("b"), Some(8), t), Heard::Restarted);
        assert_eq!(l.take_first_full("b"), Some(FirstFull::Silent), "a new run");
        l.link(true, 4, t + SILENT_FOR);
        l.expire(t + SILENT_FOR);
        let again = l.heard(&node("b"), Some(9), t + SILENT_FOR);
        assert_eq!(again, Heard::New, "a new run of a forgotten node");
    }

    #[test]
    fn nobody_is_forgotten_while_our_own_link_is_down_or_stalled() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.link(true, 1, t0);
        l.heard(&node("b"), Some(1), t0);
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
    fn a_node_dead_at_the_same_moment_does_not_hold_the_webhooks() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.link(true, 1, t0);
        l.heard(&node("a"), Some(1), t0);
        l.heard(&node("b"), Some(2), t0 + Duration::from_millis(900));
        let t = t0 + SILENT_FOR;
        l.link(true, 2, t);
        assert_eq!(l.expire(t), [node("a")], "b not silent for long enough yet");
        assert!(l.sends_hooks("c", t), "b, silent for 4 s, is not live");
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
