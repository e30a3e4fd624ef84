//! [`TlsConn`]: one TLS connection between the ring and its session, on rustls' unbuffered
//! API: rustls keeps no record buffers of its own, so an idle connection holds none.

use std::os::fd::RawFd;
use std::sync::Arc;

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, WriteTraffic};
use rustls::{Error, ServerConfig};

use super::cipher::{CipherBuf, RECORD_PLAINTEXT, sealed_len};
use super::failure::Failure;
use super::records::Records;
use crate::conn::outq::OutQueue;
use crate::ring::Sqe;

/// What a receive did, besides feeding plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// Records are waiting to be sent (handshake messages, a ticket, an alert): flush the
    /// connection this turn.
    pub wants_write: bool,
    /// The handshake completed during this receive.
    pub handshake_done: bool,
}

/// One server-side TLS connection: rustls' state, the received bytes of an unfinished record,
/// the ciphertext being sent, and how much of the connection's `OutQueue` that ciphertext
/// carries.
pub struct TlsConn {
    tls: UnbufferedServerConnection,
    /// Received bytes rustls could not use yet (an unfinished record, or the records of a
    /// handshake message still arriving): allocated when a receive ends mid-record, released
    /// when it empties. Decryption happens in the provided buffer when no bytes wait here.
    partial: Vec<u8>,
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
        TlsConn {
            tls: UnbufferedServerConnection::new(config)
                .expect("a server config built by TlsAcceptor"),
            partial: Vec::new(),
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

    /// Decrypts `ciphertext` (in place, when no earlier bytes wait) and hands the plaintext to
    /// `feed` in pieces of at most `plain.len()` bytes (a buffer the caller lends for this
    /// call). On an error rustls' alert is encrypted: [`TlsConn::start_send`] sends it, and
    /// nothing more.
    pub(super) fn receive(
        &mut self,
        ciphertext: &mut [u8],
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
        let result = if self.partial.is_empty() {
            let used = self.pump(ciphertext, plain, &mut feed);
            if let Ok(used) = used {
                self.partial.extend_from_slice(&ciphertext[used..]);
            }
            used
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(ciphertext);
            let used = self.pump(&mut partial, plain, &mut feed);
            if let Ok(used) = used {
                partial.drain(..used);
                if !partial.is_empty() {
                    self.partial = partial;
                }
            }
            used
        };
        if let Err(e) = result {
            self.failed = true;
            self.partial = Vec::new();
            self.encode_pending();
            return Err(Failure::of(&e));
        }
        Ok(Received {
            wants_write: !self.cipher.is_empty(),
            handshake_done: was_handshaking && !self.tls.is_handshaking(),
        })
    }

    /// Runs rustls over `incoming` until it needs more bytes: plaintext goes to `feed`,
    /// handshake records into the ciphertext. Returns how many bytes of `incoming` it used;
    /// the rest (an unfinished record) must be passed again, in front of the next bytes.
    fn pump(
        &mut self,
        incoming: &mut [u8],
        plain: &mut [u8],
        feed: &mut impl FnMut(&mut [u8]),
    ) -> Result<usize, Error> {
        let mut used = 0;
        loop {
            let status = self.tls.process_tls_records(&mut incoming[used..]);
            let discard = status.discard;
            match status.state? {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        for piece in record?.payload.chunks(plain.len()) {
                            let n = piece.len();
                            plain[..n].copy_from_slice(piece);
                            feed(&mut plain[..n]);
                        }
                    }
                }
                ConnectionState::EncodeTlsData(mut record) => encode(&mut record, &mut self.cipher),
                // The encoded records are in `cipher`: the worker's flush sends them.
                ConnectionState::TransmitTlsData(sent) => sent.done(),
                // close_notify: nothing more is read; what was queued still goes out.
                ConnectionState::PeerClosed => {}
                // Needs more bytes (BlockedHandshake, WriteTraffic), or is done (Closed). No
                // early data is accepted (ServerConfig::max_early_data_size is 0).
                _ => return Ok(used + discard),
            }
            used += discard;
        }
    }

    /// After an error: rustls' alert (queued by the failed step) encoded into the ciphertext.
    fn encode_pending(&mut self) {
        // Each step either encodes a queued record or ends; a few suffice for one alert.
        for _ in 0..8 {
            match self.tls.process_tls_records(&mut []).state {
                Ok(ConnectionState::EncodeTlsData(mut record)) => {
                    encode(&mut record, &mut self.cipher)
                }
                Ok(ConnectionState::TransmitTlsData(sent)) => sent.done(),
                _ => return,
            }
        }
    }

    /// Runs `write` with rustls' application-data writer, once the handshake is done (records
    /// rustls queued first are encoded ahead of what `write` adds); false when not writable.
    fn write_traffic(
        &mut self,
        write: impl FnOnce(&mut WriteTraffic<'_, ServerConnectionData>, &mut CipherBuf) -> bool,
    ) -> bool {
        // The unfinished record's bytes are passed as they were (rustls keeps no copy of
        // them); it finds no complete record in them, so nothing is discarded or read.
        let mut partial = std::mem::take(&mut self.partial);
        let mut write = Some(write);
        let mut ok = false;
        for _ in 0..8 {
            let status = self.tls.process_tls_records(&mut partial);
            match status.state {
                Ok(ConnectionState::EncodeTlsData(mut record)) => {
                    encode(&mut record, &mut self.cipher)
                }
                Ok(ConnectionState::TransmitTlsData(sent)) => sent.done(),
                Ok(ConnectionState::WriteTraffic(mut writer)) => {
                    ok = write
                        .take()
                        .is_some_and(|w| w(&mut writer, &mut self.cipher));
                    break;
                }
                _ => break,
            }
        }
        self.partial = partial;
        ok
    }

    /// The TLS side failed (or the connection is being refused in plain text): nothing more
    /// is encrypted; what is already encrypted (an alert) still goes out.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Records are waiting to be sent (an alert after a failure, handshake messages).
    pub fn has_output(&self) -> bool {
        !self.cipher.is_empty()
    }

    /// Whether the ciphertext buffer may be dropped now (no send in flight reads it), for a
    /// connection that leaves TLS (answered in plain text).
    pub fn idle(&self) -> bool {
        !self.cipher.in_flight() && self.cipher.is_empty()
    }

    /// Starts a send on `fd`: ciphertext left from the last send, else the sendable chunks of
    /// `out` encrypted (once the handshake is done) behind whatever rustls has queued. None
    /// when nothing is to be sent or a send is in flight. [`TlsConn::sent`] must be called
    /// with its result.
    pub fn start_send(&mut self, out: &mut OutQueue, fd: RawFd, user_data: u64) -> Option<Sqe> {
        if self.cipher.in_flight() {
            return None;
        }
        if self.cipher.is_empty() {
            if self.failed {
                out.drop_unsent();
            } else if self.plain_in_flight == 0 && !self.tls.is_handshaking() && out.unsent() > 0 {
                let mut taken = 0;
                let mut sealed = true;
                self.write_traffic(|writer, cipher| {
                    taken = out.start_transformed(|slices| {
                        sealed = seal_slices(writer, slices, cipher.append());
                    });
                    true
                });
                self.plain_in_flight = taken;
                if !sealed {
                    // The keys are used up (TLS 1.2 at its record limit): the connection ends.
                    self.failed = true;
                }
            }
        }
        self.cipher.start_send(fd, user_data)
    }

    /// Accounts for a completed send of `n` ciphertext bytes (0 for a failed one); returns
    /// whether anything remains to be sent (ciphertext or queued plaintext).
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
            self.write_traffic(|writer, cipher| {
                cipher
                    .append()
                    .append_with(64, |buf| writer.queue_close_notify(buf).map_err(required))
            });
        }
        !self.cipher.is_empty() || queued
    }
}

/// An encrypt error as `Records::append_with` reads it: more room needed, or a failure.
fn required(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// Encodes one handshake record rustls queued into the ciphertext.
fn encode(
    record: &mut rustls::unbuffered::EncodeTlsData<'_, ServerConnectionData>,
    cipher: &mut CipherBuf,
) {
    cipher.append().append_with(1024, |buf| {
        record.encode(buf).map_err(|e| match e {
            EncodeError::InsufficientSize(s) => Some(s.required_size),
            _ => None,
        })
    });
}

thread_local! {
    /// Small slices gathered into one record's plaintext (one per worker thread: a copy of up
    /// to 16 KiB is cheaper than a record per slice, 22 bytes and one AEAD pass each).
    static GATHER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encrypts `slices` (whole frames) as application data records into `out`: consecutive
/// slices share records, each filled to 16 KiB but the last. False when rustls refuses (keys used up).
fn seal_slices(
    writer: &mut WriteTraffic<'_, ServerConnectionData>,
    slices: &mut dyn ExactSizeIterator<Item = &[u8]>,
    out: &mut Records,
) -> bool {
    let mut seal = |plain: &[u8]| {
        out.append_with(sealed_len(plain.len()), |buf| {
            writer.encrypt(plain, buf).map_err(required)
        })
    };
    if slices.len() == 1 {
        return slices.next().is_none_or(seal);
    }
    GATHER.with_borrow_mut(|gather| {
        gather.clear();
        for slice in slices {
            let mut rest: &[u8] = slice;
            while !rest.is_empty() {
                if gather.is_empty() && rest.len() >= RECORD_PLAINTEXT {
                    // Whole records straight from the slice, no copy.
                    let whole = rest.len() / RECORD_PLAINTEXT * RECORD_PLAINTEXT;
                    if !seal(&rest[..whole]) {
                        return false;
                    }
                    rest = &rest[whole..];
                    continue;
                }
                let take = (RECORD_PLAINTEXT - gather.len()).min(rest.len());
                gather.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if gather.len() == RECORD_PLAINTEXT {
                    if !seal(gather) {
                        return false;
                    }
                    gather.clear();
                }
            }
        }
        gather.is_empty() || seal(gather)
    })
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod conn_tests;

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
