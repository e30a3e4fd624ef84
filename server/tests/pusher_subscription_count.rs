//! Pusher's subscription counting (docs/pusher.md#subscription-count), off by default and on
//! for an app with `subscription_count = true`: every subscriber of a (non-presence) channel,
//! the new one included, gets `pusher_internal:subscription_count` when the count changes
//! (subscribe, unsubscribe, a closed connection).

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "common/pusher_client.rs"]
mod pusher_client;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use common::Server;
use serde_json::{Value, json};

use nodes::Client;
use pusher_client::{connect, recv, send};

fn subscribe(ws: &mut Client, channel: &str) {
    send(
        ws,
        &json!({"event": "pusher:subscribe", "data": {"channel": channel}}),
    );
    let ok = recv(ws);
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
}

/// The next message, which must be `channel`'s count; returns it.
fn count(ws: &mut Client, channel: &str) -> u64 {
    let v = recv(ws);
    assert_eq!(v["event"], "pusher_internal:subscription_count", "{v}");
    assert_eq!(v["channel"], channel, "{v}");
    let data: Value = serde_json::from_str(v["data"].as_str().expect("string")).expect("JSON");
    data["subscription_count"].as_u64().expect("count")
}

/// Nothing is queued for `ws` before the answer to a ping.
fn nothing_else(ws: &mut Client) {
    send(ws, &json!({"event": "pusher:ping", "data": {}}));
    let v = recv(ws);
    assert_eq!(v["event"], "pusher:pong", "{v}");
}

#[test]
fn subscribers_get_the_count_on_every_change_when_the_app_counts() {
    let dir = std::env::temp_dir().join(format!("ringcast-count-{}", common::rand_u32()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("ringcast.toml");
    std::fs::write(
        &path,
        "[[pusher_apps]]\nid = 1\nkey = \"key1\"\nsecret = \"secret1\"\nsubscription_count = true\n",
    )
    .expect("write");
    let s = Server::start(&["--config", path.to_str().expect("utf-8")]);
    let (mut a, _) = connect(&s.addr);
    subscribe(&mut a, "news");
    assert_eq!(count(&mut a, "news"), 1);
    let (mut b, _) = connect(&s.addr);
    subscribe(&mut b, "news");
    assert_eq!(count(&mut b, "news"), 2);
    assert_eq!(count(&mut a, "news"), 2);
    send(
        &mut b,
        &json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}),
    );
    assert_eq!(count(&mut a, "news"), 1);
    let (mut c, _) = connect(&s.addr);
    subscribe(&mut c, "news");
    assert_eq!(count(&mut c, "news"), 2);
    assert_eq!(count(&mut a, "news"), 2);
    drop(c);
    assert_eq!(count(&mut a, "news"), 1);
    nothing_else(&mut b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_count_by_default() {
    let s = Server::start(&common::PUSHER_APP);
    let (mut a, _) = connect(&s.addr);
    subscribe(&mut a, "news");
    let (mut b, _) = connect(&s.addr);
    subscribe(&mut b, "news");
    nothing_else(&mut a);
    nothing_else(&mut b);
}
