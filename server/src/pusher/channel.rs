//! [`Channel`]: one Pusher channel's state in this process's registry (`super::registry`),
//! and [`Info`], what a channel looks like from the HTTP API, with the distinct users of a
//! presence channel over every node ([`user_ids`]).
//!
//! Imports nothing of this crate (see `super`).

use ringcast_pusher::presence::Roster;

use super::nodes::Nodes;

/// One channel's state.
#[derive(Default)]
pub struct Channel {
    /// Connections subscribed, presence or not.
    pub subscriptions: u64,
    /// Presence members (empty for other kinds).
    pub roster: Roster,
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

/// The distinct user ids of a presence channel: this node's, then the other nodes'.
pub fn user_ids(local: Option<&Channel>, nodes: &Nodes, topic: &str) -> Vec<String> {
    let mut ids: Vec<String> = (local.into_iter())
        .flat_map(|c| c.roster.members().map(|m| m.user_id.to_owned()))
        .collect();
    let remote = nodes.users(topic).map(|(id, _)| id);
    ids.extend(
        remote
            .filter(|id| !local.is_some_and(|c| c.roster.contains(id)))
            .map(str::to_owned),
    );
    ids
}
