//! Issue 15's goals for docs/pubsub.md, scaled for CI, against the real binary with tungstenite
//! clients: presence under churn over two workers, history TTL, eviction and memory, `--rooms`
//! for topics, recovery across disconnects.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::Server;
use serde_json::Value;
use tungstenite::Message;

use common::json::{Ws, client, recv, send, subscribe};

fn clients_of(snapshot: &Value) -> HashSet<String> {
    assert_eq!(snapshot["op"], "presence", "{snapshot}");
    (snapshot["clients"].as_array().expect("clients").iter())
        .map(|c| c["client"].as_str().expect("client").to_string())
        .collect()
}

/// A presence subscriber's view: the members its snapshot and events add up to.
struct View {
    me: String,
    members: HashSet<String>,
    joins: usize,
    leaves: usize,
}

impl View {
    /// Subscribes `ws` to `topic` with presence; the snapshot starts the view.
    fn subscribe(ws: &mut Ws, topic: &str) -> View {
        subscribe(ws, topic, r#","presence":true"#);
        let members = clients_of(&recv(ws));
        View::from(members, None)
    }

    fn from(members: HashSet<String>, me: Option<String>) -> View {
        let me = me.unwrap_or_else(|| {
            assert_eq!(members.len(), 1, "a fresh topic holds only the subscriber");
            members.iter().next().cloned().unwrap_or_default()
        });
        View {
            me,
            members,
            joins: 0,
            leaves: 0,
        }
    }

    /// Applies one join or leave: it must follow from the members known so far (exactly once,
    /// in order) and never be about the subscriber itself.
    fn apply(&mut self, v: &Value) {
        let who = v["client"].as_str().expect("client").to_string();
        assert_ne!(who, self.me, "an event about the subscriber itself: {v}");
        match v["op"].as_str() {
            Some("join") => {
                assert!(
                    self.members.insert(who),
                    "join of a member already known: {v}"
                );
                self.joins += 1;
            }
            Some("leave") => {
                assert!(self.members.remove(&who), "leave of an unknown member: {v}");
                self.leaves += 1;
            }
            _ => panic!("not a presence event: {v}"),
        }
    }
}

/// The client id of a fresh connection: its own snapshot of a private topic.
fn own_id(ws: &mut Ws, private: &str) -> String {
    View::subscribe(ws, private).me
}

/// Reads events into `view` until the join of the client whose id arrives on `marker` (sent
/// before that client subscribes, so it is there when its join is read).
fn until_marker(ws: &mut Ws, view: &mut View, marker: &std::sync::mpsc::Receiver<String>) {
    // Already in the snapshot: its id was sent before it subscribed.
    let mut id = marker.try_recv().ok();
    if id.as_ref().is_some_and(|m| view.members.contains(m)) {
        return;
    }
    loop {
        let v = recv(ws);
        view.apply(&v);
        if id.is_none() {
            id = marker.try_recv().ok();
        }
        if v["op"] == "join" && id.as_deref() == v["client"].as_str() {
            return;
        }
    }
}

#[test]
fn presence_churn_over_two_workers_every_event_once_in_order_after_the_snapshot() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 125; // 500 churners: 1,000 joins and leaves
    let s = Arc::new(Server::start(&["--workers", "2"]));
    let churn_done = Arc::new(AtomicBool::new(false));
    let mut a = client(&s);
    let mut view_a = View::subscribe(&mut a, "p");
    // A (subscribed before the churn) must see every churner join and leave; B re-subscribes
    // again and again during the churn, each snapshot racing events in flight.
    let (marker_a, marker_rx_a) = std::sync::mpsc::channel::<String>();
    let (marker_b, marker_rx_b) = std::sync::mpsc::channel::<String>();
    // B's last join must come before the marker's: B may be mid-round when the churn ends.
    let (b_final, b_final_rx) = std::sync::mpsc::channel::<()>();
    let watch_a = std::thread::spawn(move || {
        until_marker(&mut a, &mut view_a, &marker_rx_a);
        (a, view_a)
    });
    let (s_b, done_b) = (s.clone(), churn_done.clone());
    let watch_b = std::thread::spawn(move || {
        let mut b = client(&s_b);
        let me = own_id(&mut b, "b-private");
        let mut rounds = 0;
        loop {
            subscribe(&mut b, "p", r#","presence":true"#);
            let members = clients_of(&recv(&mut b));
            assert!(members.contains(&me), "the snapshot includes the client");
            let mut view = View::from(members, Some(me.clone()));
            if done_b.load(Ordering::Acquire) {
                // Its join was announced before `subscribed` came back.
                b_final.send(()).expect("main waits");
                until_marker(&mut b, &mut view, &marker_rx_b);
                return (b, view, rounds);
            }
            send(&mut b, r#"{"op":"unsubscribe","topic":"p","id":"u"}"#);
            loop {
                let v = recv(&mut b);
                if v["op"] == "unsubscribed" {
                    break;
                }
                view.apply(&v);
            }
            rounds += 1;
        }
    });
    let churners: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut c = client(&s);
                    subscribe(&mut c, "p", "");
                    match (t + i) % 3 {
                        0 => {
                            send(&mut c, r#"{"op":"unsubscribe","topic":"p","id":2}"#);
                            assert_eq!(recv(&mut c)["op"], "unsubscribed");
                        }
                        1 => {
                            c.close(None).expect("close");
                            while c.read().is_ok() {}
                        }
                        _ => {} // dropped: the disconnect is the leave
                    }
                }
            })
        })
        .collect();
    for c in churners {
        c.join().expect("churner");
    }
    // Every churner's leave is recorded once its connection is gone: A, B and this request.
    let deadline = std::time::Instant::now() + common::READ_TIMEOUT;
    while s.metric("ringcast_connections_open") != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "churners never all closed"
        );
        std::thread::yield_now();
    }
    churn_done.store(true, Ordering::Release);
    b_final_rx.recv().expect("B's last subscribe");
    // The marker: once its join reaches a watcher, every earlier event has too (in order).
    let mut m = client(&s);
    let marker = own_id(&mut m, "marker-private");
    marker_a.send(marker.clone()).expect("A waits");
    marker_b.send(marker.clone()).expect("B waits");
    subscribe(&mut m, "p", "");
    let (mut a, view_a) = watch_a.join().expect("watcher A");
    let (_b, view_b, rounds) = watch_b.join().expect("watcher B");
    let churners = THREADS * PER_THREAD;
    // A also sees B: one join per round plus the last, one leave per round; and the marker.
    assert_eq!(view_a.joins, churners + rounds + 2, "A: every join once");
    assert_eq!(view_a.leaves, churners + rounds, "A: every leave once");
    let expected: HashSet<String> = [view_a.me.clone(), view_b.me.clone(), marker].into();
    assert_eq!(view_a.members, expected);
    assert_eq!(view_b.members, expected);
    send(&mut a, r#"{"op":"presence","topic":"p","id":"final"}"#);
    assert_eq!(
        clients_of(&recv(&mut a)),
        expected,
        "the final snapshot is right"
    );
    assert!(rounds > 0, "B re-subscribed during the churn");
}

/// Polls `/metrics` until `ok` holds for metric `name` (or the read timeout passes).
fn await_metric(s: &Server, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = std::time::Instant::now() + common::READ_TIMEOUT;
    loop {
        let v = s.metric(name);
        if ok(v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{name} stuck at {v}");
        std::thread::yield_now();
    }
}

#[test]
fn history_ttl_expired_messages_are_not_replayed_and_a_quiet_topic_is_swept() {
    let s = Server::start(&["--history-size", "10", "--history-ttl", "2"]);
    let mut p = client(&s);
    send(
        &mut p,
        r#"{"op":"publish","topic":"quiet","id":1,"data":"old"}"#,
    );
    assert_eq!(recv(&mut p)["offset"], 1);
    let held = s.metric("ringcast_history_bytes");
    // Nobody touches the topic again: only the tick's sweep can free the message.
    await_metric(&s, "ringcast_history_bytes", |b| b < held);
    let mut a = client(&s);
    let v = subscribe(&mut a, "quiet", r#","since":{"last":10}"#);
    assert_eq!(v["offset"], 1, "offsets continue after expiry");
    send(&mut a, r#"{"op":"publish","topic":"quiet","data":"new"}"#);
    assert_eq!(
        recv(&mut a)["data"],
        "new",
        "the expired message was not replayed"
    );
    // A message younger than the TTL (2 s, second granularity: ≥ 1 s) is replayed.
    let mut b = client(&s);
    subscribe(&mut b, "quiet", r#","since":{"last":10}"#);
    assert_eq!(recv(&mut b)["data"], "new");
}

#[test]
fn eviction_by_the_byte_budget_changes_the_epoch_and_memory_stays_bounded() {
    const BUDGET: u64 = 256 * 1024;
    let budget = BUDGET.to_string();
    let s = Server::start(&[
        "--workers",
        "2",
        "--history-size",
        "10",
        "--history-max-bytes",
        &budget,
    ]);
    let mut p = client(&s);
    send(
        &mut p,
        r#"{"op":"publish","topic":"first","id":1,"data":1}"#,
    );
    assert_eq!(recv(&mut p)["offset"], 1);
    let mut a = client(&s);
    let v = subscribe(&mut a, "first", "");
    let epoch = v["epoch"].as_str().expect("epoch").to_string();
    send(&mut a, r#"{"op":"unsubscribe","topic":"first"}"#);
    // Floods of new topics, 10,000 × ~1 KB each (about 40 times the budget): the first warms
    // the allocator's caches; the next four (40 MB of payload alone if nothing were evicted)
    // must grow the process far less than that. Growth seen: 0-18 MiB, noisy on a loaded
    // machine (allocator segments per worker thread), so the bound is 32 MiB.
    let mut floods: Vec<Ws> = (0..4).map(|_| client(&s)).collect();
    flood(&mut floods, "a");
    let rss_before = rss_kib(&s);
    for round in ["b", "c", "d", "e"] {
        flood(&mut floods, round);
    }
    let bytes = s.metric("ringcast_history_bytes");
    assert!(bytes <= BUDGET, "history holds {bytes} B, budget {BUDGET}");
    let topics = s.metric("ringcast_history_topics");
    assert!(
        topics < 1_000,
        "{topics} topics held under a 256 KiB budget"
    );
    let grown = rss_kib(&s).saturating_sub(rss_before);
    eprintln!("history {bytes} B in {topics} topics; RSS +{grown} KiB (from {rss_before} KiB)");
    assert!(
        grown < 32 * 1024,
        "RSS grew by {grown} KiB over 40 MB of new topics"
    );
    let mut b = client(&s);
    let v = subscribe(
        &mut b,
        "first",
        &format!(r#","since":{{"offset":1,"epoch":"{epoch}"}}"#),
    );
    assert_eq!(v["recovered"], false, "continuity was lost: {v}");
    assert_ne!(
        v["epoch"],
        epoch.as_str(),
        "an evicted topic comes back with a new epoch"
    );
}

/// Publishes 2,500 messages of ~1 KB to new topics over each connection and awaits the last.
fn flood(conns: &mut [Ws], round: &str) {
    let data = format!("\"{}\"", "x".repeat(1000));
    for (f, ws) in conns.iter_mut().enumerate() {
        for i in 0..2_500 {
            let req = format!(r#"{{"op":"publish","topic":"{round}-{f}-{i}","data":{data}}}"#);
            ws.send(Message::text(req)).expect("send");
        }
        send(ws, r#"{"op":"publish","topic":"last","id":"end","data":0}"#);
    }
    for ws in conns {
        assert_eq!(recv(ws)["id"], "end");
    }
}

/// The server's resident set in KiB.
fn rss_kib(s: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).expect("status");
    (status.lines())
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn an_explicit_rooms_list_governs_topics() {
    let s = Server::start(&["--rooms", "lobby,news"]);
    let mut a = client(&s);
    subscribe(&mut a, "news", "");
    for req in [
        r#"{"op":"subscribe","topic":"secret","id":1}"#,
        r#"{"op":"publish","topic":"secret","id":2,"data":"password=hunter2"}"#,
        r#"{"op":"presence","topic":"secret","id":3}"#,
    ] {
        send(&mut a, req);
        let v = recv(&mut a);
        assert_eq!(
            (v["op"].as_str(), v["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{req}"
        );
    }
    send(&mut a, r#"{"op":"publish","topic":"news","data":1}"#);
    assert_eq!(recv(&mut a)["data"], 1, "the connection stays usable");
    // Without a list, any topic.
    let open = Server::start(&[]);
    let mut b = client(&open);
    subscribe(&mut b, "secret", "");
}

#[test]
fn recovery_across_disconnects_loses_and_duplicates_nothing_when_recovered() {
    const CYCLES: usize = 300;
    let s = Arc::new(Server::start(&["--workers", "2", "--history-size", "1000"]));
    let stop = Arc::new(AtomicBool::new(false));
    let (s_p, stop_p) = (s.clone(), stop.clone());
    // About 1,000 msgs/s; the data is the publish's number, its offset is that + 1.
    let publisher = std::thread::spawn(move || {
        let mut p = client(&s_p);
        let mut n = 0u64;
        while !stop_p.load(Ordering::Acquire) {
            send(
                &mut p,
                &format!(r#"{{"op":"publish","topic":"r","data":{n}}}"#),
            );
            n += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        n
    });
    let (mut last, mut epoch) = (0u64, String::new());
    let (mut recovered, mut not_recovered, mut received) = (0, 0, 0u64);
    for cycle in 0..CYCLES {
        let mut ws = client(&s);
        let since = if cycle == 0 {
            String::new()
        } else {
            format!(r#","since":{{"offset":{last},"epoch":"{epoch}"}}"#)
        };
        let v = subscribe(&mut ws, "r", &since);
        let mut expect = match v["recovered"].as_bool() {
            Some(true) => {
                recovered += 1;
                Some(last + 1)
            }
            Some(false) => {
                not_recovered += 1;
                None
            }
            None => None,
        };
        epoch = v["epoch"].as_str().expect("epoch").to_string();
        // A few messages, then an abrupt disconnect (no Close).
        for _ in 0..(1 + cycle % 5) {
            let m = recv(&mut ws);
            let offset = m["offset"].as_u64().expect("offset");
            assert_eq!(m["data"].as_u64(), Some(offset - 1), "{m}");
            if let Some(e) = expect {
                assert_eq!(
                    offset, e,
                    "cycle {cycle}: a gap or a duplicate after recovered:true"
                );
            }
            expect = Some(offset + 1);
            last = offset;
            received += 1;
        }
    }
    stop.store(true, Ordering::Release);
    let published = publisher.join().expect("publisher");
    eprintln!(
        "{CYCLES} cycles: {recovered} recovered, {not_recovered} not; {received} received of {published}"
    );
    assert_eq!(
        recovered,
        CYCLES - 1,
        "every resume within the history recovers"
    );
}
