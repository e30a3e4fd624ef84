//! This node's members in the cluster-wide presence hashes (`crate::presence` has the format):
//! joins and leaves (published too, as `Join` / `Leave` right after their HSET / HDEL, when the
//! room is on the bus), the refresh every TTL/3 (with a PING, so a hung Redis is noticed) and
//! the cleanup at shutdown. Queries are in `queries`.
//!
//! **Duplicate node ids.** Two running nodes with one `node_id` would ignore each other's
//! envelopes (each takes them for its own) and overwrite each other's presence entries, so
//! each node claims its id in Redis: on every refresh shard 0 runs
//! `SET <prefix>:node:<id> <instance> PX <ttl> GET`, `instance` a random nonce of this process.
//! Finding another instance's nonce there on any claim but the first (the first may find the
//! claim of a predecessor that just died, until its TTL runs out) means another live process
//! wrote it since our previous claim: the `duplicate_node_id` counter counts it and an `error!`
//! says so, at most once a minute, on both nodes, within about two refresh periods (TTL/3
//! each). The node is not stopped: refusing would need a wait of one TTL at every start to
//! tell a dead predecessor from a live twin, and stopping the node already serving clients
//! would turn a configuration mistake into an outage; an operator sees the error and the
//! counter and fixes the ids.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::time::Instant;

use super::Shard;
use crate::batch::Tag;
use crate::handle::Counters;
use crate::presence;
use crate::wire::{self, BusMessage, MessageKind};

impl Shard {
    /// A local client joined `room`: HSET its entry (and PEXPIRE the hash), then publish the
    /// join if the room is on the bus.
    pub(super) fn presence_join(&mut self, room: Arc<str>, client: Arc<str>, user: Arc<str>) {
        let (field, value) = self.entry(&client, &user);
        let r = self.room_mut(&room);
        r.members.insert(client.clone(), user.clone());
        let on_bus = r.subscribed;
        if self.batching() {
            let key = self.presence_key(&room);
            self.push_cmd(redis::Cmd::hset(&key, field, value), Tag::Other);
            self.push_cmd(pexpire(&key, self.cfg.ttl), Tag::Other);
            if on_bus {
                self.publish_change(&room, MessageKind::Join, &client, &user);
            }
        }
    }

    /// A local client left `room`: HDEL its entry.
    pub(super) fn presence_leave(&mut self, room: Arc<str>, client: Arc<str>) {
        let Some(r) = self.rooms.get_mut(&*room) else {
            return;
        };
        if r.members.remove(&*client).is_none() {
            return;
        }
        let on_bus = r.subscribed;
        if r.members.is_empty() && !r.subscribed {
            self.rooms.remove(&*room);
        }
        if self.batching() {
            let field = presence::field(&self.cfg.node, &client);
            self.push_cmd(
                redis::Cmd::hdel(self.presence_key(&room), field),
                Tag::Other,
            );
            if on_bus {
                self.publish_change(&room, MessageKind::Leave, &client, "");
            }
        }
    }

    /// PUBLISHes a `Join` / `Leave` of `client` on `room`'s channel, numbered like messages (a
    /// lost one is a gap), right behind its HSET / HDEL in the same pipeline: Redis runs them
    /// in that order, which is what lets a receiver order it against its own queries.
    fn publish_change(&mut self, room: &Arc<str>, kind: MessageKind, client: &str, user: &str) {
        let (stream, first) = self.next_seq(room, 1);
        let change = BusMessage::new(kind, wire::encode_member(client, user));
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel(room))
            .arg(wire::encode(&self.cfg.node, stream, first, &[change]));
        self.push_cmd(cmd, Tag::Other);
    }

    /// At shutdown: removes every local entry (HDEL per room), if the link is up.
    pub(super) fn remove_members(&mut self) {
        if !self.link.is_up() {
            return;
        }
        let node = self.cfg.node.clone();
        let cleanup: Vec<_> = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .map(|(room, r)| {
                let fields: Vec<_> = r
                    .members
                    .keys()
                    .map(|c| presence::field(&node, c))
                    .collect();
                (self.presence_key(room), fields)
            })
            .collect();
        for (key, fields) in cleanup {
            self.push_cmd(redis::Cmd::hdel(key, fields), Tag::Other);
        }
    }

    /// A presence field and value for a local client, expiring one TTL from now.
    fn entry(&self, client: &str, user: &str) -> (String, String) {
        let expiry = presence::now_ms() + self.cfg.ttl.as_millis() as u64;
        (
            presence::field(&self.cfg.node, client),
            presence::value(expiry, user),
        )
    }

    /// Re-writes every local presence entry (HSET per room + PEXPIRE on the hash, so a room whose
    /// nodes all died disappears too).
    pub(super) fn presence_commands(&self) -> Vec<redis::Cmd> {
        let mut cmds = Vec::new();
        for (room, r) in &self.rooms {
            if r.members.is_empty() {
                continue;
            }
            let pairs: Vec<_> = r.members.iter().map(|(c, u)| self.entry(c, u)).collect();
            let key = self.presence_key(room);
            cmds.push(redis::Cmd::hset_multiple(&key, &pairs));
            cmds.push(pexpire(&key, self.cfg.ttl));
        }
        cmds
    }

    /// Every TTL/3: re-writes local presence, and PINGs so a hung Redis is noticed (after
    /// `response_timeout`) even when nothing else is sent.
    pub(super) fn refresh(&mut self) {
        // Rooms not published to for a whole period forget their numbering (`crate::streams`).
        self.out.sweep();
        if self.link.is_up() {
            self.claim_node_id();
            self.push_cmd(redis::cmd("PING"), Tag::Other);
            for cmd in self.presence_commands() {
                self.push_cmd(cmd, Tag::Other);
            }
        }
    }
}

impl Shard {
    /// Claims this node's id for one TTL (module doc); shard 0 only.
    fn claim_node_id(&mut self) {
        if self.cfg.index != 0 {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}:node:{}", self.cfg.prefix, self.cfg.node))
            .arg(&self.instance)
            .arg("PX")
            .arg(self.cfg.ttl.as_millis() as u64)
            .arg("GET");
        self.push_cmd(cmd, Tag::Claim);
    }

    /// The previous holder of our claim: another live instance unless it is the first claim.
    pub(super) fn on_claim(&mut self, previous: Value) {
        let first = !std::mem::replace(&mut self.claimed, true);
        let other = match &previous {
            Value::BulkString(b) => b.as_slice() != self.instance.as_bytes(),
            Value::ServerError(e) => {
                tracing::warn!(
                    shard = self.cfg.index,
                    "cluster: node id claim refused: {e:?}"
                );
                false
            }
            _ => false,
        };
        if !other || first {
            return;
        }
        Counters::add(&self.counters.duplicate_node_id, 1);
        let now = Instant::now();
        if self
            .duplicate_logged
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60))
        {
            self.duplicate_logged = Some(now);
            tracing::error!(
                node = %self.cfg.node,
                "cluster: another running node uses this node id: the two ignore each other's \
                 messages and overwrite each other's presence; give each node its own --node-id"
            );
        }
    }
}

fn pexpire(key: &str, ttl: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("PEXPIRE");
    cmd.arg(key).arg(ttl.as_millis() as u64);
    cmd
}
