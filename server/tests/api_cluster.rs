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
use std::time::Duration;

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
