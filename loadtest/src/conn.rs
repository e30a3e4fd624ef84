//! Per-connection state and the per-thread context ([`Io`]) that scenarios use to send.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::client::frame::{self, OP_BINARY, OP_CLOSE, OP_TEXT};
use crate::client::handshake::ClientHandshake;
use crate::rng::Rng;
use crate::shared::Shared;
use crate::stats::Stats;

/// The "subprotocol" a plan gives a connection that speaks plain HTTP/1.1 instead of
/// WebSocket (the `api` scenario's publishers): no upgrade, open once TCP connects, bytes in
/// and out unframed ([`Io::send_raw`], `Scenario::on_bytes`).
pub const PLAIN_HTTP: &str = "\0plain-http";

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet (ramp or concurrency limit).
    Pending,
    /// TCP connect in flight.
    Connecting,
    /// Upgrade request sent, waiting for the 101.
    Handshake,
    /// Upgraded; messages flow.
    Open,
    /// A Close frame was sent or received; no more data frames.
    Closing,
    /// Socket closed (or never opened).
    Closed,
}

/// One client connection. Buffers stay allocated until the thread ends, so a late completion
/// always points at live memory.
#[derive(Debug)]
pub struct Conn {
    pub(crate) fd: i32,
    pub(crate) state: State,
    pub(crate) protocol: Option<String>,
    pub(crate) hs: Option<ClientHandshake>,
    pub(crate) rbuf: Vec<u8>,
    pub(crate) rstart: usize,
    pub(crate) rend: usize,
    pub(crate) frag: Vec<u8>,
    pub(crate) frag_op: u8,
    /// The fragmented message being joined is compressed (RSV1 on its first frame).
    pub(crate) frag_compressed: bool,
    pub(crate) out: Vec<u8>,
    pub(crate) sending: Vec<u8>,
    pub(crate) send_off: usize,
    pub(crate) send_busy: bool,
    pub(crate) recv_busy: bool,
    pub(crate) dirty: bool,
    pub(crate) close_sent: bool,
    /// Index of the server (`--url`) this connection uses, for its whole life.
    pub(crate) target: usize,
    /// The current set-up is a reopen after [`Io::reconnect`] (not a first connection).
    pub(crate) reopened: bool,
    /// Plain HTTP/1.1 ([`PLAIN_HTTP`]), not WebSocket.
    pub(crate) http: bool,
    /// The TLS client of a `wss://` connection (from its connect on).
    pub(crate) tls: Option<Box<crate::tls::TlsLayer>>,
}

impl Conn {
    /// A connection that will offer `protocol`.
    pub fn new(protocol: Option<String>) -> Self {
        let http = protocol.as_deref() == Some(PLAIN_HTTP);
        let protocol = protocol.filter(|_| !http);
        Self {
            fd: -1,
            state: State::Pending,
            protocol,
            hs: None,
            rbuf: Vec::new(),
            rstart: 0,
            rend: 0,
            frag: Vec::new(),
            frag_op: OP_TEXT,
            frag_compressed: false,
            out: Vec::new(),
            sending: Vec::new(),
            send_off: 0,
            send_busy: false,
            recv_busy: false,
            dirty: false,
            close_sent: false,
            target: 0,
            reopened: false,
            http,
            tls: None,
        }
    }

    /// Forgets everything of the previous socket before it is reopened (buffers are kept;
    /// the kernel holds none of them: the caller waited for the last completions).
    pub(crate) fn reset_for_reconnect(&mut self) {
        debug_assert!(!self.send_busy && !self.recv_busy && self.fd < 0);
        self.state = State::Pending;
        self.hs = None;
        self.rstart = 0;
        self.rend = 0;
        self.frag.clear();
        self.out.clear();
        self.sending.clear();
        self.send_off = 0;
        self.close_sent = false;
        self.reopened = true;
        self.tls = None;
    }

    /// Whether data frames can be sent and received.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }
}

/// A thread's connections plus what scenarios need to act on them.
pub struct Io {
    /// The connections, indexed by the thread-local connection number.
    pub conns: Vec<Conn>,
    pub(crate) dirty: Vec<usize>,
    /// Connections closed by [`Io::reconnect`] that the driver reopens.
    pub(crate) reopen: Vec<usize>,
    /// Random source for masking keys and nonces.
    pub rng: Rng,
    /// Time of the current event, ns since the shared base.
    pub now: u64,
    /// This thread's measurements.
    pub stats: Stats,
    /// State shared with the other threads.
    pub shared: Arc<Shared>,
    /// Index of this thread.
    pub thread: usize,
    /// Data messages queued for sending, all phases.
    pub sent_msgs: u64,
    /// Data messages received, all phases.
    pub recv_msgs: u64,
    /// Bytes received, all phases.
    pub recv_bytes: u64,
    /// Connections currently open.
    pub open: u64,
    published: (u64, u64, u64, u64),
}

impl Io {
    /// Context for `conns` on thread `thread`.
    pub fn new(conns: Vec<Conn>, shared: Arc<Shared>, thread: usize) -> Self {
        Self {
            conns,
            dirty: Vec::new(),
            reopen: Vec::new(),
            rng: Rng::new(thread as u64),
            now: 0,
            stats: Stats::new(),
            shared,
            thread,
            sent_msgs: 0,
            recv_msgs: 0,
            recv_bytes: 0,
            open: 0,
            published: (0, 0, 0, 0),
        }
    }

    pub(crate) fn mark_dirty(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(c);
        }
    }

    /// Queues one frame (any opcode) on `c` if it is open or closing.
    pub(crate) fn send_frame(&mut self, c: usize, opcode: u8, payload: &[u8]) {
        let mask = self.rng.mask();
        let conn = &mut self.conns[c];
        if conn.fd < 0 || conn.close_sent {
            return;
        }
        frame::encode_masked(&mut conn.out, opcode, payload, mask);
        self.mark_dirty(c);
    }

    /// Queues a data message on `c`; ignored unless `c` is open.
    pub fn send(&mut self, c: usize, binary: bool, payload: &[u8]) {
        if !self.conns[c].is_open() {
            return;
        }
        self.sent_msgs += 1;
        let op = if binary { OP_BINARY } else { OP_TEXT };
        self.send_frame(c, op, payload);
    }

    /// Queues bytes as they are on plain HTTP connection `c` (one request: counted as a
    /// message sent); ignored unless `c` is open.
    pub fn send_raw(&mut self, c: usize, bytes: &[u8]) {
        let conn = &mut self.conns[c];
        if !conn.is_open() || !conn.http {
            return;
        }
        conn.out.extend_from_slice(bytes);
        self.sent_msgs += 1;
        self.mark_dirty(c);
    }

    /// Queues a Close frame with `code` (once).
    pub(crate) fn send_close(&mut self, c: usize, code: u16) {
        self.send_frame(c, OP_CLOSE, &code.to_be_bytes());
        self.conns[c].close_sent = true;
    }

    /// Shuts down and closes the socket of `c` (pending operations complete with an error or 0).
    pub(crate) fn close_fd(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if conn.state == State::Open {
            self.open = self.open.saturating_sub(1);
        }
        conn.state = State::Closed;
        if conn.fd >= 0 {
            // SAFETY: `fd` is a socket this connection owns; it is closed exactly once (set to
            // -1 right after). In-flight io_uring operations hold their own file reference.
            unsafe {
                libc::shutdown(conn.fd, libc::SHUT_RDWR);
                libc::close(conn.fd);
            }
            conn.fd = -1;
        }
    }

    /// Drops connection `c` abruptly (no Close frame, as a lost network would) and opens it
    /// again to the same server with the same subprotocol; the scenario sees `on_open` again
    /// (never `on_closed` for this). Ignored unless `c` is open.
    pub fn reconnect(&mut self, c: usize) {
        if !self.conns[c].is_open() {
            return;
        }
        self.close_fd(c);
        self.reopen.push(c);
    }

    /// Adds this thread's progress since the last call to the shared counters.
    pub fn publish_progress(&mut self) {
        let p = &self.shared.totals;
        let errors =
            self.stats.connect_errors + self.stats.handshake_errors + self.stats.unexpected_closes;
        let (s, r, o, e) = self.published;
        p.sent.fetch_add(self.sent_msgs - s, Ordering::Relaxed);
        p.received.fetch_add(self.recv_msgs - r, Ordering::Relaxed);
        if self.open >= o {
            p.open.fetch_add(self.open - o, Ordering::Relaxed);
        } else {
            p.open.fetch_sub(o - self.open, Ordering::Relaxed);
        }
        p.errors.fetch_add(errors - e, Ordering::Relaxed);
        self.published = (self.sent_msgs, self.recv_msgs, self.open, errors);
    }
}
