//! This node's members in the cluster-wide presence hashes (`crate::presence` has the format):
//! joins and leaves, the refresh every TTL/3 (with a PING, so a hung Redis is noticed), the
//! cleanup at shutdown, and `presence` queries with their answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::Shard;
use crate::batch::Tag;
use crate::{BusEvent, ClusterError, presence};

impl Shard {
    /// A local client joined `room`: HSET its entry (and PEXPIRE the hash).
    pub(super) fn join(&mut self, room: Arc<str>, client: Arc<str>, user: Arc<str>) {
        let (field, value) = self.entry(&client, &user);
        self.room_mut(&room).members.insert(client, user);
        if self.batching() {
            let key = self.presence_key(&room);
            self.push_cmd(redis::Cmd::hset(&key, field, value), Tag::Other);
            self.push_cmd(pexpire(&key, self.cfg.ttl), Tag::Other);
        }
    }

    /// A local client left `room`: HDEL its entry.
    pub(super) fn leave(&mut self, room: Arc<str>, client: Arc<str>) {
        let Some(r) = self.rooms.get_mut(&*room) else {
            return;
        };
        if r.members.remove(&*client).is_none() {
            return;
        }
        if r.members.is_empty() && !r.subscribed {
            self.rooms.remove(&*room);
        }
        if self.batching() {
            let field = presence::field(&self.cfg.node, &client);
            self.push_cmd(
                redis::Cmd::hdel(self.presence_key(&room), field),
                Tag::Other,
            );
        }
    }

    /// Who is in `room` on every node: HGETALL, answered as `BusEvent::Presence` with `token`
    /// (at once `Unavailable` while the link is down).
    pub(super) fn query(&mut self, room: Arc<str>, token: u64) {
        if self.batching() {
            let cmd = redis::Cmd::hgetall(self.presence_key(&room));
            self.push_cmd(cmd, Tag::Query { room, token });
        } else {
            (self.emit)(BusEvent::Presence {
                room,
                token,
                members: Err(ClusterError::Unavailable),
            });
        }
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
        if self.link.is_up() {
            self.push_cmd(redis::cmd("PING"), Tag::Other);
            for cmd in self.presence_commands() {
                self.push_cmd(cmd, Tag::Other);
            }
        }
    }

    pub(super) fn answer_query(&mut self, room: Arc<str>, token: u64, value: Value) {
        let now = presence::now_ms();
        let members = match redis::from_redis_value::<HashMap<String, String>>(value) {
            Ok(map) => {
                let mut expired = Vec::new();
                let mut live = Vec::new();
                for (f, v) in &map {
                    match presence::parse(f, v, now) {
                        Some(m) => live.push(m),
                        None => expired.push(f.clone()),
                    }
                }
                if !expired.is_empty() {
                    // Best-effort cleanup of a dead node's leftovers.
                    let key = self.presence_key(&room);
                    self.push_cmd(redis::Cmd::hdel(key, expired), Tag::Other);
                }
                live.sort();
                Ok(live)
            }
            Err(e) => {
                tracing::warn!(shard = self.cfg.index, "cluster: bad presence reply: {e}");
                Err(ClusterError::Unavailable)
            }
        };
        (self.emit)(BusEvent::Presence {
            room,
            token,
            members,
        });
    }
}

fn pexpire(key: &str, ttl: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("PEXPIRE");
    cmd.arg(key).arg(ttl.as_millis() as u64);
    cmd
}
