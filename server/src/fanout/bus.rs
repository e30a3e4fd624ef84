//! Batches and the cluster bus (docs/cluster.md, `crate::bridge`).
//!
//! Out: [`outbound`] turns a frozen batch of local messages into bus messages (kind + payload,
//! each a slice of the batch's one buffer). In: [`Inbound`] turns each `Messages` envelope into
//! one frozen batch with no origin (nobody excluded), gathered per target worker in a
//! [`Burst`] until the bus's `Flush`, then sent in order to every local worker with members in
//! the room as one `Remote::Deliver` and one MSG_RING wake, exactly like batches from another
//! worker; it runs on the bus thread. Presence answers leave at once.
//!
//! History stays per node (docs/cluster.md): a node appends what it receives from the bus to its own
//! history (its offsets, its epoch), and a bus gap or a lost Redis link starts a new epoch.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use ringcast_cluster::{BusEvent, BusMessage, Bytes, ClusterError, MessageKind, PresenceMember};
use ringcast_protocol::frame::{MAX_HEADER_LEN, OpCode, encode_header};
use ringcast_pubsub::envelope::{self, Member};
use ringcast_pubsub::history::SharedSpan;

use crate::bridge::AskFor;
use crate::fanout::batch::{BatchBuilder, FrozenBatch, RemoteChange};
use crate::fanout::{Peers, Remote};
use crate::rooms::local::Class;
use crate::shared::Shared;

/// One turn's messages of `batch` as bus messages, without copying a payload.
pub fn outbound(batch: &FrozenBatch) -> Vec<BusMessage> {
    // One reference-counted view of the batch's buffer; each payload is a slice of it.
    let raw = Bytes::from_owner(batch.form(Class::Raw).clone());
    batch
        .messages()
        .iter()
        .map(|m| {
            let kind = match (m.publish, m.kind) {
                (true, _) => MessageKind::Json,
                (false, OpCode::Binary) => MessageKind::Binary,
                (false, _) => MessageKind::Text,
            };
            let payload = raw.slice(m.payload_start as usize..m.frame.1 as usize);
            BusMessage::new(kind, payload)
        })
        .collect()
}

/// Sender key of messages from the bus: no local connection has it (and batches from the bus
/// have no origin worker, so nobody is excluded anyway).
const BUS_SENDER: usize = usize::MAX;

/// Wakes the worker whose ring is the given fd (a `worker::sq::Waker`, owned by the bus thread).
pub type Wake = Box<dyn FnMut(RawFd) + Send>;

/// What the bus thread needs to reach the workers; exists once the workers run.
pub struct Inbound {
    shared: Arc<Shared>,
    peers: Peers,
    /// Only the bus thread takes it (uncontended); `Inbound` is shared through `InboundSlot`.
    out: Mutex<Out>,
}

/// The bus thread's way out to the workers: the waker and the burst being gathered.
struct Out {
    wake: Wake,
    burst: Burst,
}

/// The batches of one burst of bus envelopes (up to `BusEvent::Flush`), per target worker, in
/// arrival order: each worker then gets one `Remote::Deliver` and one wake per burst instead
/// of one per envelope.
#[derive(Default)]
pub struct Burst {
    per_worker: Vec<Vec<Arc<FrozenBatch>>>,
}

impl Burst {
    /// Adds `batch` for every worker in `workers` (a room's bitmask) below `n`.
    pub fn add(&mut self, mut workers: u64, n: usize, batch: &Arc<FrozenBatch>) {
        if self.per_worker.len() < n {
            self.per_worker.resize_with(n, Vec::new);
        }
        while workers != 0 {
            let to = workers.trailing_zeros() as usize;
            workers &= workers - 1;
            if let Some(list) = self.per_worker.get_mut(to) {
                list.push(batch.clone());
            }
        }
    }

    /// Takes every worker's batches, oldest first: (worker, batches) for each worker that has
    /// some.
    pub fn take(&mut self) -> Vec<(usize, Vec<Arc<FrozenBatch>>)> {
        (self.per_worker.iter_mut().enumerate())
            .filter(|(_, list)| !list.is_empty())
            .map(|(to, list)| (to, std::mem::take(list)))
            .collect()
    }
}

impl Inbound {
    /// Delivery through `peers` to the rooms of `shared`'s directory, targets woken with
    /// `wake`.
    pub fn new(shared: Arc<Shared>, peers: Peers, wake: Wake) -> Inbound {
        Inbound {
            shared,
            peers,
            out: Mutex::new(Out {
                wake,
                burst: Burst::default(),
            }),
        }
    }

    fn out(&self) -> std::sync::MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, event: BusEvent) {
        let history = self.shared.hub.history.as_ref();
        match event {
            BusEvent::Messages { room, messages, .. } => {
                // No member left since the envelope was sent: nothing to do.
                let Some(shared_room) = self.shared.directory.get(&room) else {
                    return;
                };
                let mut builder = BatchBuilder::new(shared_room.clone());
                let mut events = BatchBuilder::events(shared_room.clone());
                for m in &messages {
                    match m.kind {
                        MessageKind::Binary => builder.push(BUS_SENDER, OpCode::Binary, &m.payload),
                        MessageKind::Text => builder.push(BUS_SENDER, OpCode::Text, &m.payload),
                        MessageKind::Json => builder.push_publish(BUS_SENDER, &m.payload),
                        MessageKind::Join | MessageKind::Leave => {
                            remote_event(&mut events, &room, m)
                        }
                        MessageKind::Mark => {}
                    }
                }
                let n = self.peers.len();
                if !events.is_empty() {
                    // Joins and leaves on other nodes: no history, no offsets; in bus order.
                    let workers = shared_room.workers.load(Ordering::Acquire);
                    let batch = Arc::new(events.freeze(None, false));
                    self.out().burst.add(workers, n, &batch);
                }
                if builder.is_empty() {
                    return;
                }
                let mut batch = builder.freeze(None, false);
                if let Some(history) = history {
                    // This node's history holds what it received, with its own offsets: the
                    // bus thread appends like one more worker (workers order by offset).
                    let n = batch.len();
                    (history.topic(&room)).append_with(n, self.shared.hub.now(), |epoch, first| {
                        batch.set_seq(epoch, first);
                        let (buf, spans) = batch.json();
                        spans
                            .iter()
                            .filter_map(|&(s, e)| {
                                SharedSpan::new(buf.clone(), s as usize..e as usize)
                            })
                            .collect()
                    });
                }
                // Targets are read after the append (history protocol rule 2); the batch
                // leaves with the rest of its burst.
                let workers = shared_room.workers.load(Ordering::Acquire);
                self.out().burst.add(workers, n, &Arc::new(batch));
            }
            BusEvent::Flush => self.flush(&mut self.out()),
            BusEvent::Presence { token, members, .. } => self.answer(token, members),
            // Messages were lost: nobody may recover across the hole (docs/cluster.md#history-and-epochs), so the topic
            // (every topic, when a link went down) starts a new epoch.
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
            BusEvent::Up(true) => {}
        }
    }
}

/// Appends the `join` / `leave` envelope of bus message `m` (a `Join` / `Leave` of another
/// node's member in `topic`) to `events`; a malformed one is dropped.
fn remote_event(events: &mut BatchBuilder, topic: &str, m: &BusMessage) {
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
    let change = RemoteChange {
        client: client.into(),
        join,
    };
    events.push_remote_event(change, &out);
}

impl Inbound {
    /// Sends each worker the batches gathered since the last flush (one hand-off, one wake).
    fn flush(&self, out: &mut Out) {
        for (to, batches) in out.burst.take() {
            if let Some(fd) = self.peers.send(to, Remote::Deliver(batches)) {
                (out.wake)(fd);
            }
        }
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
            AskFor::Request { id } => Remote::Reply {
                key,
                generation,
                bytes: self.reply(&ask.topic, id.as_deref(), members),
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
        let _ = self.0.set(inbound);
    }

    /// Handles one bus event (on the bus thread).
    pub fn handle(&self, event: BusEvent) {
        if let Some(inbound) = self.0.get() {
            inbound.handle(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::rooms::SharedRoom;

    fn batch(id: u64) -> Arc<FrozenBatch> {
        let room = Arc::new(SharedRoom {
            id,
            name: Arc::from(format!("r{id}")),
            workers: AtomicU64::new(0),
        });
        let mut b = BatchBuilder::new(room);
        b.push(BUS_SENDER, OpCode::Text, b"m");
        Arc::new(b.freeze(None, false))
    }

    #[test]
    fn a_burst_gives_each_worker_its_batches_in_arrival_order_once() {
        let mut burst = Burst::default();
        let (a, b, c) = (batch(1), batch(2), batch(3));
        burst.add(0b011, 3, &a);
        burst.add(0b110, 3, &b);
        burst.add(0b1001, 3, &c); // worker 3 does not exist
        burst.add(0b001, 3, &b);
        let ids = |list: &[Arc<FrozenBatch>]| list.iter().map(|b| b.room().id).collect::<Vec<_>>();
        let taken: Vec<_> = (burst.take().into_iter())
            .map(|(to, list)| (to, ids(&list)))
            .collect();
        assert_eq!(
            taken,
            vec![(0, vec![1, 3, 2]), (1, vec![1, 2]), (2, vec![2])]
        );
        assert!(burst.take().is_empty(), "a flushed burst is empty");
    }
}
