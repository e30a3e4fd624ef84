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
fn above_presence_max_only_the_count_and_no_events() {
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
        "third member: above max"
    );
    let snap = p.snapshot("t");
    assert_eq!((snap.members, snap.count), (None, 3));
    assert_eq!(
        p.leave("t", &member(1, None).client),
        None,
        "leaving from above max"
    );
    assert_eq!(p.snapshot("t").count, 2);
    let back = p.leave("t", &member(2, None).client).unwrap();
    assert_eq!(back.seq, 3, "events resume with the next seq");
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
