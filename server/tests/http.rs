//! Every HTTP answer of docs/http.md, over raw TCP.

mod common;

use common::{Server, upgrade_request};

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {resp:?}"))
}

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[test]
fn plain_routes_and_every_error_status() {
    let server = Server::start(&["--rooms", "a,b", "--max-header-bytes", "1024"]);
    let ok = server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&ok), 200);
    assert!(ok.ends_with("\r\n\r\nok"), "{ok}");
    let page = server.http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&page), 200);
    assert!(
        page.contains("id=\"room\"") && page.contains("new WebSocket"),
        "demo page"
    );
    let metrics = server.http(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&metrics), 200);
    assert!(metrics.contains("ringcast_connections_open"));

    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(), 405, "method not allowed"),
        (b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 426, "Upgrade: websocket"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{KEY}Sec-WebSocket-Version: 8\r\n\r\n").into_bytes(), 426, "Sec-WebSocket-Version: 13"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(), 400, "Sec-WebSocket-Key"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dG9vIHNob3J0\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(), 400, "16 bytes"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n{KEY}Sec-WebSocket-Version: 13\r\n\r\n").into_bytes(), 400, "Upgrade: websocket"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n{KEY}Sec-WebSocket-Version: 13\r\n\r\n").into_bytes(), 400, "Connection: Upgrade"),
        (b"GET / HTTP/1.1\r\nBad header line\r\n\r\n".to_vec(), 400, "malformed"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), 400, "malformed"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(2000)).into_bytes(), 431, "too large"),
        (upgrade_request(Some("c, d"), b""), 400, "no acceptable subprotocol"),
    ];
    for (req, want, text) in cases {
        let resp = server.http(&req);
        assert_eq!(status(&resp), want, "{resp}");
        assert!(resp.contains("Connection: close\r\n"), "{resp}");
        assert!(resp.contains(text), "{resp} should mention {text}");
    }
    assert!(server.metric("ringcast_connections_rejected_total{reason=\"method\"}") >= 1);
}

#[test]
fn origin_check_and_connection_limit() {
    let server = Server::start(&["--allowed-origins", "https://good.example"]);
    let bad = upgrade_request(Some("r"), b"");
    let bad = String::from_utf8(bad)
        .unwrap()
        .replace("\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n");
    let resp = server.http(bad.as_bytes());
    assert_eq!(status(&resp), 403, "{resp}");
    let good = String::from_utf8(upgrade_request(Some("r"), b""))
        .unwrap()
        .replace("\r\n\r\n", "\r\nOrigin: https://good.example\r\n\r\n");
    let (_a, head) = common::Raw::connect_with(&server, good.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A fresh server, so no connection of the checks above is still being closed.
    let server = Server::start(&["--max-connections", "2"]);
    let (_a, head) = common::Raw::connect_with(&server, good.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_b, head) = common::Raw::connect_with(&server, good.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let resp = server.http(good.as_bytes());
    assert_eq!(status(&resp), 503, "{resp}");
    assert!(resp.ends_with("server at connection limit\n"), "{resp}");
}

#[test]
fn slow_head_is_dropped_after_the_handshake_timeout() {
    use std::io::{Read, Write};
    let server = Server::start(&["--handshake-timeout", "0.3"]);
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server should close without answering");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn per_ip_limit_refuses_with_503() {
    let server = Server::start(&["--max-connections-per-ip", "2"]);
    let (_a, head) = common::Raw::connect(&server, Some("r"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_b, head) = common::Raw::connect(&server, Some("r"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let resp = server.http(&upgrade_request(Some("r"), b""));
    assert_eq!(status(&resp), 503, "{resp}");
    assert!(
        resp.ends_with("too many connections from this address\n"),
        "{resp}"
    );
}

#[test]
fn room_limit_refuses_with_its_own_reason() {
    let server = Server::start(&["--max-rooms", "1"]);
    let (_a, head) = common::Raw::connect(&server, Some("first"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The same room still admits members; a second room does not.
    let (_b, head) = common::Raw::connect(&server, Some("first"), b"");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let resp = server.http(&upgrade_request(Some("second"), b""));
    assert_eq!(status(&resp), 503, "{resp}");
    assert!(resp.contains("Connection: close\r\n"), "{resp}");
    assert!(resp.ends_with("too many rooms\n"), "{resp}");
    assert_eq!(
        server.metric("ringcast_connections_rejected_total{reason=\"too_many_rooms\"}"),
        1
    );
    assert_eq!(
        server.metric("ringcast_connections_rejected_total{reason=\"connection_limit\"}"),
        0
    );
}

#[test]
fn repeated_key_is_refused_and_split_connection_lines_are_merged() {
    let server = Server::start(&[]);
    // RFC 6455 §11.3.1: Sec-WebSocket-Key must not repeat (it used to be "last one wins").
    let twice = String::from_utf8(upgrade_request(None, b""))
        .unwrap()
        .replace("\r\n\r\n", &format!("\r\n{KEY}\r\n"));
    let resp = server.http(twice.as_bytes());
    assert_eq!(status(&resp), 400, "{resp}");
    assert!(resp.contains("repeated Sec-WebSocket-Key"), "{resp}");
    let version = String::from_utf8(upgrade_request(None, b""))
        .unwrap()
        .replace("\r\n\r\n", "\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let resp = server.http(version.as_bytes());
    assert_eq!(status(&resp), 400, "{resp}");
    assert!(resp.contains("repeated Sec-WebSocket-Version"), "{resp}");
    // RFC 7230 §3.2.2: `Connection: Upgrade` and `Connection: keep-alive` on two lines are one
    // list (it used to be refused with 400).
    let split = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n{KEY}Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let (_ws, head) = common::Raw::connect_with(&server, split.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}
