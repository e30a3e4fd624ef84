//! docs/api.md#across-the-cluster: an API publish on one node reaches room-mode members and
//! pub/sub subscribers on another, through the same bus as a client's publish. Real nodes
//! joined through a real redis-server on a free loopback port.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

use common::json;
use nodes::{node, observer, wait_presence};
use redis::RedisServer;
use serde_json::{Value, json};

const KEY: &str = "cluster-api-key";

/// One API call on a fresh connection that the server closes after answering.
fn call(addr: &str, method: &str, body: &str) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    let req = format!(
        "POST /api/{method} HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // `Connection: close` answers are delimited by the close (docs/api.md#http).
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn an_api_publish_on_one_node_reaches_members_and_subscribers_on_another() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &["--api-key", KEY, "--history-size", "10"]);
    let b = node(&redis, "b", &["--api-key", KEY, "--history-size", "10"]);
    let mut member = b.join(Some("news"));
    let mut sub = json::client(&b);
    json::subscribe(&mut sub, "news", "");
    let mut obs = observer(&redis);
    wait_presence(&mut obs, "news", 2, Duration::from_secs(5));
    let r = call(
        &a.addr,
        "publish",
        r#"{"channel":"news","data":{"from":"a"}}"#,
    );
    assert_eq!(r["result"]["offset"], 1, "{r}");
    let text = common::text(&mut member);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"from":"a"})
    );
    let v = json::recv(&mut sub);
    assert_eq!(
        (v["op"].as_str(), &v["data"]),
        (Some("message"), &json!({"from":"a"}))
    );
    // Node b keeps it in its own history, under its own offsets (docs/cluster.md).
    let h = call(&b.addr, "history", r#"{"channel":"news","limit":-1}"#);
    let pubs = h["result"]["publications"].as_array().unwrap();
    assert_eq!(pubs.len(), 1, "{h}");
    assert_eq!(pubs[0]["data"], json!({"from":"a"}));
}

const SECRET: &str = "cluster-api-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(sub: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}","exp":{}}}"#, now() + 300));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{sig}")
}

fn connect_as(s: &common::Server, sub: &str) -> nodes::Client {
    let mut req = format!("ws://{}/?token={}", s.addr, token(sub))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("pubsub"));
    let stream = TcpStream::connect(&s.addr).unwrap();
    stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    tungstenite::client(req, stream).expect("handshake").0
}

#[test]
fn disconnect_ban_and_subscribe_made_on_one_node_act_on_every_node() {
    let redis = RedisServer::start();
    let args = [
        "--api-key",
        KEY,
        "--auth-secret",
        SECRET,
        "--ping-interval",
        "1",
    ];
    let a = node(&redis, "a", &args);
    let b = node(&redis, "b", &args);
    let mut bob = connect_as(&b, "bob");
    let mut alice = connect_as(&b, "alice");
    json::subscribe(&mut alice, "here", "");
    let mut obs = observer(&redis);
    wait_presence(&mut obs, "here", 1, Duration::from_secs(5));
    // subscribe on a: bob's connection on b subscribes, as its own request with id null.
    let r = call(&a.addr, "subscribe", r#"{"user":"bob","channel":"news"}"#);
    assert_eq!(r, json!({"result":{}}));
    let v = json::recv(&mut bob);
    assert_eq!(
        (v["op"].as_str(), &v["id"]),
        (Some("subscribed"), &Value::Null),
        "{v}"
    );
    // disconnect with a ban on a: bob is closed on b and refused there, alice stays.
    let until = now() + 60;
    let started = Instant::now();
    let body = format!(
        r#"{{"user":"bob","ban_until":{until},"disconnect":{{"code":4003,"reason":"banned"}}}}"#
    );
    assert_eq!(call(&a.addr, "disconnect", &body), json!({"result":{}}));
    let code = loop {
        match bob.read() {
            Ok(Message::Close(Some(f))) => break u16::from(f.code),
            Ok(_) => {}
            Err(e) => panic!("no Close: {e}"),
        }
    };
    assert_eq!(code, 4003);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let out = b.http(
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
    json::send(&mut alice, r#"{"op":"presence","topic":"here","id":1}"#);
    assert_eq!(json::recv(&mut alice)["op"], "presence");
}

#[test]
fn presence_and_presence_stats_answer_for_every_node() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &["--api-key", KEY]);
    let b = node(&redis, "b", &["--api-key", KEY]);
    let mut sub_b = json::client(&b);
    json::subscribe(&mut sub_b, "lobby", "");
    let _member_a = a.join(Some("lobby"));
    let mut obs = observer(&redis);
    wait_presence(&mut obs, "lobby", 2, Duration::from_secs(5));
    for node in [&a, &b] {
        let p = call(&node.addr, "presence", r#"{"channel":"lobby"}"#);
        let members = p["result"]["presence"].as_object().expect("presence");
        assert_eq!(members.len(), 2, "{p}");
        for (client, m) in members {
            assert_eq!(m["client"].as_str(), Some(client.as_str()), "{p}");
            assert_eq!(m["user"], "", "{p}");
        }
        let s = call(&node.addr, "presence_stats", r#"{"channel":"lobby"}"#);
        assert_eq!(s, json!({"result":{"num_clients":2,"num_users":1}}));
    }
    // In a batch too, between a publish and a read of this node's state.
    let r = call(
        &a.addr,
        "batch",
        r#"{"commands":[{"publish":{"channel":"lobby","data":1}},{"presence_stats":{"channel":"lobby"}},{"channels":{}}]}"#,
    );
    assert_eq!(
        r["replies"][1],
        json!({"presence_stats":{"num_clients":2,"num_users":1}}),
        "{r}"
    );
    assert_eq!(r["replies"][0], json!({"publish":{}}), "{r}");
    assert!(
        r["replies"][2]["channels"]["channels"]["lobby"].is_object(),
        "{r}"
    );
}

#[test]
fn info_lists_the_nodes_that_are_up() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &["--api-key", KEY]);
    let b = node(&redis, "b", &["--api-key", KEY]);
    let mut sub_b = json::client(&b);
    json::subscribe(&mut sub_b, "lobby", "");
    // Each node tells the others its figures about once a second (docs/api.md#info).
    let deadline = Instant::now() + Duration::from_secs(5);
    let nodes = loop {
        let r = call(&a.addr, "info", "{}");
        let nodes = r["result"]["nodes"].as_array().cloned().unwrap_or_default();
        let b_seen = nodes.iter().any(|n| n["uid"] == "b" && n["num_subs"] == 1);
        if b_seen || Instant::now() > deadline {
            break nodes;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let uids: Vec<&str> = nodes.iter().filter_map(|n| n["uid"].as_str()).collect();
    assert_eq!(uids, ["a", "b"], "{nodes:?}");
    let nb = &nodes[1];
    assert_eq!(
        (nb["num_channels"].as_u64(), nb["num_subs"].as_u64()),
        (Some(1), Some(1)),
        "{nb}"
    );
    assert!(nb["num_clients"].as_u64() >= Some(1), "{nb}");
    // A node that stops is no longer listed once its figures are stale.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&a.addr, "info", "{}");
        let n = r["result"]["nodes"].as_array().map_or(0, |n| n.len());
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "b still listed: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn skip_history_is_honoured_on_every_node() {
    let redis = RedisServer::start();
    let args = ["--api-key", KEY, "--history-size", "10"];
    let a = node(&redis, "a", &args);
    let b = node(&redis, "b", &args);
    let mut sub = json::client(&b);
    json::subscribe(&mut sub, "alerts", "");
    let mut obs = observer(&redis);
    wait_presence(&mut obs, "alerts", 1, Duration::from_secs(5));
    let r = call(
        &a.addr,
        "publish",
        r#"{"channel":"alerts","data":"volatile","skip_history":true}"#,
    );
    assert_eq!(r, json!({"result":{}}));
    let r = call(&a.addr, "publish", r#"{"channel":"alerts","data":"kept"}"#);
    assert_eq!(r["result"]["offset"], 1, "{r}");
    // b delivers both, in order, the first without an offset.
    let v = json::recv(&mut sub);
    assert_eq!(
        (&v["data"], v.get("offset")),
        (&json!("volatile"), None),
        "{v}"
    );
    let v = json::recv(&mut sub);
    assert_eq!(
        (&v["data"], &v["offset"]),
        (&json!("kept"), &json!(1)),
        "{v}"
    );
    // Neither node's history has the skipped one.
    for node in [&a, &b] {
        let h = call(&node.addr, "history", r#"{"channel":"alerts","limit":-1}"#);
        let pubs = h["result"]["publications"].as_array().unwrap();
        assert_eq!(pubs.len(), 1, "{h}");
        assert_eq!(pubs[0]["data"], json!("kept"), "{h}");
    }
}

/// The server API's bus room (server/src/bridge/mod.rs `API_ORDERS_ROOM`).
fn orders_channel() -> String {
    format!(
        "ringcast:room:ringcast-server-api-orders/{}",
        ".".repeat(256)
    )
}

/// A version-1 bus envelope of JSON messages from `origin` (cluster/src/wire.rs).
fn json_envelope(origin: &str, first_seq: u64, payloads: &[&str]) -> Vec<u8> {
    let mut out = vec![0xAC, 1, origin.len() as u8];
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for p in payloads {
        out.push(3);
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

#[test]
fn orders_lost_on_the_bus_are_counted() {
    use common::resp::Resp;
    let redis = RedisServer::start();
    let b = node(&redis, "b", &["--api-key", KEY]);
    let mut r = Resp::connect(redis.port);
    let channel = orders_channel();
    common::proc::wait_eq("b listens to the orders", 1, || r.numsub(&channel));
    let order = r#"{"user":"nobody","act":"disconnect","code":1008,"reason":"x"}"#;
    let metric = "ringcast_api_orders_lost_total";
    assert_eq!(b.metric(metric), 0);
    for seq in [1, 5] {
        let env = json_envelope("x", seq, &[order]);
        assert_eq!(r.cmd(&[b"PUBLISH", channel.as_bytes(), &env]).int(), 1);
    }
    // Sequence numbers 2 to 4 of node x never came: three orders lost.
    common::proc::wait_eq(metric, 3, || b.metric(metric));
}
