//! docs/pusher.md#across-a-cluster: presence members counted per user over every node
//! (`member_added` / `member_removed` once per user, `subscription_succeeded` listing every
//! node's members), HTTP API channel queries answered for the whole cluster, and the
//! occupancy webhooks sent once per cluster with the cross-node debounce. Real nodes joined
//! through a real redis-server; webhooks received by a small HTTP server of the test's own.

mod common;
#[path = "common/cut.rs"]
mod cut;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "common/pusher_client.rs"]
mod pusher_client;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::Message;

use common::{PUSHER_APP as APP, Server};
use nodes::{Client, node};
use pusher_client::{call, connect};
use redis::RedisServer;

/// The next text message (pings skipped).
fn recv(ws: &mut Client) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn sign(text: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret1").expect("key");
    mac.update(text.as_bytes());
    (mac.finalize().into_bytes().iter())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Subscribes to presence channel `channel` as `user`; returns the succeeded data.
fn join(ws: &mut Client, id: &str, channel: &str, user: &str) -> Value {
    let data = json!({"user_id": user, "user_info": {"name": user}}).to_string();
    let auth = format!("key1:{}", sign(&format!("{id}:{channel}:{data}")));
    let msg = json!({"event": "pusher:subscribe",
        "data": {"channel": channel, "auth": auth, "channel_data": data}});
    ws.send(Message::text(msg.to_string())).expect("send");
    let ok = recv(ws);
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
    serde_json::from_str(ok["data"].as_str().expect("data")).expect("JSON")
}

fn subscribe_public(ws: &mut Client, channel: &str) {
    let msg = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
    ws.send(Message::text(msg.to_string())).expect("send");
    let ok = recv(ws);
    assert_eq!(
        ok["event"], "pusher_internal:subscription_succeeded",
        "{ok}"
    );
}

/// `GET /channels/{channel}` with both counts, on `addr`.
fn channel_info(addr: &str, channel: &str) -> Value {
    let path = format!("/apps/1/channels/{channel}");
    let info = "subscription_count,user_count";
    let info = if channel.starts_with("presence-") {
        info
    } else {
        "subscription_count"
    };
    call(addr, "GET", &path, &[("info", info)], "")
}

/// Polls `addr`'s answer about `channel` until `check` holds (the other node's state
/// arrives through Redis a moment after the change).
fn wait_info(addr: &str, channel: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = channel_info(addr, channel);
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{addr} {channel}: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ids(succeeded: &Value) -> Vec<String> {
    let mut ids: Vec<String> = (succeeded["presence"]["ids"].as_array().expect("ids").iter())
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn presence_spans_nodes_once_per_user() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let b = node(&redis, "b", &APP);
    let ch = "presence-room";
    let (mut x, id_x) = connect(&a.addr);
    assert_eq!(ids(&join(&mut x, &id_x, ch, "u1")), ["u1"]);
    wait_info(&b.addr, ch, |v| v["user_count"] == 1);
    // u2 on b sees u1 of node a in its member list; a's member hears of u2 once.
    let (mut y, id_y) = connect(&b.addr);
    let snap = join(&mut y, &id_y, ch, "u2");
    assert_eq!(ids(&snap), ["u1", "u2"], "{snap}");
    assert_eq!(snap["presence"]["count"], 2);
    assert_eq!(snap["presence"]["hash"]["u1"]["name"], "u1");
    let added = recv(&mut x);
    assert_eq!(added["event"], "pusher_internal:member_added", "{added}");
    assert!(added["data"].as_str().expect("data").contains("u2"));
    // u1 again, on b: already a member (on a), so nobody is told.
    let (mut y2, id_y2) = connect(&b.addr);
    assert_eq!(ids(&join(&mut y2, &id_y2, ch, "u1")), ["u1", "u2"]);
    let both = wait_info(&a.addr, ch, |v| v["subscription_count"] == 3);
    assert_eq!(both["user_count"], 2, "{both}");
    let users = call(
        &a.addr,
        "GET",
        &format!("/apps/1/channels/{ch}/users"),
        &[],
        "",
    );
    assert_eq!(users["users"].as_array().map(Vec::len), Some(2), "{users}");
    // u1's connection on a goes: still on b, so no member_removed anywhere. Once a's
    // registry shows it gone, an event from a follows anything a announced before it.
    drop(x);
    wait_info(&a.addr, ch, |v| v["subscription_count"] == 2);
    let body = json!({"name": "marker", "channel": ch, "data": "m"}).to_string();
    call(&a.addr, "POST", "/apps/1/events", &[], &body);
    for ws in [&mut y, &mut y2] {
        let v = recv(ws);
        assert_eq!(v["event"], "marker", "no member_removed for u1: {v}");
    }
    // u1's last connection (on b) goes: now it is removed, once.
    drop(y2);
    let v = recv(&mut y);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    assert!(v["data"].as_str().expect("data").contains("u1"));
    wait_info(&a.addr, ch, |v| v["user_count"] == 1);
    let list = call(
        &a.addr,
        "GET",
        "/apps/1/channels",
        &[("filter_by_prefix", "presence-"), ("info", "user_count")],
        "",
    );
    assert_eq!(list["channels"][ch]["user_count"], 1, "{list}");
}

/// Webhook events received, as (name, channel).
fn webhook_receiver() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve_hooks(stream, &tx));
        }
    });
    (url, rx)
}

/// Answers 200 to each POST of one connection and passes its events on.
fn serve_hooks(stream: TcpStream, tx: &mpsc::Sender<(String, String)>) {
    let mut out = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    loop {
        let mut len = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("body");
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        for e in v["events"].as_array().expect("events") {
            let name = e["name"].as_str().expect("name").to_owned();
            let channel = e["channel"].as_str().expect("channel").to_owned();
            let _ = tx.send((name, channel));
        }
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
}

fn hooked_node(redis: &RedisServer, id: &str, url: &str) -> Server {
    let mut args = APP.to_vec();
    args.extend(["--pusher-webhook-url", url]);
    node(redis, id, &args)
}

#[test]
fn occupancy_webhooks_once_per_cluster_and_debounced_across_nodes() {
    let redis = RedisServer::start();
    let (url, hooks) = webhook_receiver();
    let a = hooked_node(&redis, "a", &url);
    let b = hooked_node(&redis, "b", &url);
    let ch = "chan-x";
    let next = || {
        (hooks)
            .recv_timeout(common::READ_TIMEOUT)
            .expect("a webhook")
    };
    let (mut on_a, _) = connect(&a.addr);
    subscribe_public(&mut on_a, ch);
    assert_eq!(next(), ("channel_occupied".into(), ch.into()));
    wait_info(&b.addr, ch, |v| v["subscription_count"] == 1);
    // b's subscription joins an occupied channel; a's leaves one still occupied on b.
    let (mut on_b, _) = connect(&b.addr);
    subscribe_public(&mut on_b, ch);
    wait_info(&a.addr, ch, |v| v["subscription_count"] == 2);
    drop(on_a);
    wait_info(&b.addr, ch, |v| v["subscription_count"] == 1);
    // The cluster's last one leaves on b (b holds the vacated), a quick one comes on a:
    // neither webhook is sent.
    drop(on_b);
    wait_info(&a.addr, ch, |v| v["occupied"] == false);
    let (mut again, _) = connect(&a.addr);
    subscribe_public(&mut again, ch);
    // A marker on b: its vacated is held after chan-x's would have been, so every webhook
    // about chan-x comes before it.
    let (mut m, _) = connect(&b.addr);
    subscribe_public(&mut m, "chan-m");
    drop(m);
    let mut seen = Vec::new();
    loop {
        let e = next();
        if e == ("channel_vacated".into(), "chan-m".into()) {
            break;
        }
        seen.push(e);
    }
    assert_eq!(
        seen,
        [("channel_occupied".to_owned(), "chan-m".to_owned())],
        "nothing about {ch}"
    );
    drop(again);
}

/// Collects webhooks until `marker`'s `channel_vacated` has come from each of `nodes`
/// markers; returns the events before them.
fn webhooks_until_markers(
    hooks: &mpsc::Receiver<(String, String)>,
    markers: &[&str],
) -> Vec<(String, String)> {
    let mut left: Vec<&str> = markers.to_vec();
    let mut seen = Vec::new();
    while !left.is_empty() {
        let e = hooks.recv_timeout(common::READ_TIMEOUT).expect("a webhook");
        if e.0 == "channel_vacated" && left.contains(&e.1.as_str()) {
            left.retain(|m| *m != e.1);
        } else {
            seen.push(e);
        }
    }
    seen
}

/// A node killed with SIGKILL (it closes nothing, publishes nothing) is forgotten by the
/// others once silent for `pusher::liveness::SILENT_FOR`: its presence user is removed on
/// the survivors' channels (`member_removed` to their subscribers), their HTTP API stops
/// counting it, and the webhooks its departure means are sent once per cluster (by the
/// live node with the smallest id).
#[test]
fn a_killed_node_is_forgotten_with_its_members_once_per_cluster() {
    let redis = RedisServer::start();
    let (url, hooks) = webhook_receiver();
    let a = hooked_node(&redis, "a", &url);
    let doomed = hooked_node(&redis, "b", &url);
    let c = hooked_node(&redis, "c", &url);
    let (room, solo) = ("presence-room", "chan-b");
    // The doomed node has a presence member in `room` (also watched from a) and the only
    // subscription to `solo`.
    let (mut ghost, id_g) = connect(&doomed.addr);
    join(&mut ghost, &id_g, room, "ghost");
    subscribe_public(&mut ghost, solo);
    for node in [&a, &c] {
        wait_info(&node.addr, room, |v| v["user_count"] == 1);
        wait_info(&node.addr, solo, |v| v["subscription_count"] == 1);
    }
    let (mut watcher, id_w) = connect(&a.addr);
    assert_eq!(ids(&join(&mut watcher, &id_w, room, "u1")), ["ghost", "u1"]);
    wait_info(&c.addr, room, |v| v["user_count"] == 2);
    doomed.signal(libc::SIGKILL);
    // a's subscriber hears the ghost go, once its node is forgotten.
    let v = recv(&mut watcher);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    assert!(v["data"].as_str().expect("data").contains("ghost"), "{v}");
    for node in [&a, &c] {
        let v = wait_info(&node.addr, room, |v| v["user_count"] == 1);
        assert_eq!(v["subscription_count"], 1, "{v}");
        wait_info(&node.addr, solo, |v| v["occupied"] == false);
    }
    // A marker on each survivor (a vacated webhook is held by the debounce as the ones about
    // the dead node were): what either survivor sent about it comes before its marker.
    for (node, marker) in [(&a, "chan-ma"), (&c, "chan-mc")] {
        let (mut m, _) = connect(&node.addr);
        subscribe_public(&mut m, marker);
        drop(m);
    }
    let mut seen = webhooks_until_markers(&hooks, &["chan-ma", "chan-mc"]);
    seen.retain(|(name, ch)| {
        !(name == "channel_occupied" || name == "member_added" || ch.starts_with("chan-m"))
    });
    seen.sort();
    assert_eq!(
        seen,
        [
            ("channel_vacated".to_owned(), solo.to_owned()),
            ("member_removed".to_owned(), room.to_owned()),
        ],
        "each once, from one node"
    );
}

/// `ghost`, a presence member of `room` on node `from`, seen by `u1`'s connection on node
/// `on`: (ghost's connection, u1's).
fn ghost_and_watcher(from: &Server, on: &Server, room: &str) -> (Client, Client) {
    let (mut ghost, id_g) = connect(&from.addr);
    join(&mut ghost, &id_g, room, "ghost");
    wait_info(&on.addr, room, |v| v["user_count"] == 1);
    let (mut watcher, id_w) = connect(&on.addr);
    assert_eq!(ids(&join(&mut watcher, &id_w, room, "u1")), ["ghost", "u1"]);
    (ghost, watcher)
}

/// A node that hears nobody because its own Redis link is down cannot tell that from
/// everybody else dying: it forgets nobody (its subscribers keep the other nodes' members)
/// and, once the link is back, gives each node it knew a whole window again; a node that
/// died meanwhile is then forgotten as usual.
#[test]
fn nobody_is_forgotten_while_redis_is_down_and_the_dead_go_after() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let b = node(&redis, "b", &APP);
    let room = "presence-room";
    let (_ghost, mut watcher) = ghost_and_watcher(&b, &a, room);
    redis.kill();
    common::proc::wait_eq("a's bus up", 0, || a.metric("ringcast_cluster_up"));
    // Nothing to await here: the point is what does NOT happen in the time that forgets a
    // silent node (5 s) with a beat to spare.
    std::thread::sleep(Duration::from_secs(7));
    redis.restart();
    for n in [&a, &b] {
        n.wait_cluster_up();
    }
    let body = json!({"name": "marker", "channel": room, "data": "m"}).to_string();
    call(&a.addr, "POST", "/apps/1/events", &[], &body);
    let v = recv(&mut watcher);
    assert_eq!(
        v["event"], "marker",
        "nobody removed while Redis was down: {v}"
    );
    assert_eq!(channel_info(&a.addr, room)["user_count"], 2);
    // b dies now: forgotten like any silent node once a trusts its link again.
    b.signal(libc::SIGKILL);
    let v = recv(&mut watcher);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    wait_info(&a.addr, room, |v| v["user_count"] == 1);
}

/// A node killed and started again under the same id within the silence that forgets it:
/// its new run (in its full state) tells the others that the old one is gone, so its
/// users leave at once (`member_removed` to the others' subscribers and the webhook).
#[test]
fn a_node_restarted_under_its_id_leaves_its_old_users() {
    let redis = RedisServer::start();
    let (url, hooks) = webhook_receiver();
    let a = hooked_node(&redis, "a", &url);
    let b = hooked_node(&redis, "b", &url);
    let room = "presence-room";
    let (_ghost, mut watcher) = ghost_and_watcher(&b, &a, room);
    b.signal(libc::SIGKILL);
    // Up again well within the silence that forgets a node (it beats again at once).
    let _b = hooked_node(&redis, "b", &url);
    let v = recv(&mut watcher);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    assert!(v["data"].as_str().expect("data").contains("ghost"), "{v}");
    wait_info(&a.addr, room, |v| v["user_count"] == 1);
    loop {
        let e = hooks.recv_timeout(common::READ_TIMEOUT).expect("a webhook");
        if e == ("member_removed".to_owned(), room.to_owned()) {
            break;
        }
    }
}

/// Waits for webhook `(name, channel)`, skipping others.
fn await_hook(hooks: &mpsc::Receiver<(String, String)>, name: &str, channel: &str) {
    loop {
        let e = hooks.recv_timeout(common::READ_TIMEOUT).expect("a webhook");
        if e.0 == name && e.1 == channel {
            return;
        }
    }
}

/// A node cut off from Redis alone (its clients still connected) is forgotten by the others
/// like a dead one; when its link comes back it sends its state, and the others announce
/// its users again (`member_added` to their subscribers, the webhook from the smallest id).
#[test]
fn a_node_cut_off_is_forgotten_then_announced_again() {
    let redis = RedisServer::start();
    let (url, hooks) = webhook_receiver();
    let a = hooked_node(&redis, "a", &url);
    let link = cut::Cuttable::to(redis.url().trim_start_matches("redis://"));
    let via = format!("redis://{}", link.addr);
    let mut args = vec!["--cluster", &via, "--node-id", "b", "--workers", "2"];
    args.extend(APP);
    args.extend(["--pusher-webhook-url", &url]);
    let b = Server::start(&args);
    b.wait_cluster_up();
    let room = "presence-room";
    let (_ghost, mut watcher) = ghost_and_watcher(&b, &a, room);
    link.cut();
    let v = recv(&mut watcher);
    assert_eq!(v["event"], "pusher_internal:member_removed", "{v}");
    // Past the debounce, so the return below is not a quick reconnect that cancels it.
    await_hook(&hooks, "member_removed", room);
    link.mend();
    let v = recv(&mut watcher);
    assert_eq!(v["event"], "pusher_internal:member_added", "{v}");
    assert!(v["data"].as_str().expect("data").contains("ghost"), "{v}");
    await_hook(&hooks, "member_added", room);
    wait_info(&a.addr, room, |v| v["user_count"] == 2);
}
