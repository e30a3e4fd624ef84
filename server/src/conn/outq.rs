//! A connection's corked outbound queue: what is in flight (read by the kernel) and what is
//! only queued, and the WRITEV that sends it.
//!
//! Bytes are queued during a loop turn and leave in one WRITEV at the end of the turn. Every
//! queued byte counts towards backpressure (room frames, pongs, closes, HTTP answers), and every
//! chunk holds whole frames, so cutting the queue between chunks never cuts a frame.
//!
//! A *hold* ([`OutQueue::hold`]) is a place in the stream for bytes computed later (a cluster
//! presence snapshot, the order of docs/pubsub.md#order-after-a-subscribe): nothing queued behind it is sent before it is filled
//! ([`OutQueue::fill`]), though it counts towards backpressure as usual. A Close never waits
//! for a hold: queueing one drops the first pending hold and everything behind it.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::Arc;

use io_uring::{opcode, types};
use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::{OpCode, encode_close, encode_frame};

use crate::limits::{MAX_IOV, ORDERED_PONGS};
use crate::ring::Sqe;

/// Queued bytes: whole frames (or a whole HTTP answer), never part of one.
enum Chunk {
    /// `start..end` of encoded-once frames shared with other receivers.
    Shared(Arc<[u8]>, u32, u32),
    /// Bytes of this connection alone (responses, control frames).
    Owned(Box<[u8]>),
    /// A place for bytes not known yet ([`OutQueue::hold`]): sending stops here.
    Hold(u32),
}

/// Names a hold in one connection's queue, to fill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldId(u32);

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(b, start, end) => &b[*start as usize..*end as usize],
            Chunk::Owned(b) => b,
            Chunk::Hold(_) => &[],
        }
    }
}

/// The outbound queue of one connection.
#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already sent.
    front_sent: usize,
    /// Unsent bytes queued (the backpressure measure).
    unsent: usize,
    /// Chunks covered by the WRITEV in flight (0: none in flight).
    in_flight: usize,
    /// The iovec array of the WRITEV in flight.
    iov: Vec<libc::iovec>,
    /// The one Pong owed to the client, encoded, not queued yet: a newer Ping replaces it
    /// (RFC 6455 §5.5.3), so a ping flood costs one frame (issue 14 row 1). It joins the
    /// chunks when a send starts, or before a Close.
    pong: Option<Box<[u8]>>,
    /// Pongs queued in order since the client last took bytes.
    answered: u32,
    /// Pings answered by overwriting the owed Pong since the client last took bytes.
    collapsed: u32,
    /// Holds queued and not filled yet (0 almost always: `start_send` looks for none then).
    holds: u32,
    /// The id of the next hold.
    next_hold: u32,
}

impl OutQueue {
    /// An empty queue; it allocates nothing until something is queued.
    pub fn new() -> OutQueue {
        OutQueue::default()
    }

    /// Unsent bytes queued, the in-flight ones included.
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    /// The backpressure rule (docs/limits.md#backpressure), decided here for every kind of
    /// outbound bytes (a turn's delivery, a reply, a replay, a snapshot, a Pong): after one
    /// unit was queued on top of `backlog` unsent bytes, the client is over `limit` when it
    /// had a backlog before the unit and holds more than `limit` now. One unit alone (a
    /// large replay to a client that keeps up) never trips it; a client that does not read
    /// trips it on the next.
    pub fn over_limit(&self, backlog: usize, limit: usize) -> bool {
        backlog > 0 && self.unsent > limit
    }

    /// Nothing is queued.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.pong.is_none()
    }

    /// Queues bytes `start..end` (whole frames) of a shared buffer.
    pub fn push_shared(&mut self, frames: &Arc<[u8]>, start: u32, end: u32) {
        self.unsent += (end - start) as usize;
        self.chunks
            .push_back(Chunk::Shared(frames.clone(), start, end));
    }

    /// Queues bytes owned by this connection (an HTTP answer or whole frames).
    pub fn push_owned(&mut self, bytes: Vec<u8>) {
        self.unsent += bytes.len();
        self.chunks
            .push_back(Chunk::Owned(bytes.into_boxed_slice()));
    }

    /// Queues one frame built from `payload` (an owed Pong leaves before it). A Close frame
    /// drops a pending hold first, as [`OutQueue::push_close`] does.
    pub fn push_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut buf = Vec::with_capacity(payload.len() + 10);
        encode_frame(&mut buf, opcode, payload);
        if opcode == OpCode::Close {
            self.cut_at_hold();
        }
        self.queue_pong();
        self.push_owned(buf);
    }

    /// Queues a Close frame with `code` and `reason` (an owed Pong leaves before it). A hold
    /// still pending is dropped with everything behind it: the Close leaves after what was
    /// sendable, never waiting for bytes that may come late (or not at all).
    pub fn push_close(&mut self, code: CloseCode, reason: &str) {
        let mut buf = Vec::with_capacity(reason.len() + 4);
        encode_close(&mut buf, code, reason);
        self.cut_at_hold();
        self.queue_pong();
        self.push_owned(buf);
    }

    /// Reserves the place of bytes to come: nothing queued after it is sent until
    /// [`OutQueue::fill`] gives them. Its bytes count as unsent once filled; what waits behind
    /// it counts at once.
    pub fn hold(&mut self) -> HoldId {
        let id = self.next_hold;
        self.next_hold = id.wrapping_add(1);
        self.holds += 1;
        self.chunks.push_back(Chunk::Hold(id));
        HoldId(id)
    }

    /// Puts `bytes` (whole frames) in the place of `hold`, which releases what waits behind it
    /// (up to the next hold). Returns false when the hold is gone (dropped by a Close or a
    /// backpressure cut): the bytes are dropped too.
    pub fn fill(&mut self, hold: HoldId, bytes: Vec<u8>) -> bool {
        let Some(i) = self
            .chunks
            .iter()
            .position(|c| matches!(c, Chunk::Hold(h) if *h == hold.0))
        else {
            return false;
        };
        self.holds -= 1;
        if bytes.is_empty() {
            // A zero-length chunk would make an empty WRITEV, whose result of 0 never pops it.
            self.chunks.remove(i);
        } else {
            self.unsent += bytes.len();
            self.chunks[i] = Chunk::Owned(bytes.into_boxed_slice());
        }
        true
    }

    /// Drops the first pending hold and every chunk behind it (a Close is about to be queued).
    fn cut_at_hold(&mut self) {
        if self.holds == 0 {
            return;
        }
        if let Some(i) = self.chunks.iter().position(|c| matches!(c, Chunk::Hold(_))) {
            // A hold is never in flight nor partly sent: `start_send` stops before it.
            self.chunks.truncate(i);
        }
        self.holds = 0;
        let queued: usize = self.chunks.iter().map(|c| c.bytes().len()).sum();
        self.unsent = queued - self.front_sent;
    }

    /// Owes the client a Pong with `payload`; returns whether it adds a Pong (rather than
    /// replacing one). The first `ORDERED_PONGS` Pings since the client last took bytes each get
    /// their Pong, queued in order with everything else (what clients and Autobahn 2.10 expect);
    /// past that the client is not reading, and the one owed Pong is overwritten by the newest
    /// (RFC 6455 §5.5.3), so a flood costs one frame.
    pub fn set_pong(&mut self, payload: &[u8]) -> bool {
        let mut buf = Vec::with_capacity(payload.len() + 2);
        encode_frame(&mut buf, OpCode::Pong, payload);
        if self.answered < ORDERED_PONGS && self.pong.is_none() {
            self.answered += 1;
            self.push_owned(buf);
            return true;
        }
        self.unsent += buf.len();
        let old = self.pong.replace(buf.into_boxed_slice());
        self.unsent -= old.as_ref().map_or(0, |b| b.len());
        if old.is_some() {
            self.collapsed = self.collapsed.saturating_add(1);
        }
        old.is_none()
    }

    /// Pings whose Pong was overwritten since the client last took bytes from this queue.
    pub fn collapsed_pongs(&self) -> u32 {
        self.collapsed
    }

    /// Moves the owed Pong (if any) behind the queued chunks.
    fn queue_pong(&mut self) {
        if let Some(pong) = self.pong.take() {
            self.chunks.push_back(Chunk::Owned(pong));
        }
    }

    /// Drops every queued chunk the client has not started to receive (a client over its
    /// backpressure limit will never read them). Kept: the chunks of the send in flight, and a
    /// front chunk already partly sent, so the stream stays whole frames and a Close queued
    /// next is read as a frame.
    pub fn drop_unsent(&mut self) {
        let keep = if self.in_flight > 0 {
            self.in_flight
        } else {
            usize::from(self.front_sent > 0)
        };
        // No hold is among the kept chunks: `start_send` stops before the first.
        self.chunks.truncate(keep);
        self.holds = 0;
        self.pong = None;
        let queued: usize = self.chunks.iter().map(|c| c.bytes().len()).sum();
        self.unsent = queued - self.front_sent;
    }

    /// Starts a send of the queued bytes (up to `MAX_IOV` chunks, up to the first hold) on
    /// `fd`: returns the WRITEV to submit with `user_data`, or `None` when nothing is sendable
    /// or a send is in flight already. [`OutQueue::sent`] must be called with the send's result.
    pub fn start_send(&mut self, fd: RawFd, user_data: u64) -> Option<Sqe> {
        if self.in_flight > 0 {
            return None;
        }
        self.queue_pong();
        let sendable = if self.holds == 0 {
            MAX_IOV
        } else {
            (self.chunks.iter().position(|c| matches!(c, Chunk::Hold(_))))
                .map_or(MAX_IOV, |i| i.min(MAX_IOV))
        };
        if self.chunks.is_empty() || sendable == 0 {
            return None;
        }
        self.iov.clear();
        for (i, chunk) in self.chunks.iter().take(sendable).enumerate() {
            let bytes = chunk.bytes();
            let skip = if i == 0 { self.front_sent } else { 0 };
            self.iov.push(libc::iovec {
                iov_base: bytes[skip..].as_ptr() as *mut libc::c_void,
                iov_len: bytes.len() - skip,
            });
        }
        self.in_flight = self.iov.len();
        let entry = opcode::Writev::new(types::Fd(fd), self.iov.as_ptr(), self.iov.len() as u32)
            .build()
            .user_data(user_data);
        // SAFETY: the kernel reads `self.iov` and, through it, the bytes of the first
        // `in_flight` chunks until the send's completion, after which the worker calls `sent`.
        // Until then:
        // 1. every byte an iovec points at is heap memory owned by a chunk (`Arc<[u8]>` or
        //    `Box<[u8]>`), so moving the chunk, the deque, this queue or its connection (the slab
        //    moves connections when it grows) moves pointers, never the bytes;
        // 2. the in-flight prefix is never touched: `push_*` and `hold` only append at the
        //    back, `fill` replaces a hold chunk and the WRITEV stops before the first hold (so
        //    no hold is in the prefix), `drop_unsent` keeps the first `in_flight` chunks,
        //    `cut_at_hold` keeps the chunks before the first hold, and only `sent` pops chunks;
        // 3. `self.iov` is a heap array rebuilt only here, which returns early while a send is
        //    in flight, and released only in `sent`;
        // 4. this queue outlives the send, and the fd stays open: the worker frees a connection
        //    only when `Lifecycle::may_free_slot` and closes its fd only when
        //    `Lifecycle::may_close_fd`, both false while a send is in flight (the worker reports
        //    `Event::SendStarted` for every send started here).
        // SAFETY: points 1–4 above hold until the send's completion.
        Some(unsafe { Sqe::new(entry) })
    }

    /// Like [`OutQueue::start_send`] for a connection whose bytes are transformed before the
    /// kernel sees them (TLS encrypts them, docs/running.md#tls): hands the sendable chunks (up
    /// to `MAX_IOV`, up to the first hold) to `take`, which takes all of them, and marks them in
    /// flight, so they keep counting towards backpressure, until [`OutQueue::sent`] is called
    /// with their total, which this returns (0: nothing sendable, or a send in flight).
    pub fn start_transformed(
        &mut self,
        take: impl FnOnce(&mut dyn ExactSizeIterator<Item = &[u8]>),
    ) -> usize {
        if self.in_flight > 0 {
            return 0;
        }
        let sendable = self.sendable();
        if sendable == 0 {
            return 0;
        }
        // An iterator, not a collected array: nothing is allocated per send.
        let front_sent = self.front_sent;
        let mut slices = (self.chunks.iter().take(sendable).enumerate()).map(move |(i, chunk)| {
            let skip = if i == 0 { front_sent } else { 0 };
            &chunk.bytes()[skip..]
        });
        let total = slices.clone().map(<[u8]>::len).sum();
        take(&mut slices);
        self.in_flight = sendable;
        total
    }

    /// Queues the owed Pong, then counts the chunks a send may cover: up to `MAX_IOV`, up to
    /// the first hold.
    fn sendable(&mut self) -> usize {
        self.queue_pong();
        let sendable = if self.holds == 0 {
            MAX_IOV
        } else {
            (self.chunks.iter().position(|c| matches!(c, Chunk::Hold(_))))
                .map_or(MAX_IOV, |i| i.min(MAX_IOV))
        };
        sendable.min(self.chunks.len())
    }

    /// Accounts for a completed send of `n` bytes (0 for a failed one); returns whether bytes
    /// remain queued.
    pub fn sent(&mut self, mut n: usize) -> bool {
        self.in_flight = 0;
        if n > 0 {
            self.collapsed = 0;
            self.answered = 0;
        }
        self.unsent -= n.min(self.unsent);
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            debug_assert!(!matches!(front, Chunk::Hold(_)), "a hold was sent");
            let left = front.bytes().len() - self.front_sent;
            if n >= left {
                n -= left;
                self.front_sent = 0;
                self.chunks.pop_front();
            } else {
                self.front_sent += n;
                n = 0;
            }
        }
        if self.chunks.is_empty() {
            // An idle connection holds no queue memory at all (goal: < 2 KiB per idle
            // connection); mimalloc makes the next burst's allocation cheap.
            self.chunks = VecDeque::new();
            self.iov = Vec::new();
        }
        !self.chunks.is_empty() || self.pong.is_some()
    }

    /// The iovecs of the send in flight (tests).
    #[cfg(test)]
    fn iovecs(&self) -> Vec<&[u8]> {
        self.iov
            .iter()
            // SAFETY: test-only view of the iovecs `start_send` built over chunks still queued.
            .map(|v| unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) })
            .collect()
    }

    /// Every unsent byte in order (tests).
    #[cfg(test)]
    fn pending(&self) -> Vec<u8> {
        let mut all: Vec<u8> = self
            .chunks
            .iter()
            .flat_map(|c| c.bytes().to_vec())
            .collect();
        all.drain(..self.front_sent);
        all
    }
}

#[cfg(test)]
#[path = "outq_tests.rs"]
mod tests;
