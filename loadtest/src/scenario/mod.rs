//! Scenarios: what each connection does. The runner here spawns one [`Driver`] per thread,
//! waits until every connection settled (open or failed), starts the clock for all threads at
//! once, shows progress and collects the results.

pub mod broadcast;
pub mod connect;
pub mod echo;
pub mod rounds;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use crate::conn::Io;
use crate::driver::{Driver, DriverConfig, DriverError};
use crate::progress::Progress;
use crate::shared::Shared;
use crate::stats::Stats;

/// The behaviour of one thread's connections. All callbacks run on the thread's event loop.
pub trait Scenario {
    /// Connection `c` completed its handshake.
    fn on_open(&mut self, _io: &mut Io, _c: usize) {}
    /// A complete data message arrived on `c`.
    fn on_message(&mut self, io: &mut Io, c: usize, binary: bool, payload: &[u8]);
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

/// The run's time window as plain numbers (ns since the shared base).
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
        let w = &shared.window;
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

/// Why a run failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A thread's event loop failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// Spawning a thread or creating the eventfds failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A thread panicked.
    #[error("an event-loop thread panicked")]
    Panic,
}

/// Options of the runner common to every scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How threads connect.
    pub driver: DriverConfig,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// How long to wait for in-flight messages after the end.
    pub grace: Duration,
    /// Progress output mode.
    pub progress: crate::progress::Mode,
}

enum Msg {
    Ready,
    Done,
}

/// Runs one scenario instance per thread: `plan[t]` is thread `t`'s connections (the
/// subprotocol each offers) and scenario. `on_ready` runs once every connection settled, just
/// before the clock starts.
pub fn run<S: Scenario + Send + 'static>(
    opts: &RunOptions,
    shared: Arc<Shared>,
    plan: Vec<(Vec<Option<String>>, S)>,
    on_ready: impl FnOnce(),
) -> Result<(Stats, Vec<S>), RunError> {
    let threads = plan.len();
    let total_conns: usize = plan.iter().map(|(p, _)| p.len()).sum();
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut handles = Vec::with_capacity(threads);
    for (t, (protocols, sc)) in plan.into_iter().enumerate() {
        let cfg = opts.driver.clone();
        let shared = shared.clone();
        let tx = tx.clone();
        let h = std::thread::Builder::new()
            .name(format!("loadtest-{t}"))
            .spawn(move || {
                let fwd = tx.clone();
                let ready_tx: Box<dyn FnOnce() + Send> = Box::new(move || {
                    let _ = fwd.send(Msg::Ready);
                });
                let result =
                    Driver::new(cfg, t, protocols, shared, ready_tx, sc).and_then(|d| d.run());
                let _ = tx.send(Msg::Done);
                result
            })?;
        handles.push(h);
    }
    drop(tx);

    let mut progress = Progress::new(opts.progress, shared.clone(), total_conns);
    let mut ready = 0;
    let mut done = 0;
    let tick = progress.tick();
    while ready < threads && done < threads {
        match rx.recv_timeout(tick) {
            Ok(Msg::Ready) => ready += 1,
            Ok(Msg::Done) => done += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => progress.update("connecting"),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    on_ready();
    let now = shared.now();
    let w = &shared.window;
    let measure = now + opts.warmup.as_nanos() as u64;
    let end = measure + opts.duration.as_nanos() as u64;
    w.start.store(now, Ordering::Relaxed);
    w.measure.store(measure, Ordering::Relaxed);
    w.end.store(end, Ordering::Relaxed);
    w.grace_end
        .store(end + opts.grace.as_nanos() as u64, Ordering::Relaxed);
    shared.started.store(true, Ordering::Release);
    shared.wake_all();
    while done < threads {
        match rx.recv_timeout(tick) {
            Ok(Msg::Done) => done += 1,
            Ok(Msg::Ready) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let t = shared.now();
                let phase = if t < measure {
                    "warm-up"
                } else if t < end {
                    "measuring"
                } else {
                    "draining"
                };
                progress.update(phase);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    progress.finish();

    let mut total = Stats::new();
    let mut scenarios = Vec::with_capacity(threads);
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok((stats, sc))) => {
                total.merge(&stats);
                scenarios.push(sc);
            }
            Ok(Err(e)) => first_err = first_err.or(Some(RunError::Driver(e))),
            Err(_) => first_err = first_err.or(Some(RunError::Panic)),
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok((total, scenarios))
}

/// Splits `n` items round-robin over `threads`: item `i` goes to thread `i % threads`.
pub fn thread_of(i: usize, threads: usize) -> usize {
    i % threads
}
