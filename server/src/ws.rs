//! The WebSocket side of a connection: decoded frames become pongs, closes and room messages,
//! and room messages fan out to local members and to other workers.

use std::sync::atomic::Ordering;

use ringcast_protocol::frame::{Event, MessageKind, OpCode};
use ringcast_protocol::{CloseCode, ProtocolError};

use crate::conn::Phase;
use crate::worker::State;

/// What a decoded event asks the worker to do, owned so the decoder's borrow can end.
enum Action {
    Nothing,
    Message,
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
                            let m = &self.shared.metrics[self.id];
                            m.messages_in.fetch_add(1, Ordering::Relaxed);
                            m.bytes_in
                                .fetch_add(payload.len() as u64, Ordering::Relaxed);
                            if let Some((room, _)) = conn.room.as_ref() {
                                self.batches.push(room, key, op, &payload);
                            }
                            Action::Message
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
                Action::Message => {}
                Action::Pong(payload, len) => {
                    self.conns[key].push_frame(OpCode::Pong, &payload[..usize::from(len)]);
                    self.metrics().messages_out.fetch_add(1, Ordering::Relaxed);
                    self.mark_dirty(key);
                }
                Action::Close(code) => {
                    // Echo the client's code (an empty Close gets an empty Close back).
                    // Messages batched earlier in this turn go out before the Close.
                    self.flush_batches();
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
                    self.close_with(key, CloseCode::from(&e), &e.to_string());
                    return;
                }
            }
        }
    }

    /// Sends Close `code` and closes once it is flushed (or the linger time runs out).
    pub(crate) fn close_with(&mut self, key: usize, code: CloseCode, reason: &str) {
        // Messages batched earlier in this turn (this client's own echo among them) are
        // queued before the Close, in the order they were received.
        self.flush_batches();
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
}
