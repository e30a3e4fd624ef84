//! The Pusher channels of this process: subscriptions per channel (occupied / vacated,
//! `subscription_count`) and the members of each presence channel counted per user
//! (`ringcast_pusher::presence::Roster`: one `member_added` for a user's first connection,
//! one `member_removed` for its last).
//!
//! One mutex, taken on subscribe, unsubscribe, a connection's end and HTTP API queries,
//! never per message. Keys are fan-out topics (`#pusher/{app}/{channel}`), so apps stay
//! apart.
//!
//! In a cluster (docs/pusher.md#across-a-cluster) every change of a channel's subscriptions
//! and of a user's presence on this node is published (under the lock, so in order) as a
//! `super::nodes::Delta`, and the other nodes' state (`super::nodes::Nodes`, locked after
//! the channels) makes the events cluster-wide: a member is announced when no node had the
//! user, a channel occupied when no node had a subscription.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::app_connections::AppConnections;
use super::channel::{Channel, Info, user_ids};
use super::liveness::{FirstFull, Heard, Run};
use super::nodes::{Delta, Nodes, Owed};
use super::shift::{Changes, Shift};
use super::signins::{SignIns, online_topic};

use ringcast_pusher::presence::{Joined, Left, MemberData};
use ringcast_pusher::write;

/// Publishes a delta to the other nodes (the cluster bus, set once in a cluster).
type Publish = Box<dyn Fn(Vec<u8>) + Send + Sync>;

/// A presence join, as the registry decided it (see [`Registry::presence_join`]).
pub struct PresenceJoin {
    /// `NewMember` only when no node had the user: announce it (`member_added`).
    pub joined: Joined,
    /// Emit the `member_added` webhook (false when another node owes it).
    pub hook: bool,
    /// The `pusher_internal:subscription_succeeded` frame (empty when full).
    pub succeeded: Vec<u8>,
}

/// Every Pusher channel with a subscriber in this process.
#[derive(Default)]
pub struct Registry {
    channels: Mutex<HashMap<String, Channel>>,
    /// Open connections per app id (the per-app `max_connections`).
    pub connections: AppConnections,
    /// The other nodes' channels (empty outside a cluster).
    nodes: Mutex<Nodes>,
    /// Where deltas go (unset outside a cluster).
    publish: OnceLock<Publish>,
    /// Signed-in connections (watchlists, docs/pusher.md#watchlists).
    online: Mutex<SignIns>,
    /// This process's run, in its beats and full states.
    run: Run,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        // A panic while holding it leaves counts that are still counts.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lock order: channels, online, nodes.
    fn online(&self) -> std::sync::MutexGuard<'_, SignIns> {
        self.online.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nodes(&self) -> std::sync::MutexGuard<'_, Nodes> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// In a cluster: deltas go to the other nodes through `publish`.
    pub fn set_publisher(&self, publish: impl Fn(Vec<u8>) + Send + Sync + 'static) {
        let _ = self.publish.set(Box::new(publish));
    }

    fn send(&self, delta: &Delta) {
        if let Some(p) = self.publish.get() {
            p(delta.encode());
        }
    }

    /// Tells every other node this node's full state and asks for theirs (at start, and
    /// when Redis is back: they may have forgotten this node meanwhile).
    pub fn resync(&self) {
        self.send_full();
        self.send(&Delta::Sync);
    }

    /// This node's whole state as a [`Delta::Full`], sent under the lock (in order with the
    /// deltas).
    fn send_full(&self) {
        let channels = self.lock();
        let subs = (channels.iter())
            .map(|(t, c)| (t.clone(), c.subscriptions))
            .collect();
        let users = (channels.iter())
            .flat_map(|(t, c)| {
                (c.roster.members()).map(|m| {
                    (
                        t.clone(),
                        m.user_id.to_owned(),
                        m.user_info.map(str::to_owned),
                    )
                })
            })
            .collect::<Vec<_>>();
        // Both held while sending, so no delta of either goes out between the snapshot and
        // it (lock order: channels, then online).
        let online = self.online();
        let mut users = users;
        users.extend((online.entries()).map(|(t, u)| (t.to_owned(), u.to_owned(), None)));
        let run = Some(self.run.0);
        self.send(&Delta::Full { subs, users, run });
    }

    /// Once per `super::liveness::BEAT_EVERY`: notes this node's link as the bus reports it
    /// (every shard `up`, `published` acknowledged so far) and tells the others this node
    /// is alive.
    pub fn beat(&self, up: bool, published: u64, now: Instant) {
        self.nodes().link(up, published, now);
        self.send(&Delta::Beat { run: self.run.0 });
    }

    /// Forgets the other nodes silent for `super::liveness::SILENT_FOR`: what that means on
    /// this node's channels comes back (users present nowhere now, channels with no
    /// subscription anywhere now), with whether this node (`me`) sends the webhooks.
    pub fn expire(&self, me: &str, now: Instant) -> Changes {
        let channels = self.lock();
        let online = self.online();
        let mut nodes = self.nodes();
        let shift = nodes.expire(now);
        let hooks = nodes.sends_hooks(me, now);
        on_this_node(&channels, &online, shift, hooks)
    }

    /// The node (heard from) whose socket ids carry `tag` (`super::nodes::node_tag`).
    pub fn node_of_tag(&self, tag: u64) -> Option<String> {
        self.nodes().node_of_tag(tag).map(str::to_owned)
    }

    /// Asks node `node` to publish `frame` into `topic` without its connection
    /// (`worker`, `key`): an HTTP API event whose `socket_id` is on that node.
    pub fn forward_event(&self, node: String, topic: String, frame: &[u8], socket: (u64, u64)) {
        let frame = String::from_utf8_lossy(frame).into_owned();
        let (worker, key) = socket;
        self.send(&Delta::Event {
            node,
            topic,
            frame,
            worker,
            key,
        });
    }

    /// Takes a delta of node `origin` (this node is `me`): a `Sync` is answered with this
    /// node's full state; what this node owes the cluster (a webhook) comes back, and what
    /// a change no delta announced means here (a restarted node's old run gone, a full state
    /// that differs from what was known: `super::shift`).
    pub fn apply(&self, origin: &str, delta: Delta, me: &str) -> (Option<Owed>, Changes) {
        let now = Instant::now();
        let heard = self.nodes().heard(origin, delta.run(), now);
        let full = matches!(delta, Delta::Full { .. });
        if heard == Heard::Back && !full {
            // Forgotten for its silence, alive after all: its state is learnt again.
            self.send(&Delta::Sync);
        }
        if delta == Delta::Sync {
            self.send_full();
            return (None, Changes::default());
        }
        let channels = self.lock();
        let online = self.online();
        let mut nodes = self.nodes();
        let mut shift = Shift::default();
        let mut hooks = false;
        if heard == Heard::Restarted {
            tracing::info!(node = origin, "Pusher cluster state: node restarted");
            nodes.depart(origin, &mut shift);
            hooks = nodes.sends_hooks(me, now);
        }
        let owed = match delta {
            Delta::Full { subs, users, .. } => {
                let learnt = nodes.full(origin, subs, users);
                match nodes.take_first_full(origin) {
                    // Its departure was announced: its return is too.
                    Some(FirstFull::Announced) => {
                        hooks = nodes.sends_hooks(me, now);
                        shift.extend(learnt);
                    }
                    // New, or a new run: it announced its own arrivals.
                    Some(FirstFull::Silent) => shift.extend(learnt.departures_only()),
                    // Changes lost on the way (Redis was down): its own webhooks were sent.
                    None => shift.extend(learnt),
                }
                None
            }
            delta => nodes.apply(origin, delta, me, now),
        };
        nodes.settle(&mut shift);
        drop(nodes);
        (owed, on_this_node(&channels, &online, shift, hooks))
    }

    /// A connection of app `app_id` signed in as `user_id`; true when the user was online on
    /// no node before (its watchers get `online`).
    pub fn sign_in(&self, app_id: &str, user_id: &str) -> bool {
        self.sign(app_id, user_id, true)
    }

    /// A connection signed in as `user_id` ends (or signs in as another user); true when
    /// the user is now online on no node (its watchers get `offline`).
    pub fn sign_out(&self, app_id: &str, user_id: &str) -> bool {
        self.sign(app_id, user_id, false)
    }

    /// [`Self::sign_in`] (`on`) or [`Self::sign_out`]: a user's first or last connection
    /// here is told to the other nodes; true when no other node has the user either.
    fn sign(&self, app_id: &str, user_id: &str, on: bool) -> bool {
        let topic = online_topic(app_id);
        let mut online = self.online();
        let changed = if on {
            online.add(&topic, user_id)
        } else {
            online.remove(&topic, user_id)
        };
        if !changed {
            return false;
        }
        let elsewhere = self.nodes().has_user(&topic, user_id);
        self.send(&Delta::User {
            topic,
            id: user_id.to_owned(),
            info: None,
            on,
            hook: false,
            owe: None,
        });
        !elsewhere
    }

    /// Which of `user_ids` are signed in on some node of app `app_id`.
    pub fn is_online<'u>(&self, app_id: &str, user_ids: &'u [String]) -> Vec<(&'u str, bool)> {
        let topic = online_topic(app_id);
        let online = self.online();
        let nodes = self.nodes();
        (user_ids.iter())
            .map(|id| {
                let on = online.contains(&topic, id) || nodes.has_user(&topic, id);
                (id.as_str(), on)
            })
            .collect()
    }

    /// One more subscription of `topic`; true when this node sends the channel's
    /// `channel_occupied` (the first subscription in the cluster, and no other node holds
    /// a vacated one: `super::nodes`).
    pub fn subscribe(&self, topic: &str) -> bool {
        let mut channels = self.lock();
        let c = channels.entry(topic.to_owned()).or_default();
        c.subscriptions += 1;
        let n = c.subscriptions;
        let (mut hook, mut owe) = (false, None);
        if n == 1 {
            let mut nodes = self.nodes();
            if nodes.subscriptions(topic) == 0 {
                owe = nodes.take_vacated_by(topic, Instant::now());
                hook = owe.is_none();
            }
        }
        let topic = topic.to_owned();
        self.send(&Delta::Subs {
            topic,
            n,
            hook,
            owe,
        });
        hook
    }

    /// One subscription of `topic` fewer; true when it was the last in the cluster
    /// (vacated).
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let mut channels = self.lock();
        let Some(c) = channels.get_mut(topic) else {
            return false;
        };
        c.subscriptions = c.subscriptions.saturating_sub(1);
        let n = c.subscriptions;
        if n == 0 {
            channels.remove(topic);
        }
        let hook = n == 0 && self.nodes().subscriptions(topic) == 0;
        self.send(&Delta::Subs {
            topic: topic.to_owned(),
            n,
            hook,
            owe: None,
        });
        hook
    }

    /// A presence subscription of `member` to `topic` (channel `channel`), already counted
    /// by [`Self::subscribe`]: what it did to the roster (`NewMember` only when no node had
    /// the user) and, unless it is full, the `pusher_internal:subscription_succeeded` the
    /// subscriber gets, written under the lock so it lists exactly the members (of every
    /// node) before the next join or leave.
    pub fn presence_join(
        &self,
        topic: &str,
        channel: &str,
        member: &MemberData,
        max_members: usize,
    ) -> PresenceJoin {
        let mut channels = self.lock();
        let c = channels.entry(topic.to_owned()).or_default();
        let mut nodes = self.nodes();
        // `max_members` counts distinct users on every node: the other nodes' users this
        // one lacks take their share of it, and a user present elsewhere is no new member.
        let cap = if nodes.has_user(topic, &member.user_id) {
            usize::MAX
        } else {
            let elsewhere = (nodes.users(topic))
                .filter(|(id, _)| !c.roster.contains(id))
                .count();
            max_members.saturating_sub(elsewhere)
        };
        let mut joined = c.roster.join(member, cap);
        let mut out = Vec::new();
        let mut hook = false;
        if joined != Joined::Full {
            let local = c.roster.members();
            let remote = (nodes.users(topic))
                .filter(|(id, _)| !c.roster.contains(id))
                .map(|(user_id, user_info)| write::Member { user_id, user_info });
            let all: Vec<write::Member<'_>> = local.chain(remote).collect();
            write::presence_subscription_succeeded(&mut out, channel, all);
            if joined == Joined::NewMember {
                let mut owe = None;
                if nodes.has_user(topic, &member.user_id) {
                    joined = Joined::AnotherConnection;
                } else {
                    owe = nodes.take_removed_by(topic, &member.user_id, Instant::now());
                    hook = owe.is_none();
                }
                drop(nodes);
                self.send(&Delta::User {
                    topic: topic.to_owned(),
                    id: member.user_id.clone(),
                    info: member.user_info.clone(),
                    on: true,
                    hook,
                    owe,
                });
            }
        }
        PresenceJoin {
            joined,
            hook,
            succeeded: out,
        }
    }

    /// A presence subscription of `user_id` to `topic` ended: `MemberGone` only when no
    /// node has the user any more (announce `member_removed`).
    pub fn presence_leave(&self, topic: &str, user_id: &str) -> Left {
        let mut channels = self.lock();
        let left = (channels.get_mut(topic)).map_or(Left::NotMember, |c| c.roster.leave(user_id));
        if left != Left::MemberGone {
            return left;
        }
        let elsewhere = self.nodes().has_user(topic, user_id);
        self.send(&Delta::User {
            topic: topic.to_owned(),
            id: user_id.to_owned(),
            info: None,
            on: false,
            hook: !elsewhere,
            owe: None,
        });
        if elsewhere {
            Left::StillMember
        } else {
            Left::MemberGone
        }
    }

    /// The channel of `topic`, if it has subscribers on any node.
    pub fn info(&self, topic: &str) -> Option<Info> {
        let channels = self.lock();
        let nodes = self.nodes();
        let c = channels.get(topic);
        let subscriptions = c.map_or(0, |c| c.subscriptions) + nodes.subscriptions(topic);
        if subscriptions == 0 {
            return None;
        }
        Some(Info {
            name: ringcast_pusher::app::split_topic(topic)
                .map_or(topic, |(_, ch)| ch)
                .to_owned(),
            subscriptions,
            users: user_ids(c, &nodes, topic).len(),
        })
    }

    /// The user ids of presence channel `topic`, on every node.
    pub fn users(&self, topic: &str) -> Vec<String> {
        let channels = self.lock();
        let nodes = self.nodes();
        user_ids(channels.get(topic), &nodes, topic)
    }

    /// Every channel of app `app_id` occupied on any node whose name starts with `prefix`.
    pub fn channels(&self, app_id: &str, prefix: &str) -> Vec<Info> {
        let channels = self.lock();
        let nodes = self.nodes();
        let local = channels.keys().map(String::as_str);
        let remote = nodes.occupied().map(|(t, _, _)| t);
        let mut topics: Vec<&str> = local.chain(remote).collect();
        topics.sort_unstable();
        topics.dedup();
        (topics.into_iter())
            .filter_map(|topic| {
                let (app, name) = ringcast_pusher::app::split_topic(topic)?;
                let c = channels.get(topic);
                (app == app_id && name.starts_with(prefix)).then(|| Info {
                    name: name.to_owned(),
                    subscriptions: c.map_or(0, |c| c.subscriptions) + nodes.subscriptions(topic),
                    users: user_ids(c, &nodes, topic).len(),
                })
            })
            .collect()
    }

    /// Occupied channels of app `app_id` in this process (the metric).
    fn local_channels(&self, app_id: &str) -> usize {
        let channels = self.lock();
        (channels.keys())
            .filter(|t| ringcast_pusher::app::split_topic(t).is_some_and(|(a, _)| a == app_id))
            .count()
    }

    /// Appends the Pusher gauges (docs/metrics.md): open connections and occupied
    /// channels per app.
    pub fn render_metrics<'a>(
        &self,
        out: &mut String,
        app_ids: impl Iterator<Item = &'a str> + Clone,
    ) {
        use std::fmt::Write;
        self.connections.render_metrics(out, app_ids.clone());
        out.push_str(
            "# HELP ringcast_pusher_channels Occupied Pusher channels per app (this process).\n",
        );
        out.push_str("# TYPE ringcast_pusher_channels gauge\n");
        for id in app_ids {
            let _ = writeln!(
                out,
                "ringcast_pusher_channels{{app=\"{id}\"}} {}",
                self.local_channels(id)
            );
        }
    }
}

/// `shift` less what this node has itself (`Changes::on_this_node`): its presence members,
/// its signed-in users (under [`online_topic`]) and its subscriptions.
fn on_this_node(
    channels: &HashMap<String, Channel>,
    online: &SignIns,
    shift: Shift,
    hooks: bool,
) -> Changes {
    let has_user = |t: &str, u: &str| {
        channels.get(t).is_some_and(|c| c.roster.contains(u)) || online.contains(t, u)
    };
    Changes::on_this_node(shift, hooks, has_user, |t| channels.contains_key(t))
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
