//! docs/pusher.md#watchlists against the real binary: a connection signed in with a
//! `watchlist` hears who of those users is online, then each one's `online` (first sign-in
//! anywhere) and `offline` (last sign-in gone), once per change, across workers and across
//! cluster nodes (a real redis-server), also when the node a user was on dies.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
#[path = "common/pusher_client.rs"]
mod pusher_client;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use ringcast_pusher::auth::sign_user;
use serde_json::{Value, json};

use common::PUSHER_APP as APP;
use common::Server;
use nodes::{Client, node};
use pusher_client::{connect, recv, send};
use redis::RedisServer;

/// Signs `ws` (socket `id`) in as `user` watching `watchlist`; returns the frames after
/// `signin_success`'s (the initial watchlist event, when there is a watchlist).
fn sign_in(ws: &mut Client, id: &str, user: &str, watchlist: &[&str]) -> Option<Value> {
    let user_data = json!({"id": user, "watchlist": watchlist}).to_string();
    let auth = format!("key1:{}", sign_user("secret1", id, &user_data));
    send(
        ws,
        &json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
    );
    assert_eq!(recv(ws)["event"], "pusher:signin_success");
    (!watchlist.is_empty()).then(|| watchlist_events(ws))
}

/// The next message, which must be a `pusher_internal:watchlist_events`: its `events`.
fn watchlist_events(ws: &mut Client) -> Value {
    let v = recv(ws);
    assert_eq!(v["event"], "pusher_internal:watchlist_events", "{v}");
    assert!(v.get("channel").is_none(), "{v}");
    let data: Value = serde_json::from_str(v["data"].as_str().expect("data string")).expect("JSON");
    data["events"].clone()
}

fn event(name: &str, ids: &[&str]) -> Value {
    json!([{"name": name, "user_ids": ids}])
}

#[test]
fn a_watchlist_hears_who_is_online_then_each_change_once() {
    let s = Server::start(&APP);
    let (mut carol, carol_id) = connect(&s.addr);
    assert_eq!(sign_in(&mut carol, &carol_id, "carol", &[]), None);
    let (mut walt, walt_id) = connect(&s.addr);
    let initial = sign_in(&mut walt, &walt_id, "walt", &["carol", "dave"]);
    assert_eq!(
        initial,
        Some(json!([
            {"name": "online", "user_ids": ["carol"]},
            {"name": "offline", "user_ids": ["dave"]}
        ]))
    );
    // Dave's first sign-in: online; his second connection: nothing.
    let (mut dave, dave_id) = connect(&s.addr);
    sign_in(&mut dave, &dave_id, "dave", &[]);
    assert_eq!(watchlist_events(&mut walt), event("online", &["dave"]));
    // Signing in again as the same user changes nothing for the watchers.
    sign_in(&mut dave, &dave_id, "dave", &[]);
    let (mut dave2, dave2_id) = connect(&s.addr);
    sign_in(&mut dave2, &dave2_id, "dave", &[]);
    // One of Dave's two connections goes: still online, nothing; the last: offline.
    dave.close(None).expect("close");
    drop(dave);
    dave2.close(None).expect("close");
    assert_eq!(watchlist_events(&mut walt), event("offline", &["dave"]));
    // An unwatched user comes and goes unseen; a watched one is next.
    let (mut eve, eve_id) = connect(&s.addr);
    sign_in(&mut eve, &eve_id, "eve", &[]);
    carol.close(None).expect("close");
    assert_eq!(watchlist_events(&mut walt), event("offline", &["carol"]));
}

#[test]
fn a_watched_user_on_another_node_is_seen_online_and_offline() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let b = node(&redis, "b", &APP);
    let (mut bob, bob_id) = connect(&b.addr);
    sign_in(&mut bob, &bob_id, "bob", &[]);
    let mut walt = watcher_seeing_online(&a.addr, "bob");
    bob.close(None).expect("close");
    assert_eq!(watchlist_events(&mut walt), event("offline", &["bob"]));
    let (mut bob, bob_id) = connect(&b.addr);
    sign_in(&mut bob, &bob_id, "bob", &[]);
    assert_eq!(watchlist_events(&mut walt), event("online", &["bob"]));
}

#[test]
fn a_watched_user_on_a_node_that_dies_goes_offline() {
    let redis = RedisServer::start();
    let a = node(&redis, "a", &APP);
    let mut b = node(&redis, "b", &APP);
    let (mut bob, bob_id) = connect(&b.addr);
    sign_in(&mut bob, &bob_id, "bob", &[]);
    let mut walt = watcher_seeing_online(&a.addr, "bob");
    // Node B dies without closing anything: A forgets it after its silence
    // (docs/pusher.md#across-a-cluster) and tells its watchers.
    b.child.kill().expect("kill -9");
    let _ = b.child.wait();
    drop(bob);
    assert_eq!(watchlist_events(&mut walt), event("offline", &["bob"]));
}

/// A connection on `addr` signed in as walt watching `user`, once that node sees `user`
/// online (another node's sign-in arrives a Redis round trip later).
fn watcher_seeing_online(addr: &str, user: &str) -> Client {
    for _ in 0..100 {
        let (mut w, id) = connect(addr);
        let initial = sign_in(&mut w, &id, "walt", &[user]).expect("a watchlist");
        if initial == event("online", &[user]) {
            return w;
        }
        assert_eq!(initial, event("offline", &[user]));
        drop(w);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{addr} never learnt that {user} is online");
}
