//! [`CipherBuf`]: the ciphertext of one TLS connection on its way to the kernel.

use std::os::fd::RawFd;

use io_uring::{opcode, types};

use crate::ring::Sqe;

/// Encrypted records waiting to be sent, and how far the sends have got.
///
/// Invariants (see the SAFETY note of [`CipherBuf::start_send`]): while a send is in flight the
/// kernel reads `bytes[sent..]`, so nothing may append to, shrink or free `bytes` until
/// [`CipherBuf::sent`] is called with the send's result; [`CipherBuf::append`] refuses while
/// one is in flight. Empty, it holds no allocation (an idle connection costs nothing here).
#[derive(Default)]
pub struct CipherBuf {
    bytes: Vec<u8>,
    /// Bytes of `bytes` already taken by the kernel.
    sent: usize,
    /// A SEND of `bytes[sent..]` is in flight.
    in_flight: bool,
}

impl CipherBuf {
    /// Nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.sent == self.bytes.len()
    }

    /// A send is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The buffer to append records to, or None while the kernel reads it.
    pub fn append(&mut self) -> Option<&mut Vec<u8>> {
        (!self.in_flight).then_some(&mut self.bytes)
    }

    /// A SEND of everything unsent on `fd`, or None when nothing is unsent or a send is in
    /// flight. [`CipherBuf::sent`] must be called with its result.
    pub fn start_send(&mut self, fd: RawFd, user_data: u64) -> Option<Sqe> {
        if self.in_flight || self.is_empty() {
            return None;
        }
        let rest = &self.bytes[self.sent..];
        let entry = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .build()
            .user_data(user_data);
        self.in_flight = true;
        // SAFETY: the kernel reads `bytes[sent..]` until the send's completion, after which
        // the worker calls `sent`. Until then:
        // 1. the bytes are the heap buffer of `self.bytes`: moving this `CipherBuf`, its
        //    `TlsConn` (boxed) or the connection (the slab moves connections as it grows) moves
        //    the `Vec`'s pointer, never the bytes;
        // 2. nothing writes, grows, shrinks or frees `bytes` while `in_flight`: `append` is the
        //    only way to reach it mutably and refuses while in flight, `start_send` returns
        //    early while in flight, and only `sent` (which clears the flag) frees the buffer;
        // 3. this buffer outlives the send and the fd stays open: the worker frees a connection
        //    (and with it its `TlsConn`) only when `Lifecycle::may_free_slot`, and closes its fd
        //    only when `Lifecycle::may_close_fd`, both false while a send is in flight (the
        //    worker reports `Event::SendStarted` for every send started here).
        Some(unsafe { Sqe::new(entry) })
    }

    /// Accounts for a completed send of `n` bytes (0 for a failed one); returns whether every
    /// byte has been sent, in which case the buffer is released.
    pub fn sent(&mut self, n: usize) -> bool {
        self.in_flight = false;
        self.sent = (self.sent + n).min(self.bytes.len());
        if self.is_empty() {
            self.bytes = Vec::new();
            self.sent = 0;
            return true;
        }
        false
    }

    /// Drops what is not in flight (the connection failed); returns whether a send is in
    /// flight still.
    pub fn drop_unsent(&mut self) -> bool {
        if !self.in_flight {
            self.bytes = Vec::new();
            self.sent = 0;
        }
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_is_refused_while_in_flight_and_a_full_send_releases_the_buffer() {
        let mut c = CipherBuf::default();
        assert!(c.is_empty() && c.start_send(3, 1).is_none());
        c.append().unwrap().extend_from_slice(b"abcdef");
        assert!(c.start_send(3, 1).is_some());
        assert!(c.append().is_none() && c.start_send(3, 1).is_none());
        assert!(!c.sent(4), "two bytes left");
        assert_eq!(c.bytes.len() - c.sent, 2);
        assert!(c.start_send(3, 1).is_some());
        assert!(c.sent(2));
        assert_eq!(c.bytes.capacity(), 0, "released when empty");
    }
}
