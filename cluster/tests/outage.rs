//! Redis killed with SIGKILL mid-run and started again on the same port: what was lost equals
//! the gaps counted, and delivery is complete again within 5 s of Redis being back.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Node, RedisServer};
use ringcast_cluster::{BusEvent, BusMessage, MessageKind};

#[test]
fn redis_restart_loses_only_counted_gaps_and_recovers() {
    let mut redis = RedisServer::start();
    let urls = [redis.url()];
    let a = Node::named("pub", &urls, Duration::from_secs(5));
    let mut b = Node::named("sub", &urls, Duration::from_secs(5));
    a.wait_up(true);
    b.wait_up(true);
    b.bus.subscribe("r").unwrap();
    b.presence("r");

    // A publisher thread at ~2,000 msgs/s; `next` is the index of the next message it sends.
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (bus, next, stop) = (a.bus.clone(), next.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let _ =
                    bus.try_publish("r", vec![BusMessage::new(MessageKind::Text, i.to_string())]);
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };

    // Every event of B is recorded by `pump`, so nothing is lost while waiting for Up changes.
    #[derive(Default)]
    struct Seen {
        received: Vec<u64>,
        gaps: u64,
        ups: Vec<bool>,
    }
    let mut seen = Seen::default();
    let mut pump = |until: &mut dyn FnMut(&Seen) -> bool, what: &str| {
        b.wait_for(Duration::from_secs(10), what, |e| {
            match e {
                BusEvent::Messages { messages, .. } => {
                    for m in messages {
                        seen.received
                            .push(std::str::from_utf8(&m.payload).unwrap().parse().unwrap());
                    }
                }
                BusEvent::Gap { missed, .. } => seen.gaps += missed,
                BusEvent::Up(up) => seen.ups.push(up),
                _ => {}
            }
            until(&seen).then_some(())
        })
    };
    pump(
        &mut |s| s.received.len() >= 300,
        "300 messages before the outage",
    );

    redis.kill();
    pump(&mut |s| s.ups.ends_with(&[false]), "Up(false)");
    // Let the publisher run into the outage for a while (messages here must be dropped).
    let down_at = next.load(Ordering::SeqCst);
    while next.load(Ordering::SeqCst) < down_at + 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    redis.restart();
    let back = Instant::now();
    pump(&mut |s| s.ups.ends_with(&[true]), "Up(true)");
    a.wait_up(true);
    let recovered = back.elapsed();
    assert!(
        recovered <= Duration::from_secs(5),
        "links up {recovered:?} after Redis came back"
    );
    // Everything sent from now on must arrive.
    let from = next.load(Ordering::SeqCst);
    pump(
        &mut |s| s.received.last().is_some_and(|&l| l >= from + 300),
        "300 messages after the outage",
    );
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    let Seen {
        received,
        gaps,
        ups,
    } = seen;
    assert_eq!(ups, [false, true]);

    let last = *received.last().unwrap();
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "order kept, no duplicates"
    );
    assert!(
        (from..=last).all(|i| received.binary_search(&i).is_ok()),
        "complete after recovery"
    );
    assert!(gaps > 0, "the outage lost messages");
    assert_eq!(
        received.len() as u64 + gaps,
        last + 1,
        "loss == gaps counted"
    );
    let (sa, sb) = (a.bus.stats(), b.bus.stats());
    assert_eq!(sb.gaps, gaps);
    assert!(sa.dropped > 0 && sa.up && sb.up);
    println!(
        "outage: sent {}, received {}, gaps {gaps}, dropped at publisher {}, links up {recovered:?} after restart",
        last + 1,
        received.len(),
        sa.dropped
    );
}

#[test]
fn hung_redis_is_detected_by_timeout_and_recovered() {
    let redis = RedisServer::start();
    let mut cfg = ringcast_cluster::BusConfig::new([redis.url()]);
    cfg.node_id = "n".into();
    cfg.presence_ttl = Duration::from_millis(300); // PING every 100 ms
    cfg.response_timeout = Duration::from_millis(500);
    let n = Node::start(cfg);
    n.wait_up(true);
    let pid = redis.pid().unwrap() as libc::pid_t;
    // SAFETY: signalling our own child process; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let stopped = Instant::now();
    n.wait_up(false);
    let noticed = stopped.elapsed();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    n.wait_up(true);
    assert!(
        noticed < Duration::from_secs(2),
        "hung Redis noticed after {noticed:?}"
    );
}

#[test]
fn reconnect_backoff_doubles_up_to_its_cap() {
    let (url, attempts) = common::hang_up_server();
    let mut cfg = ringcast_cluster::BusConfig::new([url]);
    cfg.node_id = "n".into();
    cfg.reconnect_max = Duration::from_millis(400);
    let n = Node::start(cfg);
    std::thread::sleep(Duration::from_millis(2500));
    let gaps = common::intervals(&attempts);
    println!("{} attempts, intervals {gaps:?}", gaps.len() + 1);
    // 50, 100, 200, then 400 ms each: 9 attempts in 2.5 s (uncapped doubling: 6).
    assert!(gaps.len() >= 6, "{} attempts: {gaps:?}", gaps.len() + 1);
    assert!(gaps[0] < Duration::from_millis(200), "{gaps:?}");
    let later = &gaps[3..];
    assert!(
        later.iter().all(|g| *g >= Duration::from_millis(350)),
        "capped, not shorter: {gaps:?}"
    );
    assert!(
        later.iter().all(|g| *g < Duration::from_millis(700)),
        "capped at 400 ms: {gaps:?}"
    );
    assert!(!n.bus.stats().up);
}

/// Issue 21 row 7: big publishes while Redis stalls (SIGSTOP: connected, never answering) are
/// bounded in bytes, not only in count: over `max_queued_bytes` they are dropped and counted,
/// the queued figure never exceeds the bound, and receivers see the drops as gaps.
#[test]
fn stalled_redis_bounds_the_publish_queue_in_bytes() {
    const BOUND: usize = 8 << 20;
    const PAYLOAD: usize = 64 << 10;
    const SENT: u64 = 400; // 25 MiB offered
    let redis = RedisServer::start();
    let urls = [redis.url()];
    let mut cfg = ringcast_cluster::BusConfig::new(urls.clone());
    cfg.node_id = "big".into();
    cfg.max_queued_bytes = BOUND;
    cfg.presence_ttl = Duration::from_secs(60); // no PING while stalled
    cfg.response_timeout = Duration::from_secs(60);
    let a = Node::start(cfg);
    let mut b = Node::named("sink", &urls, Duration::from_secs(60));
    a.wait_up(true);
    b.wait_up(true);
    b.bus.subscribe("r").unwrap();
    b.presence("r");

    let pid = redis.pid().unwrap() as libc::pid_t;
    // SAFETY: signalling our own child process; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let mut peak = 0;
    for i in 0..SENT {
        let mut payload = vec![b'x'; PAYLOAD];
        payload[..8].copy_from_slice(&i.to_le_bytes());
        let _ = a
            .bus
            .try_publish("r", vec![BusMessage::new(MessageKind::Binary, payload)]);
        peak = peak.max(a.bus.stats().queued_bytes);
    }
    let stalled = a.bus.stats();
    println!("stalled: {stalled:?}, peak queued {peak} bytes");
    assert!(peak <= BOUND, "queued {peak} bytes, bound {BOUND}");
    assert!(stalled.dropped > 0, "25 MiB offered over an 8 MiB bound");
    assert!(
        stalled.dropped < SENT,
        "what fits in the bound is queued, not dropped"
    );
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);

    // A last message reveals trailing drops as a gap; every message arrived or is a gap.
    a.bus
        .try_publish("r", vec![BusMessage::new(MessageKind::Text, "last")])
        .unwrap();
    let (mut received, mut gaps) = (0u64, 0u64);
    loop {
        let last = b.wait_for(Duration::from_secs(20), "messages", |e| match e {
            BusEvent::Gap { missed, .. } => {
                gaps += missed;
                Some(false)
            }
            BusEvent::Messages { messages, .. } => {
                received += messages.len() as u64;
                Some(messages.iter().any(|m| &m.payload[..] == b"last"))
            }
            _ => None,
        });
        if last {
            break;
        }
    }
    assert_eq!(received + gaps, SENT + 1);
    assert_eq!(gaps, a.bus.stats().dropped);
    // The replies release what the queue held (no event for that: poll the gauge).
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.bus.stats().queued_bytes != 0 {
        assert!(Instant::now() < deadline, "{:?}", a.bus.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}
