//! From the cluster bus into the workers (docs/cluster.md, `crate::bridge`): [`Inbound`] turns each
//! `Messages` envelope into one frozen batch with no origin (nobody excluded) and runs it
//! through the one publish pipeline (`fanout::pipeline`, as source `Bus`: history append,
//! targets read after it), gathered per target worker until the bus's `Flush`, then sent in
//! order to every local worker with members as one `Remote::Deliver` and one MSG_RING wake,
//! exactly like batches from another worker; it runs on the bus thread. Presence answers leave
//! at once, after the burst gathered so far.
//!
//! History stays per node (docs/cluster.md): a node appends what it receives from the bus to its own
//! history (its offsets, its epoch), and a bus gap or a lost Redis link starts a new epoch.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, OnceLock};

use ringcast_cluster::{BusEvent, BusMessage, Bytes, ClusterError, MessageKind, PresenceMember};
use ringcast_protocol::frame::{MAX_HEADER_LEN, OpCode, encode_header};
use ringcast_pubsub::envelope::{self, Member};

use crate::bridge::{API_ORDERS_ROOM, AskFor, PUSHER_STATE_ROOM};
use crate::fanout::batch::{BatchBuilder, FrozenBatch};
use crate::fanout::handoff::PerWorker;
use crate::fanout::peers::{Peers, Remote};
use crate::fanout::pipeline::{self, Source, Topics};
use crate::pubsub::{nodes, orders};
use crate::rooms::stream::NodeChange;
use crate::shared::Shared;

/// Wakes the worker whose ring is the given fd (a `worker::sq::Waker`, owned by the bus thread).
pub type Wake = Box<dyn FnMut(RawFd) + Send>;

/// What the bus thread needs to reach the workers; exists once the workers run.
pub struct Inbound {
    shared: Arc<Shared>,
    peers: Peers,
    /// The bus thread takes it, and `super::pusher_nodes` once in a while (`Inbound::inject`);
    /// `Inbound` is shared through `InboundSlot`.
    out: Mutex<Out>,
}

/// The bus thread's way out to the workers: the waker, the burst being gathered (the batches
/// of the bus envelopes up to `BusEvent::Flush`, per target worker: each worker then gets one
/// `Remote::Deliver` and one wake per burst instead of one per envelope) and the history
/// handles of the topics it appended to.
struct Out {
    wake: Wake,
    burst: PerWorker,
    topics: Topics,
}

impl Inbound {
    /// Delivery through `peers` to the rooms of `shared`'s directory, targets woken with
    /// `wake`.
    pub fn new(shared: Arc<Shared>, peers: Peers, wake: Wake) -> Inbound {
        Inbound {
            shared,
            peers: peers.clone(),
            out: Mutex::new(Out {
                wake,
                burst: PerWorker::new(peers.len()),
                topics: Topics::default(),
            }),
        }
    }

    fn out(&self) -> std::sync::MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, event: BusEvent) {
        let history = self.shared.hub.history.as_ref();
        match event {
            BusEvent::Messages { room, messages, .. } if &*room == API_ORDERS_ROOM => {
                // Another node's server API orders (docs/api.md#across-the-cluster): applied
                // here as if made on this node; never a batch, never history.
                let hub = &self.shared.hub;
                for m in &messages {
                    let Some((order, ban_until)) = orders::decode(&m.payload) else {
                        if let Some(info) = nodes::decode(&m.payload) {
                            hub.nodes.heard(info);
                        }
                        continue;
                    };
                    if let Some(until) = ban_until {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs() as i64);
                        hub.bans.ban(&order.user, until, now);
                    }
                    hub.orders.post(order);
                }
            }
            BusEvent::Messages {
                room,
                origin,
                messages,
            } if &*room == PUSHER_STATE_ROOM => {
                for m in &messages {
                    let inject = |topic: &str, frames: &[Vec<u8>]| self.inject(topic, frames);
                    if let Some((topic, frame, worker, key)) =
                        pusher_state(&self.shared, &inject, &origin, &m.payload)
                    {
                        // An HTTP API event whose excluded connection is here: published
                        // from here, to every node, as if the call had come here.
                        let mut b = BatchBuilder::for_topic(Arc::from(topic)).for_api(false);
                        b.exclude_next(worker, key);
                        b.push_publish(None, frame.as_bytes());
                        let source = Source::Api {
                            skip_history: false,
                        };
                        self.run(b.freeze(None, false), source, &mut self.out());
                    }
                }
            }
            BusEvent::Messages { room, messages, .. } => {
                let topic: Arc<str> = Arc::from(&*room);
                let mut builder = BatchBuilder::for_topic(topic.clone());
                // Runs of messages kept in history and of `skip_history` publishes, in order.
                let mut runs: Vec<(BatchBuilder, Source)> = Vec::new();
                let mut source = Source::Bus;
                let mut events = None;
                for m in &messages {
                    let wanted = match m.kind {
                        MessageKind::JsonNoHistory => Source::BusNoHistory,
                        _ => Source::Bus,
                    };
                    if wanted != source && !m.kind.is_presence() && m.kind != MessageKind::Mark {
                        let full =
                            std::mem::replace(&mut builder, BatchBuilder::for_topic(topic.clone()));
                        if !full.is_empty() {
                            runs.push((full, source));
                        }
                        source = wanted;
                    }
                    match m.kind {
                        MessageKind::Binary => builder.push(None, OpCode::Binary, &m.payload),
                        // What another node sends is checked like what a client sends: text is
                        // UTF-8 and a publish's data one JSON value, or it reaches nobody (a
                        // faulty or hostile writer to Redis must not splice into envelopes).
                        MessageKind::Text if std::str::from_utf8(&m.payload).is_ok() => {
                            builder.push(None, OpCode::Text, &m.payload)
                        }
                        MessageKind::Json | MessageKind::JsonNoHistory
                            if envelope::is_json_value(&m.payload) =>
                        {
                            builder.push_publish(None, &m.payload)
                        }
                        MessageKind::Text | MessageKind::Json | MessageKind::JsonNoHistory => {
                            if let Some(bridge) = &self.shared.cluster {
                                bridge.count_malformed();
                            }
                        }
                        MessageKind::Join | MessageKind::Leave => {
                            // Joins and leaves on other nodes matter only to local presence
                            // subscribers: no history, no offsets; in bus order.
                            if let Some(local) = self.shared.directory.get(&room) {
                                let events =
                                    events.get_or_insert_with(|| BatchBuilder::node_events(local));
                                node_event(events, &room, m);
                            }
                        }
                        MessageKind::Mark => {}
                    }
                }
                let mut out = self.out();
                let out = &mut *out;
                if let Some(events) = events.filter(|e| !e.is_empty()) {
                    self.run(events.freeze(None, false), Source::Bus, out);
                }
                if !builder.is_empty() {
                    runs.push((builder, source));
                }
                for (builder, source) in runs {
                    // This node's history holds what it received (but `skip_history`
                    // publishes), with its own offsets, whether or not it has members: the bus
                    // thread is one more source of the one pipeline. The batch leaves with the
                    // rest of its burst.
                    self.run(builder.freeze(None, false), source, out);
                }
            }
            BusEvent::Flush => self.flush(&mut self.out()),
            BusEvent::Presence { token, members, .. } => self.answer(token, members),
            BusEvent::Cached { token, value, .. } => self.cached(token, value),
            // Messages were lost: nobody may recover across the hole (docs/cluster.md#history-and-epochs), so the topic
            // (every topic, when a link went down) starts a new epoch.
            BusEvent::Gap { room, missed, .. } if &*room == API_ORDERS_ROOM => {
                // Orders are not replayed (docs/api.md#across-the-cluster): counted.
                self.shared.hub.orders.count_lost(missed);
            }
            BusEvent::Gap { room, .. } => {
                if let Some(h) = history {
                    h.break_continuity(Some(&room));
                }
            }
            BusEvent::Up(false) => {
                if let Some(h) = history {
                    h.break_continuity(None);
                }
            }
            // The other nodes' Pusher state may have changed unseen.
            BusEvent::Up(true) => self.shared.pusher.resync(),
        }
    }
}

/// An HTTP API event to publish from this node without one of its connections: (topic,
/// frame, worker, slab key).
type ForwardedEvent = (String, String, usize, usize);

/// Applies a message of another node on the Pusher state room
/// (docs/pusher.md#across-a-cluster) and emits the webhook this node owes, if any (and
/// tells, through `inject`, what a change no delta announced means); an event this node
/// must publish comes back.
fn pusher_state(
    shared: &Shared,
    inject: &dyn Fn(&str, &[Vec<u8>]),
    origin: &str,
    payload: &[u8],
) -> Option<ForwardedEvent> {
    use ringcast_pusher::webhook::Event;

    use crate::pusher::nodes::{Delta, Owed};
    let Some(delta) = Delta::decode(payload) else {
        if let Some(bridge) = &shared.cluster {
            bridge.count_malformed();
        }
        return None;
    };
    let me = &shared.hub.node_id;
    if let Delta::Event {
        node,
        topic,
        frame,
        worker,
        key,
    } = &delta
        && node == me
        && ringcast_pusher::app::split_topic(topic).is_some()
    {
        let socket = (usize::try_from(*worker).ok()?, usize::try_from(*key).ok()?);
        return Some((topic.clone(), frame.clone(), socket.0, socket.1));
    }
    let (owed, changes) = shared.pusher.apply(origin, delta, me);
    if !changes.is_empty() {
        super::pusher_nodes::tell(shared, inject, changes);
    }
    let (topic, event) = match owed {
        None => return None,
        Some(Owed::Occupied(topic)) => (topic, None),
        Some(Owed::MemberAdded(topic, user)) => (topic, Some(user)),
    };
    let (app, channel) = ringcast_pusher::app::split_topic(&topic)?;
    let channel = channel.to_owned();
    let event = match event {
        None => Event::ChannelOccupied { channel },
        Some(user_id) => Event::MemberAdded { channel, user_id },
    };
    shared.webhooks.emit(app, event);
    None
}

/// Appends the `join` / `leave` envelope of bus message `m` (a `Join` / `Leave` of another
/// node's member in `topic`) to `events`; a malformed one is dropped.
fn node_event(events: &mut BatchBuilder, topic: &str, m: &BusMessage) {
    let Some((client, user)) = ringcast_cluster::decode_member(&m.payload) else {
        return;
    };
    let member = Member {
        client,
        user: (!user.is_empty()).then_some(user),
    };
    let join = m.kind == MessageKind::Join;
    let mut out = Vec::with_capacity(96);
    if join {
        envelope::join(&mut out, topic, member);
    } else {
        envelope::leave(&mut out, topic, member);
    }
    let change = NodeChange {
        client: client.into(),
        join,
    };
    events.push_node_event(change, &out);
}

impl Inbound {
    /// Runs one batch from the bus through the publish pipeline and adds it to the burst for
    /// the workers it names.
    fn run(&self, mut batch: FrozenBatch, source: Source, out: &mut Out) {
        let (workers, _) = pipeline::publish(&mut batch, source, &self.shared, &mut out.topics);
        if workers != 0 {
            out.burst.add(workers, &Arc::new(batch));
        }
    }

    /// Delivers `frames` (text messages) to this node's members of `topic` as if they came
    /// from another node (`Source::Bus`: this node's history, never published again), at
    /// once: what a departed node would have published (`super::pusher_nodes`).
    pub(super) fn inject(&self, topic: &str, frames: &[Vec<u8>]) {
        let mut b = BatchBuilder::for_topic(Arc::from(topic));
        for frame in frames {
            b.push(None, OpCode::Text, frame);
        }
        let mut out = self.out();
        self.run(b.freeze(None, false), Source::Bus, &mut out);
        self.flush(&mut out);
    }

    /// Sends each worker the batches gathered since the last flush (one hand-off, one wake).
    fn flush(&self, out: &mut Out) {
        let Out { wake, burst, .. } = out;
        burst.send(&self.peers, wake);
    }

    /// Hands the answer to presence question `token` to the asking connection's worker: the
    /// reply to a `presence` request, or the other nodes' members for a subscribe's snapshot.
    /// The burst gathered so far leaves first: the answer's place among the room's envelopes
    /// is what makes the joins and leaves after it exact (`fanout::presence`).
    fn answer(&self, token: u64, members: Result<Vec<PresenceMember>, ClusterError>) {
        let Some(bridge) = self.shared.cluster.as_ref() else {
            return;
        };
        let Some(ask) = bridge.take_ask(token) else {
            return;
        };
        let (worker, key, generation) = ask.conn;
        if worker >= self.peers.len() {
            return;
        }
        let msg = match ask.purpose {
            // Not a presence question (`Inbound::cached`).
            AskFor::PusherCache { .. } => return,
            AskFor::Request { id } => Remote::Reply {
                key,
                generation,
                bytes: self.reply(&ask.topic, id.as_deref(), members),
            },
            AskFor::Api => Remote::ApiPresence {
                key,
                generation,
                token,
                members: members.ok(),
            },
            AskFor::Subscribe { room_id } => {
                // This node's members come from its own registry, in step with its events;
                // Redis unreachable: the snapshot is this node's alone.
                let own = bridge.node_id();
                let remote = (members.unwrap_or_default().into_iter())
                    .filter(|m| m.node != own)
                    .collect();
                Remote::Snapshot {
                    key,
                    generation,
                    room_id,
                    token,
                    remote,
                }
            }
        };
        let mut out = self.out();
        self.flush(&mut out);
        if let Some(fd) = self.peers.send(worker, msg) {
            (out.wake)(fd);
        }
    }

    /// Hands Redis's answer to cache question `token` (`bridge::Bridge::ask_cache`) to the
    /// subscriber's worker: the event Redis holds (checked like any bus payload: a Pusher
    /// channel event), or `pusher:cache_miss` (and its webhook); Redis unreachable, this
    /// node's own entry if it has one (docs/pusher.md#cache-channels).
    fn cached(&self, token: u64, value: Result<Option<Bytes>, ClusterError>) {
        use crate::pusher::cache::is_cacheable;
        let Some(bridge) = self.shared.cluster.as_ref() else {
            return;
        };
        let Some(ask) = bridge.take_ask(token) else {
            return;
        };
        let AskFor::PusherCache { hold } = ask.purpose else {
            return;
        };
        let (worker, key, generation) = ask.conn;
        if worker >= self.peers.len() {
            return;
        }
        let found = match value {
            Ok(Some(v)) if std::str::from_utf8(&v).is_ok() && is_cacheable(&v) => Some(v.to_vec()),
            Ok(Some(_)) => {
                bridge.count_malformed();
                None
            }
            Ok(None) => None,
            Err(_) => {
                let now = std::time::Instant::now();
                let local = self.shared.pusher_cache.get(&ask.topic, now);
                local.map(|c| c.payload.to_vec())
            }
        };
        let payload = found.unwrap_or_else(|| {
            let (out, app, event) = crate::pusher::cache::miss(&ask.topic);
            self.shared.webhooks.emit(app, event);
            out
        });
        let mut out = self.out();
        if let Some(fd) = self
            .peers
            .send(worker, Remote::fill(key, generation, hold, payload))
        {
            (out.wake)(fd);
        }
    }

    /// The reply to a pub/sub `presence` request about `topic`: every node's members (Redis
    /// unreachable: this node's own, as without a cluster), as one text frame.
    fn reply(
        &self,
        topic: &str,
        id: Option<&str>,
        members: Result<Vec<PresenceMember>, ClusterError>,
    ) -> Vec<u8> {
        let max = self.shared.config.presence_max;
        let mut payload = Vec::with_capacity(128);
        match members {
            Ok(all) if all.len() <= max => {
                let list = all.iter().map(|m| Member {
                    client: &m.client,
                    user: (!m.user.is_empty()).then_some(m.user.as_str()),
                });
                envelope::presence(&mut payload, topic, id, list, all.len());
            }
            Ok(all) => envelope::presence_count(&mut payload, topic, id, all.len()),
            Err(_) => {
                let snap = self.shared.hub.presence.snapshot(topic);
                match &snap.members {
                    Some(members) => {
                        let list = members.iter().map(|m| Member {
                            client: m.client.as_str(),
                            user: m.user.as_deref(),
                        });
                        envelope::presence(&mut payload, topic, id, list, snap.count);
                    }
                    None => envelope::presence_count(&mut payload, topic, id, snap.count),
                }
            }
        }
        let mut bytes = Vec::with_capacity(payload.len() + 10);
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut head, OpCode::Text, true, false, payload.len() as u64);
        bytes.extend_from_slice(&head[..n]);
        bytes.extend_from_slice(&payload);
        bytes
    }
}

/// Where the bus thread finds the [`Inbound`] once the workers are running; events before that
/// (there are no subscriptions yet) are ignored.
#[derive(Clone, Default)]
pub struct InboundSlot(Arc<OnceLock<Inbound>>);

impl InboundSlot {
    /// Makes `inbound` the target of bus events.
    pub fn fill(&self, inbound: Inbound) {
        // What the other nodes' Pusher channels hold: asked once events can be handled (and
        // again a few times while the node starts, by `super::pusher_nodes`).
        let shared = inbound.shared.clone();
        let _ = self.0.set(inbound);
        shared.pusher.resync();
        if shared.cluster.is_some() && shared.config.pusher.is_some() {
            let slot = self.clone();
            let inject = move |topic: &str, frames: &[Vec<u8>]| {
                if let Some(inbound) = slot.0.get() {
                    inbound.inject(topic, frames);
                }
            };
            super::pusher_nodes::start(shared, Box::new(inject));
        }
    }

    /// Handles one bus event (on the bus thread).
    pub fn handle(&self, event: BusEvent) {
        if let Some(inbound) = self.0.get() {
            inbound.handle(event);
        }
    }
}
