//! Issue 21 row 11, cluster part: what a faulty or hostile Redis writer can put on the bus's
//! channels and hashes is handled without lies: a sequence going backwards breaks continuity
//! (a `Gap` event) instead of being delivered again silently, counters never go backwards,
//! one bad presence entry is skipped (and counted) instead of failing the whole answer, and an
//! expiry no node could have written is not listed.

mod common;

use std::time::Duration;

use common::{Node, RedisServer, envelope_v1};
use ringcast_cluster::BusEvent;

/// A plain (synchronous) connection to `redis`, for writing crafted data the way a faulty or
/// hostile Redis client would. (Not in `common`: the server's tests share it without `redis`.)
fn raw(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

/// What `node` emits for one envelope: the gap events before it, then its texts.
fn next_delivery(node: &Node) -> (Vec<u64>, Vec<String>) {
    let mut gaps = Vec::new();
    let texts = node.wait_for(WAIT, "messages", |e| match e {
        BusEvent::Gap { missed, .. } => {
            gaps.push(missed);
            None
        }
        BusEvent::Messages { messages, .. } => Some(
            messages
                .iter()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
                .collect::<Vec<_>>(),
        ),
        _ => None,
    });
    (gaps, texts)
}

#[test]
fn backwards_sequence_is_a_gap_event_and_gap_counter_never_goes_back() {
    let redis = RedisServer::start();
    let mut b = Node::named("sink", &[redis.url()], Duration::from_secs(5));
    b.wait_up(true);
    b.bus.subscribe("r").unwrap();
    b.presence("r");
    let mut con = raw(&redis);
    let mut publish = |first: u64, text: &str| {
        let env = envelope_v1("forger", first, &[text]);
        let n: i64 = redis::cmd("PUBLISH")
            .arg("ringcast:room:r")
            .arg(env)
            .query(&mut con)
            .unwrap();
        assert_eq!(n, 1, "the sink listens");
    };

    publish(1, "a");
    assert_eq!(next_delivery(&b), (vec![], vec!["a".to_owned()]));
    publish(2, "b");
    assert_eq!(next_delivery(&b), (vec![], vec!["b".to_owned()]));
    // The same sequence again: not a silent second delivery; continuity breaks (missed unknown).
    publish(1, "a");
    assert_eq!(next_delivery(&b), (vec![0], vec!["a".to_owned()]));
    // A new baseline: the next one is in order.
    publish(2, "b");
    assert_eq!(next_delivery(&b), (vec![], vec!["b".to_owned()]));
    assert_eq!(
        b.bus.stats().gaps,
        0,
        "a restart is not a count of lost messages"
    );

    // Sequences near u64::MAX: the gap counter saturates, it never wraps back.
    publish(u64::MAX - 10, "c");
    assert_eq!(next_delivery(&b).0, vec![u64::MAX - 13]);
    let high = b.bus.stats().gaps;
    assert_eq!(high, u64::MAX - 13);
    publish(1, "d"); // backwards: a restart
    assert_eq!(next_delivery(&b).0, vec![0]);
    publish(u64::MAX - 1, "e");
    assert_eq!(next_delivery(&b).0, vec![u64::MAX - 3]);
    let after = b.bus.stats().gaps;
    assert!(after >= high, "gaps went backwards: {high} -> {after}");
    assert_eq!(after, u64::MAX);
}

#[test]
fn bad_presence_entries_are_skipped_and_counted_not_the_whole_answer() {
    let redis = RedisServer::start();
    let mut b = Node::named("sink", &[redis.url()], Duration::from_secs(5));
    b.wait_up(true);
    b.bus.subscribe("p").unwrap();
    b.bus.presence_join("p", "c1", "ana").unwrap();
    assert_eq!(
        b.presence("p"),
        [("sink".into(), "c1".into(), "ana".into())]
    );

    let mut con = raw(&redis);
    let far_future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 10 * 365 * 24 * 3600 * 1000;
    let key = "ringcast:presence:p";
    let _: () = redis::cmd("HSET")
        .arg(key)
        .arg(&b"other\n\xff\xfe"[..]) // not UTF-8
        .arg(format!("{far_future}\nx"))
        .arg("ghost\ng1") // an expiry no node sets: listed forever before
        .arg(format!("{far_future}\nghost"))
        .arg("other\nc2")
        .arg(&b"99999999999999\n\xc3"[..]) // user not UTF-8
        .query(&mut con)
        .unwrap();
    assert_eq!(
        b.presence("p"),
        [("sink".into(), "c1".into(), "ana".into())],
        "the good entry is still listed"
    );
    assert_eq!(b.bus.stats().bad_presence, 3);
    // Bad entries are removed on the way, like expired ones: the HDEL is queued after the
    // answer, so wait for it (bounded) rather than race it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<Vec<u8>> = redis::cmd("HKEYS").arg(key).query(&mut con).unwrap();
        if left == [b"sink\nc1".to_vec()] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bad entries never removed: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
