//! Pusher webhooks end to end (docs/pusher-webhooks.md): a real ringcast with
//! `--pusher-webhook-url` pointing at a small HTTP receiver on a free loopback port, a Pusher
//! client subscribing, sending a client event and leaving. The receiver checks every POST's
//! `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the body under the app's secret)
//! and hands the events on; the test waits for each one it expects (no sleeps).

mod common;
#[path = "common/webhook_post.rs"]
mod webhook_post;

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{PUSHER_APP, Server};
use serde_json::{Value, json};
use tungstenite::Message;

use common::json::{Ws, recv};
use webhook_post::{Post, hex_hmac, read_post};

/// A receiver on a free port: its URL and the posts it got.
fn receiver() -> (String, Receiver<Post>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            if let Some(post) = read_post(&mut stream, false)
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
fn a_bad_webhook_url_stops_the_start_with_exit_2() {
    for url in ["ftp://x/", "http://:80/", "https://h:0/"] {
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
