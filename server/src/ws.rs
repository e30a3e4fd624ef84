//! The WebSocket side of a connection: decoded frames become pongs, closes and room messages,
//! and room messages fan out to local members and to other workers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ringcast_protocol::frame::{Event, MessageKind, OpCode, shared_frame};
use ringcast_protocol::{CloseCode, ProtocolError};

use crate::conn::Phase;
use crate::worker::State;

/// What a decoded event asks the worker to do, owned so the decoder's borrow can end.
enum Action {
    Nothing,
    Message(Arc<[u8]>, usize),
    Pong([u8; 125], u8),
    Close(Option<CloseCode>),
    Fail(ProtocolError),
}

impl State {
    /// Decodes `data` (a receive buffer, unmasked in place) for an open connection.
    pub(crate) fn frames(&mut self, key: usize, data: &mut [u8]) {
        let mut pos = 0;
        while pos < data.len() {
            let conn = &mut self.conns[key];
            if conn.phase != Phase::Open {
                return;
            }
            let Some(decoder) = conn.decoder.as_mut() else {
                return;
            };
            let action = match decoder.decode(&mut data[pos..]) {
                Ok((n, event)) => {
                    pos += n;
                    match event {
                        None => Action::Nothing,
                        Some(Event::Message { kind, payload, .. }) => {
                            let op = match kind {
                                MessageKind::Text => OpCode::Text,
                                MessageKind::Binary => OpCode::Binary,
                            };
                            Action::Message(shared_frame(op, payload), payload.len())
                        }
                        Some(Event::Ping(p)) => {
                            let mut copy = [0u8; 125];
                            copy[..p.len()].copy_from_slice(p);
                            Action::Pong(copy, p.len() as u8)
                        }
                        Some(Event::Pong(_)) => Action::Nothing,
                        Some(Event::Close(c)) => Action::Close(c.code),
                    }
                }
                Err(e) => Action::Fail(e),
            };
            match action {
                Action::Nothing => {}
                Action::Message(frame, len) => {
                    let m = self.metrics();
                    m.messages_in.fetch_add(1, Ordering::Relaxed);
                    m.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
                    self.publish(key, frame);
                }
                Action::Pong(payload, len) => {
                    self.conns[key].push_frame(OpCode::Pong, &payload[..usize::from(len)]);
                    self.metrics().messages_out.fetch_add(1, Ordering::Relaxed);
                    self.mark_dirty(key);
                }
                Action::Close(code) => {
                    // Echo the client's code (an empty Close gets an empty Close back).
                    self.leave_room(key);
                    let now = self.now_ms;
                    let conn = &mut self.conns[key];
                    match code {
                        Some(code) => {
                            conn.push_close(code, "", now);
                            self.metrics().close_sent(code.0);
                        }
                        None => {
                            conn.push_frame(OpCode::Close, b"");
                            conn.close_sent = true;
                            conn.begin_closing(now);
                        }
                    }
                    self.mark_dirty(key);
                    return;
                }
                Action::Fail(e) => {
                    tracing::debug!(error = %e, "closing client for a protocol violation");
                    self.close_with(key, e.close_code(), &e.to_string());
                    return;
                }
            }
        }
    }

    /// Sends Close `code` and closes once it is flushed (or the linger time runs out).
    pub(crate) fn close_with(&mut self, key: usize, code: CloseCode, reason: &str) {
        self.leave_room(key);
        let now = self.now_ms;
        let conn = &mut self.conns[key];
        if conn.close_sent || conn.dead {
            return;
        }
        conn.push_close(code, reason, now);
        self.metrics().close_sent(code.0);
        self.mark_dirty(key);
    }

    /// Removes a connection from its room; the last local member clears this worker's bit.
    pub(crate) fn leave_room(&mut self, key: usize) {
        let Some((room, index)) = self.conns[key].room.take() else {
            return;
        };
        let (moved, empty) = self.rooms.remove(room.id, index);
        if let Some((_, i)) = moved.and_then(|m| self.conns[m].room.as_mut()) {
            *i = index;
        }
        if empty {
            self.shared.directory.leave(&room, self.id);
        }
    }

    /// Fans a message from `sender` out to its room on every core.
    fn publish(&mut self, sender: usize, frame: Arc<[u8]>) {
        let Some((room, _)) = self.conns[sender].room.as_ref() else {
            return;
        };
        let room = room.clone();
        let except = (!self.shared.config.echo).then_some(sender);
        let others = room.workers.load(Ordering::Acquire) & !(1u64 << self.id);
        let mut bits = others;
        while bits != 0 {
            let to = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(batch) = self.remote.get_mut(to) {
                batch.push((room.clone(), frame.clone()));
            }
        }
        self.deliver_local(room.id, &frame, except);
    }

    /// Queues `frame` for every local member of room `room_id` but `except`; members pushed
    /// over `--max-backpressure` are closed with 1008.
    pub(crate) fn deliver_local(&mut self, room_id: u64, frame: &Arc<[u8]>, except: Option<usize>) {
        let Some(room) = self.rooms.get(room_id) else {
            return;
        };
        let limit = self.shared.config.max_backpressure;
        let mut over = Vec::new();
        let mut delivered = 0u64;
        for &member in &room.members {
            if Some(member) == except {
                continue;
            }
            let conn = &mut self.conns[member];
            // A single frame never trips the limit alone: the backlog before it must exceed it.
            let backlog = conn.out_bytes;
            conn.push_shared(frame.clone());
            delivered += 1;
            if backlog > 0 && conn.out_bytes > limit {
                over.push(member);
            }
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(member);
            }
        }
        let m = self.metrics();
        m.deliveries.fetch_add(delivered, Ordering::Relaxed);
        m.messages_out.fetch_add(delivered, Ordering::Relaxed);
        for member in over {
            self.metrics()
                .backpressure_disconnects
                .fetch_add(1, Ordering::Relaxed);
            self.conns[member].drop_unsent();
            self.close_with(member, CloseCode::POLICY, "backpressure limit exceeded");
        }
    }
}
