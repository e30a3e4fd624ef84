//! One Redis connection and the rooms it holds: the link lifecycle (down → connecting → up),
//! pipelined batches of commands, pushes from Redis, and presence refresh.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Pipeline, PushInfo, PushKind, RedisResult, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::{Instant, Sleep};

use crate::gaps::{Continuity, GapTracker};
use crate::handle::{Control, Counters, Publish, ShardTx};
use crate::{BusEvent, ClusterError, presence, wire};

/// The event sink shared by the shards of one bus thread.
pub(crate) type Emit = Rc<dyn Fn(BusEvent)>;
type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;
type Connected = RedisResult<(MultiplexedConnection, UnboundedReceiver<PushInfo>)>;
/// A batch's tags with the replies (or the failure) of its commands.
type BatchDone = (Vec<Tag>, RedisResult<Vec<Value>>);

/// Publishes accepted into a batch before the shard stops taking more from its queue, so a slow
/// Redis makes the bounded queue fill (and drop, counted) instead of memory grow.
const MAX_PENDING_PUBLISHES: usize = 4096;
const BACKOFF_START: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a shutdown waits for its presence cleanup to reach Redis.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Timings and names one shard needs.
pub(crate) struct ShardConfig {
    pub index: usize,
    pub url: String,
    pub client: Client,
    pub node: Arc<str>,
    pub prefix: String,
    pub ttl: Duration,
    pub reconnect_max: Duration,
    pub response_timeout: Duration,
    pub shards: usize,
}

/// The connection's lifecycle; `Shard::transition`-style helpers below are the only writers.
enum Link {
    Down {
        retry: Pin<Box<Sleep>>,
        backoff: Duration,
    },
    Connecting {
        fut: LocalFuture<Connected>,
        backoff: Duration,
    },
    Up {
        conn: MultiplexedConnection,
        pushes: UnboundedReceiver<PushInfo>,
    },
}

/// What woke the shard.
enum LinkEvent {
    Retry,
    Connected(Connected),
    Push(Option<PushInfo>),
}

impl Link {
    async fn next(&mut self) -> LinkEvent {
        match self {
            Link::Down { retry, .. } => {
                retry.as_mut().await;
                LinkEvent::Retry
            }
            Link::Connecting { fut, .. } => LinkEvent::Connected(fut.as_mut().await),
            Link::Up { pushes, .. } => LinkEvent::Push(pushes.recv().await),
        }
    }
}

/// Why a command is in a batch: what to do with its reply (or its failure).
enum Tag {
    Publish(u64),
    Query { room: Arc<str>, token: u64 },
    Other,
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
    /// Next sequence number per room published to; kept for the node's life so a room's
    /// sequence never restarts (receivers would lose the ability to see gaps).
    seqs: HashMap<Arc<str>, u64>,
    /// Full-queue drops of rooms without a sequence yet (see `on_publish`).
    unplaced_skips: HashMap<Arc<str>, u64>,
    data: mpsc::Receiver<Publish>,
    control: mpsc::UnboundedReceiver<Control>,
    tx: Arc<ShardTx>,
    counters: Arc<Counters>,
    emit: Emit,
    link: Link,
    pipe: Pipeline,
    tags: Vec<Tag>,
    pending_publishes: usize,
    in_flight: Option<LocalFuture<BatchDone>>,
    closing: Option<Instant>,
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
        let link = Link::Down {
            retry: Box::pin(tokio::time::sleep(Duration::ZERO)),
            backoff: BACKOFF_START,
        };
        Self {
            channel_prefix: format!("{}:room:", cfg.prefix),
            cfg,
            rooms: HashMap::new(),
            seqs: HashMap::new(),
            unplaced_skips: HashMap::new(),
            data,
            control,
            tx,
            counters,
            emit,
            link,
            pipe: redis::pipe(),
            tags: Vec::new(),
            pending_publishes: 0,
            in_flight: None,
            closing: None,
        }
    }

    /// Runs until shutdown (or every handle dropped).
    pub async fn run(mut self) {
        let mut refresh = tokio::time::interval(self.cfg.ttl / 3);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.start_batch();
            if let Some(deadline) = self.closing {
                let idle = self.in_flight.is_none() && self.tags.is_empty();
                if idle || !self.is_up() || Instant::now() >= deadline {
                    break;
                }
            }
            let open = self.closing.is_none();
            let take_data = open && self.pending_publishes < MAX_PENDING_PUBLISHES;
            let grace = self.closing.unwrap_or_else(|| Instant::now() + CLOSE_GRACE);
            tokio::select! {
                op = self.control.recv(), if open => self.on_control(op.unwrap_or(Control::Shutdown)),
                Some(p) = self.data.recv(), if take_data => self.on_publish(p),
                ev = self.link.next() => self.on_link(ev),
                done = wait(&mut self.in_flight) => {
                    self.in_flight = None;
                    self.on_batch_done(done.0, done.1);
                }
                _ = refresh.tick(), if open => self.refresh(),
                () = tokio::time::sleep_until(grace), if !open => {}
            }
        }
        self.go_down("shutting down");
    }

    fn is_up(&self) -> bool {
        matches!(self.link, Link::Up { .. })
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
        !matches!(self.link, Link::Down { .. })
    }

    fn push_cmd(&mut self, cmd: redis::Cmd, tag: Tag) {
        if let Tag::Publish(_) = tag {
            self.pending_publishes += 1;
        }
        self.pipe.add_command(cmd);
        self.tags.push(tag);
    }

    fn on_publish(&mut self, p: Publish) {
        // Messages dropped on a full queue skip sequence numbers, so receivers count them. A
        // room not published yet gets its skip after its first envelope: a receiver's first
        // envelope is only a baseline and would hide a gap before it.
        if let Some(skipped) = self.tx.take_skipped() {
            for (room, n) in skipped {
                match self.seqs.get_mut(&*room) {
                    Some(seq) => *seq += n,
                    None => *self.unplaced_skips.entry(room).or_insert(0) += n,
                }
            }
        }
        let n = p.messages.len() as u64;
        let first = match self.seqs.get_mut(&*p.room) {
            Some(seq) => {
                let first = *seq;
                *seq += n;
                first
            }
            None => {
                let skip = self.unplaced_skips.remove(&*p.room).unwrap_or(0);
                self.seqs.insert(p.room.clone(), 1 + n + skip);
                1
            }
        };
        if !self.is_up() {
            Counters::add(&self.counters.dropped, n);
            return;
        }
        let body = wire::encode(&self.cfg.node, first, &p.messages);
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel(&p.room)).arg(body);
        self.push_cmd(cmd, Tag::Publish(n));
    }

    fn on_control(&mut self, op: Control) {
        match op {
            Control::Subscribe(room) => {
                let r = self
                    .rooms
                    .entry(room.clone())
                    .or_insert_with(|| Room::new(room.clone()));
                if !r.subscribed {
                    r.subscribed = true;
                    if self.batching() {
                        let mut cmd = redis::cmd("SUBSCRIBE");
                        cmd.arg(self.channel(&room));
                        self.push_cmd(cmd, Tag::Other);
                    }
                }
            }
            Control::Unsubscribe(room) => {
                let Some(r) = self.rooms.get_mut(&*room) else {
                    return;
                };
                if !r.subscribed {
                    return;
                }
                r.subscribed = false;
                r.gaps = GapTracker::default();
                if r.members.is_empty() {
                    self.rooms.remove(&*room);
                }
                if self.batching() {
                    let mut cmd = redis::cmd("UNSUBSCRIBE");
                    cmd.arg(self.channel(&room));
                    self.push_cmd(cmd, Tag::Other);
                }
            }
            Control::Join { room, client, user } => {
                let (field, value) = self.entry(&client, &user);
                self.rooms
                    .entry(room.clone())
                    .or_insert_with(|| Room::new(room.clone()))
                    .members
                    .insert(client, user);
                if self.batching() {
                    let key = self.presence_key(&room);
                    self.push_cmd(redis::Cmd::hset(&key, field, value), Tag::Other);
                    self.push_cmd(pexpire(&key, self.cfg.ttl), Tag::Other);
                }
            }
            Control::Leave { room, client } => {
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
            Control::Presence { room, token } => {
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
            Control::Shutdown => {
                self.closing = Some(Instant::now() + CLOSE_GRACE);
                if self.is_up() {
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
            }
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
    fn presence_commands(&self) -> Vec<redis::Cmd> {
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

    fn refresh(&mut self) {
        if self.is_up() {
            for cmd in self.presence_commands() {
                self.push_cmd(cmd, Tag::Other);
            }
        }
    }

    /// Sends the pending commands as one pipeline, if connected and none is in flight. One batch
    /// at a time on one connection keeps every room's PUBLISHes in sequence order.
    fn start_batch(&mut self) {
        if self.in_flight.is_some() || self.tags.is_empty() {
            return;
        }
        let Link::Up { conn, .. } = &self.link else {
            return;
        };
        let mut conn = conn.clone();
        let pipe = std::mem::replace(&mut self.pipe, redis::pipe());
        let tags = std::mem::take(&mut self.tags);
        self.pending_publishes = 0;
        self.in_flight = Some(Box::pin(async move {
            let r = conn.send_packed_commands(&pipe, 0, tags.len()).await;
            (tags, r)
        }));
    }

    fn on_batch_done(&mut self, tags: Vec<Tag>, result: RedisResult<Vec<Value>>) {
        match result {
            Ok(values) => {
                for (tag, value) in tags.into_iter().zip(values) {
                    match tag {
                        Tag::Publish(n) => Counters::add(&self.counters.published, n),
                        Tag::Query { room, token } => self.answer_query(room, token, value),
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
                Tag::Publish(n) => Counters::add(&self.counters.dropped, n),
                Tag::Query { room, token } => {
                    (self.emit)(BusEvent::Presence {
                        room,
                        token,
                        members: Err(ClusterError::Unavailable),
                    });
                }
                Tag::Other => {}
            }
        }
    }

    fn answer_query(&mut self, room: Arc<str>, token: u64, value: Value) {
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

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Retry => {
                let backoff = match &self.link {
                    Link::Down { backoff, .. } => *backoff,
                    _ => BACKOFF_START,
                };
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
                let backoff = match &self.link {
                    Link::Connecting { backoff, .. } => *backoff,
                    _ => BACKOFF_START,
                };
                if backoff == BACKOFF_START {
                    tracing::warn!(shard = self.cfg.index, url = %self.cfg.url, "cluster: cannot reach Redis ({e}), retrying");
                } else {
                    tracing::debug!(shard = self.cfg.index, "cluster: connect failed: {e}");
                }
                self.fail_pending();
                let next = (backoff * 2).min(self.cfg.reconnect_max);
                self.link = Link::Down {
                    retry: Box::pin(tokio::time::sleep(backoff)),
                    backoff: next,
                };
            }
            LinkEvent::Push(Some(push)) => self.on_push(push),
            LinkEvent::Push(None) => self.go_down("connection closed"),
        }
    }

    fn on_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                    (data.next(), data.next())
                else {
                    Counters::add(&self.counters.malformed, 1);
                    return;
                };
                self.on_message(&channel, Bytes::from(payload));
            }
            PushKind::Disconnection => self.go_down("connection lost"),
            _ => {}
        }
    }

    fn on_message(&mut self, channel: &[u8], payload: Bytes) {
        let Some(name) = channel.strip_prefix(self.channel_prefix.as_bytes()) else {
            return;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        // After an unsubscribe, envelopes already on the wire are discarded here.
        let Some(r) = self.rooms.get_mut(name) else {
            return;
        };
        let room = &r.name;
        if !r.subscribed {
            return;
        }
        let Ok(env) = wire::decode(&payload) else {
            Counters::add(&self.counters.malformed, 1);
            return;
        };
        if env.origin == &*self.cfg.node {
            return;
        }
        let n = env.messages.len() as u64;
        let (origin, verdict) = r.gaps.observe(env.origin, env.first_seq, n);
        if let Continuity::Gap { missed } = verdict {
            Counters::add(&self.counters.gaps, missed);
            tracing::warn!(room = %room, origin = %origin, missed, "cluster: bus gap");
            (self.emit)(BusEvent::Gap {
                room: room.clone(),
                origin: origin.clone(),
                missed,
            });
        }
        Counters::add(&self.counters.received, n);
        (self.emit)(BusEvent::Messages {
            room: room.clone(),
            origin,
            messages: env.messages,
        });
    }

    /// Drops everything batched: publishes count as dropped, queries are answered `Unavailable`;
    /// subscriptions and presence are re-applied from local state on reconnect.
    fn fail_pending(&mut self) {
        let tags = std::mem::take(&mut self.tags);
        self.pipe = redis::pipe();
        self.pending_publishes = 0;
        self.fail_tags(tags);
    }

    fn go_down(&mut self, why: &str) {
        if let Link::Up { .. } = self.link {
            tracing::warn!(shard = self.cfg.index, url = %self.cfg.url, "cluster: Redis link down ({why})");
            let before = self.counters.up_shards.fetch_sub(1, Ordering::AcqRel);
            if before == self.cfg.shards {
                (self.emit)(BusEvent::Up(false));
            }
        }
        if let Link::Down { .. } = self.link {
            return;
        }
        self.fail_pending();
        self.link = Link::Down {
            retry: Box::pin(tokio::time::sleep(BACKOFF_START)),
            backoff: BACKOFF_START,
        };
    }

    /// Connects and, before the link counts as up, subscribes every room with local members and
    /// re-writes this node's presence (Redis may have restarted empty).
    fn connect(&self) -> LocalFuture<Connected> {
        let client = self.cfg.client.clone();
        let response_timeout = self.cfg.response_timeout;
        let mut restore = redis::pipe();
        for (room, r) in &self.rooms {
            if r.subscribed {
                restore.cmd("SUBSCRIBE").arg(self.channel(room));
            }
        }
        for cmd in self.presence_commands() {
            restore.add_command(cmd);
        }
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let config = AsyncConnectionConfig::new()
                .set_push_sender(tx)
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(response_timeout));
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            if !restore.is_empty() {
                restore.exec_async(&mut conn).await?;
            }
            Ok((conn, rx))
        })
    }
}

fn pexpire(key: &str, ttl: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("PEXPIRE");
    cmd.arg(key).arg(ttl.as_millis() as u64);
    cmd
}

async fn wait<T>(f: &mut Option<LocalFuture<T>>) -> T {
    match f {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}
