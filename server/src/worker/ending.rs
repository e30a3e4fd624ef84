//! How a worker applies what a session did, and how a connection ends: the one place that
//! closes (a session's Close, the end of an HTTP answer, a backpressure cut: [`End`]), orders
//! a connection's last bytes behind this turn's batches, and takes it out of its rooms.
//! Methods of [`Worker`] grouped here by concept; the struct and its loop live in `mod.rs`.

use std::sync::atomic::Ordering::Relaxed;

use ringcast_protocol::CloseCode;
use ringcast_protocol::frame::OpCode;
use ringcast_pubsub::presence::ChangeKind;

use super::Worker;
use super::conns::ConnState;
use crate::conn::lifecycle::{Event, Stage};
use crate::fanout::deliver::DeliveryReport;
use crate::refusal::Refusal;
use crate::rooms::local::Slot;
use crate::session::presence::presence_change;
use crate::session::pusher::channels::Farewell;
use crate::session::{Cut, End, Outcome, Session, Sink, handshake};

impl Worker {
    /// Applies what a session did through its sink.
    pub(super) fn apply(&mut self, key: usize, outcome: Outcome) {
        if outcome.queued {
            self.conns.mark_dirty(key);
        }
        if let Some(end) = outcome.end {
            self.end(key, end);
        }
    }

    /// Ends a connection's session: the one place that orders its last bytes, and the one
    /// place that closes (a session's Close, an HTTP answer's end, a backpressure cut).
    pub(super) fn end(&mut self, key: usize, end: End) {
        // A Close waits (linger) for the client's FIN; an HTTP answer closes once written.
        let (finish, close) = match end {
            End::Close { code, reason } => (Event::Finish, Some((code, reason, None))),
            End::Cut(cut) => {
                let reason = cut.reason().to_string();
                (
                    Event::Finish,
                    Some((Some(CloseCode::POLICY), reason, Some(cut))),
                )
            }
            End::Finish => (Event::FinishNow, None),
        };
        if let Some((code, reason, cut)) = close {
            // Messages batched earlier in this turn (this client's own echo among them) are
            // queued before the Close, in the order they were received.
            self.flush_batches();
            let conn = &self.conns[key];
            let open = conn.state() == ConnState::Open;
            self.leave_room(key);
            if !open {
                return; // closing already (an earlier cut or Close this turn)
            }
            let conn = &mut self.conns[key];
            if cut.is_some() {
                // What it has not started to receive is dropped; every chunk holds whole
                // frames, so the Close follows a frame boundary.
                conn.out.drop_unsent();
                (self.ctx.metrics().backpressure_disconnects).fetch_add(1, Relaxed);
            }
            match code {
                Some(code) => {
                    conn.out.push_close(code, &reason);
                    self.ctx.metrics().close_sent(code.0);
                }
                None => conn.out.push_frame(OpCode::Close, b""),
            }
        } else {
            self.leave_room(key);
        }
        let conn = &mut self.conns[key];
        if conn.life.stage() == Stage::Live {
            conn.closing_since_ms = self.turn.now_ms;
        }
        self.step(key, finish);
        self.conns.mark_dirty(key);
    }

    /// Sends Close `code` and closes once it is flushed (or the linger time runs out).
    pub(super) fn close_with(&mut self, key: usize, code: CloseCode, reason: &str) {
        let (code, reason) = (Some(code), reason.to_string());
        self.end(key, End::Close { code, reason });
    }

    /// Runs `f` on connection `key`'s session with a sink for it (an event that did not come
    /// from its socket: a refusal, an answer computed elsewhere, an order of the server API),
    /// then applies what the session did.
    pub(super) fn with_session(&mut self, key: usize, f: impl FnOnce(&mut Session, &mut Sink<'_>)) {
        let Worker {
            conns,
            rooms,
            fanout,
            ctx,
            ..
        } = self;
        let conn = &mut conns[key];
        let address = (key, conn.generation);
        let mut sink = ctx.sink(address, &mut conn.out, &mut fanout.batches, rooms);
        f(&mut conn.session, &mut sink);
        // A leave may have moved other members of the room into the freed slot.
        let moved = sink.take_moved();
        let outcome = sink.outcome();
        self.apply_moved(moved);
        self.apply(key, outcome);
    }

    /// Answers a connection still in its handshake with an HTTP error, then closes it.
    pub(super) fn reject(&mut self, key: usize, refusal: Refusal) {
        self.with_session(key, |_, sink| handshake::reject(sink, refusal));
    }

    /// Removes a connection from its room (its session becomes `Closing`); the last local
    /// member clears this worker's bit in the directory.
    pub(super) fn leave_room(&mut self, key: usize) {
        self.release_pending(key);
        let client = self.conns[key].session.client().cloned();
        // A Pusher presence member's `member_removed`, published while it is still a member.
        for farewell in self.conns[key].session.release(&self.ctx.shared) {
            match farewell {
                Farewell::Room(room, frame) => {
                    (self.fanout.batches).push(&room, key, OpCode::Text, &frame);
                }
                Farewell::Topic(topic, frame) => {
                    let room = self.ctx.shared.directory.get(&topic);
                    (self.fanout.batches).push_pusher_event(
                        &topic,
                        room.as_ref(),
                        key,
                        &frame,
                        None,
                    );
                }
            }
        }
        for (room, slot) in self.conns[key].session.close() {
            let left = self.rooms.leave(room.id, slot);
            if let Some(moved) = left
                .moved
                .and_then(|m| self.conns[m].session.slot_mut(room.id))
            {
                *moved = slot;
            }
            if left.empty {
                self.ctx.shared.directory.leave(&room, self.ctx.id);
            }
            if let (Some(bus), Some(c)) = (&self.ctx.shared.cluster, &client) {
                bus.presence_leave(&room.name, c.as_str());
            }
            let hub = &self.ctx.shared.hub;
            if let Some(event) = client
                .as_ref()
                .and_then(|c| presence_change(hub, &room.name, c, None, ChangeKind::Leave))
            {
                (self.fanout.batches).push_event(&room, key, &event.envelope, event.seq);
            }
        }
    }

    /// Writes the slots a session's leaves moved into the moved members' sessions.
    pub(super) fn apply_moved(&mut self, moved: Vec<(usize, u64, Slot)>) {
        for (key, room_id, slot) in moved {
            if let Some(s) = self.conns[key].session.slot_mut(room_id) {
                *s = slot;
            }
        }
    }

    /// Counts a delivery and applies the backpressure policy: a member over
    /// `--max-backpressure` loses what it has not started to receive and is closed with 1008.
    pub(super) fn apply_delivery(&mut self, report: DeliveryReport) {
        let m = self.ctx.metrics();
        m.deliveries.fetch_add(report.delivered, Relaxed);
        m.messages_out.fetch_add(report.delivered, Relaxed);
        for member in report.over_limit {
            self.end(member, End::Cut(Cut::Backpressure));
        }
    }
}
