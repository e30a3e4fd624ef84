//! Unit tests of `Nodes` (`super`).

use super::*;

fn subs(topic: &str, n: u64, hook: bool, owe: Option<&str>) -> Delta {
    Delta::Subs {
        topic: topic.into(),
        n,
        hook,
        owe: owe.map(Into::into),
    }
}

fn user(id: &str, on: bool, hook: bool) -> Delta {
    Delta::User {
        topic: "t".into(),
        id: id.into(),
        info: None,
        on,
        hook,
        owe: None,
    }
}

#[test]
fn users_count_once_across_nodes_and_full_state_replaces_a_node() {
    let mut n = Nodes::default();
    let now = Instant::now();
    n.apply("a", user("u", true, true), "me", now);
    n.apply("b", user("u", true, false), "me", now);
    assert_eq!(n.users("t").count(), 1);
    n.apply("a", user("u", false, false), "me", now);
    assert!(n.has_user("t", "u"), "still on b");
    let diff = n.full("b", vec![("x".into(), 2)], vec![]);
    assert!(!n.has_user("t", "u"));
    assert_eq!(n.subscriptions("x"), 2);
    let added = vec![("t".into(), "v".into(), None)];
    assert_eq!(
        diff,
        Shift {
            removed: vec![("t".into(), "u".into())],
            occupied: vec!["x".into()],
            ..Shift::default()
        }
    );
    let back = n.full("b", vec![("x".into(), 2)], added.clone());
    n.full("fresh", vec![], vec![]);
    assert_eq!(
        n.node_of_tag(node_tag("fresh")),
        Some("fresh"),
        "known by its full state"
    );
    assert_eq!(back.added, added, "a full state says what it brings");
    let round = Delta::decode(&subs("x", 1, true, Some("a")).encode());
    assert_eq!(round, Some(subs("x", 1, true, Some("a"))));
}

#[test]
fn a_vacated_leaves_a_tombstone_and_an_owed_occupied_is_reported() {
    let mut n = Nodes::default();
    let now = Instant::now();
    n.apply("a", subs("x", 1, true, None), "me", now);
    n.apply("a", subs("x", 0, true, None), "me", now);
    assert_eq!(n.take_vacated_by("x", now).as_deref(), Some("a"));
    assert_eq!(n.take_vacated_by("x", now), None, "taken once");
    n.apply("a", subs("y", 0, true, None), "me", now);
    assert_eq!(n.take_vacated_by("y", now + TOMBSTONE), None, "too old");
    let owed = n.apply("b", subs("x", 1, false, Some("me")), "me", now);
    assert_eq!(owed, Some(Owed::Occupied("x".into())));
}

#[test]
fn a_silent_node_leaves_what_the_others_do_not_have() {
    use super::super::liveness::SILENT_FOR;
    let mut n = Nodes::default();
    let t0 = Instant::now();
    n.link(true, 1, t0);
    for (node, d) in [
        ("b", subs("x", 1, false, None)),
        ("b", subs("y", 1, false, None)),
        ("b", user("u", true, false)),
        ("b", user("v", true, false)),
        ("c", subs("y", 2, false, None)),
        ("c", user("v", true, false)),
        ("c", subs("z", 0, true, None)),
    ] {
        n.heard(node, Some(1), t0);
        n.apply(node, d, "me", t0);
    }
    n.apply("b", user("w", false, true), "me", t0);
    let later = t0 + SILENT_FOR;
    n.heard("c", None, later);
    n.link(true, 2, later);
    let left = n.expire(later);
    let removed = vec![("t".to_owned(), "u".to_owned())];
    let vacated = vec!["x".to_owned()];
    let want = Shift {
        removed,
        vacated,
        ..Shift::default()
    };
    assert_eq!(left, want);
    assert_eq!((n.subscriptions("y"), n.has_user("t", "v")), (2, true));
    assert_eq!(
        n.take_removed_by("t", "w", t0),
        None,
        "b holds no webhook now"
    );
    assert_eq!(n.heard("b", None, later), Heard::Back, "b was forgotten");
    assert!(n.sends_hooks("a", later) && !n.sends_hooks("bb", later));
}
