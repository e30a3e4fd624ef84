//! permessage-deflate on the wire (docs/compression.md): negotiation, compressed messages in
//! both directions in room mode and JSON pub/sub, the limits on inflating, RSV1 rules.

mod common;

use std::io::Write;

use common::proc::rss_kib;
use common::{Raw, Server, upgrade_request};
use ringcast_protocol::deflate::{Compressor, Inflater};
use ringcast_protocol::frame::{MessageKind, OpCode, encode_header};

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
const ANSWER: &str = "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Upgrades into `room` with extra request header lines `headers`.
fn connect(server: &Server, room: &str, headers: &str) -> (Raw, String) {
    let mut req = upgrade_request(Some(room), b"");
    req.truncate(req.len() - 2);
    req.extend_from_slice(headers.as_bytes());
    req.extend_from_slice(b"\r\n");
    let (raw, head) = Raw::connect_with(server, &req);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (raw, head.to_ascii_lowercase())
}

/// A masked client frame with FIN, RSV1 as given.
fn frame(op: OpCode, rsv1: bool, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut head = [0u8; 10];
    let n = encode_header(&mut head, op, fin, rsv1, payload.len() as u64);
    head[1] |= 0x80;
    let mut out = head[..n].to_vec();
    out.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as it is
    out.extend_from_slice(payload);
    out
}

/// A masked single-frame message, compressed.
fn compressed(op: OpCode, payload: &[u8]) -> Vec<u8> {
    frame(op, true, true, &deflate(15, payload))
}

fn deflate(bits: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Compressor::new(6, bits).compress(payload, &mut out);
    out
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    (Inflater::new())
        .inflate(payload, MessageKind::Text, 1 << 30, &mut out)
        .expect("the server's frame inflates");
    out
}

/// A 1 KB chat-like JSON message.
fn chat(i: usize) -> String {
    let mut s = format!(r#"{{"user":"alice","seq":{i},"text":""#);
    while s.len() < 1000 {
        s.push_str("the quick brown fox jumps over the lazy dog ");
    }
    s.push_str("\"}");
    s
}

#[test]
fn room_members_that_negotiated_get_one_compressed_frame_and_the_others_plain() {
    let server = Server::start(&[]);
    let (mut a, head) = connect(&server, "r", OFFER);
    assert!(head.contains(ANSWER), "{head}");
    let (mut b, _) = connect(&server, "r", OFFER);
    let (mut plain, head) = connect(&server, "r", "");
    assert!(
        !head.contains("extensions"),
        "no offer, no extension: {head}"
    );
    let (mut small, head) = connect(
        &server,
        "r",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
    );
    assert!(head.contains("server_max_window_bits=10"), "{head}");

    let long = chat(1);
    a.send_raw(&compressed(OpCode::Text, long.as_bytes()));
    let (b0, p) = b.read_frame_b0().expect("b gets the message");
    assert_eq!(b0, 0xc1, "FIN + RSV1 + text");
    assert!(p.len() < long.len() / 2, "{} bytes", p.len());
    assert_eq!(inflate(&p), long.as_bytes());
    assert_eq!(
        plain.read_frame_b0(),
        Some((0x81, long.clone().into_bytes()))
    );
    assert_eq!(
        small.read_frame_b0(),
        Some((0x81, long.clone().into_bytes())),
        "a smaller window than the shared form's: plain frames"
    );

    // Below --compression-min-size: plain to everyone.
    a.send_raw(&compressed(OpCode::Text, b"hi there"));
    assert_eq!(b.read_frame_b0(), Some((0x81, b"hi there".to_vec())));
    // An uncompressed message from a negotiated client is fine too.
    a.send_frame(OpCode::Binary, true, &[7; 300]);
    let (b0, p) = b.read_frame_b0().expect("binary");
    assert_eq!(b0, 0xc2);
    let mut out = Vec::new();
    (Inflater::new())
        .inflate(&p, MessageKind::Binary, 1 << 20, &mut out)
        .expect("inflates");
    assert_eq!(out, vec![7; 300]);

    assert_eq!(server.metric("ringcast_compression_messages_total"), 2);
    assert!(server.metric("ringcast_compression_bytes_after_total") < 700);
    assert_eq!(
        server.metric("ringcast_compression_bytes_before_total"),
        1300 + (long.len() as u64 - 1000)
    );
    assert_eq!(server.metric("ringcast_inflate_messages_total"), 2);
}

#[test]
fn a_client_window_smaller_than_ours_is_read() {
    let server = Server::start(&[]);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n";
    let (mut a, head) = connect(&server, "w", offer);
    assert!(head.contains(ANSWER), "{head}");
    assert!(!head.contains("client_max_window_bits"), "{head}");
    let (mut b, _) = connect(&server, "w", "");
    let long = chat(2).repeat(5);
    a.send_raw(&frame(
        OpCode::Text,
        true,
        true,
        &deflate(9, long.as_bytes()),
    ));
    assert_eq!(b.read_frame_b0(), Some((0x81, long.into_bytes())));
}

#[test]
fn offers_we_cannot_honour_open_without_the_extension() {
    let server = Server::start(&[]);
    for offer in [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; foo=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "x-webkit-deflate-frame",
    ] {
        let (mut raw, head) = connect(
            &server,
            "d",
            &format!("Sec-WebSocket-Extensions: {offer}\r\n"),
        );
        assert!(!head.contains("extensions"), "{offer}: {head}");
        // RSV1 is then a protocol error.
        raw.send_raw(&compressed(OpCode::Text, b"hello"));
        assert_eq!(raw.expect_close(), 1002, "{offer}");
    }
    // The second offer is taken when the first is declined.
    let two = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, permessage-deflate\r\n";
    let (_, head) = connect(&server, "d", two);
    assert!(head.contains(ANSWER), "{head}");
}

#[test]
fn compression_off_declines_every_offer() {
    let server = Server::start(&["--compression", "off"]);
    let (mut raw, head) = connect(&server, "d", OFFER);
    assert!(!head.contains("extensions"), "{head}");
    raw.send_raw(&compressed(OpCode::Text, b"hello"));
    assert_eq!(raw.expect_close(), 1002);
}

#[test]
fn rsv1_only_on_the_first_frame_of_a_data_message() {
    let server = Server::start(&[]);
    let (mut raw, _) = connect(&server, "c", OFFER);
    raw.send_raw(&frame(OpCode::Ping, true, true, b""));
    assert_eq!(raw.expect_close(), 1002, "RSV1 on a control frame");
    let (mut raw, _) = connect(&server, "c", OFFER);
    let mut bytes = frame(OpCode::Text, true, false, &deflate(15, b"hello")[..2]);
    bytes.extend(frame(OpCode::Continuation, true, true, b""));
    raw.send_raw(&bytes);
    assert_eq!(raw.expect_close(), 1002, "RSV1 on a continuation");
}

#[test]
fn a_fragmented_compressed_message_is_inflated_whole() {
    let server = Server::start(&[]);
    let (mut a, _) = connect(&server, "f", OFFER);
    let (mut b, _) = connect(&server, "f", "");
    let long = chat(3);
    let c = deflate(15, long.as_bytes());
    let mut bytes = frame(OpCode::Text, true, false, &c[..10]);
    bytes.extend(frame(OpCode::Continuation, false, false, &c[10..20]));
    bytes.extend(frame(OpCode::Continuation, false, true, &c[20..]));
    a.send_raw(&bytes);
    assert_eq!(b.read_frame_b0(), Some((0x81, long.into_bytes())));
}

#[test]
fn invalid_deflate_data_and_invalid_utf8_inside_close_with_1007() {
    let server = Server::start(&[]);
    let (mut raw, _) = connect(&server, "i", OFFER);
    raw.send_raw(&frame(OpCode::Text, true, true, &[0xff, 0xff, 0xff, 0xff]));
    assert_eq!(raw.expect_close(), 1007);
    let (mut raw, _) = connect(&server, "i", OFFER);
    raw.send_raw(&compressed(OpCode::Text, b"ok \xc3\x28 no"));
    assert_eq!(raw.expect_close(), 1007);
    assert_eq!(server.metric("ringcast_inflate_failures_total"), 2);
}

/// Raw deflate, sync-flushed (its empty stored block kept, so the next copy starts on a byte)
/// and not final, of `n` zero bytes: repeating it `k` times is a valid stream of `k * n` zeros
/// (each copy refers only to bytes inside itself).
fn zeros(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    Compressor::new(9, 15).compress(&vec![0u8; n], &mut out);
    out.extend_from_slice(&ringcast_protocol::deflate::TAIL);
    out
}

#[test]
fn a_zip_bomb_is_cut_with_1009_as_soon_as_the_limit_is_crossed() {
    // 4 MiB allowed: the ~1 MB compressed message passes the frame check, the inflated size not.
    let server = Server::start(&["--max-message-bytes", "4194304"]);
    let chunk = zeros(1 << 20);
    let copies = (1 << 20) / chunk.len();
    let bomb = chunk.repeat(copies);
    assert!(
        bomb.len() <= 1 << 20 && copies >= 900,
        "{} copies of {} bytes",
        copies,
        chunk.len()
    );
    let inflated_gib = copies as f64 / 1024.0;
    assert!(
        inflated_gib > 0.85,
        "~1 GB once inflated: {inflated_gib} GiB"
    );
    let before = rss_kib(server.pid());
    let (mut raw, _) = connect(&server, "z", OFFER);
    raw.stream
        .write_all(&frame(OpCode::Binary, true, true, &bomb))
        .expect("send the bomb");
    assert_eq!(raw.expect_close(), 1009);
    let grown = rss_kib(server.pid()).saturating_sub(before);
    // The limit (4 MiB) plus the compressed message (1 MiB) and slack, never the gigabyte.
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    assert_eq!(server.metric("ringcast_inflate_failures_total"), 1);
}

#[test]
fn pubsub_subscribers_that_negotiated_get_compressed_envelopes() {
    let server = Server::start(&[]);
    let (mut sub, head) = connect(&server, "pubsub", OFFER);
    assert!(head.contains(ANSWER), "{head}");
    sub.send_raw(&frame(
        OpCode::Text,
        false,
        true,
        br#"{"op":"subscribe","topic":"t","id":1}"#,
    ));
    let (b0, reply) = sub.read_frame_b0().expect("subscribed");
    assert_eq!(b0, 0x81, "a short reply goes plain");
    assert!(String::from_utf8_lossy(&reply).contains("subscribed"));
    let (mut publisher, _) = connect(&server, "pubsub", OFFER);
    let data = chat(4);
    let request = format!(r#"{{"op":"publish","topic":"t","data":{data}}}"#);
    publisher.send_raw(&compressed(OpCode::Text, request.as_bytes()));
    let (b0, p) = sub.read_frame_b0().expect("the message");
    assert_eq!(b0, 0xc1);
    let envelope: serde_json::Value =
        serde_json::from_slice(&inflate(&p)).expect("a JSON envelope");
    assert_eq!(envelope["op"], "message");
    assert_eq!(envelope["data"]["seq"], 4);
}

#[test]
fn a_message_is_compressed_once_for_every_receiver_on_every_worker() {
    let server = Server::start(&["--workers", "2"]);
    let (mut publisher, _) = connect(&server, "once", "");
    let mut members: Vec<Raw> = (0..20).map(|_| connect(&server, "once", OFFER).0).collect();
    let long = chat(5);
    publisher.send_frame(OpCode::Text, true, long.as_bytes());
    for m in &mut members {
        let (b0, p) = m.read_frame_b0().expect("the message");
        assert_eq!(b0, 0xc1);
        assert_eq!(inflate(&p), long.as_bytes());
    }
    // The batch crossed to the other worker (20 members spread by the kernel over both: all
    // on one worker has odds of 2^-20), and the message was compressed once for all of them.
    assert!(server.metric("ringcast_fanout_remote_batches_total") >= 1);
    assert_eq!(server.metric("ringcast_fanout_deliveries_total"), 20);
    assert_eq!(server.metric("ringcast_compression_messages_total"), 1);
}

/// Sends one request as a plain masked text frame.
fn request(c: &mut Raw, json: &str) {
    c.send_raw(&frame(OpCode::Text, false, true, json.as_bytes()));
}

/// Reads one frame, asserts its compression (`rsv1`), returns the JSON it carries.
fn json_frame(c: &mut Raw, rsv1: bool) -> serde_json::Value {
    let (b0, p) = c.read_frame_b0().expect("a frame");
    assert_eq!(b0, if rsv1 { 0xc1 } else { 0x81 }, "RSV1 {rsv1} expected");
    let text = if rsv1 { inflate(&p) } else { p };
    serde_json::from_slice(&text).expect("a JSON envelope")
}

#[test]
fn presence_events_and_snapshots_are_compressed_when_long_enough() {
    // A long topic makes every envelope about it long and compressible.
    let topic = "presence-topic-".repeat(8);
    let server = Server::start(&["--compression-min-size", "64"]);
    let (mut a, _) = connect(&server, "pubsub", OFFER);
    request(
        &mut a,
        &format!(r#"{{"op":"subscribe","topic":"{topic}","id":1,"presence":true}}"#),
    );
    assert_eq!(json_frame(&mut a, true)["op"], "subscribed", "a long reply");
    let snap = json_frame(&mut a, true);
    assert_eq!(
        (snap["op"].as_str(), snap["count"].as_u64()),
        (Some("presence"), Some(1))
    );
    // A plain subscriber (no extension) joins: the join event is compressed for `a`.
    let (mut b, _) = connect(&server, "pubsub", "");
    request(
        &mut b,
        &format!(r#"{{"op":"subscribe","topic":"{topic}"}}"#),
    );
    let join = json_frame(&mut a, true);
    assert_eq!(
        (join["op"].as_str(), join["topic"].as_str()),
        (Some("join"), Some(&*topic))
    );
    // The answer to a presence request, and an error, compressed too; `b` gets it plain.
    request(
        &mut a,
        &format!(r#"{{"op":"presence","topic":"{topic}","id":"q"}}"#),
    );
    assert_eq!(json_frame(&mut a, true)["count"], 2);
    request(
        &mut b,
        &format!(r#"{{"op":"presence","topic":"{topic}","id":"q"}}"#),
    );
    assert_eq!(json_frame(&mut b, false)["count"], 2);
    drop(b);
    let leave = json_frame(&mut a, true);
    assert_eq!(leave["op"], "leave");
    // A short reply stays plain.
    request(&mut a, r#"{"op":"subscribe","topic":"s","id":2}"#);
    assert_eq!(json_frame(&mut a, false)["op"], "subscribed");
}

#[test]
fn a_history_replay_is_compressed_for_a_subscriber_that_negotiated() {
    // One worker: the second subscriber that resumes shares the first one's compressed frames.
    let server = Server::start(&["--history-size", "10", "--workers", "1"]);
    let (mut publisher, _) = connect(&server, "pubsub", "");
    for i in 0..3 {
        let data = chat(i);
        request(
            &mut publisher,
            &format!(r#"{{"op":"publish","topic":"h","id":{i},"data":{data}}}"#),
        );
        assert_eq!(json_frame(&mut publisher, false)["op"], "published");
    }
    request(
        &mut publisher,
        r#"{"op":"publish","topic":"h","data":"short"}"#,
    );
    let before = server.metric("ringcast_compression_messages_total");
    let (mut sub, _) = connect(&server, "pubsub", OFFER);
    request(
        &mut sub,
        r#"{"op":"subscribe","topic":"h","id":1,"since":{"last":4}}"#,
    );
    assert_eq!(json_frame(&mut sub, false)["op"], "subscribed");
    for i in 0..3 {
        let m = json_frame(&mut sub, true);
        assert_eq!(
            (m["offset"].as_u64(), m["data"]["seq"].as_u64()),
            (Some(i + 1), Some(i))
        );
    }
    assert_eq!(
        json_frame(&mut sub, false)["data"],
        "short",
        "a short one stays plain"
    );
    // A plain subscriber gets the same replay uncompressed.
    let (mut plain, _) = connect(&server, "pubsub", "");
    request(
        &mut plain,
        r#"{"op":"subscribe","topic":"h","since":{"last":1}}"#,
    );
    assert_eq!(json_frame(&mut plain, false)["data"], "short");
    assert_eq!(
        server.metric("ringcast_compression_messages_total") - before,
        3
    );
}
