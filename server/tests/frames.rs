//! Every close code and control-frame rule of docs/limits.md#close-codes, over a raw socket.

mod common;

use common::{Raw, Server};
use ringcast_protocol::frame::OpCode;

fn assert_closed_with(raw: &mut Raw, code: u16) {
    assert_eq!(raw.expect_close(), code);
    raw.expect_eof();
}

#[test]
fn protocol_violations_close_with_1002() {
    let server = Server::start(&[]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked frame", vec![0x81, 0x02, b'h', b'i']),
        ("rsv1 without extension", vec![0xc1, 0x80, 0, 0, 0, 0]),
        ("rsv3", vec![0x92, 0x80, 0, 0, 0, 0]),
        ("unknown opcode", vec![0x83, 0x80, 0, 0, 0, 0]),
        ("unknown control opcode", vec![0x8f, 0x80, 0, 0, 0, 0]),
        ("ping over 125 bytes", {
            let mut f = vec![0x89, 0xfe, 0, 126, 0, 0, 0, 0];
            f.extend(std::iter::repeat_n(0u8, 126));
            f
        }),
        ("fragmented ping", vec![0x09, 0x80, 0, 0, 0, 0]),
        (
            "continuation without a message",
            vec![0x80, 0x80, 0, 0, 0, 0],
        ),
        (
            "text while a fragmented message is open",
            vec![0x01, 0x80, 0, 0, 0, 0, 0x81, 0x80, 0, 0, 0, 0],
        ),
        (
            "64-bit length with top bit",
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
        ),
        ("close with 1 byte", vec![0x88, 0x81, 0, 0, 0, 0, 7]),
        (
            "close with code 1005",
            vec![0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed],
        ),
        (
            "close with code 999",
            vec![0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe7],
        ),
    ];
    for (what, bytes) in cases {
        let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
        raw.send_raw(&bytes);
        assert_eq!(raw.expect_close(), 1002, "{what}");
        raw.expect_eof();
    }
    assert!(server.metric("ringcast_close_sent_total{code=\"1002\"}") >= 13);
}

#[test]
fn invalid_utf8_closes_with_1007_even_mid_message() {
    let server = Server::start(&[]);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    raw.send_frame(OpCode::Text, true, &[b'o', b'k', 0xff]);
    assert_closed_with(&mut raw, 1007);
    // The first fragment is already invalid: the server fails it without waiting for the rest.
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    raw.send_frame(OpCode::Text, false, &[0xf4, 0x90, 0x80]);
    assert_closed_with(&mut raw, 1007);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    raw.send_frame(OpCode::Close, true, &[0x03, 0xe8, 0xc3, 0x28]);
    assert_closed_with(&mut raw, 1007);
}

#[test]
fn oversized_message_closes_with_1009_from_the_header() {
    let server = Server::start(&["--max-message-bytes", "1000"]);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    // Only the header of a 1 MiB frame: the server must not wait for the payload.
    raw.send_raw(&[0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]);
    assert_closed_with(&mut raw, 1009);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    raw.send_frame(OpCode::Binary, false, &[0; 600]);
    raw.send_frame(OpCode::Continuation, true, &[0; 600]);
    assert_closed_with(&mut raw, 1009);
}

#[test]
fn ping_is_answered_even_inside_a_fragmented_message() {
    let server = Server::start(&[]);
    let (mut a, _) = Raw::connect(&server, Some("frag"), b"");
    let (mut b, _) = Raw::connect(&server, Some("frag"), b"");
    a.send_frame(OpCode::Text, false, b"hel");
    a.send_frame(OpCode::Ping, true, b"are you there");
    assert_eq!(a.read_frame(), Some((0xA, b"are you there".to_vec())));
    a.send_frame(OpCode::Continuation, false, b"lo ");
    a.send_frame(OpCode::Continuation, true, "wörld".as_bytes());
    assert_eq!(
        b.read_frame(),
        Some((0x1, "hello wörld".as_bytes().to_vec()))
    );
}

#[test]
fn close_is_echoed_then_the_tcp_connection_ends() {
    let server = Server::start(&[]);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    raw.send_frame(OpCode::Close, true, &[0x0f, 0xa0, b'b', b'y', b'e']);
    assert_closed_with(&mut raw, 4000);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    raw.send_frame(OpCode::Close, true, b"");
    assert_eq!(raw.read_frame(), Some((0x8, vec![])));
    raw.expect_eof();
}

#[test]
fn frames_pipelined_behind_the_handshake_are_processed() {
    let server = Server::start(&[]);
    let mut listener = server.join(Some("pipe"));
    let mut frames = Vec::new();
    ringcast_protocol::frame::encode_masked_frame(
        &mut frames,
        OpCode::Text,
        true,
        b"early bird",
        [9, 8, 7, 6],
    );
    ringcast_protocol::frame::encode_masked_frame(
        &mut frames,
        OpCode::Ping,
        true,
        b"p",
        [1, 1, 1, 1],
    );
    let (mut raw, head) = Raw::connect(&server, Some("pipe"), &frames);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(common::text(&mut listener), "early bird");
    assert_eq!(raw.read_frame(), Some((0xA, b"p".to_vec())));
}

#[test]
fn messages_before_a_violation_are_delivered_before_the_close() {
    // Autobahn 3.2 / 4.1.3 / 5.15: a valid message and a bad frame in one packet; the echo of
    // the valid message must precede the Close.
    let server = Server::start(&["--echo"]);
    let (mut raw, _) = Raw::connect(&server, Some("x"), b"");
    let mut both = Vec::new();
    ringcast_protocol::frame::encode_masked_frame(
        &mut both,
        OpCode::Text,
        true,
        b"Hello",
        [1, 2, 3, 4],
    );
    both.extend_from_slice(&[0xc1, 0x80, 0, 0, 0, 0]);
    raw.send_raw(&both);
    assert_eq!(raw.read_frame(), Some((0x1, b"Hello".to_vec())));
    assert_eq!(raw.expect_close(), 1002);
    let (mut raw, _) = Raw::connect(&server, Some("y"), b"");
    let mut both = Vec::new();
    ringcast_protocol::frame::encode_masked_frame(
        &mut both,
        OpCode::Binary,
        true,
        b"bye",
        [1, 2, 3, 4],
    );
    ringcast_protocol::frame::encode_masked_frame(
        &mut both,
        OpCode::Close,
        true,
        &[3, 232],
        [1, 2, 3, 4],
    );
    raw.send_raw(&both);
    assert_eq!(raw.read_frame(), Some((0x2, b"bye".to_vec())));
    assert_eq!(raw.expect_close(), 1000);
}
