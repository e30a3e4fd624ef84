//! docs/cluster.md#redis-down "If Redis is unreachable …" through a real node: local delivery untouched, backoff,
//! resubscription, every epoch changed, `/metrics` and the log. The table mapping every §8
//! sentence to its test is the module doc of `cluster_spec.rs`.

mod common;
#[path = "../../cluster/tests/common/mod.rs"]
mod redis;

use std::time::Duration;

use common::proc::wait_eq;
use common::resp::Resp;
use common::{Server, json, text};
use redis::RedisServer;
use tungstenite::Message;

#[test]
fn redis_down_local_delivery_goes_on_and_every_epoch_changes() {
    let mut redis = RedisServer::start();
    let args = ["--node-id", "a", "--workers", "2", "--history-size", "10"];
    let url = redis.url();
    let args = [&args[..], &["--cluster", &url]].concat();
    let a = Server::start_with_env(&args, &[("RINGCAST_LOG", "info")]);
    let mut r = Resp::connect(redis.port);
    let (mut from, mut to) = (a.join(Some("r")), a.join(Some("r")));
    let mut sub = json::client(&a);
    let mut epochs = Vec::new();
    for topic in ["h1", "h2"] {
        epochs.push(
            json::subscribe(&mut sub, topic, "")["epoch"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    wait_eq("channels", ["h1", "h2", "r"], || r.rooms("ringcast"));
    wait_eq("up", 1, || a.metric("ringcast_cluster_up"));
    let mut publisher = json::client(&a);
    for t in ["h1", "h2"] {
        json::send(
            &mut publisher,
            &format!(r#"{{"op":"publish","topic":"{t}","data":0}}"#),
        );
        assert_eq!(json::recv(&mut sub)["offset"], 1);
    }

    redis.kill();
    wait_eq("up", 0, || a.metric("ringcast_cluster_up"));
    let dropped = a.metric("ringcast_cluster_dropped_total");
    for i in 0..50 {
        from.send(Message::text(format!("during-{i}"))).unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            text(&mut to),
            format!("during-{i}"),
            "local delivery untouched"
        );
    }
    json::send(
        &mut publisher,
        r#"{"op":"publish","topic":"h1","data":"down"}"#,
    );
    let v = json::recv(&mut sub);
    assert_eq!(
        (&v["topic"], &v["data"]),
        (&"h1".into(), &"down".into()),
        "{v}"
    );
    // The presence request is answered from this node alone.
    json::send(&mut publisher, r#"{"op":"presence","topic":"r","id":"q"}"#);
    let v = json::recv(&mut publisher);
    assert_eq!(
        (&v["op"], &v["count"]),
        (&"presence".into(), &2.into()),
        "{v}"
    );
    // Whatever was sent meanwhile never reached Redis: counted on the sender.
    wait_eq("dropped", dropped + 51, || {
        a.metric("ringcast_cluster_dropped_total")
    });
    // Nobody recovers across the hole, on any topic with history.
    let mut late = json::client(&a);
    for (i, topic) in ["h1", "h2"].into_iter().enumerate() {
        let since = format!(r#","since":{{"offset":1,"epoch":"{}"}}"#, epochs[i]);
        let v = json::subscribe(&mut late, topic, &since);
        assert_eq!(v["recovered"], false, "{v}");
        assert_ne!(v["epoch"], epochs[i].as_str(), "{v}");
    }
    let log = a.stderr();
    assert!(log.contains("cluster bus down"), "{log}");

    redis.restart();
    wait_eq("up", 1, || a.metric("ringcast_cluster_up"));
    // Resubscribed on the new, empty Redis: every room with a local member, nothing else.
    let mut r = Resp::connect(redis.port);
    wait_eq("channels", ["h1", "h2", "r"], || r.rooms("ringcast"));
    let log = a.stderr();
    let down = log.find("cluster bus down").unwrap();
    assert!(
        log[down..].contains("cluster bus up"),
        "no up line after the down line: {log}"
    );
}

#[test]
fn an_unreachable_redis_is_retried_with_backoff() {
    let (url, attempts) = redis::hang_up_server();
    let a = Server::start(&["--node-id", "a", "--workers", "1", "--cluster", &url]);
    std::thread::sleep(Duration::from_secs(3));
    let at = attempts.lock().unwrap().clone();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    println!("{} attempts in 3 s, intervals {gaps:?}", at.len());
    // 50 ms doubling: about 7 attempts in 3 s (a fixed 50 ms retry would make 60).
    assert!(
        (3..=12).contains(&at.len()),
        "{} attempts: {gaps:?}",
        at.len()
    );
    assert!(gaps[gaps.len() - 1] >= 4 * gaps[0], "no backoff: {gaps:?}");
    assert_eq!(a.metric("ringcast_cluster_up"), 0);
}
