//! The worker's share of the global `--max-pending-bytes` budget (docs/limits.md#messages): unfinished
//! messages' bytes counted across workers, the largest cut with 1008 when over, and freed pages
//! handed back to the OS. Methods of [`Worker`] grouped here by concept.

use std::sync::atomic::Ordering::Relaxed;

use ringcast_protocol::CloseCode;

use super::Worker;
use crate::limits::{COLLECT_EVERY_MS, COLLECT_FREED_BYTES};

unsafe extern "C" {
    /// mimalloc (the global allocator, linked through the `mimalloc` crate): frees what this
    /// thread's heap holds but does not use.
    fn mi_collect(force: bool);
}

impl Worker {
    /// Updates the global count of bytes held for unfinished messages with connection `key`'s
    /// decoder; over `--max-pending-bytes`, this worker's connections with the largest
    /// unfinished messages are closed with 1008 until the total fits (docs/limits.md#messages).
    pub(super) fn account_pending(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let now = conn.session.pending_bytes();
        let shared = self.ctx.shared.clone();
        let total = &shared.pending;
        if now == conn.pending {
            return;
        }
        if now > conn.pending {
            total.fetch_add(now - conn.pending, Relaxed);
        } else {
            total.fetch_sub(conn.pending - now, Relaxed);
        }
        conn.pending = now;
        let mut freed = 0;
        while total.load(Relaxed) > shared.config.max_pending_bytes {
            let Some(largest) = self.conns.largest_pending() else {
                break;
            };
            freed += self.conns[largest].pending;
            self.close_with(largest, CloseCode::POLICY, "too much unfinished data");
            self.release_pending(largest); // in case it was closing already
        }
        if freed > 0 {
            self.turn.collect_due = true;
            self.turn.freed += freed;
            self.collect_memory();
        }
    }

    /// Returns freed memory to the OS when a budget cut asked for it: the allocator does it
    /// lazily, on later activity of this thread, and a budget only bounds memory if the pages
    /// go back. At once when the cuts freed `COLLECT_FREED_BYTES`, otherwise at most every
    /// `COLLECT_EVERY_MS` (a flood of small cuts costs little CPU); a later turn or the tick
    /// finishes what was put off.
    pub(super) fn collect_memory(&mut self) {
        let now = self.turn.now_ms;
        let soon = now >= self.turn.collected_ms + COLLECT_EVERY_MS;
        if self.turn.collect_due && (soon || self.turn.freed >= COLLECT_FREED_BYTES) {
            // SAFETY: mi_collect only walks this thread's heap; no pointer is handed over.
            unsafe { mi_collect(true) };
            self.turn.collect_due = false;
            self.turn.collected_ms = now;
            self.turn.freed = 0;
        }
    }

    /// Connection `key`'s decoder is gone: its unfinished bytes leave the global count.
    pub(super) fn release_pending(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let held = std::mem::take(&mut conn.pending);
        self.ctx.shared.pending.fetch_sub(held, Relaxed);
    }
}
