//! `broadcast`: R rooms, each with S subscribers and P publishers.
//!
//! Every publisher sends messages carrying (publisher id, sequence, send time); the server must
//! deliver each to every other member of the room. Subscribers measure latency, loss,
//! duplicates and reordering; publishers ignore what they receive from other publishers.
//!
//! **Flow control.** With `--rate 0` a publisher sends as fast as its credit allows: it keeps at
//! most `--window` messages in flight that its *designated receiver* (one subscriber of its room,
//! on the same thread when possible) has not seen yet. So a max-rate run measures the server's
//! sustainable fan-out instead of filling socket buffers. With `--rate N` a publisher sends N
//! messages per second on a fixed schedule, still bounded by the window (if the window blocks it
//! falls behind and catches up).
//!
//! **Accounting.** A message is measured when its send time lies in [measure, end). Each
//! subscriber expects every measured message of every publisher of its room; after `end`
//! publishers stop, and threads wait (up to `--grace`) for in-flight copies before counting loss.
//! With `check_publishers` every publisher also checks the messages of the *other* publishers
//! of its room like a subscriber does (all-members-publish rooms; its own copies are ignored).

mod plan;
pub mod pusher;

pub use plan::plan;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::Scenario;
use crate::conn::Io;
use crate::payload::{self, Header};
use crate::shared::Shared;
use crate::shared::Window;
use crate::stats::{SeqEvent, SeqTrack};
use crate::target::{PublisherNodes, same_node};

/// Parameters of a broadcast run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Rooms.
    pub rooms: usize,
    /// Subscribers per room.
    pub subscribers: usize,
    /// Publishers per room.
    pub publishers: usize,
    /// Payload bytes.
    pub size: usize,
    /// Messages per second per publisher; 0 = as fast as the window allows.
    pub rate: u64,
    /// Messages a publisher may have in flight ahead of its designated receiver.
    pub window: u64,
    /// Binary instead of text messages.
    pub binary: bool,
    /// Rooms are named `{prefix}{index}` and offered as the subprotocol.
    pub prefix: String,
    /// Publishers also check the other publishers' messages (loss, order, latency).
    pub check_publishers: bool,
    /// Servers the connections are spread over (`--url` given this many times); with more
    /// than one, latency is also split into same-node and cross-node.
    pub servers: usize,
    /// Speak the Pusher dialect with this app (the `pusher` scenario, [`pusher`]).
    pub pusher: Option<pusher::Dialect>,
}

/// What a publisher that also checks its room's traffic has received.
#[derive(Debug, Default)]
struct Inbox {
    tracks: Vec<SeqTrack>,
    unique: u64,
    joined: bool,
    closed_by_server: bool,
}

/// Cross-thread state of one broadcast run.
#[derive(Debug)]
pub struct BroadcastShared {
    /// Per publisher: next sequence its designated receiver has not seen.
    acked: Vec<AtomicU64>,
    /// Per publisher: its thread waits for `acked` to move.
    waiting: Vec<AtomicBool>,
    /// Per publisher: the thread it runs on.
    pub_thread: Vec<usize>,
    /// Per publisher: its server, when there are several.
    nodes: Option<PublisherNodes>,
    /// Per room: measured messages sent by its publishers (final once all are done).
    room_sent: Vec<AtomicU64>,
    pubs_done: AtomicUsize,
}

impl BroadcastShared {
    /// Wakes publisher `id`'s loop if it waits for credit and runs on another thread than `me`.
    fn wake_publisher(&self, run: &Shared, id: usize, me: usize) {
        if self.waiting[id].swap(false, Ordering::AcqRel) {
            let t = self.pub_thread[id];
            if t != me {
                run.wake(t);
            }
        }
    }
}

enum Role {
    Subscriber {
        room: usize,
        tracks: Vec<SeqTrack>,
        unique: u64,
        acks_for: Vec<usize>,
        joined: bool,
        closed_by_server: bool,
    },
    Publisher {
        id: usize,
        seq: u64,
        measured: u64,
        next_due: u64,
        done: bool,
        inbox: Option<Inbox>,
    },
}

/// One thread's part of a broadcast run.
pub struct Broadcast {
    p: Arc<Params>,
    shared: Arc<BroadcastShared>,
    roles: Vec<Role>,
    publishers: Vec<usize>,
    buf: Vec<u8>,
    win: Option<Window>,
    local_pubs_done: bool,
    /// Pusher dialect: per connection, subscribed to its channel (publishers wait for it).
    ready: Vec<bool>,
    /// Pusher dialect: the client event being sent.
    wrapped: Vec<u8>,
}

impl Broadcast {
    /// Gives up flow control for publishers whose designated receiver is gone.
    fn release(&self, run: &Shared, acks_for: &[usize]) {
        for &id in acks_for {
            self.shared.acked[id].store(u64::MAX / 2, Ordering::Release);
            self.shared.wake_publisher(run, id, usize::MAX);
        }
    }

    fn total_pubs(&self) -> usize {
        self.p.rooms * self.p.publishers
    }

    fn publish(&mut self, io: &mut Io, win: Window) {
        let interval = 1_000_000_000u64.checked_div(self.p.rate).unwrap_or(0);
        let total = self.total_pubs().max(1);
        let mut all_done = true;
        for i in 0..self.publishers.len() {
            let c = self.publishers[i];
            let Role::Publisher {
                id,
                seq,
                measured,
                next_due,
                done,
                ..
            } = &mut self.roles[c]
            else {
                continue;
            };
            if *done {
                continue;
            }
            if self.p.pusher.is_some() && !self.ready[c] && io.now < win.end {
                // Not subscribed yet: a client event would be refused.
                all_done = false;
                continue;
            }
            if io.now >= win.end || !io.conns[c].is_open() {
                *done = true;
                self.shared.room_sent[*id / self.p.publishers]
                    .fetch_add(*measured, Ordering::Relaxed);
                continue;
            }
            all_done = false;
            if *next_due == 0 {
                // Spread the publishers' fixed-rate schedules evenly over one interval, so that
                // N publishers at N × r msgs/s do not all send in the same instant.
                *next_due = win.start + interval * (*id as u64) / total as u64;
            }
            // Bound one turn's burst so every connection gets its share of the loop.
            for _ in 0..self.p.window.max(1) {
                if interval > 0 && *next_due > io.now {
                    break;
                }
                let acked = self.shared.acked[*id].load(Ordering::Acquire);
                if *seq >= acked + self.p.window {
                    self.shared.waiting[*id].store(true, Ordering::Release);
                    if self.shared.acked[*id].load(Ordering::Acquire) + self.p.window > *seq {
                        self.shared.waiting[*id].store(false, Ordering::Relaxed);
                        continue;
                    }
                    break;
                }
                let h = Header {
                    publisher: *id as u32,
                    seq: *seq,
                    sent_ns: io.now,
                };
                payload::write(&mut self.buf, self.p.binary, h);
                if let Some(dialect) = &self.p.pusher {
                    let channel = pusher::Dialect::channel(&self.p.prefix, *id / self.p.publishers);
                    dialect.wrap(&mut self.wrapped, &channel, &self.buf);
                    io.send(c, false, &self.wrapped);
                } else {
                    io.send(c, self.p.binary, &self.buf);
                }
                if win.measured(io.now) {
                    *measured += 1;
                    io.stats.sent += 1;
                }
                *seq += 1;
                *next_due += interval;
            }
        }
        if all_done && !self.local_pubs_done {
            self.local_pubs_done = true;
            let n = self.publishers.len();
            let before = self.shared.pubs_done.fetch_add(n, Ordering::AcqRel);
            if before + n == self.total_pubs() && n > 0 {
                io.shared.wake_all();
            }
        }
    }
}

impl Scenario for Broadcast {
    fn on_open(&mut self, _io: &mut Io, c: usize) {
        self.ready[c] = false;
        match &mut self.roles[c] {
            Role::Subscriber { joined, .. } => *joined = true,
            Role::Publisher {
                inbox: Some(inbox), ..
            } => inbox.joined = true,
            Role::Publisher { .. } => {}
        }
    }

    fn on_message(&mut self, io: &mut Io, c: usize, binary: bool, data: &[u8]) {
        let data = match &self.p.pusher {
            None => data,
            Some(dialect) => match dialect.classify(data) {
                pusher::Incoming::Event(d) => d,
                pusher::Incoming::Established(socket_id) => {
                    let room = match &self.roles[c] {
                        Role::Subscriber { room, .. } => *room,
                        Role::Publisher { id, .. } => *id / self.p.publishers,
                    };
                    let channel = pusher::Dialect::channel(&self.p.prefix, room);
                    io.send(c, false, &dialect.subscribe(socket_id, &channel));
                    return;
                }
                pusher::Incoming::Subscribed => {
                    self.ready[c] = true;
                    return;
                }
                pusher::Incoming::Other => {
                    io.stats.foreign += 1;
                    return;
                }
            },
        };
        if let Role::Publisher {
            id: own,
            inbox: Some(inbox),
            ..
        } = &mut self.roles[c]
        {
            let Some(h) = payload::read(data, binary) else {
                io.stats.foreign += 1;
                return;
            };
            let id = h.publisher as usize;
            let first = *own - *own % self.p.publishers;
            if id == *own {
                return;
            }
            if id < first || id >= first + self.p.publishers {
                io.stats.foreign += 1;
                return;
            }
            let ev = inbox.tracks[id - first].observe(h.seq);
            let Some(win) = self.win else { return };
            if win.measured(h.sent_ns) {
                let same = same_node(self.shared.nodes.as_ref(), id, io.conns[c].target);
                record(io, ev, &mut inbox.unique, h.sent_ns, same);
            }
            return;
        }
        let Role::Subscriber {
            room,
            tracks,
            unique,
            acks_for,
            ..
        } = &mut self.roles[c]
        else {
            return;
        };
        let Some(h) = payload::read(data, binary) else {
            io.stats.foreign += 1;
            return;
        };
        let id = h.publisher as usize;
        let first = *room * self.p.publishers;
        if id < first || id >= first + self.p.publishers {
            io.stats.foreign += 1;
            return;
        }
        if acks_for.contains(&id) {
            self.shared.acked[id].fetch_max(h.seq + 1, Ordering::AcqRel);
            let (run, me) = (io.shared.clone(), io.thread);
            self.shared.wake_publisher(&run, id, me);
        }
        let ev = tracks[id - first].observe(h.seq);
        let Some(win) = self.win else { return };
        if !win.measured(h.sent_ns) {
            return;
        }
        let same = same_node(self.shared.nodes.as_ref(), id, io.conns[c].target);
        record(io, ev, unique, h.sent_ns, same);
    }

    fn on_closed(&mut self, io: &mut Io, c: usize, code: Option<u16>) {
        if let Role::Publisher {
            inbox: Some(inbox), ..
        } = &mut self.roles[c]
        {
            inbox.closed_by_server = code.is_some();
        }
        if let Role::Subscriber {
            acks_for,
            closed_by_server,
            ..
        } = &mut self.roles[c]
        {
            *closed_by_server = code.is_some();
            let ids = std::mem::take(acks_for);
            self.release(&io.shared, &ids);
        }
    }

    fn on_turn(&mut self, io: &mut Io) {
        let win = match self.win {
            Some(w) => w,
            None => {
                let w = Window::load(&io.shared);
                self.win = Some(w);
                // Designated receivers that never connected cannot grant credit.
                for c in 0..self.roles.len() {
                    if let Role::Subscriber { acks_for, .. } = &mut self.roles[c]
                        && !io.conns[c].is_open()
                    {
                        let ids = std::mem::take(acks_for);
                        self.release(&io.shared, &ids);
                    }
                }
                w
            }
        };
        self.publish(io, win);
    }

    fn deadline(&self, io: &Io) -> Option<u64> {
        let win = self.win?;
        if io.now < win.end {
            if self.p.rate > 0 {
                let next = self
                    .publishers
                    .iter()
                    .filter_map(|&c| match &self.roles[c] {
                        // One that waits for credit is woken by its receiver, not by time:
                        // a past deadline would only spin the loop.
                        Role::Publisher {
                            id, next_due, done, ..
                        } if !*done && !self.shared.waiting[*id].load(Ordering::Acquire) => {
                            Some(*next_due)
                        }
                        _ => None,
                    })
                    .min();
                return Some(next.map_or(win.end, |n| n.min(win.end)));
            }
            return Some(win.end);
        }
        Some(win.grace_end)
    }

    fn finished(&mut self, io: &mut Io) -> bool {
        let Some(win) = self.win else { return false };
        if io.now < win.end && !io.shared.is_aborted() {
            return false;
        }
        let all_pubs = self.shared.pubs_done.load(Ordering::Acquire) == self.total_pubs();
        let timed_out = io.now >= win.grace_end || io.shared.is_aborted();
        if !all_pubs && !timed_out {
            return false;
        }
        let complete = all_pubs
            && self.roles.iter().enumerate().all(|(c, r)| match r {
                Role::Subscriber { room, unique, .. } => {
                    !io.conns[c].is_open()
                        || *unique >= self.shared.room_sent[*room].load(Ordering::Relaxed)
                }
                Role::Publisher {
                    id,
                    measured,
                    inbox: Some(inbox),
                    ..
                } => {
                    let room = *id / self.p.publishers;
                    let expected = self.shared.room_sent[room]
                        .load(Ordering::Relaxed)
                        .saturating_sub(*measured);
                    !io.conns[c].is_open() || inbox.unique >= expected
                }
                Role::Publisher { .. } => true,
            });
        if !complete && !timed_out {
            return false;
        }
        // Final accounting: every subscriber that joined expects every measured message.
        for r in &self.roles {
            if let Role::Publisher {
                id,
                measured,
                inbox: Some(inbox),
                ..
            } = r
                && inbox.joined
            {
                let room = *id / self.p.publishers;
                let expected = self.shared.room_sent[room]
                    .load(Ordering::Relaxed)
                    .saturating_sub(*measured);
                io.stats.expected += expected;
                let missing = expected.saturating_sub(inbox.unique);
                if inbox.closed_by_server {
                    io.stats.lost_closed += missing;
                } else {
                    io.stats.lost += missing;
                }
            }
            if let Role::Subscriber {
                room,
                unique,
                closed_by_server,
                joined,
                ..
            } = r
            {
                if !*joined {
                    continue;
                }
                let expected = self.shared.room_sent[*room].load(Ordering::Relaxed);
                io.stats.expected += expected;
                let missing = expected.saturating_sub(*unique);
                if *closed_by_server {
                    io.stats.lost_closed += missing;
                } else {
                    io.stats.lost += missing;
                }
            }
        }
        true
    }
}

/// Counts one measured copy: a first copy (latency, maybe late, on its path when `same_node`
/// is known) or a duplicate.
fn record(io: &mut Io, ev: SeqEvent, unique: &mut u64, sent_ns: u64, same_node: Option<bool>) {
    match ev {
        SeqEvent::Fresh | SeqEvent::Reordered => {
            *unique += 1;
            io.stats.delivered += 1;
            io.stats
                .record_latency_on(io.now.saturating_sub(sent_ns), same_node);
            if ev == SeqEvent::Reordered {
                io.stats.reordered += 1;
            }
        }
        SeqEvent::Duplicate => io.stats.duplicates += 1,
    }
}
