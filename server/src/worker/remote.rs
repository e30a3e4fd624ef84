//! The worker's timed and cross-worker events: batches and replies other workers sent (on a
//! wake and on every tick, so a lost wake delays nothing), the drain, and the tick's timeouts.
//! Methods of [`Worker`] grouped here by concept; the struct and its loop live in `mod.rs`.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use ringcast_cluster::PresenceMember;
use ringcast_protocol::frame::OpCode;

use super::Worker;
use super::conns::{ConnState, Timeouts};
use crate::conn::outq::HoldId;
use crate::fanout::Remote;
use crate::fanout::deliver::DeliveryReport;
use crate::fanout::inbox::Inbox;
use crate::session::pubsub::PubSubSession;
use crate::session::{Cut, End, Session, Sink};

impl Worker {
    /// Takes what other workers (and the main thread) sent: on a wake and on every tick.
    pub(super) fn on_wake(&mut self) {
        let inboxes = self.fanout.inboxes();
        let inbox = &inboxes[self.ctx.id];
        let mut queued = Vec::new();
        if let Some(lag) = inbox.take_lag(|| queued.extend(self.rx.try_iter())) {
            for msg in queued {
                self.on_remote(inbox, msg);
            }
            self.cut_lagging(&lag.rooms);
            for (key, generation) in lag.conns {
                if self.conns.live(key, generation).is_some() {
                    self.end(key, End::Cut(Cut::FellBehind));
                }
            }
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
            if self.conns.get_mut(member).is_some() {
                self.end(member, End::Cut(Cut::FellBehind));
            }
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
            } => self.on_reply(key, generation, bytes),
            Remote::Snapshot {
                key,
                generation,
                token,
                remote,
                ..
            } => self.on_snapshot(key, generation, token, &remote),
            Remote::ApiPresence {
                key,
                generation,
                token,
                members,
            } => self.on_api_presence(key, generation, token, members),
            Remote::Fill {
                key,
                generation,
                hold,
                payload,
            } => self.on_fill(key, generation, hold, &payload),
        }
    }

    /// A Pusher cache channel's answer from Redis for the place the subscriber's queue holds.
    fn on_fill(&mut self, key: usize, generation: u32, hold: HoldId, payload: &[u8]) {
        match self.conns.live(key, generation) {
            Some(conn) if conn.state() == ConnState::Open => {}
            _ => return,
        }
        self.with_session(key, |session, sink| {
            if let Session::Pusher(p) = session {
                p.cache_filled(hold, payload, sink);
            }
        });
    }

    /// The answer to a pub/sub `presence` request the connection asked of the cluster: the
    /// session queues it under the backpressure rule.
    fn on_reply(&mut self, key: usize, generation: u32, bytes: Vec<u8>) {
        self.with_pubsub(key, generation, |session, sink| {
            session.presence_reply(bytes, sink)
        });
    }

    /// The other nodes' members for a pub/sub subscriber's presence snapshot: the session
    /// queues the snapshot and releases the events it held back.
    fn on_snapshot(&mut self, key: usize, generation: u32, token: u64, remote: &[PresenceMember]) {
        self.with_pubsub(key, generation, |session, sink| {
            session.presence_answer(token, remote, sink)
        });
    }

    /// Runs `f` on connection `key`'s pub/sub session and its sink, if it is still that
    /// connection (`generation`), open and in pub/sub mode (an answer computed off the worker
    /// for a connection that left meanwhile is dropped); applies what the session did.
    fn with_pubsub(
        &mut self,
        key: usize,
        generation: u32,
        f: impl FnOnce(&mut PubSubSession, &mut Sink<'_>),
    ) {
        match self.conns.live(key, generation) {
            Some(conn) if conn.state() == ConnState::Open => {}
            _ => return,
        }
        self.with_session(key, |session, sink| {
            if let Session::PubSub(p) = session {
                f(p, sink);
            }
        });
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
            match self.conns[key].state() {
                ConnState::Open => {
                    let (code, reason) = self.conns[key].session.drain_close();
                    self.close_with(key, code, reason)
                }
                ConnState::Handshake | ConnState::Api => self.abort(key),
                ConnState::Closing | ConnState::Dead => {}
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        self.sq.tick();
        // A lost or late MSG_RING wake must not leave batches waiting (issue 14 row 13).
        self.on_wake();
        self.collect_memory();
        if self.accepting.resume(self.turn.now_ms) {
            self.arm_accepts();
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
            let (code, reason) = self.conns[key].session.idle_close();
            self.close_with(key, code, reason);
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
