//! Issue 14 rows 1, 6 and 18: every outbound byte is bounded, and a cut is clean (docs/limits.md#backpressure).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::proc::{mib, poll_until, rss_kib, threads_named};
use common::{Raw, Server, upgrade_request};
use ringcast_protocol::frame::{OpCode, encode_masked_frame};

/// Row 1. A client that floods Pings and never reads must not grow the server's memory: docs/limits.md#backpressure
/// allows cutting it with 1008 (counted) or collapsing owed Pongs to the latest. A server that
/// stops reading the flooder (TCP flow control) also passes: the flood then costs nothing.
#[test]
fn a_ping_flood_from_a_client_that_never_reads_costs_no_memory() {
    const SEND: usize = 48 << 20;
    const BOUND_KIB: u64 = 32 << 10;
    let server = Server::start(&["--max-backpressure", "65536", "--workers", "1"]);
    let pid = server.pid();
    let (mut raw, _) = Raw::connect(&server, Some("flood"), b"");
    raw.stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // Empty pings are 6 bytes on the wire, so the per-Pong cost of the server dominates.
    let mut chunk = Vec::new();
    for _ in 0..10_000 {
        encode_masked_frame(&mut chunk, OpCode::Ping, true, b"", [1, 2, 3, 4]);
    }
    let before = rss_kib(pid);
    let mut peak = before;
    let mut sent = 0usize;
    let mut ended = None;
    let start = Instant::now();
    while sent < SEND && start.elapsed() < Duration::from_secs(30) {
        match raw.stream.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(e) => {
                ended = Some(e.kind());
                break;
            }
        }
        peak = peak.max(rss_kib(pid));
        if peak - before > 2 * BOUND_KIB {
            break; // Clearly unbounded: stop before the machine suffers.
        }
    }
    let growth = peak.saturating_sub(before);
    eprintln!(
        "row 1: {} MB of pings sent in {:.1} s, RSS {:.1} -> {:.1} MiB (+{:.1}), flood ended by {ended:?}",
        sent >> 20,
        start.elapsed().as_secs_f64(),
        mib(before),
        mib(peak),
        mib(growth)
    );
    assert!(
        growth <= BOUND_KIB,
        "a ping flood grew RSS by {:.1} MiB after {} MB of pings (bound {} MiB)",
        mib(growth),
        sent >> 20,
        BOUND_KIB >> 10
    );
    if matches!(
        ended,
        Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)
    ) {
        let cuts = server.metric("ringcast_close_sent_total{code=\"1008\"}");
        assert!(cuts >= 1, "the flooder was dropped without a counted 1008");
    }
}

/// Strictly parses what a room receiver got: whole unmasked binary frames of `size` bytes, each
/// filled with one byte value, then exactly one Close 1008 and nothing after it. A stream cut
/// short within a data frame's header or fill (a teardown mid-send) is an `Err` starting with
/// [`NO_CLOSE`], as is one that ends after whole frames.
fn check_cut_stream(bytes: &[u8], size: usize) -> Result<usize, String> {
    let mut at = 0;
    let mut frames = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest == [0x82] {
            return Err(format!(
                "{NO_CLOSE} {frames} whole frames and a header's first byte"
            ));
        }
        if rest.len() < 2 {
            return Err(format!("{} stray bytes after {frames} frames", rest.len()));
        }
        let (b0, b1) = (rest[0], rest[1]);
        if b1 & 0x80 != 0 || b0 & 0x70 != 0 || b0 & 0x80 == 0 {
            return Err(format!("bad header {b0:#04x} {b1:#04x} at byte {at}"));
        }
        let (len, head) = match b1 & 0x7f {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return Err(format!("{NO_CLOSE} {frames} whole frames and a cut header")),
            n => (n as usize, 2),
        };
        let got = &rest[head.min(rest.len())..];
        if rest.len() < head + len && got.iter().all(|&b| got.first() == Some(&b)) {
            // A frame cut short with nothing but its own fill byte: the connection was torn
            // down mid-send (the linger time ran out), not a Close written into a frame.
            return Err(format!(
                "{NO_CLOSE} {frames} whole frames and {} of {len} bytes of the next",
                got.len()
            ));
        }
        if rest.len() < head + len {
            return Err(format!(
                "truncated frame after {frames} frames: {} of {len} payload bytes",
                rest.len() - head
            ));
        }
        let payload = &rest[head..head + len];
        match b0 & 0x0f {
            0x2 => {
                if len != size || payload.iter().any(|&b| b != payload[0]) {
                    return Err(format!("corrupt binary frame {frames} (len {len})"));
                }
            }
            0x8 => {
                let code = (len >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                if code != Some(1008) {
                    return Err(format!("Close {code:?} instead of 1008"));
                }
                if at + head + len != bytes.len() {
                    return Err("bytes after the Close".into());
                }
                return Ok(frames);
            }
            op => return Err(format!("unexpected opcode {op} after {frames} frames")),
        }
        at += head + len;
        frames += 1;
    }
    Err(format!("{NO_CLOSE} {frames} whole frames"))
}

/// How [`check_cut_stream`] starts its complaint about a stream of whole frames that ended
/// without a Close.
const NO_CLOSE: &str = "no Close 1008 after";

/// A connection whose receive buffer is small from the SYN on, so the server's sends to it are
/// often partial. (Shrinking it after connect instead stalls loopback TCP in zero-window probes.)
fn small_window(addr: &str) -> TcpStream {
    let addr: std::net::SocketAddrV4 = addr.parse().unwrap();
    let small: libc::c_int = 4096;
    // SAFETY: a fresh socket we own; setsockopt reads `small`, connect reads `sin`; the fd is
    // handed to the TcpStream exactly once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }
}

/// Row 18. Receivers that read, but too slowly, are cut by backpressure; each must see whole
/// frames followed by Close 1008 (or by the end, for one that had not drained its backlog
/// within the server's linger time), never a truncated frame with the Close inside its payload.
#[test]
fn a_backpressure_cut_ends_on_a_frame_boundary_then_close_1008() {
    // The faulty cut needs a partial send completing in the turn that crosses the limit; a few
    // rounds make that likely: before the fix about 1 round in 4 had malformed streams (0 to 32
    // of 32 readers), so 12 rounds catch it in about 98% of runs.
    let server = Server::start(&["--max-backpressure", "65536", "--workers", "1"]);
    let mut bad = Vec::new();
    for round in 0..12 {
        bad.extend(cut_round(&server, round));
    }
    assert!(
        bad.is_empty(),
        "{} malformed streams:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn cut_round(server: &Server, round: u64) -> Vec<String> {
    const READERS: usize = 24;
    const SIZE: usize = 16 * 1024;
    let room = format!("cut{round}");
    let published = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..READERS {
        let published = published.clone();
        let (raw, _) = Raw::handshake(
            small_window(&server.addr),
            &upgrade_request(Some(&room), b""),
        );
        let mut stream = raw.stream;
        threads.push(std::thread::spawn(move || {
            // A reader that reads, slowly (2 KiB every 5 ms) while the publisher runs, then
            // drains what is left at full speed until the server closes.
            let mut got = Vec::new();
            let mut chunk = [0u8; 2048];
            let end = Instant::now() + Duration::from_secs(60);
            let mut how = "60 s deadline".to_string();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            while Instant::now() < end {
                match stream.read(&mut chunk) {
                    Ok(0) => {
                        how = "EOF".into();
                        break;
                    }
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        how = e.kind().to_string();
                        break;
                    }
                }
                if !published.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            (got, how)
        }));
    }
    let (mut publisher, _) = Raw::connect(server, Some(&room), b"");
    let start = Instant::now();
    let mut i = 0u32;
    let mut since_check = 0;
    let mut burst = Vec::new();
    // 64 KiB of backpressure against slow readers: every reader is cut within a few hundred
    // messages; the cap only bounds the run when a server never cuts.
    while i < 5_000 {
        // Several messages per write, so one server turn sees sends complete (often partially,
        // against the slow readers) and new messages arrive together.
        burst.clear();
        for _ in 0..4 {
            encode_masked_frame(
                &mut burst,
                OpCode::Binary,
                true,
                &[i as u8; SIZE],
                [5, 6, 7, 8],
            );
            i += 1;
        }
        publisher.send_raw(&burst);
        since_check += 1;
        if since_check == 25
            && server.metric("ringcast_backpressure_disconnects_total")
                >= READERS as u64 * (round + 1)
        {
            break;
        }
        since_check %= 25;
    }
    published.store(true, Ordering::Relaxed);
    let mut bad = Vec::new();
    let (mut closed, mut lingered) = (0, 0);
    for (n, t) in threads.into_iter().enumerate() {
        let (bytes, how) = t.join().unwrap();
        match check_cut_stream(&bytes, SIZE) {
            Ok(_) => closed += 1,
            // Whole frames (the last maybe cut short), then the end without a Close: a reader
            // starved on a loaded machine had not drained its backlog when the server's linger
            // time (`LINGER_MS`, 2 s) after its cut ran out, so the server tore the connection
            // down with its Close still queued (1 reader in 2 of 5 full test runs under load).
            // Not the fault this row is about (a Close inside a truncated frame: bytes other
            // than the frame's fill); the Close 1008 of the others is checked.
            Err(e) if e.starts_with(NO_CLOSE) && how == "EOF" => lingered += 1,
            Err(e) => bad.push(format!(
                "reader {n} ({} bytes, ended by {how}): {e}",
                bytes.len()
            )),
        }
    }
    if closed == 0 {
        bad.push(format!("round {round}: no reader got its Close 1008"));
    }
    eprintln!(
        "row 18 round {round}: {i} messages sent in {:.1} s, {} backpressure cuts counted, {} of {READERS} \
         readers got a malformed stream, {lingered} whole frames then EOF past the linger time",
        start.elapsed().as_secs_f64(),
        server.metric("ringcast_backpressure_disconnects_total"),
        bad.len()
    );
    bad
}

/// Stops one thread of the server with ptrace (other threads run on) until dropped.
struct Freeze(libc::pid_t);

impl Freeze {
    fn thread(tid: libc::pid_t) -> Result<Freeze, String> {
        let null = std::ptr::null_mut::<libc::c_void>();
        // SAFETY: ptrace on a thread of our own child; SEIZE and INTERRUPT take no memory.
        unsafe {
            if libc::ptrace(libc::PTRACE_SEIZE, tid, null, null) != 0 {
                return Err(format!("PTRACE_SEIZE: {}", std::io::Error::last_os_error()));
            }
            let frozen = Freeze(tid);
            if libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null) != 0 {
                return Err(format!(
                    "PTRACE_INTERRUPT: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let mut status = 0;
            if libc::waitpid(tid, &mut status, libc::__WALL) != tid || !libc::WIFSTOPPED(status) {
                return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
            }
            Ok(frozen)
        }
    }
}

impl Drop for Freeze {
    fn drop(&mut self) {
        // SAFETY: detaching resumes the thread we seized.
        unsafe {
            libc::ptrace(
                libc::PTRACE_DETACH,
                self.0,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            );
        }
    }
}

/// Sends a Ping on every connection and returns, for each, whether its Pong came back
/// within `wait` (so whether its worker is running).
fn answers(conns: &mut [Raw], wait: Duration) -> Vec<bool> {
    for c in conns.iter_mut() {
        c.send_frame(OpCode::Ping, true, b"who");
    }
    let end = Instant::now() + wait;
    conns
        .iter_mut()
        .map(|c| {
            let left = end.saturating_duration_since(Instant::now());
            c.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let ok = matches!(c.read_frame(), Some((0xA, p)) if p == b"who");
            c.stream
                .set_read_timeout(Some(common::READ_TIMEOUT))
                .unwrap();
            ok
        })
        .collect()
}

/// Row 6. A worker that falls behind (here: stopped by ptrace) must not make the cross-worker
/// queue grow with what other workers publish: the queue is bounded and the lagging worker's
/// receivers are cut with 1008. Skips, saying so, when ptrace is not permitted.
#[test]
fn a_stalled_worker_costs_its_receivers_not_unbounded_memory() {
    const SIZE: usize = 64 * 1024;
    const MESSAGES: usize = 4096; // 256 MiB through the queue to the stalled worker.
    const BOUND_KIB: u64 = 96 << 10;
    let server = Server::start(&["--workers", "2"]);
    let pid = server.pid();
    let mut w1 = Vec::new();
    assert!(
        poll_until(Duration::from_secs(5), || {
            w1 = threads_named(pid, "ringcast-w1");
            !w1.is_empty()
        }),
        "no ringcast-w1 thread"
    );
    let mut conns: Vec<Raw> = (0..32)
        .map(|_| Raw::connect(&server, Some("lag"), b"").0)
        .collect();
    let frozen = match Freeze::thread(w1[0]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("SKIPPED row 6: cannot stop a server thread ({e})");
            return;
        }
    };
    let running = answers(&mut conns, Duration::from_secs(2));
    let mut on_w0 = Vec::new();
    let mut on_w1 = Vec::new();
    for (c, alive) in conns.into_iter().zip(running) {
        if alive { on_w0.push(c) } else { on_w1.push(c) }
    }
    assert!(
        !on_w0.is_empty() && !on_w1.is_empty(),
        "connections not spread over both workers: {} / {}",
        on_w0.len(),
        on_w1.len()
    );
    let mut publisher = on_w0.swap_remove(0);
    drop(on_w0);
    let before = rss_kib(pid);
    let mut peak = before;
    let mut frame = Vec::new();
    for i in 0..MESSAGES {
        frame.clear();
        encode_masked_frame(
            &mut frame,
            OpCode::Binary,
            true,
            &vec![i as u8; SIZE],
            [9, 8, 7, 6],
        );
        publisher.stream.write_all(&frame).unwrap();
        if i & 15 == 0 {
            peak = peak.max(rss_kib(pid));
            if peak - before > 2 * BOUND_KIB {
                break;
            }
        }
    }
    // What the publisher sent is processed once worker 0 answers a Ping sent after it.
    let _ = answers(std::slice::from_mut(&mut publisher), common::READ_TIMEOUT);
    peak = peak.max(rss_kib(pid));
    let growth = peak.saturating_sub(before);
    eprintln!(
        "row 6: {} receivers on the stalled worker, RSS {:.1} -> {:.1} MiB (+{:.1})",
        on_w1.len(),
        mib(before),
        mib(peak),
        mib(growth)
    );
    drop(frozen);
    assert!(
        growth <= BOUND_KIB,
        "{} MiB published towards a stalled worker grew RSS by {:.1} MiB (bound {} MiB)",
        (MESSAGES * SIZE) >> 20,
        mib(growth),
        BOUND_KIB >> 10
    );
    for c in &mut on_w1 {
        assert_eq!(
            c.expect_close(),
            1008,
            "a lagging receiver is cut with 1008"
        );
    }
}

/// The row 18 check tells a teardown mid-send (a frame cut short with only its fill byte) from
/// the fault it exists for (a Close written into an unfinished frame).
#[test]
fn the_cut_stream_check_tells_a_teardown_from_a_close_inside_a_frame() {
    const SIZE: usize = 16 * 1024;
    let frame = |fill: u8| [&[0x82, 126, 0x40, 0x00][..], &[fill; SIZE]].concat();
    let close = [0x88, 0x02, 0x03, 0xf0];
    let whole = [frame(1), frame(2)].concat();
    assert_eq!(
        check_cut_stream(&[&whole[..], &close].concat(), SIZE),
        Ok(2)
    );
    let torn = [&whole[..], &frame(3)[..900]].concat();
    let e = check_cut_stream(&torn, SIZE).unwrap_err();
    assert!(e.starts_with(NO_CLOSE), "{e}");
    let faulty = [&torn[..], &close].concat();
    let e = check_cut_stream(&faulty, SIZE).unwrap_err();
    assert!(e.starts_with("truncated frame"), "{e}");
}
