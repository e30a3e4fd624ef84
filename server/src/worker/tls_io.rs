//! `Worker`'s TLS hooks (docs/running.md#tls): both listeners' accepts, what a receive on a TLS
//! connection asks for (a flush for handshake records, a close on failure), and failures
//! counted by reason. The TLS layer itself is `crate::tls`.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;

use crate::session::{End, Session};
use crate::tls::{Failure, Received};

use super::Worker;
use super::parts::Listener;

/// The plain-text answer to an HTTP request sent to the TLS port.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
    Content-Length: 45\r\nConnection: close\r\n\r\nThis port speaks TLS: use https:// or wss://\n";

impl Worker {
    /// Arms the multishot accept of each listener.
    pub(super) fn arm_accepts(&mut self) {
        self.sq.accept(self.accepting.listener.as_raw_fd());
        if let Some(plain) = &self.accepting.plain {
            self.sq.accept_plain(plain.as_raw_fd());
        }
        self.arm_api_accept();
    }

    /// Re-arms the accept of one listener whose multishot accept ended.
    pub(super) fn rearm_accept(&mut self, listener: Listener) {
        match (listener, &self.accepting.plain) {
            (Listener::Plain, Some(plain)) => self.sq.accept_plain(plain.as_raw_fd()),
            (Listener::Api, _) => self.arm_api_accept(),
            _ => self.sq.accept(self.accepting.listener.as_raw_fd()),
        }
    }

    /// After a TLS connection's receive: flush what rustls wants sent, or close on a failure.
    pub(super) fn on_tls_received(&mut self, key: usize, received: Result<Received, Failure>) {
        match received {
            Ok(r) => {
                if r.handshake_done {
                    self.ctx.metrics().tls_handshakes.fetch_add(1, Relaxed);
                }
                if r.wants_write {
                    self.conns.mark_dirty(key);
                }
            }
            Err(failure) => self.tls_failed(key, failure),
        }
    }

    /// A TLS connection failed: counted by reason; rustls' alert (if any) is sent, then the
    /// connection closes. A plain HTTP request gets a plain 400 first.
    fn tls_failed(&mut self, key: usize, failure: Failure) {
        self.ctx.metrics().tls_failed(failure.label());
        let conn = &mut self.conns[key];
        if conn.life.is_dead() {
            return;
        }
        if failure == Failure::PlainHttp {
            // Nothing was sent or is in flight yet (this was the first receive): the
            // connection leaves TLS and is answered in plain text.
            if conn.tls.as_ref().is_some_and(|t| t.idle()) {
                conn.tls = None;
                conn.out.push_owned(PLAIN_HTTP_ANSWER.to_vec());
            }
        } else if let Some(tls) = &mut conn.tls {
            tls.fail();
        }
        let output = conn.out.unsent() > 0 || conn.tls.as_ref().is_some_and(|t| t.has_output());
        self.end(key, End::Finish);
        if !output {
            self.abort(key);
        }
    }

    /// Before a connection is torn down: one whose TLS handshake had not completed counts as
    /// a failure (`timeout` past `--handshake-timeout`, else `eof`: the client left).
    pub(super) fn note_tls_abort(&mut self, key: usize) {
        let conn = &self.conns[key];
        let Some(tls) = &conn.tls else {
            return;
        };
        if conn.life.is_dead()
            || !tls.is_handshaking()
            || !matches!(conn.session, Session::Handshake(_))
        {
            return;
        }
        let timeout = self.ctx.shared.config.handshake_timeout().as_millis() as u64;
        let failure = if self.turn.now_ms.saturating_sub(conn.accepted_ms) >= timeout {
            Failure::Timeout
        } else {
            Failure::Eof
        };
        self.ctx.metrics().tls_failed(failure.label());
    }
}
