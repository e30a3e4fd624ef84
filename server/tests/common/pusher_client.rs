//! A Pusher connection of the cluster tests (`pusher_cluster.rs`, `pusher_cluster_presence.rs`):
//! the test app's key, its `socket_id` read from `pusher:connection_established`.
#![allow(dead_code)]

use std::net::TcpStream;

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
