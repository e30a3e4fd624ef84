//! Per-(origin, room) sequence tracking on the receiving side.

use std::collections::HashMap;
use std::sync::Arc;

/// What one envelope means for continuity.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Continuity {
    /// The first envelope seen from this origin since we subscribed: nothing to compare with.
    First,
    /// Exactly the next messages.
    InOrder,
    /// `missed` messages from this origin never arrived.
    Gap { missed: u64 },
    /// The sequence went backwards: the origin restarted with the same node id. Accepted as a
    /// new baseline (nothing can be said about what was lost across its restart).
    Restarted,
}

/// The next expected sequence number of each origin, for one room. Reset on unsubscribe: what
/// was published while we were not listening is not a gap.
#[derive(Debug, Default)]
pub(crate) struct GapTracker {
    next: HashMap<Arc<str>, u64>,
}

impl GapTracker {
    /// Records an envelope of `count` messages starting at `first`, and returns the origin's
    /// shared name with the verdict.
    pub fn observe(&mut self, origin: &str, first: u64, count: u64) -> (Arc<str>, Continuity) {
        let after = first.saturating_add(count);
        if let Some((name, next)) = self.next.get_key_value(origin) {
            let name = name.clone();
            let next = *next;
            let verdict = match first.cmp(&next) {
                std::cmp::Ordering::Equal => Continuity::InOrder,
                std::cmp::Ordering::Greater => Continuity::Gap {
                    missed: first - next,
                },
                std::cmp::Ordering::Less => Continuity::Restarted,
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
        assert_eq!(t.observe("a", 5, 2).1, Continuity::First);
        assert_eq!(t.observe("a", 7, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("b", 1, 1).1, Continuity::First);
        assert_eq!(t.observe("a", 11, 3).1, Continuity::Gap { missed: 3 });
        assert_eq!(t.observe("a", 14, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("a", 1, 1).1, Continuity::Restarted);
        assert_eq!(t.observe("a", 2, 1).1, Continuity::InOrder);
        assert_eq!(t.observe("b", 2, 1).1, Continuity::InOrder);
    }

    #[test]
    fn origin_name_is_shared() {
        let mut t = GapTracker::default();
        let (a1, _) = t.observe("a", 1, 1);
        let (a2, _) = t.observe("a", 2, 1);
        assert!(Arc::ptr_eq(&a1, &a2));
    }
}
