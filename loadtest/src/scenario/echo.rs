//! `echo`: N connections, each alone in its own room (`{prefix}{i}`), each sending one message
//! and waiting for the server to echo it before sending the next (one in flight per
//! connection). Needs a server that echoes (e.g. `ringcast --echo` or `peer --echo`).

use super::{Scenario, thread_of};
use crate::conn::Io;
use crate::payload::{self, Header};
use crate::shared::Window;

/// Parameters of an echo run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Connections.
    pub connections: usize,
    /// Payload bytes.
    pub size: usize,
    /// Binary instead of text.
    pub binary: bool,
    /// Room name prefix.
    pub prefix: String,
}

struct Client {
    id: u32,
    seq: u64,
    awaiting: Option<u64>,
    measured: bool,
}

/// One thread's echo clients.
pub struct Echo {
    p: Params,
    clients: Vec<Client>,
    ready: Vec<usize>,
    buf: Vec<u8>,
    win: Option<Window>,
}

/// Per-thread connection lists and scenario instances.
pub fn plan(p: Params, threads: usize) -> Vec<(Vec<Option<String>>, Echo)> {
    let mut out: Vec<(Vec<Option<String>>, Echo)> = (0..threads)
        .map(|_| {
            (
                Vec::new(),
                Echo {
                    p: p.clone(),
                    clients: Vec::new(),
                    ready: Vec::new(),
                    buf: payload::template(p.size),
                    win: None,
                },
            )
        })
        .collect();
    for i in 0..p.connections {
        let (protos, sc) = &mut out[thread_of(i, threads)];
        protos.push(Some(format!("{}{i}", p.prefix)));
        sc.clients.push(Client {
            id: i as u32,
            seq: 0,
            awaiting: None,
            measured: false,
        });
    }
    out
}

impl Scenario for Echo {
    fn on_message(&mut self, io: &mut Io, c: usize, binary: bool, data: &[u8]) {
        let Some(h) = payload::read(data, binary) else {
            io.stats.foreign += 1;
            return;
        };
        let cl = &mut self.clients[c];
        if h.publisher != cl.id || Some(h.seq) != cl.awaiting {
            io.stats.foreign += 1;
            return;
        }
        cl.awaiting = None;
        if cl.measured {
            io.stats.delivered += 1;
            io.stats.record_latency(io.now.saturating_sub(h.sent_ns));
        }
        self.ready.push(c);
    }

    fn on_turn(&mut self, io: &mut Io) {
        let win = match self.win {
            Some(w) => w,
            None => {
                let w = Window::load(&io.shared);
                self.win = Some(w);
                self.ready = (0..self.clients.len()).collect();
                w
            }
        };
        if io.now >= win.end {
            self.ready.clear();
            return;
        }
        let binary = self.p.binary;
        while let Some(c) = self.ready.pop() {
            if !io.conns[c].is_open() {
                continue;
            }
            let cl = &mut self.clients[c];
            let h = Header {
                publisher: cl.id,
                seq: cl.seq,
                sent_ns: io.now,
            };
            payload::write(&mut self.buf, binary, h);
            cl.awaiting = Some(cl.seq);
            cl.measured = win.measured(io.now);
            if cl.measured {
                io.stats.sent += 1;
            }
            cl.seq += 1;
            io.send(c, binary, &self.buf);
        }
    }

    fn deadline(&self, io: &Io) -> Option<u64> {
        let win = self.win?;
        Some(if io.now < win.end {
            win.end
        } else {
            win.grace_end
        })
    }

    fn finished(&mut self, io: &mut Io) -> bool {
        let Some(win) = self.win else { return false };
        if io.now < win.end && !io.shared.is_aborted() {
            return false;
        }
        let pending = self
            .clients
            .iter()
            .enumerate()
            .any(|(c, cl)| io.conns[c].is_open() && cl.awaiting.is_some());
        if pending && io.now < win.grace_end && !io.shared.is_aborted() {
            return false;
        }
        io.stats.expected += io.stats.sent;
        for cl in &self.clients {
            if cl.measured && cl.awaiting.is_some() {
                io.stats.lost += 1;
            }
        }
        true
    }
}
