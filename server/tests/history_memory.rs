//! Issue 21 item 3: the history budget (`--history-max-bytes`, docs/limits.md#pubsub-memory and
//! docs/pubsub.md#history) must match what the process really holds. Black-box against the
//! binary: pub/sub publishers flood many topics with many messages, in large batches (one
//! event-loop turn holds messages for many topics, the case where a held message could keep a
//! whole per-turn buffer alive), while subscribers read everything; then a flood of tiny new
//! topics (per-topic overhead). A second test keeps a history smaller than the batches that
//! feed it (a few held messages of a topic's turn pinning the whole batch buffer, issue 21
//! row 6). The server's RSS growth must stay within
//! `FACTOR` × budget + `ALLOWANCE`.
//!
//! Why 3× + 32 MiB: the budget counts bytes held; the allocator adds per-size-class rounding
//! and fragmentation from evicting whole topics in the middle of its pages (up to about 2×
//! for these message sizes), and the process keeps freed memory for reuse instead of returning
//! it (mimalloc), so "3×" leaves room for both. The fixed 32 MiB covers what is not history
//! and is not bounded by the budget: the grown receive/send buffers of the 40 connections, the
//! worker hand-off queues (16 MiB per worker at most, docs/limits.md#between-workers, drained
//! before the measurement but kept by the allocator) and allocator caches per thread. A budget
//! undercounted 100× (issue 21 row 6: +529 MiB under 8 MiB) fails by far.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::Server;
use common::json::{Ws, client, recv, subscribe};
use common::proc::{mib, rss_kib};
use tungstenite::Message;

const BUDGET: u64 = 8 << 20;
const FACTOR: u64 = 3;
const ALLOWANCE: u64 = 32 << 20;
/// Topics with a subscriber (64 per subscriber connection, `--max-subscriptions`).
const TOPICS: usize = 2048;
const PER_SUB: usize = 64;
const PUBLISHERS: usize = 4;
/// Publishes per batch: one write, so one server turn holds messages for many topics.
const BATCH: usize = 256;
/// Bytes of each message's `data` (a JSON string, quotes included).
const DATA: usize = 500;

fn server() -> Server {
    let budget = BUDGET.to_string();
    Server::start(&[
        "--workers",
        "2",
        "--history-size",
        "100",
        "--history-max-bytes",
        &budget,
        // Subscribers read as fast as they can; on a loaded 2-core machine they may still lag
        // a turn behind, and a 1008 would end the test for a reason that is not the budget.
        "--max-backpressure",
        "67108864",
    ])
}

/// A subscriber of `topics`: counts messages until it has seen `"end"` on each of them.
fn subscriber(
    mut ws: Ws,
    topics: Vec<String>,
    received: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    for t in &topics {
        subscribe(&mut ws, t, "");
    }
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    std::thread::spawn(move || {
        let mut open = topics.len();
        while open > 0 {
            match ws.read().expect("subscriber read") {
                Message::Text(t) => {
                    received.fetch_add(1, Ordering::Relaxed);
                    if t.as_str().ends_with(r#""data":"end"}"#)
                        || t.as_str().contains(r#""data":"end","#)
                    {
                        open -= 1;
                    }
                }
                Message::Close(c) => panic!("subscriber closed by the server: {c:?}"),
                _ => {}
            }
        }
    })
}

/// Sends `reqs` in one write (one server turn, as far as the kernel keeps them together).
fn send_batch(ws: &mut Ws, reqs: impl Iterator<Item = String>) {
    for r in reqs {
        ws.write(Message::text(r)).expect("write");
    }
    ws.flush().expect("flush");
}

/// Waits for the reply carrying `id` (a publisher gets only replies).
fn await_id(ws: &mut Ws, id: &str) {
    loop {
        let v = recv(ws);
        assert_ne!(v["op"], "error", "{v}");
        if v["id"] == id {
            return;
        }
    }
}

/// Highest RSS over a short window (the allocator takes and returns memory lazily).
fn settled_rss(pid: u32) -> u64 {
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// Publishes `rounds` batches per publisher over topics `t0..t{TOPICS}`, publisher `p` taking
/// every `PUBLISHERS`-th topic from its own start, each batch acknowledged before the next.
fn flood_topics(pubs: &mut [Ws], rounds: usize, tag: &str) {
    let filler = "x".repeat(DATA - 2 - 16);
    std::thread::scope(|s| {
        for (p, ws) in pubs.iter_mut().enumerate() {
            let filler = &filler;
            s.spawn(move || {
                let mut next = p;
                for r in 0..rounds {
                    let reqs = (0..BATCH).map(|i| {
                        let topic = next % TOPICS;
                        next += PUBLISHERS + (i % 3);
                        format!(
                            r#"{{"op":"publish","topic":"t{topic}","data":"{tag}{p:03}{r:06}{i:05}{filler}"}}"#
                        )
                    });
                    send_batch(ws, reqs);
                    let id = format!("{tag}-{r}");
                    let ack = format!(r#"{{"op":"publish","topic":"ack","id":"{id}","data":0}}"#);
                    send_batch(ws, std::iter::once(ack));
                    await_id(ws, &id);
                }
            });
        }
    });
}

#[test]
fn rss_growth_stays_within_a_factor_of_the_history_budget() {
    let s = server();
    let pid = s.pid();
    let received = Arc::new(AtomicU64::new(0));
    let subs: Vec<_> = (0..TOPICS / PER_SUB)
        .map(|k| {
            let topics = (k * PER_SUB..(k + 1) * PER_SUB)
                .map(|t| format!("t{t}"))
                .collect();
            subscriber(client(&s), topics, received.clone())
        })
        .collect();
    let mut pubs: Vec<Ws> = (0..PUBLISHERS).map(|_| client(&s)).collect();
    // Every connection open and subscribed, no history yet: the growth is measured from here.
    let start = settled_rss(pid);

    let peak = Arc::new(AtomicU64::new(start));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    // Warm-up: fills the budget once and grows every buffer and allocator cache to its working
    // size (reported apart: what the floods add beyond a full budget).
    flood_topics(&mut pubs, 40, "w");
    let before = settled_rss(pid);

    // 1. Many messages over many subscribed topics: 4 × 400 × 256 × 500 B ≈ 200 MB of data,
    //    about 25 times the budget.
    flood_topics(&mut pubs, 400, "m");
    let charged_1 = s.metric("ringcast_history_bytes");
    let topics_1 = s.metric("ringcast_history_topics");
    // Every subscriber's topics end with "end"; then everything sent has been delivered.
    for (p, ws) in pubs.iter_mut().enumerate() {
        let reqs = (p..TOPICS)
            .step_by(PUBLISHERS)
            .map(|t| format!(r#"{{"op":"publish","topic":"t{t}","data":"end"}}"#));
        send_batch(ws, reqs);
    }
    for h in subs {
        h.join().expect("subscriber");
    }
    let after_1 = settled_rss(pid);

    // 2. A flood of tiny new topics without subscribers: 200,000 topics of one 1-byte message
    //    (each charged its topic overhead; ~20,000 fit the budget).
    std::thread::scope(|sc| {
        for (p, ws) in pubs.iter_mut().enumerate() {
            sc.spawn(move || {
                for r in 0..200_000 / PUBLISHERS / BATCH {
                    let reqs = (0..BATCH).map(|i| {
                        format!(r#"{{"op":"publish","topic":"tiny-{p}-{r}-{i}","data":1}}"#)
                    });
                    send_batch(ws, reqs);
                    let id = format!("tiny-{r}");
                    let ack = format!(r#"{{"op":"publish","topic":"ack","id":"{id}","data":0}}"#);
                    send_batch(ws, std::iter::once(ack));
                    await_id(ws, &id);
                }
            });
        }
    });
    let charged_2 = s.metric("ringcast_history_bytes");
    let topics_2 = s.metric("ringcast_history_topics");
    let after_2 = settled_rss(pid);
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);

    let bound_kib = (FACTOR * BUDGET + ALLOWANCE) >> 10;
    let grown_1 = after_1.saturating_sub(start);
    let grown_2 = after_2.saturating_sub(start);
    let grown_peak = peak.saturating_sub(start);
    eprintln!(
        "history budget {} MiB: RSS {:.1} MiB with every client connected, {:.1} MiB after the \
         warm-up; after the topic flood {:.1} MiB (+{:.1}; history {charged_1} B charged in \
         {topics_1} topics, {} messages delivered); after the tiny-topic flood {:.1} MiB \
         (+{:.1}; {charged_2} B in {topics_2} topics); peak {:.1} MiB (+{:.1}); bound +{:.1} MiB",
        BUDGET >> 20,
        mib(start),
        mib(before),
        mib(after_1),
        mib(grown_1),
        received.load(Ordering::Relaxed),
        mib(after_2),
        mib(grown_2),
        mib(peak),
        mib(grown_peak),
        mib(bound_kib)
    );
    assert!(
        charged_1 <= BUDGET && charged_2 <= BUDGET,
        "history over its budget"
    );
    for (what, grown) in [("topic flood", grown_1), ("tiny-topic flood", grown_2)] {
        assert!(
            grown <= bound_kib,
            "{what}: RSS grew {:.1} MiB, over {FACTOR} x {} MiB + {} MiB",
            mib(grown),
            BUDGET >> 20,
            ALLOWANCE >> 20
        );
    }
}

/// Issue 21 row 6, the shape that undercounted: a history smaller than the batches that feed
/// it. Each topic gets one turn of 64 messages of 512 bytes (one buffer of ~34 KB for the
/// topic's turn) and keeps only the last 4 (`--history-size 4`). Charged as 4 messages, each
/// topic would pin its whole buffer: ~3,900 topics in 8 MiB, ~120 MB. Same bound as above.
#[test]
fn a_small_history_of_large_batches_stays_within_a_factor_of_the_budget() {
    let budget = BUDGET.to_string();
    let s = Server::start(&[
        "--workers",
        "2",
        "--history-size",
        "4",
        "--history-max-bytes",
        &budget,
    ]);
    let pid = s.pid();
    let mut pubs: Vec<Ws> = (0..PUBLISHERS).map(|_| client(&s)).collect();
    let start = settled_rss(pid);
    let filler = "z".repeat(512 - 2 - 12);
    let flood = |pubs: &mut [Ws], tag: &str, topics: usize| {
        std::thread::scope(|sc| {
            for (p, ws) in pubs.iter_mut().enumerate() {
                let filler = &filler;
                sc.spawn(move || {
                    for t in 0..topics / PUBLISHERS {
                        let reqs = (0..64).map(|i| {
                            format!(
                                r#"{{"op":"publish","topic":"{tag}-{p}-{t}","data":"{t:08}{i:04}{filler}"}}"#
                            )
                        });
                        send_batch(ws, reqs);
                        if t % 16 == 15 {
                            let id = format!("{tag}-{t}");
                            let ack =
                                format!(r#"{{"op":"publish","topic":"ack","id":"{id}","data":0}}"#);
                            send_batch(ws, std::iter::once(ack));
                            await_id(ws, &id);
                        }
                    }
                });
            }
        });
    };
    // 6,000 topics x 64 x 512 B ≈ 197 MB sent, every topic a new one.
    flood(&mut pubs, "b", 6_000);
    let charged = s.metric("ringcast_history_bytes");
    let topics = s.metric("ringcast_history_topics");
    let after = settled_rss(pid);
    let grown = after.saturating_sub(start);
    let bound_kib = (FACTOR * BUDGET + ALLOWANCE) >> 10;
    eprintln!(
        "history budget {} MiB, 4 kept of each 64-message batch: RSS {:.1} -> {:.1} MiB \
         (+{:.1}; {charged} B charged in {topics} topics); bound +{:.1} MiB",
        BUDGET >> 20,
        mib(start),
        mib(after),
        mib(grown),
        mib(bound_kib)
    );
    assert!(charged <= BUDGET, "history over its budget");
    assert!(
        grown <= bound_kib,
        "RSS grew {:.1} MiB, over {FACTOR} x {} MiB + {} MiB",
        mib(grown),
        BUDGET >> 20,
        ALLOWANCE >> 20
    );
}

/// What a checking subscriber saw: messages, and per topic offsets that skipped ahead (a hole)
/// or went back to anything but 1 (a new epoch starts at 1).
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    received: u64,
    holes: u64,
    backwards: u64,
}

/// Like [`subscriber`], and checks each topic's offsets; after the last `"end"` it reads on
/// until the server has been quiet for 2 s (pacing only: what is lost never comes).
fn checking_subscriber(mut ws: Ws, topics: Vec<String>) -> std::thread::JoinHandle<Tally> {
    let mut last = std::collections::HashMap::new();
    for t in &topics {
        let v = subscribe(&mut ws, t, "");
        last.insert(t.clone(), v["offset"].as_u64().expect("offset"));
    }
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    std::thread::spawn(move || {
        let mut open = topics.len();
        let mut tally = Tally::default();
        loop {
            let m = match ws.read() {
                Ok(m) => m,
                Err(_) if open == 0 => return tally,
                Err(e) => panic!("subscriber read: {e}"),
            };
            let Message::Text(t) = m else { continue };
            let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("JSON");
            assert_eq!(v["op"], "message", "{v}");
            tally.received += 1;
            let topic = v["topic"].as_str().expect("topic").to_owned();
            let o = v["offset"].as_u64().expect("offset");
            let prev = last.insert(topic, o).unwrap_or(0);
            if o > prev + 1 {
                tally.holes += 1;
            } else if o <= prev && o != 1 {
                tally.backwards += 1;
            }
            if v["data"] == "end" {
                open -= 1;
                if open == 0 {
                    ws.get_mut()
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                }
            }
        }
    })
}

/// Found while writing the test above, on main at 89410fb: with 2 workers, when subscribed
/// topics are evicted from the history budget while messages flow, published (and
/// acknowledged) messages never reach their subscriber. Five runs of this test: 720, 182, 0,
/// 345 and 0 of 206,848 lost; each loss shows at the subscriber as offsets going from the old
/// epoch's last (say 5) to 2: the new epoch's offset 1 never came (docs/pubsub.md#history:
/// consecutive offsets; docs/pubsub.md#what-the-server-sends: every publish reaches every
/// subscriber). Cause, by reading `server/src/fanout/order.rs` (`Order::deliver`): a batch of
/// an epoch the room does not expect sets the expectation to that batch's first offset; when
/// the new epoch's offsets 2.. (appended by one worker) reach the subscriber's worker before
/// offset 1 (appended by the other), the room expects 3, and offset 1 is then dropped as
/// "covered by an earlier batch". A new epoch always starts at offset 1, so the expectation
/// should be (epoch, 1), holding later batches until it arrives: fixed in
/// `rooms::stream::RoomStream::place`.
#[test]
fn no_message_is_lost_when_subscribed_topics_are_evicted() {
    let s = server();
    let handles: Vec<_> = (0..TOPICS / PER_SUB)
        .map(|k| {
            let topics = (k * PER_SUB..(k + 1) * PER_SUB)
                .map(|t| format!("t{t}"))
                .collect();
            checking_subscriber(client(&s), topics)
        })
        .collect();
    let mut pubs: Vec<Ws> = (0..PUBLISHERS).map(|_| client(&s)).collect();
    const ROUNDS: usize = 200;
    flood_topics(&mut pubs, ROUNDS, "m");
    for (p, ws) in pubs.iter_mut().enumerate() {
        let reqs = (p..TOPICS)
            .step_by(PUBLISHERS)
            .map(|t| format!(r#"{{"op":"publish","topic":"t{t}","data":"end"}}"#));
        send_batch(ws, reqs);
    }
    let mut total = Tally::default();
    for h in handles {
        let t = h.join().expect("subscriber");
        total.received += t.received;
        total.holes += t.holes;
        total.backwards += t.backwards;
    }
    let sent = (PUBLISHERS * ROUNDS * BATCH + TOPICS) as u64;
    let topics = s.metric("ringcast_history_topics");
    eprintln!(
        "sent {sent}, delivered {}, offset holes {}, offsets back to other than 1: {} \
         ({topics} topics held at the end)",
        total.received, total.holes, total.backwards
    );
    assert_eq!(total.received, sent, "messages lost under eviction");
    // Across an eviction, a late batch of the old epoch (another worker's channel was slower
    // than the new epoch's first batch) is delivered rather than lost, so a subscriber may see
    // the old epoch's last offsets after the new epoch's first (rooms::stream::Place::Stale);
    // each such batch shows as a jump and a step back (printed above, not asserted: how many
    // depends on the machine's scheduling). Within an epoch, order holds (order.rs tests).
}
