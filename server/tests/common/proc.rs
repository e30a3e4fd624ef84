//! Reads a process's resource use from /proc, for tests that assert a bound on it.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Resident memory of `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time of `pid` (user + system, all threads) in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// Clock ticks per second.
pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Share of one core `pid` used over `interval` (1.0 = one core busy all the time).
pub fn cpu_share(pid: u32, interval: Duration) -> f64 {
    let t0 = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(interval);
    let ticks = cpu_ticks(pid).saturating_sub(t0);
    ticks as f64 / ticks_per_sec() / start.elapsed().as_secs_f64()
}

/// Descriptors `pid` holds now.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Polls until `pred` holds or `deadline` passes; returns whether it held.
pub fn poll_until(deadline: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `f` until it returns something equal to `want`, for up to [`super::READ_TIMEOUT`];
/// panics with the last value (and `what`) otherwise.
pub fn wait_eq<T: PartialEq<W> + std::fmt::Debug, W: std::fmt::Debug>(
    what: &str,
    want: W,
    mut f: impl FnMut() -> T,
) {
    let mut last = None;
    let ok = poll_until(super::READ_TIMEOUT, || {
        let v = f();
        let done = v == want;
        last = Some(v);
        done
    });
    assert!(ok, "{what}: {last:?}, never became {want:?}");
}

/// Waits up to `deadline` for `child` to exit.
pub fn wait_exit(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let mut status = None;
    poll_until(deadline, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

/// Thread ids of `pid` whose name (`comm`) is `name`.
pub fn threads_named(pid: u32, name: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == name).then_some(tid)
        })
        .collect()
}

/// A MiB figure for messages.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
