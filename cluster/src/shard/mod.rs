//! One Redis shard and the rooms it holds: its loop, publishing with sequence numbers, command
//! results, and what each link transition means for them. Subscriptions and what arrives on
//! them are in [`receive`], this node's presence entries in [`members`], presence queries
//! (answered in push order) in [`queries`]: separate `impl Shard` blocks, one concept each.

mod cache;
mod members;
mod queries;
mod receive;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::{Client, RedisResult, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::batch::{Batch, Tag};
use crate::gaps::GapTracker;
use crate::handle::{Control, Counters, Publish, ShardTx};
use crate::link::{self, BACKOFF_START, Connected, Link, LinkEvent, LocalFuture};
use crate::streams::{MAX_STREAMS, OutStreams};
use crate::{BusEvent, wire};

/// The event sink shared by the shards of one bus thread.
pub(crate) type Emit = Rc<dyn Fn(BusEvent)>;

/// Publishes accepted into a batch before the shard stops taking more from its queue, so a slow
/// Redis makes the bounded queue fill (and drop, counted) instead of memory grow. In bytes, the
/// queue, the pending batch and the batch in flight share `BusConfig::max_queued_bytes`: each
/// publish holds its share from `try_publish` until Redis answers it (or it is dropped).
const MAX_PENDING_PUBLISHES: usize = 4096;
/// How long a shutdown waits for its presence cleanup to reach Redis.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Timings and names one shard needs.
pub(crate) struct ShardConfig {
    pub index: usize,
    /// The shard's Redis URL for logs, password hidden (`crate::redact`).
    pub url: String,
    pub client: Client,
    pub node: Arc<str>,
    pub prefix: String,
    pub ttl: Duration,
    pub reconnect_max: Duration,
    pub response_timeout: Duration,
    pub shards: usize,
}

/// One room on this shard.
struct Room {
    name: Arc<str>,
    subscribed: bool,
    members: HashMap<Arc<str>, Arc<str>>,
    gaps: GapTracker,
}

pub(crate) struct Shard {
    cfg: ShardConfig,
    channel_prefix: String,
    rooms: HashMap<Arc<str>, Room>,
    /// Each room's outbound numbering (stream id, next sequence number), bounded: idle rooms
    /// are forgotten and start a new stream (`crate::streams`).
    out: OutStreams,
    /// `out.len()` as last added to `Counters::sequence_rooms`.
    out_counted: usize,
    data: mpsc::Receiver<Publish>,
    control: mpsc::UnboundedReceiver<Control>,
    tx: Arc<ShardTx>,
    counters: Arc<Counters>,
    emit: Emit,
    link: Link,
    batch: Batch,
    queries: queries::Queries,
    closing: Option<Instant>,
    /// This process's nonce in its node-id claim (`members::claim_node_id`).
    instance: String,
    /// A claim was answered already (the first may find a dead predecessor's).
    claimed: bool,
    /// When a duplicate node id was last logged (at most once a minute).
    duplicate_logged: Option<Instant>,
}

impl Room {
    fn new(name: Arc<str>) -> Self {
        Self {
            name,
            subscribed: false,
            members: HashMap::new(),
            gaps: GapTracker::default(),
        }
    }
}

impl Shard {
    pub fn new(
        cfg: ShardConfig,
        data: mpsc::Receiver<Publish>,
        control: mpsc::UnboundedReceiver<Control>,
        tx: Arc<ShardTx>,
        counters: Arc<Counters>,
        emit: Emit,
    ) -> Self {
        Self {
            channel_prefix: format!("{}:room:", cfg.prefix),
            cfg,
            rooms: HashMap::new(),
            out: OutStreams::new(crate::config::random_u64(), MAX_STREAMS),
            out_counted: 0,
            data,
            control,
            tx,
            counters,
            emit,
            link: Link::down(Duration::ZERO, BACKOFF_START),
            batch: Batch::new(),
            queries: queries::Queries::default(),
            closing: None,
            instance: format!("{:016x}", crate::config::random_u64()),
            claimed: false,
            duplicate_logged: None,
        }
    }

    /// Runs until shutdown (or every handle dropped).
    pub async fn run(mut self) {
        let mut refresh = tokio::time::interval(self.cfg.ttl / 3);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Link::Up { conn, .. } = &self.link {
                self.batch.start(conn);
            }
            if let Some(deadline) = self.closing
                && (self.batch.is_idle() || !self.link.is_up() || Instant::now() >= deadline)
            {
                break;
            }
            let open = self.closing.is_none();
            let take_data = open && self.batch.pending_publishes() < MAX_PENDING_PUBLISHES;
            let grace = self.closing.unwrap_or_else(|| Instant::now() + CLOSE_GRACE);
            tokio::select! {
                op = self.control.recv(), if open => self.on_control(op.unwrap_or(Control::Shutdown)),
                Some(p) = self.data.recv(), if take_data => self.on_publish(p),
                // A query's marker came before its reply: pushes wait for it (`queries`).
                ev = self.link.next(), if !self.queries.holding_pushes() => self.on_link(ev),
                (tags, result) = self.batch.done() => self.on_batch_done(tags, result),
                _ = refresh.tick(), if open => self.refresh(),
                () = tokio::time::sleep_until(grace), if !open => {}
            }
            self.count_streams();
        }
        self.go_down("shutting down");
    }

    fn channel(&self, room: &str) -> String {
        format!("{}{room}", self.channel_prefix)
    }

    fn presence_key(&self, room: &str) -> String {
        format!("{}:presence:{room}", self.cfg.prefix)
    }

    /// Commands are batched while connected or connecting (then sent once up); while down,
    /// only local state changes and the reconnect re-applies it.
    fn batching(&self) -> bool {
        !self.link.is_down()
    }

    fn push_cmd(&mut self, cmd: redis::Cmd, tag: Tag) {
        self.batch.push(cmd, tag);
    }

    fn on_publish(&mut self, p: Publish) {
        // Messages dropped on a full queue skip sequence numbers, so receivers count them (a
        // room not published yet gets its skip after its first envelope: `streams`).
        if let Some(skipped) = self.tx.take_skipped() {
            for (room, n) in skipped {
                self.out.skipped(&room, n);
            }
        }
        let n = p.messages.len() as u64;
        let (stream, first) = self.next_seq(&p.room, n);
        if !self.link.is_up() {
            self.counters.release(p.bytes);
            Counters::add(&self.counters.dropped, n);
            self.out.lost(&p.room, stream, first.saturating_add(n));
            return;
        }
        let body = wire::encode(&self.cfg.node, stream, first, &p.messages);
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel(&p.room)).arg(body);
        let cache = p.cache.map(|(value, ttl)| (p.room.clone(), value, ttl));
        let tag = Tag::Publish {
            n,
            bytes: p.bytes,
            room: p.room,
            stream,
            first,
        };
        self.push_cmd(cmd, tag);
        if let Some((room, value, ttl)) = cache {
            self.cache_set(&room, &value, ttl);
        }
    }

    /// The stream and first sequence number of `n` messages about to be published in `room`.
    fn next_seq(&mut self, room: &Arc<str>, n: u64) -> (u64, u64) {
        self.out.assign(room, n)
    }

    /// Publishes `Counters::sequence_rooms` and forced evictions after a change.
    fn count_streams(&mut self) {
        let len = self.out.len();
        if len != self.out_counted {
            let rooms = &self.counters.sequence_rooms;
            rooms.fetch_add(len, Ordering::Relaxed);
            rooms.fetch_sub(self.out_counted, Ordering::Relaxed);
            self.out_counted = len;
            let forced = self.out.forced_evictions();
            self.counters
                .sequence_forced_evictions
                .fetch_max(forced, Ordering::Relaxed);
        }
    }

    fn on_control(&mut self, op: Control) {
        match op {
            Control::Subscribe(room) => self.subscribe(room),
            Control::Unsubscribe(room) => self.unsubscribe(room),
            Control::PresenceJoin { room, client, user } => self.presence_join(room, client, user),
            Control::PresenceLeave { room, client } => self.presence_leave(room, client),
            Control::Presence { room, token } => self.query(room, token),
            Control::CacheGet { room, token } => self.cache_get(room, token),
            Control::Shutdown => {
                self.closing = Some(Instant::now() + CLOSE_GRACE);
                self.remove_members();
            }
        }
    }

    /// The room's local state, created on first use.
    fn room_mut(&mut self, room: &Arc<str>) -> &mut Room {
        self.rooms
            .entry(room.clone())
            .or_insert_with(|| Room::new(room.clone()))
    }

    fn on_batch_done(&mut self, tags: Vec<Tag>, result: RedisResult<Vec<Value>>) {
        match result {
            Ok(values) => {
                for (tag, value) in tags.into_iter().zip(values) {
                    match tag {
                        Tag::Publish {
                            n,
                            bytes,
                            room,
                            stream,
                            first,
                        } if matches!(value, Value::ServerError(_)) => {
                            self.counters.release(bytes);
                            Counters::add(&self.counters.dropped, n);
                            self.out.lost(&room, stream, first.saturating_add(n));
                            tracing::warn!(
                                shard = self.cfg.index,
                                "cluster: Redis refused a PUBLISH: {value:?}"
                            );
                        }
                        Tag::Publish {
                            n,
                            bytes,
                            room,
                            stream,
                            first,
                        } => {
                            self.counters.release(bytes);
                            Counters::add(&self.counters.published, n);
                            self.out.accepted(&room, stream, first);
                        }
                        Tag::Query { room, token, .. } => self.answer_query(room, token, value),
                        Tag::Cache { room, token } => self.answer_cache(room, token, value),
                        Tag::Claim => self.on_claim(value),
                        Tag::Other => {
                            if let Value::ServerError(e) = value {
                                tracing::warn!(
                                    shard = self.cfg.index,
                                    "cluster: Redis refused a command: {e:?}"
                                );
                            }
                        }
                    }
                }
            }
            Err(e) => {
                self.fail_tags(tags);
                if e.is_unrecoverable_error() || e.is_timeout() || e.is_io_error() {
                    self.go_down(&format!("request failed: {e}"));
                } else {
                    tracing::warn!(shard = self.cfg.index, "cluster: Redis batch failed: {e}");
                }
            }
        }
    }

    /// Commands that will never be answered: publishes count as dropped, queries get `Unavailable`.
    fn fail_tags(&mut self, tags: Vec<Tag>) {
        for tag in tags {
            match tag {
                Tag::Publish {
                    n,
                    bytes,
                    room,
                    stream,
                    first,
                } => {
                    self.counters.release(bytes);
                    Counters::add(&self.counters.dropped, n);
                    self.out.lost(&room, stream, first.saturating_add(n));
                }
                Tag::Query { room, token, .. } => self.fail_query(room, token),
                Tag::Cache { room, token } => self.fail_cache(room, token),
                Tag::Claim | Tag::Other => {}
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Retry => {
                let backoff = self.link.backoff();
                self.link = Link::Connecting {
                    fut: self.connect(),
                    backoff,
                };
            }
            LinkEvent::Connected(Ok((conn, pushes))) => {
                self.link = Link::Up { conn, pushes };
                tracing::info!(shard = self.cfg.index, url = %self.cfg.url, "cluster: Redis link up");
                let up = self.counters.up_shards.fetch_add(1, Ordering::AcqRel) + 1;
                if up == self.cfg.shards {
                    (self.emit)(BusEvent::Up(true));
                }
            }
            LinkEvent::Connected(Err(e)) => {
                let backoff = self.link.backoff();
                if backoff == BACKOFF_START {
                    tracing::warn!(shard = self.cfg.index, url = %self.cfg.url, "cluster: cannot reach Redis ({e}), retrying");
                } else {
                    tracing::debug!(shard = self.cfg.index, "cluster: connect failed: {e}");
                }
                self.fail_pending();
                let next = (backoff * 2).min(self.cfg.reconnect_max);
                self.link = Link::down(backoff, next);
            }
            LinkEvent::Push(Some(push)) => self.on_burst(push),
            LinkEvent::Push(None) => self.go_down("connection closed"),
        }
    }

    /// Drops everything batched: publishes count as dropped, queries are answered `Unavailable`;
    /// subscriptions and presence are re-applied from local state on reconnect.
    fn fail_pending(&mut self) {
        let tags = self.batch.take_pending();
        self.fail_tags(tags);
    }

    fn go_down(&mut self, why: &str) {
        if self.link.is_up() {
            tracing::warn!(shard = self.cfg.index, url = %self.cfg.url, "cluster: Redis link down ({why})");
            // Sent for every link that goes down, even when another already is: each outage
            // breaks the continuity of the rooms that were still flowing.
            self.counters.up_shards.fetch_sub(1, Ordering::AcqRel);
            (self.emit)(BusEvent::Up(false));
        }
        if self.link.is_down() {
            return;
        }
        self.release_queries();
        self.fail_pending();
        self.link = Link::down(BACKOFF_START, BACKOFF_START);
    }

    /// Connects and, before the link counts as up, subscribes every room with local members and
    /// re-writes this node's presence (Redis may have restarted empty).
    fn connect(&self) -> LocalFuture<Connected> {
        let mut restore = redis::pipe();
        for (room, r) in &self.rooms {
            if r.subscribed {
                restore.cmd("SUBSCRIBE").arg(self.channel(room));
            }
        }
        for cmd in self.presence_commands() {
            restore.add_command(cmd);
        }
        link::connect(self.cfg.client.clone(), self.cfg.response_timeout, restore)
    }
}
