//! One client connection: its phase, its decoder, and its corked outbound queue.
//!
//! Outbound frames are queued during a loop turn and leave in one `writev` at the end of the
//! turn. Queued frames and the iovec array stay untouched while a send is in flight: the kernel
//! reads them until the send's completion arrives.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::{Decoder, OpCode, encode_close, encode_frame};

use crate::room::SharedRoom;

/// Most iovecs one send carries (the kernel's UIO_MAXIOV is 1024).
const MAX_IOV: usize = 512;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the HTTP request head.
    Handshake,
    /// Upgraded; frames flow.
    Open,
    /// An HTTP response or a Close frame is being flushed; then the socket closes.
    Closing,
}

/// A frame or response waiting to be sent.
pub enum Out {
    /// A slice of encoded-once room frames shared with other receivers.
    Shared(Arc<[u8]>, u32, u32),
    /// Bytes of this connection alone (responses, control frames).
    Owned(Box<[u8]>),
}

impl Out {
    fn bytes(&self) -> &[u8] {
        match self {
            Out::Shared(b, start, end) => &b[*start as usize..*end as usize],
            Out::Owned(b) => b,
        }
    }
}

/// State of one client connection.
pub struct Conn {
    /// The socket.
    pub fd: RawFd,
    /// Distinguishes this connection from earlier users of the same slab slot.
    pub generation: u32,
    /// The client's address.
    pub ip: IpAddr,
    /// Current phase.
    pub phase: Phase,
    /// Request head bytes received so far (handshake phase only).
    pub head: Vec<u8>,
    /// Frame decoder (open phase).
    pub decoder: Option<Box<Decoder>>,
    /// The joined room and this connection's index in its local member list.
    pub room: Option<(Arc<SharedRoom>, usize)>,
    out: VecDeque<Out>,
    /// Unsent bytes queued (the backpressure measure).
    pub out_bytes: usize,
    /// Bytes of the front frame already sent.
    front_sent: usize,
    iov: Vec<libc::iovec>,
    /// A send is in flight.
    pub sending: bool,
    /// The multishot receive is armed.
    pub recv_armed: bool,
    /// Shutdown and Close operations submitted and not yet completed.
    pub pending_ops: u8,
    /// Being torn down: shut down, then closed once nothing is in flight.
    pub dead: bool,
    /// The fd has been closed (slot free once nothing is in flight).
    pub fd_closed: bool,
    /// In the dirty list for this turn's flush.
    pub dirty: bool,
    /// We queued a Close frame; nothing but its flush follows.
    pub close_sent: bool,
    /// After the queue drains, shut the socket down.
    pub shutdown_when_flushed: bool,
    /// Coarse time (ms) of the last byte received, or of accept.
    pub last_rx_ms: u64,
    /// Coarse time (ms) the closing phase began.
    pub closing_since_ms: u64,
    /// A keepalive ping is outstanding.
    pub ping_outstanding: bool,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(fd: RawFd, generation: u32, ip: IpAddr, now_ms: u64) -> Conn {
        Conn {
            fd,
            generation,
            ip,
            phase: Phase::Handshake,
            head: Vec::new(),
            decoder: None,
            room: None,
            out: VecDeque::new(),
            out_bytes: 0,
            front_sent: 0,
            iov: Vec::new(),
            sending: false,
            recv_armed: false,
            pending_ops: 0,
            dead: false,
            fd_closed: false,
            dirty: false,
            close_sent: false,
            shutdown_when_flushed: false,
            last_rx_ms: now_ms,
            closing_since_ms: 0,
            ping_outstanding: false,
        }
    }

    /// Queues bytes `start..end` of a shared buffer of frames.
    pub fn push_shared(&mut self, frames: Arc<[u8]>, start: u32, end: u32) {
        self.out_bytes += (end - start) as usize;
        self.out.push_back(Out::Shared(frames, start, end));
    }

    /// Queues bytes owned by this connection.
    pub fn push_owned(&mut self, bytes: Vec<u8>) {
        self.out_bytes += bytes.len();
        self.out.push_back(Out::Owned(bytes.into_boxed_slice()));
    }

    /// Queues a single control or data frame built from `payload`.
    pub fn push_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mut buf = Vec::with_capacity(payload.len() + 10);
        encode_frame(&mut buf, opcode, payload);
        self.push_owned(buf);
    }

    /// Queues a Close frame and moves to the closing phase; the socket shuts down once the
    /// queue has drained.
    pub fn push_close(&mut self, code: CloseCode, reason: &str, now_ms: u64) {
        let mut buf = Vec::with_capacity(reason.len() + 4);
        encode_close(&mut buf, code, reason);
        self.push_owned(buf);
        self.close_sent = true;
        self.begin_closing(now_ms);
    }

    /// Enters the closing phase: nothing more is queued, the socket shuts down after the flush.
    pub fn begin_closing(&mut self, now_ms: u64) {
        if self.phase != Phase::Closing {
            self.phase = Phase::Closing;
            self.closing_since_ms = now_ms;
        }
        self.shutdown_when_flushed = true;
    }

    /// Drops every queued frame that is not part of the send in flight (a client over its
    /// backpressure limit will never read them).
    pub fn drop_unsent(&mut self) {
        let keep = if self.sending { self.iov.len() } else { 0 };
        self.out.truncate(keep);
        if self.out.is_empty() {
            self.front_sent = 0;
        }
        let queued: usize = self.out.iter().map(|o| o.bytes().len()).sum();
        self.out_bytes = queued - self.front_sent;
    }

    /// Builds the iovec array for the next send; returns (pointer, count), or `None` when
    /// nothing is queued. The array and the frames it points to must stay untouched until
    /// [`Conn::sent`] is called with the send's result.
    pub fn prepare_send(&mut self) -> Option<(*const libc::iovec, u32)> {
        if self.sending || self.out.is_empty() {
            return None;
        }
        self.iov.clear();
        for (i, o) in self.out.iter().take(MAX_IOV).enumerate() {
            let bytes = o.bytes();
            let skip = if i == 0 { self.front_sent } else { 0 };
            self.iov.push(libc::iovec {
                iov_base: bytes[skip..].as_ptr() as *mut libc::c_void,
                iov_len: bytes.len() - skip,
            });
        }
        self.sending = true;
        Some((self.iov.as_ptr(), self.iov.len() as u32))
    }

    /// Accounts for a completed send of `n` bytes; returns whether more is queued.
    pub fn sent(&mut self, mut n: usize) -> bool {
        self.sending = false;
        self.out_bytes -= n.min(self.out_bytes);
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let left = front.bytes().len() - self.front_sent;
            if n >= left {
                n -= left;
                self.front_sent = 0;
                self.out.pop_front();
            } else {
                self.front_sent += n;
                n = 0;
            }
        }
        if self.out.is_empty() {
            // An idle connection holds no queue memory at all (SPEC goal: < 2 KiB per idle
            // connection); mimalloc makes the next burst's allocation cheap.
            self.out = VecDeque::new();
            self.iov = Vec::new();
        }
        !self.out.is_empty()
    }
}
