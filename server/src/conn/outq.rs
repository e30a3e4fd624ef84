//! A connection's corked outbound queue: what is in flight (read by the kernel) and what is
//! only queued, and the WRITEV that sends it.
//!
//! Bytes are queued during a loop turn and leave in one WRITEV at the end of the turn. Every
//! queued byte counts towards backpressure (room frames, pongs, closes, HTTP answers), and every
//! chunk holds whole frames, so cutting the queue between chunks never cuts a frame.

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
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(b, start, end) => &b[*start as usize..*end as usize],
            Chunk::Owned(b) => b,
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

    /// Queues one frame built from `payload` (an owed Pong leaves before it).
    pub fn push_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut buf = Vec::with_capacity(payload.len() + 10);
        encode_frame(&mut buf, opcode, payload);
        self.queue_pong();
        self.push_owned(buf);
    }

    /// Queues a Close frame with `code` and `reason` (an owed Pong leaves before it).
    pub fn push_close(&mut self, code: CloseCode, reason: &str) {
        let mut buf = Vec::with_capacity(reason.len() + 4);
        encode_close(&mut buf, code, reason);
        self.queue_pong();
        self.push_owned(buf);
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
        self.chunks.truncate(keep);
        self.pong = None;
        let queued: usize = self.chunks.iter().map(|c| c.bytes().len()).sum();
        self.unsent = queued - self.front_sent;
    }

    /// Starts a send of the queued bytes (up to `MAX_IOV` chunks) on `fd`: returns the WRITEV to
    /// submit with `user_data`, or `None` when nothing is queued or a send is in flight already.
    /// [`OutQueue::sent`] must be called with the send's result.
    pub fn start_send(&mut self, fd: RawFd, user_data: u64) -> Option<Sqe> {
        if self.in_flight > 0 {
            return None;
        }
        self.queue_pong();
        if self.chunks.is_empty() {
            return None;
        }
        self.iov.clear();
        for (i, chunk) in self.chunks.iter().take(MAX_IOV).enumerate() {
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
        // 2. the in-flight prefix is never touched: `push_*` only append at the back,
        //    `drop_unsent` keeps the first `in_flight` chunks, and only `sent` pops chunks;
        // 3. `self.iov` is a heap array rebuilt only here, which returns early while a send is
        //    in flight, and released only in `sent`;
        // 4. this queue outlives the send, and the fd stays open: the worker frees a connection
        //    only when `Lifecycle::may_free_slot` and closes its fd only when
        //    `Lifecycle::may_close_fd`, both false while a send is in flight (the worker reports
        //    `Event::SendStarted` for every send started here).
        Some(unsafe { Sqe::new(entry) })
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
            // An idle connection holds no queue memory at all (SPEC goal: < 2 KiB per idle
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
mod tests {
    use super::*;

    fn shared(bytes: &[u8]) -> Arc<[u8]> {
        Arc::from(bytes)
    }

    #[test]
    fn partial_writes_resume_inside_the_front_chunk() {
        let mut q = OutQueue::new();
        let frames = shared(b"abcdef");
        q.push_shared(&frames, 0, 6);
        q.push_owned(b"XYZ".to_vec());
        assert_eq!(q.unsent(), 9);
        assert!(q.start_send(-1, 0).is_some());
        assert!(q.start_send(-1, 0).is_none(), "one send at a time");
        assert_eq!(q.iovecs(), vec![&b"abcdef"[..], b"XYZ"]);
        assert!(q.sent(4));
        assert_eq!(q.unsent(), 5);
        assert!(q.start_send(-1, 0).is_some());
        assert_eq!(q.iovecs(), vec![&b"ef"[..], b"XYZ"]);
        assert!(q.sent(3));
        assert_eq!(q.pending(), b"YZ");
        assert!(q.start_send(-1, 0).is_some());
        assert!(!q.sent(2));
        assert!(q.is_empty() && q.unsent() == 0);
    }

    #[test]
    fn dropping_unsent_keeps_the_in_flight_prefix() {
        let mut q = OutQueue::new();
        let frames = shared(b"0123456789");
        q.push_shared(&frames, 0, 4);
        q.push_shared(&frames, 4, 10);
        assert!(q.start_send(-1, 0).is_some());
        q.push_owned(b"late".to_vec());
        q.push_owned(b"later".to_vec());
        q.drop_unsent();
        assert_eq!(q.unsent(), 10, "both in-flight chunks kept");
        assert_eq!(q.iovecs(), vec![&b"0123"[..], b"456789"]);
        assert!(!q.sent(10));
    }

    #[test]
    fn dropping_unsent_keeps_a_partly_sent_frame_whole() {
        let mut q = OutQueue::new();
        q.push_owned(b"frame-one".to_vec());
        q.push_owned(b"frame-two".to_vec());
        assert!(q.start_send(-1, 0).is_some());
        assert!(q.sent(3));
        // Not in flight now, but the client has the first 3 bytes of frame-one.
        q.drop_unsent();
        assert_eq!(q.pending(), b"me-one");
        assert_eq!(q.unsent(), 6);
        q.drop_unsent();
        assert_eq!(q.pending(), b"me-one", "idempotent");
    }

    #[test]
    fn dropping_unsent_with_nothing_sent_empties_the_queue() {
        let mut q = OutQueue::new();
        q.push_owned(b"a".to_vec());
        q.push_frame(OpCode::Pong, b"p");
        q.drop_unsent();
        assert!(q.is_empty());
        assert_eq!(q.unsent(), 0);
    }

    #[test]
    fn a_close_queued_behind_data_leaves_after_it() {
        let mut q = OutQueue::new();
        let frames = shared(b"\x81\x02hi");
        q.push_shared(&frames, 0, 4);
        q.push_close(CloseCode::POLICY, "");
        assert_eq!(q.unsent(), 8, "the Close counts too");
        assert!(q.start_send(-1, 0).is_some());
        assert_eq!(q.iovecs(), vec![&b"\x81\x02hi"[..], b"\x88\x02\x03\xf0"]);
        assert!(!q.sent(8));
    }

    #[test]
    fn backpressure_drop_then_close_sends_the_whole_frame_then_the_close() {
        let mut q = OutQueue::new();
        let frames = shared(b"\x81\x03abc\x81\x03def");
        q.push_shared(&frames, 0, 10);
        assert!(q.start_send(-1, 0).is_some());
        q.push_shared(&frames, 5, 10);
        assert!(q.sent(7)); // mid-frame of the second frame
        q.drop_unsent();
        q.push_close(CloseCode::POLICY, "");
        assert_eq!(q.pending(), b"def\x88\x02\x03\xf0");
    }

    #[test]
    fn the_first_pongs_keep_their_order_with_other_frames() {
        let mut q = OutQueue::new();
        assert!(q.set_pong(b"a"));
        q.push_owned(b"msg".to_vec());
        assert!(q.set_pong(b"b"));
        assert_eq!(q.pending(), b"\x8a\x01amsg\x8a\x01b");
    }

    #[test]
    fn owed_pongs_collapse_to_the_latest_and_leave_before_a_close() {
        let mut q = OutQueue::new();
        q.push_owned(b"head".to_vec());
        assert!(q.start_send(-1, 0).is_some()); // the client never reads: stays in flight
        for i in 0..ORDERED_PONGS {
            assert!(q.set_pong(&[i as u8]), "answered in order");
        }
        let ordered = ORDERED_PONGS as usize * 3;
        assert!(q.set_pong(b"1"));
        for i in 0..1000u32 {
            assert!(!q.set_pong(&i.to_be_bytes()));
        }
        assert_eq!(
            q.unsent(),
            4 + ordered + 6,
            "one Pong owed, whatever the flood"
        );
        assert!(q.sent(4 + ordered), "the owed Pong is still to send");
        q.push_close(CloseCode::NORMAL, "");
        assert_eq!(q.pending(), b"\x8a\x04\x00\x00\x03\xe7\x88\x02\x03\xe8");
        q.drop_unsent();
        assert!(q.is_empty() && q.unsent() == 0);
    }

    #[test]
    fn at_most_max_iov_chunks_per_send() {
        let mut q = OutQueue::new();
        for _ in 0..MAX_IOV + 3 {
            q.push_owned(vec![1]);
        }
        assert!(q.start_send(-1, 0).is_some());
        assert_eq!(q.iovecs().len(), MAX_IOV);
        assert!(q.sent(MAX_IOV));
        assert_eq!(q.unsent(), 3);
    }
}
