//! The live progress line: an indicatif spinner on a terminal, one plain line per second
//! otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::shared::Shared;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redraw one line on stderr (a terminal).
    Tty,
    /// Print a line to stderr every second.
    Lines,
    /// Print nothing.
    Quiet,
}

impl Mode {
    /// `Tty` when stderr is a terminal, else `Lines`; `Quiet` if asked.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Lines
        }
    }
}

/// The live progress line (display state).
pub struct StatusLine {
    mode: Mode,
    shared: Arc<Shared>,
    total_conns: usize,
    bar: Option<ProgressBar>,
    last: Instant,
    last_sent: u64,
    last_recv: u64,
}

impl StatusLine {
    /// Starts showing progress for a run of `total_conns` connections.
    pub fn new(mode: Mode, shared: Arc<Shared>, total_conns: usize) -> Self {
        let bar = (mode == Mode::Tty).then(|| {
            let b = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                b.set_style(style);
            }
            b
        });
        Self {
            mode,
            shared,
            total_conns,
            bar,
            last: Instant::now(),
            last_sent: 0,
            last_recv: 0,
        }
    }

    /// How often [`StatusLine::update`] should be called.
    pub fn tick(&self) -> Duration {
        match self.mode {
            Mode::Tty => Duration::from_millis(200),
            Mode::Lines | Mode::Quiet => Duration::from_secs(1),
        }
    }

    /// Redraws (or prints) the line for `phase`.
    pub fn update(&mut self, phase: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        let p = &self.shared.totals;
        let sent = p.sent.load(Ordering::Relaxed);
        let recv = p.received.load(Ordering::Relaxed);
        let dt = self.last.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "{phase}: open {}/{} errors {} | sent {:.0}/s recv {:.0}/s | total sent {sent} recv {recv}",
            p.open.load(Ordering::Relaxed),
            self.total_conns,
            p.errors.load(Ordering::Relaxed),
            (sent - self.last_sent) as f64 / dt,
            (recv - self.last_recv) as f64 / dt,
        );
        self.last = Instant::now();
        self.last_sent = sent;
        self.last_recv = recv;
        match &self.bar {
            Some(b) => {
                b.set_message(line);
                b.tick();
            }
            None => eprintln!("{line}"),
        }
    }

    /// Removes the live line.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
