//! The cluster bus through real nodes (docs/cluster.md): a real redis-server on a free loopback port,
//! two or three `ringcast` processes joined through it, tungstenite clients on each.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Server, text};
use nodes::{Client, json, node, observer, wait_presence};
use redis::RedisServer;
use tungstenite::Message;

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
