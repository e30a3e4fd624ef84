//! One worker: a thread pinned to a core with its own io_uring, listener, connections and rooms.
//!
//! A loop turn: submit queued SQEs and wait; handle every ready completion (accept, receive,
//! send, wake-up, timer); when the turn was busy, wait a bounded moment for more; then flush:
//! one `writev` per dirty socket and one batch per other worker that has members in the rooms
//! written to.
//!
//! The worker is a set of parts that own their data ([`Worker`]'s fields); each handler borrows
//! the parts it needs, and each part's methods live in the part's own module.

mod api;
mod budget;
pub mod conns;
mod ending;
mod parts;
mod remote;
pub mod sq;
mod tls_io;

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crossbeam_channel::Receiver;
use io_uring::{IoUring, cqueue, types};

use crate::conn::lifecycle::{Event, Stage};
use crate::fanout::{Fanout, Peers, Remote};
use crate::limits::{RING_ENTRIES, TURN_BATCH_BYTES};
use crate::refusal::Refusal;
use crate::ring::{self, BufRing, Op, RingError};

use crate::rooms::local::LocalRooms;
use crate::session::api::ApiSession;
use crate::session::{End, Session, handshake};
use crate::shared::Shared;
use crate::tls::{TlsAcceptor, WorkerTls};

use self::conns::Conns;
use self::parts::{Accepting, Ctx, Listener, Turn};
use self::sq::Sq;

/// A worker ready to run. Field order matters: the ring is dropped first, before the buffers,
/// timespec and queues its operations may still reference.
pub struct Worker {
    ring: IoUring,
    bufs: BufRing,
    sq: Sq,
    conns: Conns,
    rooms: LocalRooms,
    fanout: Fanout,
    rx: Receiver<Remote>,
    turn: Turn,
    accepting: Accepting,
    ctx: Ctx,
    /// TLS for connections accepted on the TLS listener (docs/running.md#tls).
    tls: WorkerTls,
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
        crate::deflate::install(crate::deflate::compress_config(cfg));
        let ring = ring::build(RING_ENTRIES)?;
        let bufs = BufRing::new(&ring, 0, cfg.recv_buffers, cfg.recv_buffer_size)?;
        Ok(Worker {
            ring,
            bufs,
            sq: Sq::new(cfg.tick_interval()),
            conns: Conns::default(),
            rooms: LocalRooms::default(),
            fanout: Fanout::new(Peers::new(Vec::new(), Vec::new())),
            rx,
            turn: Turn::new(),
            accepting: Accepting::new(listener),
            ctx: Ctx { id, shared },
            tls: WorkerTls::default(),
        })
    }

    /// Serves TLS with `acceptor` on the main listener, and plain bytes on `plain` beside it
    /// (`--tls-cert`, `--plain-listen`; docs/running.md#tls).
    pub fn with_tls(
        mut self,
        acceptor: Option<Arc<TlsAcceptor>>,
        plain: Option<socket2::Socket>,
    ) -> Worker {
        self.tls = WorkerTls::new(acceptor);
        self.accepting.plain = plain;
        self
    }

    /// The ring's fd, for other workers' MSG_RING wake-ups.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Arms accept and the timer and submits them, so the listener accepts once this returns.
    pub fn start(&mut self, peers: Peers) -> std::io::Result<()> {
        self.fanout = Fanout::new(peers);
        self.arm_accepts();
        self.sq.tick();
        self.sq.submit_into(&mut self.ring)?;
        self.ring.submit()?;
        Ok(())
    }

    /// Runs the event loop until a drain completes.
    pub fn run(mut self) -> std::io::Result<()> {
        let gather = Duration::from_micros(self.ctx.shared.config.gather_us);
        let gather_ts = types::Timespec::from(gather);
        loop {
            self.sq.submit_and_wait(&mut self.ring)?;
            self.turn.begin();
            self.complete();
            if self.turn.busy() && !gather.is_zero() {
                // Busy: let more receives land so each socket's send carries more frames.
                self.sq.submit_and_gather(&mut self.ring, &gather_ts)?;
                self.complete();
            }
            self.flush();
            if self.turn.collect_due {
                self.collect_memory();
            }
            self.ctx.metrics().loop_iterations.fetch_add(1, Relaxed);
            if self.accepting.drain_deadline.is_some() && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn complete(&mut self) {
        let mut n = 0u64;
        // One completion at a time, so each handler can borrow the whole worker; the queue's
        // head advances as each `completion()` borrow ends.
        loop {
            let next = self.ring.completion().next();
            let Some(cqe) = next else {
                break;
            };
            n += 1;
            let (data, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            match Op::decode(data) {
                Op::Accept => self.on_accept(res, cqueue::more(flags), Listener::Main),
                Op::AcceptPlain => self.on_accept(res, cqueue::more(flags), Listener::Plain),
                Op::ApiAccept => self.on_accept(res, cqueue::more(flags), Listener::Api),
                Op::Recv(slot, generation) => self.on_recv(slot as usize, generation, res, flags),
                Op::Send(slot, generation) => self.on_send(slot as usize, generation, res),
                Op::Shutdown(slot, generation) => {
                    self.on_op_done(slot as usize, generation, Event::ShutdownDone)
                }
                Op::Close(slot, generation) => {
                    self.on_op_done(slot as usize, generation, Event::CloseDone)
                }
                Op::Tick => self.on_tick(),
                Op::Wake => self.on_wake(),
                Op::Ignore => {}
            }
        }
        self.ctx.metrics().completions.fetch_add(n, Relaxed);
    }

    /// A connection accepted on `listener`.
    fn on_accept(&mut self, res: i32, more: bool, listener: Listener) {
        if matches!(
            -res,
            libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS
        ) {
            // Re-arming now would fail again at once (a busy loop): pause, the tick resumes.
            let error = std::io::Error::from_raw_os_error(-res);
            self.accepting.pause(self.turn.now_ms, &error);
            // Every listener pauses; the tick re-arms them all (`arm_accepts`).
            self.sq.cancel_accept();
            self.sq.cancel_accept_api();
            return;
        }
        if !more && self.accepting.on && self.accepting.paused_until.is_none() {
            self.rearm_accept(listener);
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                tracing::warn!(error = %std::io::Error::from_raw_os_error(-res), "accept failed");
            }
            return;
        }
        self.accepting.accepted();
        let fd = res;
        #[cfg(feature = "fault-injection")]
        if std::env::var("RINGCAST_TEST_FAIL_WORKER").is_ok_and(|v| v == self.ctx.id.to_string()) {
            panic!(
                "fault injection: worker {} fails at its first accept",
                self.ctx.id
            );
        }
        self.ctx.metrics().accepted.fetch_add(1, Relaxed);
        let ip = parts::prepare_socket(fd, &self.ctx.shared.config);
        let refusal = self.ctx.shared.admit(ip);
        let key = self.conns.insert(fd, ip, self.turn.now_ms);
        if listener == Listener::Main {
            self.conns[key].tls = self.tls.accept();
        }
        self.arm_recv(key);
        if self.accepting.drain_deadline.is_some() {
            self.reject(key, Refusal::Draining);
        } else if let Some(limit) = refusal {
            // Refused once its request head passes Origin, token and room (the order of docs/tokens.md#order-of-checks).
            self.conns[key].session = Session::Handshake(handshake::Handshake::over_limit(limit));
        } else if listener == Listener::Api {
            self.conns[key].session = Session::Api(ApiSession::default());
        }
    }

    fn arm_recv(&mut self, key: usize) {
        let conn = &self.conns[key];
        self.sq
            .recv(conn.fd, key, conn.generation, self.bufs.group());
        self.step(key, Event::RecvArmed);
    }

    fn on_recv(&mut self, key: usize, generation: u32, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        if self.conns.live(key, generation).is_none() {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return;
        }
        let more = cqueue::more(flags);
        if res > 0 || res == -libc::ENOBUFS {
            if res > 0 {
                self.turn.recvs += 1;
                if let Some(bid) = bid {
                    self.on_data(key, bid, res as usize);
                }
            }
            // ENOBUFS: every provided buffer was in use; they are back now, so listen again.
            if !more {
                self.step(key, Event::RecvEnded);
                if self.conns.get_mut(key).is_some_and(|c| c.life.may_recv()) {
                    self.arm_recv(key);
                }
            }
        } else {
            if !more {
                self.step(key, Event::RecvEnded);
            }
            if res == 0 {
                self.on_fin(key);
            } else {
                // A reset or an error: the client is gone.
                self.abort(key);
            }
        }
    }

    /// The client half-closed (EOF): what is queued for it is still sent, then the connection
    /// closes (docs/limits.md#connections-and-rooms); with nothing queued (or after our own half-close) it closes now.
    fn on_fin(&mut self, key: usize) {
        let conn = &self.conns[key];
        if conn.life.is_dead() {
            return;
        }
        if conn.out.unsent() == 0 {
            self.abort(key);
            return;
        }
        if conn.life.stage() == Stage::Live {
            self.end(key, End::Finish);
        }
        self.step(key, Event::PeerFin);
    }

    /// Hands received bytes to the connection's session (decrypted first on a TLS connection)
    /// and gives the buffer back.
    fn on_data(&mut self, key: usize, bid: u16, len: usize) {
        let Worker {
            bufs,
            conns,
            rooms,
            fanout,
            turn,
            ctx,
            tls,
            ..
        } = self;
        let conn = &mut conns[key];
        conn.last_rx_ms = turn.now_ms;
        conn.ping_outstanding = false;
        let data = bufs.get_mut(bid, len);
        let address = (key, conn.generation);
        let mut sink = ctx.sink(address, &mut conn.out, &mut fanout.batches, rooms);
        let received = match &mut conn.tls {
            None => {
                conn.session.feed(data, &mut sink);
                None
            }
            Some(t) => {
                let session = &mut conn.session;
                Some(tls.receive(t, data, |plain| {
                    // Once the session ends, the rest of this read is dropped, as the decoder
                    // drops what follows a fatal frame in a plain read.
                    if !sink.ending() {
                        session.feed(plain, &mut sink);
                    }
                }))
            }
        };
        let moved = sink.take_moved();
        let outcome = sink.outcome();
        bufs.recycle(bid);
        self.apply_moved(moved);
        self.apply(key, outcome);
        if let Some(received) = received {
            self.on_tls_received(key, received);
        }
        self.account_pending(key);
        if self.fanout.batches.bytes() >= TURN_BATCH_BYTES {
            // Keeps every batch far below the 4 GiB its u32 offsets can address.
            self.flush_batches();
        }
    }

    fn on_send(&mut self, key: usize, generation: u32, res: i32) {
        let Some(conn) = self.conns.live(key, generation) else {
            return;
        };
        if res < 0 {
            match &mut conn.tls {
                None => conn.out.sent(0),
                Some(tls) => tls.sent(0, &mut conn.out, false),
            };
            self.teardown(key, Event::SendFailed);
            return;
        }
        let more = match &mut conn.tls {
            None => conn.out.sent(res as usize),
            Some(tls) => {
                let last = conn.life.stage() == Stage::Flushing;
                tls.sent(res as usize, &mut conn.out, last)
            }
        };
        self.ctx.metrics().bytes_out.fetch_add(res as u64, Relaxed);
        self.step(key, Event::SendDone { more });
    }

    fn on_op_done(&mut self, key: usize, generation: u32, event: Event) {
        if self.conns.live(key, generation).is_some() {
            self.step(key, event);
        }
    }

    /// Starts tearing a connection down: it leaves its room, unsent frames are dropped, and
    /// the socket is shut down so any armed receive or pending send completes.
    fn abort(&mut self, key: usize) {
        self.note_tls_abort(key);
        self.teardown(key, Event::Abort);
    }

    fn teardown(&mut self, key: usize, event: Event) {
        if !self.conns[key].life.is_dead() {
            self.leave_room(key);
            self.conns[key].out.drop_unsent();
        }
        self.step(key, event);
    }

    /// Feeds `event` to a connection's lifecycle and submits what it asks for.
    fn step(&mut self, key: usize, event: Event) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let todo = conn.life.on(event);
        let (fd, generation) = (conn.fd, conn.generation);
        if todo.send_more {
            self.conns.mark_dirty(key);
        }
        if let Some(how) = todo.shutdown {
            self.sq.shutdown(fd, how, key, generation);
        }
        if todo.close_fd {
            self.sq.close(fd, key, generation);
        }
        if todo.free_slot {
            let conn = self.conns.remove(key);
            self.ctx.metrics().closed.fetch_add(1, Relaxed);
            self.ctx.shared.release(conn.ip);
        }
    }

    /// End of turn: room batches are frozen and delivered, then one send per dirty socket and
    /// one message per other worker.
    fn flush(&mut self) {
        self.flush_batches();
        let mut sends = 0u64;
        for key in self.conns.take_dirty() {
            let Some(conn) = self.conns.flushing(key) else {
                continue;
            };
            if !conn.life.may_send() {
                continue;
            }
            let (fd, generation) = (conn.fd, conn.generation);
            let started = match &mut conn.tls {
                None => self.sq.send(&mut conn.out, fd, key, generation),
                Some(tls) => self.sq.send_tls(tls, &mut conn.out, fd, key, generation),
            };
            if started {
                self.step(key, Event::SendStarted);
                sends += 1;
            }
        }
        self.ctx.metrics().sends.fetch_add(sends, Relaxed);
        self.turn.sends_last_flush = sends;
        let sq = &mut self.sq;
        self.fanout.send(|fd| sq.wake(fd));
    }

    /// Freezes each room's batch of this turn, hands it to the other workers with members in
    /// the room, and delivers it to the local members.
    fn flush_batches(&mut self) {
        if self.fanout.batches.is_empty() {
            return;
        }
        let (id, shared) = (self.ctx.id, &self.ctx.shared);
        let report = (self.fanout).flush_batches(id, shared, &mut self.rooms, &mut self.conns);
        self.apply_delivery(report);
    }
}
