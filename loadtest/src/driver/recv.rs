//! What arrives on a connection: the handshake answer, then frames (control frames answered,
//! fragments joined) and complete data messages handed to the scenario.

use super::{Driver, DriverError};
use crate::client::frame::{self, FrameError, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG};
use crate::conn::State;
use crate::scenario::Scenario;

impl<S: Scenario> Driver<S> {
    pub(super) fn on_recv(&mut self, c: usize, res: i32) -> Result<(), DriverError> {
        let conn = &mut self.io.conns[c];
        conn.recv_busy = false;
        if conn.state == State::Closed {
            return Ok(());
        }
        if res <= 0 {
            self.broken(c);
            return Ok(());
        }
        self.io.recv_bytes += res as u64;
        match &mut conn.tls {
            None => conn.rend += res as usize,
            Some(tls) => {
                let opened = tls.open(res as usize, &mut conn.rbuf, &mut conn.rend);
                let wants_write = tls.wants_write();
                match opened {
                    Err(_) => {
                        self.broken(c);
                        return Ok(());
                    }
                    Ok(n) => {
                        if wants_write {
                            self.io.mark_dirty(c);
                        }
                        if n == 0 {
                            // Handshake records only: nothing for the frame code yet.
                            return self.submit_recv(c);
                        }
                    }
                }
            }
        }
        let conn = &mut self.io.conns[c];
        if conn.state == State::Handshake {
            let Some(hs) = conn.hs.as_ref() else {
                return Ok(());
            };
            match hs.finish(&conn.rbuf[conn.rstart..conn.rend]) {
                Ok(None) => return self.submit_recv(c),
                Ok(Some(n)) => {
                    conn.rstart += n;
                    conn.hs = None;
                    self.opened(c);
                }
                Err(_) => {
                    self.io.stats.handshake_errors += 1;
                    self.setup_failed(c);
                    return Ok(());
                }
            }
        }
        if self.io.conns[c].http {
            let conn = &mut self.io.conns[c];
            let rbuf = std::mem::take(&mut conn.rbuf);
            let (start, end) = (conn.rstart, conn.rend);
            let used = self.sc.on_bytes(&mut self.io, c, &rbuf[start..end]);
            let conn = &mut self.io.conns[c];
            conn.rbuf = rbuf;
            conn.rstart += used.min(end - start);
            return self.submit_recv(c);
        }
        match self.frames(c) {
            Ok(()) => self.submit_recv(c),
            Err(_) => {
                self.broken(c);
                Ok(())
            }
        }
    }

    /// Connection `c` is open (upgraded, or connected for plain HTTP).
    pub(super) fn opened(&mut self, c: usize) {
        let conn = &mut self.io.conns[c];
        conn.state = State::Open;
        self.setting_up -= 1;
        if conn.reopened {
            self.io.stats.reconnects += 1;
        } else {
            self.settled += 1;
            self.io.stats.connected += 1;
            if conn.tls.as_ref().is_some_and(|t| t.resumed()) {
                self.io.stats.tls_resumed += 1;
            }
            self.io.stats.note_connect_time(self.io.now);
        }
        self.io.open += 1;
        self.sc.on_open(&mut self.io, c);
    }

    /// Handles every complete frame in the connection's receive buffer.
    fn frames(&mut self, c: usize) -> Result<(), FrameError> {
        let mut rbuf = std::mem::take(&mut self.io.conns[c].rbuf);
        let mut result = Ok(());
        loop {
            let conn = &mut self.io.conns[c];
            if conn.state == State::Closed {
                break;
            }
            let (start, end) = (conn.rstart, conn.rend);
            let allow_rsv1 = self.cfg.compression;
            let f = match frame::decode(&mut rbuf[start..end], self.cfg.max_frame, allow_rsv1) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            conn.rstart += f.total_len();
            let payload = &rbuf[start + f.header_len..start + f.total_len()];
            match f.opcode {
                OP_CLOSE => {
                    let code = if payload.len() >= 2 {
                        u16::from_be_bytes([payload[0], payload[1]])
                    } else {
                        0
                    };
                    if conn.state == State::Open {
                        *self.io.stats.server_closes.entry(code).or_default() += 1;
                        self.io.send_close(c, code.max(1000));
                        self.io.conns[c].state = State::Closing;
                        self.io.open = self.io.open.saturating_sub(1);
                        self.sc.on_closed(&mut self.io, c, Some(code));
                    }
                }
                OP_PING => self.io.send_frame(c, OP_PONG, payload),
                OP_PONG => {}
                OP_CONT => {
                    conn.frag.extend_from_slice(payload);
                    if f.fin {
                        let msg = std::mem::take(&mut conn.frag);
                        let binary = conn.frag_op == OP_BINARY;
                        let compressed = conn.frag_compressed;
                        self.deliver(c, binary, compressed, &msg);
                        self.io.conns[c].frag = msg;
                        self.io.conns[c].frag.clear();
                    }
                }
                op => {
                    if f.fin {
                        self.deliver(c, op == OP_BINARY, f.rsv1, payload);
                    } else {
                        conn.frag_op = op;
                        conn.frag_compressed = f.rsv1;
                        conn.frag.clear();
                        conn.frag.extend_from_slice(payload);
                    }
                }
            }
        }
        self.io.conns[c].rbuf = rbuf;
        result
    }

    fn deliver(&mut self, c: usize, binary: bool, compressed: bool, payload: &[u8]) {
        self.io.recv_msgs += 1;
        if !compressed {
            self.io.stats.payload_bytes += payload.len() as u64;
            if self.io.conns[c].state == State::Open {
                self.sc.on_message(&mut self.io, c, binary, payload);
            }
            return;
        }
        self.io.stats.compressed += 1;
        // A server that compresses a message once sends every receiver the same bytes: a
        // thread inflates them once (the last `INFLATED` kept), not once per receiver, or the
        // load generator would be what is measured.
        let i = match self.inflated.iter().position(|(z, _)| z[..] == payload[..]) {
            Some(i) => i,
            None => {
                let mut slot = if self.inflated.len() < INFLATED {
                    (Vec::new(), Vec::new())
                } else {
                    self.inflated.remove(0)
                };
                slot.0.clear();
                slot.0.extend_from_slice(payload);
                slot.1.clear();
                if !inflate(&mut self.inflater, payload, &mut slot.1) {
                    // Not deflate: then a message without our header (counted as foreign).
                    slot.1.clear();
                }
                self.inflated.push(slot);
                self.inflated.len() - 1
            }
        };
        let out = std::mem::take(&mut self.inflated[i].1);
        self.io.stats.payload_bytes += out.len() as u64;
        if self.io.conns[c].state == State::Open {
            self.sc.on_message(&mut self.io, c, binary, &out);
        }
        self.inflated[i].1 = out;
    }
}

/// Compressed messages a thread keeps inflated: a turn's batch of a room, received by each
/// subscriber in turn.
pub(super) const INFLATED: usize = 64;

/// Inflates one permessage-deflate message (RFC 7692 §7.2.2: the stripped `00 00 ff ff`
/// appended) from a reset stream into `out`; false when it is not valid deflate.
fn inflate(z: &mut flate2::Decompress, payload: &[u8], out: &mut Vec<u8>) -> bool {
    const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
    z.reset(false);
    for mut input in [payload, &TAIL[..]] {
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(payload.len() * 4).max(256));
            }
            let before = z.total_in();
            if z.decompress_vec(input, out, flate2::FlushDecompress::Sync)
                .is_err()
            {
                return false;
            }
            input = &input[(z.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
    }
    true
}
