//! Machine and build facts for the report, and the release build the runner starts with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// Machine and build facts for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Start time, UTC.
    pub started: String,
    /// End time, UTC.
    pub finished: String,
    /// /proc/loadavg at the start.
    pub loadavg_start: String,
    /// /proc/loadavg at the end.
    pub loadavg_end: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `ringcast --version`.
    pub ringcast: String,
    /// `loadtest --version`.
    pub loadtest: String,
    /// `git describe --always --dirty` of the workspace.
    pub git: String,
}

pub(super) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub(super) fn cmd_line(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .current_dir(workspace_root())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

pub(super) fn now_utc() -> String {
    cmd_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
}

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub(super) fn machine(bin_dir: &Path) -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let bin = |name: &str| bin_dir.join(name).display().to_string();
    Machine {
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into()),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        started: now_utc(),
        finished: String::new(),
        loadavg_start: loadavg(),
        loadavg_end: String::new(),
        rustc: cmd_line("rustc", &["-V"]),
        ringcast: cmd_line(&bin("ringcast"), &["--version"]),
        loadtest: cmd_line(&bin("loadtest"), &["--version"]),
        git: cmd_line("git", &["describe", "--always", "--dirty"]),
    }
}

pub(super) fn build() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("e2e: cargo build --release -p ringcast -p loadtest -p ringcast-bench --bins");
    let st = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "ringcast",
            "-p",
            "loadtest",
            "-p",
            "ringcast-bench",
            "--bins",
        ])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cargo build failed: {st}"))
    }
}
