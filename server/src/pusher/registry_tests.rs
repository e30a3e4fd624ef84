//! Unit tests of `Registry` (`super`).

use super::*;

fn member(id: &str) -> MemberData {
    MemberData {
        user_id: id.into(),
        user_info: None,
    }
}

#[test]
fn occupied_once_vacated_once_and_users_counted_once() {
    let r = Registry::default();
    let t = "#pusher/1/presence-x";
    assert!(r.subscribe(t));
    assert!(!r.subscribe(t));
    let j = r.presence_join(t, "presence-x", &member("u"), 10);
    assert_eq!((j.joined, j.hook), (Joined::NewMember, true));
    assert!(String::from_utf8_lossy(&j.succeeded).contains("\\\"count\\\":1"));
    let j = r.presence_join(t, "presence-x", &member("u"), 10);
    assert_eq!(j.joined, Joined::AnotherConnection);
    let info = r.channels("1", "presence-");
    assert_eq!(
        info.iter()
            .map(|i| (i.subscriptions, i.users))
            .collect::<Vec<_>>(),
        [(2, 1)]
    );
    assert!(r.channels("2", "").is_empty(), "apps are apart");
    assert_eq!(r.presence_leave(t, "u"), Left::StillMember);
    assert!(!r.unsubscribe(t));
    assert_eq!(r.presence_leave(t, "u"), Left::MemberGone);
    assert!(r.unsubscribe(t));
    assert!(r.channels("1", "").is_empty());
}

#[test]
fn a_silent_node_leaves_only_what_nobody_else_has() {
    use super::super::liveness::SILENT_FOR;
    let r = Registry::default();
    let (room, solo) = ("#pusher/1/presence-x", "#pusher/1/solo");
    r.subscribe(room);
    r.presence_join(room, "presence-x", &member("here"), 10);
    let user = |id: &str| Delta::User {
        topic: room.into(),
        id: id.into(),
        info: None,
        on: true,
        hook: false,
        owe: None,
    };
    let subs = |topic: &str| Delta::Subs {
        topic: topic.into(),
        n: 1,
        hook: false,
        owe: None,
    };
    let beat = Delta::Beat { run: 1 };
    for d in [beat, subs(room), subs(solo), user("here"), user("gone")] {
        r.apply("b", d, "a");
    }
    let now = Instant::now();
    r.beat(true, 1, now);
    assert!(r.expire("a", now).is_empty(), "nobody silent yet");
    let later = now + SILENT_FOR;
    r.beat(true, 2, later);
    let want = Changes {
        removed: vec![(room.into(), "gone".into())],
        vacated: vec![solo.into()],
        hooks: true,
        ..Changes::default()
    };
    assert_eq!(
        r.expire("a", later),
        want,
        "`here` is here, the room occupied"
    );
    assert_eq!(r.users(room), ["here"]);
    assert!(r.info(solo).is_none());
}

#[test]
fn a_forgotten_node_heard_again_is_asked_and_its_return_announced() {
    use super::super::liveness::SILENT_FOR;
    use std::sync::{Arc, Mutex};
    let r = Registry::default();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    r.set_publisher(move |d| log.lock().expect("log").push(Delta::decode(&d)));
    let room = "#pusher/1/presence-x";
    r.subscribe(room);
    let full = |run: u64| Delta::Full {
        subs: vec![(room.into(), 1)],
        users: vec![(room.into(), "u".into(), None)],
        run: Some(run),
    };
    let changes = r.apply("b", full(7), "a").1;
    assert!(changes.is_empty(), "a node heard first is learnt silently");
    let now = Instant::now();
    r.beat(true, 1, now);
    let later = now + SILENT_FOR;
    r.beat(true, 2, later);
    assert_eq!(r.expire("a", later).removed, [(room.into(), "u".into())]);
    sent.lock().expect("log").clear();
    r.apply("b", Delta::Beat { run: 7 }, "a");
    assert_eq!(sent.lock().expect("log")[..], [Some(Delta::Sync)]);
    let back = r.apply("b", full(7), "a").1;
    let want = Changes {
        added: vec![(room.into(), "u".into(), None)],
        hooks: true,
        ..Changes::default()
    };
    assert_eq!(back, want, "its users come back, announced");
    let again = r.apply("b", full(7), "a").1;
    assert!(again.is_empty(), "once");
    let restarted = r.apply("b", full(8), "a").1;
    assert!(restarted.is_empty(), "u is on the new run too");
    // A new run heard first by its beat: the old run's users go then, and its full state
    // (which says what it announced itself) is learnt without a word.
    let gone = r.apply("b", Delta::Beat { run: 9 }, "a").1;
    assert_eq!(gone.removed, [(room.into(), "u".into())]);
    assert!(gone.hooks);
    assert!(r.apply("b", full(9), "a").1.is_empty());
}

#[test]
fn max_presence_members_counts_the_users_of_every_node() {
    let r = Registry::default();
    let t = "#pusher/1/presence-x";
    let remote = |id: &str| Delta::User {
        topic: t.into(),
        id: id.into(),
        info: None,
        on: true,
        hook: false,
        owe: None,
    };
    r.apply("b", remote("far"), "me");
    r.subscribe(t);
    assert_eq!(
        r.presence_join(t, "presence-x", &member("near"), 2).joined,
        Joined::NewMember
    );
    r.subscribe(t);
    let third = r.presence_join(t, "presence-x", &member("third"), 2);
    assert_eq!(third.joined, Joined::Full, "near here and far on b make 2");
    r.subscribe(t);
    let far = r.presence_join(t, "presence-x", &member("far"), 2);
    assert_eq!(
        far.joined,
        Joined::AnotherConnection,
        "a user of another node is no new member"
    );
}

#[test]
fn signed_in_users_count_per_user_and_across_nodes() {
    let r = Registry::default();
    assert!(r.sign_in("1", "ann"));
    assert!(!r.sign_in("1", "ann"), "a second connection");
    assert!(r.sign_in("2", "ann"), "apps are apart");
    let ids = ["ann".to_owned(), "bob".to_owned()];
    assert_eq!(r.is_online("1", &ids), [("ann", true), ("bob", false)]);
    r.apply(
        "b",
        Delta::User {
            topic: super::super::signins::online_topic("1"),
            id: "bob".into(),
            info: None,
            on: true,
            hook: false,
            owe: None,
        },
        "me",
    );
    assert_eq!(r.is_online("1", &ids), [("ann", true), ("bob", true)]);
    assert!(!r.sign_in("1", "bob"), "online on b already");
    assert!(!r.sign_out("1", "bob"), "still on b");
    assert!(!r.sign_out("1", "ann"));
    assert!(r.sign_out("1", "ann"), "the last connection");
    assert!(!r.sign_out("1", "ann"), "not signed in");
}
