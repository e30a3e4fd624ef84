//! How many messages/s cross two nodes through one Redis with 0 loss, and Redis's CPU at that
//! rate. Starts its own redis-server on a free port (killed at exit).
//!
//! `cargo run --release -p ringcast-cluster --example bus_throughput -- [batch] [rooms] [seconds]`
//! `batch`: messages per PUBLISH (one room's messages of one turn), default 1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Node, RedisServer};
use ringcast_cluster::{BusMessage, Bytes, MessageKind};

/// User + system CPU seconds of a process (or a thread: `/proc/<pid>/task/<tid>`).
fn cpu_seconds(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// CPU seconds of this process's `ringcast-bus` threads (both nodes).
fn bus_threads_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "ringcast-bus")
        })
        .map(|t| cpu_seconds(&t.path().join("stat").to_string_lossy()))
        .sum()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let batch = args.first().copied().unwrap_or(1).max(1);
    let rooms = args.get(1).copied().unwrap_or(100).max(1);
    let seconds = args.get(2).copied().unwrap_or(3).max(1) as u64;
    let redis = RedisServer::start();
    let redis_stat = format!("/proc/{}/stat", redis.pid().unwrap_or(0));
    let urls = [redis.url()];
    let mut a = Node::named("bench-pub", &urls, Duration::from_secs(30));
    let mut b = Node::named("bench-sub", &urls, Duration::from_secs(30));
    a.wait_up(true);
    b.wait_up(true);
    let names: Vec<String> = (0..rooms).map(|r| format!("room{r}")).collect();
    for r in &names {
        b.bus.subscribe(r.as_str()).unwrap();
    }
    b.presence(&names[rooms - 1]);
    a.presence(&names[0]);
    drop(b.events); // the sink counts in stats(); no one reads the events
    let payload = Bytes::from(vec![b'x'; 64]);

    println!("batch {batch} msgs/PUBLISH, {rooms} rooms, 64-byte payloads, {seconds} s per step");
    println!("target/s  sent/s  delivered  lost  redis_cpu%  bus_threads_cpu%");
    let mut best = None;
    let mut expected = 0u64;
    for rate in [
        10_000u64, 20_000, 40_000, 80_000, 120_000, 160_000, 240_000, 320_000, 480_000, 640_000,
        960_000, 1_280_000, 1_920_000, 2_560_000,
    ] {
        let (r0, t0, s0) = (cpu_seconds(&redis_stat), bus_threads_cpu(), b.bus.stats());
        let start = Instant::now();
        let mut sent = 0u64;
        let mut room = 0;
        // Open loop: every millisecond, catch up to `rate`.
        while start.elapsed() < Duration::from_secs(seconds) {
            let due = rate * start.elapsed().as_micros() as u64 / 1_000_000;
            while sent < due {
                let n = batch.min((due - sent) as usize).max(1);
                let msgs = vec![BusMessage::new(MessageKind::Binary, payload.clone()); n];
                let _ = a.bus.try_publish(names[room].as_str(), msgs);
                room = (room + 1) % rooms;
                sent += n as u64;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let elapsed = start.elapsed().as_secs_f64();
        expected += sent;
        // Drain: wait until delivery stops growing (or matches).
        let mut last = b.bus.stats().received;
        let drain = Instant::now();
        while last < expected && drain.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(100));
            let now = b.bus.stats().received;
            if now == last && drain.elapsed() > Duration::from_secs(1) {
                break;
            }
            last = now;
        }
        let (s1, wall) = (b.bus.stats(), elapsed + drain.elapsed().as_secs_f64());
        let delivered = s1.received - s0.received;
        let lost = sent.saturating_sub(delivered);
        let redis_cpu = 100.0 * (cpu_seconds(&redis_stat) - r0) / wall;
        let bus_cpu = 100.0 * (bus_threads_cpu() - t0) / wall;
        let sent_rate = sent as f64 / elapsed;
        println!(
            "{rate:>8} {sent_rate:>8.0} {delivered:>10} {lost:>5} {redis_cpu:>10.1} {bus_cpu:>12.1}"
        );
        if lost > 0 || sent_rate < 0.95 * rate as f64 {
            break;
        }
        best = Some((rate, redis_cpu));
        expected = s1.received;
    }
    match best {
        Some((rate, cpu)) => {
            println!("max 0-loss rate: {rate} msgs/s (batch {batch}), redis-server CPU {cpu:.1}%")
        }
        None => println!("loss even at the lowest rate"),
    }
    let sa = a.bus.stats();
    println!(
        "publisher: published {} dropped {}; subscriber gaps {}",
        sa.published,
        sa.dropped,
        b.bus.stats().gaps
    );
}
