//! `connect`: open N connections (spread over `--ramp`, at most `--concurrency` handshakes in
//! progress per thread), hold them for `--duration`, close them. The runner reports the setup
//! rate and, given `--server-pid`, the server's resident memory before and after.

use super::{Scenario, thread_of};
use crate::conn::Io;
use crate::shared::Window;

/// One thread's idle connections.
pub struct Connect {
    end: Option<u64>,
}

/// Per-thread connection lists (offering `{prefix}0`, all in one room) and scenario instances.
pub fn plan(
    connections: usize,
    prefix: &str,
    threads: usize,
) -> Vec<(Vec<Option<String>>, Connect)> {
    let mut out: Vec<(Vec<Option<String>>, Connect)> = (0..threads)
        .map(|_| (Vec::new(), Connect { end: None }))
        .collect();
    for i in 0..connections {
        out[thread_of(i, threads)]
            .0
            .push(Some(format!("{prefix}0")));
    }
    out
}

impl Scenario for Connect {
    fn on_message(&mut self, io: &mut Io, _c: usize, _binary: bool, _data: &[u8]) {
        io.stats.foreign += 1;
    }

    fn on_turn(&mut self, io: &mut Io) {
        if self.end.is_none() {
            self.end = Some(Window::load(&io.shared).end);
        }
    }

    fn deadline(&self, _io: &Io) -> Option<u64> {
        self.end
    }

    fn finished(&mut self, io: &mut Io) -> bool {
        self.end.is_some_and(|e| io.now >= e) || io.shared.is_aborted()
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
