//! The worker's timed and cross-worker events: batches and replies other workers sent (on a
//! wake and on every tick, so a lost wake delays nothing), the drain, and the tick's timeouts.
//! Methods of [`Worker`] grouped here by concept; the struct and its loop live in `mod.rs`.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;

use ringcast_cluster::PresenceMember;
use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::OpCode;

use super::Worker;
use super::conns::Timeouts;
use crate::fanout::Remote;
use crate::fanout::deliver::DeliveryReport;
use crate::fanout::inbox::Inbox;
use crate::session::Session;

impl Worker {
    /// Takes what other workers (and the main thread) sent: on a wake and on every tick.
    pub(super) fn on_wake(&mut self) {
        let inboxes = self.fanout.inboxes();
        let inbox = &inboxes[self.ctx.id];
        let mut queued = Vec::new();
        if let Some(rooms) = inbox.take_lag(|| queued.extend(self.rx.try_iter())) {
            for msg in queued {
                self.on_remote(inbox, msg);
            }
            self.cut_lagging(&rooms);
        }
        while let Ok(msg) = self.rx.try_recv() {
            self.on_remote(inbox, msg);
        }
        if inbox.draining() {
            self.start_drain();
        }
    }

    /// This worker fell behind and batches of `rooms` were dropped on their way here: their
    /// local members missed messages and are cut with 1008 (counted as backpressure).
    pub(super) fn cut_lagging(&mut self, rooms: &HashSet<u64>) {
        let mut cut: Vec<usize> = Vec::new();
        for id in rooms {
            if let Some(room) = self.rooms.get(*id) {
                cut.extend(
                    room.classes()
                        .flat_map(|(_, members)| members.iter().copied()),
                );
            }
        }
        tracing::warn!(
            worker = self.ctx.id,
            rooms = rooms.len(),
            receivers = cut.len(),
            "worker fell behind the others: batches dropped, their receivers cut (1008)"
        );
        for member in cut {
            let Some(conn) = self.conns.get_mut(member) else {
                continue;
            };
            if conn.life.is_dead() || !conn.session.is_open() {
                continue;
            }
            conn.out.drop_unsent();
            let m = self.ctx.metrics();
            m.backpressure_disconnects.fetch_add(1, Relaxed);
            self.close_with(member, CloseCode::POLICY, "server fell behind");
        }
    }

    /// One message from another worker (a drain request arrives through the inbox's flag).
    pub(super) fn on_remote(&mut self, inbox: &Inbox, msg: Remote) {
        match msg {
            Remote::Deliver(batches) => {
                inbox.taken(batches.iter().map(|b| b.bytes()).sum());
                self.ctx.metrics().remote_batches.fetch_add(1, Relaxed);
                let (id, limit) = (self.ctx.id, self.ctx.shared.config.max_backpressure);
                let mut report = DeliveryReport::default();
                for batch in &batches {
                    let (rooms, conns) = (&mut self.rooms, &mut self.conns);
                    (self.fanout).deliver_remote(batch, rooms, id, limit, conns, &mut report);
                }
                self.apply_delivery(report);
            }
            Remote::Drain => self.start_drain(),
            Remote::Reply {
                key,
                generation,
                bytes,
            } => {
                let Some(conn) = self.conns.live(key, generation) else {
                    return;
                };
                if !conn.session.is_open() || conn.life.is_dead() {
                    return;
                }
                conn.out.push_owned(bytes);
                self.ctx.metrics().messages_out.fetch_add(1, Relaxed);
                self.conns.mark_dirty(key);
            }
            Remote::Snapshot {
                key,
                generation,
                token,
                remote,
                ..
            } => self.on_snapshot(key, generation, token, &remote),
        }
    }

    /// The other nodes' members for a pub/sub subscriber's presence snapshot: the session
    /// queues the snapshot and releases the events it held back.
    fn on_snapshot(&mut self, key: usize, generation: u32, token: u64, remote: &[PresenceMember]) {
        let Worker {
            conns,
            rooms,
            fanout,
            ctx,
            ..
        } = self;
        let Some(conn) = conns.live(key, generation) else {
            return;
        };
        let Session::PubSub(session) = &mut conn.session else {
            return;
        };
        if conn.life.is_dead() {
            return;
        }
        let mut sink = ctx.sink((key, generation), &mut conn.out, &mut fanout.batches, rooms);
        session.presence_answer(token, remote, &mut sink);
        let outcome = sink.outcome();
        self.apply(key, outcome);
    }

    pub(super) fn start_drain(&mut self) {
        if self.accepting.drain_deadline.is_some() {
            return;
        }
        let timeout = self.ctx.shared.config.drain_timeout().as_millis() as u64;
        self.accepting.drain_deadline = Some(self.turn.now_ms + timeout);
        self.accepting.on = false;
        self.sq.cancel_accept();
        if self.accepting.api.is_some() {
            self.sq.cancel_accept_api();
        }
        for key in self.conns.keys() {
            let conn = &self.conns[key];
            if conn.life.is_dead() {
                continue;
            }
            match conn.session {
                Session::Room(_) | Session::PubSub(_) => {
                    self.close_with(key, CloseCode::GOING_AWAY, "server shutting down")
                }
                Session::Handshake(_) | Session::Api(_) => self.abort(key),
                Session::Closing => {}
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        self.sq.tick();
        // A lost or late MSG_RING wake must not leave batches waiting (issue 14 row 13).
        self.on_wake();
        self.collect_memory();
        if self.accepting.resume(self.turn.now_ms) {
            self.sq.accept(self.accepting.listener.as_raw_fd());
            self.arm_api_accept();
        }
        self.ctx.shared.hub.sweep();
        self.api_tick();
        let now = self.turn.now_ms;
        let draining = self.accepting.drain_deadline.is_some();
        let drain_over = self.accepting.drain_deadline.is_some_and(|d| now >= d);
        let timeouts = Timeouts::new(&self.ctx.shared.config, draining, drain_over);
        let expired = self.conns.expired(now, &timeouts);
        for key in expired.abort {
            self.abort(key);
        }
        for key in expired.refuse {
            if let Session::Handshake(h) = &self.conns[key].session
                && let Some(limit) = h.limit()
            {
                self.reject(key, limit);
            }
        }
        for key in expired.idle {
            self.ctx.metrics().idle_timeouts.fetch_add(1, Relaxed);
            self.close_with(key, CloseCode::POLICY, "idle timeout");
        }
        for key in expired.ping {
            let conn = &mut self.conns[key];
            conn.ping_outstanding = true;
            conn.out.push_frame(OpCode::Ping, b"");
            self.ctx.metrics().messages_out.fetch_add(1, Relaxed);
            self.conns.mark_dirty(key);
        }
    }
}
