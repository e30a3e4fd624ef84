//! Issue 14 rows 4, 5, 10, 11 and 17: the HTTP side under hostile or unusual clients (docs/http.md,
//! docs/room-mode.md#which-room, docs/limits.md).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{Raw, Server, upgrade_request};
use ringcast_protocol::frame::OpCode;

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Row 4. The head must be complete within `--handshake-timeout` of the accept: a trickle of
/// bytes does not extend it.
#[test]
fn a_trickled_head_is_dropped_at_the_handshake_timeout_counted_from_accept() {
    let server = Server::start(&["--handshake-timeout", "1"]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let accepted = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let req = upgrade_request(Some("slow"), b"");
    let mut buf = [0u8; 512];
    let mut outcome = String::from("still handshaking");
    let mut closed_at = None;
    'trickle: for &b in &req {
        if s.write_all(&[b]).is_err() {
            closed_at = Some(accepted.elapsed());
            outcome = "closed (write failed)".into();
            break;
        }
        // Waiting up to 250 ms for the server to act is also the pace of the trickle.
        match s.read(&mut buf) {
            Ok(0) => {
                closed_at = Some(accepted.elapsed());
                outcome = "closed".into();
                break 'trickle;
            }
            Ok(n) => {
                let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                outcome = format!("answered {answer:?}");
                if status(&answer) != 101 {
                    closed_at = Some(accepted.elapsed());
                }
                break 'trickle;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed_at = Some(accepted.elapsed());
                outcome = "reset".into();
                break 'trickle;
            }
        }
        if accepted.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    eprintln!(
        "row 4: --handshake-timeout 1, one byte per 250 ms: {outcome} at {:.1} s",
        accepted.elapsed().as_secs_f64()
    );
    let at = closed_at.unwrap_or_else(|| panic!("{outcome} at {:?}", accepted.elapsed()));
    assert!(
        at <= Duration::from_secs(3),
        "dropped only {:.1} s after the accept (timeout 1 s, bound 3 s)",
        at.as_secs_f64()
    );
}

/// Sends `request`, half-closes, and returns everything the server sends before closing.
fn half_closed_exchange(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Whether `resp` is a complete HTTP response with `want` status and its whole body.
fn complete(resp: &[u8], want: u16) -> bool {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&resp[..end]);
    let len = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    status(&head) == want && len == Some(resp.len() - end - 4)
}

/// Row 5. A client that half-closes (FIN) right after its request still gets the whole response.
#[test]
fn a_half_closed_client_still_gets_everything_queued_for_it() {
    const N: usize = 30;
    let server = Server::start(&[]);
    let healthz_lost = (0..N)
        .filter(|_| {
            let r = half_closed_exchange(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            !(complete(&r, 200) && r.ends_with(b"ok"))
        })
        .count();
    let index_lost = (0..N)
        .filter(|_| {
            let r = half_closed_exchange(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            !complete(&r, 200)
        })
        .count();
    let close_lost = (0..N)
        .filter(|_| {
            let (mut raw, _) = Raw::connect(&server, Some("fin"), b"");
            raw.send_frame(OpCode::Close, true, &1000u16.to_be_bytes());
            raw.stream.shutdown(Shutdown::Write).unwrap();
            !matches!(raw.read_frame(), Some((0x8, p)) if p.get(..2) == Some(&1000u16.to_be_bytes()[..]))
        })
        .count();
    eprintln!(
        "row 5: after SHUT_WR, lost {healthz_lost}/{N} /healthz, {index_lost}/{N} /, \
         {close_lost}/{N} Close echoes"
    );
    assert_eq!(
        (healthz_lost, index_lost, close_lost),
        (0, 0, 0),
        "responses lost to a half-close (/healthz, /, Close echo)"
    );
}

/// Row 10. RFC 6455 §11.3.1: `Sec-WebSocket-Key` and `-Version` must not repeat (400); RFC 7230
/// §3.2.2: `Connection` on two lines is one merged list, so `Upgrade` on either line counts.
#[test]
fn repeated_key_or_version_is_refused_and_split_connection_lines_are_merged() {
    let server = Server::start(&[]);
    let base = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let key2 = "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n";
    let ver = "Sec-WebSocket-Version: 13\r\n";
    let conn = "Connection: Upgrade\r\n";
    let dup_key = format!("{base}{conn}{key}{key2}{ver}\r\n");
    let dup_ver = format!("{base}{conn}{key}{ver}{ver}\r\n");
    let got_key = server.http(dup_key.as_bytes());
    let got_ver = server.http(dup_ver.as_bytes());
    let mut split = Vec::new();
    for lines in [
        "Connection: Upgrade\r\nConnection: keep-alive\r\n",
        "Connection: keep-alive\r\nConnection: Upgrade\r\n",
    ] {
        let req = format!("{base}{lines}{key}{ver}\r\n");
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut b = [0u8; 512];
        let n = s.read(&mut b).unwrap_or(0);
        split.push(status(&String::from_utf8_lossy(&b[..n])));
    }
    eprintln!(
        "row 10: duplicate key {}, duplicate version {}, Connection on two lines {split:?}",
        status(&got_key),
        status(&got_ver)
    );
    assert_eq!(
        status(&got_key),
        400,
        "duplicate Sec-WebSocket-Key: {got_key}"
    );
    assert_eq!(
        status(&got_ver),
        400,
        "duplicate Sec-WebSocket-Version: {got_ver}"
    );
    assert_eq!(split, [101, 101], "Connection tokens split over two lines");
}

/// Row 11. Past `--max-rooms`, a new room is refused with 503 and a reason of its own (in the
/// body and as the metric label), not as the connection limit; existing rooms still admit.
#[test]
fn max_rooms_refusal_has_its_own_reason_and_metric() {
    let server = Server::start(&["--max-rooms", "2"]);
    let (_a, head) = Raw::connect(&server, Some("a"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_b, head) = Raw::connect(&server, Some("b"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let refused = server.http(&upgrade_request(Some("c"), b""));
    let (_a2, head) = Raw::connect(&server, Some("a"), b"");
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "a known room still admits: {head}"
    );
    let body = refused
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let labels = server.metric_lines("ringcast_connections_rejected_total{");
    let rooms_label: Vec<_> = labels
        .iter()
        .filter(|(name, n)| *n > 0 && name.contains("room"))
        .collect();
    eprintln!(
        "row 11: third room got {} {body:?}; rejection metrics > 0: {:?}",
        status(&refused),
        labels.iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>()
    );
    assert_eq!(status(&refused), 503, "{refused}");
    assert!(
        body.to_ascii_lowercase().contains("room") && !body.contains("connection limit"),
        "the refusal should name the room limit: {body:?}"
    );
    assert_eq!(
        rooms_label.len(),
        1,
        "one rejection label naming rooms, counted once: {labels:?}"
    );
    assert_eq!(rooms_label[0].1, 1);
}

/// Upgrades offering `protocol` (or none); returns the status and, on 101, the connection.
fn try_join(server: &Server, protocol: Option<&str>) -> (u16, Option<Raw>) {
    let req = upgrade_request(protocol, b"");
    let (raw, head) = Raw::connect_with(server, &req);
    let code = status(&head);
    (code, (code == 101).then_some(raw))
}

/// Row 17, first half. Until the JSON pub/sub mode lands, the `pubsub` token is refused (400)
/// instead of acting as an ordinary shared room; after it lands, a pub/sub client subscribed to
/// nothing must still never receive another client's raw text.
#[test]
fn the_pubsub_token_is_not_a_shared_room() {
    let server = Server::start(&[]);
    let (code, spy) = try_join(&server, Some("pubsub"));
    eprintln!("row 17 (pubsub): offering `pubsub` got {code}");
    if code == 400 {
        return;
    }
    assert_eq!(code, 101, "unexpected status offering pubsub");
    let mut spy = spy.unwrap();
    let (_, talker) = try_join(&server, Some("pubsub"));
    let mut talker = talker.expect("second pubsub client");
    talker.send_frame(OpCode::Text, true, b"password=hunter2");
    // Absence can only be awaited with a timeout: 1 s is ample on loopback.
    spy.stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    while let Some((op, payload)) = spy.read_frame() {
        assert!(
            !String::from_utf8_lossy(&payload).contains("hunter2"),
            "a client subscribed to nothing received another's text (opcode {op})"
        );
    }
}

/// Row 17, second half. An explicit `--rooms` list governs the default room and the `pubsub`
/// token too: neither bypasses it. (A server that refuses to start because `--default-room` is
/// not in `--rooms` also keeps the rule.)
#[test]
fn an_explicit_rooms_list_governs_the_default_room_and_pubsub() {
    match Server::try_start(&["--rooms", "a,b"], &[], None) {
        Err(e) => assert!(
            e.contains("default"),
            "refused to start for another reason: {e}"
        ),
        Ok(server) => {
            let (code, _) = try_join(&server, None);
            eprintln!("row 17 (--rooms a,b): no subprotocol got {code}");
            assert_eq!(code, 400, "the default room `lobby` is not in --rooms a,b");
        }
    }
    let server = Server::start(&["--rooms", "a,b", "--default-room", "a"]);
    let (code, spy) = try_join(&server, Some("pubsub"));
    eprintln!("row 17 (--rooms a,b): offering pubsub got {code}");
    if code == 400 {
        return;
    }
    // The JSON mode landed: the list governs its topics instead.
    assert_eq!(code, 101, "unexpected status offering pubsub");
    let mut spy = spy.unwrap();
    spy.send_frame(
        OpCode::Text,
        true,
        br#"{"op":"subscribe","topic":"c","id":1}"#,
    );
    let (_, answer) = spy.read_frame().expect("an answer to the subscribe");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("forbidden"),
        "`pubsub` bypassed --rooms a,b: {answer}"
    );
}
