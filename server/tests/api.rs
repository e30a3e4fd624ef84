//! docs/api.md against the real binary: raw HTTP for every error status, keep-alive and
//! pipelining; tungstenite room-mode members and pub/sub subscribers receiving what the API
//! publishes; and the `cent` Python package (a client we did not write) driving every method
//! it shares with ringcast.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::json::{client, recv, send, subscribe};
use common::{READ_TIMEOUT, Server};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const KEY: &str = "api-key-for-tests";

fn api_server(extra: &[&str]) -> Server {
    let mut args = vec!["--api-key", KEY, "--workers", "2"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// One HTTP/1.1 connection that reads answers one at a time.
struct Http {
    s: TcpStream,
    buf: Vec<u8>,
}

/// One answer: status, headers (lower-case names), body (chunks joined).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Http {
    fn connect(s: &Server) -> Http {
        Http::at(&s.addr)
    }

    fn at(addr: &str) -> Http {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Http { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// A POST to `/api/<method>` with the key in `X-API-Key`.
    fn post(&mut self, method: &str, body: &str) {
        let req = post(method, &format!("X-API-Key: {KEY}\r\n"), body);
        self.send(&req);
    }

    fn call(&mut self, method: &str, body: &str) -> Answer {
        self.post(method, body);
        self.read()
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.s.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(
                self.fill(),
                "connection ended inside a line: {:?}",
                self.buf
            );
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "connection ended inside a body");
        }
        self.buf.drain(..n).collect()
    }

    fn read(&mut self) -> Answer {
        let status_line = self.line();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("header");
            headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut a = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if a.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).expect("chunk size");
                if size == 0 {
                    assert_eq!(self.line(), "");
                    break;
                }
                let chunk = self.bytes(size);
                a.body.extend_from_slice(&chunk);
                assert_eq!(self.line(), "");
            }
        } else {
            let n = a.header("content-length").map_or(0, |v| v.parse().unwrap());
            a.body = self.bytes(n);
        }
        a
    }

    /// The server closed the connection (after what it sent).
    fn closed(&mut self) -> bool {
        while self.fill() {}
        true
    }
}

fn post(method: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /api/{method} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn error_code(a: &Answer) -> i64 {
    a.json()["error"]["code"].as_i64().unwrap_or(-1)
}

#[test]
fn without_a_key_api_paths_are_answered_as_before() {
    let s = Server::start(&[]);
    let out = s.http(&post("publish", "", r#"{"channel":"t","data":1}"#));
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    assert!(!out.contains("\"error\""), "{out}");
}

#[test]
fn the_key_may_come_from_a_file_and_may_not_be_empty() {
    let dir = std::env::temp_dir().join(format!("ringcast-api-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    let s = Server::start(&["--api-key-file", file.to_str().unwrap()]);
    let mut c = Http::connect(&s);
    assert_eq!(
        c.call("info", "{}").status,
        200,
        "the line break is dropped"
    );
    std::fs::write(&file, "\n").unwrap();
    let empty = Server::try_start(&["--api-key-file", file.to_str().unwrap()], &[], None);
    assert!(empty.is_err_and(|e| e.contains("API key must not be empty")));
    let both = Server::try_start(&["--api-key", "a", "--api-key-file", "f"], &[], None);
    assert!(both.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_error_gets_its_status_and_a_json_error_on_one_kept_alive_connection() {
    let s = api_server(&[]);
    let mut c = Http::connect(&s);
    let body = r#"{"channel":"t","data":{"x":1}}"#;
    // No key, a wrong key, a key of the right length but wrong: 401, code 101.
    for headers in [
        String::new(),
        "X-API-Key: nope\r\n".to_string(),
        format!("X-API-Key: {}\r\n", "x".repeat(KEY.len())),
        format!("Authorization: Bearer {KEY}\r\n"),
    ] {
        c.send(&post("publish", &headers, body));
        let a = c.read();
        assert_eq!((a.status, error_code(&a)), (401, 101), "{headers:?}");
    }
    // The other header form is accepted.
    c.send(&post(
        "publish",
        &format!("Authorization: apikey {KEY}\r\n"),
        body,
    ));
    let a = c.read();
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), json!({"result":{}}));
    // Not a POST: 405 with Allow.
    c.send(format!("GET /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n").as_bytes());
    let a = c.read();
    assert_eq!((a.status, a.header("allow")), (405, Some("POST")));
    // Unknown method: 404, code 104.
    let a = c.call("nope", "{}");
    assert_eq!((a.status, error_code(&a)), (404, 104));
    // Bad JSON, a non-object, missing or mistyped fields: 400, code 107.
    for (method, body) in [
        ("publish", r#"{"channel":"t","data":"#),
        ("publish", "[1,2]"),
        ("publish", r#"{"data":1}"#),
        ("publish", r#"{"channel":"t"}"#),
        ("publish", r#"{"channel":"","data":1}"#),
        (
            "publish",
            r#"{"channel":"t","data":1,"skip_history":"yes"}"#,
        ),
        ("broadcast", r#"{"channels":[],"data":1}"#),
        ("history", r#"{"channel":"t","limit":"x"}"#),
        ("disconnect", r#"{"disconnect":{"code":1}}"#),
        ("batch", r#"{"commands":{}}"#),
    ] {
        let a = c.call(method, body);
        assert_eq!((a.status, error_code(&a)), (400, 107), "{method} {body}");
    }
    // History is off: the call ran, its answer is an error (200, code 108), as Centrifugo's.
    let a = c.call("history", r#"{"channel":"t","limit":1}"#);
    assert_eq!((a.status, error_code(&a)), (200, 108));
    // Still the same connection: a good call works after all of that.
    let a = c.call("info", "{}");
    assert_eq!(a.status, 200);
    assert!(a.json()["result"]["nodes"][0]["uid"].is_string());
    // A body over --api-max-body: 413 before any of it is read, then the connection closes.
    c.send(
        format!(
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: {}\r\n\r\n",
            (1 << 20) + 1
        )
        .as_bytes(),
    );
    let a = c.read();
    assert_eq!((a.status, error_code(&a)), (413, 106));
    assert_eq!(a.header("connection"), Some("close"));
    assert!(c.closed());
    // The refusals are logged without the key.
    assert!(!s.stderr().contains(KEY));
    // And counted by method and result.
    let calls = |method: &str, result: &str| {
        s.metric(&format!(
            "ringcast_api_requests_total{{method=\"{method}\",result=\"{result}\"}}"
        ))
    };
    assert_eq!(calls("publish", "unauthorized"), 4);
    assert_eq!(calls("publish", "ok"), 1);
    assert_eq!(calls("publish", "invalid"), 7);
    assert_eq!(calls("other", "invalid"), 1);
    assert_eq!(calls("history", "error"), 1);
    assert_eq!(calls("info", "ok"), 1);
    assert_eq!(
        s.metric("ringcast_api_request_duration_seconds_count{method=\"publish\"}"),
        12
    );
}

#[test]
fn a_small_max_body_and_a_chunked_body_are_refused() {
    let s = api_server(&["--api-max-body", "64"]);
    let out = s.http(&post(
        "publish",
        &format!("X-API-Key: {KEY}\r\n"),
        &"x".repeat(65),
    ));
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    let out = s.http(
        format!(
            "POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("Content-Length"), "{out}");
}

#[test]
fn pipelined_requests_are_answered_in_order_with_increasing_offsets() {
    let s = api_server(&["--history-size", "1000"]);
    let mut c = Http::connect(&s);
    // 60 requests in one write: publishes with an `info` and a bad one among them.
    let mut all = Vec::new();
    for i in 0..60 {
        let req = match i {
            20 => post("info", &format!("X-API-Key: {KEY}\r\n"), "{}"),
            40 => post("publish", &format!("X-API-Key: {KEY}\r\n"), "{"),
            _ => post(
                "publish",
                &format!("X-API-Key: {KEY}\r\n"),
                &format!(r#"{{"channel":"p","data":{i}}}"#),
            ),
        };
        all.extend_from_slice(&req);
    }
    c.send(&all);
    let mut last = 0;
    let mut epoch = None;
    for i in 0..60 {
        let a = c.read();
        match i {
            20 => assert!(a.json()["result"]["nodes"].is_array()),
            40 => assert_eq!(a.status, 400),
            _ => {
                let r = &a.json()["result"];
                let offset = r["offset"].as_u64().expect("offset");
                assert_eq!(offset, last + 1, "answer {i}: {r}");
                last = offset;
                assert!(epoch.get_or_insert(r["epoch"].clone()) == &r["epoch"]);
            }
        }
    }
    assert_eq!(last, 58);
    // The history holds them in that order.
    let h = c.call("history", r#"{"channel":"p","limit":-1}"#).json();
    let data: Vec<i64> = (h["result"]["publications"].as_array().unwrap().iter())
        .map(|p| p["data"].as_i64().unwrap())
        .collect();
    let want: Vec<i64> = (0..60).filter(|i| *i != 20 && *i != 40).collect();
    assert_eq!(data, want);
}

#[test]
fn reads_that_end_inside_a_request_and_carry_whole_ones_after_it_are_answered_in_order() {
    // The server parses each read where it lies and keeps only an unfinished request's tail:
    // a read that completes that tail and carries whole requests (and the start of another,
    // cut inside its head or inside its body) must still answer every one, in order.
    let s = api_server(&["--history-size", "1000"]);
    let mut c = Http::connect(&s);
    let reqs: Vec<Vec<u8>> = (0..9)
        .map(|i| {
            post(
                "publish",
                &format!("X-API-Key: {KEY}\r\n"),
                &format!(r#"{{"channel":"q","data":{i}}}"#),
            )
        })
        .collect();
    let all = reqs.concat();
    let len = reqs[0].len();
    // Cuts: inside request 2's body, inside request 5's head (on no line end), inside
    // request 7's request line, then the rest. Each read's answers are awaited before the
    // next is sent, so every cut is a read of its own.
    let cuts = [2 * len + len - 3, 5 * len + 9, 7 * len + 4, all.len()];
    let mut from = 0;
    let mut answered = 0;
    for cut in cuts {
        c.send(&all[from..cut]);
        while answered < cut / len {
            let r = c.read().json();
            answered += 1;
            assert_eq!(r["result"]["offset"].as_u64(), Some(answered as u64), "{r}");
        }
        from = cut;
    }
    assert_eq!(answered, 9);
    let h = c.call("history", r#"{"channel":"q","limit":-1}"#).json();
    let data: Vec<i64> = (h["result"]["publications"].as_array().unwrap().iter())
        .map(|p| p["data"].as_i64().unwrap())
        .collect();
    assert_eq!(data, (0..9).collect::<Vec<i64>>());
}

#[test]
fn a_request_in_many_pieces_and_expect_continue_are_served() {
    let s = api_server(&[]);
    let mut c = Http::connect(&s);
    let req = post("info", &format!("X-API-Key: {KEY}\r\n"), "{ }");
    for b in &req {
        c.send(&[*b]);
    }
    assert_eq!(c.read().status, 200);
    let body = r#"{"channel":"t","data":"x"}"#;
    c.send(
        format!(
            "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read().status, 100);
    c.send(body.as_bytes());
    assert_eq!(c.read().json(), json!({"result":{}}));
    // Connection: close is honoured.
    c.send(&post(
        "info",
        &format!("X-API-Key: {KEY}\r\nConnection: close\r\n"),
        "{}",
    ));
    let a = c.read();
    assert_eq!((a.status, a.header("connection")), (200, Some("close")));
    assert!(c.closed());
    // Every answer has a Content-Length (HTTP/1.0 clients read no chunks), publishes' too, and
    // an HTTP/1.0 client that asks for keep-alive keeps its connection.
    let body = r#"{"channel":"t","data":2}"#;
    let mut old = Http::connect(&s);
    for _ in 0..2 {
        old.send(
            format!(
                "POST /api/publish HTTP/1.0\r\nX-API-Key: {KEY}\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let a = old.read();
        assert_eq!((a.status, a.header("content-length")), (200, Some("13")));
        assert_eq!(
            (a.header("transfer-encoding"), a.header("connection")),
            (None, None)
        );
        assert_eq!(a.json(), json!({"result":{}}));
    }
}

#[test]
fn a_trickled_request_is_cut_at_the_handshake_deadline() {
    let s = api_server(&["--handshake-timeout", "1"]);
    let mut c = Http::connect(&s);
    c.send(
        format!("POST /api/info HTTP/1.1\r\nX-API-Key: {KEY}\r\nContent-Length: 100\r\n\r\n{{")
            .as_bytes(),
    );
    let start = Instant::now();
    // One byte every 200 ms keeps the connection busy but never completes the body.
    let mut cut = false;
    while start.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(200));
        if c.s.write_all(b" ").is_err() {
            cut = true;
            break;
        }
        c.s.set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let mut b = [0u8; 16];
        if matches!(c.s.read(&mut b), Ok(0)) {
            cut = true;
            break;
        }
    }
    assert!(cut, "still open after {:?}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_api_publish_reaches_room_members_as_text_and_subscribers_as_message_with_its_offset() {
    let s = api_server(&["--history-size", "10"]);
    let mut members: Vec<_> = (0..2).map(|_| s.join(Some("news"))).collect();
    let mut subs: Vec<_> = (0..3).map(|_| client(&s)).collect();
    for ws in &mut subs {
        subscribe(ws, "news", "");
    }
    let mut c = Http::connect(&s);
    let a = c.call(
        "publish",
        r#"{"channel":"news","data":{"text":"hello","n":[1,2]}}"#,
    );
    let r = a.json()["result"].clone();
    assert_eq!(r["offset"], 1, "{r}");
    for m in &mut members {
        let got = common::text(m);
        let v: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v, json!({"text":"hello","n":[1,2]}));
    }
    for ws in &mut subs {
        let v = recv(ws);
        assert_eq!(v["op"], "message");
        assert_eq!(v["topic"], "news");
        assert_eq!(v["data"], json!({"text":"hello","n":[1,2]}));
        assert_eq!(v["offset"], 1);
    }
    // skip_history: delivered without an offset, not in history, and the result says none.
    let a = c.call(
        "publish",
        r#"{"channel":"news","data":"quiet","skip_history":true}"#,
    );
    assert_eq!(a.json(), json!({"result":{}}));
    for ws in &mut subs {
        let v = recv(ws);
        assert_eq!((v["data"].as_str(), v.get("offset")), (Some("quiet"), None));
    }
    let h = c.call("history", r#"{"channel":"news","limit":10}"#).json();
    assert_eq!(
        h["result"]["publications"].as_array().map(Vec::len),
        Some(1)
    );
    // A client's publish into the same topic continues the same offsets.
    send(
        &mut subs[0],
        r#"{"op":"publish","topic":"news","id":7,"data":2}"#,
    );
    let mut offsets = Vec::new();
    for ws in &mut subs {
        loop {
            let v = recv(ws);
            if v["op"] == "message" {
                offsets.push(v["offset"].as_u64());
                break;
            }
        }
    }
    assert_eq!(offsets, vec![Some(2); 3]);
    // broadcast: one result per channel, each channel's own offsets.
    let b = c.call(
        "broadcast",
        r#"{"channels":["news","other","news"],"data":{"b":true}}"#,
    );
    let r = b.json();
    let offsets: Vec<_> = (r["result"]["responses"].as_array().unwrap().iter())
        .map(|x| x["result"]["offset"].as_u64())
        .collect();
    assert_eq!(offsets, vec![Some(3), Some(1), Some(4)]);
}

#[test]
fn a_repeated_idempotency_key_gets_the_first_result_and_is_not_published_again() {
    let s = api_server(&["--history-size", "10"]);
    let mut sub = client(&s);
    subscribe(&mut sub, "k", "");
    let mut c = Http::connect(&s);
    let body = r#"{"channel":"k","data":"once","idempotency_key":"req-1"}"#;
    let first = c.call("publish", body).json();
    assert_eq!(first["result"]["offset"], 1, "{first}");
    // Two repeats in one write: both are answered with the first result.
    let mut two = post("publish", &format!("X-API-Key: {KEY}\r\n"), body);
    two.extend_from_slice(&two.clone());
    c.send(&two);
    for _ in 0..2 {
        assert_eq!(c.read().json(), first);
    }
    // The key is per channel; broadcast honours it per channel.
    let b = c.call(
        "broadcast",
        r#"{"channels":["k","k2"],"data":"b","idempotency_key":"req-1"}"#,
    );
    let offsets: Vec<_> = (b.json()["result"]["responses"].as_array().unwrap().iter())
        .map(|r| r["result"]["offset"].clone())
        .collect();
    assert_eq!(offsets, vec![json!(1), json!(1)]);
    // A new key is a new publish. Sent twice in one write, the repeat usually lands in the
    // same event-loop turn, before the first has its offset: it is told to retry (111); in a
    // later turn it gets the first result. Never a second publish.
    let mut pair = post(
        "publish",
        &format!("X-API-Key: {KEY}\r\n"),
        r#"{"channel":"k","data":"twice","idempotency_key":"req-2"}"#,
    );
    pair.extend_from_slice(&pair.clone());
    c.send(&pair);
    let first = c.read().json();
    assert_eq!(first["result"]["offset"], 2);
    let repeat = c.read();
    assert!(
        error_code(&repeat) == 111 || repeat.json() == first,
        "{repeat:?}"
    );
    // The subscriber got each publish once.
    assert_eq!(recv(&mut sub)["data"], "once");
    assert_eq!(recv(&mut sub)["data"], "twice");
    let h = c.call("history", r#"{"channel":"k","limit":-1}"#).json();
    assert_eq!(
        h["result"]["publications"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn presence_history_channels_and_info_answer_what_the_clients_did() {
    let s = api_server(&["--history-size", "5"]);
    let mut subs: Vec<_> = (0..3).map(|_| client(&s)).collect();
    for ws in &mut subs {
        subscribe(ws, "room-1", "");
    }
    let _member = s.join(Some("room-2"));
    let mut c = Http::connect(&s);
    let p = c.call("presence", r#"{"channel":"room-1"}"#).json();
    let presence = p["result"]["presence"].as_object().expect("presence");
    assert_eq!(presence.len(), 3, "{p}");
    for (id, info) in presence {
        assert_eq!(info["client"].as_str(), Some(id.as_str()));
    }
    let st = c.call("presence_stats", r#"{"channel":"room-1"}"#).json();
    assert_eq!(st["result"], json!({"num_clients":3,"num_users":1}));
    let ch = c.call("channels", r#"{"pattern":"room-*"}"#).json();
    assert_eq!(
        ch["result"]["channels"],
        json!({"room-1":{"num_clients":3},"room-2":{"num_clients":1}})
    );
    let ch = c.call("channels", r#"{"pattern":"room-2"}"#).json();
    assert_eq!(
        ch["result"]["channels"].as_object().map(|o| o.len()),
        Some(1)
    );
    let info = c.call("info", "{}").json();
    let node = &info["result"]["nodes"][0];
    assert_eq!(node["num_channels"], 2);
    assert_eq!(node["num_subs"], 4);
    assert!(node["num_clients"].as_u64().unwrap() >= 5);
    // History: 7 publishes, 5 kept; limit, since and reverse.
    for i in 1..=7 {
        c.call("publish", &format!(r#"{{"channel":"h","data":{i}}}"#));
    }
    let all = c.call("history", r#"{"channel":"h","limit":-1}"#).json();
    let r = &all["result"];
    let data = |v: &Value| -> Vec<i64> {
        (v["result"]["publications"].as_array().unwrap().iter())
            .map(|p| p["data"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(data(&all), vec![3, 4, 5, 6, 7]);
    assert_eq!(r["offset"], 7);
    let epoch = r["epoch"].as_str().unwrap().to_string();
    let pos_only = c.call("history", r#"{"channel":"h"}"#).json();
    assert_eq!(data(&pos_only), Vec::<i64>::new());
    assert_eq!(pos_only["result"]["offset"], 7);
    let since = format!(r#"{{"channel":"h","limit":2,"since":{{"offset":4,"epoch":"{epoch}"}}}}"#);
    assert_eq!(data(&c.call("history", &since).json()), vec![5, 6]);
    let rev = r#"{"channel":"h","limit":2,"reverse":true}"#;
    assert_eq!(data(&c.call("history", rev).json()), vec![7, 6]);
    let bad = r#"{"channel":"h","limit":2,"since":{"offset":4,"epoch":"other"}}"#;
    assert_eq!(error_code(&c.call("history", bad)), 112);
    // history_remove: nothing held afterwards, and a new epoch.
    assert_eq!(
        c.call("history_remove", r#"{"channel":"h"}"#).json(),
        json!({"result":{}})
    );
    let after = c.call("history", r#"{"channel":"h","limit":-1}"#).json();
    assert_eq!(data(&after), Vec::<i64>::new());
    assert_ne!(after["result"]["epoch"].as_str(), Some(epoch.as_str()));
}

#[test]
fn history_and_batch_answers_are_bounded_by_max_backpressure() {
    let s = api_server(&["--history-size", "50", "--max-backpressure", "8192"]);
    let mut c = Http::connect(&s);
    let big = "x".repeat(1000);
    for _ in 0..20 {
        c.call("publish", &format!(r#"{{"channel":"big","data":"{big}"}}"#));
    }
    let h = c.call("history", r#"{"channel":"big","limit":-1}"#).json();
    let n = h["result"]["publications"].as_array().unwrap().len();
    assert!((5..=8).contains(&n), "{n} publications");
    assert_eq!(h["result"]["truncated"], true);
    assert_eq!(h["result"]["publications"][0]["offset"], 1, "oldest first");
    let r = c
        .call("history", r#"{"channel":"big","limit":-1,"reverse":true}"#)
        .json();
    assert_eq!(r["result"]["publications"][0]["offset"], 20, "newest first");
    // A batch stops running commands once its answer passed the bound.
    let one = r#"{"history":{"channel":"big","limit":3}}"#;
    let batch = format!(r#"{{"commands":[{}]}}"#, [one; 6].join(","));
    let v = c.call("batch", &batch).json();
    let replies = v["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 6);
    assert!(replies[0]["history"]["publications"].is_array());
    assert_eq!(replies[5]["error"]["code"], 106, "{}", replies[5]);
}

#[test]
fn batch_answers_replies_in_order_not_wrapped_in_result() {
    let s = api_server(&["--history-size", "5"]);
    let mut sub = client(&s);
    subscribe(&mut sub, "b", "");
    let mut c = Http::connect(&s);
    let a = c.call(
        "batch",
        r#"{"commands":[{"publish":{"channel":"b","data":1}},{"presence_stats":{"channel":"b"}},{"nope":{}},{"publish":{"channel":"b"}},{"publish":{"channel":"b","data":2}}]}"#,
    );
    let v = a.json();
    assert!(v.get("result").is_none(), "{v}");
    let replies = v["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 5);
    assert_eq!(replies[0]["publish"]["offset"], 1);
    assert_eq!(replies[1]["presence_stats"]["num_clients"], 1);
    assert_eq!(replies[2]["error"]["code"], 104);
    assert_eq!(replies[3]["error"]["code"], 107);
    assert_eq!(replies[4]["publish"]["offset"], 2);
    assert_eq!(recv(&mut sub)["data"], 1);
    assert_eq!(recv(&mut sub)["data"], 2);
}

const SECRET: &str = "api-test-secret";

fn token(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}","exp":{}}}"#, now + 300));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{sig}")
}

fn connect_as(s: &Server, sub: &str, room: &str) -> WebSocket<TcpStream> {
    let url = format!("ws://{}/?token={}", s.addr, token(sub));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(room).unwrap(),
    );
    let stream = TcpStream::connect(&s.addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tungstenite::client(req, stream).expect("handshake").0
}

/// Reads until the server's Close; returns its code and reason.
fn close_of(ws: &mut WebSocket<TcpStream>) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
            Ok(Message::Close(None)) => return (0, String::new()),
            Ok(_) => {}
            Err(e) => panic!("no Close: {e}"),
        }
    }
}

#[test]
fn disconnect_closes_every_connection_of_a_user_or_one_client_with_code_and_reason() {
    let s = api_server(&["--auth-secret", SECRET, "--ping-interval", "1"]);
    // Alice on both workers in both modes; Bob stays.
    let mut alice: Vec<_> = (0..4)
        .map(|i| connect_as(&s, "alice", if i % 2 == 0 { "pubsub" } else { "lobby" }))
        .collect();
    let mut bob = connect_as(&s, "bob", "pubsub");
    subscribe(&mut bob, "t", "");
    let mut c = Http::connect(&s);
    let a = c.call(
        "disconnect",
        r#"{"user":"alice","disconnect":{"code":4001,"reason":"banned"}}"#,
    );
    assert_eq!(a.json(), json!({"result":{}}));
    let start = Instant::now();
    for ws in &mut alice {
        assert_eq!(close_of(ws), (4001, "banned".to_string()));
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Bob is still there; then only his one client is closed, with the default code.
    let p = c.call("presence", r#"{"channel":"t"}"#).json();
    let id = p["result"]["presence"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert_eq!(p["result"]["presence"][&id]["user"], "bob");
    let mut bob2 = connect_as(&s, "bob", "pubsub");
    let body = format!(r#"{{"user":"bob","client":"{id}"}}"#);
    c.call("disconnect", &body);
    let (code, _) = close_of(&mut bob);
    assert_eq!(code, u16::from(CloseCode::Policy));
    send(&mut bob2, r#"{"op":"subscribe","topic":"t","id":1}"#);
    assert_eq!(recv(&mut bob2)["op"], "subscribed");
    // With ban_until, the user's new connections are refused (401) until then.
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let body = format!(r#"{{"user":"bob","ban_until":{until}}}"#);
    assert_eq!(c.call("disconnect", &body).json(), json!({"result":{}}));
    assert_eq!(close_of(&mut bob2).0, u16::from(CloseCode::Policy));
    let out = s.http(
        format!(
            "GET /?token={} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            token("bob")
        )
        .as_bytes(),
    );
    assert!(
        out.starts_with("HTTP/1.1 401") && out.contains("banned"),
        "{out}"
    );
    let mut carol = connect_as(&s, "carol", "pubsub");
    subscribe(&mut carol, "t", "");
    assert_eq!(
        error_code(&c.call("disconnect", r#"{"client":"x","ban_until":1}"#)),
        107,
        "a ban needs a user"
    );
}

#[test]
fn subscribe_and_unsubscribe_act_on_a_user_s_pub_sub_connections_as_their_own_requests() {
    let s = api_server(&[
        "--auth-secret",
        SECRET,
        "--ping-interval",
        "1",
        "--history-size",
        "5",
    ]);
    let mut alice: Vec<_> = (0..2).map(|_| connect_as(&s, "alice", "pubsub")).collect();
    let mut bob = connect_as(&s, "bob", "pubsub");
    let mut room_alice = connect_as(&s, "alice", "lobby");
    let mut c = Http::connect(&s);
    let a = c.call("subscribe", r#"{"user":"alice","channel":"news"}"#);
    assert_eq!(a.json(), json!({"result":{}}));
    for ws in &mut alice {
        let v = recv(ws);
        assert_eq!(
            (v["op"].as_str(), v["topic"].as_str(), &v["id"]),
            (Some("subscribed"), Some("news"), &Value::Null),
            "{v}"
        );
    }
    c.call("publish", r#"{"channel":"news","data":"one"}"#);
    for ws in &mut alice {
        assert_eq!(recv(ws)["data"], "one");
    }
    // Bob was not subscribed; the room-mode member stays in its room only.
    let st = c.call("presence_stats", r#"{"channel":"news"}"#).json();
    assert_eq!(st["result"], json!({"num_clients":2,"num_users":1}));
    let a = c.call("unsubscribe", r#"{"user":"alice","channel":"news"}"#);
    assert_eq!(a.json(), json!({"result":{}}));
    for ws in &mut alice {
        let v = recv(ws);
        assert_eq!(
            (v["op"].as_str(), &v["id"]),
            (Some("unsubscribed"), &Value::Null)
        );
    }
    c.call("publish", r#"{"channel":"news","data":"two"}"#);
    subscribe(&mut bob, "news", "");
    c.call("publish", r#"{"channel":"news","data":"three"}"#);
    assert_eq!(recv(&mut bob)["data"], "three");
    // Nothing reached alice after her unsubscribe: her next message is her own request's reply.
    for ws in &mut alice {
        send(ws, r#"{"op":"presence","topic":"news","id":9}"#);
        assert_eq!(recv(ws)["op"], "presence");
    }
    room_alice.close(None).unwrap();
}

#[test]
fn api_listen_serves_the_api_alone_on_its_own_address() {
    use std::io::{BufRead, BufReader};
    let refused = Server::try_start(&["--api-listen", "127.0.0.1:0"], &[], None);
    assert!(refused.is_err_and(|e| e.contains("--api-listen needs --api-key")));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .args(["--api-key", KEY, "--workers", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr_after = |marker: &str| -> String {
        let rest = line
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("{line}"));
        rest.split('/').next().unwrap().to_string()
    };
    let (main, api) = (addr_after("ws://"), addr_after("http://"));
    assert!(line.starts_with("ringcast listening on ws://"), "{line}");
    let mut req = format!("ws://{main}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("pubsub"));
    let stream = TcpStream::connect(&main).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut ws = tungstenite::client(req, stream).expect("handshake").0;
    subscribe(&mut ws, "x", "");
    let mut c = Http::at(&api);
    assert_eq!(
        c.call("publish", r#"{"channel":"x","data":"via api port"}"#)
            .json(),
        json!({"result":{}})
    );
    assert_eq!(recv(&mut ws)["data"], "via api port");
    // Only the API there: other paths are unknown methods, a GET is not a POST, no upgrades.
    assert_eq!(c.call("../healthz", "{}").status, 404);
    for request in [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        common::upgrade_request(Some("chat"), b""),
    ] {
        c.send(&request);
        let a = c.read();
        assert_eq!((a.status, error_code(&a)), (405, 107));
    }
    // The main listener keeps /api/ too.
    let mut m = Http::at(&main);
    assert_eq!(m.call("info", "{}").status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// The `cent` package (PyPI, Centrifugo's official Python client, installed by
/// `.ci/install.d/40-cent.sh`) against ringcast: every method both have.
#[test]
fn the_cent_python_client_drives_every_method_while_websocket_clients_receive() {
    let have = Command::new("python3")
        .args(["-c", "import cent"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have,
        "python3 with the `cent` package is needed: run .ci/install"
    );
    let s = api_server(&["--history-size", "100"]);
    let mut room = s.join(Some("chat"));
    let mut sub = client(&s);
    subscribe(&mut sub, "chat", "");
    let script = r#"
import json, sys, time
from cent import (Client, SubscribeRequest, UnsubscribeRequest, PublishRequest, BroadcastRequest, PresenceRequest,
    PresenceStatsRequest, HistoryRequest, HistoryRemoveRequest, ChannelsRequest, InfoRequest,
    DisconnectRequest, BatchRequest, StreamPosition)
from cent.exceptions import CentApiResponseError, CentUnauthorizedError, CentTransportError
url, key = sys.argv[1], sys.argv[2]
c = Client(url, key)
out = {}
r = c.publish(PublishRequest(channel="chat", data={"text": "from cent"}))
out["publish"] = [r.offset, r.epoch]
r = c.broadcast(BroadcastRequest(channels=["chat", "elsewhere"], data={"n": 2}))
out["broadcast"] = [x.result.offset for x in r.responses]
out["presence"] = sorted(c.presence(PresenceRequest(channel="chat")).presence.keys())
r = c.presence_stats(PresenceStatsRequest(channel="chat"))
out["presence_stats"] = [r.num_clients, r.num_users]
r = c.history(HistoryRequest(channel="chat", limit=10))
out["history"] = [[p.offset, p.data] for p in r.publications]
r = c.history(HistoryRequest(channel="chat", limit=1, reverse=True))
out["history_reverse"] = [p.offset for p in r.publications]
r = c.history(HistoryRequest(channel="chat", limit=10,
    since=StreamPosition(offset=1, epoch=out["publish"][1])))
out["history_since"] = [p.offset for p in r.publications]
out["channels"] = sorted(c.channels(ChannelsRequest(pattern="ch*")).channels.keys())
out["info"] = [n.num_channels for n in c.info(InfoRequest()).nodes]
r = c.batch(BatchRequest(requests=[
    PublishRequest(channel="chat", data="b1"),
    PresenceStatsRequest(channel="chat"),
    PublishRequest(channel="chat", data="b2"),
]))
out["batch"] = [r.replies[0].offset, r.replies[1].num_clients, r.replies[2].offset]
c.history_remove(HistoryRemoveRequest(channel="chat"))
out["after_remove"] = len(c.history(HistoryRequest(channel="chat", limit=-1)).publications)
try:
    c.history(HistoryRequest(channel="chat", limit=1, since=StreamPosition(offset=1, epoch="gone")))
    out["unrecoverable"] = None
except CentApiResponseError as e:
    out["unrecoverable"] = e.code
try:
    Client(url, "wrong").info(InfoRequest())
    out["unauthorized"] = False
except CentUnauthorizedError:
    out["unauthorized"] = True
def wait_members(channel, n):
    for _ in range(60):
        if c.presence_stats(PresenceStatsRequest(channel=channel)).num_clients == n:
            return True
        time.sleep(0.05)
    return False
# Both members of "chat" are asked to join "extra": only the pub/sub one can.
for client in out["presence"]:
    c.subscribe(SubscribeRequest(user="", channel="extra", client=client))
out["subscribed"] = wait_members("extra", 1)
for client in out["presence"]:
    c.unsubscribe(UnsubscribeRequest(user="", channel="extra", client=client))
out["unsubscribed"] = wait_members("extra", 0)
c.disconnect(DisconnectRequest(user="", client=out["presence"][0]))
print(json.dumps(out))
"#;
    let url = format!("http://{}/api", s.addr);
    let run = Command::new("python3")
        .args(["-c", script, &url, KEY])
        .output()
        .expect("python3");
    assert!(
        run.status.success(),
        "cent failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out: Value = serde_json::from_slice(&run.stdout).expect("the script's JSON");
    assert_eq!(out["publish"][0], 1, "{out}");
    assert_eq!(out["broadcast"], json!([2, 1]));
    assert_eq!(out["presence"].as_array().map(Vec::len), Some(2));
    assert_eq!(out["presence_stats"], json!([2, 1]));
    assert_eq!(
        out["history"],
        json!([[1, {"text": "from cent"}], [2, {"n": 2}]])
    );
    assert_eq!(out["history_reverse"], json!([2]));
    assert_eq!(out["history_since"], json!([2]));
    assert_eq!(out["channels"], json!(["chat"]));
    assert_eq!(out["info"], json!([1]));
    assert_eq!(out["batch"], json!([3, 2, 4]));
    assert_eq!(out["after_remove"], 0);
    assert_eq!(out["unrecoverable"], 112);
    assert_eq!(out["unauthorized"], true);
    assert_eq!(
        (&out["subscribed"], &out["unsubscribed"]),
        (&json!(true), &json!(true))
    );
    // The disconnect closed one of the two members of "chat".
    let mut c = Http::connect(&s);
    let left = common::proc::poll_until(Duration::from_secs(3), || {
        let st = c.call("presence_stats", r#"{"channel":"chat"}"#).json();
        st["result"]["num_clients"] == 1
    });
    assert!(left, "the client cent disconnected is still a member");
    // The WebSocket clients got every publish, in order.
    let texts: Vec<Value> = (0..4)
        .map(|_| serde_json::from_str(&common::text(&mut room)).unwrap())
        .collect();
    assert_eq!(
        texts,
        vec![
            json!({"text":"from cent"}),
            json!({"n":2}),
            json!("b1"),
            json!("b2")
        ]
    );
    let got: Vec<(Value, Value)> = (0..4)
        .map(|_| {
            let v = recv(&mut sub);
            (v["data"].clone(), v["offset"].clone())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!({"text":"from cent"}), json!(1)),
            (json!({"n":2}), json!(2)),
            (json!("b1"), json!(3)),
            (json!("b2"), json!(4)),
        ]
    );
}
