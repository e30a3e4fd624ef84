//! [`SignIns`]: this process's signed-in Pusher connections per app and user, for watchlists
//! (docs/pusher.md#watchlists), and the topic names watchlists use. The registry
//! (`super::registry`) holds one and shares its changes with the other nodes like presence
//! members.
//!
//! Imports nothing of this crate (see `super`).

use std::collections::HashMap;

/// The pseudo-topic under which a node tells the others which users of app `app_id` are
/// signed in on it (`Delta::User`, like a presence channel's members; no client can name
/// it: `#` is not allowed in a channel name).
pub fn online_topic(app_id: &str) -> String {
    ringcast_pusher::app::topic(app_id, "#online")
}

/// The fan-out topic where `user_id`'s online / offline changes go: every connection
/// watching the user is a member (docs/pusher.md#watchlists).
pub fn watch_topic(app_id: &str, user_id: &str) -> String {
    ringcast_pusher::app::topic(app_id, &format!("#watch/{user_id}"))
}

/// Signed-in connections per [`online_topic`] and user id.
#[derive(Debug, Default)]
pub struct SignIns(HashMap<String, HashMap<String, u32>>);

impl SignIns {
    /// One more connection of `user` under `topic`; true when it is the user's first here.
    pub fn add(&mut self, topic: &str, user: &str) -> bool {
        let n = (self.0.entry(topic.to_owned()).or_default())
            .entry(user.to_owned())
            .or_insert(0);
        *n += 1;
        *n == 1
    }

    /// One connection of `user` fewer; true when it was the user's last here (false for a
    /// user not signed in).
    pub fn remove(&mut self, topic: &str, user: &str) -> bool {
        let Some(users) = self.0.get_mut(topic) else {
            return false;
        };
        let Some(n) = users.get_mut(user) else {
            return false;
        };
        *n -= 1;
        if *n > 0 {
            return false;
        }
        users.remove(user);
        if users.is_empty() {
            self.0.remove(topic);
        }
        true
    }

    /// `user` has a signed-in connection here under `topic`.
    pub fn contains(&self, topic: &str, user: &str) -> bool {
        self.0
            .get(topic)
            .is_some_and(|users| users.contains_key(user))
    }

    /// Every (topic, user) signed in here, for a full state.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        (self.0.iter()).flat_map(|(t, users)| users.keys().map(move |u| (t.as_str(), u.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_connection_of_a_user() {
        let mut s = SignIns::default();
        assert!(s.add("t", "u"));
        assert!(!s.add("t", "u"));
        assert!(s.contains("t", "u"));
        assert_eq!(s.entries().collect::<Vec<_>>(), [("t", "u")]);
        assert!(!s.remove("t", "u"));
        assert!(s.remove("t", "u"));
        assert!(!s.remove("t", "u"));
        assert_eq!(s.entries().count(), 0);
    }
}
