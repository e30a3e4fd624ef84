//! [`CipherBuf`]: the ciphertext of one TLS connection on its way to the kernel.

use std::os::fd::RawFd;

use io_uring::{opcode, types};

use super::records::Records;
use crate::ring::Sqe;

/// Encrypted records waiting to be sent, and how far the sends have got.
///
/// Invariants (see the SAFETY note of [`CipherBuf::start_send`]): while a send is in flight the
/// kernel reads `bytes[sent..]`, so nothing may append to, shrink or free `bytes` until
/// [`CipherBuf::sent`] is called with the send's result; records made meanwhile (rustls'
/// answers to what arrived) go to `next`, which follows `bytes` once it is sent. Empty, it
/// holds no allocation (an idle connection costs nothing here): sent records' buffers go back
/// to the worker's spares (`records.rs`), so a busy connection does not allocate per send.
#[derive(Default)]
pub struct CipherBuf {
    bytes: Records,
    /// Bytes of `bytes` already taken by the kernel.
    sent: usize,
    /// A SEND of `bytes[sent..]` is in flight.
    in_flight: bool,
    /// Records appended while a send was in flight: sent after `bytes`.
    next: Records,
}

impl CipherBuf {
    /// Nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.sent == self.bytes.len() && self.next.is_empty()
    }

    /// A send is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The records to append to: behind everything unsent, never bytes the kernel reads.
    pub fn append(&mut self) -> &mut Records {
        if self.in_flight {
            return &mut self.next;
        }
        self.merge_next();
        &mut self.bytes
    }

    /// Moves `next` behind `bytes` (no send in flight).
    fn merge_next(&mut self) {
        if self.next.is_empty() {
            return;
        }
        if self.sent == self.bytes.len() {
            self.bytes.release();
            std::mem::swap(&mut self.bytes, &mut self.next);
            self.sent = 0;
        } else {
            self.bytes.append(&mut self.next);
        }
    }

    /// A SEND of everything unsent on `fd`, or None when nothing is unsent or a send is in
    /// flight. [`CipherBuf::sent`] must be called with its result.
    pub fn start_send(&mut self, fd: RawFd, user_data: u64) -> Option<Sqe> {
        if self.in_flight {
            return None;
        }
        self.merge_next();
        if self.is_empty() {
            return None;
        }
        let rest = &self.bytes.as_slice()[self.sent..];
        let entry = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .build()
            .user_data(user_data);
        self.in_flight = true;
        // SAFETY: the kernel reads `bytes[sent..]` until the send's completion, after which
        // the worker calls `sent`. Until then:
        // 1. the bytes are the heap buffer of `self.bytes` (a `Records`): moving this
        //    `CipherBuf`, its `TlsConn` (boxed) or the connection (the slab moves connections
        //    as it grows) moves the `Vec`'s pointer, never the bytes;
        // 2. nothing writes, grows, shrinks, frees or gives away `bytes` while `in_flight`:
        //    `append` hands out `next` instead while in flight, `start_send` and `merge_next`
        //    (called only when not in flight) return early while in flight, `drop_unsent`
        //    keeps `bytes` while in flight, and only `sent` (which clears the flag first)
        //    releases the buffer to the worker's spares, where another connection may reuse it;
        // 3. this buffer outlives the send and the fd stays open: the worker frees a connection
        //    (and with it its `TlsConn`) only when `Lifecycle::may_free_slot`, and closes its fd
        //    only when `Lifecycle::may_close_fd`, both false while a send is in flight (the
        //    worker reports `Event::SendStarted` for every send started here).
        // SAFETY: points 1–3 above hold until the send's completion.
        Some(unsafe { Sqe::new(entry) })
    }

    /// Accounts for a completed send of `n` bytes (0 for a failed one); returns whether every
    /// byte of the buffer that was in flight has been sent, in which case it is released.
    pub fn sent(&mut self, n: usize) -> bool {
        self.in_flight = false;
        self.sent = (self.sent + n).min(self.bytes.len());
        if self.sent == self.bytes.len() {
            self.bytes.release();
            std::mem::swap(&mut self.bytes, &mut self.next);
            self.sent = 0;
            return true;
        }
        false
    }

    /// Drops what is not in flight (the connection failed); returns whether a send is in
    /// flight still.
    pub fn drop_unsent(&mut self) -> bool {
        self.next.release();
        if !self.in_flight {
            self.bytes.release();
            self.sent = 0;
        }
        self.in_flight
    }
}

#[cfg(test)]
impl CipherBuf {
    /// The bytes a send in flight reads (tests play the kernel).
    pub fn in_flight_bytes(&self) -> &[u8] {
        &self.bytes.as_slice()[self.sent..]
    }

    /// Whether any allocation is held.
    pub fn holds_memory(&self) -> bool {
        self.bytes.holds_memory() || self.next.holds_memory()
    }
}

/// Room for the records of `len` plaintext bytes: a record carries at most 16 KiB and adds at
/// most 29 bytes (header 5, TLS 1.2 explicit nonce 8, tag 16; TLS 1.3: content type 1).
pub fn sealed_len(len: usize) -> usize {
    len + 32 * (len / RECORD_PLAINTEXT + 1)
}

/// The most plaintext one TLS record carries.
pub const RECORD_PLAINTEXT: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `bytes` as if they were records.
    fn push(c: &mut CipherBuf, bytes: &[u8]) {
        c.append().append_with(bytes.len(), |buf| {
            buf[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        });
    }

    #[test]
    fn records_made_while_in_flight_wait_and_a_full_send_releases_the_buffer() {
        let mut c = CipherBuf::default();
        assert!(c.is_empty() && c.start_send(3, 1).is_none());
        push(&mut c, b"abcdef");
        assert!(c.start_send(3, 1).is_some());
        assert!(c.start_send(3, 1).is_none());
        push(&mut c, b"gh");
        assert_eq!(
            c.bytes.as_slice(),
            b"abcdef",
            "the in-flight bytes are untouched"
        );
        assert!(!c.sent(4), "two bytes left");
        push(&mut c, b"ij");
        assert_eq!(c.in_flight_bytes(), b"efghij", "in order behind the rest");
        assert!(c.start_send(3, 1).is_some());
        assert!(c.sent(6));
        assert!(c.is_empty());
        assert!(!c.holds_memory(), "released when empty");
    }
}
