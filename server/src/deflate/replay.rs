//! A worker's cache of compressed history frames, so subscribers that resume the same range
//! on one worker compress each replayed message once, not once each
//! (docs/compression.md#replays). The history keeps plain frames; a replayed message's
//! compressed frame is made with the worker's compressor (no context takeover) the first time
//! it is replayed to a connection that negotiated permessage-deflate, then shared.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::reply::recode_one;
use super::with_deflater;

/// Entries kept before the cache is emptied (a bound on its memory, with `MAX_BYTES`).
const MAX_ENTRIES: usize = 4096;
/// Bytes (compressed frames and the history frames they stand for) kept before it is emptied.
const MAX_BYTES: usize = 8 << 20;

/// One replayed history frame's compressed form.
struct Cached {
    /// Holds the history buffer, so its address (the key) is not reused while cached.
    _history: Arc<[u8]>,
    /// `None`: the frame goes plain (short, or not smaller once compressed).
    frame: Option<Arc<[u8]>>,
}

#[derive(Default)]
struct Cache {
    /// (history buffer address, start, end) → its compressed form.
    entries: HashMap<(usize, u32, u32), Cached>,
    bytes: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The compressed frame of the history frame `history[start..end]` (unmasked, FIN set), made
/// once per worker; `None` when it goes plain.
pub fn frame(history: &Arc<[u8]>, start: u32, end: u32) -> Option<Arc<[u8]>> {
    let key = (Arc::as_ptr(history) as *const u8 as usize, start, end);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(hit) = c.entries.get(&key) {
            return hit.frame.clone();
        }
        let plain = &history[start as usize..end as usize];
        let frame = with_deflater(|d| {
            let mut out = Vec::with_capacity(plain.len());
            recode_one(d, &mut out, plain, &mut Vec::new()).then(|| Arc::<[u8]>::from(out))
        });
        if c.entries.len() >= MAX_ENTRIES || c.bytes >= MAX_BYTES {
            c.entries.clear();
            c.bytes = 0;
        }
        c.bytes += plain.len() + frame.as_ref().map_or(0, |f| f.len());
        let cached = Cached {
            _history: history.clone(),
            frame: frame.clone(),
        };
        c.entries.insert(key, cached);
        frame
    })
}

#[cfg(test)]
mod tests {
    use ringcast_protocol::frame::{OpCode, encode_frame};

    use super::*;

    #[test]
    fn a_frame_is_compressed_once_and_a_short_one_stays_plain() {
        let long = "{\"op\":\"message\",\"topic\":\"lobby\"} ".repeat(20);
        let mut buf = Vec::new();
        encode_frame(&mut buf, OpCode::Text, long.as_bytes());
        let end = buf.len() as u32;
        encode_frame(&mut buf, OpCode::Text, b"short");
        let history: Arc<[u8]> = Arc::from(buf.as_slice());
        let first = frame(&history, 0, end).expect("compressed");
        let again = frame(&history, 0, end).expect("compressed");
        assert!(Arc::ptr_eq(&first, &again), "made once, then shared");
        assert_eq!(first[0], 0xc1);
        assert!(frame(&history, end, history.len() as u32).is_none());
    }
}
