//! docs/api.md#limits and #errors, what issue 23 asks beyond the single calls: a client that
//! opens many API connections is bounded like any other, each refused call is one log line
//! (never the key, never the body), and a banned user's refusal is counted.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use common::Server;

const KEY: &str = "limits-api-key";

/// Sends one request on `s` and reads until the answer's head and `Content-Length` body are in;
/// returns the status line and the body.
fn exchange(s: &mut TcpStream, request: &str) -> (String, String) {
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = (head.lines())
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.lines().next().unwrap_or("").to_string();
                return (status, body[..len].to_string());
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let text = String::from_utf8_lossy(&buf).into_owned();
                let status = text.lines().next().unwrap_or("").to_string();
                return (status, text);
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    s
}

fn info_request() -> String {
    format!(
        "POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: 2\r\n\r\n{{}}"
    )
}

#[test]
fn many_api_connections_from_one_client_are_bounded_like_any_other() {
    let s = Server::start(&["--api-key", KEY, "--max-connections-per-ip", "2"]);
    let mut first = connect(&s.addr);
    let mut second = connect(&s.addr);
    for c in [&mut first, &mut second] {
        let (status, _) = exchange(c, &info_request());
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    // The third from the same address is refused before its request is served.
    let mut third = connect(&s.addr);
    let (status, _) = exchange(&mut third, &info_request());
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    // The two kept alive still serve, and once one leaves a new one is served.
    let (status, _) = exchange(&mut first, &info_request());
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    drop(second);
    let mut again = loop {
        let mut c = connect(&s.addr);
        let (status, _) = exchange(&mut c, &info_request());
        if status.starts_with("HTTP/1.1 200") {
            break c;
        }
        // The server may not have seen the FIN of `second` yet: refused, try once more.
        assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    };
    let (status, _) = exchange(&mut again, &info_request());
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[test]
fn each_refused_call_is_one_log_line_without_key_or_body() {
    let s = Server::start_with_env(&["--api-key", KEY], &[("RINGCAST_LOG", "info")]);
    let secret_body = r#"{"channel":"c","data":"body-must-not-be-logged"}"#;
    let mut c = connect(&s.addr);
    let wrong = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: not-{KEY}\r\nContent-Length: {}\r\n\r\n{secret_body}",
        secret_body.len()
    );
    assert!(exchange(&mut c, &wrong).0.starts_with("HTTP/1.1 401"));
    let bad = format!(
        "POST /api/history HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: 9\r\n\r\n[\"body!\"]"
    );
    assert!(exchange(&mut c, &bad).0.starts_with("HTTP/1.1 400"));
    let ok = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: {}\r\n\r\n{secret_body}",
        secret_body.len()
    );
    assert!(exchange(&mut c, &ok).0.starts_with("HTTP/1.1 200"));
    // The log is written by the server's own thread: wait for the two lines, not for a time.
    let deadline = std::time::Instant::now() + common::READ_TIMEOUT;
    let lines = loop {
        let log = s.stderr();
        let lines: Vec<String> = (log.lines())
            .filter(|l| l.contains("server API call refused"))
            .map(String::from)
            .collect();
        if lines.len() >= 2 || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::yield_now();
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("401") && lines[0].contains("publish"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("400") && lines[1].contains("history"),
        "{}",
        lines[1]
    );
    let log = s.stderr();
    assert!(!log.contains(KEY), "the key is never logged");
    assert!(
        !log.contains("body-must-not-be-logged") && !log.contains("body!"),
        "{log}"
    );
}

#[test]
fn a_banned_user_is_refused_and_counted() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    const SECRET: &str = "limits-secret";
    let s = Server::start(&["--api-key", KEY, "--auth-secret", SECRET]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"mallory","exp":{}}}"#, now + 300));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let token = format!(
        "{h}.{p}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    let body = format!(r#"{{"user":"mallory","ban_until":{}}}"#, now + 60);
    let mut c = connect(&s.addr);
    let call = format!(
        "POST /api/disconnect HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(exchange(&mut c, &call).1, r#"{"result":{}}"#);
    let metric = r#"ringcast_connections_rejected_total{reason="unauthorized"}"#;
    let before = s.metric(metric);
    let upgrade = format!(
        "GET /?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let out = s.http(upgrade.as_bytes());
    assert!(
        out.starts_with("HTTP/1.1 401") && out.contains("banned"),
        "{out}"
    );
    assert_eq!(s.metric(metric), before + 1);
}
