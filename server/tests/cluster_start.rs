//! A cluster node's start (docs/cluster.md#starting), against the real binary and a real
//! redis-server: the listening line waits for the Redis link, so a client that publishes as
//! soon as the line is out is not dropped at the bus.
#![allow(missing_docs)]

mod common;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::time::Duration;

use common::Server;
use redis::RedisServer;

#[test]
fn the_listening_line_waits_until_redis_is_reachable() {
    // A port where Redis will listen, but not yet.
    let mut redis = RedisServer::start();
    redis.kill();
    let url = redis.url();
    let starting = std::thread::spawn(move || Server::start(&["--cluster", &url, "--no-pin"]));
    // Redis comes up late on purpose: the node must not announce itself meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !starting.is_finished(),
        "the node printed its listening line while Redis was unreachable"
    );
    redis.restart();
    let node = starting.join().expect("the node starts once Redis is up");
    // No waiting here: the line itself means the link is up.
    assert_eq!(node.metric("ringcast_cluster_up"), 1);
}
