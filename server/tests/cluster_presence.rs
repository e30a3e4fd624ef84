//! Presence across nodes (docs/pubsub.md#presence, docs/cluster.md#presence) through real nodes and a real redis-server: the snapshot
//! a `presence:true` subscribe gets lists every node's members and comes before the replay and
//! live messages; joins and leaves on other nodes are events, each exactly once after it.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::time::Duration;

use nodes::{clients_of, json, node, observer, wait_presence};
use redis::RedisServer;
use tungstenite::Message;

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
        "docs/pubsub.md: the snapshot right after `subscribed`: {v}"
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
