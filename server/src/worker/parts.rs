//! The worker's small parts: the read-only context, the per-turn state and the listener.

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::config::Config;
use crate::conn::outq::OutQueue;
use crate::fanout::turn::TurnBatches;
use crate::limits::{ACCEPT_BACKOFF_MAX_MS, ACCEPT_BACKOFF_MIN_MS, BUSY_RECVS, BUSY_SENDS};
use crate::metrics::WorkerMetrics;
use crate::rooms::local::LocalRooms;
use crate::session::Sink;
use crate::shared::Shared;

/// What every handler may read: who this worker is and what all workers share.
pub(super) struct Ctx {
    pub(super) id: usize,
    pub(super) shared: Arc<Shared>,
}

impl Ctx {
    pub(super) fn metrics(&self) -> &WorkerMetrics {
        &self.shared.metrics[self.id]
    }

    /// The sink through which connection `key` of slot generation `generation`, queueing into
    /// `out`, acts on this worker's `rooms` and `batches`.
    pub(super) fn sink<'a>(
        &'a self,
        (key, generation): (usize, u32),
        out: &'a mut OutQueue,
        batches: &'a mut TurnBatches,
        rooms: &'a mut LocalRooms,
    ) -> Sink<'a> {
        Sink::new(key, self.id, &self.shared, out, batches, rooms).with_generation(generation)
    }
}

/// Per-turn bookkeeping.
pub(super) struct Turn {
    start: Instant,
    /// Coarse clock: milliseconds since the worker started, updated once per turn.
    pub(super) now_ms: u64,
    pub(super) recvs: usize,
    pub(super) sends_last_flush: u64,
    /// A budget cut freed memory that should go back to the OS (see `Worker::collect_memory`).
    pub(super) collect_due: bool,
    /// When memory was last given back (coarse ms).
    pub(super) collected_ms: u64,
    /// Bytes budget cuts freed since then.
    pub(super) freed: usize,
}

/// Which listener a connection was accepted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listener {
    /// `--listen`: TLS when `--tls-cert` is set, plain otherwise.
    Main,
    /// `--plain-listen`, beside a TLS main listener.
    Plain,
    /// `--api-listen`: the server API alone.
    Api,
}

/// The listener, whether the worker is draining, and the accept backoff.
pub(super) struct Accepting {
    pub(super) listener: socket2::Socket,
    /// The plain listener beside a TLS `listener` (`--plain-listen`), if any.
    pub(super) plain: Option<socket2::Socket>,
    /// The server API's own listener (`--api-listen`, docs/api.md#listeners).
    pub(super) api: Option<socket2::Socket>,
    pub(super) on: bool,
    pub(super) drain_deadline: Option<u64>,
    /// Accepting is paused (out of descriptors or memory) until this coarse time (ms).
    pub(super) paused_until: Option<u64>,
    /// The next pause, doubling from `ACCEPT_BACKOFF_MIN_MS` to `ACCEPT_BACKOFF_MAX_MS`.
    backoff_ms: u64,
    /// Accept failures not logged yet.
    unlogged: u64,
}

impl Turn {
    pub(super) fn new() -> Turn {
        Turn {
            start: Instant::now(),
            now_ms: 0,
            recvs: 0,
            sends_last_flush: 0,
            collect_due: false,
            collected_ms: 0,
            freed: 0,
        }
    }

    /// A new turn: the coarse clock advances, receives are counted afresh.
    pub(super) fn begin(&mut self) {
        self.now_ms = self.start.elapsed().as_millis() as u64;
        self.recvs = 0;
    }

    /// The turn is worth gathering more completions before flushing: many receives, or a
    /// receive after a flush that fanned out to many sockets.
    pub(super) fn busy(&self) -> bool {
        self.recvs >= BUSY_RECVS || (self.recvs > 0 && self.sends_last_flush >= BUSY_SENDS)
    }
}

impl Accepting {
    pub(super) fn new(listener: socket2::Socket) -> Accepting {
        Accepting {
            listener,
            plain: None,
            api: None,
            on: true,
            drain_deadline: None,
            paused_until: None,
            backoff_ms: ACCEPT_BACKOFF_MIN_MS,
            unlogged: 0,
        }
    }

    /// Accept failed for lack of descriptors or memory at `now`: pause for the backoff (which
    /// doubles) and log at most one line per second (all workers together), with the failures
    /// since the last line.
    pub(super) fn pause(&mut self, now: u64, error: &std::io::Error) {
        self.paused_until = Some(now + self.backoff_ms);
        self.unlogged += 1;
        if log_slot() {
            tracing::warn!(
                %error,
                failures = self.unlogged,
                pause_ms = self.backoff_ms,
                "accept failed: pausing accepts (connections wait in the backlog)"
            );
            self.unlogged = 0;
        }
        self.backoff_ms = (self.backoff_ms * 2).min(ACCEPT_BACKOFF_MAX_MS);
    }

    /// A connection was accepted: the next failure starts the backoff afresh.
    pub(super) fn accepted(&mut self) {
        self.backoff_ms = ACCEPT_BACKOFF_MIN_MS;
    }

    /// Whether the pause is over at `now` (then it is cleared): accept is re-armed.
    pub(super) fn resume(&mut self, now: u64) -> bool {
        if self.on && self.paused_until.is_some_and(|t| now >= t) {
            self.paused_until = None;
            return true;
        }
        false
    }
}

/// Whether an accept-failure line may be logged now: at most one per second for the whole
/// process, whichever worker asks.
fn log_slot() -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    static LAST: AtomicU64 = AtomicU64::new(0);
    // Milliseconds since the first call, plus one second so the first call always logs.
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1000;
    let last = LAST.load(Ordering::Relaxed);
    now >= last + 1000
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Sets up an accepted socket; returns the client's IP when `--max-connections-per-ip` needs it.
pub(super) fn prepare_socket(fd: RawFd, config: &Config) -> IpAddr {
    set_nodelay(fd);
    if config.max_connections_per_ip > 0 {
        peer_ip(fd)
    } else {
        IpAddr::from([0, 0, 0, 0])
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is a socket we own; the option value points to a live c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn peer_ip(fd: RawFd) -> IpAddr {
    // SAFETY: `fd` is a socket we own and stay owning; SockRef does not close it on drop.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&fd);
    sock.peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}
