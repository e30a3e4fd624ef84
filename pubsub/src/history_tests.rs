use super::*;
use proptest::prelude::*;

/// A test entry: who appended it and its sequence number there, with a chosen weight.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    from: u32,
    seq: u32,
    size: usize,
}

impl Weigh for Msg {
    fn weight(&self) -> usize {
        self.size
    }
}

fn msg(seq: u32) -> Msg {
    Msg {
        from: 0,
        seq,
        size: 10,
    }
}

fn config(size: usize, ttl_secs: u64, max_bytes: usize) -> HistoryConfig {
    HistoryConfig {
        size,
        ttl_secs,
        max_bytes,
        node_id: "n1".into(),
        instance: 0xabc,
    }
}

fn seqs(entries: &[Msg]) -> Vec<u32> {
    entries.iter().map(|m| m.seq).collect()
}

#[test]
fn offsets_start_at_one_and_count_by_one() {
    let h = History::new(config(100, 0, 1 << 20));
    let mut t = h.topic("room");
    let p = t.position(0);
    assert_eq!(p.offset, 0, "an empty topic has offset 0");
    assert!(
        p.epoch.starts_with("n1-abc-"),
        "the epoch names node and instance: {}",
        p.epoch
    );
    let a = t.append([msg(1)], 0);
    assert_eq!((a.first, a.last), (1, 1));
    let b = t.append((2..5).map(msg), 0);
    assert_eq!((b.first, b.last), (2, 4));
    let empty = t.append([], 0);
    assert_eq!((empty.first, empty.last), (5, 4));
    assert_eq!(
        t.position(0),
        Position {
            epoch: p.epoch,
            offset: 4
        }
    );
}

#[test]
fn two_threads_share_one_total_order() {
    let h: History<Msg> = History::new(config(100_000, 0, 1 << 30));
    let runs: Vec<Vec<(Appended, u32, u32)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u32)
            .map(|from| {
                let mut t = h.topic("shared");
                s.spawn(move || {
                    let mut seq = 0;
                    let mut out = Vec::new();
                    for turn in 0..2000u32 {
                        let n = 1 + (turn * 7 + from) % 5;
                        let batch = (seq..seq + n).map(|seq| Msg { from, seq, size: 1 });
                        out.push((t.append(batch, 0), seq, n));
                        seq += n;
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    // The ranges tile 1..=total without gap or overlap.
    let mut ranges: Vec<(u64, u64)> = runs
        .iter()
        .flatten()
        .map(|(a, _, _)| (a.first, a.last))
        .collect();
    ranges.sort_unstable();
    let mut next = 1;
    for (first, last) in &ranges {
        assert_eq!(*first, next);
        next = last + 1;
    }
    // The held log is exactly what each append said it took, at those offsets.
    let all = h.topic("shared").last(usize::MAX, 0);
    assert_eq!(all.first, 1);
    assert_eq!(all.through, next - 1);
    for (from, run) in runs.iter().enumerate() {
        for (a, seq, n) in run {
            let got = &all.entries[(a.first - 1) as usize..a.last as usize];
            assert_eq!(got.len() as u32, *n);
            for (i, m) in got.iter().enumerate() {
                assert_eq!((m.from, m.seq), (from as u32, seq + i as u32));
            }
        }
    }
}

#[test]
fn size_keeps_the_newest_and_last_n_returns_them() {
    let h = History::new(config(3, 0, 1 << 20));
    let mut t = h.topic("room");
    t.append((1..=5).map(msg), 0);
    let r = t.last(2, 0);
    assert_eq!((seqs(&r.entries), r.first, r.through), (vec![4, 5], 4, 5));
    let r = t.last(10, 0);
    assert_eq!((seqs(&r.entries), r.first), (vec![3, 4, 5], 3));
    let r = t.last(0, 0);
    assert_eq!((r.entries.len(), r.first, r.through), (0, 6, 5));
}

#[test]
fn since_offset_exact_too_old_wrong_epoch_future() {
    let h = History::new(config(3, 0, 1 << 20));
    let mut t = h.topic("room");
    t.append((1..=5).map(msg), 0);
    let epoch = t.position(0).epoch;
    let recovered = |r: Recovery<Msg>| match r {
        Recovery::Recovered(r) => Some((seqs(&r.entries), r.through)),
        Recovery::NotRecovered(p) => {
            assert_eq!(p.offset, 5);
            None
        }
    };
    assert_eq!(
        recovered(t.since(2, &epoch, 0)),
        Some((vec![3, 4, 5], 5)),
        "oldest held"
    );
    assert_eq!(recovered(t.since(4, &epoch, 0)), Some((vec![5], 5)));
    assert_eq!(
        recovered(t.since(5, &epoch, 0)),
        Some((vec![], 5)),
        "up to date"
    );
    assert_eq!(recovered(t.since(1, &epoch, 0)), None, "message 2 is gone");
    assert_eq!(recovered(t.since(0, &epoch, 0)), None);
    assert_eq!(recovered(t.since(6, &epoch, 0)), None, "future offset");
    assert_eq!(recovered(t.since(u64::MAX, &epoch, 0)), None);
    assert_eq!(recovered(t.since(4, "n1-abc-99", 0)), None, "wrong epoch");
    // An empty topic: offset 0 in its epoch recovers nothing, honestly.
    let mut e = h.topic("empty");
    let ep = e.position(0).epoch;
    assert_eq!(recovered_empty(e.since(0, &ep, 0)), Some(0));
}

#[test]
fn a_hole_stops_resumes_from_before_it_but_keeps_what_is_held() {
    let h = History::new(config(10, 0, 1 << 20));
    let mut t = h.topic("room");
    t.append((1..=3).map(msg), 0);
    let epoch = t.position(0).epoch;
    h.mark_hole("room");
    h.mark_hole("never-appended"); // nothing to mark: a new topic has a new epoch anyway
    t.append((4..=5).map(msg), 0);
    for before in [1, 3] {
        assert!(
            matches!(t.since(before, &epoch, 0), Recovery::NotRecovered(_)),
            "offset {before} is before the hole"
        );
    }
    match t.since(4, &epoch, 0) {
        Recovery::Recovered(r) => assert_eq!(seqs(&r.entries), vec![5], "after the hole"),
        Recovery::NotRecovered(p) => panic!("after the hole: {p:?}"),
    }
    let last = t.last(10, 0);
    assert_eq!(
        (seqs(&last.entries), &last.epoch),
        (vec![1, 2, 3, 4, 5], &epoch)
    );
}

fn recovered_empty(r: Recovery<Msg>) -> Option<u64> {
    match r {
        Recovery::Recovered(r) if r.entries.is_empty() => Some(r.through),
        _ => None,
    }
}

#[test]
fn ttl_prunes_old_messages_but_keeps_the_epoch() {
    let h = History::new(config(100, 10, 1 << 20));
    let mut t = h.topic("room");
    t.append((1..=2).map(msg), 100);
    t.append((3..=4).map(msg), 105);
    let epoch = t.position(100).epoch;
    assert_eq!(seqs(&t.last(10, 109).entries), vec![1, 2, 3, 4]);
    assert_eq!(
        seqs(&t.last(10, 110).entries),
        vec![3, 4],
        "held for exactly ttl seconds"
    );
    assert!(matches!(t.since(1, &epoch, 110), Recovery::NotRecovered(_)));
    assert!(matches!(t.since(2, &epoch, 110), Recovery::Recovered(_)));
    let before = h.bytes();
    h.prune_expired(115);
    assert!(h.bytes() < before, "the sweep frees the bytes");
    let p = t.position(115);
    assert_eq!(
        (p.epoch, p.offset),
        (epoch.clone(), 4),
        "offsets continue, epoch kept"
    );
    assert!(matches!(t.since(4, &epoch, 115), Recovery::Recovered(_)));
    assert_eq!(t.append([msg(5)], 115).first, 5);
}

#[test]
fn the_bounded_sweep_visits_every_topic_a_few_at_a_time() {
    let h = History::new(config(100, 10, 1 << 20));
    for name in ["a", "b", "c", "d", "e"] {
        h.topic(name).append([msg(1)], 100);
    }
    let full = h.bytes();
    assert_eq!(h.sweep_expired(105, 2), 2, "bounded");
    assert_eq!(h.bytes(), full, "nothing expired yet");
    // The pass continues from where it stopped: three more topics in two steps.
    assert_eq!(h.sweep_expired(110, 2), 2);
    assert_eq!(h.sweep_expired(110, 2), 1);
    let after_first_pass = h.bytes();
    assert!(
        after_first_pass < full,
        "the topics visited at 110 freed their message"
    );
    // A new pass visits the two topics seen at 105 as well.
    assert_eq!(h.sweep_expired(110, 8), 5);
    assert!(h.bytes() < after_first_pass);
    assert!(h.bytes() >= 5 * TOPIC_OVERHEAD, "topics themselves stay");
    let quiet = History::<Msg>::new(config(100, 0, 1 << 20));
    quiet.topic("a").append([msg(1)], 100);
    assert_eq!(quiet.sweep_expired(1_000, 8), 0, "no TTL, no sweep");
}

#[test]
fn budget_evicts_the_least_recently_appended_topic_and_changes_its_epoch() {
    let big = |seq| Msg {
        from: 0,
        seq,
        size: 20_000,
    };
    // Room for three topics of one message each, not four (a topic of one message costs its
    // own charge, its log's slots and the message).
    let probe: History<Msg> = History::new(config(1, 0, usize::MAX));
    probe.topic("a").append([big(1)], 0);
    let one = probe.bytes();
    let h = History::new(config(1, 0, 3 * one + one / 2));
    let mut a = h.topic("a");
    let mut b = h.topic("b");
    let mut c = h.topic("c");
    a.append([big(1)], 0);
    b.append([big(1)], 0);
    c.append([big(1)], 0);
    let epoch_a = a.position(0).epoch;
    let epoch_b = b.position(0).epoch;
    a.append([big(2)], 0); // a is now the most recent, b the oldest
    assert!(h.bytes() <= h.config().max_bytes);
    assert_eq!(h.topics(), 3, "{} bytes", h.bytes());
    let mut d = h.topic("d");
    d.append([big(1)], 0);
    assert!(h.bytes() <= h.config().max_bytes);
    assert!(
        matches!(a.since(1, &epoch_a, 0), Recovery::Recovered(_)),
        "a survived"
    );
    assert_eq!(h.topics(), 3, "only b went");
    // b was evicted: it comes back empty, under a new epoch.
    let p = b.position(0);
    assert_ne!(p.epoch, epoch_b);
    assert_eq!(p.offset, 0);
    assert!(matches!(b.since(1, &epoch_b, 0), Recovery::NotRecovered(_)));
    assert_eq!(b.append([big(2)], 0).first, 1);
}

#[test]
fn a_new_instance_never_reuses_an_epoch() {
    let one: History<Msg> = History::new(config(10, 0, 1 << 20));
    let two: History<Msg> = History::new(HistoryConfig {
        instance: random_instance(),
        ..config(10, 0, 1 << 20)
    });
    let other_node: History<Msg> = History::new(HistoryConfig {
        node_id: "n2".into(),
        ..config(10, 0, 1 << 20)
    });
    let e1 = one.topic("t").position(0).epoch;
    assert_ne!(e1, two.topic("t").position(0).epoch);
    assert_ne!(e1, other_node.topic("t").position(0).epoch);
    assert_ne!(random_instance(), random_instance());
}

#[test]
fn replay_shares_the_buffer() {
    let h = History::new(config(10, 0, 1 << 20));
    let buf: Arc<[u8]> = Arc::from(&b"hello world"[..]);
    let mut t = h.topic("room");
    let spans = [0..5, 6..11].map(|r| SharedSpan::new(buf.clone(), r).unwrap());
    t.append(spans, 0);
    let r = t.last(2, 0);
    assert_eq!(r.entries[0].bytes(), b"hello");
    assert_eq!(r.entries[1].bytes(), b"world");
    assert!(Arc::ptr_eq(r.entries[1].buffer(), &buf), "no copy");
    assert!(SharedSpan::new(buf.clone(), 5..12).is_none());
}

#[test]
fn a_message_bigger_than_the_budget_evicts_its_topic_without_hanging() {
    let h = History::new(config(10, 0, 0));
    assert_eq!(
        h.config().max_bytes,
        MIN_MAX_BYTES,
        "a tiny budget is raised"
    );
    let mut t = h.topic("room");
    let epoch = t.position(0).epoch;
    let a = t.append(
        [Msg {
            from: 0,
            seq: 1,
            size: 2 * MIN_MAX_BYTES,
        }],
        0,
    );
    assert_eq!((a.first, a.last, &a.epoch), (1, 1, &epoch));
    assert!(h.bytes() <= MIN_MAX_BYTES);
    assert!(
        matches!(t.since(0, &epoch, 0), Recovery::NotRecovered(_)),
        "it is gone"
    );
    assert_ne!(t.position(0).epoch, epoch);
}

proptest! {
    #[test]
    fn memory_stays_within_budget_under_a_flood_of_topics(
        max_bytes in MIN_MAX_BYTES..4 * MIN_MAX_BYTES,
        ops in proptest::collection::vec((0u32..2000, 0usize..3000, 1usize..4), 1..400),
    ) {
        let h = History::new(config(5, 0, max_bytes));
        let mut handles: HashMap<u32, TopicHandle<Msg>> = HashMap::new();
        for (i, (topic, size, n)) in ops.into_iter().enumerate() {
            let t = handles.entry(topic).or_insert_with(|| h.topic(&format!("topic-{topic}")));
            let a = t.append((0..n).map(|k| Msg { from: 0, seq: k as u32, size }), i as u64);
            prop_assert_eq!(a.last + 1 - a.first, n as u64);
            prop_assert!(h.bytes() <= max_bytes, "{} > {}", h.bytes(), max_bytes);
            // The accounting matches what is really held.
            let index = lock(&h.shared.index);
            let real: usize = index
                .values()
                .map(|t| {
                    let log = lock(&t.log);
                    TOPIC_OVERHEAD + t.name.len() + log.epoch.len() + log.recount()
                })
                .sum();
            prop_assert_eq!(real, h.bytes());
        }
    }
}

#[test]
fn break_continuity_starts_a_new_epoch_for_held_handles() {
    let h = History::new(config(10, 0, 1 << 20));
    let (mut a, mut b) = (h.topic("a"), h.topic("b"));
    a.append((1..=3).map(msg), 0);
    b.append((1..=3).map(msg), 0);
    let (ea, eb) = (a.position(0).epoch, b.position(0).epoch);
    h.break_continuity(Some("a"));
    let p = a.position(0);
    assert_ne!(p.epoch, ea, "a lost continuity");
    assert_eq!(p.offset, 0);
    assert!(matches!(a.since(3, &ea, 0), Recovery::NotRecovered(_)));
    assert_eq!(b.position(0).epoch, eb, "b untouched");
    h.break_continuity(None);
    assert_ne!(b.position(0).epoch, eb, "every topic");
    assert_eq!(h.bytes() > 0, h.topics() > 0);
}

#[test]
fn append_with_builds_under_the_lock_with_the_run_it_takes() {
    let h = History::new(config(10, 0, 1 << 20));
    let mut t = h.topic("t");
    t.append([msg(1)], 0);
    let epoch = t.position(0).epoch;
    let a = t.append_with(3, 0, |e, first| {
        assert_eq!((e, first), (&epoch, 2), "built for the offsets it takes");
        (0..3).map(|i| msg(first as u32 + i)).collect()
    });
    assert_eq!((a.first, a.last), (2, 4));
    assert_eq!(t.append([msg(5)], 0).first, 5, "one namespace with append");
    let Recovery::Recovered(r) = t.since(1, &epoch, 0) else {
        panic!("not recovered")
    };
    assert_eq!(r.entries, (2..=5).map(msg).collect::<Vec<_>>());
    // Without history, offsets are still counted, nothing is held.
    let none = History::new(config(0, 0, 1 << 20));
    let mut t = none.topic("t");
    assert_eq!(t.append_with(2, 0, |_, f| vec![msg(f as u32); 2]).last, 2);
    assert!(t.last(10, 0).entries.is_empty());
}

/// Issue 21 row 6: shared spans are charged their whole buffer once per run, runs that use a
/// small part of their buffer are copied out, and replays still return the right bytes in order.
#[test]
fn shared_spans_are_charged_their_buffer_once_and_partial_runs_compacted() {
    let h: History<SharedSpan> = History::new(config(5, 0, usize::MAX));
    let mut t = h.topic("t");
    let mut next = 0u32;
    let mut sent: Vec<Vec<u8>> = Vec::new();
    for n in [3usize, 1, 8, 2, 2, 64, 1, 4, 7] {
        // A batch buffer with a header and separators, like an encoded batch.
        let mut buf = b"[header]".to_vec();
        let mut ranges = Vec::new();
        for _ in 0..n {
            let msg = format!("message-{next}").into_bytes();
            next += 1;
            ranges.push(buf.len()..buf.len() + msg.len());
            buf.extend_from_slice(&msg);
            buf.push(b',');
            sent.push(msg);
        }
        let buf: Arc<[u8]> = buf.into();
        let whole = buf.len();
        t.append(
            ranges
                .into_iter()
                .map(|r| SharedSpan::new(buf.clone(), r).unwrap()),
            0,
        );
        let replay = t.last(usize::MAX, 0);
        let got: Vec<&[u8]> = replay.entries.iter().map(SharedSpan::bytes).collect();
        let want: Vec<&[u8]> = sent[sent.len() - got.len()..]
            .iter()
            .map(|m| &m[..])
            .collect();
        assert_eq!(got, want, "after a batch of {n}");
        assert_eq!(got.len(), 5.min(sent.len()));
        // Every run uses at least half of what it keeps alive, or is small.
        for e in &replay.entries {
            let run: usize = (replay.entries.iter())
                .filter(|o| o.shares_allocation(e))
                .map(Weigh::used)
                .sum();
            assert!(
                run * 2 >= e.buffer().len() || e.weight() - run <= 4 * BLOCK_OVERHEAD,
                "a run of {run} B keeps {} B alive (batch of {whole} B)",
                e.buffer().len()
            );
        }
        drop(replay);
        let index = lock(&h.shared.index);
        let log = lock(&index["t"].log);
        assert_eq!(
            TOPIC_OVERHEAD + "t".len() + log.epoch.len() + log.recount(),
            h.bytes()
        );
    }
}
