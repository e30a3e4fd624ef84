//! Per-turn room batches (the corking of uWebSockets' topic tree): every message published in a
//! room during one loop turn is appended to that room's [`BatchBuilder`]; at the end of the turn
//! the builder becomes a [`FrozenBatch`]: immutable, shareable across workers, holding each
//! message's span, sender and kind, and the encoded forms (one shared buffer per form), so a
//! receiver gets one iovec per room per turn and nobody copies a payload per receiver.

use std::collections::HashMap;
use std::sync::Arc;

use ringcast_protocol::frame::{MAX_HEADER_LEN, OpCode, encode_header};

use crate::rooms::SharedRoom;
use crate::rooms::local::Class;

/// One message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Slab key of the sender on the batch's origin worker (meaningless elsewhere).
    pub sender: usize,
    /// Text or binary.
    pub kind: OpCode,
    /// The frame's bytes in the raw form: `start..end`.
    pub frame: (u32, u32),
    /// Where the payload starts in the raw form (after the frame header).
    pub payload_start: u32,
}

/// Messages of one room being collected during the current turn.
pub struct BatchBuilder {
    room: Arc<SharedRoom>,
    raw: Vec<u8>,
    messages: Vec<Message>,
}

impl BatchBuilder {
    /// An empty batch for `room`.
    pub fn new(room: Arc<SharedRoom>) -> BatchBuilder {
        BatchBuilder {
            room,
            raw: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// Appends one message; its frame is encoded here, once.
    pub fn push(&mut self, sender: usize, kind: OpCode, payload: &[u8]) {
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut head, kind, true, false, payload.len() as u64);
        let start = self.raw.len() as u32;
        self.raw.extend_from_slice(&head[..n]);
        self.raw.extend_from_slice(payload);
        self.messages.push(Message {
            sender,
            kind,
            frame: (start, self.raw.len() as u32),
            payload_start: start + n as u32,
        });
    }

    /// Freezes the batch. `origin` is the worker whose connections sent the messages (`None`
    /// for a source outside the workers); with `exclude_senders` (no `--echo`), a sender on
    /// the origin worker does not get its own messages back.
    pub fn freeze(self, origin: Option<usize>, exclude_senders: bool) -> FrozenBatch {
        let mut own = Vec::new();
        if exclude_senders && origin.is_some() {
            own = (0..self.messages.len() as u32)
                .map(|i| (self.messages[i as usize].sender, i))
                .collect();
            // Grouped by sender, in arrival order within a sender: found by binary search.
            own.sort_unstable();
        }
        FrozenBatch {
            room: self.room,
            origin,
            raw: Arc::from(self.raw.as_slice()),
            messages: self.messages,
            own,
        }
    }
}

/// A room's messages of one turn, frozen: what every receiver on every worker gets.
pub struct FrozenBatch {
    room: Arc<SharedRoom>,
    origin: Option<usize>,
    messages: Vec<Message>,
    /// (sender, message index), sorted; empty when senders get their own messages back.
    own: Vec<(usize, u32)>,
    /// The raw frames, back to back (class `Raw`).
    raw: Arc<[u8]>,
    // Next forms, each a `OnceLock<Form>` built by the first worker with a member of its class
    // (e.g. `json: OnceLock<(Arc<[u8]>, Vec<(u32, u32)>)>`, the envelopes and their spans).
}

// Part of the batch's contract for the forms and sources that come next (JSON envelopes are
// built from `messages` and `payload`; a cluster bus checks `origin`); tests use them today.
#[allow(dead_code)]
impl FrozenBatch {
    /// The room.
    pub fn room(&self) -> &Arc<SharedRoom> {
        &self.room
    }

    /// The worker whose connections sent these messages (`None`: an outside source).
    pub fn origin(&self) -> Option<usize> {
        self.origin
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// No messages.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages, in arrival order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The payload of message `i` (for forms built from payloads).
    pub fn payload(&self, i: usize) -> &[u8] {
        let m = &self.messages[i];
        &self.raw[m.payload_start as usize..m.frame.1 as usize]
    }

    /// The encoded form for members of `class`: every message back to back, built once.
    pub fn form(&self, class: Class) -> &Arc<[u8]> {
        match class {
            Class::Raw => &self.raw,
        }
    }

    /// Where message `i` lies in the form of `class`.
    pub fn span(&self, class: Class, i: usize) -> (u32, u32) {
        match class {
            Class::Raw => self.messages[i].frame,
        }
    }

    /// Indices of the messages `member` must not get back (its own, on the origin worker,
    /// without `--echo`), in arrival order.
    pub fn own_messages(&self, worker: usize, member: usize) -> impl Iterator<Item = usize> + '_ {
        let own: &[(usize, u32)] = if self.origin == Some(worker) {
            let first = self.own.partition_point(|&(s, _)| s < member);
            let n = self.own[first..]
                .iter()
                .take_while(|&&(s, _)| s == member)
                .count();
            &self.own[first..first + n]
        } else {
            &[]
        };
        own.iter().map(|&(_, i)| i as usize)
    }
}

/// All room batches of the current turn on one worker.
#[derive(Default)]
pub struct TurnBatches {
    index: HashMap<u64, usize>,
    rooms: Vec<BatchBuilder>,
    /// Frame bytes batched since the last `take`.
    bytes: usize,
}

impl TurnBatches {
    /// Appends one message from `sender` to `room`'s batch.
    pub fn push(&mut self, room: &Arc<SharedRoom>, sender: usize, kind: OpCode, payload: &[u8]) {
        let i = *self.index.entry(room.id).or_insert_with(|| {
            self.rooms.push(BatchBuilder::new(room.clone()));
            self.rooms.len() - 1
        });
        self.rooms[i].push(sender, kind, payload);
        self.bytes += payload.len() + MAX_HEADER_LEN;
    }

    /// Frame bytes batched since the last `take` (an upper bound).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// No message this turn.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Takes this turn's batches, in the order their rooms first got a message.
    pub fn take(&mut self) -> Vec<BatchBuilder> {
        self.index.clear();
        self.bytes = 0;
        std::mem::take(&mut self.rooms)
    }
}
