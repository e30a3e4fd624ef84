//! Pusher webhooks end to end (docs/pusher-webhooks.md): a real ringcast with
//! `--pusher-webhook-url` pointing at a small HTTP receiver on a free loopback port, a Pusher
//! client subscribing, sending a client event and leaving. The receiver checks every POST's
//! `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the body under the app's secret)
//! and hands the events on; the test waits for each one it expects (no sleeps).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{PUSHER_APP, Server};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::Message;

use common::json::{Ws, recv};

/// One POST as the receiver saw it: whether its signature held, and its events.
struct Post {
    signed: bool,
    events: Vec<Value>,
}

fn hex_hmac(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads one HTTP/1.1 request (head + Content-Length body), answers 200 and closes.
fn serve_one(stream: TcpStream) -> Option<Post> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let (mut len, mut key, mut sig) = (0usize, String::new(), String::new());
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    if !line.starts_with("POST ") {
        return None;
    }
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => len = value.trim().parse().ok()?,
            "x-pusher-key" => key = value.trim().to_owned(),
            "x-pusher-signature" => sig = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let mut out = stream;
    out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    let signed = key == "key1" && sig == hex_hmac(b"secret1", &body);
    let events = v["events"].as_array().cloned().unwrap_or_default();
    Some(Post { signed, events })
}

/// A receiver on a free port: its URL and the posts it got.
fn receiver() -> (String, Receiver<Post>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(post) = serve_one(stream)
                && tx.send(post).is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

/// Waits for an event named `name` on `channel`, checking every post's signature on the way.
fn expect_event(posts: &Receiver<Post>, seen: &mut Vec<Value>, name: &str, channel: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(i) = seen
            .iter()
            .position(|e| e["name"] == name && e["channel"] == channel)
        {
            return seen.remove(i);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let post = posts
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {name} webhook for {channel}; other events: {seen:?}"));
        assert!(post.signed, "a webhook with a bad key or signature");
        seen.extend(post.events);
    }
}

fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::text(v.to_string())).expect("send");
}

#[test]
fn occupied_client_event_and_vacated_reach_the_webhook_signed() {
    let (url, posts) = receiver();
    let mut args = PUSHER_APP.to_vec();
    args.extend(["--pusher-webhook-url", &url]);
    let s = Server::start(&args);
    let stream = TcpStream::connect(&s.addr).expect("connect");
    stream
        .set_read_timeout(Some(common::READ_TIMEOUT))
        .expect("timeout");
    let ws_url = format!(
        "ws://{}/app/key1?protocol=7&client=js&version=8.4.0",
        s.addr
    );
    let (mut ws, _) = tungstenite::client(ws_url.as_str(), stream).expect("handshake");
    let hello = recv(&mut ws);
    let data: Value = serde_json::from_str(hello["data"].as_str().expect("data")).expect("json");
    let socket_id = data["socket_id"].as_str().expect("socket_id").to_owned();
    let auth = format!(
        "key1:{}",
        hex_hmac(b"secret1", format!("{socket_id}:private-chat").as_bytes())
    );
    send(
        &mut ws,
        &json!({"event": "pusher:subscribe", "data": {"channel": "private-chat", "auth": auth}}),
    );
    assert_eq!(
        recv(&mut ws)["event"],
        "pusher_internal:subscription_succeeded"
    );
    let mut seen = Vec::new();
    expect_event(&posts, &mut seen, "channel_occupied", "private-chat");
    send(
        &mut ws,
        &json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}}),
    );
    let e = expect_event(&posts, &mut seen, "client_event", "private-chat");
    assert_eq!(e["event"], "client-typing", "{e}");
    assert_eq!(e["socket_id"], socket_id.as_str(), "{e}");
    let payload: Value =
        serde_json::from_str(e["data"].as_str().expect("data string")).expect("json");
    assert_eq!(payload, json!({"who": "a"}));
    // The last subscriber leaves: vacated, once the debounce window passed without a return.
    drop(ws);
    expect_event(&posts, &mut seen, "channel_vacated", "private-chat");
    assert!(
        s.metric("ringcast_webhook_events_total{app=\"1\",result=\"sent\"}") >= 3,
        "sent counted"
    );
}

#[test]
fn an_https_or_bad_webhook_url_stops_the_start_with_exit_2() {
    for url in ["https://hooks.example/pusher", "ftp://x/", "http://:80/"] {
        let mut args = PUSHER_APP.to_vec();
        args.extend(["--listen", "127.0.0.1:0", "--pusher-webhook-url", url]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(&args)
            .output()
            .expect("run ringcast");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains(url), "the error names the URL: {err}");
    }
}
