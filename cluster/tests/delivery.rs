//! Cross-node delivery through a real redis-server: order per publisher, no echo, unsubscribe,
//! drops on a full queue seen as gaps.

mod common;

use std::time::Duration;

use common::{Node, RedisServer};
use ringcast_cluster::{BusConfig, BusEvent, BusMessage, MessageKind};

const WAIT: Duration = Duration::from_secs(10);

fn text(s: String) -> BusMessage {
    BusMessage::new(MessageKind::Text, s)
}

/// Collects `want` messages of `room` (any origin), failing on our own or on gaps.
fn collect(node: &Node, room: &str, want: usize) -> Vec<(String, BusMessage)> {
    let mut got = Vec::new();
    while got.len() < want {
        node.wait_for(WAIT, "messages", |e| match e {
            BusEvent::Messages {
                room: r,
                origin,
                messages,
            } if &*r == room => {
                assert_ne!(&*origin, node.bus.node_id(), "own message echoed");
                got.extend(messages.into_iter().map(|m| (origin.to_string(), m)));
                Some(())
            }
            BusEvent::Gap { .. } => panic!("unexpected gap: {e:?}"),
            _ => None,
        });
    }
    got
}

/// Nodes `node-a` and `node-b` on `redis`, both up.
fn two_nodes(redis: &RedisServer) -> (Node, Node) {
    let urls = [redis.url()];
    let a = Node::named("node-a", &urls, Duration::from_secs(5));
    let b = Node::named("node-b", &urls, Duration::from_secs(5));
    a.wait_up(true);
    b.wait_up(true);
    (a, b)
}

#[test]
fn cross_node_delivery_in_order_without_echo() {
    let redis = RedisServer::start();
    let (mut a, mut b) = two_nodes(&redis);
    for n in [&a, &b] {
        n.bus.subscribe("lobby").unwrap();
    }
    a.presence("lobby");
    b.presence("lobby");

    // Both publish at once, turns of 1..=3 messages, with every kind.
    let (mut sent_a, mut sent_b) = (0, 0);
    for i in 0..600 {
        let turn: Vec<_> = (0..1 + i % 3)
            .map(|j| {
                sent_a += 1;
                match j {
                    0 => text(format!("a{}", sent_a - 1)),
                    1 => BusMessage::new(
                        MessageKind::Binary,
                        format!("a{}", sent_a - 1).into_bytes(),
                    ),
                    _ => BusMessage::new(MessageKind::Json, format!("a{}", sent_a - 1)),
                }
            })
            .collect();
        a.bus.try_publish("lobby", turn).unwrap();
        if i % 2 == 0 {
            b.bus
                .try_publish("lobby", vec![text(format!("b{sent_b}"))])
                .unwrap();
            sent_b += 1;
        }
    }
    let at_b = collect(&b, "lobby", sent_a);
    let at_a = collect(&a, "lobby", sent_b);
    for (i, (origin, m)) in at_b.iter().enumerate() {
        assert_eq!(origin, "node-a");
        assert_eq!(&m.payload[..], format!("a{i}").as_bytes(), "order kept");
    }
    let kinds: Vec<_> = at_b.iter().take(6).map(|(_, m)| m.kind).collect();
    use MessageKind::*;
    assert_eq!(kinds, [Text, Text, Binary, Text, Binary, Json]);
    for (i, (origin, m)) in at_a.iter().enumerate() {
        assert_eq!(origin, "node-b");
        assert_eq!(&m.payload[..], format!("b{i}").as_bytes());
    }
    // Barrier: replies come in order, so each node's publishes are acknowledged (and counted).
    a.presence("lobby");
    b.presence("lobby");
    let (sa, sb) = (a.bus.stats(), b.bus.stats());
    assert!(sa.up && sb.up);
    assert_eq!(
        (sa.published, sa.received, sa.gaps, sa.dropped),
        (sent_a as u64, sent_b as u64, 0, 0)
    );
    assert_eq!(
        (sb.published, sb.received, sb.gaps, sb.dropped),
        (sent_b as u64, sent_a as u64, 0, 0)
    );

    // After unsubscribe nothing more of that room arrives. A fence room proves it: A's publishes
    // reach Redis in order, so B sees the fence only after anything A sent before it.
    b.bus.unsubscribe("lobby").unwrap();
    b.bus.subscribe("fence").unwrap();
    b.presence("fence");
    a.bus
        .try_publish("lobby", vec![text("late".into())])
        .unwrap();
    a.bus
        .try_publish("fence", vec![text("fence".into())])
        .unwrap();
    b.wait_for(WAIT, "fence", |e| match e {
        BusEvent::Messages { room, .. } if &*room == "lobby" => {
            panic!("delivered after unsubscribe")
        }
        BusEvent::Messages { room, .. } if &*room == "fence" => Some(()),
        _ => None,
    });
    a.bus.shutdown();
    b.bus.shutdown();
    assert!(a.bus.try_publish("lobby", vec![text("x".into())]).is_err());
}

#[test]
fn queue_full_drops_are_counted_and_seen_as_gaps() {
    let redis = RedisServer::start();
    let urls = [redis.url()];
    let mut cfg = BusConfig::new(urls.clone());
    cfg.node_id = "burst".into();
    cfg.queue_capacity = 4;
    let a = Node::start(cfg);
    let mut b = Node::named("sink", &urls, Duration::from_secs(5));
    a.wait_up(true);
    b.wait_up(true);
    b.bus.subscribe("r").unwrap();
    b.presence("r");

    let mut sent = 0u64;
    for i in 0..20_000 {
        let _ = a.bus.try_publish("r", vec![text(format!("{i}"))]);
        sent += 1;
    }
    // A last message that gets through reveals any trailing drop as a gap.
    while a.bus.try_publish("r", vec![text("last".into())]).is_err() {
        sent += 1;
        std::thread::yield_now();
    }
    sent += 1;
    let dropped = a.bus.stats().dropped;
    assert!(dropped > 0, "the burst should overflow a 4-slot queue");
    let (mut received, mut gaps, mut last_index) = (0u64, 0u64, -1i64);
    loop {
        let done = b.wait_for(WAIT, "messages", |e| match e {
            BusEvent::Gap { missed, .. } => {
                gaps += missed;
                Some(false)
            }
            BusEvent::Messages { messages, .. } => {
                received += messages.len() as u64;
                let mut last = false;
                for m in messages {
                    if &m.payload[..] == b"last" {
                        last = true;
                    } else {
                        let i: i64 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                        assert!(i > last_index, "order kept across drops");
                        last_index = i;
                    }
                }
                Some(last)
            }
            _ => None,
        });
        if done {
            break;
        }
    }
    assert_eq!(
        received + gaps,
        sent,
        "every message either arrived or is a counted gap"
    );
    assert_eq!(gaps, dropped);
    assert_eq!(b.bus.stats().gaps, gaps);
}

#[test]
fn rooms_shard_over_several_redis_and_one_outage_stays_local() {
    let mut r0 = RedisServer::start();
    let r1 = RedisServer::start();
    let urls = [r0.url(), r1.url()];
    let a = Node::named("a", &urls, Duration::from_secs(5));
    let mut b = Node::named("b", &urls, Duration::from_secs(5));
    a.wait_up(true);
    b.wait_up(true);
    let on = |shard: usize| {
        (0..)
            .map(|i| format!("room{i}"))
            .find(|r| ringcast_cluster::shard_of(r, 2) == shard)
            .unwrap()
    };
    let (room0, room1) = (on(0), on(1));
    for r in [&room0, &room1] {
        b.bus.subscribe(r.as_str()).unwrap();
        b.presence(r);
    }
    a.bus
        .try_publish(room0.as_str(), vec![text("zero".into())])
        .unwrap();
    a.bus
        .try_publish(room1.as_str(), vec![text("one".into())])
        .unwrap();
    let mut rooms = Vec::new();
    while rooms.len() < 2 {
        rooms.push(b.wait_for(WAIT, "messages", |e| match e {
            BusEvent::Messages { room, .. } => Some(room.to_string()),
            _ => None,
        }));
    }
    rooms.sort();
    let mut want = vec![room0.clone(), room1.clone()];
    want.sort();
    assert_eq!(rooms, want);

    // Each room really lives on its own server: its channel has a subscriber there only.
    let numsub = |server: &RedisServer, room: &str| -> i64 {
        let client = redis::Client::open(server.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("ringcast:room:{room}"))
            .query::<Vec<(String, i64)>>(&mut c)
            .unwrap()
            .remove(0);
        n
    };
    assert_eq!((numsub(&r0, &room0), numsub(&r1, &room0)), (1, 0));
    assert_eq!((numsub(&r0, &room1), numsub(&r1, &room1)), (0, 1));

    // Losing shard 0 makes the bus not up, but shard 1's rooms keep flowing.
    r0.kill();
    b.wait_up(false);
    a.bus
        .try_publish(room1.as_str(), vec![text("still".into())])
        .unwrap();
    let got = collect(&b, &room1, 1);
    assert_eq!(&got[0].1.payload[..], b"still");
    assert!(!b.bus.stats().up);
    r0.restart();
    b.wait_up(true);
}

#[test]
fn every_burst_of_envelopes_ends_with_a_flush() {
    const N: usize = 2000;
    let redis = RedisServer::start();
    let (mut a, mut b) = two_nodes(&redis);
    b.bus.subscribe("burst").unwrap();
    b.presence("burst");
    a.presence("burst");
    for i in 0..N {
        while a
            .bus
            .try_publish("burst", vec![text(format!("{i}"))])
            .is_err()
        {
            std::thread::yield_now();
        }
    }
    // (envelopes, flushes) seen, and the longest run of envelopes without a flush.
    let (mut envelopes, mut flushes, mut run, mut longest) = (0, 0, 0, 0);
    while envelopes < N || run > 0 {
        b.wait_for(WAIT, "messages and their flush", |e| match e {
            BusEvent::Messages { .. } => {
                envelopes += 1;
                run += 1;
                Some(())
            }
            BusEvent::Flush => {
                (flushes, longest, run) = (flushes + 1, longest.max(run), 0);
                Some(())
            }
            _ => None,
        });
    }
    assert!(longest <= 256, "a burst of {longest} envelopes");
    assert!(
        flushes <= envelopes,
        "{flushes} flushes for {envelopes} envelopes"
    );
    eprintln!("{envelopes} envelopes in {flushes} bursts, longest {longest}");
}

/// Issue 21 row 3: the per-room numbering of what a node publishes is forgotten once the room
/// is idle (here after two presence refreshes of 100 ms), so many distinct topics leave nothing
/// behind; a forgotten room's next publish starts a new stream, which a receiver that still
/// follows the old one takes as a fresh start: no false gap, nothing lost.
#[test]
fn idle_rooms_forget_their_numbering_without_false_gaps() {
    let redis = RedisServer::start();
    let urls = [redis.url()];
    let a = Node::named("many", &urls, Duration::from_millis(300));
    let mut b = Node::named("sink", &urls, Duration::from_secs(5));
    a.wait_up(true);
    b.wait_up(true);
    b.bus.subscribe("keep").unwrap();
    b.presence("keep");

    a.bus.try_publish("keep", vec![text("1".into())]).unwrap();
    assert_eq!(collect(&b, "keep", 1)[0].1.payload, "1");
    for i in 0..20_000 {
        let _ = a
            .bus
            .try_publish(format!("topic-{i}"), vec![text("x".into())]);
    }
    let mut peak = 0;
    let wait_empty = |peak: &mut usize| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let rooms = a.bus.stats().sequence_rooms;
            *peak = (*peak).max(rooms);
            if rooms == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{:?}", a.bus.stats());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_empty(&mut peak);
    println!(
        "peak {peak} rooms with numbering, then 0: {:?}",
        a.bus.stats()
    );
    assert!(peak > 0);
    assert_eq!(a.bus.stats().sequence_forced_evictions, 0);
    // "keep" was forgotten too: its next message starts a new stream. `collect` fails on a gap.
    a.bus.try_publish("keep", vec![text("2".into())]).unwrap();
    assert_eq!(collect(&b, "keep", 1)[0].1.payload, "2");
    a.bus.try_publish("keep", vec![text("3".into())]).unwrap();
    assert_eq!(collect(&b, "keep", 1)[0].1.payload, "3");
    assert_eq!(b.bus.stats().gaps, 0);
}
