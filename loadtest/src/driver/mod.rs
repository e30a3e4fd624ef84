//! One io_uring event loop per thread driving many client connections.
//!
//! Each connection has at most one `recv` and one `send` in flight. Messages a scenario queues
//! during a loop turn are appended to the connection's `out` buffer and leave in one `send` at the
//! end of the turn (corked), so the client spends few syscalls per message. Buffers handed to the
//! kernel (`rbuf` from `rend`, `sending`) are never touched until their completion arrives.

use std::net::SocketAddr;
use std::sync::Arc;

mod recv;
mod ring;

use io_uring::{IoUring, opcode, squeue, types};

use crate::client::handshake::ClientHandshake;
use crate::conn::{Conn, Io, State};
use crate::scenario::Scenario;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::target::{Target, target_of};

const KIND_CONNECT: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_RECV: u64 = 3;
const KIND_WAKE: u64 = 4;

/// How every thread connects.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The servers; connections are spread over them round-robin ([`target_of`]).
    pub targets: Vec<Target>,
    /// A plain HTTP connection's server instead (the `api` scenario's `--api-url`).
    pub http_target: Option<Target>,
    /// Spread each thread's connection attempts evenly over this many ns.
    pub ramp_ns: u64,
    /// At most this many connects/handshakes in progress per thread.
    pub concurrency: usize,
    /// Initial receive buffer per connection (grows for larger messages).
    pub recv_buf: usize,
    /// Largest frame accepted from the server.
    pub max_frame: usize,
    /// The TLS client configuration, for `wss://` targets.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Offer permessage-deflate and inflate compressed messages (`--compression`).
    pub compression: bool,
}

/// Why a thread's event loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// io_uring set-up or `io_uring_enter` failed.
    #[error("io_uring: {0}")]
    Ring(std::io::Error),
}

/// The event loop of one thread.
pub struct Driver<S: Scenario> {
    ring: IoUring,
    io: Io,
    sc: S,
    cfg: DriverConfig,
    sockaddrs: Box<[(libc::sockaddr_storage, libc::socklen_t)]>,
    wake_buf: Box<[u8; 8]>,
    next_start: usize,
    setting_up: usize,
    settled: usize,
    ready: Option<Box<dyn FnOnce() + Send>>,
    cqes: Vec<(u64, i32)>,
    /// The thread's inflater, reset per message (we ask `server_no_context_takeover`).
    inflater: flate2::Decompress,
    /// The last compressed messages inflated (compressed, inflated), oldest first.
    inflated: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<S: Scenario> Driver<S> {
    /// A loop for thread `thread` that will open one connection per entry of `protocols`
    /// (the subprotocol each offers) and call `ready` once all of them settled (open or failed).
    pub fn new(
        cfg: DriverConfig,
        thread: usize,
        protocols: Vec<Option<String>>,
        shared: Arc<Shared>,
        ready: Box<dyn FnOnce() + Send>,
        sc: S,
    ) -> Result<Self, DriverError> {
        let entries = (protocols.len() * 2 + 64).clamp(256, 4096) as u32;
        let ring = ring::new_ring(entries.next_power_of_two()).map_err(DriverError::Ring)?;
        let threads = shared.threads();
        let n_targets = cfg.targets.len();
        let conns = protocols
            .into_iter()
            .enumerate()
            .map(|(c, p)| {
                let mut conn = Conn::new(p);
                conn.target = match &cfg.http_target {
                    // Last in `targets` (below): not one of the servers subscribers use.
                    Some(_) if conn.http => n_targets,
                    _ => target_of(c, thread, threads, n_targets),
                };
                conn
            })
            .collect();
        let sockaddrs = (cfg.targets.iter().chain(&cfg.http_target))
            .map(|t| ring::to_sockaddr(t.addr))
            .collect();
        Ok(Self {
            ring,
            io: Io::new(conns, shared, thread),
            sc,
            sockaddrs,
            cfg,
            wake_buf: Box::new([0; 8]),
            next_start: 0,
            setting_up: 0,
            settled: 0,
            ready: Some(ready),
            cqes: Vec::with_capacity(1024),
            inflater: flate2::Decompress::new_with_window_bits(false, 15),
            inflated: Vec::new(),
        })
    }

    fn push(&mut self, entry: squeue::Entry) -> Result<(), DriverError> {
        loop {
            // SAFETY: every buffer or address an entry points to (sockaddrs, wake_buf, a
            // connection's rbuf tail or sending buffer) lives in `self` and is not moved, resized
            // or freed until the entry's completion has been reaped.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit().map_err(DriverError::Ring)?;
        }
    }

    fn arm_wake(&mut self) -> Result<(), DriverError> {
        let fd = self.io.shared.waker_fd(self.io.thread);
        let e = opcode::Read::new(types::Fd(fd), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(KIND_WAKE);
        self.push(e)
    }

    /// Runs until the scenario says it is finished; returns the thread's measurements and the
    /// scenario (for its own results).
    pub fn run(mut self) -> Result<(Stats, S), DriverError> {
        self.arm_wake()?;
        self.io.now = self.io.shared.now();
        let ramp_base = self.io.now;
        loop {
            self.io.now = self.io.shared.now();
            self.start_connections(ramp_base)?;
            self.start_reconnects()?;
            if self.settled == self.io.conns.len()
                && let Some(ready) = self.ready.take()
            {
                ready();
            }
            if self.io.shared.is_started() {
                self.sc.on_turn(&mut self.io);
                if self.sc.finished(&mut self.io) {
                    break;
                }
            }
            self.flush()?;
            self.io.publish_progress();
            let mut deadline = if self.io.shared.is_started() {
                self.sc.deadline(&self.io)
            } else {
                None
            };
            if let Some(t) = self.next_ramp_time(ramp_base) {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
            self.wait(deadline)?;
            self.reap()?;
        }
        self.shutdown()?;
        self.io.publish_progress();
        self.io.stats.received_all = self.io.recv_msgs;
        self.io.stats.wire_bytes = self.io.recv_bytes;
        Ok((self.io.stats, self.sc))
    }

    fn next_ramp_time(&self, base: u64) -> Option<u64> {
        let n = self.io.conns.len();
        if self.cfg.ramp_ns == 0 || self.next_start >= n || self.setting_up >= self.cfg.concurrency
        {
            return None;
        }
        Some(base + self.cfg.ramp_ns * self.next_start as u64 / n as u64)
    }

    fn start_connections(&mut self, ramp_base: u64) -> Result<(), DriverError> {
        while self.next_start < self.io.conns.len() && self.setting_up < self.cfg.concurrency {
            if let Some(t) = self.next_ramp_time(ramp_base)
                && t > self.io.now
            {
                break;
            }
            let c = self.next_start;
            self.next_start += 1;
            self.io.stats.note_connect_time(self.io.now);
            self.open_socket(c)?;
        }
        Ok(())
    }

    /// Reopens the connections a scenario closed with [`Io::reconnect`], once the kernel holds
    /// none of their buffers any more (their last send and receive completed).
    fn start_reconnects(&mut self) -> Result<(), DriverError> {
        if self.io.reopen.is_empty() {
            return Ok(());
        }
        let mut reopen = std::mem::take(&mut self.io.reopen);
        let mut i = 0;
        while i < reopen.len() {
            let c = reopen[i];
            let conn = &self.io.conns[c];
            if conn.send_busy || conn.recv_busy {
                i += 1;
                continue;
            }
            reopen.swap_remove(i);
            self.io.conns[c].reset_for_reconnect();
            self.open_socket(c)?;
        }
        reopen.append(&mut self.io.reopen);
        self.io.reopen = reopen;
        Ok(())
    }

    /// Creates the socket of `c` and submits its connect to the connection's target.
    fn open_socket(&mut self, c: usize) -> Result<(), DriverError> {
        let target = self.io.conns[c].target;
        let address = match self.cfg.targets.get(target) {
            Some(t) => t.addr,
            None => self
                .cfg
                .http_target
                .as_ref()
                .map_or(self.cfg.targets[0].addr, |t| t.addr),
        };
        let family = match address {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            self.io.stats.connect_errors += 1;
            self.io.conns[c].state = State::Closed;
            if !self.io.conns[c].reopened {
                self.settled += 1;
            }
            return Ok(());
        }
        let one: libc::c_int = 1;
        // SAFETY: `one` outlives the call and the length matches its type.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let conn = &mut self.io.conns[c];
        conn.fd = fd;
        conn.state = State::Connecting;
        self.setting_up += 1;
        let (storage, len) = &self.sockaddrs[target];
        let addr = (storage as *const libc::sockaddr_storage).cast();
        let e = opcode::Connect::new(types::Fd(fd), addr, *len)
            .build()
            .user_data(((c as u64) << 8) | KIND_CONNECT);
        self.push(e)
    }

    fn flush(&mut self) -> Result<(), DriverError> {
        while let Some(c) = self.io.dirty.pop() {
            let conn = &mut self.io.conns[c];
            conn.dirty = false;
            let tls_pending = conn.tls.as_ref().is_some_and(|t| t.wants_write());
            if conn.send_busy || (conn.out.is_empty() && !tls_pending) || conn.fd < 0 {
                continue;
            }
            match &mut conn.tls {
                // `sending` is empty: the last send completed.
                Some(tls) => tls.seal(&mut conn.out, &mut conn.sending),
                None => std::mem::swap(&mut conn.out, &mut conn.sending),
            }
            if conn.sending.is_empty() {
                // Plaintext rustls holds until its handshake is done: nothing to send yet.
                continue;
            }
            conn.send_off = 0;
            conn.send_busy = true;
            self.submit_send(c)?;
        }
        Ok(())
    }

    fn submit_send(&mut self, c: usize) -> Result<(), DriverError> {
        let conn = &self.io.conns[c];
        let rest = &conn.sending[conn.send_off..];
        let len = rest.len().min(u32::MAX as usize) as u32;
        let e = opcode::Send::new(types::Fd(conn.fd), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(((c as u64) << 8) | KIND_SEND);
        self.push(e)
    }

    fn submit_recv(&mut self, c: usize) -> Result<(), DriverError> {
        let conn = &mut self.io.conns[c];
        if conn.fd < 0 || conn.recv_busy {
            return Ok(());
        }
        if conn.rstart == conn.rend {
            conn.rstart = 0;
            conn.rend = 0;
        } else if conn.rend == conn.rbuf.len() || conn.rstart > conn.rbuf.len() / 2 {
            conn.rbuf.copy_within(conn.rstart..conn.rend, 0);
            conn.rend -= conn.rstart;
            conn.rstart = 0;
        }
        if conn.rend == conn.rbuf.len() {
            let n = conn.rbuf.len().max(self.cfg.recv_buf) * 2;
            conn.rbuf.resize(n, 0);
        }
        if conn.rbuf.is_empty() {
            conn.rbuf.resize(self.cfg.recv_buf, 0);
        }
        conn.recv_busy = true;
        let free = match &mut conn.tls {
            Some(tls) => &mut tls.cbuf[..],
            None => &mut conn.rbuf[conn.rend..],
        };
        let len = free.len().min(u32::MAX as usize) as u32;
        let e = opcode::Recv::new(types::Fd(conn.fd), free.as_mut_ptr(), len)
            .build()
            .user_data(((c as u64) << 8) | KIND_RECV);
        self.push(e)
    }

    fn wait(&mut self, deadline: Option<u64>) -> Result<(), DriverError> {
        let now = self.io.shared.now();
        ring::wait(&mut self.ring, now, deadline).map_err(DriverError::Ring)
    }

    fn reap(&mut self) -> Result<(), DriverError> {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        for &(ud, res) in &cqes {
            let c = (ud >> 8) as usize;
            match ud & 0xFF {
                KIND_WAKE => self.arm_wake()?,
                KIND_CONNECT => self.on_connect(c, res)?,
                KIND_SEND => self.on_send(c, res)?,
                KIND_RECV => {
                    self.io.now = self.io.shared.now();
                    self.on_recv(c, res)?;
                }
                _ => {}
            }
        }
        self.cqes = cqes;
        Ok(())
    }

    fn setup_failed(&mut self, c: usize) {
        self.setting_up -= 1;
        if !self.io.conns[c].reopened {
            self.settled += 1;
        }
        self.io.close_fd(c);
    }

    fn on_connect(&mut self, c: usize, res: i32) -> Result<(), DriverError> {
        if self.io.conns[c].state != State::Connecting {
            return Ok(());
        }
        if res < 0 {
            self.io.stats.connect_errors += 1;
            self.setup_failed(c);
            return Ok(());
        }
        if self.io.conns[c].http {
            // Plain HTTP: nothing to upgrade.
            self.opened(c);
            return self.submit_recv(c);
        }
        let key = self.io.rng.key();
        let conn = &mut self.io.conns[c];
        conn.state = State::Handshake;
        let target = &self.cfg.targets[conn.target];
        if let (true, Some(config)) = (target.tls, &self.cfg.tls) {
            match crate::tls::TlsLayer::new(config, &target.server_name) {
                Ok(tls) => conn.tls = Some(Box::new(tls)),
                Err(_) => {
                    self.io.stats.handshake_errors += 1;
                    self.setup_failed(c);
                    return Ok(());
                }
            }
        }
        conn.hs = Some(ClientHandshake::start(
            &mut conn.out,
            &target.host,
            &target.path,
            conn.protocol.as_deref(),
            key,
        ));
        if self.cfg.compression {
            crate::client::handshake::offer_deflate(&mut conn.out);
        }
        self.io.mark_dirty(c);
        self.submit_recv(c)
    }

    fn on_send(&mut self, c: usize, res: i32) -> Result<(), DriverError> {
        let conn = &mut self.io.conns[c];
        conn.send_busy = false;
        if conn.state == State::Closed {
            return Ok(());
        }
        if res <= 0 {
            self.broken(c);
            return Ok(());
        }
        conn.send_off += res as usize;
        if conn.send_off < conn.sending.len() {
            conn.send_busy = true;
            return self.submit_send(c);
        }
        conn.sending.clear();
        if !conn.out.is_empty() || conn.tls.as_ref().is_some_and(|t| t.wants_write()) {
            self.io.mark_dirty(c);
        }
        Ok(())
    }

    /// The connection broke (I/O error or EOF) outside a close handshake.
    fn broken(&mut self, c: usize) {
        match self.io.conns[c].state {
            State::Connecting | State::Handshake => {
                self.io.stats.handshake_errors += 1;
                self.setup_failed(c);
            }
            State::Open => {
                self.io.stats.unexpected_closes += 1;
                self.io.close_fd(c);
                self.sc.on_closed(&mut self.io, c, None);
            }
            State::Closing => self.io.close_fd(c),
            State::Pending | State::Closed => {}
        }
    }

    /// Sends Close 1000 on every open connection, waits for those sends, closes every socket.
    fn shutdown(&mut self) -> Result<(), DriverError> {
        for c in 0..self.io.conns.len() {
            // A plain HTTP connection just closes (its socket, below).
            if self.io.conns[c].state == State::Open && !self.io.conns[c].http {
                self.io.send_close(c, 1000);
                self.io.conns[c].state = State::Closing;
            }
        }
        self.flush()?;
        let give_up = self.io.shared.now() + 1_000_000_000;
        while self.io.conns.iter().any(|c| c.send_busy || c.recv_busy) {
            for c in 0..self.io.conns.len() {
                if self.io.conns[c].send_busy || self.io.conns[c].state == State::Closed {
                    continue;
                }
                // Nothing more to send: shutting the socket down completes the pending recv.
                self.io.close_fd(c);
            }
            if self.io.shared.now() >= give_up {
                break;
            }
            self.wait(Some(give_up))?;
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
            for &(ud, _) in &cqes {
                let c = (ud >> 8) as usize;
                match ud & 0xFF {
                    KIND_SEND => self.io.conns[c].send_busy = false,
                    KIND_RECV => self.io.conns[c].recv_busy = false,
                    _ => {}
                }
            }
            self.cqes = cqes;
        }
        for c in 0..self.io.conns.len() {
            self.io.close_fd(c);
        }
        Ok(())
    }
}
