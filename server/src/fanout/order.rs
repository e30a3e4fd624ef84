//! Delivery in offset order (history protocol rule 4, `ringcast_pubsub::history`): with history
//! on, the batches of one topic reach a worker through different channels (its own flush, each
//! other worker's), so offsets 3..4 may arrive before 1..2. Each local room remembers the next
//! offset it expects (`rooms::stream::RoomStream`, set from a history query when its first
//! member joins); a batch that arrives early waits here until the gap fills.

use std::collections::HashMap;
use std::sync::Arc;

use crate::fanout::batch::FrozenBatch;
use crate::fanout::deliver::{DeliveryReport, Outboxes, deliver_to};
use crate::fanout::presence::PresenceOrder;
use crate::rooms::local::LocalRooms;
use crate::rooms::stream::Place;

/// Early batches a worker holds before a gap of one of its rooms is filled; past it the gap is
/// given up (a batch was lost: never in one process, possible once a bus feeds batches).
const MAX_HELD: usize = 256;

/// Batches waiting for earlier offsets, per room id.
#[derive(Default)]
pub struct Order {
    held: HashMap<u64, Vec<Arc<FrozenBatch>>>,
    /// Presence events wait in `seq` order of their own.
    presence: PresenceOrder,
}

impl Order {
    /// Delivers `batch` to the local members of its room, in offset order: now, after the
    /// batches it was waiting for, or later, when the gap before it fills.
    pub fn deliver(
        &mut self,
        batch: &Arc<FrozenBatch>,
        rooms: &mut LocalRooms,
        worker: usize,
        limit: usize,
        out: &mut impl Outboxes,
        report: &mut DeliveryReport,
    ) {
        if batch.is_events() {
            (self.presence).deliver(batch, rooms, worker, limit, out, report);
            return;
        }
        let Some((epoch, first, last)) = batch.seq() else {
            deliver_to(batch, rooms, worker, limit, out, report);
            return;
        };
        let Some(id) = batch.room().map(|r| r.id) else {
            return;
        };
        let Some(local) = rooms.get_mut(id) else {
            self.held.remove(&id);
            return;
        };
        let place = local.stream_mut().place(epoch, first, last);
        if let Place::Early { restarted: true } | Place::Next { restarted: true } = place {
            // A new epoch (eviction) or a room without an expectation: what was held for the
            // old one will never be next.
            self.held.remove(&id);
        }
        match place {
            Place::Covered => return, // cannot happen in one process
            Place::Stale => return deliver_to(batch, rooms, worker, limit, out, report),
            Place::Early { .. } => {
                let held = self.held.entry(id).or_default();
                held.push(batch.clone());
                if held.len() <= MAX_HELD {
                    return;
                }
                tracing::warn!(room = %batch.topic(), "history gap never filled");
                let lowest = held.iter().filter_map(|b| b.seq()).map(|s| s.1).min();
                local.stream_mut().skip_to(lowest.unwrap_or(first));
                self.release(id, rooms, worker, limit, out, report);
                return;
            }
            Place::Next { .. } => {}
        }
        self.held.entry(id).or_default().push(batch.clone());
        self.release(id, rooms, worker, limit, out, report);
    }

    /// Delivers every held batch of room `id` that is next in line.
    fn release(
        &mut self,
        id: u64,
        rooms: &mut LocalRooms,
        worker: usize,
        limit: usize,
        out: &mut impl Outboxes,
        report: &mut DeliveryReport,
    ) {
        let Some(held) = self.held.get_mut(&id) else {
            return;
        };
        loop {
            let Some(local) = rooms.get_mut(id) else {
                self.held.remove(&id);
                return;
            };
            let Some(next) = local.stream().next_offset() else {
                return;
            };
            let Some(i) = held
                .iter()
                .position(|b| b.seq().is_some_and(|(_, f, l)| f <= next && next <= l))
            else {
                held.retain(|b| b.seq().is_some_and(|(_, _, l)| l >= next));
                if held.is_empty() {
                    self.held.remove(&id);
                }
                return;
            };
            let batch = held.swap_remove(i);
            let last = batch.seq().map_or(next, |s| s.2);
            deliver_to(&batch, rooms, worker, limit, out, report);
            if let Some(local) = rooms.get_mut(id) {
                local.stream_mut().delivered_through(last);
            }
        }
    }
}
