//! Helpers shared by the cluster test files (`cluster.rs`, `cluster_presence.rs`): nodes joined
//! through a real redis-server, a bus observer of the test's own, presence waits, JSON reads.
//! Each including file also declares `mod common` and the Redis helper as `mod redis`.
#![allow(dead_code)]

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::WebSocket;

use crate::common::{Server, text};
use crate::redis::{Node as Observer, RedisServer};

/// A client connection.
pub type Client = WebSocket<TcpStream>;

/// A node named `id` joined to `redis`, with `extra` flags, once its bus link is up.
pub fn node(redis: &RedisServer, id: &str, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--cluster", &url, "--node-id", id, "--workers", "2"];
    args.extend_from_slice(extra);
    let node = Server::start(&args);
    node.wait_cluster_up();
    node
}

/// A bus client of the test's own, to read the cluster-wide presence of a room.
pub fn observer(redis: &RedisServer) -> Observer {
    let obs = Observer::named("observer", &[redis.url()], Duration::from_secs(5));
    // Its presence queries fail (Unavailable) until it is connected.
    obs.wait_up(true);
    obs
}

/// Waits until `room`'s cluster-wide presence is exactly `want` members, returns their
/// (node, client) pairs. A node registers a member after subscribing to the room on the same
/// Redis connection, so a member seen here also means its node receives the room.
pub fn wait_presence(obs: &mut Observer, room: &str, want: usize, within: Duration) -> Vec<String> {
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

/// Reads the next text message as JSON.
pub fn json(ws: &mut Client) -> serde_json::Value {
    serde_json::from_str(&text(ws)).expect("JSON")
}

/// The `client` ids of a `presence` snapshot.
pub fn clients_of(v: &serde_json::Value) -> Vec<String> {
    let list = v["clients"].as_array().unwrap_or_else(|| panic!("{v}"));
    list.iter()
        .filter_map(|c| c["client"].as_str().map(str::to_string))
        .collect()
}
