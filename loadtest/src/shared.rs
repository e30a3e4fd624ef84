//! State shared by all event-loop threads and the main thread: the run's phase and time window,
//! live progress counters, and an eventfd per thread to wake its loop.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The run's phase boundaries as the runner publishes them, in ns since [`Shared::base`]. Zero
/// until the main thread starts the run (all connections settled); scenarios read a plain copy
/// ([`Window`]) once the run started.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Load starts (warm-up begins).
    pub start: AtomicU64,
    /// Measurement starts (warm-up ends).
    pub measure: AtomicU64,
    /// Measurement and sending end.
    pub end: AtomicU64,
    /// Give up waiting for in-flight messages at this time.
    pub grace_end: AtomicU64,
}

/// Live totals for the progress line, updated by each thread once per loop turn.
#[derive(Debug, Default)]
pub struct LiveTotals {
    /// Messages sent (all, including warm-up).
    pub sent: AtomicU64,
    /// Messages received (all).
    pub received: AtomicU64,
    /// Connections open.
    pub open: AtomicU64,
    /// Connections that failed to connect or upgrade, or broke.
    pub errors: AtomicU64,
}

/// Shared by all threads of one run.
#[derive(Debug)]
pub struct Shared {
    /// Monotonic base of every timestamp in messages.
    pub base: Instant,
    /// The run started (set once by the main thread, after `window`).
    pub started: AtomicBool,
    /// Phase boundaries of the run.
    pub timeline: Timeline,
    /// Live totals for the progress line.
    pub totals: LiveTotals,
    /// Set by any thread to end the run early for everyone (e.g. a rounds client was closed).
    pub abort: AtomicBool,
    wakers: Vec<OwnedFd>,
}

impl Shared {
    /// Creates the shared state with one eventfd per thread.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let mut wakers = Vec::with_capacity(threads);
        for _ in 0..threads {
            // SAFETY: eventfd has no memory-safety preconditions; the result is checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            wakers.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(Self {
            base: Instant::now(),
            started: AtomicBool::new(false),
            timeline: Timeline::default(),
            totals: LiveTotals::default(),
            abort: AtomicBool::new(false),
            wakers,
        })
    }

    /// Event-loop threads of the run.
    pub fn threads(&self) -> usize {
        self.wakers.len()
    }

    /// Nanoseconds since `base`.
    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The eventfd thread `t` waits on.
    pub fn waker_fd(&self, t: usize) -> i32 {
        self.wakers[t].as_raw_fd()
    }

    /// Wakes the loop of thread `t`.
    pub fn wake(&self, t: usize) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local to an eventfd we own; failure (counter
        // overflow) only means the thread is already due to wake.
        unsafe {
            libc::write(
                self.wakers[t].as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Wakes every loop.
    pub fn wake_all(&self) {
        for t in 0..self.wakers.len() {
            self.wake(t);
        }
    }

    /// Whether the run has started (acquire: the window is visible afterwards).
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Whether some thread ended the run early.
    pub fn is_aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Ends the run early for all threads.
    pub fn abort_all(&self) {
        self.abort.store(true, Ordering::Relaxed);
        self.wake_all();
    }
}

/// A plain copy of the [`Timeline`] (ns since the shared base), read once the run started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Load starts.
    pub start: u64,
    /// Measurement starts (end of warm-up).
    pub measure: u64,
    /// Measurement and sending end.
    pub end: u64,
    /// Stop waiting for in-flight messages.
    pub grace_end: u64,
}

impl Window {
    /// Reads the window; valid once the run has started.
    pub fn load(shared: &Shared) -> Self {
        let w = &shared.timeline;
        Self {
            start: w.start.load(Ordering::Relaxed),
            measure: w.measure.load(Ordering::Relaxed),
            end: w.end.load(Ordering::Relaxed),
            grace_end: w.grace_end.load(Ordering::Relaxed),
        }
    }

    /// Whether time `t` is inside the measured window.
    pub fn measured(&self, t: u64) -> bool {
        t >= self.measure && t < self.end
    }
}
