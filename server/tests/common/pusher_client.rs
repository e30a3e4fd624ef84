//! A Pusher connection of the cluster tests (`pusher_cluster.rs`, `pusher_cluster_presence.rs`):
//! the test app's key, its `socket_id` read from `pusher:connection_established`; and a
//! signed call of the test app's HTTP API.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use ringcast_pusher::app::App;
use ringcast_pusher::http_api::sign_request;
use serde_json::Value;
use tungstenite::Message;

use crate::nodes::Client;

/// Connects to the test app on `addr`; the client and its `socket_id`.
pub fn connect(addr: &str) -> (Client, String) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(crate::common::READ_TIMEOUT))
        .expect("timeout");
    let url = format!("ws://{addr}/app/key1?protocol=7");
    let mut ws = tungstenite::client(url.as_str(), stream).expect("ws").0;
    let hello: Value = loop {
        match ws.read().expect("hello") {
            Message::Text(t) => break serde_json::from_str(&t).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let data: Value = serde_json::from_str(hello["data"].as_str().expect("data")).expect("JSON");
    (ws, data["socket_id"].as_str().expect("id").to_owned())
}

/// A call of the test app's HTTP API on `addr`, signed with its secret; asserts a 200 and
/// returns the JSON answer.
pub fn call(addr: &str, method: &str, path: &str, params: &[(&str, &str)], body: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let app = App::new("1", "key1", "secret1");
    let q = sign_request(&app, method, path, params, body.as_bytes(), now);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(crate::common::READ_TIMEOUT))
        .expect("timeout");
    let req = format!(
        "{method} {path}?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let body = out.split("\r\n\r\n").nth(1).expect("body");
    serde_json::from_str(body).expect("JSON")
}

/// `POST /apps/1/{path}` on `addr` ([`call`]).
pub fn api(addr: &str, path: &str, body: &str) {
    call(addr, "POST", &format!("/apps/1/{path}"), &[], body);
}

/// The next text message as JSON (pings and pongs skipped).
pub fn recv(ws: &mut Client) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends `v` as a text message.
pub fn send(ws: &mut Client, v: &Value) {
    ws.send(Message::text(v.to_string())).expect("send");
}
