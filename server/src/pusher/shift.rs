//! What a change in the other nodes' state means for the cluster's channels when no delta
//! announced it (docs/pusher.md#across-a-cluster): a node forgotten for its silence or
//! restarted under the same id leaves users and channels behind, a full state that differs
//! from what was known (deltas lost while Redis was down, a forgotten node back) brings
//! some and takes others. [`Shift`] is that difference as the other nodes see it
//! (`super::nodes`); [`Changes`] is what remains once this node's own channels are counted
//! (`super::registry`): what its subscribers are told and, on one node, the webhooks.
//!
//! Imports nothing of this crate (see `super`).

use std::collections::HashSet;

/// The difference in the other nodes' channels, cluster-wide as far as they go.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shift {
    /// (topic, user) on no other node now, present before.
    pub removed: Vec<(String, String)>,
    /// Topics no other node subscribes to now, some did before.
    pub vacated: Vec<String>,
    /// Topics some other node subscribes to now, none did before.
    pub occupied: Vec<String>,
    /// (topic, user, `user_info`) present on another node now, on none before.
    pub added: Vec<(String, String, Option<String>)>,
}

impl Shift {
    /// Cancels what came and went within the shift: `has_user` and `occupied` tell what
    /// the other nodes have now. A user removed then added again (or the reverse) is
    /// neither; the same for a channel.
    pub fn settle(
        &mut self,
        has_user: impl Fn(&str, &str) -> bool,
        occupied: impl Fn(&str) -> bool,
    ) {
        let removed: HashSet<(String, String)> = self.removed.iter().cloned().collect();
        let vacated: HashSet<String> = self.vacated.iter().cloned().collect();
        self.removed.retain(|(t, u)| !has_user(t, u));
        self.vacated.retain(|t| !occupied(t));
        (self.added).retain(|(t, u, _)| !removed.contains(&(t.clone(), u.clone())));
        self.occupied.retain(|t| !vacated.contains(t));
        for list in [&mut self.vacated, &mut self.occupied] {
            list.sort_unstable();
            list.dedup();
        }
        self.removed.sort_unstable();
        self.added.sort_unstable();
    }

    /// Adds `other`'s lists to this one's (settle after).
    pub fn extend(&mut self, other: Shift) {
        self.removed.extend(other.removed);
        self.vacated.extend(other.vacated);
        self.occupied.extend(other.occupied);
        self.added.extend(other.added);
    }

    /// Only what went: what came is learnt without a word (a node heard for the first time,
    /// or the new run of a restarted one, announced its own arrivals).
    pub fn departures_only(mut self) -> Shift {
        self.occupied.clear();
        self.added.clear();
        self
    }
}

/// What a [`Shift`] means on this node: users present on no node at all now, or on one
/// now and on none before, and the channels likewise.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// (topic, user): `member_removed` to this node's subscribers.
    pub removed: Vec<(String, String)>,
    /// Topics with no subscription anywhere now: `channel_vacated`.
    pub vacated: Vec<String>,
    /// Topics with their first subscription anywhere: `channel_occupied`.
    pub occupied: Vec<String>,
    /// (topic, user, `user_info`): `member_added` to this node's subscribers.
    pub added: Vec<(String, String, Option<String>)>,
    /// This node sends the webhooks of these changes (the live node with the smallest id,
    /// when nobody else sent them).
    pub hooks: bool,
}

impl Changes {
    /// `shift` less what this node has itself: `has_user` (its presence rosters) and
    /// `has_channel` (its subscriptions).
    pub fn on_this_node(
        shift: Shift,
        hooks: bool,
        has_user: impl Fn(&str, &str) -> bool,
        has_channel: impl Fn(&str) -> bool,
    ) -> Changes {
        let Shift {
            mut removed,
            mut vacated,
            mut occupied,
            mut added,
        } = shift;
        removed.retain(|(t, u)| !has_user(t, u));
        added.retain(|(t, u, _)| !has_user(t, u));
        vacated.retain(|t| !has_channel(t));
        occupied.retain(|t| !has_channel(t));
        Changes {
            removed,
            vacated,
            occupied,
            added,
            hooks,
        }
    }

    /// Nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.vacated.is_empty()
            && self.occupied.is_empty()
            && self.added.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(t: &str, u: &str) -> (String, String) {
        (t.into(), u.into())
    }

    #[test]
    fn what_came_and_went_cancels_and_this_node_counts() {
        let mut s = Shift {
            removed: vec![pair("t", "u"), pair("t", "v"), pair("t", "w")],
            vacated: vec!["x".into(), "y".into()],
            occupied: vec!["x".into(), "z".into()],
            added: vec![
                ("t".into(), "u".into(), None),
                ("t".into(), "n".into(), None),
            ],
        };
        // u went and came back, v is still on a third node; x went and came back, y is
        // still subscribed on a third node.
        s.settle(|_, u| u == "u" || u == "v" || u == "n", |_| true);
        assert_eq!(s.removed, [pair("t", "w")]);
        assert_eq!(
            (s.vacated.len(), &s.occupied[..]),
            (0, &["z".to_owned()][..])
        );
        assert_eq!(s.added, [("t".into(), "n".into(), None)]);
        let c = Changes::on_this_node(s, true, |_, u| u == "w" || u == "n", |t| t == "z");
        assert!(c.is_empty(), "w, n and z are here: {c:?}");
    }
}
