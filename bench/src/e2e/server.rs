//! Servers under test: spawning, reading the listening line, CPU and memory from `/proc`, and
//! stopping with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a server of the comparison is obtained.
#[derive(Debug, Clone)]
pub enum ServerKind {
    /// `ringcast --workers N`.
    Ringcast {
        /// Worker threads.
        workers: usize,
    },
    /// The tokio reference `peer --workers N`.
    Peer {
        /// Runtime worker threads.
        workers: usize,
    },
    /// `nodes` × `ringcast --workers N --cluster redis://…` and one redis-server, all started by
    /// the runner (see `fleet`).
    Cluster {
        /// ringcast processes.
        nodes: usize,
        /// Worker threads of each.
        workers: usize,
    },
    /// A server someone else started; only its URLs are known.
    External {
        /// URL of the plain (no echo) instance.
        url: String,
        /// URL of an instance that echoes to the sender, for the rounds scenarios.
        echo_url: Option<String>,
    },
}

/// One server of the comparison.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Name in the report (`peer`, `ringcast-w1`, ...).
    pub name: String,
    /// How to get it.
    pub kind: ServerKind,
}

impl ServerSpec {
    /// Whether this is the reference every ratio divides by.
    pub fn is_reference(&self) -> bool {
        matches!(self.kind, ServerKind::Peer { .. })
    }

    /// Whether the runner starts (and so can measure) the process itself.
    pub fn is_local(&self) -> bool {
        !matches!(self.kind, ServerKind::External { .. })
    }
}

/// A started server (or an external one, with no process).
pub struct Running {
    /// The URL clients connect to.
    pub url: String,
    child: Option<Child>,
    stdout_drain: Option<std::thread::JoinHandle<()>>,
}

/// CPU time and memory of a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU seconds of the whole process so far.
    pub cpu_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub hwm_kib: u64,
}

/// Reads utime + stime from `/proc/PID/stat` and VmRSS/VmHWM from `/proc/PID/status`.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tick = if tick > 0 { tick as f64 } else { 100.0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_s: (utime + stime) as f64 / tick,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// Starts `spec` (fresh, on an ephemeral port; `echo` turns on delivery to the sender; `extra`
/// are more arguments, given to ringcast only; `tls`: `--tls-cert`/`--tls-key`, which ringcast
/// and the peer both take). For an external server, picks its URL (`None` if it has no echo
/// URL and `echo` is asked for).
pub fn start(
    spec: &ServerSpec,
    bin_dir: &Path,
    echo: bool,
    extra: &[String],
    tls: &[String],
    log: &Path,
) -> Result<Option<Running>, String> {
    let (bin, workers) = match &spec.kind {
        ServerKind::External { url, echo_url } => {
            let url = if echo {
                echo_url.clone()
            } else {
                Some(url.clone())
            };
            return Ok(url.map(|url| Running {
                url,
                child: None,
                stdout_drain: None,
            }));
        }
        ServerKind::Ringcast { workers } => (bin_dir.join("ringcast"), *workers),
        ServerKind::Peer { workers } => (bin_dir.join("peer"), *workers),
        ServerKind::Cluster { .. } => {
            return Err(format!(
                "{}: a cluster is started node by node (fleet)",
                spec.name
            ));
        }
    };
    let mut cmd = Command::new(&bin);
    cmd.args(["--listen", "127.0.0.1:0", "--workers", &workers.to_string()]);
    if echo {
        cmd.arg("--echo");
    }
    if matches!(spec.kind, ServerKind::Ringcast { .. }) {
        cmd.args(extra);
    }
    cmd.args(tls);
    let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr));
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    // Reads the listening line, then keeps draining stdout so the server never blocks on it.
    let drain = std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(url) = listening_url(&line) {
                let _ = tx.send(url);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => Ok(Some(Running {
            url,
            child: Some(child),
            stdout_drain: Some(drain),
        })),
        Err(_) => {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{} printed no listening line within 30 s ({}); see {}",
                spec.name,
                status.map_or("still running".to_string(), |s| s.to_string()),
                log.display()
            ))
        }
    }
}

/// The `ws://...` (or `wss://...`, the first) URL of a `... listening on ws://IP:PORT/ (...)`
/// line.
pub fn listening_url(line: &str) -> Option<String> {
    if !line.contains("listening on") {
        return None;
    }
    let at = (line.find("ws://").into_iter())
        .chain(line.find("wss://"))
        .min()?;
    let url = line[at..].split_whitespace().next()?;
    Some(url.to_owned())
}

impl Running {
    /// The server's process id, if the runner started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` if the process has already exited (a crash, while it should serve).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM and waits up to `patience` for the exit. `Ok` describes how it ended; an
    /// exit other than 0 or death by that SIGTERM, or no exit in time (then SIGKILL), is `Err`.
    pub fn stop(mut self, patience: Duration) -> Result<String, String> {
        let Some(mut child) = self.child.take() else {
            return Ok("external".into());
        };
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("had already exited before SIGTERM: {st}"));
        }
        // SAFETY: kill only sends a signal to the child we spawned (and have not reaped).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        let res = loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    use std::os::unix::process::ExitStatusExt as _;
                    let secs = t0.elapsed().as_secs_f64();
                    break if st.success() {
                        Ok(format!("exit 0 after SIGTERM ({secs:.2} s)"))
                    } else if st.signal() == Some(libc::SIGTERM) {
                        Ok(format!("terminated by SIGTERM ({secs:.2} s)"))
                    } else {
                        Err(format!("after SIGTERM: {st}"))
                    };
                }
                Ok(None) if t0.elapsed() > patience => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "did not exit within {:.0} s of SIGTERM (killed)",
                        patience.as_secs_f64()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(format!("wait: {e}")),
            }
        };
        if let Some(h) = self.stdout_drain.take() {
            let _ = h.join();
        }
        res
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Directory of the release binaries: `--bin-dir`, else the `release` directory next to (or
/// holding) this executable.
pub fn default_bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "release") {
        dir
    } else {
        dir.parent().map_or(dir.clone(), |p| p.join("release"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        assert_eq!(
            listening_url("ringcast listening on ws://127.0.0.1:4242/ (2 workers)").as_deref(),
            Some("ws://127.0.0.1:4242/")
        );
        assert_eq!(
            listening_url("peer listening on ws://127.0.0.1:1/ (1 workers)").as_deref(),
            Some("ws://127.0.0.1:1/")
        );
        assert_eq!(
            listening_url("ringcast listening on wss://127.0.0.1:4/ ws://127.0.0.1:5/ (2 workers)")
                .as_deref(),
            Some("wss://127.0.0.1:4/"),
            "the first URL: the TLS listener's"
        );
        assert_eq!(listening_url("warming up"), None);
    }

    #[test]
    fn own_process_sample() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
