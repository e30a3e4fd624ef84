//! Presence queries, answered in push order. A query on a room this node receives is one
//! script ([`QUERY_SCRIPT`]: PUBLISH a marker on the room's channel, then HGETALL): Redis runs
//! it at one point T of its execution order, and the marker push reaches this connection
//! exactly there among the room's pushes (every envelope before it was published before T,
//! every one after it after T). The answer ([`BusEvent::Presence`]) is emitted at the marker's
//! place: when the marker comes first (Redis 7.0 writes it before the script's reply), the
//! shard takes no push until the reply is in; when the reply comes first (Redis 7.2+ defers a
//! client's own pushes past its reply), it waits for the marker. (`MULTI … EXEC` would do
//! too, but Redis 7.0 writes the marker inside the EXEC reply's array, where it is lost.) So every `Join` / `Leave` emitted after
//! an answer was published after the HGETALL ran: it can only repeat what the answer shows (its
//! HSET / HDEL ran before T, its PUBLISH after), never be missing from both.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Value;

use super::Shard;
use crate::batch::Tag;
use crate::handle::Counters;
use crate::presence::Entry;
use crate::wire::{self, BusMessage, MessageKind};
use crate::{BusEvent, ClusterError, PresenceMember, presence};

/// The marked query: KEYS[1] the presence hash, KEYS[2] the room's channel, ARGV[1] the
/// marker envelope. Atomic, so nothing runs between the marker and the read.
const QUERY_SCRIPT: &str =
    "redis.call('PUBLISH', KEYS[2], ARGV[1]) return redis.call('HGETALL', KEYS[1])";

/// A query's members, or why there are none.
type Members = Result<Vec<PresenceMember>, ClusterError>;

/// Where a marked query is.
enum Step {
    /// Sent: neither its reply nor its marker arrived.
    Sent,
    /// The reply came first: emitted at the marker.
    Answered(Arc<str>, Members),
    /// The marker came first: pushes wait for the reply.
    Marked,
}

/// Marked queries in flight.
#[derive(Default)]
pub(super) struct Queries {
    steps: HashMap<u64, Step>,
    /// Queries in `Step::Marked`: while any, the shard takes no push.
    marked: usize,
}

impl Queries {
    /// A marker came before its reply: no push may be handled until that reply.
    pub fn holding_pushes(&self) -> bool {
        self.marked > 0
    }
}

impl Shard {
    /// Who is in `room` on every node, answered as `BusEvent::Presence` with `token` (at once
    /// `Unavailable` while the link is down). Marked (module doc) when the room is received.
    pub(super) fn query(&mut self, room: Arc<str>, token: u64) {
        if !self.batching() {
            (self.emit)(BusEvent::Presence {
                room,
                token,
                members: Err(ClusterError::Unavailable),
            });
            return;
        }
        let key = self.presence_key(&room);
        let received = self.rooms.get(&*room).is_some_and(|r| r.subscribed);
        if !received {
            // No envelope of the room reaches this node: nothing to order the answer with.
            self.push_cmd(redis::Cmd::hgetall(key), Tag::Query { room, token });
            return;
        }
        let (stream, first) = self.next_seq(&room, 1);
        let mark = BusMessage::new(MessageKind::Mark, token.to_le_bytes().to_vec());
        let mut script = redis::cmd("EVAL");
        script
            .arg(QUERY_SCRIPT)
            .arg(2)
            .arg(key)
            .arg(self.channel(&room))
            .arg(wire::encode(&self.cfg.node, stream, first, &[mark]));
        self.push_cmd(script, Tag::Query { room, token });
        self.queries.steps.insert(token, Step::Sent);
    }

    /// This node's own marker for query `token` arrived (in push order).
    pub(super) fn on_mark(&mut self, token: u64) {
        match self.queries.steps.remove(&token) {
            Some(Step::Answered(room, members)) => self.emit_answer(room, token, members),
            Some(Step::Sent) => {
                self.queries.steps.insert(token, Step::Marked);
                self.queries.marked += 1;
            }
            // Answered already (an error, or the link went down meanwhile).
            Some(Step::Marked) | None => {}
        }
    }

    /// The reply to query `token` (the hash: a map, or a flat array from the script).
    pub(super) fn answer_query(&mut self, room: Arc<str>, token: u64, value: Value) {
        let members = self.parse_members(&room, value);
        match self.queries.steps.remove(&token) {
            Some(Step::Sent) if members.is_ok() && self.link.is_up() => {
                let step = Step::Answered(room, members);
                self.queries.steps.insert(token, step);
            }
            Some(Step::Marked) => {
                self.queries.marked -= 1;
                self.emit_answer(room, token, members);
            }
            // Unmarked, failed (its marker may never come) or the link went down since.
            _ => self.emit_answer(room, token, members),
        }
    }

    /// A query that will never be answered by Redis: answered `Unavailable`.
    pub(super) fn fail_query(&mut self, room: Arc<str>, token: u64) {
        if let Some(Step::Marked) = self.queries.steps.remove(&token) {
            self.queries.marked -= 1;
        }
        self.emit_answer(room, token, Err(ClusterError::Unavailable));
    }

    /// The link went down: no marker will come. Answers waiting for one leave now; the others
    /// leave with their reply (or its failure).
    pub(super) fn release_queries(&mut self) {
        self.queries.marked = 0;
        for (token, step) in std::mem::take(&mut self.queries.steps) {
            if let Step::Answered(room, members) = step {
                self.emit_answer(room, token, members);
            }
        }
    }

    fn emit_answer(&self, room: Arc<str>, token: u64, members: Members) {
        (self.emit)(BusEvent::Presence {
            room,
            token,
            members,
        });
    }

    /// The live members of an HGETALL reply; expired entries are deleted on the way, and so are
    /// bad ones (`presence::Entry::Bad`, counted): one bad entry never fails the answer.
    fn parse_members(&mut self, room: &str, value: Value) -> Members {
        let now = presence::now_ms();
        match redis::from_redis_value::<HashMap<Vec<u8>, Vec<u8>>>(value) {
            Ok(map) => {
                let mut dead = Vec::new();
                let mut live = Vec::new();
                for (f, v) in map {
                    match presence::parse(&f, &v, now) {
                        Entry::Live(m) => live.push(m),
                        Entry::Expired => dead.push(f),
                        Entry::Bad => {
                            Counters::add(&self.counters.bad_presence, 1);
                            dead.push(f);
                        }
                    }
                }
                if !dead.is_empty() {
                    // Best-effort cleanup of a dead node's leftovers (and of what no node wrote).
                    let key = self.presence_key(room);
                    self.push_cmd(redis::Cmd::hdel(key, dead), Tag::Other);
                }
                live.sort();
                Ok(live)
            }
            Err(e) => {
                tracing::warn!(shard = self.cfg.index, "cluster: bad presence reply: {e}");
                Err(ClusterError::Unavailable)
            }
        }
    }
}
