//! docs/cluster.md sentence by sentence, through real nodes and a real redis-server that the tests
//! inspect the way an operator would (`PUBSUB CHANNELS`, `INFO commandstats`, raw `PUBLISH`).
//!
//! | docs/cluster.md / README "Cluster" claim | test |
//! | --- | --- |
//! | `--cluster redis://HOST:PORT` joins a cluster through Redis | `cluster.rs`: `cross_node_delivery_in_order_without_echo_or_duplicates`, `bus_thread_only_with_a_cluster` |
//! | several URLs (repeated or a comma list): rooms sharded over them by a hash of the name | `rooms_shard_over_the_listed_redis_servers_by_name_hash`; bus level: `cluster/tests/delivery.rs` `rooms_shard_over_several_redis_and_one_outage_stays_local` |
//! | each node publishes what its clients send to `<prefix>:room:<name>`, `--cluster-prefix`, default `ringcast`; presence hash `<prefix>:presence:<room>`, field `<node>\n<client>` | `channel_and_presence_names_follow_the_prefix` (also: origin and per-(origin, room) sequence in each envelope) |
//! | one PUBLISH per room per event-loop turn | `a_burst_in_one_turn_is_one_publish` |
//! | subscribes to exactly the rooms that have local members | `subscribed_channels_are_exactly_the_rooms_with_local_members` |
//! | delivers messages from other nodes locally, never back to the bus | `received_messages_never_go_back_to_the_bus`; also the published counts in `cluster.rs` `cross_node_delivery_…` |
//! | every bus message carries its origin and a per-(origin, room) sequence number; gaps counted, not hidden; own envelopes dropped; `malformed` counted | `envelopes_gaps_own_origin_and_garbage`; bus level: `cluster/tests/delivery.rs` `queue_full_drops_are_counted_and_seen_as_gaps`, `wire.rs`/`gaps.rs` unit tests |
//! | a bus gap starts a new epoch for that topic (README) | `a_bus_gap_starts_a_new_epoch_for_that_topic_only` |
//! | `--node-id` defaults to a random id (README) | `node_ids_default_to_random_and_name_presence_entries` |
//! | messages from one sender reach every receiver on every node in order | `cluster.rs` `cross_node_delivery_…` |
//! | presence spans nodes; TTL refreshed; a dead node leaves no ghosts past the TTL | `cluster.rs` `a_killed_node_leaves_presence_within_the_ttl`; `cluster/tests/presence.rs` |
//! | presence spans nodes for clients: a `presence:true` snapshot lists every node's members and comes before the replay and live messages (the order of docs/pubsub.md#order-after-a-subscribe); joins and leaves on other nodes are events, each exactly once after the snapshot | `cluster_presence.rs`: `a_presence_subscribe_snapshot_lists_every_node_then_local_events`, `a_cluster_presence_snapshot_comes_before_the_replay_and_live_messages`, `joins_and_leaves_on_another_node_are_events_each_exactly_once`, `a_snapshot_taken_during_churn_on_another_node_plus_its_events_is_exact` |
//! | history per node, its epoch names the node; resuming on another node gets `recovered:false` | `resuming_on_another_node_is_not_recovered`; `cluster.rs` `history_keeps_received_messages_…` |
//! | Redis unreachable: local delivery untouched; presence answered with this node's members | `cluster_spec_outage.rs` `redis_down_local_delivery_goes_on_and_every_epoch_changes` |
//! | reconnects with backoff (README: capped at 5 s) and resubscribes | `cluster_spec_outage.rs` `an_unreachable_redis_is_retried_with_backoff`; cap: `cluster/tests/outage.rs` `reconnect_backoff_doubles_up_to_its_cap`; `redis_down_…` (channels back on the restarted Redis); `cluster.rs` `redis_restart_…` (complete within 5 s) |
//! | the bus gap is counted | `cluster.rs` `redis_restart_…` (loss == gaps); sender's `dropped` in `redis_down_…` |
//! | the epoch of every topic with history changes | `redis_down_…` (two topics) |
//! | `/metrics` and the log say so | `redis_down_…` (`ringcast_cluster_up` 0 → 1, a down and an up line) |
//! | README: a full bus queue drops and counts (`dropped` on the sender, a gap at receivers) | `cluster/tests/delivery.rs` `queue_full_drops_are_counted_and_seen_as_gaps` |
//! | README: pub/sub mode rides the same bus, also from a node with no local subscriber | `cluster.rs` `pubsub_publishes_cross_nodes_as_json` |
//! | README: without `--cluster` no bus thread | `cluster.rs` `bus_thread_only_with_a_cluster` |
//!
//! Not tested: "unless the history backend is shared" (there is no shared backend yet), and the
//! 5 s default of the backoff cap itself (the cap is tested with 400 ms; 5 s would take > 12 s).

mod common;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::time::Duration;

use common::json::{self, Ws};
use common::proc::wait_eq;
use common::resp::{Reply, Resp};
use common::{Raw, Server, text};
use redis::RedisServer;
use ringcast_protocol::frame::{OpCode, encode_masked_frame};
use tungstenite::Message;

/// A node named `id` on these Redis servers (one `--cluster` each), with `extra` flags, once
/// its bus links are up.
fn node(redis: &[&RedisServer], id: &str, extra: &[&str]) -> Server {
    let urls: Vec<String> = redis.iter().map(|r| r.url()).collect();
    let mut args = vec!["--node-id", id, "--workers", "2"];
    for u in &urls {
        args.extend(["--cluster", u.as_str()]);
    }
    args.extend_from_slice(extra);
    let node = Server::start(&args);
    node.wait_cluster_up();
    node
}

/// Nodes `a` and `b` on `redis` with `extra` flags, and a connection to look at `redis`.
fn two_nodes(redis: &RedisServer, extra: &[&str]) -> (Server, Server, Resp) {
    let a = node(&[redis], "a", extra);
    let b = node(&[redis], "b", extra);
    (a, b, Resp::connect(redis.port))
}

#[test]
fn subscribed_channels_are_exactly_the_rooms_with_local_members() {
    let redis = RedisServer::start();
    let (a, b, mut r) = two_nodes(&redis, &[]);
    let mut channels = || r.rooms("ringcast");
    assert_eq!(
        channels(),
        Vec::<String>::new(),
        "no members, no subscriptions"
    );

    let a_x = a.join(Some("x"));
    wait_eq("after a joins x", ["x"], &mut channels);
    let b_x = b.join(Some("x"));
    let b_y = b.join(Some("y"));
    let b_y2 = b.join(Some("y"));
    wait_eq("after b joins x, y", ["x", "y"], &mut channels);
    // One subscription per node with members: x on both, y on b only (two members, one SUBSCRIBE).
    let mut r2 = Resp::connect(redis.port);
    wait_eq("x subscribers", 2, || r2.numsub("ringcast:room:x"));
    assert_eq!(r2.numsub("ringcast:room:y"), 1);
    // A pub/sub subscription is a member of its room too; a publisher with no subscription is not.
    let mut sub = json::client(&a);
    json::subscribe(&mut sub, "t", "");
    let mut publisher = json::client(&b);
    json::send(
        &mut publisher,
        r#"{"op":"publish","topic":"p","data":1,"id":5}"#,
    );
    assert_eq!(json::recv(&mut publisher)["op"], "published");
    wait_eq("after a subscribes t", ["t", "x", "y"], &mut channels);

    drop(b_y);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(channels(), ["t", "x", "y"], "y still has a member on b");
    drop(b_y2);
    wait_eq("last member of y left", ["t", "x"], &mut channels);
    drop(a_x);
    wait_eq("x subscribers after a left", 1, || {
        r2.numsub("ringcast:room:x")
    });
    json::send(&mut sub, r#"{"op":"unsubscribe","topic":"t","id":2}"#);
    assert_eq!(json::recv(&mut sub)["op"], "unsubscribed");
    drop(b_x);
    wait_eq("everyone left", Vec::<String>::new(), &mut channels);
    drop(publisher);
}

/// Bus message kinds (`cluster/src/wire.rs`).
const TEXT: u8 = 1;
const JSON: u8 = 3;
/// Presence kinds (`Join`, `Leave`): a node announces its members' changes on the room channel.
const PRESENCE: [u8; 2] = [4, 5];

/// A decoded bus envelope: origin, first sequence number, (kind, payload) per message (the
/// stream id is skipped: a room's numbering restarts only after it was idle for 10 s).
struct Envelope {
    origin: String,
    first_seq: u64,
    messages: Vec<(u8, Vec<u8>)>,
}

impl Envelope {
    /// Decodes the wire format (`cluster/src/wire.rs`); panics on anything else.
    fn parse(b: &[u8]) -> Envelope {
        assert_eq!(b[..2], [0xAC, 2], "magic and version");
        let o = 3 + b[2] as usize;
        let origin = String::from_utf8(b[3..o].to_vec()).expect("UTF-8 origin");
        let o = o + 8; // the stream id (one per run of a room's numbering)
        let first_seq = u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(b[o + 8..o + 12].try_into().expect("4 bytes"));
        let (mut at, mut messages) = (o + 12, Vec::new());
        for _ in 0..count {
            let len = u32::from_le_bytes(b[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
            messages.push((b[at], b[at + 5..at + 5 + len].to_vec()));
            at += 5 + len;
        }
        assert_eq!(at, b.len(), "nothing after the last message");
        Envelope {
            origin,
            first_seq,
            messages,
        }
    }

    /// Only presence changes (`Join` / `Leave`), no message.
    fn is_presence(&self) -> bool {
        self.messages.iter().all(|(k, _)| PRESENCE.contains(k))
    }
}

/// The next `message` push on `listener`: its channel and envelope.
fn next_envelope(listener: &mut Resp) -> (String, Envelope) {
    match listener.read() {
        Reply::Array(p) if p.len() == 3 && p[0].text() == "message" => match &p[2] {
            Reply::Bulk(Some(payload)) => (p[1].text(), Envelope::parse(payload)),
            other => panic!("message without a payload: {other:?}"),
        },
        other => panic!("expected a message push, got {other:?}"),
    }
}

/// One bus envelope (`cluster/src/wire.rs`, version 1, still accepted: no stream id): origin,
/// first sequence number, messages of `kind`.
fn envelope_of(origin: &str, first_seq: u64, kind: u8, payloads: &[&str]) -> Vec<u8> {
    let mut out = vec![0xAC, 1, origin.len() as u8];
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for p in payloads {
        out.push(kind);
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// An envelope of text messages.
fn envelope(origin: &str, first_seq: u64, texts: &[&str]) -> Vec<u8> {
    envelope_of(origin, first_seq, TEXT, texts)
}

#[test]
fn channel_and_presence_names_follow_the_prefix() {
    let redis = RedisServer::start();
    let acme = node(&[&redis], "acme-1", &["--cluster-prefix", "acme"]);
    let plain = node(&[&redis], "plain-1", &[]);
    let mut r = Resp::connect(redis.port);
    // The test listens on acme's channel like any other node would.
    let mut listener = Resp::connect(redis.port);
    for room in ["x", "z"] {
        listener.send(&[b"SUBSCRIBE", format!("acme:room:{room}").as_bytes()]);
        assert_eq!(
            listener.read().texts()[..2],
            ["subscribe", &format!("acme:room:{room}")]
        );
    }

    let mut sender = acme.join(Some("x"));
    let mut other = plain.join(Some("x"));
    wait_eq(
        "channels (acme:room:z: the test's own subscription)",
        ["acme:room:x", "acme:room:z", "ringcast:room:x"]
            .map(String::from)
            .to_vec(),
        || r.channels("*:room:*"),
    );
    // Presence: a hash per room under the prefix, a field `<node>\n<client id>` per member.
    wait_eq("acme presence", 1, || {
        r.cmd_str(&["HLEN", "acme:presence:x"]).int()
    });
    let fields = r.cmd_str(&["HKEYS", "acme:presence:x"]).texts();
    assert!(fields[0].starts_with("acme-1\n"), "{fields:?}");
    wait_eq("default presence", 1, || {
        r.cmd_str(&["HLEN", "ringcast:presence:x"]).int()
    });

    // Every envelope names its origin and numbers messages per (origin, room) from 1, without
    // a hole: presence changes (the members' joins) are numbered in the same sequence.
    let mut in_z = acme.join(Some("z"));
    wait_eq("z subscribers", 2, || r.numsub("acme:room:z"));
    let mut next_seq = std::collections::HashMap::<String, u64>::new();
    let mut expect = |room: &str, text: &str| loop {
        let (channel, env) = next_envelope(&mut listener);
        let seq = next_seq.entry(channel.clone()).or_insert(1);
        assert_eq!(env.origin, "acme-1", "{channel}");
        assert_eq!(env.first_seq, *seq, "{channel}: numbered without a hole");
        *seq += env.messages.len() as u64;
        if env.is_presence() {
            continue;
        }
        assert_eq!(channel, format!("acme:room:{room}"));
        assert_eq!(env.messages, [(TEXT, text.as_bytes().to_vec())]);
        return;
    };
    for t in ["hello", "again"] {
        sender.send(Message::text(t)).unwrap();
        expect("x", t);
    }
    in_z.send(Message::text("zed")).unwrap();
    expect("z", "zed");
    // Different prefixes are different clusters: the plain node got nothing.
    let mark = envelope("test", 1, &["only this"]);
    r.cmd(&[b"PUBLISH", b"ringcast:room:x", &mark]);
    assert_eq!(text(&mut other), "only this");
    assert_eq!(plain.metric("ringcast_cluster_received_total"), 1);
}

#[test]
fn a_burst_in_one_turn_is_one_publish() {
    const N: usize = 100;
    let redis = RedisServer::start();
    let (a, b, mut r) = two_nodes(&redis, &[]);
    let (mut raw, head) = Raw::connect(&a, Some("burst"), &[]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut receiver = b.join(Some("burst"));
    wait_eq("subscribers", 2, || r.numsub("ringcast:room:burst"));

    let mut bytes = Vec::new();
    for i in 0..N {
        let payload = format!("m{i}");
        encode_masked_frame(
            &mut bytes,
            OpCode::Text,
            true,
            payload.as_bytes(),
            [7, 7, 7, 7],
        );
    }
    let before = r.publish_calls();
    raw.send_raw(&bytes);
    for i in 0..N {
        assert_eq!(text(&mut receiver), format!("m{i}"));
    }
    let calls = r.publish_calls() - before;
    println!("{N} messages in one write: {calls} PUBLISH");
    // One TCP write is read in one or a few turns, never one per message.
    assert!(
        (1..=N as u64 / 10).contains(&calls),
        "{N} messages took {calls} PUBLISHes"
    );
    wait_eq("published", N as u64, || {
        a.metric("ringcast_cluster_published_total")
    });
    assert_eq!(b.metric("ringcast_cluster_received_total"), N as u64);
}

#[test]
fn received_messages_never_go_back_to_the_bus() {
    const K: u64 = 20;
    let redis = RedisServer::start();
    let (a, b, mut r) = two_nodes(&redis, &[]);
    // The test listens on the channel: every envelope on it, with its origin, is seen.
    let mut listener = Resp::connect(redis.port);
    listener.send(&[b"SUBSCRIBE", b"ringcast:room:one-way"]);
    assert_eq!(listener.read().texts()[0], "subscribe");
    let mut sender = a.join(Some("one-way"));
    let mut receivers: Vec<Ws> = (0..3).map(|_| b.join(Some("one-way"))).collect();
    wait_eq("subscribers", 3, || r.numsub("ringcast:room:one-way"));
    // One message per turn: each is awaited everywhere before the next is sent.
    for i in 0..K {
        sender.send(Message::text(format!("{i}"))).unwrap();
        for ws in &mut receivers {
            assert_eq!(text(ws), i.to_string());
        }
    }
    // b announces its members' joins (presence) but never publishes a message it received.
    let mut from_a = 0;
    while from_a < K {
        let (_, env) = next_envelope(&mut listener);
        match env.origin.as_str() {
            "a" if !env.is_presence() => from_a += env.messages.len() as u64,
            "b" => assert!(
                env.is_presence(),
                "b published a message: {:?}",
                env.messages
            ),
            _ => {}
        }
    }
    wait_eq("a published", K, || {
        a.metric("ringcast_cluster_published_total")
    });
    assert_eq!(b.metric("ringcast_cluster_published_total"), 0);
    assert_eq!(b.metric("ringcast_cluster_received_total"), K);
}

#[test]
fn rooms_shard_over_the_listed_redis_servers_by_name_hash() {
    let (r0, r1) = (RedisServer::start(), RedisServer::start());
    // The README's two spellings: `--cluster` repeated (a) and one comma list (b).
    let a = node(&[&r0, &r1], "a", &[]);
    let list = format!("{},{}", r0.url(), r1.url());
    let b = Server::start(&["--node-id", "b", "--workers", "2", "--cluster", &list]);
    let on = |shard: usize| {
        (0..)
            .map(|i| format!("room{i}"))
            .find(|r| ringcast_cluster::shard_of(r, 2) == shard)
            .unwrap()
    };
    let rooms = [on(0), on(1)];
    let mut redis = [Resp::connect(r0.port), Resp::connect(r1.port)];
    let mut clients = Vec::new();
    for room in &rooms {
        clients.push((a.join(Some(room)), b.join(Some(room))));
    }
    for (shard, room) in rooms.iter().enumerate() {
        let r = &mut redis[shard];
        wait_eq("subscribers", 2, || {
            r.numsub(&format!("ringcast:room:{room}"))
        });
        let other = &mut redis[1 - shard];
        assert_eq!(
            other.numsub(&format!("ringcast:room:{room}")),
            0,
            "{room} only on {shard}"
        );
    }
    // The test listens on both rooms' channels on both servers (and on a sentinel channel):
    // every envelope shows where it was published. Presence changes (the members' joins) share
    // the room channels; only message envelopes are counted.
    let mut listeners = [Resp::connect(r0.port), Resp::connect(r1.port)];
    for l in &mut listeners {
        for channel in [rooms[0].as_str(), rooms[1].as_str()]
            .map(|r| format!("ringcast:room:{r}"))
            .into_iter()
            .chain(["sentinel".to_owned()])
        {
            l.send(&[b"SUBSCRIBE", channel.as_bytes()]);
            assert_eq!(l.read().texts()[0], "subscribe");
        }
    }
    // Message envelopes on `l` until the sentinel published on `r` after them: (channel, text).
    let messages_until_sentinel = |l: &mut Resp, r: &mut Resp| {
        r.cmd(&[b"PUBLISH", b"sentinel", b"x"]);
        let mut seen = Vec::new();
        loop {
            match l.read() {
                Reply::Array(p) if p.len() == 3 && p[1].text() == "sentinel" => return seen,
                Reply::Array(p) if p.len() == 3 => {
                    if let Reply::Bulk(Some(payload)) = &p[2] {
                        let env = Envelope::parse(payload);
                        if !env.is_presence() {
                            for (_, m) in env.messages {
                                seen.push((p[1].text(), String::from_utf8(m).expect("text")));
                            }
                        }
                    }
                }
                other => panic!("unexpected push {other:?}"),
            }
        }
    };
    for (shard, (from_a, at_b)) in clients.iter_mut().enumerate() {
        from_a.send(Message::text(format!("to {shard}"))).unwrap();
        assert_eq!(text(at_b), format!("to {shard}"));
    }
    for shard in 0..2 {
        let seen = messages_until_sentinel(&mut listeners[shard], &mut redis[shard]);
        assert_eq!(
            seen,
            [(
                format!("ringcast:room:{}", rooms[shard]),
                format!("to {shard}")
            )],
            "exactly the message of {} on shard {shard}",
            rooms[shard]
        );
    }
}

#[test]
fn resuming_on_another_node_is_not_recovered() {
    let redis = RedisServer::start();
    let history = ["--history-size", "10"];
    let (a, b, mut r) = two_nodes(&redis, &history);
    let mut on_a = json::client(&a);
    let epoch = json::subscribe(&mut on_a, "h", "")["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(epoch.starts_with("a-"), "{epoch}");
    // b holds the same messages at the same offsets, under its own epoch.
    let mut on_b = json::client(&b);
    json::subscribe(&mut on_b, "h", "");
    wait_eq("subscribers", 2, || r.numsub("ringcast:room:h"));
    let mut publisher = json::client(&a);
    for i in 1..=3 {
        json::send(
            &mut publisher,
            &format!(r#"{{"op":"publish","topic":"h","data":{i}}}"#),
        );
    }
    for ws in [&mut on_a, &mut on_b] {
        for i in 1..=3 {
            let v = json::recv(ws);
            assert_eq!((&v["data"], &v["offset"]), (&i.into(), &i.into()), "{v}");
        }
    }
    let since = format!(r#","since":{{"offset":1,"epoch":"{epoch}"}}"#);
    // On a, the node that holds the history, the resume is recovered ...
    let mut back = json::client(&a);
    let v = json::subscribe(&mut back, "h", &since);
    assert_eq!(
        (&v["recovered"], &v["epoch"]),
        (&true.into(), &epoch.as_str().into())
    );
    assert_eq!(json::recv(&mut back)["data"], 2);
    // ... on b it is honestly not, and nothing is replayed.
    let mut moved = json::client(&b);
    let v = json::subscribe(&mut moved, "h", &since);
    assert_eq!(v["recovered"], false, "{v}");
    assert!(v["epoch"].as_str().unwrap().starts_with("b-"), "{v}");
    json::send(
        &mut publisher,
        r#"{"op":"publish","topic":"h","data":"live"}"#,
    );
    assert_eq!(
        json::recv(&mut moved)["data"],
        "live",
        "no replay before live"
    );
}

#[test]
fn envelopes_gaps_own_origin_and_garbage() {
    let redis = RedisServer::start();
    let b = node(&[&redis], "b", &[]);
    let mut r = Resp::connect(redis.port);
    let mut member = b.join(Some("g"));
    wait_eq("subscribers", 1, || r.numsub("ringcast:room:g"));
    let mut publish = |payload: Vec<u8>| {
        assert_eq!(r.cmd(&[b"PUBLISH", b"ringcast:room:g", &payload]).int(), 1);
    };
    publish(envelope("x", 1, &["one", "two"]));
    assert_eq!(
        (text(&mut member), text(&mut member)),
        ("one".into(), "two".into())
    );
    // Sequence numbers 3..=5 never came: counted, and the next message still delivered.
    publish(envelope("x", 6, &["six"]));
    assert_eq!(text(&mut member), "six");
    wait_eq("gaps", 3, || b.metric("ringcast_cluster_gaps_total"));
    // Another origin has its own sequence; b's own envelopes and garbage are never delivered.
    publish(envelope("b", 1, &["echo"]));
    publish(b"not an envelope".to_vec());
    publish(envelope("y", 1, &["from y"]));
    assert_eq!(text(&mut member), "from y");
    wait_eq("malformed", 1, || {
        b.metric("ringcast_cluster_malformed_total")
    });
    assert_eq!(b.metric("ringcast_cluster_received_total"), 4);
    assert_eq!(b.metric("ringcast_cluster_gaps_total"), 3);
}

/// Issue 21 row 11 (server part): a forged envelope cannot splice JSON into what subscribers
/// get, and text that is not UTF-8 reaches nobody: both are dropped and counted as malformed,
/// and the next good message is delivered.
#[test]
fn forged_payloads_are_dropped_not_spliced() {
    let redis = RedisServer::start();
    let b = node(&[&redis], "b", &[]);
    let mut r = Resp::connect(redis.port);
    let mut sub = json::client(&b);
    json::subscribe(&mut sub, "g", "");
    let mut member = b.join(Some("g"));
    wait_eq("subscribers", 1, || r.numsub("ringcast:room:g"));
    let mut publish = |payload: Vec<u8>| {
        assert_eq!(r.cmd(&[b"PUBLISH", b"ringcast:room:g", &payload]).int(), 1);
    };
    publish(envelope_of("x", 1, JSON, &[r#"1,"topic":"admin""#]));
    let mut bad_text = envelope("x", 2, &["ok"]);
    let at = bad_text.len() - 2;
    bad_text[at] = 0xff; // "ok" becomes "\xffk": not UTF-8
    publish(bad_text);
    publish(envelope_of("x", 3, JSON, &[r#"{"fine":true}"#]));
    let v = json::recv(&mut sub);
    assert_eq!(
        (&v["topic"], &v["data"]),
        (&"g".into(), &serde_json::json!({"fine": true})),
        "{v}"
    );
    assert_eq!(text(&mut member), r#"{"fine":true}"#);
    wait_eq("malformed", 2, || {
        b.metric("ringcast_cluster_malformed_total")
    });
}

#[test]
fn a_bus_gap_starts_a_new_epoch_for_that_topic_only() {
    let redis = RedisServer::start();
    let b = node(&[&redis], "b", &["--history-size", "10"]);
    let mut r = Resp::connect(redis.port);
    let mut sub = json::client(&b);
    let mut epochs = Vec::new();
    for topic in ["g", "k"] {
        let v = json::subscribe(&mut sub, topic, "");
        epochs.push(v["epoch"].as_str().unwrap().to_string());
        wait_eq("subscribers", 1, || {
            r.numsub(&format!("ringcast:room:{topic}"))
        });
    }
    let mut publish = |topic: &str, seq: u64, data: &str| {
        let env = envelope_of("x", seq, JSON, &[data]);
        let channel = format!("ringcast:room:{topic}");
        assert_eq!(r.cmd(&[b"PUBLISH", channel.as_bytes(), &env]).int(), 1);
        let v = json::recv(&mut sub);
        assert_eq!(
            (&v["topic"], &v["data"]),
            (&topic.into(), &data.parse::<u64>().unwrap().into())
        );
    };
    publish("g", 1, "1");
    publish("k", 1, "1");
    // g's next envelope skips sequence number 2: g cannot know what it missed.
    publish("g", 3, "3");
    wait_eq("gaps", 1, || b.metric("ringcast_cluster_gaps_total"));
    let mut late = json::client(&b);
    let since = |i: usize| format!(r#","since":{{"offset":1,"epoch":"{}"}}"#, epochs[i]);
    let v = json::subscribe(&mut late, "g", &since(0));
    assert_eq!(v["recovered"], false, "{v}");
    assert_ne!(v["epoch"], epochs[0].as_str(), "{v}");
    let v = json::subscribe(&mut late, "k", &since(1));
    assert_eq!(
        (&v["recovered"], &v["epoch"]),
        (&true.into(), &epochs[1].as_str().into()),
        "k untouched: {v}"
    );
}

#[test]
fn node_ids_default_to_random_and_name_presence_entries() {
    let redis = RedisServer::start();
    let url = redis.url();
    let nodes: Vec<Server> = (0..2)
        .map(|_| Server::start(&["--workers", "1", "--cluster", &url]))
        .collect();
    let mut r = Resp::connect(redis.port);
    let _members: Vec<Ws> = nodes.iter().map(|n| n.join(Some("q"))).collect();
    wait_eq("members", 2, || {
        r.cmd_str(&["HLEN", "ringcast:presence:q"]).int()
    });
    let ids: std::collections::BTreeSet<String> = (r.cmd_str(&["HKEYS", "ringcast:presence:q"]))
        .texts()
        .iter()
        .filter_map(|f| Some(f.split_once('\n')?.0.to_string()))
        .collect();
    assert_eq!(ids.len(), 2, "two nodes, two ids: {ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
}
