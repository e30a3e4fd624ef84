//! Issue 14 row 7: a partial message's buffer grows with the bytes that arrived, and all partial
//! messages together stay under `--max-pending-bytes` (docs/limits.md#messages).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::proc::{mib, rss_kib};
use common::{Raw, Server};

/// A masked binary frame header announcing `len` bytes (64-bit length form) and its mask.
fn header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    h
}

/// With one worker, a request answered on a fresh connection was handled after every
/// completion already queued for the others, so what they sent has been processed.
fn barrier(server: &Server) {
    let body = server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(body.ends_with("ok"), "{body}");
}

/// Highest RSS over a short window (the allocator may return or take memory lazily).
fn settled_rss(pid: u32) -> u64 {
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// Row 7, first half: a frame header (plus one payload byte) announcing a large message must not
/// reserve memory for the announced length.
#[test]
fn a_frame_header_alone_reserves_no_memory() {
    const CONNS: usize = 600;
    const BOUND_KIB: u64 = 8 << 10;
    let server = Server::start(&["--workers", "1"]);
    let pid = server.pid();
    let mut conns: Vec<Raw> = (0..CONNS)
        .map(|_| Raw::connect(&server, Some("hdr"), b"").0)
        .collect();
    barrier(&server);
    let before = settled_rss(pid);
    let mut partial = header(1_000_000);
    partial.push(0xAB);
    assert_eq!(partial.len(), 15);
    for c in &mut conns {
        c.send_raw(&partial);
    }
    barrier(&server);
    let after = settled_rss(pid);
    let growth = after.saturating_sub(before);
    eprintln!(
        "row 7a: {CONNS} connections x 15 bytes: RSS {:.1} -> {:.1} MiB (+{:.1})",
        mib(before),
        mib(after),
        mib(growth)
    );
    assert!(
        growth <= BOUND_KIB,
        "{CONNS} 15-byte partial frames grew RSS by {:.1} MiB (bound {} MiB)",
        mib(growth),
        BOUND_KIB >> 10
    );
    drop(conns);
}

/// Row 7, second half: unfinished messages together stay under `--max-pending-bytes`; over it,
/// the connection with the largest partial message is closed with 1008.
#[test]
fn unfinished_messages_stay_under_max_pending_bytes() {
    const CONNS: usize = 100;
    const LEN: u64 = 1_000_000;
    const BUDGET: u64 = 16 << 20;
    const BOUND_KIB: u64 = (BUDGET >> 10) + (16 << 10);
    let budget = BUDGET.to_string();
    let server = Server::start(&["--workers", "1", "--max-pending-bytes", &budget]);
    let pid = server.pid();
    let mut conns: Vec<TcpStream> = (0..CONNS)
        .map(|_| Raw::connect(&server, Some("big"), b"").0.stream)
        .collect();
    barrier(&server);
    let before = settled_rss(pid);
    let mut partial = header(LEN);
    partial.extend(std::iter::repeat_n(0x5A, LEN as usize - 1));
    let mut refused = 0;
    for c in &mut conns {
        c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        // A connection the server closed (or stopped reading) fails here; that is allowed.
        if c.write_all(&partial).is_err() {
            refused += 1;
        }
    }
    barrier(&server);
    let after = settled_rss(pid);
    let growth = after.saturating_sub(before);
    let cuts = server.metric("ringcast_close_sent_total{code=\"1008\"}");
    eprintln!(
        "row 7b: {CONNS} unfinished {LEN}-byte messages: RSS {:.1} -> {:.1} MiB (+{:.1}), \
         {cuts} closed with 1008, {refused} writes failed",
        mib(before),
        mib(after),
        mib(growth)
    );
    assert!(
        growth <= BOUND_KIB,
        "{CONNS} unfinished messages grew RSS by {:.1} MiB (--max-pending-bytes {} MiB, bound {} MiB)",
        mib(growth),
        BUDGET >> 20,
        BOUND_KIB >> 10
    );
    assert!(cuts >= 1, "nobody was closed with 1008 over the budget");
}
