//! Issue 21 row 10: two running nodes with the same node id are detected (each counts
//! `duplicate_node_id` and logs an error at most once a minute); a node restarted under its
//! old id (the dead one's claim still in Redis) is not.

mod common;

use std::time::{Duration, Instant};

use common::{Node, RedisServer};

/// A plain (synchronous) connection to `redis` (not in `common`: the server's tests share it
/// without the `redis` crate).
fn raw(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

const TTL: Duration = Duration::from_millis(300); // claims refreshed every 100 ms

fn wait_duplicate(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.bus.stats().duplicate_node_id == 0 {
        assert!(Instant::now() < deadline, "{:?}", node.bus.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_live_nodes_with_one_id_are_detected_a_restarted_one_is_not() {
    let redis = RedisServer::start();
    let urls = [redis.url()];

    // A node shut down and started again under the same id: its old claim is still in Redis.
    let old = Node::named("solo", &urls, TTL);
    old.wait_up(true);
    let mut con = raw(&redis);
    let claimed = |con: &mut redis::Connection| -> Option<String> {
        redis::cmd("GET")
            .arg("ringcast:node:solo")
            .query(con)
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while claimed(&mut con).is_none() {
        assert!(Instant::now() < deadline, "no claim written");
        std::thread::sleep(Duration::from_millis(10));
    }
    old.bus.shutdown();
    let old_claim = claimed(&mut con);
    let new = Node::named("solo", &urls, TTL);
    new.wait_up(true);
    while claimed(&mut con) == old_claim {
        assert!(Instant::now() < deadline, "the new node never claimed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Several refresh periods (an observation window, nothing to wait for): no alarm.
    std::thread::sleep(TTL * 2);
    assert_eq!(new.bus.stats().duplicate_node_id, 0);

    // Two live nodes sharing an id: both notice within a few refresh periods.
    let a = Node::named("twin", &urls, TTL);
    let b = Node::named("twin", &urls, TTL);
    a.wait_up(true);
    b.wait_up(true);
    wait_duplicate(&a);
    wait_duplicate(&b);
    assert_eq!(new.bus.stats().duplicate_node_id, 0, "other ids unaffected");
}
