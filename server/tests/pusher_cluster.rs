//! docs/pusher.md across a cluster: a Pusher channel is an ordinary topic of the one fan-out,
//! so an HTTP API event triggered on node A and a client event sent on A reach subscribers
//! on node B through Redis. Real nodes joined through a real redis-server.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "common/pusher_client.rs"]
mod pusher_client;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use ringcast_pusher::app::App;
use ringcast_pusher::http_api::sign_request;
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::Message;

use nodes::{Client, node};
use pusher_client::connect;
use redis::RedisServer;

use common::PUSHER_APP as APP;

/// The next text message; `None` when the read timed out.
fn recv(ws: &mut Client) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("JSON")),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn subscribe_private(ws: &mut Client, id: &str, channel: &str) {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret1").expect("key");
    mac.update(format!("{id}:{channel}").as_bytes());
    let hex: String = (mac.finalize().into_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect();
    let msg = json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": format!("key1:{hex}")}});
    ws.send(Message::text(msg.to_string())).expect("send");
    let ok = recv(ws).expect("answer");
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
}

/// `POST /apps/1/events` on `addr`.
fn trigger(addr: &str, body: &str) {
    pusher_client::api(addr, "events", body);
}

#[test]
fn events_triggered_or_sent_on_one_node_reach_subscribers_on_another() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let b = node(&redis, "b", &APP);
    let (mut on_b, id_b) = connect(&b.addr);
    subscribe_private(&mut on_b, &id_b, "private-x");
    // Node b subscribes to the topic on Redis when its first member joins, a moment after
    // the subscriber's answer; a Pusher member registers no presence a test could wait on,
    // so probes are triggered on a until one arrives (each read waits at most 100 ms).
    on_b.get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "node b never got a probe");
        trigger(
            &a.addr,
            r#"{"name":"probe","channel":"private-x","data":"p"}"#,
        );
        if let Some(v) = recv(&mut on_b) {
            assert_eq!(v["event"], "probe");
            break;
        }
    }
    on_b.get_mut()
        .set_read_timeout(Some(common::READ_TIMEOUT))
        .expect("timeout");
    // Probes still in flight are skipped.
    trigger(
        &a.addr,
        r#"{"name":"real","channel":"private-x","data":"{\"n\":1}"}"#,
    );
    let v = loop {
        let v = recv(&mut on_b).expect("the event from a");
        if v["event"] != "probe" {
            break v;
        }
    };
    assert_eq!(
        (v["event"].as_str(), v["data"].as_str()),
        (Some("real"), Some(r#"{"n":1}"#))
    );
    // A client event sent on a reaches b too.
    let (mut on_a, id_a) = connect(&a.addr);
    subscribe_private(&mut on_a, &id_a, "private-x");
    let msg = json!({"event": "client-hi", "channel": "private-x", "data": "from a"});
    on_a.send(Message::text(msg.to_string())).expect("send");
    let v = recv(&mut on_b).expect("the client event");
    assert_eq!(
        (v["event"].as_str(), v["data"].as_str()),
        (Some("client-hi"), Some("from a"))
    );
}

/// `GET /channels/{name}` on `addr` until `subscription_count` is `n` (the other node's
/// subscriptions arrive through Redis).
fn wait_subscriptions(addr: &str, channel: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let app = App::new("1", "key1", "secret1");
    let path = format!("/apps/1/channels/{channel}");
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let q = sign_request(
            &app,
            "GET",
            &path,
            &[("info", "subscription_count")],
            b"",
            now,
        );
        let mut s = TcpStream::connect(addr).expect("connect");
        let req = format!("GET {path}?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        if out.contains(&format!("\"subscription_count\":{n}")) {
            return;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn socket_id_exclusion_names_a_connection_on_another_node() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let b = node(&redis, "b", &APP);
    let (mut on_a, id_a) = connect(&a.addr);
    subscribe_private(&mut on_a, &id_a, "private-x");
    let (mut sender, id_sender) = connect(&b.addr);
    subscribe_private(&mut sender, &id_sender, "private-x");
    let (mut other, id_other) = connect(&b.addr);
    subscribe_private(&mut other, &id_other, "private-x");
    // a knows b's subscriptions (and so b itself), b knows a's.
    wait_subscriptions(&a.addr, "private-x", 3);
    wait_subscriptions(&b.addr, "private-x", 3);
    // Triggered on a, excluding the sender, a connection of b.
    let body = json!({"name": "first", "channel": "private-x", "data": "1",
        "socket_id": id_sender})
    .to_string();
    trigger(&a.addr, &body);
    trigger(
        &a.addr,
        r#"{"name":"second","channel":"private-x","data":"2"}"#,
    );
    // a publishes both on Redis in order, so b sees the first before the second.
    let next = |ws: &mut Client| recv(ws).expect("an event")["event"].clone();
    assert_eq!(next(&mut sender), "second", "the excluded one skipped");
    assert_eq!(next(&mut other), "first");
    assert_eq!(next(&mut other), "second");
    let mut on_a_got = vec![next(&mut on_a), next(&mut on_a)];
    on_a_got.sort_by_key(|v| v.to_string());
    assert_eq!(on_a_got, ["first", "second"]);
}
