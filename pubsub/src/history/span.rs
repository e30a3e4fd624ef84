//! What a history entry costs, and the entry ringcast stores: a span of a shared buffer.

use std::ops::Range;
use std::sync::Arc;

/// The bytes an entry is charged against `--history-max-bytes`.
pub trait Weigh {
    /// Payload bytes this entry keeps alive (the fixed per-entry overhead is added separately).
    fn weight(&self) -> usize;
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
    fn weight(&self) -> usize {
        (self.end - self.start) as usize
    }
}
