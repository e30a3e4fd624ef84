//! Command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Load generator for any RFC 6455 WebSocket server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Server URL, `ws://HOST:PORT/PATH` or `wss://...` (with `--ca` or `--insecure`).
    /// Repeatable: connections are spread round-robin over the URLs (the nodes of a cluster),
    /// in every scenario.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    pub url: Vec<String>,
    /// For `wss://` URLs: trust the certificates of this PEM file (a test CA, a self-signed
    /// server certificate).
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// For `wss://` URLs: accept any server certificate (signatures are still checked).
    #[arg(long, global = true, conflicts_with = "ca")]
    pub insecure: bool,
    /// For `wss://` URLs: never resume a TLS session, so every connection costs the server a
    /// full handshake (by default the client resumes when the server offers it).
    #[arg(long, global = true)]
    pub no_resume: bool,
    /// Event-loop threads (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Measured time, e.g. `5s`, `500ms`, `2m` (a bare number is seconds).
    #[arg(long, default_value = "5s", value_parser = parse_duration, global = true)]
    pub duration: Duration,
    /// Load before measuring starts.
    #[arg(long, default_value = "1s", value_parser = parse_duration, global = true)]
    pub warmup: Duration,
    /// After the end, how long to wait for in-flight messages before counting them lost.
    #[arg(long, default_value = "2s", value_parser = parse_duration, global = true)]
    pub grace: Duration,
    /// Spread connection attempts over this long (0: as fast as `--concurrency` allows).
    #[arg(long, default_value = "0s", value_parser = parse_duration, global = true)]
    pub ramp: Duration,
    /// Connects and handshakes in progress at once, per thread (keep threads × this below the
    /// server's listen backlog, or SYNs are dropped and retried after 1 s).
    #[arg(long, default_value_t = 64, global = true)]
    pub concurrency: usize,
    /// Room names are `PREFIX0`, `PREFIX1`, ... offered as `Sec-WebSocket-Protocol`.
    #[arg(long, default_value = "room", global = true)]
    pub subprotocol_prefix: String,
    /// Initial receive buffer per connection, bytes.
    #[arg(long, default_value_t = 16384, global = true)]
    pub recv_buf: usize,
    /// Largest frame accepted from the server, bytes.
    #[arg(long, default_value_t = 16 << 20, global = true)]
    pub max_frame: usize,
    /// Write the report as JSON to this file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// No progress line.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Exit non-zero if a message was lost at a receiver the server did not close.
    #[arg(long, global = true)]
    pub fail_on_loss: bool,
    /// Offer permessage-deflate (`server_no_context_takeover; client_no_context_takeover`);
    /// compressed messages are inflated, and the report compares received wire bytes with
    /// payload bytes. Messages are still sent uncompressed.
    #[arg(long, global = true)]
    pub compression: bool,
    /// Text payload filler after the header: `dots` (compresses to almost nothing) or `chat`
    /// (chat-like JSON words, compresses like real chat text).
    #[arg(long, value_enum, default_value = "dots", global = true)]
    pub filler: crate::payload::Filler,
    /// What to run.
    #[command(subcommand)]
    pub scenario: ScenarioCmd,
}

/// Scenarios.
#[derive(Debug, Subcommand)]
pub enum ScenarioCmd {
    /// Rooms of subscribers fed by publishers (fan-out).
    Broadcast(BroadcastArgs),
    /// Each connection alone in its room sends and awaits its echo (server must echo).
    Echo(EchoArgs),
    /// Open and hold connections; report setup rate and server memory.
    Connect(ConnectArgs),
    /// All-to-all rounds in one room (server must echo), the uWebSockets benchmark pattern.
    Rounds(RoundsArgs),
    /// `broadcast` over the Pusher Channels dialect: client events on `private-PREFIX{i}`
    /// channels (`--url ws://HOST:PORT/` is taken as `…/app/KEY?protocol=7`).
    Pusher(PusherArgs),
    /// JSON pub/sub mode (docs/pubsub.md#history): topics of subscribers fed by publishers; with `--history`
    /// offsets, order and recovery (`--churn`) are checked too.
    Pubsub(PubsubArgs),
    /// `pubsub` with publishers on ringcast's server API (docs/api.md): plain HTTP keep-alive
    /// connections sending `POST /api/publish`, pipelined up to `--window`; subscribers and
    /// checks as in `pubsub`.
    Api(ApiArgs),
}

/// Options of `api`: those of `pubsub`, and the key.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The server's `--api-key`.
    #[arg(long)]
    pub api_key: String,
    /// Where the publishers send their requests, `http://HOST:PORT` (a server's
    /// `--api-listen`); without it they use the first `--url`'s listener (`/api/` there).
    /// Needs a single `--url`.
    #[arg(long)]
    pub api_url: Option<String>,
    #[command(flatten)]
    pub pubsub: PubsubArgs,
}

/// Options of `pubsub`.
#[derive(Debug, Args)]
pub struct PubsubArgs {
    /// Topics (`PREFIX0`, `PREFIX1`, ...: the same names as rooms, one namespace).
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Subscribers per topic.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Publishers per topic (each also subscribes to its topic: its own copies are its credit).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Bytes of each `data` value: a JSON string, quotes included (at least 42).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second per publisher; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Own messages a publisher may have in flight before its copy comes back.
    #[arg(long, default_value_t = 64)]
    pub window: u64,
    /// The server keeps history (`ringcast --history-size N`): check that offsets count up by 1
    /// and that every subscriber sees the same order; resume churned subscribers with `since`.
    #[arg(long)]
    pub history: bool,
    /// Drop a random subscriber this many times per second (all threads together) and resume
    /// it with `since:{offset,epoch}` (needs `--history`).
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Make a random subscriber unsubscribe this many times per second (all threads together)
    /// and, once `unsubscribed` came back, resume on the same connection with
    /// `since:{offset,epoch}` (needs `--history`).
    #[arg(long, default_value_t = 0.0)]
    pub unsubscribe_churn: f64,
    /// How long an unsubscribed subscriber waits before it resumes (so the resume has messages
    /// to replay), e.g. `200ms`.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub unsubscribe_pause: Duration,
    /// Subscribers subscribe with `"presence":true`: the snapshot must come right after
    /// `subscribed`; joins and leaves are counted and checked against the snapshot.
    #[arg(long)]
    pub presence: bool,
    /// Subprotocol that selects JSON mode.
    #[arg(long, default_value = "pubsub")]
    pub pubsub_protocol: String,
}

/// Options of `broadcast`.
#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Subscribers per room.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Publishers per room.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Payload bytes (at least 40 for text, 20 for binary).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second per publisher; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Messages a publisher may have in flight that its designated receiver has not seen.
    #[arg(long, default_value_t = 64)]
    pub window: u64,
    /// Send binary messages instead of text.
    #[arg(long)]
    pub binary: bool,
    /// Publishers also check every message of the other publishers of their room (rooms where
    /// every member publishes: `--subscribers 0 --publishers 10 --check-publishers`).
    #[arg(long)]
    pub check_publishers: bool,
}

/// Options of `pusher`.
#[derive(Debug, Args)]
pub struct PusherArgs {
    /// The rooms, publishers and rates, as for `broadcast` (text only).
    #[command(flatten)]
    pub broadcast: BroadcastArgs,
    /// The app key.
    #[arg(long, default_value = "app-key")]
    pub app_key: String,
    /// The app secret (signs each subscription).
    #[arg(long, default_value = "app-secret")]
    pub app_secret: String,
}

/// Options of `echo`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Connections.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Payload bytes (at least 40 for text, 20 for binary).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Send binary messages instead of text.
    #[arg(long)]
    pub binary: bool,
}

/// Options of `connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Server process id: report its RSS before and after (from /proc/PID/status).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// Options of `rounds`.
#[derive(Debug, Args)]
pub struct RoundsArgs {
    /// Clients in the room.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Payload bytes (binary, at least 20).
    #[arg(long, default_value_t = 20)]
    pub size: usize,
}

/// Parses `5s`, `250ms`, `2m`, `1.5` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ns" => v / 1e9,
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m)")),
    };
    if !(0.0..=1e7).contains(&secs) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5h").is_err());
    }
}
