//! Test support: a real redis-server on a free loopback port, and a bus whose events land in a
//! channel the test waits on with deadlines.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringcast_cluster::{Bus, BusConfig, BusEvent, BusHandle};

/// A redis-server child process, killed (SIGKILL) by PID on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Extra redis-server arguments, kept across restarts (e.g. `--requirepass`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with these extra redis-server arguments (kept across restarts).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self {
            port,
            child: None,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts (again) on the same port, empty, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server installed (.ci/install.d/20-redis.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bus and the events it emitted.
pub struct Node {
    pub bus: BusHandle,
    pub events: mpsc::Receiver<BusEvent>,
    next_token: u64,
}

impl Node {
    pub fn start(config: BusConfig) -> Self {
        let (tx, rx) = mpsc::channel();
        let bus = Bus::start(config, move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        Self {
            bus,
            events: rx,
            next_token: 0,
        }
    }

    /// A node named `id` on these URLs with a short presence TTL.
    pub fn named(id: &str, urls: &[String], ttl: Duration) -> Self {
        let mut cfg = BusConfig::new(urls.iter().cloned());
        cfg.node_id = id.to_owned();
        cfg.presence_ttl = ttl;
        Self::start(cfg)
    }

    /// Waits for the first event `f` maps to `Some`, dropping the others; panics at the deadline.
    pub fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        mut f: impl FnMut(BusEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    if let Some(t) = f(e) {
                        return t;
                    }
                }
                Err(_) => panic!("{}: no {what} within {within:?}", self.bus.node_id()),
            }
        }
    }

    pub fn wait_up(&self, up: bool) {
        self.wait_for(Duration::from_secs(10), &format!("Up({up})"), |e| {
            (e == BusEvent::Up(up)).then_some(())
        });
    }

    /// Asks for `room`'s presence and waits for the answer. Control operations of a room are
    /// applied in order, so this is also a barrier: earlier subscribes and joins on this node
    /// have been acknowledged by Redis. Other events arriving meanwhile are dropped.
    pub fn presence(&mut self, room: &str) -> Vec<(String, String, String)> {
        self.next_token += 1;
        let token = self.next_token;
        self.bus.presence(room, token).unwrap();
        let members = self.wait_for(Duration::from_secs(10), "presence answer", |e| match e {
            BusEvent::Presence {
                token: t, members, ..
            } if t == token => Some(members),
            _ => None,
        });
        members
            .expect("Redis up")
            .into_iter()
            .map(|m| (m.node, m.client, m.user))
            .collect()
    }
}

/// A "Redis" on a free loopback port that accepts every connection and hangs up at once, so
/// every connection attempt fails: its URL, and when each attempt came.
pub fn hang_up_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", fake.local_addr().unwrap());
    let attempts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = attempts.clone();
    std::thread::spawn(move || {
        for conn in fake.incoming() {
            seen.lock().unwrap().push(Instant::now());
            drop(conn);
        }
    });
    (url, attempts)
}

/// The intervals between consecutive `attempts` so far.
pub fn intervals(attempts: &std::sync::Mutex<Vec<Instant>>) -> Vec<Duration> {
    let at = attempts.lock().unwrap();
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A version-1 bus envelope (`cluster/src/wire.rs`, no stream id) of text messages.
pub fn envelope_v1(origin: &str, first_seq: u64, texts: &[&str]) -> Vec<u8> {
    let mut out = vec![0xAC, 1, origin.len() as u8];
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(texts.len() as u32).to_le_bytes());
    for t in texts {
        out.push(1);
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out
}
