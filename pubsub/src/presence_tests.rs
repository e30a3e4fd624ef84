use super::*;

fn member(slot: u32, user: Option<&str>) -> Member {
    Member {
        client: ClientId::new("n1", 0, slot, 1),
        user: user.map(Into::into),
    }
}

#[test]
fn client_ids_are_compact_and_distinct() {
    let a = ClientId::new("n1", 0, 31, 3);
    assert_eq!(a.as_str(), "n1.0.1f.3");
    assert_eq!(a.to_string(), "n1.0.1f.3");
    let others = [
        ClientId::new("n2", 0, 31, 3),
        ClientId::new("n1", 1, 31, 3),
        ClientId::new("n1", 0, 30, 3),
        ClientId::new("n1", 0, 31, 4),
    ];
    for o in &others {
        assert_ne!(&a, o);
    }
}

#[test]
fn join_and_leave_give_events_with_consecutive_seq() {
    let p = Presence::new(10);
    let ann = member(1, Some("ann"));
    let bob = member(2, None);
    let j1 = p.join("t", ann.clone()).unwrap();
    assert_eq!((j1.kind, j1.seq, &j1.member), (ChangeKind::Join, 1, &ann));
    assert_eq!(
        p.join("t", ann.clone()),
        None,
        "a repeated subscribe is no second join"
    );
    let j2 = p.join("t", bob.clone()).unwrap();
    assert_eq!(j2.seq, 2);
    let snap = p.snapshot("t");
    assert_eq!((snap.count, snap.seq), (2, 2));
    let mut members = snap.members.unwrap();
    members.sort_by(|a, b| a.client.cmp(&b.client));
    assert_eq!(members, vec![ann.clone(), bob.clone()]);

    let l = p.leave("t", &ann.client).unwrap();
    assert_eq!(
        (l.kind, l.seq, l.member),
        (ChangeKind::Leave, 3, ann.clone()),
        "user kept"
    );
    assert_eq!(p.leave("t", &ann.client), None, "not a member any more");
    assert_eq!(p.leave("other", &ann.client), None);
    assert_eq!(p.count("t"), 1);
    p.leave("t", &bob.client).unwrap();
    assert_eq!(p.topics(), 0, "an empty topic is dropped");
    assert_eq!(
        p.snapshot("t"),
        Snapshot {
            members: Some(vec![]),
            count: 0,
            incarnation: 0,
            seq: 0
        }
    );
    let again = p.join("t", ann.clone()).unwrap();
    assert_eq!(again.seq, 1, "a refilled topic starts over");
    assert_ne!(again.incarnation, j1.incarnation, "under a new incarnation");
}

#[test]
fn above_presence_max_only_the_count_and_events_only_about_shown_members() {
    let p = Presence::new(2);
    assert!(p.join("t", member(1, None)).is_some());
    assert!(p.join("t", member(2, None)).is_some());
    assert!(
        p.snapshot("t").members.is_some(),
        "exactly max is not above it"
    );
    assert_eq!(
        p.join("t", member(3, None)),
        None,
        "third member: above max, never shown"
    );
    let snap = p.snapshot("t");
    assert_eq!((snap.members, snap.count), (None, 3));
    let shown = p.leave("t", &member(1, None).client).unwrap();
    assert_eq!(
        (shown.kind, shown.seq),
        (ChangeKind::Leave, 3),
        "a shown member's leave is announced even from above max (no ghost)"
    );
    assert_eq!(p.snapshot("t").count, 2);
    assert_eq!(
        p.snapshot("t").members,
        None,
        "member 3 was never shown: count only, even at max"
    );
    assert_eq!(p.leave("t", &member(3, None).client), None, "never shown");
    let snap = p.snapshot("t");
    assert_eq!((snap.members, snap.count), (Some(vec![member(2, None)]), 1));
    let back = p.join("t", member(4, None)).unwrap();
    assert_eq!(back.seq, 4, "events resume with the next seq");
}

#[test]
fn joins_and_leaves_from_two_workers_are_each_seen_once() {
    let p = Presence::new(100_000);
    let changes: Vec<Vec<Change>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u16)
            .map(|w| {
                let p = p.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for slot in 0..2500u32 {
                        let m = Member {
                            client: ClientId::new("n1", w, slot, 0),
                            user: None,
                        };
                        out.extend(p.join("room", m.clone()));
                        if slot % 2 == 0 {
                            out.extend(p.leave("room", &m.client));
                        }
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<&Change> = changes.iter().flatten().collect();
    assert_eq!(
        all.len(),
        2 * (2500 + 1250),
        "10,000 joins and leaves, all with events"
    );
    // Incarnations only grow; within one, seq is 1, 2, 3, … without a hole.
    all.sort_by_key(|c| (c.incarnation, c.seq));
    let mut expect = (0, 0);
    for c in &all {
        if c.incarnation != expect.0 {
            assert!(c.incarnation > expect.0);
            expect = (c.incarnation, 0);
        }
        expect.1 += 1;
        assert_eq!(c.seq, expect.1, "one total order of events, no hole");
    }
    // Replaying the events in seq order gives the final snapshot.
    let mut replayed = std::collections::HashSet::new();
    for c in &all {
        match c.kind {
            ChangeKind::Join => assert!(replayed.insert(c.member.client.clone())),
            ChangeKind::Leave => assert!(replayed.remove(&c.member.client)),
        }
    }
    let snap = p.snapshot("room");
    assert_eq!(snap.count, 2500);
    assert_eq!((snap.incarnation, snap.seq), expect);
    let now: std::collections::HashSet<_> = snap
        .members
        .unwrap()
        .into_iter()
        .map(|m| m.client)
        .collect();
    assert_eq!(now, replayed);
}

/// A presence subscriber's view, built the way a client builds it: its snapshot, then every later
/// event (`seq` above the snapshot's). A count-only snapshot gets no event at all (the server holds
/// them back), so it has no list to corrupt.
struct Watcher {
    /// `None`: count-only view.
    view: Option<std::collections::HashSet<ClientId>>,
    seq: u64,
}

impl Watcher {
    fn new(p: &Presence, topic: &str) -> Watcher {
        let snap = p.snapshot(topic);
        Watcher {
            view: (snap.members).map(|m| m.into_iter().map(|m| m.client).collect()),
            seq: snap.seq,
        }
    }

    /// Applies `change`; panics when it contradicts the view (a leave for someone never shown,
    /// a join for someone already shown).
    fn apply(&mut self, change: &Change, what: &str) {
        assert_eq!(change.seq, self.seq + 1, "{what}: events in seq order");
        self.seq = change.seq;
        let Some(view) = &mut self.view else {
            return;
        };
        match change.kind {
            ChangeKind::Join => assert!(
                view.insert(change.member.client.clone()),
                "{what}: join for {} who was shown already",
                change.member.client
            ),
            ChangeKind::Leave => assert!(
                view.remove(&change.member.client),
                "{what}: leave for {} who was never shown (or already left)",
                change.member.client
            ),
        }
    }
}

/// Issue 21 row 9: crossing `--presence-max` and back never corrupts a listed view: no leave for a
/// member the watcher was not shown, no ghost left behind. The sequence, max 2: A and B
/// in, W watches (shown A, B); C joins (above max); B leaves; D joins; C leaves; D leaves.
#[test]
fn presence_max_crossings_keep_every_listed_view_exact() {
    let p = Presence::new(2);
    let (a, b, c, d) = (
        member(1, None),
        member(2, None),
        member(3, None),
        member(4, None),
    );
    p.join("t", a.clone()).unwrap();
    p.join("t", b.clone()).unwrap();
    let mut w = Watcher::new(&p, "t");
    assert_eq!(w.view.as_ref().map(|v| v.len()), Some(2));
    let mut step = |change: Option<Change>, what: &str| {
        if let Some(change) = change {
            w.apply(&change, what);
        }
    };
    step(p.join("t", c.clone()), "C joins above max");
    assert_eq!(p.snapshot("t").members, None, "count only above max");
    step(p.leave("t", &b.client), "B (shown) leaves above max");
    step(p.join("t", d.clone()), "D joins above max");
    step(p.leave("t", &c.client), "C leaves");
    step(p.leave("t", &d.client), "D (never shown) leaves");
    let now = p.snapshot("t");
    let listed: std::collections::HashSet<_> = now
        .members
        .expect("back under max")
        .into_iter()
        .map(|m| m.client)
        .collect();
    assert_eq!(
        w.view.as_ref(),
        Some(&listed),
        "no ghost of B, no phantom D"
    );
    assert_eq!(listed, [a.client].into_iter().collect());
}

proptest::proptest! {
    /// Any sequence of joins, leaves and new watchers around a small `--presence-max`: every
    /// listed watcher's view stays exactly the listed snapshot a newcomer would get, and never
    /// gets an event that contradicts it.
    #[test]
    fn listed_views_never_contradict_events(
        max in 1usize..4,
        ops in proptest::collection::vec((0u8..3, 0u32..7), 1..120),
    ) {
        let p = Presence::new(max);
        let mut watchers: Vec<Watcher> = Vec::new();
        for (i, (op, slot)) in ops.into_iter().enumerate() {
            let change = match op {
                0 => p.join("t", member(slot, None)),
                1 => p.leave("t", &member(slot, None).client),
                _ => {
                    watchers.push(Watcher::new(&p, "t"));
                    None
                }
            };
            if let Some(change) = change {
                // The topic emptied and filled again: watchers of the old life are gone (a
                // watcher is a member; here they are only observers).
                if watchers.first().is_some_and(|w| change.seq != w.seq + 1) {
                    proptest::prop_assert_eq!(change.seq, 1);
                    watchers.clear();
                    continue;
                }
                for w in &mut watchers {
                    w.apply(&change, &format!("op {i}"));
                }
            }
            let snap = p.snapshot("t");
            if let Some(members) = snap.members {
                let listed: std::collections::HashSet<_> =
                    members.into_iter().map(|m| m.client).collect();
                proptest::prop_assert!(snap.count <= max);
                for w in &watchers {
                    if let Some(view) = &w.view {
                        proptest::prop_assert_eq!(view, &listed, "op {}", i);
                    }
                }
            }
        }
    }
}
