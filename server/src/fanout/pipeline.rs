//! The one publish pipeline. Every source of messages enters [`publish`] with a frozen batch
//! of one topic: a client's messages on this worker (`Fanout::flush_batches`), a batch from
//! another node (`fanout::bus::Inbound`, on the bus thread), and the server API's publishes
//! (docs/api.md#publish; a worker's turn batch of its own per topic). It runs the same steps in
//! the same order for each:
//!
//! 1. the cluster publish, for a batch of local clients or API requests (one PUBLISH per topic
//!    per turn; what came from the bus never goes back to it);
//! 2. offsets and the history append, with history on (one lock per topic per turn; not for
//!    an API publish with `skip_history`);
//! 3. the results, now that the offsets are known ([`Published`]): `published` for a client,
//!    for an API request its result in the answers held in its queue ([`AckTo`]);
//! 4. the targets, read after the append (history rule 2): the room's workers, the topic
//!    looked up again when it had no room or its room emptied (`FrozenBatch::resolve`).
//!
//! The caller then hands the batch to those workers (`fanout::handoff::PerWorker`) and, on a
//! worker, delivers it to its own members in offset order (`fanout::order`). A publish to a
//! topic without members is an ordinary batch whose room is `None`: it is appended,
//! published to the cluster and acked like any other, and reaches whoever subscribed before
//! step 4.

use std::collections::HashMap;
use std::sync::Arc;

use ringcast_cluster::{BusMessage, Bytes, MessageKind};
use ringcast_protocol::frame::OpCode;
use ringcast_pubsub::envelope;
use ringcast_pubsub::history::{SharedSpan, TopicHandle};

use crate::fanout::ack::{Ack, AckTo};
use crate::fanout::batch::FrozenBatch;
use crate::fanout::deliver::Outboxes;
use crate::rooms::local::Class;
use crate::shared::Shared;

/// Where a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Clients of this worker (a turn's messages).
    Clients,
    /// The cluster bus: another node's clients.
    Bus,
    /// The cluster bus: another node's server API publishes made with `skip_history`
    /// (`MessageKind::JsonNoHistory`), kept out of this node's history too.
    BusNoHistory,
    /// Server API requests on this worker (docs/api.md#publish).
    Api {
        /// Not appended to history: no offset, and the result says none.
        skip_history: bool,
    },
}

/// History handles a source appended to, by topic (a bounded cache: past
/// [`MAX_TOPIC_HANDLES`] it starts afresh; a handle survives eviction of its topic).
#[derive(Default)]
pub struct Topics {
    handles: HashMap<Arc<str>, TopicHandle<SharedSpan>>,
}

/// Topic handles a source keeps before it starts afresh.
const MAX_TOPIC_HANDLES: usize = 4096;

/// The results of a batch: (offset with history on, sender's slab key on the batch's origin
/// worker, who waits for it).
pub type Published = Vec<Ack>;

/// Runs steps 1–4 on `batch` from `source`; returns the bitmask of workers with members of
/// its topic (the origin worker's bit included) and the `published` replies to queue.
pub fn publish(
    batch: &mut FrozenBatch,
    source: Source,
    shared: &Shared,
    topics: &mut Topics,
) -> (u64, Published) {
    if batch.is_events() {
        // Presence events: this process's members only, no offsets, never on the bus (the
        // cluster's own presence changes travel as Join/Leave).
        return (batch.resolve(&shared.directory), Vec::new());
    }
    let no_history = matches!(
        source,
        Source::Api { skip_history: true } | Source::BusNoHistory
    );
    // A Pusher cache channel's last event (docs/pusher.md#cache-channels), whatever its
    // source: remembered here, the one place every event passes.
    let cached = last_cacheable(batch);
    if !matches!(source, Source::Bus | Source::BusNoHistory)
        && let Some(bridge) = &shared.cluster
    {
        let ttl = shared.pusher_cache.ttl();
        let cache = cached.map(|i| (Bytes::copy_from_slice(batch.payload(i)), ttl));
        bridge.publish(batch.topic().clone(), outbound(batch, no_history), cache);
    }
    if !no_history {
        topics.append(batch, shared);
    }
    let acks = batch.take_acks();
    let workers = batch.resolve(&shared.directory);
    if let Some(i) = cached {
        // With the room the event was delivered into: a subscriber of that same room knows
        // the entry is current even in a cluster (`session::pusher::cache`).
        let room = batch.room().map(|r| r.id);
        let now = std::time::Instant::now();
        (shared.pusher_cache).put(batch.topic(), batch.payload(i), room, now);
    }
    (workers, acks)
}

/// The index of the last event of `batch` a Pusher cache channel remembers, if its topic is
/// one's (`pusher::cache`): a channel event, not `member_added` / `member_removed`.
fn last_cacheable(batch: &FrozenBatch) -> Option<usize> {
    if !crate::pusher::cache::is_cache_topic(batch.topic()) {
        return None;
    }
    (0..batch.len()).rev().find(|&i| {
        batch.messages()[i].kind == OpCode::Text
            && crate::pusher::cache::is_cacheable(batch.payload(i))
    })
}

/// Queues each result in its sender's queue on this worker: a client's `published`, or the
/// bytes that fill the place an API answer holds for it.
pub fn ack(batch: &FrozenBatch, acks: Published, out: &mut impl Outboxes) {
    let topic = &**batch.topic();
    let epoch = batch.seq().map(|s| &**s.0);
    for (offset, sender, to) in acks {
        match to {
            AckTo::Client(id) => {
                let mut reply = Vec::with_capacity(64 + id.len());
                envelope::published(&mut reply, topic, &id, offset);
                out.outbox(sender).push_frame(OpCode::Text, &reply);
            }
            AckTo::Api { answers, slot } => {
                if let Some((hold, bytes)) = answers.result(slot, epoch.zip(offset)) {
                    out.outbox(sender).fill(hold, bytes);
                }
            }
        }
    }
}

impl Topics {
    /// With history on: gives the batch's messages their offsets and stores their JSON form
    /// (built once, shared with every subscriber).
    fn append(&mut self, batch: &mut FrozenBatch, shared: &Shared) {
        let Some(history) = &shared.hub.history else {
            return;
        };
        let topic = batch.topic().clone();
        if self.handles.len() >= MAX_TOPIC_HANDLES && !self.handles.contains_key(&topic) {
            self.handles.clear();
        }
        let handle = (self.handles)
            .entry(topic)
            .or_insert_with_key(|name| history.topic(name));
        let n = batch.len();
        handle.append_with(n, shared.hub.now(), |epoch, first| {
            batch.set_seq(epoch, first);
            // A batch of messages always has its JSON form (events never reach the history).
            let Some((buf, spans)) = batch.json() else {
                return Vec::new();
            };
            spans
                .iter()
                .filter_map(|&(s, e)| SharedSpan::new(buf.clone(), s as usize..e as usize))
                .collect()
        });
    }
}

/// One turn's messages of `batch` as bus messages, without copying a payload; publishes kept
/// out of history (`no_history`) are marked so for the other nodes.
fn outbound(batch: &FrozenBatch, no_history: bool) -> Vec<BusMessage> {
    // One reference-counted view of the batch's buffer; each payload is a slice of it.
    let raw = Bytes::from_owner(batch.form(Class::Raw).clone());
    batch
        .messages()
        .iter()
        .map(|m| {
            let kind = match (m.publish, m.kind) {
                (true, _) if no_history => MessageKind::JsonNoHistory,
                (true, _) => MessageKind::Json,
                (false, OpCode::Binary) => MessageKind::Binary,
                (false, _) => MessageKind::Text,
            };
            let payload = raw.slice(m.payload_start as usize..m.frame.1 as usize);
            BusMessage::new(kind, payload)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::Config;
    use crate::fanout::batch::BatchBuilder;
    use crate::fanout::turn::TurnBatches;

    fn shared(args: &[&str]) -> Shared {
        let mut all = vec!["ringcast"];
        all.extend_from_slice(args);
        Shared::new(Config::parse_from(all), 2)
    }

    /// `n` publishes from sender 7 to `topic` (no room yet), with ids `"p0"`… when `ack`.
    fn publishes(topic: &str, n: usize, ack: bool) -> BatchBuilder {
        let mut turn = TurnBatches::default();
        let topic: Arc<str> = Arc::from(topic);
        for i in 0..n {
            let id = format!("\"p{i}\"");
            let id = ack.then_some(id.as_str());
            turn.push_publish(&topic, None, 7, format!("{i}").as_bytes(), id);
        }
        turn.take().pop().expect("one batch")
    }

    #[test]
    fn every_source_takes_offsets_from_one_history_and_only_clients_get_acks() {
        let shared = shared(&["--history-size", "10"]);
        let mut topics = Topics::default();
        let mut local = publishes("t", 2, true).freeze(Some(0), true);
        let (workers, acks) = publish(&mut local, Source::Clients, &shared, &mut topics);
        assert_eq!(workers, 0, "nobody is subscribed");
        assert_eq!(local.seq().map(|s| (s.1, s.2)), Some((1, 2)));
        let acked: Vec<_> = (acks.iter())
            .map(|a| match &a.2 {
                AckTo::Client(id) => (a.0, a.1, &**id),
                AckTo::Api { .. } => (a.0, a.1, "api"),
            })
            .collect();
        assert_eq!(acked, vec![(Some(1), 7, "\"p0\""), (Some(2), 7, "\"p1\"")]);
        // The bus thread is one more source of the same topic: offsets continue, no acks.
        let mut bus_topics = Topics::default();
        let mut remote = publishes("t", 3, false).freeze(None, false);
        let (_, acks) = publish(&mut remote, Source::Bus, &shared, &mut bus_topics);
        assert!(acks.is_empty());
        assert_eq!(remote.seq().map(|s| (s.1, s.2)), Some((3, 5)));
    }

    #[test]
    fn a_publish_to_a_topic_without_members_reaches_whoever_joined_before_the_targets_are_read() {
        for args in [&[][..], &["--history-size", "10"][..]] {
            let shared = shared(args);
            let mut topics = Topics::default();
            let mut batch = publishes("t", 1, true).freeze(Some(0), true);
            assert!(batch.room().is_none());
            // A client on worker 1 subscribes after the publish, before the flush.
            let room = shared.directory.join("t", 1).expect("room");
            let (workers, acks) = publish(&mut batch, Source::Clients, &shared, &mut topics);
            assert_eq!(workers, 0b10, "{args:?}");
            assert_eq!(batch.room().map(|r| r.id), Some(room.id));
            assert_eq!(acks.len(), 1, "acked with or without history: {args:?}");
        }
    }

    #[test]
    fn a_batch_whose_room_emptied_is_resolved_to_the_topic_s_new_room() {
        let shared = shared(&[]);
        let mut topics = Topics::default();
        let old = shared.directory.join("t", 0).expect("room");
        let mut batch = {
            let mut b = BatchBuilder::new(old.clone());
            b.push(Some(3), OpCode::Text, b"m");
            b.freeze(Some(0), true)
        };
        shared.directory.leave(&old, 0);
        let new = shared.directory.join("t", 1).expect("room");
        let (workers, _) = publish(&mut batch, Source::Clients, &shared, &mut topics);
        assert_eq!((workers, batch.room().map(|r| r.id)), (0b10, Some(new.id)));
    }
}
