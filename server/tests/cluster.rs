//! The cluster bus through real nodes (SPEC §8): a real redis-server on a free loopback port,
//! two or three `ringcast` processes joined through it, tungstenite clients on each.

mod common;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, text};
use redis::{Node as Observer, RedisServer};
use tungstenite::{Message, WebSocket};

type Client = WebSocket<TcpStream>;

/// A node named `id` joined to `redis`, with `extra` flags.
fn node(redis: &RedisServer, id: &str, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--cluster", &url, "--node-id", id, "--workers", "2"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A bus client of the test's own, to read the cluster-wide presence of a room.
fn observer(redis: &RedisServer) -> Observer {
    let obs = Observer::named("observer", &[redis.url()], Duration::from_secs(5));
    // Its presence queries fail (Unavailable) until it is connected.
    obs.wait_up(true);
    obs
}

/// Waits until `room`'s cluster-wide presence is exactly `want` members, returns their
/// (node, client) pairs. A node registers a member after subscribing to the room on the same
/// Redis connection, so a member seen here also means its node receives the room.
fn wait_presence(obs: &mut Observer, room: &str, want: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let members = obs.presence(room);
        if members.len() == want {
            return members
                .into_iter()
                .map(|(n, c, _)| format!("{n}/{c}"))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "presence of {room}: {members:?}, wanted {want} members"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `server`'s `/metrics` shows `name` == `want` (counters of the bus thread may
/// trail the deliveries a client saw by a moment).
fn wait_metric(server: &Server, name: &str, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let v = server.metric(name);
        if v == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is {v}, never became {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_up(server: &Server, up: u64, within: Duration) {
    wait_metric(server, "ringcast_cluster_up", up, within);
}

/// Reads text messages until every marker in `ends` was seen; returns (publisher → sequence
/// numbers in arrival order). Messages are `<publisher>-<seq>` or `end-<publisher>`.
fn collect(ws: &mut Client, ends: &[&str]) -> BTreeMap<String, Vec<u64>> {
    let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut left: Vec<&str> = ends.to_vec();
    while !left.is_empty() {
        let t = text(ws);
        if let Some(p) = t.strip_prefix("end-") {
            left.retain(|e| *e != p);
            continue;
        }
        let (publisher, seq) = t.rsplit_once('-').expect("publisher-seq");
        got.entry(publisher.to_string())
            .or_default()
            .push(seq.parse().expect("seq"));
    }
    got
}

fn send_all(ws: &mut Client, name: &str, n: u64) {
    for i in 0..n {
        ws.send(Message::text(format!("{name}-{i}"))).unwrap();
    }
    ws.send(Message::text(format!("end-{name}"))).unwrap();
}

#[test]
fn bus_thread_only_with_a_cluster() {
    let threads = |s: &Server| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", s.child.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .collect()
    };
    let single = Server::start(&["--workers", "1"]);
    assert!(!threads(&single).iter().any(|t| t == "ringcast-bus"));
    assert_eq!(single.metric("ringcast_cluster_up"), 0);
    let redis = RedisServer::start();
    let clustered = node(&redis, "a", &[]);
    assert!(threads(&clustered).iter().any(|t| t == "ringcast-bus"));
    wait_up(&clustered, 1, Duration::from_secs(10));
}

#[test]
fn cross_node_delivery_in_order_without_echo_or_duplicates() {
    const N: u64 = 500;
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut obs = observer(&redis);
    let mut a_pub = a.join(Some("chat"));
    let mut b_pub = b.join(Some("chat"));
    // Several receivers on each node, so both of a node's workers get bus batches.
    let mut a_recv: Vec<Client> = (0..3).map(|_| a.join(Some("chat"))).collect();
    let mut b_recv: Vec<Client> = (0..3).map(|_| b.join(Some("chat"))).collect();
    // Another room on the same bus must stay apart.
    let mut other = b.join(Some("other"));
    wait_presence(&mut obs, "chat", 8, Duration::from_secs(10));
    wait_presence(&mut obs, "other", 1, Duration::from_secs(10));

    let pa = std::thread::spawn(move || {
        send_all(&mut a_pub, "pa", N);
        a_pub
    });
    let pb = std::thread::spawn(move || {
        send_all(&mut b_pub, "pb", N);
        b_pub
    });
    let (mut a_pub, mut b_pub) = (pa.join().unwrap(), pb.join().unwrap());
    let all: Vec<u64> = (0..N).collect();
    for ws in a_recv.iter_mut().chain(b_recv.iter_mut()) {
        let got = collect(ws, &["pa", "pb"]);
        assert_eq!(got.len(), 2, "{:?}", got.keys());
        assert_eq!(got["pa"], all, "pa's messages: complete, in order, once");
        assert_eq!(got["pb"], all, "pb's messages: complete, in order, once");
    }
    // Publishers get the other node's messages and never their own (not even via Redis).
    let got = collect(&mut a_pub, &["pb"]);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["pb"]);
    assert_eq!(got["pb"], all);
    let got = collect(&mut b_pub, &["pa"]);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["pa"]);
    assert_eq!(got["pa"], all);
    // Nothing from "chat" reached "other": its first message is the one sent to it now.
    a.join(Some("other")).send(Message::text("o")).unwrap();
    assert_eq!(text(&mut other), "o");

    // Each node published its own messages, received the other's, and delivered every message
    // exactly once per local receiver: on each node 3 receivers get both publishers' N + 1 and
    // the local publisher only the remote one's; "o" went from a to b's one member.
    for (s, received, published, deliveries) in [
        (&a, N + 1, N + 2, 7 * (N + 1)),
        (&b, N + 2, N + 1, 7 * (N + 1) + 1),
    ] {
        let sec = Duration::from_secs(1);
        wait_metric(s, "ringcast_cluster_received_total", received, sec);
        wait_metric(s, "ringcast_cluster_published_total", published, sec);
        assert_eq!(s.metric("ringcast_cluster_gaps_total"), 0);
        assert_eq!(s.metric("ringcast_cluster_dropped_total"), 0);
        assert_eq!(s.metric("ringcast_fanout_deliveries_total"), deliveries);
    }
}

#[test]
fn redis_restart_loses_only_counted_messages_and_recovers_within_5s() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut obs = observer(&redis);
    let mut publisher = a.join(Some("feed"));
    let mut receiver = b.join(Some("feed"));
    wait_presence(&mut obs, "feed", 2, Duration::from_secs(10));
    drop(obs);

    // The publisher sends every 2 ms throughout; sent[i] is when message i left.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        let mut sent = Vec::new();
        while stop_rx.try_recv().is_err() {
            publisher
                .send(Message::text(format!("p-{}", sent.len())))
                .unwrap();
            sent.push(Instant::now());
            std::thread::sleep(Duration::from_millis(2));
        }
        publisher.send(Message::text("end-p")).unwrap();
        (publisher, sent)
    });
    let reader = std::thread::spawn(move || collect(&mut receiver, &["p"]));

    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    wait_up(&a, 0, Duration::from_secs(5));
    wait_up(&b, 0, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(700));
    redis.restart();
    let back = Instant::now();
    wait_up(&a, 1, Duration::from_secs(10));
    wait_up(&b, 1, Duration::from_secs(10));
    // Run until well past the 5 s mark, then stop; the end marker arrives once all is through.
    let until = back + Duration::from_secs(6);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    stop_tx.send(()).unwrap();
    let (_publisher, sent) = sender.join().unwrap();
    let got = reader.join().unwrap().remove("p").unwrap_or_default();

    // In order, no duplicates.
    assert!(got.windows(2).all(|w| w[0] < w[1]), "order or duplicates");
    let lost = sent.len() as u64 - got.len() as u64;
    assert!(lost > 0, "the outage lost nothing: the test did not test");
    assert_eq!(
        b.metric("ringcast_cluster_gaps_total"),
        lost,
        "loss == gaps"
    );
    // Everything sent from 5 s after Redis came back arrived.
    let complete_from = back + Duration::from_secs(5);
    let received: std::collections::HashSet<u64> = got.iter().copied().collect();
    let missing_late: Vec<usize> = (0..sent.len())
        .filter(|&i| sent[i] >= complete_from && !received.contains(&(i as u64)))
        .collect();
    assert!(
        missing_late.is_empty(),
        "lost after Redis + 5 s: {missing_late:?}"
    );
    // The node logs each change of the bus state.
    let log = b.stderr();
    assert!(log.contains("cluster bus down"), "{log}");
}

#[test]
fn a_killed_node_leaves_presence_within_the_ttl() {
    let ttl = ["--cluster-presence-ttl", "1"];
    let redis = RedisServer::start();
    let mut a = node(&redis, "a", &ttl);
    let b = node(&redis, "b", &ttl);
    let mut obs = observer(&redis);
    let _a1 = a.join(Some("hall"));
    let _a2 = a.join(Some("hall"));
    let _b1 = b.join(Some("hall"));
    let b2 = b.join(Some("hall"));
    let members = wait_presence(&mut obs, "hall", 4, Duration::from_secs(10));
    assert_eq!(members.iter().filter(|m| m.starts_with("a/")).count(), 2);
    assert_eq!(members.iter().filter(|m| m.starts_with("b/")).count(), 2);
    // A pub/sub `presence` request on b lists every node's members, its own id echoed.
    let mut asker = b.join(Some("pubsub"));
    asker
        .send(Message::text(
            r#"{"op":"presence","topic":"hall","id":"q"}"#,
        ))
        .unwrap();
    let v = json(&mut asker);
    assert_eq!(
        (&v["op"], &v["id"], &v["count"]),
        (&"presence".into(), &"q".into(), &4.into()),
        "{v}"
    );
    let clients: Vec<&str> = v["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .filter_map(|c| c["client"].as_str())
        .collect();
    assert_eq!(
        clients.iter().filter(|c| c.starts_with("a")).count(),
        2,
        "{v}"
    );

    // A client that leaves is gone at once (its node removes it).
    drop(b2);
    wait_presence(&mut obs, "hall", 3, Duration::from_secs(5));

    // kill -9: nobody removes a's entries, they expire.
    a.child.kill().unwrap();
    let killed = Instant::now();
    let members = wait_presence(&mut obs, "hall", 1, Duration::from_secs(5));
    assert!(members[0].starts_with("b/"), "{members:?}");
    let took = killed.elapsed();
    assert!(took < Duration::from_millis(1500), "ghosts for {took:?}");
    asker
        .send(Message::text(r#"{"op":"presence","topic":"hall"}"#))
        .unwrap();
    assert_eq!(json(&mut asker)["count"], 1);
}

#[test]
fn bad_cluster_settings_fail_at_start() {
    let fails = |args: &[&str], why: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    };
    let long = "n".repeat(256);
    fails(
        &["--cluster", "redis://127.0.0.1:1", "--node-id", &long],
        "--node-id",
    );
    fails(&["--cluster", "http://nowhere"], "http://nowhere");
    let ttl = [
        "--cluster",
        "redis://127.0.0.1:1",
        "--cluster-presence-ttl",
        "0.01",
    ];
    fails(&ttl, "--cluster-presence-ttl");
}

#[test]
fn pubsub_publishes_cross_nodes_as_json() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut obs = observer(&redis);
    let mut subscriber = b.join(Some("pubsub"));
    subscriber
        .send(Message::text(r#"{"op":"subscribe","topic":"t","id":1}"#))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text(&mut subscriber)).unwrap();
    assert_eq!(v["op"], "subscribed", "{v}");
    // A room-mode member of the same name on the publishing node gets the raw JSON text.
    let mut member = a.join(Some("t"));
    let mut publisher = a.join(Some("pubsub"));
    wait_presence(&mut obs, "t", 2, Duration::from_secs(10));
    for i in 0..20 {
        let p = format!(r#"{{"op":"publish","topic":"t","data":{{"n": {i}}}}}"#);
        publisher.send(Message::text(p)).unwrap();
    }
    for i in 0..20 {
        let v: serde_json::Value = serde_json::from_str(&text(&mut subscriber)).unwrap();
        assert_eq!(v["op"], "message", "{v}");
        assert_eq!(v["topic"], "t");
        assert_eq!(v["data"], serde_json::json!({ "n": i }));
        assert_eq!(text(&mut member), format!(r#"{{"n": {i}}}"#));
    }
    // A topic with no member on the publishing node still reaches the other nodes.
    subscriber
        .send(Message::text(r#"{"op":"subscribe","topic":"u","id":2}"#))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text(&mut subscriber)).unwrap();
    assert_eq!(v["op"], "subscribed", "{v}");
    wait_presence(&mut obs, "u", 1, Duration::from_secs(10));
    for i in 0..5 {
        let p = format!(r#"{{"op":"publish","topic":"u","data":{i}}}"#);
        publisher.send(Message::text(p)).unwrap();
    }
    for i in 0..5 {
        let v: serde_json::Value = serde_json::from_str(&text(&mut subscriber)).unwrap();
        assert_eq!((&v["topic"], &v["data"]), (&"u".into(), &i.into()), "{v}");
    }
}

fn json(ws: &mut Client) -> serde_json::Value {
    serde_json::from_str(&text(ws)).expect("JSON")
}

#[test]
fn history_keeps_received_messages_and_a_lost_link_changes_the_epoch() {
    let mut redis = RedisServer::start();
    let history = ["--history-size", "10"];
    let a = node(&redis, "a", &history);
    let b = node(&redis, "b", &history);
    let mut obs = observer(&redis);
    let mut sub = b.join(Some("pubsub"));
    sub.send(Message::text(r#"{"op":"subscribe","topic":"h","id":1}"#))
        .unwrap();
    let v = json(&mut sub);
    assert_eq!((&v["op"], &v["offset"]), (&"subscribed".into(), &0.into()));
    let epoch = v["epoch"].as_str().expect("epoch").to_string();
    assert!(epoch.starts_with("b-"), "b's history names b: {epoch}");
    wait_presence(&mut obs, "h", 1, Duration::from_secs(10));
    drop(obs);
    let mut publisher = a.join(Some("pubsub"));
    for i in 1..=3 {
        let p = format!(r#"{{"op":"publish","topic":"h","data":{i}}}"#);
        publisher.send(Message::text(p)).unwrap();
    }
    // b numbers what it received in its own history.
    for i in 1..=3 {
        let v = json(&mut sub);
        assert_eq!((&v["data"], &v["offset"]), (&i.into(), &i.into()), "{v}");
    }
    let mut late = b.join(Some("pubsub"));
    late.send(Message::text(
        r#"{"op":"subscribe","topic":"h","id":2,"since":{"last":2}}"#,
    ))
    .unwrap();
    let v = json(&mut late);
    assert_eq!(
        (&v["offset"], &v["epoch"]),
        (&3.into(), &epoch.clone().into())
    );
    assert_eq!(json(&mut late)["data"], 2, "replayed from b's history");
    assert_eq!(json(&mut late)["data"], 3);

    // Redis dies: b cannot know what it missed, so nobody may recover across the hole.
    redis.kill();
    wait_up(&b, 0, Duration::from_secs(5));
    let mut after = b.join(Some("pubsub"));
    let since = format!(r#"{{"offset":3,"epoch":"{epoch}"}}"#);
    let req = format!(r#"{{"op":"subscribe","topic":"h","id":3,"since":{since}}}"#);
    after.send(Message::text(req)).unwrap();
    let v = json(&mut after);
    assert_eq!(v["recovered"], false, "{v}");
    assert_ne!(v["epoch"], epoch.as_str(), "{v}");
}

/// The `client` ids of a `presence` snapshot.
fn clients_of(v: &serde_json::Value) -> Vec<String> {
    let list = v["clients"].as_array().unwrap_or_else(|| panic!("{v}"));
    list.iter()
        .filter_map(|c| c["client"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_presence_subscribe_snapshot_lists_every_node_then_local_events() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut obs = observer(&redis);
    // A member on node a, seen in Redis before b's subscriber asks.
    let _on_a = a.join(Some("lobby"));
    let on_a = wait_presence(&mut obs, "lobby", 1, Duration::from_secs(10));
    let mut sub = b.join(Some("pubsub"));
    sub.send(Message::text(
        r#"{"op":"subscribe","topic":"lobby","id":1,"presence":true}"#,
    ))
    .unwrap();
    assert_eq!(json(&mut sub)["op"], "subscribed");
    let v = json(&mut sub);
    assert_eq!(
        (&v["op"], &v["count"]),
        (&"presence".into(), &2.into()),
        "{v}"
    );
    let clients = clients_of(&v);
    let a_client = on_a[0].strip_prefix("a/").expect("a's member");
    assert!(
        clients.iter().any(|c| c == a_client),
        "{v} lacks {a_client}"
    );
    // Then events, after the snapshot: a member joining on a is one `join` (from the bus), one
    // joining on b (on either worker) too (from b's registry).
    let _more_on_a = a.join(Some("lobby"));
    let v = json(&mut sub);
    assert_eq!(v["op"], "join", "{v}");
    let on_a = wait_presence(&mut obs, "lobby", 3, Duration::from_secs(10));
    assert!(
        on_a.iter()
            .any(|m| m.ends_with(v["client"].as_str().expect("client")))
    );
    let b_member = b.join(Some("lobby"));
    let v = json(&mut sub);
    assert_eq!(v["op"], "join", "{v}");
    let joined = v["client"].as_str().expect("client").to_string();
    assert!(!clients.contains(&joined), "{v}");
    drop(b_member);
    let v = json(&mut sub);
    assert_eq!(
        (&v["op"], &v["client"]),
        (&"leave".into(), &joined.into()),
        "{v}"
    );
    // Asked again on an existing subscription: the snapshot spans both nodes too.
    sub.send(Message::text(
        r#"{"op":"subscribe","topic":"lobby","presence":true}"#,
    ))
    .unwrap();
    let v = json(&mut sub);
    assert_eq!(
        (&v["op"], &v["count"]),
        (&"presence".into(), &3.into()),
        "{v}"
    );
}

#[test]
fn a_cluster_presence_snapshot_comes_before_the_replay_and_live_messages() {
    let redis = RedisServer::start();
    let history = ["--history-size", "100"];
    let a = node(&redis, "a", &history);
    let b = node(&redis, "b", &history);
    let mut obs = observer(&redis);
    // b receives the topic (a member there) before a publishes, so its history fills.
    let mut first = b.join(Some("pubsub"));
    first
        .send(Message::text(r#"{"op":"subscribe","topic":"h","id":1}"#))
        .unwrap();
    assert_eq!(json(&mut first)["op"], "subscribed");
    let _member_on_a = a.join(Some("h"));
    wait_presence(&mut obs, "h", 2, Duration::from_secs(10));
    // a publishes continuously while b's second subscriber asks for presence and a replay.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publishing = {
        let stop = stop.clone();
        let mut publisher = a.join(Some("pubsub"));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let p = format!(r#"{{"op":"publish","topic":"h","data":{i}}}"#);
                publisher.send(Message::text(p)).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
    };
    // Wait (on the first subscriber) until b's history holds 20 messages.
    for i in 1..=20u64 {
        assert_eq!(json(&mut first)["data"], i);
    }
    let mut sub = b.join(Some("pubsub"));
    sub.send(Message::text(
        r#"{"op":"subscribe","topic":"h","id":2,"presence":true,"since":{"last":10}}"#,
    ))
    .unwrap();
    let v = json(&mut sub);
    assert_eq!(v["op"], "subscribed", "{v}");
    let through = v["offset"].as_u64().expect("offset");
    let v = json(&mut sub);
    assert_eq!(
        (&v["op"], &v["count"]),
        (&"presence".into(), &3.into()),
        "SPEC §5: the snapshot right after `subscribed`: {v}"
    );
    // Then the replay (the last 10) and live messages, each offset once, in order.
    for offset in through - 9..through + 50 {
        let v = json(&mut sub);
        assert_eq!(
            (&v["op"], &v["offset"]),
            (&"message".into(), &offset.into()),
            "{v}"
        );
        assert_eq!(v["data"], offset, "a's n-th publish is b's offset n");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(publishing.join().expect("publisher") > 60);
}

#[test]
fn joins_and_leaves_on_another_node_are_events_each_exactly_once() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut obs = observer(&redis);
    let _first_on_a = a.join(Some("lobby"));
    wait_presence(&mut obs, "lobby", 1, Duration::from_secs(10));
    let mut watcher = b.join(Some("pubsub"));
    watcher
        .send(Message::text(
            r#"{"op":"subscribe","topic":"lobby","id":1,"presence":true}"#,
        ))
        .unwrap();
    assert_eq!(json(&mut watcher)["op"], "subscribed");
    let snap = json(&mut watcher);
    assert_eq!(
        (&snap["op"], &snap["count"]),
        (&"presence".into(), &2.into()),
        "{snap}"
    );
    let mut known = clients_of(&snap);
    // Members join on a, one by one, then leave in another order: each change once, in order.
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(a.join(Some("lobby")));
        let v = json(&mut watcher);
        assert_eq!(v["op"], "join", "{v}");
        let client = v["client"].as_str().expect("client").to_string();
        assert!(!known.contains(&client), "joined twice: {v}");
        known.push(client);
    }
    for i in [1, 0, 2] {
        let member = members.remove(i.min(members.len() - 1));
        drop(member);
        let v = json(&mut watcher);
        assert_eq!(v["op"], "leave", "{v}");
        let client = v["client"].as_str().expect("client");
        let at = known.iter().position(|c| c == client);
        assert!(at.is_some(), "left without being there: {v}");
        known.remove(at.unwrap_or_default());
    }
    // Nothing more, nothing repeated: the next message is the answer to a new snapshot, and
    // it lists exactly what the events left.
    watcher
        .send(Message::text(r#"{"op":"presence","topic":"lobby","id":2}"#))
        .unwrap();
    let v = json(&mut watcher);
    assert_eq!(v["op"], "presence", "no extra event before it: {v}");
    let (mut now, mut want) = (clients_of(&v), known.clone());
    now.sort();
    want.sort();
    assert_eq!(now, want, "{v}");
}

#[test]
fn a_snapshot_taken_during_churn_on_another_node_plus_its_events_is_exact() {
    const CHURNERS: usize = 2;
    const WATCHERS: usize = 24;
    let redis = RedisServer::start();
    let a = node(&redis, "a", &[]);
    let b = node(&redis, "b", &[]);
    let mut obs = observer(&redis);
    let mut pinned = b.join(Some("pubsub")); // b receives the topic before the churn
    pinned
        .send(Message::text(
            r#"{"op":"subscribe","topic":"churn","id":1}"#,
        ))
        .unwrap();
    assert_eq!(json(&mut pinned)["op"], "subscribed");
    wait_presence(&mut obs, "churn", 1, Duration::from_secs(10));
    // a's members only: b's own (the watchers) are local events, ordered by b's registry.
    let on_a = |v: &serde_json::Value| -> Vec<String> {
        let mut c: Vec<_> = (clients_of(v).into_iter())
            .filter(|c| c.starts_with("a."))
            .collect();
        c.sort();
        c
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    /// Stops the churn however the checks end (a failed assertion included).
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let stopping = Stop(&stop);
        let churn = |_| {
            let mut members = Vec::new();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                if members.len() < 4 || i.is_multiple_of(3) {
                    members.push(a.join(Some("churn")));
                } else {
                    drop(members.swap_remove(i % members.len()));
                }
            }
            members
        };
        let churners: Vec<_> = (0..CHURNERS).map(|n| s.spawn(move || churn(n))).collect();
        // Watchers subscribe at different points of the churn; each checks its snapshot plus
        // its events against a `presence` request answered in the middle of the churn too
        // (its answer is ordered among the bus envelopes the same way).
        let mut watchers = Vec::new();
        for _ in 0..WATCHERS {
            std::thread::sleep(Duration::from_millis(5));
            let mut w = b.join(Some("pubsub"));
            w.send(Message::text(
                r#"{"op":"subscribe","topic":"churn","id":1,"presence":true}"#,
            ))
            .unwrap();
            watchers.push(w);
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut events = 0;
        for w in &mut watchers {
            w.send(Message::text(r#"{"op":"presence","topic":"churn","id":9}"#))
                .unwrap();
        }
        for w in &mut watchers {
            assert_eq!(json(w)["op"], "subscribed");
            let snap = json(w);
            assert_eq!(snap["op"], "presence", "{snap}");
            let mut view = on_a(&snap);
            loop {
                let v = json(w);
                let client = v["client"].as_str().unwrap_or_default().to_string();
                match v["op"].as_str() {
                    Some("join") if client.starts_with("a.") => {
                        assert!(!view.contains(&client), "join of a present member: {v}");
                        view.push(client);
                        events += 1;
                    }
                    Some("leave") if client.starts_with("a.") => {
                        let at = view.iter().position(|c| *c == client);
                        assert!(at.is_some(), "leave of an absent member: {v}");
                        view.remove(at.unwrap_or_default());
                        events += 1;
                    }
                    Some("join" | "leave") => {}
                    _ => {
                        assert_eq!((&v["op"], &v["id"]), (&"presence".into(), &9.into()), "{v}");
                        view.sort();
                        assert_eq!(view, on_a(&v), "snapshot + events = the presence then");
                        break;
                    }
                }
            }
        }
        drop(stopping);
        for c in churners {
            drop(c.join().expect("churn"));
        }
        assert!(events > 0, "the watchers saw a's churn");
    });
}
