//! The one interface through which a session acts: publish into a room, reply to its client,
//! close (and, for the handshake, join a room). A session never sees a socket, a ring or
//! another connection; what must be ordered with the rest of the worker is returned as an
//! [`End`] for the worker to apply.

use std::sync::Arc;

use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::OpCode;

use crate::config::Config;
use crate::conn::outq::OutQueue;
use crate::fanout::batch::TurnBatches;
use crate::metrics::WorkerMetrics;
use crate::rooms::local::{Class, LocalRooms, Slot};
use crate::rooms::{JoinError, SharedRoom};
use crate::shared::Shared;

/// How a session ends its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Queue a Close frame (empty when `code` is `None`) after this turn's batches, leave the
    /// room, and close once it is flushed.
    Close {
        /// The code; `None` for an empty Close (echoing an empty one).
        code: Option<CloseCode>,
        /// The reason.
        reason: String,
    },
    /// The last bytes (an HTTP answer) are queued: close once they are flushed.
    Finish,
}

/// What a session did through its sink.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes were queued for this connection: flush it this turn.
    pub queued: bool,
    /// The session asked to end the connection.
    pub end: Option<End>,
}

/// The one interface through which a session acts on the world.
pub struct Sink<'a> {
    key: usize,
    worker: usize,
    shared: &'a Shared,
    out: &'a mut OutQueue,
    batches: &'a mut TurnBatches,
    rooms: &'a mut LocalRooms,
    queued: bool,
    end: Option<End>,
}

impl<'a> Sink<'a> {
    /// A sink for connection `key` on worker `worker`, queueing into `out` and `batches`.
    pub fn new(
        key: usize,
        worker: usize,
        shared: &'a Shared,
        out: &'a mut OutQueue,
        batches: &'a mut TurnBatches,
        rooms: &'a mut LocalRooms,
    ) -> Sink<'a> {
        Sink {
            key,
            worker,
            shared,
            out,
            batches,
            rooms,
            queued: false,
            end: None,
        }
    }

    /// Publishes a message from this connection into `room` (delivered at the end of the turn).
    pub fn publish(&mut self, room: &Arc<SharedRoom>, kind: OpCode, payload: &[u8]) {
        self.batches.push(room, self.key, kind, payload);
    }

    /// Queues bytes for this client alone (an HTTP answer, whole frames).
    pub fn reply(&mut self, bytes: Vec<u8>) {
        self.out.push_owned(bytes);
        self.queued = true;
    }

    /// Queues one frame for this client alone.
    pub fn reply_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        self.out.push_frame(opcode, payload);
        self.metrics()
            .messages_out
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.queued = true;
    }

    /// Asks for a Close frame and the end of the connection; nothing is read after it.
    pub fn close(&mut self, code: Option<CloseCode>, reason: String) {
        self.end.get_or_insert(End::Close { code, reason });
    }

    /// The last bytes are queued: close once they are flushed.
    pub fn finish(&mut self) {
        self.end.get_or_insert(End::Finish);
    }

    /// Joins room `name` as a member of `class`; the worker's bit is set in the directory before
    /// this returns, so every publish the client can observe after its 101 reaches it.
    pub fn join(&mut self, name: &str, class: Class) -> Result<(Arc<SharedRoom>, Slot), JoinError> {
        let room = self.shared.directory.join(name, self.worker)?;
        let slot = self.rooms.join(room.id, self.key, class);
        if let Some(bus) = &self.shared.cluster {
            // No authenticated user in room mode yet: the user name is empty.
            bus.member_joined(
                &room.name,
                &crate::bridge::client_id(self.worker, self.key),
                "",
            );
        }
        Ok((room, slot))
    }

    /// The settings.
    pub fn config(&self) -> &'a Config {
        &self.shared.config
    }

    /// The state all workers share.
    pub fn shared(&self) -> &'a Shared {
        self.shared
    }

    /// This worker's counters.
    pub fn metrics(&self) -> &'a WorkerMetrics {
        &self.shared.metrics[self.worker]
    }

    /// What the session did.
    pub fn outcome(self) -> Outcome {
        Outcome {
            queued: self.queued,
            end: self.end,
        }
    }
}
