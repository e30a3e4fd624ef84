//! [`TlsConn`]: one TLS connection between the ring and its session.

use std::io::{IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::cipher::CipherBuf;
use super::failure::Failure;
use crate::conn::outq::OutQueue;
use crate::ring::Sqe;

/// What a receive did, besides feeding plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// rustls has records to send (handshake messages, a ticket, an alert): flush the
    /// connection this turn.
    pub wants_write: bool,
    /// The handshake completed during this receive.
    pub handshake_done: bool,
}

/// One server-side TLS connection: rustls' state, the ciphertext being sent, and how much of
/// the connection's `OutQueue` that ciphertext carries.
pub struct TlsConn {
    tls: ServerConnection,
    cipher: CipherBuf,
    /// Plaintext bytes of the `OutQueue` (marked in flight there) whose records are in
    /// `cipher`: released with `OutQueue::sent` once the last of those records is sent.
    plain_in_flight: usize,
    /// No byte received yet (a plain HTTP request is spotted by its first bytes).
    fresh: bool,
    /// TLS failed: only what is already encrypted (the alert) is sent, nothing more.
    failed: bool,
    /// A close_notify alert was queued (after the connection's last bytes).
    notified: bool,
}

/// Whether `data` starts like a plain HTTP/1 request (a method and a space) rather than a TLS
/// record (whose first byte is a content type, 20 to 24).
fn looks_like_http(data: &[u8]) -> bool {
    const METHODS: [&[u8]; 8] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
    ];
    METHODS
        .iter()
        .any(|m| data.len() >= 4 && m.starts_with(&data[..data.len().min(m.len())]))
}

impl TlsConn {
    /// A connection awaiting its ClientHello.
    pub fn new(config: Arc<ServerConfig>) -> TlsConn {
        let mut tls = ServerConnection::new(config).expect("a server config built by TlsAcceptor");
        // The `OutQueue` bounds what is encrypted at once (--max-backpressure); rustls must
        // take a whole send, or the in-flight accounting would split a chunk.
        tls.set_buffer_limit(None);
        TlsConn {
            tls,
            cipher: CipherBuf::default(),
            plain_in_flight: 0,
            fresh: true,
            failed: false,
            notified: false,
        }
    }

    /// The handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Decrypts `ciphertext` and hands the plaintext to `feed` in pieces of at most
    /// `plain.len()` bytes (a buffer the caller lends for this call). On an error rustls has
    /// queued its alert: [`TlsConn::start_send`] sends it, and nothing more.
    pub(super) fn receive(
        &mut self,
        ciphertext: &[u8],
        plain: &mut [u8],
        mut feed: impl FnMut(&mut [u8]),
    ) -> Result<Received, Failure> {
        if self.failed {
            return Ok(Received::default());
        }
        if std::mem::take(&mut self.fresh) && looks_like_http(ciphertext) {
            self.failed = true;
            return Err(Failure::PlainHttp);
        }
        let was_handshaking = self.tls.is_handshaking();
        let mut rest = ciphertext;
        // `read_tls` on an empty reader would mean EOF: only called with bytes left.
        while !rest.is_empty() {
            match self.tls.read_tls(&mut rest) {
                Ok(0) => break, // close_notify received: nothing more is read
                Ok(_) => {}
                Err(_) => {
                    // Only "message buffer full" (a handshake message past 64 KiB) is possible
                    // here: plaintext is drained after every read.
                    self.failed = true;
                    return Err(Failure::BadRecord);
                }
            }
            if let Err(e) = self.tls.process_new_packets() {
                self.failed = true;
                return Err(Failure::of(&e));
            }
            loop {
                match self.tls.reader().read(plain) {
                    Ok(0) => break,
                    Ok(n) => feed(&mut plain[..n]),
                    // WouldBlock: no more plaintext for now. UnexpectedEof cannot happen (EOF
                    // is the ring's business, never passed to rustls).
                    Err(_) => break,
                }
            }
        }
        Ok(Received {
            wants_write: self.tls.wants_write(),
            handshake_done: was_handshaking && !self.tls.is_handshaking(),
        })
    }

    /// The TLS side failed (or the connection is being refused in plain text): nothing more
    /// is encrypted; what rustls queued (its alert) still goes out.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Records are waiting to be sent (an alert after a failure, handshake messages).
    pub fn has_output(&self) -> bool {
        !self.cipher.is_empty() || self.tls.wants_write()
    }

    /// Whether the ciphertext buffer may be dropped now (no send in flight reads it), for a
    /// connection that leaves TLS (answered in plain text).
    pub fn idle(&self) -> bool {
        !self.cipher.in_flight() && self.cipher.is_empty()
    }

    /// Starts a send on `fd`: ciphertext left from the last send, else the sendable chunks of
    /// `out` encrypted (once the handshake is done) plus whatever rustls has queued. None when
    /// nothing is to be sent or a send is in flight. [`TlsConn::sent`] must be called with its
    /// result.
    pub fn start_send(&mut self, out: &mut OutQueue, fd: RawFd, user_data: u64) -> Option<Sqe> {
        if self.cipher.in_flight() {
            return None;
        }
        if self.cipher.is_empty() {
            if self.failed {
                out.drop_unsent();
            } else if self.plain_in_flight == 0 && !self.tls.is_handshaking() {
                let tls = &mut self.tls;
                self.plain_in_flight = out.start_transformed(|slices| encrypt(tls, slices));
            }
            if let Some(buf) = self.cipher.append() {
                while self.tls.wants_write() {
                    // Writing into a Vec cannot fail.
                    if self.tls.write_tls(buf).is_err() {
                        break;
                    }
                }
            }
        }
        self.cipher.start_send(fd, user_data)
    }

    /// Accounts for a completed send of `n` ciphertext bytes (0 for a failed one); returns
    /// whether anything remains to be sent (ciphertext, queued plaintext, rustls' own records).
    /// `last`: the connection's last bytes are queued (it is flushing before its half-close):
    /// once they are all sent, a close_notify alert follows them.
    pub fn sent(&mut self, n: usize, out: &mut OutQueue, last: bool) -> bool {
        if self.cipher.sent(n) && self.plain_in_flight > 0 {
            out.sent(std::mem::take(&mut self.plain_in_flight));
        } else if n == 0 {
            // A failed send: the connection is torn down, its queue's in-flight mark cleared.
            self.cipher.drop_unsent();
            if self.plain_in_flight > 0 {
                out.sent(0);
                self.plain_in_flight = 0;
            }
        }
        let queued = !self.failed && out.unsent() > 0;
        if last && n > 0 && !queued && self.cipher.is_empty() && !self.notified {
            self.notified = true;
            self.tls.send_close_notify();
        }
        !self.cipher.is_empty() || self.tls.wants_write() || queued
    }
}

/// Encrypts `slices` (whole frames) as application data records into rustls' send buffer:
/// consecutive slices share records, up to 16 KiB each.
fn encrypt(tls: &mut ServerConnection, slices: &[IoSlice<'_>]) {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let mut done = tls.writer().write_vectored(slices).unwrap_or(0);
    // Without a buffer limit rustls takes everything at once; a short write (a key update in
    // between) is finished piece by piece.
    if done < total {
        for s in slices {
            if done >= s.len() {
                done -= s.len();
                continue;
            }
            let _ = tls.writer().write_all(&s[done..]);
            done = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_http;

    #[test]
    fn http_methods_are_told_from_tls_records() {
        assert!(looks_like_http(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http(b"POST /x"));
        assert!(looks_like_http(b"OPTI"));
        assert!(!looks_like_http(b"\x16\x03\x01\x02\x00"));
        assert!(!looks_like_http(b"GE"), "too short to tell: left to rustls");
        assert!(!looks_like_http(b"GETX"));
    }
}
