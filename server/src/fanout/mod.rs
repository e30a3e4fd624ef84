//! Fan-out: per-turn room batches ([`batch`]), the one publish pipeline every source of
//! messages enters ([`pipeline`]), local delivery in order ([`order`], [`deliver`]), and the
//! hand-off of frozen batches to other workers ([`handoff`]) through crossbeam channels, the
//! target woken inside its ring by IORING_OP_MSG_RING.
//!
//! A batch need not come from a local socket: the cluster bus reader builds one per envelope
//! (`BatchBuilder::for_topic`), runs it through [`pipeline::publish`] and hands it to the
//! workers the pipeline names, exactly as a worker does with its own turn's batches.

pub mod ack;
pub mod batch;
pub mod bus;
pub mod deliver;
pub mod handoff;
pub mod inbox;
pub mod order;
pub mod peers;
pub mod pipeline;
pub mod presence;
pub mod pusher_nodes;
pub mod turn;

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::fanout::batch::FrozenBatch;
use crate::fanout::deliver::{DeliveryReport, Outboxes};
use crate::fanout::handoff::Outbox;
use crate::fanout::inbox::Inbox;
use crate::fanout::order::Order;
use crate::fanout::pipeline::{Source, Topics};
use crate::fanout::turn::TurnBatches;

pub use self::peers::{Peers, Remote};
use crate::rooms::local::LocalRooms;
use crate::shared::Shared;

/// A worker's fan-out state: this turn's room batches and the outbox to other workers.
pub struct Fanout {
    /// Messages published this turn, per room (sessions publish into it through their `Sink`).
    pub batches: TurnBatches,
    outbox: Outbox,
    order: Order,
    /// History handles of the topics this worker appended to.
    topics: Topics,
}

impl Fanout {
    /// Fan-out state sending to `peers`.
    pub fn new(peers: Peers) -> Fanout {
        Fanout {
            batches: TurnBatches::default(),
            outbox: Outbox::new(peers),
            order: Order::default(),
            topics: Topics::default(),
        }
    }

    /// Runs this turn's batches (worker `worker`) through the publish pipeline
    /// ([`pipeline::publish`]), queues their `published` replies, hands each to the other
    /// workers with members of its topic and delivers it to the local members in `rooms`.
    pub fn flush_batches(
        &mut self,
        worker: usize,
        shared: &Shared,
        rooms: &mut LocalRooms,
        out: &mut impl Outboxes,
    ) -> DeliveryReport {
        let (echo, limit) = (shared.config.echo, shared.config.max_backpressure);
        let mut report = DeliveryReport::default();
        for builder in self.batches.take() {
            let source = match builder.api() {
                Some(skip_history) => Source::Api { skip_history },
                None => Source::Clients,
            };
            // An API connection is no member: nothing of its own to skip. A Pusher sender
            // never gets its own event back, whatever `--echo` says (the protocol's rule).
            let own_skipped = !echo
                || builder
                    .topic()
                    .starts_with(ringcast_pusher::app::TOPIC_PREFIX);
            let mut batch = builder.freeze(Some(worker), own_skipped && source == Source::Clients);
            let (workers, acks) = pipeline::publish(&mut batch, source, shared, &mut self.topics);
            pipeline::ack(&batch, acks, out);
            if workers == 0 {
                continue;
            }
            let batch = Arc::new(batch);
            self.outbox.push(workers & !(1u64 << worker), &batch);
            (self.order).deliver(&batch, rooms, worker, limit, out, &mut report);
        }
        report
    }

    /// Delivers a batch another worker sent, in offset order.
    pub fn deliver_remote(
        &mut self,
        batch: &Arc<FrozenBatch>,
        rooms: &mut LocalRooms,
        worker: usize,
        limit: usize,
        out: &mut impl Outboxes,
        report: &mut DeliveryReport,
    ) {
        self.order.deliver(batch, rooms, worker, limit, out, report);
    }

    /// Sends what the outbox collected this turn; `wake` gets each target's ring fd.
    pub fn send(&mut self, wake: impl FnMut(RawFd)) {
        self.outbox.send(wake);
    }

    /// Every worker's inbox (index: worker id).
    pub fn inboxes(&self) -> Arc<[Inbox]> {
        self.outbox.peers().inboxes()
    }
}
