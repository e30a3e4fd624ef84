//! Pusher cache channels (docs/pusher.md#cache-channels) with a plain WebSocket client: a
//! subscriber gets `subscription_succeeded` then the channel's last event (an HTTP API event,
//! a batch event or a client event), or `pusher:cache_miss` and a `cache_miss` webhook; the
//! private kinds still need their signature; across two nodes through a real redis-server, a
//! subscriber on one node gets the last event published on the other.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "common/pusher_client.rs"]
mod pusher_client;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::PUSHER_APP as APP;
use common::Server;
use common::resp::{Reply, Resp};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use nodes::{Client, node};
use pusher_client::{api, connect, recv, send};
use redis::RedisServer;

fn hex_hmac(body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret1").expect("key");
    mac.update(body);
    (mac.finalize().into_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Subscribes to `channel` (signed for socket `id` when `signed`, with `channel_data` on a
/// presence channel) and returns the first answer.
fn subscribe(ws: &mut Client, id: &str, channel: &str, signed: bool, data: Option<&str>) -> Value {
    let mut d = json!({ "channel": channel });
    if signed {
        let to_sign = match data {
            Some(cd) => format!("{id}:{channel}:{cd}"),
            None => format!("{id}:{channel}"),
        };
        d["auth"] = json!(format!("key1:{}", hex_hmac(to_sign.as_bytes())));
    }
    if let Some(cd) = data {
        d["channel_data"] = json!(cd);
    }
    send(ws, &json!({"event": "pusher:subscribe", "data": d}));
    recv(ws)
}

/// Subscribes and checks what a cache channel answers: `subscription_succeeded`, then at
/// once the cached event, which is returned (`pusher:cache_miss` included).
fn subscribe_cached(ws: &mut Client, id: &str, channel: &str, signed: bool) -> Value {
    let ok = subscribe(ws, id, channel, signed, None);
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    let next = recv(ws);
    assert_eq!(next["channel"], channel, "{next}");
    next
}

fn trigger(addr: &str, channel: &str, name: &str, data: &str) {
    let body = json!({"name": name, "channel": channel, "data": data}).to_string();
    api(addr, "events", &body);
}

#[test]
fn a_subscriber_gets_the_last_event_or_a_cache_miss() {
    let s = Server::start(&APP);
    let (mut a, id_a) = connect(&s.addr);
    let miss = subscribe_cached(&mut a, &id_a, "cache-news", false);
    assert_eq!(
        miss,
        json!({"event": "pusher:cache_miss", "channel": "cache-news"})
    );
    trigger(&s.addr, "cache-news", "headline", "one");
    assert_eq!(recv(&mut a)["data"], "one");
    trigger(&s.addr, "cache-news", "headline", "two");
    assert_eq!(recv(&mut a)["data"], "two");
    // The cache follows the last event.
    let (mut b, id_b) = connect(&s.addr);
    let cached = subscribe_cached(&mut b, &id_b, "cache-news", false);
    assert_eq!(
        cached,
        json!({"event": "headline", "channel": "cache-news", "data": "two"})
    );
    // Live events follow the cached one; a second subscribe on the same connection is
    // ignored (no second cached event).
    trigger(&s.addr, "cache-news", "headline", "three");
    assert_eq!(recv(&mut b)["data"], "three");
    send(
        &mut b,
        &json!({"event": "pusher:subscribe", "data": {"channel": "cache-news"}}),
    );
    send(&mut b, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut b)["event"], "pusher:pong");
    // An event on a channel nobody subscribes to is cached too, and so is the last event of
    // a batch call.
    trigger(&s.addr, "cache-quiet", "e", "unheard");
    let batch = json!({"batch": [
        {"name": "e", "channel": "cache-batch", "data": "first"},
        {"name": "e", "channel": "cache-batch", "data": "last"},
    ]});
    api(&s.addr, "batch_events", &batch.to_string());
    let (mut c, id_c) = connect(&s.addr);
    assert_eq!(
        subscribe_cached(&mut c, &id_c, "cache-quiet", false)["data"],
        "unheard"
    );
    assert_eq!(
        subscribe_cached(&mut c, &id_c, "cache-batch", false)["data"],
        "last"
    );
    // Not a cache channel: nothing after the success.
    let ok = subscribe(&mut c, &id_c, "news", false, None);
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded");
    send(&mut c, &json!({"event": "pusher:ping", "data": {}}));
    assert_eq!(recv(&mut c)["event"], "pusher:pong");
    assert_eq!(s.metric("ringcast_pusher_cache_entries"), 3);
}

#[test]
fn private_cache_needs_its_signature_and_caches_client_events_not_member_events() {
    let s = Server::start(&APP);
    let ch = "private-cache-room";
    let (mut a, id_a) = connect(&s.addr);
    let refused = subscribe(&mut a, &id_a, ch, false, None);
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["data"]["status"], 401, "{refused}");
    assert_eq!(
        subscribe_cached(&mut a, &id_a, ch, true)["event"],
        "pusher:cache_miss"
    );
    let (mut b, id_b) = connect(&s.addr);
    assert_eq!(
        subscribe_cached(&mut b, &id_b, ch, true)["event"],
        "pusher:cache_miss"
    );
    send(
        &mut b,
        &json!({"event": "client-typing", "channel": ch, "data": {"who": "b"}}),
    );
    let got = recv(&mut a);
    assert_eq!(got["event"], "client-typing", "{got}");
    // A new subscriber gets the client event, as the others got it.
    let (mut c, id_c) = connect(&s.addr);
    assert_eq!(subscribe_cached(&mut c, &id_c, ch, true), got);
    // A presence cache channel: member_added is the server's, not a channel event.
    let pch = "presence-cache-lobby";
    let ann = r#"{"user_id":"ann"}"#;
    let ok = subscribe(&mut a, &id_a, pch, true, Some(ann));
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    assert_eq!(recv(&mut a)["event"], "pusher:cache_miss");
    let bob = r#"{"user_id":"bob"}"#;
    let ok = subscribe(&mut b, &id_b, pch, true, Some(bob));
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    assert_eq!(recv(&mut b)["event"], "pusher:cache_miss");
    assert_eq!(recv(&mut a)["event"], "pusher_internal:member_added");
    send(
        &mut a,
        &json!({"event": "client-hi", "channel": pch, "data": "x"}),
    );
    let hi = recv(&mut b);
    assert_eq!(
        (&hi["event"], &hi["user_id"]),
        (&json!("client-hi"), &json!("ann"))
    );
    let carl = r#"{"user_id":"carl"}"#;
    subscribe(&mut c, &id_c, pch, true, Some(carl));
    assert_eq!(recv(&mut c), hi);
}

/// A webhook receiver on a free port: its URL, and every event of every POST whose key and
/// signature hold (a POST that fails the check is dropped, so the test times out).
fn webhook_receiver() -> (String, Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().expect("clone"));
            let (mut len, mut sig, mut line) = (0usize, String::new(), String::new());
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = l.strip_prefix("x-pusher-signature:") {
                    sig = v.trim().to_owned();
                }
                line.clear();
            }
            let mut body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                continue;
            }
            let mut out = stream;
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            if sig != hex_hmac(&body) {
                continue;
            }
            for e in v["events"].as_array().into_iter().flatten() {
                if tx.send(e.clone()).is_err() {
                    return;
                }
            }
        }
    });
    (url, rx)
}

#[test]
fn a_cache_miss_reaches_the_app_s_webhooks() {
    let (url, events) = webhook_receiver();
    let mut args = APP.to_vec();
    args.extend(["--pusher-webhook-url", &url]);
    let s = Server::start(&args);
    let (mut a, id_a) = connect(&s.addr);
    subscribe_cached(&mut a, &id_a, "cache-hooked", false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = events.recv_timeout(left).expect("no cache_miss webhook");
        if e["name"] == "cache_miss" {
            assert_eq!(e, json!({"name": "cache_miss", "channel": "cache-hooked"}));
            break;
        }
    }
}

/// Waits until Redis holds `want` in channel `channel`'s cache key (the publishing node
/// writes it from its bus thread after the PUBLISH).
fn wait_cached_in_redis(redis: &RedisServer, channel: &str, want: &str) {
    let mut r = Resp::connect(redis.port);
    let key = format!("ringcast:cache:#pusher/1/{channel}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Reply::Bulk(Some(v)) = r.cmd_str(&["GET", &key]) {
            let v: Value = serde_json::from_slice(&v).expect("JSON");
            if v["data"] == want {
                let ttl = r.cmd_str(&["PTTL", &key]).int();
                assert!((1_790_000..=1_800_000).contains(&ttl), "30 minutes: {ttl}");
                return;
            }
        }
        assert!(Instant::now() < deadline, "{key} never held {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn across_nodes_a_subscriber_gets_the_last_event_published_on_another_node() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let b = node(&redis, "b", &APP);
    // Nobody subscribes anywhere: node b hears nothing of the channel but from Redis.
    trigger(&a.addr, "cache-x", "e", "from-a");
    wait_cached_in_redis(&redis, "cache-x", "from-a");
    let (mut on_b, id_b) = connect(&b.addr);
    assert_eq!(
        subscribe_cached(&mut on_b, &id_b, "cache-x", false)["data"],
        "from-a"
    );
    // A channel Redis has nothing for: a miss on every node.
    assert_eq!(
        subscribe_cached(&mut on_b, &id_b, "cache-none", false)["event"],
        "pusher:cache_miss"
    );
    // Now b publishes; a's own entry (from-a, written with no room open) is stale, so a
    // new subscriber there asks Redis.
    trigger(&b.addr, "cache-x", "e", "from-b");
    assert_eq!(recv(&mut on_b)["data"], "from-b");
    wait_cached_in_redis(&redis, "cache-x", "from-b");
    let mut r = Resp::connect(redis.port);
    let gets = r.calls("get");
    let (mut on_a, id_a) = connect(&a.addr);
    assert_eq!(
        subscribe_cached(&mut on_a, &id_a, "cache-x", false)["data"],
        "from-b"
    );
    assert_eq!(r.calls("get"), gets + 1, "a asked Redis");
    // With the channel open on a, a hears b's events and its own entry is current: a new
    // subscriber there is answered without asking Redis.
    trigger(&b.addr, "cache-x", "e", "from-b-2");
    assert_eq!(recv(&mut on_a)["data"], "from-b-2");
    let gets = r.calls("get");
    let (mut next_a, id_next) = connect(&a.addr);
    assert_eq!(
        subscribe_cached(&mut next_a, &id_next, "cache-x", false)["data"],
        "from-b-2"
    );
    assert_eq!(r.calls("get"), gets, "answered from a's own entry");
    // Redis down: each node answers from its own entries.
    trigger(&a.addr, "cache-y", "e", "kept-on-a");
    wait_cached_in_redis(&redis, "cache-y", "kept-on-a");
    redis.kill();
    let (mut late, id_late) = connect(&a.addr);
    assert_eq!(
        subscribe_cached(&mut late, &id_late, "cache-y", false)["data"],
        "kept-on-a"
    );
    let (mut late_b, id_late_b) = connect(&b.addr);
    assert_eq!(
        subscribe_cached(&mut late_b, &id_late_b, "cache-y", false)["event"],
        "pusher:cache_miss"
    );
}
