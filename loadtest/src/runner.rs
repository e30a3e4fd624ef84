//! The multi-thread runner: spawns one [`Driver`] per thread, waits until every connection
//! settled (open or failed), starts the clock for all threads at once, shows progress and
//! collects the results.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use crate::driver::{Driver, DriverConfig, DriverError};
use crate::progress::StatusLine;
use crate::scenario::{Plan, Scenario};
use crate::shared::Shared;
use crate::stats::Stats;

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
    plan: Plan<S>,
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

    let mut progress = StatusLine::new(opts.progress, shared.clone(), total_conns);
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
    let w = &shared.timeline;
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
