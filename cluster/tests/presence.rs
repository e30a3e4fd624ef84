//! Presence across nodes: a Redis hash per room, entries refreshed every TTL/3, a killed node's
//! members gone within the TTL, a stopped node's members gone at once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Node, RedisServer};

const TTL: Duration = Duration::from_millis(1500);

fn entry(node: &str, client: &str, user: &str) -> (String, String, String) {
    (node.into(), client.into(), user.into())
}

#[test]
fn presence_spans_nodes_and_leave_and_shutdown_remove_entries() {
    let redis = RedisServer::start();
    let urls = [redis.url()];
    let mut a = Node::named("a", &urls, TTL);
    let mut b = Node::named("b", &urls, TTL);
    a.wait_up(true);
    b.wait_up(true);
    a.bus.presence_join("room", "1", "ana").unwrap();
    b.bus.presence_join("room", "1", "bob").unwrap();
    b.bus.presence_join("room", "2", "bea").unwrap();
    b.bus.presence_join("other", "3", "ben").unwrap();
    b.presence("room"); // barrier: b's joins are in Redis
    let both = vec![
        entry("a", "1", "ana"),
        entry("b", "1", "bob"),
        entry("b", "2", "bea"),
    ];
    assert_eq!(a.presence("room"), both);

    // Entries outlive several TTLs while their node refreshes them.
    let deadline = Instant::now() + 3 * TTL;
    while Instant::now() < deadline {
        assert_eq!(a.presence("room"), both);
        std::thread::sleep(TTL / 4);
    }

    b.bus.presence_leave("room", "2").unwrap();
    b.presence("room");
    assert_eq!(
        a.presence("room"),
        vec![entry("a", "1", "ana"), entry("b", "1", "bob")]
    );

    b.bus.shutdown();
    assert_eq!(
        a.presence("room"),
        vec![entry("a", "1", "ana")],
        "shutdown removes at once"
    );
    assert_eq!(a.presence("other"), vec![]);
}

/// The child side of the test below: a node in its own process, so the parent can SIGKILL it.
#[test]
#[ignore = "run by killed_node_vanishes_within_ttl as a child process"]
fn child_node() {
    let Ok(url) = std::env::var("RINGCAST_TEST_REDIS") else {
        return;
    };
    let mut n = Node::named("doomed", &[url], TTL);
    n.wait_up(true);
    n.bus.presence_join("room", "9", "zed").unwrap();
    n.presence("room");
    println!("READY");
    loop {
        std::thread::park();
    }
}

#[test]
fn killed_node_vanishes_within_ttl() {
    let redis = RedisServer::start();
    let urls = [redis.url()];
    let mut a = Node::named("a", &urls, TTL);
    a.wait_up(true);
    a.bus.presence_join("room", "1", "ana").unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_node",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RINGCAST_TEST_REDIS", redis.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("READY"));
    assert!(ready, "child node did not start");
    assert_eq!(
        a.presence("room"),
        vec![entry("a", "1", "ana"), entry("doomed", "9", "zed")]
    );

    child.kill().unwrap(); // SIGKILL: no cleanup runs
    let killed = Instant::now();
    child.wait().unwrap();
    // Nothing announces an expiry: poll the snapshot.
    // Its entry was last written before the kill, so any snapshot asked for a TTL after the
    // kill must be clean.
    loop {
        let asked = killed.elapsed();
        if a.presence("room") == vec![entry("a", "1", "ana")] {
            break;
        }
        assert!(
            asked < TTL,
            "ghost of a killed node {asked:?} after the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = killed.elapsed();
    // Our own entries keep being refreshed.
    std::thread::sleep(TTL);
    assert_eq!(a.presence("room"), vec![entry("a", "1", "ana")]);
    println!("killed node's member gone after {gone:?} (TTL {TTL:?})");
}
