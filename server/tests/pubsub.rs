//! docs/pubsub.md against the real binary with tungstenite clients: one test per sentence covered.

mod common;

use common::Server;
use serde_json::json;
use tungstenite::Message;

use common::json::{Ws, client, recv, send, subscribe};

#[test]
fn publish_reaches_every_subscriber_on_both_workers_publisher_included() {
    let s = Server::start(&["--workers", "2"]);
    let mut subs: Vec<Ws> = (0..6).map(|_| client(&s)).collect();
    for ws in &mut subs {
        subscribe(ws, "t", "");
    }
    send(
        &mut subs[0],
        r#"{"op":"publish","topic":"t","id":"p1","data":{"a": [1, 2.50]}}"#,
    );
    let mut own = Vec::new();
    for (i, ws) in subs.iter_mut().enumerate() {
        let mut got = recv(ws);
        if i == 0 && got["op"] == "published" {
            own.push(got.clone());
            got = recv(ws);
        }
        assert_eq!(got["op"], "message");
        assert_eq!(got["topic"], "t");
        assert_eq!(got["data"], json!({"a":[1, 2.5]}));
    }
    if own.is_empty() {
        own.push(recv(&mut subs[0]));
    }
    assert_eq!(own[0], json!({"op":"published","topic":"t","id":"p1"}));
}

#[test]
fn data_passes_byte_for_byte() {
    let s = Server::start(&[]);
    let mut a = client(&s);
    subscribe(&mut a, "t", "");
    send(
        &mut a,
        r#"{"op":"publish","topic":"t","data":{"x" :  1.0e3 }}"#,
    );
    match a.read().expect("read") {
        Message::Text(t) => assert_eq!(
            t.as_str(),
            r#"{"op":"message","topic":"t","data":{"x" :  1.0e3 }}"#
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_with_and_without_id_and_the_connection_stays_usable() {
    let s = Server::start(&["--max-subscriptions", "1"]);
    let mut a = client(&s);
    let cases = [
        (r#"not json"#, "bad_json", None),
        (r#"[1,2]"#, "bad_json", None),
        (r#"{"id":7}"#, "bad_field", Some(json!(7))),
        (r#"{"op":5,"id":"x"}"#, "bad_field", Some(json!("x"))),
        (r#"{"op":"dance","id":2}"#, "unknown_op", Some(json!(2))),
        (
            r#"{"op":"subscribe","topic":"","id":3}"#,
            "bad_field",
            Some(json!(3)),
        ),
        (
            r#"{"op":"unsubscribe","topic":"zz","id":4}"#,
            "not_subscribed",
            Some(json!(4)),
        ),
    ];
    for (req, code, id) in cases {
        send(&mut a, req);
        let v = recv(&mut a);
        assert_eq!(
            (v["op"].as_str(), v["code"].as_str()),
            (Some("error"), Some(code)),
            "{req}"
        );
        assert_eq!(v.get("id").cloned(), id, "{req}");
        assert!(v["message"].is_string());
    }
    let long = "x".repeat(257);
    send(
        &mut a,
        &format!(r#"{{"op":"subscribe","topic":"{long}","id":5}}"#),
    );
    assert_eq!(recv(&mut a)["code"], "topic_too_long");
    subscribe(&mut a, "one", "");
    send(&mut a, r#"{"op":"subscribe","topic":"two","id":6}"#);
    let v = recv(&mut a);
    assert_eq!(
        (v["code"].clone(), v["id"].clone()),
        (json!("too_many_subscriptions"), json!(6))
    );
    a.send(Message::binary(vec![1, 2, 3])).expect("send");
    let v = recv(&mut a);
    assert_eq!(v["code"], "binary_frame");
    assert!(v.get("id").is_none());
    // Still usable.
    send(&mut a, r#"{"op":"publish","topic":"one","data":1}"#);
    assert_eq!(recv(&mut a), json!({"op":"message","topic":"one","data":1}));
}

#[test]
fn repeated_subscribe_is_idempotent_and_unsubscribe_stops_messages() {
    let s = Server::start(&[]);
    let mut a = client(&s);
    subscribe(&mut a, "t", "");
    subscribe(&mut a, "t", "");
    send(&mut a, r#"{"op":"publish","topic":"t","data":"once"}"#);
    assert_eq!(recv(&mut a)["data"], "once");
    send(&mut a, r#"{"op":"unsubscribe","topic":"t","id":"u"}"#);
    assert_eq!(
        recv(&mut a),
        json!({"op":"unsubscribed","topic":"t","id":"u"})
    );
    send(&mut a, r#"{"op":"publish","topic":"t","data":"gone"}"#);
    send(&mut a, r#"{"op":"publish","topic":"t","data":"x","id":9}"#);
    // The first reply after the unsubscribe is the published ack: no second copy, no message.
    assert_eq!(recv(&mut a), json!({"op":"published","topic":"t","id":9}));
}

#[test]
fn rooms_and_topics_are_one_namespace_both_ways() {
    let s = Server::start(&["--workers", "2"]);
    let mut sub = client(&s);
    subscribe(&mut sub, "chat", "");
    let mut room = s.join(Some("chat"));
    room.send(Message::text("hé \"q\"")).expect("send");
    assert_eq!(
        recv(&mut sub),
        json!({"op":"message","topic":"chat","data":"hé \"q\""})
    );
    room.send(Message::binary(vec![0u8, 1, 2, 255]))
        .expect("send");
    assert_eq!(
        recv(&mut sub),
        json!({"op":"message","topic":"chat","binary":"AAEC/w=="})
    );
    send(
        &mut sub,
        r#"{"op":"publish","topic":"chat","data":{"k":[true]}}"#,
    );
    loop {
        match room.read().expect("read") {
            Message::Text(t) => {
                assert_eq!(t.as_str(), r#"{"k":[true]}"#);
                break;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn history_offsets_last_n_and_recovery() {
    let s = Server::start(&["--workers", "2", "--history-size", "10"]);
    let mut p = client(&s);
    for i in 1..=5 {
        send(
            &mut p,
            &format!(r#"{{"op":"publish","topic":"h","id":{i},"data":{i}}}"#),
        );
        let v = recv(&mut p);
        assert_eq!(v["op"], "published");
        assert_eq!(v["offset"], i, "offsets count up by one from 1");
    }
    let mut a = client(&s);
    let v = subscribe(&mut a, "h", r#","since":{"last":2}"#);
    assert_eq!(v["offset"], 5);
    let epoch = v["epoch"].as_str().expect("epoch").to_string();
    assert_eq!(
        recv(&mut a),
        json!({"op":"message","topic":"h","data":4,"offset":4})
    );
    assert_eq!(
        recv(&mut a),
        json!({"op":"message","topic":"h","data":5,"offset":5})
    );
    send(&mut p, r#"{"op":"publish","topic":"h","data":6}"#);
    assert_eq!(recv(&mut a)["offset"], 6, "live after replay, no duplicate");
    // Recovery from offset 3 in the right epoch.
    let mut b = client(&s);
    let v = subscribe(
        &mut b,
        "h",
        &format!(r#","since":{{"offset":3,"epoch":"{epoch}"}}"#),
    );
    assert_eq!(
        (v["recovered"].clone(), v["offset"].clone()),
        (json!(true), json!(6))
    );
    for o in 4..=6 {
        assert_eq!(recv(&mut b)["offset"], o);
    }
    // A wrong epoch: not recovered, nothing replayed, then live.
    let mut c = client(&s);
    let v = subscribe(&mut c, "h", r#","since":{"offset":3,"epoch":"other"}"#);
    assert_eq!(v["recovered"], false);
    send(&mut p, r#"{"op":"publish","topic":"h","data":7}"#);
    assert_eq!(recv(&mut c)["offset"], 7);
    assert_eq!(recv(&mut b)["offset"], 7);
}

#[test]
fn room_messages_enter_history() {
    let s = Server::start(&["--history-size", "10"]);
    let mut room = s.join(Some("r"));
    // When another member of the room has the message, the server holds it: the publish
    // pipeline appends to history before it reads the targets (a bounded retry of the
    // subscribe flaked on a loaded machine: 100 tries before the server read the message).
    let mut watcher = s.join(Some("r"));
    room.send(Message::text("one")).expect("send");
    assert_eq!(common::text(&mut watcher), "one");
    let mut a = client(&s);
    let v = subscribe(&mut a, "r", "");
    assert_eq!(v["offset"], 1, "{v}");
    let mut b = client(&s);
    subscribe(&mut b, "r", r#","since":{"last":5}"#);
    assert_eq!(
        recv(&mut b),
        json!({"op":"message","topic":"r","data":"one","offset":1})
    );
}

#[test]
fn presence_snapshot_join_leave_and_max() {
    let s = Server::start(&["--workers", "2", "--presence-max", "3"]);
    let mut a = client(&s);
    subscribe(&mut a, "p", r#","presence":true"#);
    let snap = recv(&mut a);
    assert_eq!(snap["op"], "presence");
    assert_eq!(snap["count"], 1, "the snapshot includes the client itself");
    let me = snap["clients"][0]["client"]
        .as_str()
        .expect("client")
        .to_string();
    let mut b = client(&s);
    subscribe(&mut b, "p", "");
    let join = recv(&mut a);
    assert_eq!(join["op"], "join");
    let other = join["client"].as_str().expect("client").to_string();
    assert_ne!(other, me);
    let room = s.join(Some("p"));
    assert_eq!(recv(&mut a)["op"], "join", "room-mode members count");
    send(&mut b, r#"{"op":"presence","topic":"p","id":"q"}"#);
    let v = recv(&mut b);
    assert_eq!(
        (v["count"].clone(), v["id"].clone()),
        (json!(3), json!("q"))
    );
    drop(room);
    let leave = recv(&mut a);
    assert_eq!(leave["op"], "leave");
    send(&mut b, r#"{"op":"unsubscribe","topic":"p"}"#);
    assert_eq!(
        recv(&mut a),
        json!({"op":"leave","topic":"p","client":other})
    );
    // Above --presence-max: count only.
    let _more: Vec<Ws> = (0..3)
        .map(|_| {
            let mut c = client(&s);
            subscribe(&mut c, "p", "");
            c
        })
        .collect();
    send(&mut a, r#"{"op":"presence","topic":"p"}"#);
    loop {
        let v = recv(&mut a);
        if v["op"] == "presence" {
            assert_eq!(v["count"], 4);
            assert!(v.get("clients").is_none());
            break;
        }
    }
}

/// Issue 21 row 9: crossing `--presence-max` never shows a watcher a leave for a member it was
/// not shown, nor leaves it a ghost; a count-only watcher gets no join/leave at all.
#[test]
fn presence_max_crossings_keep_the_watchers_view_exact() {
    let s = Server::start(&["--workers", "1", "--presence-max", "2"]);
    let unsubscribe = |ws: &mut Ws| {
        send(ws, r#"{"op":"unsubscribe","topic":"p","id":9}"#);
        assert_eq!(recv(ws)["op"], "unsubscribed");
    };
    let mut w = client(&s);
    subscribe(&mut w, "p", r#","presence":true"#);
    assert_eq!(recv(&mut w)["count"], 1);
    let mut a = client(&s);
    subscribe(&mut a, "p", "");
    let join = recv(&mut w);
    assert_eq!(join["op"], "join", "{join}");
    let shown_a = join["client"].clone();
    let mut c = client(&s);
    subscribe(&mut c, "p", ""); // 3 members: above the max, not announced
    let mut x = client(&s);
    subscribe(&mut x, "p", r#","presence":true"#);
    let count_only = recv(&mut x);
    assert_eq!(count_only["count"], 4);
    assert!(count_only.get("clients").is_none(), "{count_only}");
    unsubscribe(&mut a); // shown: its leave is due, above the max too
    unsubscribe(&mut c); // never shown: no event
    send(&mut w, r#"{"op":"publish","topic":"p","data":"mark1"}"#);
    assert_eq!(
        recv(&mut w),
        json!({"op":"leave","topic":"p","client":shown_a}),
        "no ghost of A"
    );
    assert_eq!(recv(&mut w)["data"], "mark1");
    assert_eq!(
        recv(&mut x)["data"],
        "mark1",
        "the count-only watcher got no event"
    );
    unsubscribe(&mut x); // never shown: no leave, though the topic is back at the max
    send(&mut w, r#"{"op":"publish","topic":"p","data":"mark2"}"#);
    assert_eq!(recv(&mut w)["data"], "mark2", "no leave for X, never shown");
    send(&mut w, r#"{"op":"presence","topic":"p"}"#);
    let snap = recv(&mut w);
    assert_eq!(
        (
            snap["count"].clone(),
            snap["clients"].as_array().map(Vec::len)
        ),
        (json!(1), Some(1))
    );
}

/// Issue 21 row 12: a lone surrogate does not name the topic "\u0000", and any JSON number is an
/// id (echoed as written), any JSON value data.
#[test]
fn lone_surrogate_topics_are_refused_and_huge_numbers_pass_as_written() {
    let s = Server::start(&[]);
    let mut a = client(&s);
    send(&mut a, r#"{"op":"subscribe","topic":"\ud800","id":5}"#);
    let v = recv(&mut a);
    assert_eq!(
        (v["op"].as_str(), v["code"].as_str(), v["id"].clone()),
        (Some("error"), Some("bad_field"), json!(5))
    );
    subscribe(&mut a, r"\u0000", "");
    send(
        &mut a,
        r#"{"op":"publish","topic":"\u0000","id":1e400,"data":[123456789012345678901234567890]}"#,
    );
    let mut got: Vec<String> = (0..2)
        .map(|_| match a.read().expect("read") {
            Message::Text(t) => t.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            r#"{"op":"message","topic":"\u0000","data":[123456789012345678901234567890]}"#,
            r#"{"op":"published","topic":"\u0000","id":1e400}"#,
        ]
    );
}
