//! JSON pub/sub mode (docs/pubsub.md) clients for the tests: connect, send, read one reply, subscribe.

use std::net::TcpStream;

use serde_json::Value;
use tungstenite::{Message, WebSocket};

use super::Server;

/// A client connection.
pub type Ws = WebSocket<TcpStream>;

/// A client in JSON pub/sub mode (subprotocol `pubsub`).
pub fn client(s: &Server) -> Ws {
    s.join(Some("pubsub"))
}

/// Sends one JSON request.
pub fn send(ws: &mut Ws, v: &str) {
    ws.send(Message::text(v)).expect("send");
}

/// Reads the next JSON message, skipping control frames.
pub fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(&t).expect("server sent JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Subscribes to `topic` (id 1, `extra` appended inside the object) and returns `subscribed`.
pub fn subscribe(ws: &mut Ws, topic: &str, extra: &str) -> Value {
    send(
        ws,
        &format!(r#"{{"op":"subscribe","topic":"{topic}","id":1{extra}}}"#),
    );
    let v = recv(ws);
    assert_eq!(v["op"], "subscribed", "{v}");
    v
}
