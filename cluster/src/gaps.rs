//! Per-(origin, room) sequence tracking on the receiving side.
//!
//! An origin numbers each room's messages in *streams* (`wire`): a stream id, then sequence
//! numbers from 1. A node starts a new stream for a room when it starts (or restarts) or after
//! it forgot the room's numbering (idle, or over its bound: `crate::streams`), so a new stream
//! from a known origin is a fresh start, not a gap, unless its first sequence number says
//! messages before it were lost.

use std::collections::HashMap;
use std::sync::Arc;

/// What one envelope means for continuity.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Continuity {
    /// The first envelope seen from this origin since we subscribed: nothing to compare with.
    First,
    /// Exactly the next messages (of the stream we follow, or the start of a new stream).
    InOrder,
    /// `missed` messages from this origin never arrived.
    Gap { missed: u64 },
    /// The sequence went backwards within one stream: a replay, a forgery, or an origin that
    /// predates stream ids (wire version 1) restarting. Accepted as a new baseline, but
    /// continuity is broken by an unknown amount: the receiver must say so (a `Gap` event with
    /// `missed: 0`), never deliver it as if nothing happened.
    Restarted,
}

/// The stream followed and the next expected sequence number of one origin.
#[derive(Debug, Clone, Copy)]
struct Follow {
    stream: u64,
    next: u64,
}

/// Where each origin is, for one room. Reset on unsubscribe: what was published while we were
/// not listening is not a gap. Bounded by the origins publishing in the room.
#[derive(Debug, Default)]
pub(crate) struct GapTracker {
    next: HashMap<Arc<str>, Follow>,
}

impl GapTracker {
    /// Records an envelope of `count` messages of `stream` starting at `first`, and returns the
    /// origin's shared name with the verdict. Arithmetic saturates: a forged sequence number
    /// near `u64::MAX` cannot wrap anything.
    pub fn observe(
        &mut self,
        origin: &str,
        stream: u64,
        first: u64,
        count: u64,
    ) -> (Arc<str>, Continuity) {
        let after = Follow {
            stream,
            next: first.saturating_add(count),
        };
        if let Some((name, seen)) = self.next.get_key_value(origin) {
            let name = name.clone();
            let verdict = if seen.stream != stream {
                // A new stream numbers from 1: a later first number means its start was lost.
                match first.saturating_sub(1) {
                    0 => Continuity::InOrder,
                    missed => Continuity::Gap { missed },
                }
            } else {
                match first.cmp(&seen.next) {
                    std::cmp::Ordering::Equal => Continuity::InOrder,
                    std::cmp::Ordering::Greater => Continuity::Gap {
                        missed: first - seen.next,
                    },
                    std::cmp::Ordering::Less => Continuity::Restarted,
                }
            };
            self.next.insert(name.clone(), after);
            return (name, verdict);
        }
        let name: Arc<str> = Arc::from(origin);
        self.next.insert(name.clone(), after);
        (name, Continuity::First)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let mut t = GapTracker::default();
        assert_eq!(t.observe("a", 7, 5, 2).1, Continuity::First);
        assert_eq!(t.observe("a", 7, 7, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("b", 9, 1, 1).1, Continuity::First);
        assert_eq!(t.observe("a", 7, 11, 3).1, Continuity::Gap { missed: 3 });
        assert_eq!(t.observe("a", 7, 14, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("a", 7, 1, 1).1, Continuity::Restarted);
        assert_eq!(t.observe("a", 7, 2, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("b", 9, 2, 1).1, Continuity::InOrder);
    }

    #[test]
    fn a_new_stream_is_a_fresh_start_unless_its_start_was_lost() {
        let mut t = GapTracker::default();
        assert_eq!(t.observe("a", 1, 1, 10).1, Continuity::First);
        // The origin forgot the room and started over: no gap, no restart.
        assert_eq!(t.observe("a", 2, 1, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("a", 2, 2, 1).1, Continuity::InOrder);
        // A new stream whose first 4 messages never arrived.
        assert_eq!(t.observe("a", 3, 5, 1).1, Continuity::Gap { missed: 4 });
        assert_eq!(t.observe("a", 3, 6, 1).1, Continuity::InOrder);
    }

    #[test]
    fn sequences_near_the_top_saturate() {
        let mut t = GapTracker::default();
        assert_eq!(t.observe("a", 0, 5, 1).1, Continuity::First);
        let far = t.observe("a", 0, u64::MAX - 1, 5).1;
        assert_eq!(
            far,
            Continuity::Gap {
                missed: u64::MAX - 7
            }
        );
        // `next` saturated at u64::MAX instead of wrapping to 3.
        assert_eq!(t.observe("a", 0, 3, 1).1, Continuity::Restarted);
        assert_eq!(
            t.observe("a", 0, u64::MAX, 1).1,
            Continuity::Gap {
                missed: u64::MAX - 4
            }
        );
        assert_eq!(
            t.observe("a", 1, u64::MAX, 1).1,
            Continuity::Gap {
                missed: u64::MAX - 1
            }
        );
    }

    #[test]
    fn origin_name_is_shared() {
        let mut t = GapTracker::default();
        let (a1, _) = t.observe("a", 0, 1, 1);
        let (a2, _) = t.observe("a", 0, 2, 1);
        assert!(Arc::ptr_eq(&a1, &a2));
    }
}
