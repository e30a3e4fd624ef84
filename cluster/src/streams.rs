//! Per-room sequence numbering on the publishing side, bounded.
//!
//! Each room this node publishes to (messages, presence changes, query markers) has a stream:
//! an id and the next sequence number (`wire`). Numbering is kept only while it matters:
//!
//! * **Idle rooms are forgotten.** [`OutStreams::sweep`] (every presence refresh, TTL/3: 10 s by
//!   default) drops each room not published to since the previous sweep, so a room is kept at
//!   most two refresh periods after its last publish. Its next publish starts a new stream at 1,
//!   which receivers take as a fresh start (`gaps`): no false gap, no false restart.
//! * **Except a room whose loss is not revealed yet**: messages dropped (full queue, Redis down
//!   or refusing) show up as a gap at the room's next envelope that reaches Redis; until one
//!   does, the room keeps its numbering, so forgetting it cannot hide the loss.
//! * **At most [`MAX_STREAMS`] rooms per shard.** A new room over the bound first drops every
//!   forgettable room; only if every room holds an unrevealed loss (a long outage publishing to
//!   that many rooms) are some of them dropped anyway, counted in `forced_evictions`: their
//!   loss is then counted in this node's `dropped` only, not seen as a gap by receivers.
//!
//! So the state is bounded by the rooms published to in the last two refresh periods, and in
//! any case by `MAX_STREAMS` × (entry + room name) per shard (~10 MiB with short names).

use std::collections::HashMap;
use std::sync::Arc;

/// Rooms with numbering kept per shard, at most.
pub(crate) const MAX_STREAMS: usize = 65_536;

/// One room's numbering.
#[derive(Debug)]
struct Out {
    stream: u64,
    /// The next sequence number to give (1: nothing published in this stream yet).
    next: u64,
    /// Messages dropped on a full queue before the stream's first envelope: skipped after it
    /// (a receiver's first envelope from us is only a baseline and would hide a gap before it).
    skip_after_first: u64,
    /// Non-zero: messages were lost after being numbered; an envelope accepted by Redis that
    /// starts at or after this number reveals the loss to receivers.
    unrevealed: u64,
    /// Published to since the last sweep.
    used: bool,
}

impl Out {
    /// Nothing would be hidden by forgetting it.
    fn forgettable(&self) -> bool {
        self.unrevealed == 0 && self.skip_after_first == 0
    }
}

/// The numbering of the rooms one shard publishes to (module doc).
#[derive(Debug)]
pub(crate) struct OutStreams {
    rooms: HashMap<Arc<str>, Out>,
    /// The next stream id: random per process, so a restarted node starts new streams too.
    next_stream: u64,
    cap: usize,
    forced: u64,
}

impl OutStreams {
    /// Stream ids start at `seed` (random per process); at most `cap` rooms are kept.
    pub fn new(seed: u64, cap: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            next_stream: seed,
            cap: cap.max(1),
            forced: 0,
        }
    }

    /// Rooms with numbering kept now.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Rooms dropped over the bound although they held an unrevealed loss.
    pub fn forced_evictions(&self) -> u64 {
        self.forced
    }

    fn entry(&mut self, room: &Arc<str>) -> &mut Out {
        if !self.rooms.contains_key(&**room) {
            if self.rooms.len() >= self.cap {
                self.make_room();
            }
            let stream = self.next_stream;
            self.next_stream = self.next_stream.wrapping_add(1);
            let out = Out {
                stream,
                next: 1,
                skip_after_first: 0,
                unrevealed: 0,
                used: true,
            };
            self.rooms.insert(room.clone(), out);
        }
        let out = self.rooms.get_mut(&**room).expect("inserted above");
        out.used = true;
        out
    }

    /// Numbers `n` messages about to be published in `room`: their stream and first number.
    pub fn assign(&mut self, room: &Arc<str>, n: u64) -> (u64, u64) {
        let out = self.entry(room);
        let first = out.next;
        out.next = out.next.saturating_add(n);
        if out.skip_after_first > 0 {
            out.next = out.next.saturating_add(out.skip_after_first);
            out.skip_after_first = 0;
            out.unrevealed = out.next;
        }
        (out.stream, first)
    }

    /// `n` messages of `room` were dropped before being numbered (full queue): skip numbers.
    pub fn skipped(&mut self, room: &Arc<str>, n: u64) {
        let out = self.entry(room);
        if out.next == 1 {
            out.skip_after_first = out.skip_after_first.saturating_add(n);
        } else {
            out.next = out.next.saturating_add(n);
            out.unrevealed = out.next;
        }
    }

    /// Numbered messages of `room`'s `stream` ending before `end` were lost (not published).
    pub fn lost(&mut self, room: &str, stream: u64, end: u64) {
        if let Some(out) = self.rooms.get_mut(room)
            && out.stream == stream
        {
            out.unrevealed = out.unrevealed.max(end);
        }
    }

    /// Redis accepted `room`'s envelope of `stream` starting at `first`.
    pub fn accepted(&mut self, room: &str, stream: u64, first: u64) {
        if let Some(out) = self.rooms.get_mut(room)
            && out.stream == stream
            && out.unrevealed != 0
            && first >= out.unrevealed
        {
            out.unrevealed = 0;
        }
    }

    /// Forgets the rooms not published to since the last sweep (module doc).
    pub fn sweep(&mut self) {
        self.rooms.retain(|_, out| {
            let keep = out.used || !out.forgettable();
            out.used = false;
            keep
        });
    }

    /// At the bound: drops every forgettable room; if none is, a quarter of the rooms anyway.
    fn make_room(&mut self) {
        self.rooms.retain(|_, out| !out.forgettable());
        if self.rooms.len() < self.cap {
            return;
        }
        let drop: Vec<Arc<str>> = (self.rooms.keys().take(self.cap / 4 + 1).cloned()).collect();
        self.forced += drop.len() as u64;
        for room in drop {
            self.rooms.remove(&room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(i: usize) -> Arc<str> {
        Arc::from(format!("room-{i}"))
    }

    #[test]
    fn numbering_counts_messages_and_skips() {
        let mut s = OutStreams::new(100, 10);
        let r = room(0);
        assert_eq!(s.assign(&r, 3), (100, 1));
        assert_eq!(s.assign(&r, 1), (100, 4));
        s.skipped(&r, 2);
        assert_eq!(s.assign(&r, 1), (100, 7));
        // Skips before a stream's first envelope come after it.
        let q = room(1);
        s.skipped(&q, 5);
        assert_eq!(s.assign(&q, 1), (101, 1));
        assert_eq!(s.assign(&q, 1), (101, 7));
    }

    #[test]
    fn idle_rooms_are_forgotten_and_restart_as_a_new_stream() {
        let mut s = OutStreams::new(1, MAX_STREAMS);
        for i in 0..10_000 {
            s.assign(&room(i), 1);
        }
        assert_eq!(s.len(), 10_000);
        s.assign(&room(0), 1); // still in use
        s.sweep(); // everything was used since the start
        assert_eq!(s.len(), 10_000);
        s.assign(&room(0), 1);
        s.sweep();
        assert_eq!(
            s.len(),
            1,
            "only the room published to since the last sweep"
        );
        let (stream, first) = s.assign(&room(5), 1);
        assert_eq!(first, 1, "a forgotten room starts a new stream at 1");
        assert_ne!(stream, 6, "with a new stream id");
        s.sweep();
        s.sweep();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn an_unrevealed_loss_is_kept_until_an_accepted_envelope_reveals_it() {
        let mut s = OutStreams::new(1, 10);
        let r = room(0);
        let (stream, first) = s.assign(&r, 2);
        s.lost(&r, stream, first + 2); // e.g. Redis down
        s.sweep();
        s.sweep();
        assert_eq!(s.len(), 1, "forgetting it would hide the loss");
        let (stream, first) = s.assign(&r, 1);
        assert_eq!(first, 3);
        s.accepted(&r, stream, first);
        s.sweep();
        s.sweep();
        assert_eq!(s.len(), 0);
        // A full-queue skip is a loss too.
        s.assign(&r, 1);
        s.skipped(&r, 4);
        s.sweep();
        s.sweep();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_bound_holds_and_forced_evictions_are_counted() {
        let mut s = OutStreams::new(1, 1000);
        for i in 0..100_000 {
            s.assign(&room(i), 1);
            assert!(s.len() <= 1000);
        }
        assert_eq!(s.forced_evictions(), 0, "clean rooms go first");
        let mut s = OutStreams::new(1, 1000);
        for i in 0..5000 {
            let (stream, first) = s.assign(&room(i), 1);
            s.lost(&room(i), stream, first + 1);
            assert!(s.len() <= 1000);
        }
        assert!(s.forced_evictions() > 0);
    }
}
