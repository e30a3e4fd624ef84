//! Scenarios: what each connection does, behind the [`Scenario`] trait the event loop calls.
//! The runner (`crate::runner`) starts one loop per thread with one scenario instance each.

pub mod broadcast;
pub mod connect;
pub mod echo;
pub mod pubsub;
pub mod rounds;

use crate::conn::Io;

/// The behaviour of one thread's connections. All callbacks run on the thread's event loop.
pub trait Scenario {
    /// Connection `c` completed its handshake.
    fn on_open(&mut self, _io: &mut Io, _c: usize) {}
    /// A complete data message arrived on `c`.
    fn on_message(&mut self, io: &mut Io, c: usize, binary: bool, payload: &[u8]);
    /// Bytes arrived on plain HTTP connection `c` (`conn::PLAIN_HTTP`); returns how many were
    /// used (the rest is handed again with what follows).
    fn on_bytes(&mut self, _io: &mut Io, _c: usize, bytes: &[u8]) -> usize {
        bytes.len()
    }
    /// The server closed `c` (`Some(code)`, after a Close frame) or it broke (`None`).
    fn on_closed(&mut self, _io: &mut Io, _c: usize, _code: Option<u16>) {}
    /// Once per loop turn after the run started: queue whatever is due.
    fn on_turn(&mut self, io: &mut Io);
    /// When the loop must wake up at the latest (ns since the shared base), if ever.
    fn deadline(&self, io: &Io) -> Option<u64>;
    /// Whether this thread is done; called after `on_turn`. Final accounting goes here.
    fn finished(&mut self, io: &mut Io) -> bool;
}

/// One entry per thread: the subprotocol each of its connections offers, and its scenario.
pub type Plan<S> = Vec<(Vec<Option<String>>, S)>;

/// Splits `n` items round-robin over `threads`: item `i` goes to thread `i % threads`.
pub fn thread_of(i: usize, threads: usize) -> usize {
    i % threads
}
