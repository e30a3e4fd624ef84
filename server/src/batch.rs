//! Per-turn room batches (the corking of uWebSockets' topic tree): every message published in a
//! room during one loop turn is appended to that room's buffer; at the end of the turn the
//! buffer becomes one shared, immutable `Arc<[u8]>`, and each member receives it as one slice
//! (a sender without `--echo` gets the slices around its own frames). A receiver thus gets one
//! iovec per room per turn, however many messages the turn carried, and nobody copies a payload
//! per receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::{MAX_HEADER_LEN, OpCode, encode_header};

use crate::room::SharedRoom;
use crate::worker::State;

/// The frames one room received from local senders during the current turn.
pub(crate) struct RoomBatch {
    room: Arc<SharedRoom>,
    buf: Vec<u8>,
    /// (sender slab key, start, end) of each frame in `buf`, in arrival order.
    spans: Vec<(usize, u32, u32)>,
}

/// All room batches of the current turn.
#[derive(Default)]
pub(crate) struct TurnBatches {
    index: HashMap<u64, usize>,
    rooms: Vec<RoomBatch>,
}

impl TurnBatches {
    /// Appends one frame from `sender` to `room`'s batch.
    pub(crate) fn push(
        &mut self,
        room: &Arc<SharedRoom>,
        sender: usize,
        opcode: OpCode,
        payload: &[u8],
    ) {
        let i = *self.index.entry(room.id).or_insert_with(|| {
            self.rooms.push(RoomBatch {
                room: room.clone(),
                buf: Vec::new(),
                spans: Vec::new(),
            });
            self.rooms.len() - 1
        });
        let batch = &mut self.rooms[i];
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut head, opcode, true, false, payload.len() as u64);
        let start = batch.buf.len();
        batch.buf.extend_from_slice(&head[..n]);
        batch.buf.extend_from_slice(payload);
        batch
            .spans
            .push((sender, start as u32, batch.buf.len() as u32));
    }

    fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    fn take(&mut self) -> Vec<RoomBatch> {
        self.index.clear();
        std::mem::take(&mut self.rooms)
    }
}

impl State {
    /// End of turn: freezes each room's batch into one shared buffer, hands it to the other
    /// workers with members in the room, and queues it for the local members.
    pub(crate) fn flush_batches(&mut self) {
        if self.batches.is_empty() {
            return;
        }
        for mut batch in self.batches.take() {
            let frame: Arc<[u8]> = Arc::from(batch.buf.as_slice());
            let others = batch.room.workers.load(Ordering::Acquire) & !(1u64 << self.id);
            let mut bits = others;
            while bits != 0 {
                let to = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(out) = self.remote.get_mut(to) {
                    out.push((batch.room.clone(), frame.clone(), batch.spans.len() as u32));
                }
            }
            if self.shared.config.echo {
                batch.spans.clear();
            } else {
                // Grouped by sender, so a sender's own frames are found by binary search.
                batch
                    .spans
                    .sort_by_key(|&(sender, start, _)| (sender, start));
            }
            let count = if batch.spans.is_empty() {
                None
            } else {
                Some(batch.spans.len())
            };
            self.deliver_local(batch.room.id, &frame, &batch.spans, count);
        }
    }

    /// Queues `frame` (holding `messages` frames, or as many as `own_spans` when given) for every
    /// local member of room `room_id`. `own_spans`, sorted by sender, lists frames each member
    /// must not get back (its own, without `--echo`). Members pushed over `--max-backpressure`
    /// are closed with 1008.
    pub(crate) fn deliver_local(
        &mut self,
        room_id: u64,
        frame: &Arc<[u8]>,
        own_spans: &[(usize, u32, u32)],
        messages: Option<usize>,
    ) -> u64 {
        let Some(room) = self.rooms.get(room_id) else {
            return 0;
        };
        let limit = self.shared.config.max_backpressure;
        let total = messages.unwrap_or(own_spans.len()) as u64;
        let len = frame.len() as u32;
        let mut over = Vec::new();
        let mut delivered = 0u64;
        for &member in &room.members {
            let conn = &mut self.conns[member];
            let backlog = conn.out_bytes;
            let first = own_spans.partition_point(|&(s, _, _)| s < member);
            let own = own_spans[first..]
                .iter()
                .take_while(|&&(s, _, _)| s == member)
                .count();
            if own == 0 {
                conn.push_shared(frame.clone(), 0, len);
            } else {
                let mut cursor = 0;
                for &(_, start, end) in &own_spans[first..first + own] {
                    if start > cursor {
                        conn.push_shared(frame.clone(), cursor, start);
                    }
                    cursor = end;
                }
                if cursor < len {
                    conn.push_shared(frame.clone(), cursor, len);
                }
            }
            delivered += total - own as u64;
            // A single turn's batch never trips the limit alone: the backlog before it must.
            if backlog > 0 && conn.out_bytes > limit {
                over.push(member);
            }
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(member);
            }
        }
        let m = self.metrics();
        m.deliveries.fetch_add(delivered, Ordering::Relaxed);
        m.messages_out.fetch_add(delivered, Ordering::Relaxed);
        for member in over {
            self.metrics()
                .backpressure_disconnects
                .fetch_add(1, Ordering::Relaxed);
            self.conns[member].drop_unsent();
            self.close_with(member, CloseCode::POLICY, "backpressure limit exceeded");
        }
        delivered
    }
}
