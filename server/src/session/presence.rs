//! Presence in pub/sub mode (docs/pubsub.md#presence, docs/cluster.md#presence): the snapshot a `presence` request or a
//! `subscribe` with `"presence":true` gets, and the join/leave events members cause.
//!
//! Without a cluster a snapshot is this node's registry (`Hub::presence`), queued at once, and
//! `Sink::snapshot_taken` says which events it reflects. In a cluster the other nodes' members
//! live in Redis: a subscribe's snapshot is asked for ([`subscribe_snapshot`]), the subscriber
//! gets no event meanwhile (`Sink::snapshot_awaited`), and its place in the outbound queue is held
//! (`Sink::hold`), so the replay and live messages queued after `subscribed` wait behind it
//! (the order of docs/pubsub.md#order-after-a-subscribe). When the answer arrives ([`answer_snapshot`]) the snapshot is this node's
//! registry *then* plus the other nodes' members, put in the held place, before any later
//! event. Joins and leaves on other nodes come from the bus after that answer, each once
//! (`fanout::presence`: checked against what the snapshot listed).

use std::sync::Arc;

use ringcast_cluster::PresenceMember;
use ringcast_protocol::frame::OpCode;
use ringcast_pubsub::envelope::{self, Member};
use ringcast_pubsub::presence::{ChangeKind, ClientId, Snapshot};

use crate::bridge::{AskFor, PresenceAsk};
use crate::conn::outq::HoldId;
use crate::pubsub::Hub;
use crate::rooms::SharedRoom;
use crate::session::sink::Sink;

/// Queues the presence snapshot of `topic` (with the query's id, if any): this node's members
/// now, then `remote` (other nodes' members). Returns this node's part, so a presence
/// subscriber skips the events it reflects.
pub fn snapshot(
    sink: &mut Sink<'_>,
    topic: &str,
    id: Option<&str>,
    remote: &[PresenceMember],
) -> Snapshot {
    let (out, snap, _) = encode_snapshot(sink, topic, id, remote);
    sink.reply_frame(OpCode::Text, &out);
    snap
}

/// The `presence` envelope of `topic`: this node's members now, then `remote`; this node's
/// part; and whether it lists the members (within `--presence-max`) rather than a count.
fn encode_snapshot(
    sink: &Sink<'_>,
    topic: &str,
    id: Option<&str>,
    remote: &[PresenceMember],
) -> (Vec<u8>, Snapshot, bool) {
    let snap = sink.hub().presence.snapshot(topic);
    let count = snap.count + remote.len();
    let mut out = Vec::with_capacity(128);
    let mut listed = false;
    match &snap.members {
        Some(members) if count <= sink.config().presence_max => {
            let local = members.iter().map(|m| Member {
                client: m.client.as_str(),
                user: m.user.as_deref(),
            });
            let others = remote.iter().map(|m| Member {
                client: &m.client,
                user: (!m.user.is_empty()).then_some(m.user.as_str()),
            });
            envelope::presence(&mut out, topic, id, local.chain(others), count);
            listed = true;
        }
        _ => envelope::presence_count(&mut out, topic, id, count),
    }
    (out, snap, listed)
}

/// A subscribe's snapshot asked of the cluster: the ask's token, the place held for it in the
/// outbound queue, and the room.
pub struct Awaited {
    /// The token the answer comes back with (`Remote::Snapshot`).
    pub token: u64,
    /// Where the snapshot goes in the outbound queue.
    pub hold: HoldId,
    /// The subscribed room.
    pub room: Arc<SharedRoom>,
}

/// The snapshot for this connection's subscription to `room` with `"presence":true`: queued
/// now without a cluster (returns `None`); in a cluster asked for, its place held in the
/// outbound queue and events held back until [`answer_snapshot`]. A count-only snapshot showed
/// nobody, so its subscriber gets no join/leave at all (`ringcast_pubsub::presence`).
pub fn subscribe_snapshot(sink: &mut Sink<'_>, room: &Arc<SharedRoom>) -> Option<Awaited> {
    let Some(bus) = sink.cluster() else {
        let snap = snapshot(sink, &room.name, None, &[]);
        sink.snapshot_taken(room, snap.incarnation, snap.seq);
        if snap.members.is_none() {
            sink.snapshot_awaited(room);
        }
        return None;
    };
    sink.snapshot_awaited(room);
    let hold = sink.hold();
    let token = bus.ask_presence(PresenceAsk {
        conn: sink.address(),
        topic: room.name.clone(),
        purpose: AskFor::Subscribe { room_id: room.id },
    });
    Some(Awaited {
        token,
        hold,
        room: room.clone(),
    })
}

/// The other nodes' members for the snapshot `awaited`: puts the snapshot (this node's
/// registry now, then `remote`) in its held place; if the connection is still subscribed
/// (`subscribed`), releases the events the snapshot does not reflect, and, if it listed the
/// members, the other nodes' joins and leaves that change what it listed. An unsubscribe in
/// the meantime does not drop the snapshot: it was promised after `subscribed`, and the hold
/// keeps what followed waiting for it.
pub fn answer_snapshot(
    sink: &mut Sink<'_>,
    awaited: &Awaited,
    remote: &[PresenceMember],
    subscribed: bool,
) {
    let (out, snap, listed) = encode_snapshot(sink, &awaited.room.name, None, remote);
    sink.fill_frame(awaited.hold, OpCode::Text, &out);
    if subscribed {
        sink.snapshot_taken(&awaited.room, snap.incarnation, snap.seq);
        if !listed {
            // Count-only (locally or cluster-wide): no event about members it was not shown.
            sink.snapshot_awaited(&awaited.room);
        }
        if listed {
            let view = remote.iter().map(|m| m.client.as_str().into()).collect();
            sink.node_view(&awaited.room, view);
        }
    }
}

/// Records a join or leave of `client` in `room` and sends the event (if presence is within
/// `--presence-max`) to the room's presence subscribers through the fan-out.
pub fn announce(
    sink: &mut Sink<'_>,
    room: &Arc<SharedRoom>,
    client: &ClientId,
    user: Option<&str>,
    kind: ChangeKind,
) {
    if let Some(bus) = sink.cluster() {
        // Cluster-wide presence (docs/cluster.md#presence): the same member in the room's Redis hash.
        match kind {
            ChangeKind::Join => bus.presence_join(&room.name, client.as_str(), user.unwrap_or("")),
            ChangeKind::Leave => bus.presence_leave(&room.name, client.as_str()),
        }
    }
    if let Some(event) = presence_change(sink.hub(), &room.name, client, user, kind) {
        sink.event(room, &event.envelope, event.seq);
    }
}

/// A join or leave to fan out: its envelope and its topic incarnation and `seq`.
pub struct PresenceEvent {
    /// The encoded `join` / `leave` envelope.
    pub envelope: Vec<u8>,
    /// (incarnation, seq): receivers deliver events in this order, after their snapshot.
    pub seq: (u64, u64),
}

/// Records a join or leave of `client` in `topic`; returns the event to fan out, if any (none
/// for a repeated join, or for a member joining above `--presence-max`, never shown). A join records `user`, the token's `sub`
/// (`None` without auth; a leave ignores it).
pub fn presence_change(
    hub: &Hub,
    topic: &str,
    client: &ClientId,
    user: Option<&str>,
    kind: ChangeKind,
) -> Option<PresenceEvent> {
    let change = match kind {
        ChangeKind::Join => hub.presence.join(
            topic,
            ringcast_pubsub::presence::Member {
                client: client.clone(),
                user: user.map(Into::into),
            },
        ),
        ChangeKind::Leave => hub.presence.leave(topic, client),
    }?;
    let mut out = Vec::with_capacity(96);
    let member = Member {
        client: change.member.client.as_str(),
        user: change.member.user.as_deref(),
    };
    match kind {
        ChangeKind::Join => envelope::join(&mut out, topic, member),
        ChangeKind::Leave => envelope::leave(&mut out, topic, member),
    }
    Some(PresenceEvent {
        envelope: out,
        seq: (change.incarnation, change.seq),
    })
}
