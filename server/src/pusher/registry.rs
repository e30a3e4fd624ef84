//! The Pusher channels of this process: subscriptions per channel (occupied / vacated,
//! `subscription_count`) and the members of each presence channel counted per user
//! (`ringcast_pusher::presence::Roster`: one `member_added` for a user's first connection,
//! one `member_removed` for its last).
//!
//! One mutex, taken on subscribe, unsubscribe, a connection's end and HTTP API queries,
//! never per message. Keys are fan-out topics (`#pusher/{app}/{channel}`), so apps stay
//! apart.

use std::collections::HashMap;
use std::sync::Mutex;

use ringcast_pusher::presence::{Joined, Left, MemberData, Roster};
use ringcast_pusher::write;

/// One channel's state.
#[derive(Default)]
struct Channel {
    /// Connections subscribed, presence or not.
    subscriptions: u64,
    /// Presence members (empty for other kinds).
    roster: Roster,
}

/// What a channel looks like from the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The channel name (without the topic prefix).
    pub name: String,
    /// Connections subscribed.
    pub subscriptions: u64,
    /// Distinct presence users.
    pub users: usize,
}

/// Every Pusher channel with a subscriber in this process.
#[derive(Default)]
pub struct Registry {
    channels: Mutex<HashMap<String, Channel>>,
    /// Open connections per app id (the per-app `max_connections`).
    connections: Mutex<HashMap<String, u32>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        // A panic while holding it leaves counts that are still counts.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection to app `app_id` opens; false (not counted) when the app already has
    /// `max` connections.
    pub fn connect(&self, app_id: &str, max: Option<u32>) -> bool {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(app_id.to_owned()).or_insert(0);
        if max.is_some_and(|max| *n >= max) {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by [`Self::connect`] ends.
    pub fn disconnect(&self, app_id: &str) {
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(app_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(app_id);
            }
        }
    }

    /// Open connections of app `app_id`.
    pub fn connections(&self, app_id: &str) -> u32 {
        let c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        c.get(app_id).copied().unwrap_or(0)
    }

    /// One more subscription of `topic`; true when it is the channel's first (occupied).
    pub fn subscribe(&self, topic: &str) -> bool {
        let mut channels = self.lock();
        let c = channels.entry(topic.to_owned()).or_default();
        c.subscriptions += 1;
        c.subscriptions == 1
    }

    /// One subscription of `topic` fewer; true when it was the last (vacated).
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let mut channels = self.lock();
        let Some(c) = channels.get_mut(topic) else {
            return false;
        };
        c.subscriptions = c.subscriptions.saturating_sub(1);
        if c.subscriptions > 0 {
            return false;
        }
        channels.remove(topic);
        true
    }

    /// A presence subscription of `member` to `topic` (channel `channel`), already counted
    /// by [`Self::subscribe`]: what it did to the roster and, unless it is full, the
    /// `pusher_internal:subscription_succeeded` the subscriber gets, written under the lock
    /// so it lists exactly the members before the next join or leave.
    pub fn presence_join(
        &self,
        topic: &str,
        channel: &str,
        member: &MemberData,
        max_members: usize,
    ) -> (Joined, Vec<u8>) {
        let mut channels = self.lock();
        let c = channels.entry(topic.to_owned()).or_default();
        let joined = c.roster.join(member, max_members);
        let mut out = Vec::new();
        if joined != Joined::Full {
            write::presence_subscription_succeeded(&mut out, channel, c.roster.members());
        }
        (joined, out)
    }

    /// A presence subscription of `user_id` to `topic` ended.
    pub fn presence_leave(&self, topic: &str, user_id: &str) -> Left {
        let mut channels = self.lock();
        channels
            .get_mut(topic)
            .map_or(Left::NotMember, |c| c.roster.leave(user_id))
    }

    /// The channel of `topic`, if it has subscribers.
    pub fn info(&self, topic: &str) -> Option<Info> {
        let channels = self.lock();
        let c = channels.get(topic)?;
        Some(Info {
            name: ringcast_pusher::app::split_topic(topic)
                .map_or(topic, |(_, ch)| ch)
                .to_owned(),
            subscriptions: c.subscriptions,
            users: c.roster.user_count(),
        })
    }

    /// The user ids of presence channel `topic`.
    pub fn users(&self, topic: &str) -> Vec<String> {
        let channels = self.lock();
        channels.get(topic).map_or_else(Vec::new, |c| {
            c.roster.members().map(|m| m.user_id.to_owned()).collect()
        })
    }

    /// Every occupied channel of app `app_id` whose name starts with `prefix`.
    pub fn channels(&self, app_id: &str, prefix: &str) -> Vec<Info> {
        let channels = self.lock();
        let mut out: Vec<Info> = (channels.iter())
            .filter_map(|(topic, c)| {
                let (app, name) = ringcast_pusher::app::split_topic(topic)?;
                (app == app_id && name.starts_with(prefix)).then(|| Info {
                    name: name.to_owned(),
                    subscriptions: c.subscriptions,
                    users: c.roster.user_count(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Appends the Pusher gauges (docs/metrics.md): open connections and occupied
    /// channels per app.
    pub fn render_metrics(
        &self,
        out: &mut String,
        app_ids: impl Iterator<Item = impl AsRef<str>> + Clone,
    ) {
        use std::fmt::Write;
        out.push_str("# HELP ringcast_pusher_connections Open Pusher connections per app.\n");
        out.push_str("# TYPE ringcast_pusher_connections gauge\n");
        for id in app_ids.clone() {
            let id = id.as_ref();
            let _ = writeln!(
                out,
                "ringcast_pusher_connections{{app=\"{id}\"}} {}",
                self.connections(id)
            );
        }
        out.push_str(
            "# HELP ringcast_pusher_channels Occupied Pusher channels per app (this process).\n",
        );
        out.push_str("# TYPE ringcast_pusher_channels gauge\n");
        for id in app_ids {
            let id = id.as_ref();
            let _ = writeln!(
                out,
                "ringcast_pusher_channels{{app=\"{id}\"}} {}",
                self.channels(id, "").len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str) -> MemberData {
        MemberData {
            user_id: id.into(),
            user_info: None,
        }
    }

    #[test]
    fn occupied_once_vacated_once_and_users_counted_once() {
        let r = Registry::default();
        let t = "#pusher/1/presence-x";
        assert!(r.subscribe(t));
        assert!(!r.subscribe(t));
        let (j, snap) = r.presence_join(t, "presence-x", &member("u"), 10);
        assert_eq!(j, Joined::NewMember);
        assert!(String::from_utf8_lossy(&snap).contains("\\\"count\\\":1"));
        let (j, _) = r.presence_join(t, "presence-x", &member("u"), 10);
        assert_eq!(j, Joined::AnotherConnection);
        let info = r.channels("1", "presence-");
        assert_eq!(
            info.iter()
                .map(|i| (i.subscriptions, i.users))
                .collect::<Vec<_>>(),
            [(2, 1)]
        );
        assert!(r.channels("2", "").is_empty(), "apps are apart");
        assert_eq!(r.presence_leave(t, "u"), Left::StillMember);
        assert!(!r.unsubscribe(t));
        assert_eq!(r.presence_leave(t, "u"), Left::MemberGone);
        assert!(r.unsubscribe(t));
        assert!(r.channels("1", "").is_empty());
    }
}
