//! Issue 14 rows 3, 8 and 15: worker failure and the SIGTERM drain (docs/running.md#signals-and-exit-status).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proc::wait_exit;
use common::{Raw, Server, upgrade_request};
use ringcast_protocol::frame::OpCode;

/// Row 3. A worker that fails ends the whole process with a non-zero exit and a log line naming
/// the worker; nobody stays connected to a half-alive server.
///
/// The failure is injected through a test-only hook: built with the server's cargo feature
/// `fault-injection`, `RINGCAST_TEST_FAIL_WORKER=<id>` makes worker `<id>` panic when it accepts
/// its first connection. Without the feature this test is ignored; run it with
/// `cargo test -p ringcast --features fault-injection --test hardening_lifecycle`.
#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the server's `fault-injection` feature"
)]
fn a_failed_worker_ends_the_process_with_a_named_cause() {
    let mut server =
        Server::start_with_env(&["--workers", "2"], &[("RINGCAST_TEST_FAIL_WORKER", "1")]);
    // SO_REUSEPORT spreads connections by their address hash: 40 of them all missing worker 1
    // has a chance of 2^-40.
    let mut clients: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(&upgrade_request(Some("fail"), b"")).unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let status = wait_exit(&mut server.child, Duration::from_secs(10));
    let waited = started.elapsed();
    let mut open = 0;
    for s in &mut clients {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut sink = Vec::new();
        // A connection still served or still hanging times out here.
        if let Err(e) = s.read_to_end(&mut sink)
            && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
        {
            open += 1;
        }
    }
    let log = server.stderr();
    eprintln!(
        "row 3: after worker 1 failed: exit {status:?} after {:.1} s, {open} of 40 clients \
         still connected",
        waited.as_secs_f64()
    );
    let status = status.expect("the process still runs 10 s after a worker failed");
    assert!(
        !status.success(),
        "a failed worker must end the process non-zero"
    );
    assert!(
        log.contains("worker 1") || log.contains("ringcast-w1"),
        "no log line names the failed worker:\n{log}"
    );
    assert_eq!(open, 0, "clients still connected after the process ended");
}

/// Row 8. `--drain-timeout` above the 2 s close linger still waits as configured for clients
/// that have not answered the Close 1001, and the process exits 0 once they do.
#[test]
fn the_drain_waits_as_long_as_configured() {
    let mut server = Server::start(&["--drain-timeout", "6"]);
    let (mut raw, _) = Raw::connect(&server, Some("drain"), b"");
    server.signal(libc::SIGTERM);
    let signalled = Instant::now();
    assert_eq!(raw.expect_close(), 1001);
    // The client keeps its Close reply back: at 4.5 s into a 6 s drain the server still waits.
    let early = wait_exit(&mut server.child, Duration::from_millis(4500));
    eprintln!(
        "row 8: --drain-timeout 6, unanswered Close: {}",
        match early {
            Some(s) => format!(
                "exited after {:.1} s ({s})",
                signalled.elapsed().as_secs_f64()
            ),
            None => "still draining at 4.5 s".into(),
        }
    );
    assert!(
        early.is_none(),
        "exited {:.1} s into a 6 s drain ({early:?})",
        signalled.elapsed().as_secs_f64()
    );
    raw.send_frame(OpCode::Close, true, &1001u16.to_be_bytes());
    raw.expect_eof();
    let status = wait_exit(&mut server.child, Duration::from_secs(5))
        .expect("the drain ends once every client answered");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
}

/// Row 15. A second SIGINT/SIGTERM during the drain exits at once with status 1.
#[test]
fn a_second_signal_during_the_drain_exits_at_once_with_status_1() {
    let mut server = Server::start(&["--drain-timeout", "30"]);
    let (mut raw, _) = Raw::connect(&server, Some("twice"), b"");
    server.signal(libc::SIGTERM);
    // The Close 1001 shows that the drain has begun; the client never answers it.
    assert_eq!(raw.expect_close(), 1001);
    server.signal(libc::SIGINT);
    let second = Instant::now();
    let status = wait_exit(&mut server.child, Duration::from_secs(10));
    let took = second.elapsed().as_secs_f64();
    eprintln!("row 15: after the second signal: {status:?} after {took:.1} s");
    let status = status.expect("still running 10 s after a second signal");
    assert!(
        took <= 1.5,
        "exited {took:.1} s after the second signal (bound 1.5 s)"
    );
    assert_eq!(status.code(), Some(1), "{status:?}");
}
