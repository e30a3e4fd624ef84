//! Issue 14 rows 2 and 9: file descriptors (docs/running.md#open-files).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proc::{cpu_share, fd_count, poll_until};
use common::{Raw, Server};

/// Row 2. With every descriptor in use, accept fails with EMFILE; the worker must back off (no
/// busy loop) and log at most one line per second, then recover once descriptors are free.
#[test]
fn at_the_fd_limit_accept_backs_off_and_logs_at_most_once_a_second() {
    const WINDOW: Duration = Duration::from_secs(3);
    // Soft and hard limit both 64, so raising the soft limit at start cannot lift it.
    let server = Server::try_start(&["--workers", "2"], &[], Some((64, 64)))
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = server.pid();
    // Far more clients than descriptors: the kernel completes them all (backlog 4096), the
    // server can accept only the first few dozen.
    let clients: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    assert!(
        poll_until(Duration::from_secs(10), || fd_count(pid) >= 60),
        "the server never reached its descriptor limit ({} open)",
        fd_count(pid)
    );
    let lines_before = server.stderr().lines().count();
    let share = cpu_share(pid, WINDOW);
    let log = server.stderr();
    let lines = log.lines().count() - lines_before;
    eprintln!(
        "row 2: at the fd limit the server used {:.0}% of a core and logged {lines} lines \
         ({} bytes of log so far) in {} s",
        share * 100.0,
        log.len(),
        WINDOW.as_secs()
    );
    assert!(
        share <= 0.15,
        "{:.0}% of a core while at the fd limit (bound 15%)",
        share * 100.0
    );
    let bound = WINDOW.as_secs() as usize + 2;
    assert!(
        lines <= bound,
        "{lines} log lines in {WINDOW:?} at the fd limit (bound {bound})"
    );
    drop(clients);
    // Descriptors are free again: accepting resumes after the backoff.
    let (_ws, head) = Raw::connect(&server, Some("back"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

/// The soft limit of the open-file limit, from /proc/PID/limits.
fn soft_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no open-file limit in {limits}"))
}

/// Row 2, start-up half: the soft RLIMIT_NOFILE is raised to the hard limit, and a
/// `--max-connections` above it is warned about.
#[test]
fn the_soft_fd_limit_is_raised_and_a_short_one_warned_about() {
    let server = Server::try_start(&["--max-connections", "100000"], &[], Some((256, 4096)))
        .unwrap_or_else(|e| panic!("{e}"));
    let soft = soft_nofile(server.pid());
    let warned = poll_until(Duration::from_secs(2), || {
        server.stderr().contains("max-connections")
    });
    eprintln!("row 2 (start): soft limit 256/4096 became {soft}; warning logged: {warned}");
    assert_eq!(
        soft, 4096,
        "the soft open-file limit is raised to the hard limit"
    );
    assert!(
        warned,
        "no warning that --max-connections 100000 exceeds the 4096 descriptors:\n{}",
        server.stderr()
    );
}

/// Reads one HTTP response (head and `Content-Length` body) and returns its status line.
fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return head.lines().next().unwrap_or_default().to_string();
            }
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// Row 9. A connection refused with 503 (here over `--max-connections-per-ip`) is closed as soon
/// as its response is written: the server holds no descriptor for it afterwards.
#[test]
fn refused_connections_hold_no_descriptor() {
    const SILENT: usize = 40;
    let server = Server::start(&["--max-connections-per-ip", "5", "--workers", "1"]);
    let pid = server.pid();
    let _held: Vec<Raw> = (0..5)
        .map(|_| Raw::connect(&server, Some("ip"), b"").0)
        .collect();
    let base = fd_count(pid);
    // Silent clients: they send nothing, read their 503 and keep their end open.
    let mut silent: Vec<TcpStream> = (0..SILENT)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    for s in &mut silent {
        s.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
        let status = read_response(s);
        assert!(status.starts_with("HTTP/1.1 503"), "{status:?}");
    }
    let answered = Instant::now();
    let released = poll_until(Duration::from_secs(1), || fd_count(pid) <= base + 2);
    let held = fd_count(pid).saturating_sub(base);
    let mut released_after = None;
    if !released && poll_until(Duration::from_secs(5), || fd_count(pid) <= base + 2) {
        released_after = Some(answered.elapsed());
    }
    eprintln!(
        "row 9: 1 s after {SILENT} refusals were answered the server held {held} of their \
         descriptors (all released after {released_after:?})"
    );
    assert!(
        released,
        "{held} descriptors of refused connections still held 1 s after their 503"
    );
}
