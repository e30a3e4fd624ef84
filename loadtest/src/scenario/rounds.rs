//! `rounds`: the all-to-all pattern of the uWebSockets benchmark. N clients in one room, the
//! server in echo mode; in each round every client sends one binary message (20 bytes by
//! default); a round ends when every client has received all N messages of that round (its own
//! echo included), and only then does the next round start, for all clients at once.
//!
//! Threads coordinate through two counters: every client that completes a round adds one to
//! `completions`; the client whose addition completes the round (`N × (round + 1)`) starts the
//! next one and wakes every thread's loop.
//!
//! Round 0 starts a little after the clock starts ([`first_round_at`]): a server may send its 101
//! before it has put the connection in the room (the tokio peer does), and a client that joins
//! after round 0 was broadcast would wait for that round forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Plan, Scenario, thread_of};
use crate::conn::Io;
use crate::payload::{self, Header};
use crate::shared::Window;

/// Parameters of a rounds run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Clients in the room.
    pub clients: usize,
    /// Payload bytes (at least 20).
    pub size: usize,
    /// Room name prefix (the room is `{prefix}0`).
    pub prefix: String,
}

/// Cross-thread round state.
#[derive(Debug, Default)]
pub struct RoundsShared {
    completions: AtomicU64,
    round: AtomicU64,
    stop: AtomicBool,
    /// Rounds completed inside the measured window.
    pub measured: AtomicU64,
}

struct Client {
    id: u32,
    cur: u64,
    got: [u64; 2],
}

/// One thread's rounds clients.
pub struct Rounds {
    n: u64,
    shared: Arc<RoundsShared>,
    clients: Vec<Client>,
    sent_round: Option<u64>,
    buf: Vec<u8>,
    win: Option<Window>,
}

/// Per-thread connection lists and scenario instances, plus the shared round state.
pub fn plan(p: &Params, threads: usize) -> (Plan<Rounds>, Arc<RoundsShared>) {
    let shared = Arc::new(RoundsShared::default());
    let mut out: Plan<Rounds> = (0..threads)
        .map(|_| {
            (
                Vec::new(),
                Rounds {
                    n: p.clients as u64,
                    shared: shared.clone(),
                    clients: Vec::new(),
                    sent_round: None,
                    buf: payload::template(p.size),
                    win: None,
                },
            )
        })
        .collect();
    for i in 0..p.clients {
        let (protos, sc) = &mut out[thread_of(i, threads)];
        protos.push(Some(format!("{}0", p.prefix)));
        sc.clients.push(Client {
            id: i as u32,
            cur: 0,
            got: [0; 2],
        });
    }
    (out, shared)
}

impl Scenario for Rounds {
    fn on_message(&mut self, io: &mut Io, c: usize, binary: bool, data: &[u8]) {
        let Some(h) = payload::read(data, binary) else {
            io.stats.foreign += 1;
            return;
        };
        let cl = &mut self.clients[c];
        if h.seq != cl.cur && h.seq != cl.cur + 1 {
            io.stats.foreign += 1;
            return;
        }
        cl.got[(h.seq & 1) as usize] += 1;
        if let Some(win) = self.win
            && win.measured(h.sent_ns)
        {
            io.stats.delivered += 1;
            io.stats.record_latency(io.now.saturating_sub(h.sent_ns));
        }
        let slot = (cl.cur & 1) as usize;
        if cl.got[slot] < self.n {
            return;
        }
        cl.got[slot] = 0;
        cl.cur += 1;
        let done = self.shared.completions.fetch_add(1, Ordering::AcqRel) + 1;
        if done == self.n * cl.cur {
            // This client completed round `cur - 1` for everybody.
            if self.win.is_some_and(|w| w.measured(io.now)) {
                self.shared.measured.fetch_add(1, Ordering::Relaxed);
                io.stats.rounds += 1;
            }
            if self.win.is_some_and(|w| io.now >= w.end) {
                self.shared.stop.store(true, Ordering::Release);
            } else {
                self.shared.round.store(cl.cur, Ordering::Release);
            }
            io.shared.wake_all();
        }
    }

    fn on_closed(&mut self, io: &mut Io, _c: usize, _code: Option<u16>) {
        // A missing member means no round can complete again.
        io.shared.abort_all();
    }

    fn on_turn(&mut self, io: &mut Io) {
        if self.win.is_none() {
            self.win = Some(Window::load(&io.shared));
        }
        if self.shared.stop.load(Ordering::Acquire) {
            return;
        }
        if self.sent_round.is_none() && self.win.is_some_and(|w| io.now < first_round_at(&w)) {
            return;
        }
        let round = self.shared.round.load(Ordering::Acquire);
        if self.sent_round.is_some_and(|r| r >= round) {
            return;
        }
        self.sent_round = Some(round);
        let measured = self.win.is_some_and(|w| w.measured(io.now));
        for c in 0..self.clients.len() {
            let h = Header {
                publisher: self.clients[c].id,
                seq: round,
                sent_ns: io.now,
            };
            payload::write(&mut self.buf, true, h);
            if io.conns[c].is_open() && measured {
                io.stats.sent += 1;
            }
            io.send(c, true, &self.buf);
        }
    }

    fn deadline(&self, io: &Io) -> Option<u64> {
        let win = self.win?;
        Some(
            if self.sent_round.is_none() && io.now < first_round_at(&win) {
                first_round_at(&win)
            } else if io.now < win.end {
                win.end
            } else {
                win.grace_end
            },
        )
    }

    fn finished(&mut self, io: &mut Io) -> bool {
        let Some(win) = self.win else { return false };
        self.shared.stop.load(Ordering::Acquire)
            || io.shared.is_aborted()
            || io.now >= win.grace_end
    }
}

/// When round 0 is sent: 200 ms into the warm-up (or half of a shorter warm-up), so that every
/// connection the server has answered has also joined the room.
pub fn first_round_at(w: &Window) -> u64 {
    w.start + (w.measure.saturating_sub(w.start) / 2).min(200_000_000)
}
