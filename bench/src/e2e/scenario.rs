//! [`Scenario`]: one scenario of the comparison, and the loadtest command line it makes.

use std::path::Path;

/// How fast the publishers of a broadcast scenario send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// As fast as loadtest's window (`MAX_RATE_WINDOW`) allows (`--rate 0`).
    Max,
    /// Messages per second per publisher.
    Fixed(u64),
    /// Half of the reference peer's measured max rate in the fan-out scenario.
    HalfPeerFanout,
}

/// What loadtest does in a scenario.
#[derive(Debug, Clone)]
pub enum Load {
    /// `loadtest broadcast`.
    Broadcast {
        /// Rooms.
        rooms: usize,
        /// Subscribers per room.
        subscribers: usize,
        /// Publishers per room.
        publishers: usize,
        /// Publishing rate.
        rate: Rate,
        /// Publishers check each other's messages (every member publishes).
        check_publishers: bool,
    },
    /// `loadtest connect --server-pid`.
    Connect {
        /// Connections opened and held.
        connections: usize,
    },
    /// `loadtest rounds` (server in echo mode).
    Rounds {
        /// Clients in the room.
        clients: usize,
        /// Bytes per message (`ROUND_SIZE`, or `CHAT_SIZE` for the chat-sized twins).
        size: usize,
    },
    /// `loadtest pubsub` (or `api`): topics with 1 publisher each, max rate, JSON mode
    /// (ringcast only).
    Pubsub {
        /// Topics, one publisher each.
        topics: usize,
        /// Subscribers per topic.
        subscribers: usize,
        /// The server keeps history (`--history-size`) and loadtest checks offsets and order.
        history: bool,
        /// The publishers publish through the server API (`loadtest api`, [`API_KEY`]).
        api: bool,
    },
}

/// One scenario of the comparison.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short key used in file names and `--only` (`fanout`, `rooms`, ...).
    pub key: String,
    /// Letter of the list, e.g. `(a)`.
    pub letter: &'static str,
    /// One-line description for the report.
    pub title: String,
    /// Load.
    pub load: Load,
    /// Whether the server must run with `--echo`.
    pub echo: bool,
    /// Measured seconds.
    pub duration_s: f64,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// Grace seconds for in-flight messages.
    pub grace_s: f64,
    /// Extra server arguments (ringcast only).
    pub server_args: Vec<String>,
    /// Ratios divide by the same server's result in this scenario (key) instead of the
    /// reference peer's result in this one.
    pub baseline: Option<&'static str>,
    /// Runs against the cluster servers (`cluster::servers`), not the comparison's.
    pub cluster: bool,
    /// Payload bytes of a broadcast's text messages.
    pub text_size: usize,
    /// loadtest options before the scenario (`--compression`, `--filler chat`).
    pub loadtest_flags: Vec<String>,
    /// Over `wss://` (`tls.rs`): the servers get the run's test certificate.
    pub tls: bool,
    /// A broadcast spoken in the Pusher dialect (`loadtest pusher`, the server given
    /// [`super::pusher`]'s app; ringcast only).
    pub pusher: bool,
}

/// The server API key of the `api` scenarios (`--api-key`).
pub const API_KEY: &str = "bench-e2e-api-key";
/// Payload bytes of the broadcast scenarios (text).
pub const TEXT_SIZE: usize = 64;
/// Messages a max-rate publisher keeps in flight ahead of its designated receiver.
pub const MAX_RATE_WINDOW: u32 = 512;

impl Scenario {
    /// The loadtest command line (without the program name). `rate` resolves
    /// [`Rate::HalfPeerFanout`]; `pid` is the server's process id when the runner started it.
    pub fn loadtest_args(
        &self,
        urls: &[String],
        rate: u64,
        json: &Path,
        pid: Option<u32>,
        threads: Option<usize>,
    ) -> Vec<String> {
        let mut a: Vec<String> = urls
            .iter()
            .flat_map(|u| ["--url".to_owned(), u.clone()])
            .collect();
        a.extend([
            "--quiet".into(),
            "--fail-on-loss".into(),
            "--json".into(),
            json.display().to_string(),
            "--duration".into(),
            format!("{}s", self.duration_s),
            "--warmup".into(),
            format!("{}s", self.warmup_s),
            "--grace".into(),
            format!("{}s", self.grace_s),
        ]);
        if let Some(t) = threads {
            a.extend(["--threads".into(), t.to_string()]);
        }
        a.extend(self.loadtest_flags.iter().cloned());
        match &self.load {
            Load::Broadcast {
                rooms,
                subscribers,
                publishers,
                check_publishers,
                ..
            } => {
                a.extend([
                    if self.pusher { "pusher" } else { "broadcast" }.into(),
                    "--rooms".into(),
                    rooms.to_string(),
                    "--subscribers".into(),
                    subscribers.to_string(),
                    "--publishers".into(),
                    publishers.to_string(),
                    "--size".into(),
                    self.text_size.to_string(),
                    "--rate".into(),
                    rate.to_string(),
                ]);
                if *check_publishers {
                    a.push("--check-publishers".into());
                }
                if self.pusher {
                    a.extend(super::pusher::loadtest_args());
                }
                if rate == 0 {
                    // At max rate the default window of 64 makes the loadtest's own round trip
                    // the limit (measured: loadtest at 100% CPU, server at 50%); 512 in flight
                    // (37 KB per subscriber at 64 B) lets the server be what is measured.
                    a.extend(["--window".into(), MAX_RATE_WINDOW.to_string()]);
                }
            }
            Load::Connect { connections } => {
                a.extend([
                    "connect".into(),
                    "--connections".into(),
                    connections.to_string(),
                ]);
                if let Some(pid) = pid {
                    a.extend(["--server-pid".into(), pid.to_string()]);
                }
            }
            Load::Pubsub {
                topics,
                subscribers,
                history,
                api,
            } => {
                if *api {
                    a.extend(["api".into(), "--api-key".into(), API_KEY.into()]);
                } else {
                    a.push("pubsub".into());
                }
                a.extend([
                    "--topics".into(),
                    topics.to_string(),
                    "--subscribers".into(),
                    subscribers.to_string(),
                    "--publishers".into(),
                    "1".into(),
                    "--size".into(),
                    TEXT_SIZE.to_string(),
                    "--rate".into(),
                    "0".into(),
                    "--window".into(),
                    MAX_RATE_WINDOW.to_string(),
                ]);
                if *history {
                    a.push("--history".into());
                }
            }
            Load::Rounds { clients, size } => a.extend([
                "rounds".into(),
                "--clients".into(),
                clients.to_string(),
                "--size".into(),
                size.to_string(),
            ]),
        }
        a
    }

    /// The fixed rate per publisher this scenario asks for before resolution (0 = max).
    pub fn rate(&self) -> Option<Rate> {
        match &self.load {
            Load::Broadcast { rate, .. } => Some(*rate),
            _ => None,
        }
    }

    /// Whether only ringcast runs it (JSON pub/sub mode, the Pusher dialect).
    pub fn ringcast_only(&self) -> bool {
        matches!(self.load, Load::Pubsub { .. }) || self.pusher
    }

    /// Upper bound of one loadtest run before it is considered hung, seconds.
    pub fn timeout_s(&self) -> f64 {
        self.warmup_s + self.duration_s + self.grace_s + 120.0
    }
}
