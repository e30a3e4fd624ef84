//! [`Records`]: a buffer TLS records are encrypted into, written in place without zero-filling
//! it on every send, and the worker's spare buffers it is taken from and given back to.
//!
//! A fan-out turn encrypts one run of records per receiver and the kernel reads each until its
//! send completes, so every receiver needs a buffer of its own for a moment. Allocating (and
//! zero-filling) one per send was a measurable share of the wss:// send path; instead a
//! connection takes a buffer from its worker's spares when it has records to send and gives it
//! back once they are all sent, so an idle connection still holds none and the spares are
//! bounded per worker ([`SPARE_BYTES`]), not per connection.

use std::cell::RefCell;

/// The most buffer capacity a worker keeps spare, all buffers together (bytes): enough for a
/// turn of 64 B messages to a few thousand receivers.
pub const SPARE_BYTES: usize = 1 << 20;
/// The largest buffer kept spare; larger ones (bulk sends) are freed.
const SPARE_MAX_ONE: usize = 64 * 1024;

/// Buffers of this worker thread that hold no records: their bytes are initialised (their
/// `len`), so records are written over them without zero-filling first.
struct Spares {
    bufs: Vec<Vec<u8>>,
    /// Capacity of `bufs`' buffers together.
    bytes: usize,
}

thread_local! {
    /// One per worker thread: a connection and its records stay on one worker.
    static SPARES: RefCell<Spares> = const { RefCell::new(Spares { bufs: Vec::new(), bytes: 0 }) };
}

/// A spare buffer (its bytes initialised), or an empty one when none is spare.
fn take_spare() -> Vec<u8> {
    SPARES.with_borrow_mut(|s| {
        let buf = s.bufs.pop().unwrap_or_default();
        s.bytes -= buf.capacity();
        buf
    })
}

/// Keeps `buf` spare for the next connection with records to send, if it fits the bound.
fn give_spare(buf: Vec<u8>) {
    let cap = buf.capacity();
    if cap == 0 || cap > SPARE_MAX_ONE {
        return;
    }
    SPARES.with_borrow_mut(|s| {
        if s.bytes + cap <= SPARE_BYTES {
            s.bytes += cap;
            s.bufs.push(buf);
        }
    });
}

/// Records one after the other in one buffer.
///
/// Invariant: every byte of `buf` up to its `len` is initialised (written once, as zeroes when
/// the buffer grew, or by an earlier record); `end <= buf.len()`; `buf[..end]` are the records,
/// the rest is room already initialised for the next ones. Empty, it holds no allocation.
#[derive(Default)]
pub struct Records {
    buf: Vec<u8>,
    end: usize,
}

impl Records {
    /// Bytes of records held.
    pub fn len(&self) -> usize {
        self.end
    }

    /// No records are held.
    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// The records.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.end]
    }

    /// Whether an allocation is held (tests check that an idle connection holds none).
    #[cfg(test)]
    pub fn holds_memory(&self) -> bool {
        self.buf.capacity() > 0
    }

    /// Appends what `write` produces, given at least `room` bytes to start with and more when
    /// it asks for more (its error says how many it needs: `Err(Some(required))`; `Err(None)`:
    /// it failed, the records are left as they were). Only bytes never written before are
    /// zero-filled.
    pub fn append_with(
        &mut self,
        mut room: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
    ) -> bool {
        if self.buf.capacity() == 0 {
            self.buf = take_spare();
        }
        loop {
            if self.buf.len() < self.end + room {
                self.buf.resize(self.end + room, 0);
            }
            match write(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(Some(required)) if required > room => room = required,
                Err(_) => return false,
            }
        }
    }

    /// Moves the records of `other` behind these; `other` is left empty.
    pub fn append(&mut self, other: &mut Records) {
        if self.is_empty() {
            std::mem::swap(self, other);
            other.release();
            return;
        }
        let bytes = other.as_slice();
        self.append_with(bytes.len(), |buf| {
            buf[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        });
        other.release();
    }

    /// Drops the records; the buffer becomes one of the worker's spares (or is freed).
    pub fn release(&mut self) {
        self.end = 0;
        give_spare(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_with_grows_to_what_the_writer_asks_for() {
        let mut out = Records::default();
        assert!(out.append_with(1, |buf| {
            buf[0] = b'x';
            Ok(1)
        }));
        let ok = out.append_with(2, |buf| {
            if buf.len() < 5 {
                return Err(Some(5));
            }
            buf[..3].copy_from_slice(b"abc");
            Ok(3)
        });
        assert!(ok);
        assert_eq!(out.as_slice(), b"xabc");
        assert!(!out.append_with(2, |_| Err(None)));
        assert_eq!(out.as_slice(), b"xabc", "unchanged on failure");
    }

    #[test]
    fn a_released_buffer_is_reused_without_zero_filling_and_the_spares_are_bounded() {
        let mut a = Records::default();
        a.append_with(100, |buf| {
            buf[..100].fill(7);
            Ok(100)
        });
        a.release();
        assert!(!a.holds_memory(), "released records hold nothing");
        let mut b = Records::default();
        b.append_with(10, |buf| {
            assert!(
                buf.len() >= 100,
                "the spare's initialised bytes are offered"
            );
            assert_eq!(buf[50], 7, "and were not zero-filled again");
            buf[..10].fill(1);
            Ok(10)
        });
        assert_eq!(b.as_slice(), [1; 10]);
        b.release();
        let big = vec![0u8; SPARE_MAX_ONE + 1];
        give_spare(big);
        SPARES.with_borrow(|s| {
            assert!(s.bytes <= SPARE_BYTES);
            assert!(s.bufs.iter().all(|b| b.capacity() <= SPARE_MAX_ONE));
        });
    }

    #[test]
    fn append_moves_records_behind() {
        let mut a = Records::default();
        let mut b = Records::default();
        b.append_with(2, |buf| {
            buf[..2].copy_from_slice(b"gh");
            Ok(2)
        });
        a.append(&mut b);
        assert_eq!(a.as_slice(), b"gh");
        b.append_with(2, |buf| {
            buf[..2].copy_from_slice(b"ij");
            Ok(2)
        });
        a.append(&mut b);
        assert_eq!(a.as_slice(), b"ghij");
        assert!(b.is_empty() && !b.holds_memory());
    }
}
