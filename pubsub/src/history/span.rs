//! What a history entry costs, and the entry ringcast stores: a span of a shared buffer.

use std::ops::Range;
use std::sync::Arc;

/// Bytes the allocator spends per live block beyond its requested size (header and rounding; a
/// glibc-like estimate, pessimistic for mimalloc's small size classes).
pub const BLOCK_OVERHEAD: usize = 16;

/// What an entry is charged against `--history-max-bytes`: the heap it keeps alive.
///
/// Entries may share one allocation (the messages of one batch, appended together): a run of
/// adjacent entries in a topic's log for which [`Weigh::shares_allocation`] holds is charged
/// [`Weigh::weight`] once, which therefore must be the same for every entry of the run. The slot
/// each entry takes in the log is charged separately.
pub trait Weigh: Sized {
    /// Heap bytes this entry keeps alive (its whole allocation, header and allocator overhead
    /// included), shared or not.
    fn weight(&self) -> usize;

    /// True when `self` and `other` keep the same allocation alive (default: never).
    fn shares_allocation(&self, _other: &Self) -> bool {
        false
    }

    /// The bytes of its allocation this entry itself needs (default: its whole weight).
    fn used(&self) -> usize {
        self.weight()
    }

    /// Moves a run of entries sharing one allocation (oldest first) into one allocation of their
    /// own, just big enough: called when they use a small part of what they keep alive, so
    /// eviction of the rest of a batch frees it. Default: nothing.
    fn compact(_run: &mut [&mut Self]) {}
}

/// One message inside a shared, already-encoded buffer: replay clones the `Arc`, never the bytes.
#[derive(Clone, Debug)]
pub struct SharedSpan {
    buf: Arc<[u8]>,
    start: u32,
    end: u32,
}

impl SharedSpan {
    /// The message at `range` of `buf`; `None` if the range is not inside it.
    pub fn new(buf: Arc<[u8]>, range: Range<usize>) -> Option<SharedSpan> {
        if range.start > range.end || range.end > buf.len() {
            return None;
        }
        let start = u32::try_from(range.start).ok()?;
        let end = u32::try_from(range.end).ok()?;
        Some(SharedSpan { buf, start, end })
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }

    /// The shared buffer the message lives in.
    pub fn buffer(&self) -> &Arc<[u8]> {
        &self.buf
    }

    /// Where the message lies in [`SharedSpan::buffer`].
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl Weigh for SharedSpan {
    /// The whole buffer, not just this message: the message keeps all of it alive.
    fn weight(&self) -> usize {
        // `Arc<[u8]>`'s block: two counters and the bytes.
        2 * size_of::<usize>() + self.buf.len() + BLOCK_OVERHEAD
    }

    fn shares_allocation(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    fn used(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Copies the messages into one new buffer, back to back (one allocation, one copy).
    fn compact(run: &mut [&mut Self]) {
        let len = run.iter().map(|s| s.used()).sum();
        let mut buf = Vec::with_capacity(len);
        for span in run.iter() {
            buf.extend_from_slice(span.bytes());
        }
        let buf: Arc<[u8]> = buf.into();
        let mut at = 0;
        for span in run.iter_mut() {
            let n = span.end - span.start;
            span.buf = buf.clone();
            span.start = at;
            span.end = at + n;
            at += n;
        }
    }
}
