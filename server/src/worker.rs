//! One worker: a thread pinned to a core with its own io_uring, listener, connections and rooms.
//!
//! A loop turn: submit queued SQEs and wait; handle every ready completion (accept, receive,
//! send, wake-up, timer); when the turn was busy, wait a bounded moment for more; then flush:
//! one `writev` per dirty socket and one batch per other worker that has members in the rooms
//! written to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;

use crate::batch::TurnBatches;
use crate::config::Config;
use crate::conn::{Conn, Phase};
use crate::fanout::{Delivery, Peers, Remote};
use crate::http::Refusal;
use crate::metrics::WorkerMetrics;
use crate::ring::{self, BufRing, Op, RingError};
use crate::room::{Directory, LocalRooms};

/// A closing connection that has not finished within this time is cut.
const LINGER_MS: u64 = 2000;
/// Receive completions in one turn that count as "busy" (worth gathering more before flushing).
const BUSY_RECVS: usize = 4;
/// Sends issued by the previous flush that count as "busy": one receive fanned out to many.
const BUSY_SENDS: u64 = 32;
/// Completions that end a gathering wait early (it normally ends on its timeout).
const GATHER_WANT: usize = 512;

/// State every worker shares (read-mostly; nothing here is touched per message but atomics).
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// Which workers have members in which rooms.
    pub directory: Directory,
    /// Counters, one block per worker.
    pub metrics: Box<[WorkerMetrics]>,
    /// Connections open in the whole process.
    pub open: AtomicUsize,
    /// Open connections per client IP (only maintained with `--max-connections-per-ip`).
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Everything of a worker except its ring and receive buffers, so completion handlers can
/// borrow those separately.
pub struct State {
    pub(crate) id: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) conns: Slab<Conn>,
    pub(crate) rooms: LocalRooms,
    /// SQEs to submit at the next enter.
    pub(crate) sq: Vec<squeue::Entry>,
    /// Connections with frames queued this turn.
    pub(crate) dirty: Vec<usize>,
    /// Frames for each other worker, sent as one batch at the end of the turn.
    pub(crate) remote: Vec<Vec<Delivery>>,
    pub(crate) peers: Peers,
    /// Messages published this turn, per room.
    pub(crate) batches: TurnBatches,
    rx: Receiver<Remote>,
    listener: socket2::Socket,
    accepting: bool,
    next_generation: u32,
    start: Instant,
    /// Coarse clock: milliseconds since the worker started, updated once per turn.
    pub(crate) now_ms: u64,
    drain_deadline: Option<u64>,
    tick: Box<types::Timespec>,
    recvs_this_turn: usize,
    sends_last_flush: u64,
}

/// A worker ready to run. Field order matters: the ring is dropped before the buffers it
/// may still reference.
pub struct Worker {
    ring: IoUring,
    bufs: BufRing,
    st: State,
}

impl Worker {
    /// Builds the ring (on the calling thread, which becomes its only submitter) and the
    /// provided-buffer ring.
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        listener: socket2::Socket,
        rx: Receiver<Remote>,
    ) -> Result<Worker, RingError> {
        let cfg = &shared.config;
        let ring = ring::build(4096)?;
        let bufs = BufRing::new(&ring, 0, cfg.recv_buffers, cfg.recv_buffer_size)?;
        let tick_ms = [
            cfg.handshake_timeout(),
            cfg.ping_interval(),
            cfg.idle_timeout(),
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
        .div_f64(4.0)
        .clamp(Duration::from_millis(10), Duration::from_millis(500));
        let st = State {
            id,
            shared,
            conns: Slab::new(),
            rooms: LocalRooms::default(),
            sq: Vec::with_capacity(256),
            dirty: Vec::new(),
            remote: Vec::new(),
            peers: Peers::new(Vec::new(), Vec::new()),
            batches: TurnBatches::default(),
            rx,
            listener,
            accepting: true,
            next_generation: 1,
            start: Instant::now(),
            now_ms: 0,
            drain_deadline: None,
            tick: Box::new(types::Timespec::from(tick_ms)),
            recvs_this_turn: 0,
            sends_last_flush: 0,
        };
        Ok(Worker { ring, bufs, st })
    }

    /// The ring's fd, for other workers' MSG_RING wake-ups.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Arms accept and the timer and submits them, so the listener accepts once this returns.
    pub fn start(&mut self, peers: Peers) -> std::io::Result<()> {
        self.st.remote = (0..peers.len()).map(|_| Vec::new()).collect();
        self.st.peers = peers;
        self.st.arm_accept();
        self.st.arm_tick();
        self.push_sqes()?;
        self.ring.submit()?;
        Ok(())
    }

    fn push_sqes(&mut self) -> std::io::Result<()> {
        for sqe in self.st.sq.drain(..) {
            // SAFETY: every SQE was built by this worker over memory that outlives its
            // completion: iovecs and frames owned by a live connection (kept until the send
            // completes), timespecs boxed in the state, fds the connection owns.
            while unsafe { self.ring.submission().push(&sqe) }.is_err() {
                self.ring.submit()?;
            }
        }
        Ok(())
    }

    /// Runs the event loop until a drain completes.
    pub fn run(mut self) -> std::io::Result<()> {
        let gather = Duration::from_micros(self.st.shared.config.gather_us);
        let gather_ts = types::Timespec::from(gather);
        loop {
            self.push_sqes()?;
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            self.st.now_ms = self.st.start.elapsed().as_millis() as u64;
            self.st.recvs_this_turn = 0;
            self.complete();
            let busy = self.st.recvs_this_turn >= BUSY_RECVS
                || (self.st.recvs_this_turn > 0 && self.st.sends_last_flush >= BUSY_SENDS);
            if busy && !gather.is_zero() {
                // Busy: let more receives land so each socket's send carries more frames.
                self.push_sqes()?;
                let args = types::SubmitArgs::new().timespec(&gather_ts);
                match self.ring.submitter().submit_with_args(GATHER_WANT, &args) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                        ) => {}
                    Err(e) => return Err(e),
                }
                self.complete();
            }
            self.st.flush();
            let m = self.st.metrics();
            m.loop_iterations.fetch_add(1, Ordering::Relaxed);
            if self.st.drain_deadline.is_some() && self.st.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn complete(&mut self) {
        let Worker { ring, bufs, st } = self;
        let mut n = 0u64;
        for cqe in ring.completion() {
            n += 1;
            st.handle(cqe.user_data(), cqe.result(), cqe.flags(), bufs);
        }
        st.metrics().completions.fetch_add(n, Ordering::Relaxed);
    }
}

impl State {
    pub(crate) fn metrics(&self) -> &WorkerMetrics {
        &self.shared.metrics[self.id]
    }

    fn handle(&mut self, data: u64, res: i32, flags: u32, bufs: &mut BufRing) {
        match Op::decode(data) {
            Op::Accept => self.on_accept(res, cqueue::more(flags)),
            Op::Recv(slot, generation) => self.on_recv(slot as usize, generation, res, flags, bufs),
            Op::Send(slot, generation) => self.on_send(slot as usize, generation, res),
            Op::Shutdown(slot, generation) | Op::Close(slot, generation) => self.on_teardown(
                slot as usize,
                generation,
                matches!(Op::decode(data), Op::Close(..)),
            ),
            Op::Tick => self.on_tick(),
            Op::Wake => self.on_wake(),
            Op::Ignore => {}
        }
    }

    fn arm_accept(&mut self) {
        let sqe = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Op::Accept.encode());
        self.sq.push(sqe);
    }

    fn arm_tick(&mut self) {
        let sqe = opcode::Timeout::new(&*self.tick as *const types::Timespec)
            .build()
            .user_data(Op::Tick.encode());
        self.sq.push(sqe);
    }

    pub(crate) fn arm_recv(&mut self, key: usize, group: u16) {
        let conn = &mut self.conns[key];
        conn.recv_armed = true;
        let sqe = opcode::RecvMulti::new(types::Fd(conn.fd), group)
            .build()
            .user_data(Op::Recv(key as u32, conn.generation).encode());
        self.sq.push(sqe);
    }

    fn live(&self, key: usize, generation: u32) -> bool {
        self.conns
            .get(key)
            .is_some_and(|c| c.generation == generation)
    }

    fn on_accept(&mut self, res: i32, more: bool) {
        if !more && self.accepting {
            self.arm_accept();
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                tracing::warn!(error = %std::io::Error::from_raw_os_error(-res), "accept failed");
            }
            return;
        }
        let fd = res;
        let m = self.metrics();
        m.accepted.fetch_add(1, Ordering::Relaxed);
        set_nodelay(fd);
        let cfg = &self.shared.config;
        let ip = if cfg.max_connections_per_ip > 0 {
            peer_ip(fd)
        } else {
            IpAddr::from([0, 0, 0, 0])
        };
        let open = self.shared.open.fetch_add(1, Ordering::Relaxed) + 1;
        let mut refusal = (open > cfg.max_connections).then_some(Refusal::ConnectionLimit);
        if cfg.max_connections_per_ip > 0 {
            let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            *n += 1;
            if *n > cfg.max_connections_per_ip {
                refusal = refusal.or(Some(Refusal::PerIpLimit));
            }
        }
        let generation = self.next_generation;
        self.next_generation = (self.next_generation + 1) & 0xff_ffff;
        let key = self
            .conns
            .insert(Conn::new(fd, generation, ip, self.now_ms));
        self.arm_recv(key, 0);
        if self.drain_deadline.is_some() {
            refusal = Some(Refusal::Draining);
        }
        if let Some(refusal) = refusal {
            self.reject(key, refusal);
        }
    }

    fn on_recv(&mut self, key: usize, generation: u32, res: i32, flags: u32, bufs: &mut BufRing) {
        let bid = cqueue::buffer_select(flags);
        if !self.live(key, generation) {
            if let Some(bid) = bid {
                bufs.recycle(bid);
            }
            return;
        }
        let more = cqueue::more(flags);
        if !more {
            self.conns[key].recv_armed = false;
        }
        if res > 0 {
            self.recvs_this_turn += 1;
            if let Some(bid) = bid {
                let data = bufs.get_mut(bid, res as usize);
                self.on_data(key, data);
                bufs.recycle(bid);
            }
            if !more && !self.conns[key].fd_closed && !self.dead(key) {
                self.arm_recv(key, bufs.group());
            }
        } else if res == -libc::ENOBUFS {
            // Every provided buffer was in use; they are back now, so listen again.
            if !self.dead(key) {
                self.arm_recv(key, bufs.group());
            }
        } else {
            // EOF or a reset: the client is gone (or finished its side of a close).
            self.abort(key);
        }
        self.maybe_finish(key);
    }

    fn on_send(&mut self, key: usize, generation: u32, res: i32) {
        if !self.live(key, generation) {
            return;
        }
        if res < 0 {
            self.conns[key].sent(0);
            self.abort(key);
            self.maybe_finish(key);
            return;
        }
        self.metrics()
            .bytes_out
            .fetch_add(res as u64, Ordering::Relaxed);
        let conn = &mut self.conns[key];
        let more = conn.sent(res as usize);
        if more {
            self.mark_dirty(key);
        } else if conn.shutdown_when_flushed && !self.dead(key) {
            self.shutdown(key, libc::SHUT_WR);
        }
        self.maybe_finish(key);
    }

    fn on_teardown(&mut self, key: usize, generation: u32, closed: bool) {
        if !self.live(key, generation) {
            return;
        }
        let conn = &mut self.conns[key];
        conn.pending_ops -= 1;
        if closed {
            if conn.pending_ops == 0 && !conn.recv_armed && !conn.sending {
                self.remove(key);
            }
            return;
        }
        self.maybe_finish(key);
    }

    /// Frees the slot once the fd is closed and no operation can still name it.
    fn remove(&mut self, key: usize) {
        let conn = self.conns.remove(key);
        self.metrics().closed.fetch_add(1, Ordering::Relaxed);
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
        if self.shared.config.max_connections_per_ip > 0 {
            let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_ip.get_mut(&conn.ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&conn.ip);
                }
            }
        }
    }

    pub(crate) fn dead(&self, key: usize) -> bool {
        self.conns[key].dead
    }

    /// Starts tearing a connection down: it leaves its room, unsent frames are dropped, and
    /// the socket is shut down so any armed receive or pending send completes.
    pub(crate) fn abort(&mut self, key: usize) {
        if self.conns[key].dead {
            return;
        }
        self.leave_room(key);
        let conn = &mut self.conns[key];
        conn.dead = true;
        conn.drop_unsent();
        conn.phase = Phase::Closing;
        self.shutdown(key, libc::SHUT_RDWR);
    }

    fn shutdown(&mut self, key: usize, how: i32) {
        let conn = &mut self.conns[key];
        conn.pending_ops += 1;
        conn.shutdown_when_flushed = false;
        let sqe = opcode::Shutdown::new(types::Fd(conn.fd), how)
            .build()
            .user_data(Op::Shutdown(key as u32, conn.generation).encode());
        self.sq.push(sqe);
    }

    /// Closes the fd once a dead connection has nothing in flight.
    fn maybe_finish(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.dead
            && !conn.fd_closed
            && !conn.recv_armed
            && !conn.sending
            && conn.pending_ops == 0
        {
            conn.fd_closed = true;
            conn.pending_ops += 1;
            let sqe = opcode::Close::new(types::Fd(conn.fd))
                .build()
                .user_data(Op::Close(key as u32, conn.generation).encode());
            self.sq.push(sqe);
        }
    }

    pub(crate) fn mark_dirty(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    /// End of turn: room batches become shared buffers, then one send per dirty socket and
    /// one message per other worker.
    fn flush(&mut self) {
        self.flush_batches();
        let mut sends = 0u64;
        for key in std::mem::take(&mut self.dirty) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.dead {
                continue;
            }
            if let Some((iov, n)) = conn.prepare_send() {
                let sqe = opcode::Writev::new(types::Fd(conn.fd), iov, n)
                    .build()
                    .user_data(Op::Send(key as u32, conn.generation).encode());
                self.sq.push(sqe);
                sends += 1;
            }
        }
        self.metrics().sends.fetch_add(sends, Ordering::Relaxed);
        self.sends_last_flush = sends;
        for to in 0..self.remote.len() {
            if self.remote[to].is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.remote[to]);
            if let Some(wake) = self.peers.send(to, Remote::Deliver(batch)) {
                self.sq.push(wake);
            }
        }
    }

    fn on_wake(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Remote::Deliver(batch) => {
                    self.metrics()
                        .remote_batches
                        .fetch_add(1, Ordering::Relaxed);
                    for (room, frames, count) in batch {
                        self.deliver_local(room.id, &frames, &[], Some(count as usize));
                    }
                }
                Remote::Drain => self.start_drain(),
            }
        }
    }

    fn start_drain(&mut self) {
        if self.drain_deadline.is_some() {
            return;
        }
        let deadline = self.now_ms + self.shared.config.drain_timeout().as_millis() as u64;
        self.drain_deadline = Some(deadline);
        self.accepting = false;
        self.sq.push(
            opcode::AsyncCancel::new(Op::Accept.encode())
                .build()
                .user_data(Op::Ignore.encode()),
        );
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            match self.conns[key].phase {
                Phase::Open => self.close_with(
                    key,
                    ringcast_protocol::CloseCode::GOING_AWAY,
                    "server shutting down",
                ),
                Phase::Handshake => self.abort(key),
                Phase::Closing => {}
            }
        }
    }

    fn on_tick(&mut self) {
        self.arm_tick();
        let cfg = &self.shared.config;
        let now = self.now_ms;
        let handshake = cfg.handshake_timeout().as_millis() as u64;
        let ping = cfg.ping_interval().as_millis() as u64;
        let idle = cfg.idle_timeout().as_millis() as u64;
        let drain_over = self.drain_deadline.is_some_and(|d| now >= d);
        let mut aborts = Vec::new();
        let mut pings = Vec::new();
        let mut idles = Vec::new();
        for (key, c) in self.conns.iter() {
            if c.dead {
                continue;
            }
            let quiet = now.saturating_sub(c.last_rx_ms);
            match c.phase {
                _ if drain_over => aborts.push(key),
                Phase::Handshake if quiet >= handshake => aborts.push(key),
                Phase::Closing if now.saturating_sub(c.closing_since_ms) >= LINGER_MS => {
                    aborts.push(key)
                }
                Phase::Open if quiet >= idle => idles.push(key),
                Phase::Open if quiet >= ping && !c.ping_outstanding => pings.push(key),
                _ => {}
            }
        }
        for key in aborts {
            self.abort(key);
            self.maybe_finish(key);
        }
        for key in idles {
            self.metrics().idle_timeouts.fetch_add(1, Ordering::Relaxed);
            self.close_with(key, ringcast_protocol::CloseCode::POLICY, "idle timeout");
        }
        for key in pings {
            let conn = &mut self.conns[key];
            conn.ping_outstanding = true;
            conn.push_frame(ringcast_protocol::OpCode::Ping, b"");
            self.metrics().messages_out.fetch_add(1, Ordering::Relaxed);
            self.mark_dirty(key);
        }
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is a socket we own; the option value points to a live c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn peer_ip(fd: RawFd) -> IpAddr {
    // SAFETY: `fd` is a socket we own and stay owning; SockRef does not close it on drop.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&fd);
    sock.peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}
