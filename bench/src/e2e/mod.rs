//! The end-to-end runner: builds the release binaries, starts each server in turn (fresh for
//! every scenario, same cores, no pinning by the runner), drives the same loadtest scenarios
//! against each, and writes `report.md`, `report.json` and `report.svg`.
//!
//! It fails (exit code 1) on errors and on lost messages, never on a speed number.

pub mod chart;
pub mod report;
pub mod scenarios;
pub mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::{Deserialize, Serialize};

use scenarios::{Load, Rate, Scenario};
use server::{ServerKind, ServerSpec};

/// End-to-end comparison of ringcast against the tokio reference peer (and any other server).
#[derive(Debug, Parser)]
#[command(about, long_about = None)]
pub struct Cli {
    /// Short form (CI): about 2 s per run and smaller counts.
    #[arg(long)]
    pub quick: bool,
    /// Add an external, already running server: `NAME=ws://HOST:PORT/` (repeatable). It must
    /// put a client in the room named by its first offered subprotocol, like ringcast.
    #[arg(long = "peer", value_name = "NAME=URL", value_parser = parse_named)]
    pub peers: Vec<(String, String)>,
    /// URL of an echo-mode instance of an external server, for the rounds scenarios:
    /// `NAME=ws://HOST:PORT/` (without it, rounds are skipped for that server).
    #[arg(long = "peer-echo", value_name = "NAME=URL", value_parser = parse_named)]
    pub peer_echo: Vec<(String, String)>,
    /// Workers of the multi-worker ringcast and of the reference peer.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Output directory (default: `target/e2e` in the workspace).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip `cargo build --release`; use the binaries already in `--bin-dir`.
    #[arg(long)]
    pub no_build: bool,
    /// Directory with `ringcast`, `peer` and `loadtest` (default: the release directory).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Run only the scenarios whose key contains one of these (`fanout`, `rooms`, `latency`,
    /// `connect`, `rounds`); repeatable.
    #[arg(long)]
    pub only: Vec<String>,
    /// Run only the servers whose name contains one of these (`peer`, `ringcast-w1`, ...).
    #[arg(long)]
    pub servers: Vec<String>,
    /// loadtest event-loop threads (default: loadtest's default, the core count).
    #[arg(long)]
    pub loadtest_threads: Option<usize>,
}

fn parse_named(s: &str) -> Result<(String, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=ws://HOST:PORT/"))?;
    if name.is_empty() || !url.starts_with("ws://") {
        return Err(format!("{s:?}: expected NAME=ws://HOST:PORT/"));
    }
    Ok((name.to_owned(), url.to_owned()))
}

/// Latency fields of loadtest's JSON report (microseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LtLatency {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

/// The `pubsub` part of loadtest's JSON report the runner uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LtPubsub {
    /// `{"op":"error"}` replies.
    pub server_errors: u64,
    /// (topic, offset) pairs compared between subscribers.
    pub order_checked: u64,
    /// Offset gaps.
    pub offset_gaps: u64,
}

/// The fields of loadtest's JSON report the runner uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LtReport {
    /// Connections attempted.
    pub connections: u64,
    /// Connections upgraded.
    pub connected: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Messages sent in the window.
    pub sent: u64,
    /// Copies delivered in the window.
    pub delivered: u64,
    /// Sent per second.
    pub sent_per_s: f64,
    /// Delivered per second.
    pub delivered_per_s: f64,
    /// Copies expected.
    pub expected: u64,
    /// Copies missing at receivers the server did not close.
    pub lost: u64,
    /// Copies missing at receivers the server closed (backpressure drops).
    pub lost_at_closed_receivers: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Late copies.
    pub reordered: u64,
    /// Messages without a loadtest header.
    pub foreign: u64,
    /// TCP connects failed.
    pub connect_errors: u64,
    /// Handshakes failed.
    pub handshake_errors: u64,
    /// Connections broken without a close frame.
    pub unexpected_closes: u64,
    /// Connections the server closed, by close code.
    pub closed_by_server: BTreeMap<String, u64>,
    /// Latency.
    pub latency: LtLatency,
    /// Connection setup rate.
    pub connect_rate_per_s: f64,
    /// Rounds completed.
    pub rounds: u64,
    /// Rounds per second.
    pub rounds_per_s: f64,
    /// Server RSS before connecting, KiB.
    pub server_rss_before_kib: Option<u64>,
    /// Server RSS with every connection open, KiB.
    pub server_rss_after_kib: Option<u64>,
    /// RSS growth per connection, KiB.
    pub server_rss_per_conn_kib: Option<f64>,
    /// loadtest CPU seconds.
    pub loadtest_cpu_s: f64,
    /// `pubsub` only: the JSON-mode checks.
    pub pubsub: Option<LtPubsub>,
    /// loadtest wall seconds.
    pub wall_s: f64,
    /// Messages received per loadtest CPU second.
    pub received_per_loadtest_cpu_s: f64,
}

/// The outcome of one scenario against one server.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Scenario key.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// `ok`, `failed`, `skipped` (not applicable to this server) or `n/a` (the server does not
    /// have the feature yet: no JSON pub/sub mode, or it refuses a flag such as
    /// `--history-size`); only `failed` fails the runner.
    pub status: String,
    /// Why it failed.
    pub errors: Vec<String>,
    /// Things worth knowing that are not failures (backpressure closes, ...).
    pub notes: Vec<String>,
    /// URL driven.
    pub url: Option<String>,
    /// Fixed rate per publisher asked for (0 = max), broadcast scenarios.
    pub rate_per_publisher: Option<u64>,
    /// loadtest command line.
    pub loadtest_args: Vec<String>,
    /// loadtest exit code.
    pub loadtest_exit: Option<i32>,
    /// loadtest's numbers.
    pub loadtest: Option<LtReport>,
    /// loadtest's JSON as written.
    pub loadtest_raw: Option<serde_json::Value>,
    /// Wall seconds of the loadtest process.
    pub wall_s: f64,
    /// Server CPU seconds (user + system) over the loadtest run.
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s / wall_s`, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// loadtest CPU, percent of one core over its run.
    pub loadtest_cpu_pct: Option<f64>,
    /// Server RSS at the end of the run, KiB.
    pub server_rss_end_kib: Option<u64>,
    /// Server peak RSS, KiB.
    pub server_rss_peak_kib: Option<u64>,
    /// How the server stopped.
    pub server_stop: Option<String>,
}

impl RunResult {
    fn new(sc: &Scenario, srv: &ServerSpec) -> Self {
        Self {
            scenario: sc.key.clone(),
            server: srv.name.clone(),
            status: "ok".into(),
            errors: Vec::new(),
            notes: Vec::new(),
            url: None,
            rate_per_publisher: None,
            loadtest_args: Vec::new(),
            loadtest_exit: None,
            loadtest: None,
            loadtest_raw: None,
            wall_s: 0.0,
            server_cpu_s: None,
            server_cpu_pct: None,
            loadtest_cpu_pct: None,
            server_rss_end_kib: None,
            server_rss_peak_kib: None,
            server_stop: None,
        }
    }

    /// Whether the run completed without errors.
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }

    fn fail(&mut self, e: impl Into<String>) {
        self.status = "failed".into();
        self.errors.push(e.into());
    }
}

/// Machine and build facts for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Start time, UTC.
    pub started: String,
    /// End time, UTC.
    pub finished: String,
    /// /proc/loadavg at the start.
    pub loadavg_start: String,
    /// /proc/loadavg at the end.
    pub loadavg_end: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `ringcast --version`.
    pub ringcast: String,
    /// `loadtest --version`.
    pub loadtest: String,
    /// `git describe --always --dirty` of the workspace.
    pub git: String,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Quick form.
    pub quick: bool,
    /// Machine facts.
    pub machine: Machine,
    /// Servers in order.
    pub servers: Vec<String>,
    /// Scenarios: key → description.
    pub scenarios: Vec<(String, String, String)>,
    /// Every run.
    pub results: Vec<RunResult>,
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn cmd_line(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .current_dir(workspace_root())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn now_utc() -> String {
    cmd_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine(bin_dir: &Path) -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let bin = |name: &str| bin_dir.join(name).display().to_string();
    Machine {
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into()),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        started: now_utc(),
        finished: String::new(),
        loadavg_start: loadavg(),
        loadavg_end: String::new(),
        rustc: cmd_line("rustc", &["-V"]),
        ringcast: cmd_line(&bin("ringcast"), &["--version"]),
        loadtest: cmd_line(&bin("loadtest"), &["--version"]),
        git: cmd_line("git", &["describe", "--always", "--dirty"]),
    }
}

fn build() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("e2e: cargo build --release -p ringcast -p loadtest -p ringcast-bench --bins");
    let st = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "ringcast",
            "-p",
            "loadtest",
            "-p",
            "ringcast-bench",
            "--bins",
        ])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cargo build failed: {st}"))
    }
}

/// The servers of the comparison, reference peer first.
fn servers(cli: &Cli) -> Vec<ServerSpec> {
    let w = cli.workers.max(1);
    let mut v = vec![
        ServerSpec {
            name: format!("peer-w{w}"),
            kind: ServerKind::Peer { workers: w },
        },
        ServerSpec {
            name: "ringcast-w1".into(),
            kind: ServerKind::Ringcast { workers: 1 },
        },
    ];
    if w > 1 {
        v.push(ServerSpec {
            name: format!("ringcast-w{w}"),
            kind: ServerKind::Ringcast { workers: w },
        });
    }
    for (name, url) in &cli.peers {
        let echo_url = cli
            .peer_echo
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.clone());
        v.push(ServerSpec {
            name: name.clone(),
            kind: ServerKind::External {
                url: url.clone(),
                echo_url,
            },
        });
    }
    if !cli.servers.is_empty() {
        v.retain(|s| cli.servers.iter().any(|f| s.name.contains(f.as_str())));
    }
    v
}

struct Ctx {
    bin_dir: PathBuf,
    logs: PathBuf,
    threads: Option<usize>,
}

fn run_one(ctx: &Ctx, sc: &Scenario, srv: &ServerSpec, rate: u64) -> RunResult {
    let mut r = RunResult::new(sc, srv);
    if sc.rate().is_some() {
        r.rate_per_publisher = Some(rate);
    }
    if sc.ringcast_only() && !matches!(srv.kind, ServerKind::Ringcast { .. }) {
        r.status = "skipped".into();
        r.notes
            .push("no JSON pub/sub mode (ringcast's own room mode is the baseline)".into());
        return r;
    }
    let stem = format!("{}-{}", sc.key, srv.name);
    let server_log = ctx.logs.join(format!("{stem}.server.log"));
    let running = match server::start(srv, &ctx.bin_dir, sc.echo, &sc.server_args, &server_log) {
        Ok(Some(x)) => x,
        Ok(None) => {
            r.status = "skipped".into();
            r.notes
                .push("no echo-mode URL given (--peer-echo NAME=URL)".into());
            return r;
        }
        Err(e) => {
            let log = std::fs::read_to_string(&server_log).unwrap_or_default();
            if let Some(arg) = refused_arg(&log, &sc.server_args) {
                r.status = "n/a".into();
                r.notes
                    .push(format!("the server does not accept `{arg}` yet"));
            } else {
                r.fail(format!("server did not start: {e}"));
            }
            return r;
        }
    };
    let mut running = running;
    r.url = Some(running.url.clone());
    let pid = running.pid();
    let json = ctx.logs.join(format!("{stem}.json"));
    let _ = std::fs::remove_file(&json);
    let args = sc.loadtest_args(&running.url, rate, &json, pid, ctx.threads);
    r.loadtest_args = args.clone();
    let out_path = ctx.logs.join(format!("{stem}.loadtest.txt"));
    let before = pid.and_then(server::sample);
    let t0 = Instant::now();
    let lt = std::fs::File::create(&out_path).and_then(|f| {
        let e = f.try_clone()?;
        Command::new(ctx.bin_dir.join("loadtest"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(e)
            .spawn()
    });
    let status = match lt {
        Ok(mut child) => {
            let limit = Duration::from_secs_f64(sc.timeout_s());
            loop {
                match child.try_wait() {
                    Ok(Some(st)) => break Some(st),
                    Ok(None) if t0.elapsed() > limit => {
                        let _ = child.kill();
                        let _ = child.wait();
                        r.fail(format!(
                            "loadtest hung for more than {:.0} s (killed)",
                            limit.as_secs_f64()
                        ));
                        break None;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => {
                        r.fail(format!("loadtest wait: {e}"));
                        break None;
                    }
                }
            }
        }
        Err(e) => {
            r.fail(format!("loadtest did not start: {e}"));
            None
        }
    };
    r.wall_s = t0.elapsed().as_secs_f64();
    let after = pid.and_then(server::sample);
    if let (Some(b), Some(a)) = (before, after) {
        r.server_cpu_s = Some(a.cpu_s - b.cpu_s);
        if r.wall_s > 0.0 {
            r.server_cpu_pct = Some((a.cpu_s - b.cpu_s) / r.wall_s * 100.0);
        }
        r.server_rss_end_kib = Some(a.rss_kib);
        r.server_rss_peak_kib = Some(a.hwm_kib);
    }
    if let Some(st) = running.exited() {
        r.fail(format!(
            "server exited during the run: {st} (see {})",
            server_log.display()
        ));
    }
    match running.stop(Duration::from_secs(15)) {
        Ok(s) => r.server_stop = Some(s),
        Err(e) => {
            r.server_stop = Some(e.clone());
            r.fail(format!("server stop: {e}"));
        }
    }
    if let Some(st) = status {
        r.loadtest_exit = st.code();
        if st.code() == Some(LOADTEST_UNANSWERED) && sc.ringcast_only() && r.errors.is_empty() {
            // loadtest: nobody got an answer to `subscribe` (refused or not JSON mode).
            r.status = "n/a".into();
            r.notes
                .push("the server does not speak JSON pub/sub on subprotocol `pubsub` yet".into());
            r.loadtest_raw = std::fs::read_to_string(&json)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            return r;
        }
        if !st.success() {
            let tail = std::fs::read_to_string(&out_path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("loadtest:"))
                .collect::<Vec<_>>()
                .join("; ");
            r.fail(format!("loadtest exit {st}: {tail}"));
        }
    }
    match std::fs::read_to_string(&json) {
        Ok(text) => {
            r.loadtest_raw = serde_json::from_str(&text).ok();
            match serde_json::from_str::<LtReport>(&text) {
                Ok(lt) => {
                    check(&mut r, sc, &lt);
                    if lt.wall_s > 0.0 {
                        r.loadtest_cpu_pct = Some(lt.loadtest_cpu_s / lt.wall_s * 100.0);
                    }
                    r.loadtest = Some(lt);
                }
                Err(e) => r.fail(format!("{}: {e}", json.display())),
            }
        }
        Err(e) => {
            if r.ok() {
                r.fail(format!("no loadtest report {}: {e}", json.display()));
            }
        }
    }
    r
}

/// loadtest's exit code when no connection got an answer to `subscribe`.
const LOADTEST_UNANSWERED: i32 = 3;

/// The first of `args` (a `--flag`) that the server's start-up log says it does not know.
fn refused_arg<'a>(log: &str, args: &'a [String]) -> Option<&'a str> {
    if !log.contains("unexpected argument") && !log.contains("unrecognized") {
        return None;
    }
    args.iter()
        .map(String::as_str)
        .find(|a| a.starts_with("--") && log.contains(*a))
}

/// Correctness checks on loadtest's numbers (never on speed).
fn check(r: &mut RunResult, sc: &Scenario, lt: &LtReport) {
    if lt.connected < lt.connections {
        r.fail(format!(
            "{} of {} connections upgraded ({} connect errors, {} handshake errors)",
            lt.connected, lt.connections, lt.connect_errors, lt.handshake_errors
        ));
    }
    if lt.unexpected_closes > 0 {
        r.fail(format!(
            "{} connections broke without a close frame",
            lt.unexpected_closes
        ));
    }
    if lt.lost > 0 {
        r.fail(format!(
            "{} of {} expected copies lost at receivers the server did not close",
            lt.lost, lt.expected
        ));
    }
    if lt.duplicates > 0 {
        r.fail(format!("{} duplicate copies", lt.duplicates));
    }
    if lt.reordered > 0 {
        r.fail(format!(
            "{} copies arrived after a later one of the same publisher",
            lt.reordered
        ));
    }
    if let Some(p) = &lt.pubsub {
        if p.server_errors > 0 {
            r.fail(format!("{} error replies from the server", p.server_errors));
        }
        if p.offset_gaps > 0 {
            r.fail(format!("{} offset gaps", p.offset_gaps));
        }
        if matches!(sc.load, Load::Pubsub { history: true, .. }) {
            r.notes.push(format!(
                "{} (topic, offset) pairs compared between subscribers: same order everywhere",
                p.order_checked
            ));
        }
    }
    if lt.foreign > 0 {
        r.notes
            .push(format!("{} messages without a loadtest header", lt.foreign));
    }
    if lt.lost_at_closed_receivers > 0 {
        r.notes.push(format!(
            "{} copies not delivered to receivers the server closed (counted backpressure drops)",
            lt.lost_at_closed_receivers
        ));
    }
    if !lt.closed_by_server.is_empty() {
        let codes: Vec<String> = lt
            .closed_by_server
            .iter()
            .map(|(c, n)| format!("{n}× {c}"))
            .collect();
        r.notes
            .push(format!("server closed connections: {}", codes.join(", ")));
    }
    match &sc.load {
        Load::Rounds { .. } if lt.rounds == 0 => r.fail("no round completed"),
        Load::Broadcast { .. } | Load::Pubsub { .. } if lt.sent == 0 || lt.delivered == 0 => {
            r.fail("nothing sent or delivered in the measured window")
        }
        _ => {}
    }
}

/// Entry point of the `e2e` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let out = cli.out.clone().unwrap_or_else(|| root.join("target/e2e"));
    if !cli.no_build
        && let Err(e) = build()
    {
        eprintln!("e2e: {e}");
        return ExitCode::from(2);
    }
    let bin_dir = cli.bin_dir.clone().unwrap_or_else(server::default_bin_dir);
    for b in ["ringcast", "peer", "loadtest"] {
        if !bin_dir.join(b).is_file() {
            eprintln!(
                "e2e: {} not found (build first or pass --bin-dir)",
                bin_dir.join(b).display()
            );
            return ExitCode::from(2);
        }
    }
    let logs = out.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("e2e: {}: {e}", logs.display());
        return ExitCode::from(2);
    }
    let ctx = Ctx {
        bin_dir: bin_dir.clone(),
        logs,
        threads: cli.loadtest_threads,
    };
    let mut mach = machine(&bin_dir);
    let servers = servers(&cli);
    let mut scs = scenarios::all(cli.quick);
    if !cli.only.is_empty() {
        scs.retain(|s| cli.only.iter().any(|f| s.key.contains(f.as_str())));
    }
    let mut results: Vec<RunResult> = Vec::new();
    let t_all = Instant::now();
    for sc in &scs {
        let rate = match sc.rate() {
            Some(Rate::Max) | None => 0,
            Some(Rate::Fixed(r)) => r,
            Some(Rate::HalfPeerFanout) => half_peer_fanout(&results, &servers),
        };
        for srv in &servers {
            eprintln!("e2e: {} against {} ...", sc.key, srv.name);
            let r = run_one(&ctx, sc, srv, rate);
            eprintln!("e2e:   {}", report::one_line(&r));
            results.push(r);
        }
    }
    mach.finished = now_utc();
    mach.loadavg_end = loadavg();
    let rep = Report {
        quick: cli.quick,
        machine: mach,
        servers: servers.iter().map(|s| s.name.clone()).collect(),
        scenarios: scs
            .iter()
            .map(|s| (s.key.clone(), s.letter.to_owned(), s.title.clone()))
            .collect(),
        results,
    };
    let reference = servers
        .iter()
        .find(|s| s.is_reference())
        .map(|s| s.name.clone());
    let md = report::markdown(&rep, &scs, reference.as_deref(), t_all.elapsed());
    let mut ok = true;
    let write = |name: &str, data: &[u8]| {
        let p = out.join(name);
        std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))
    };
    let json = serde_json::to_string_pretty(&rep).unwrap_or_default() + "\n";
    for res in [
        write("report.md", md.as_bytes()),
        write("report.json", json.as_bytes()),
        chart::svg(&rep, &scs, &out.join("report.svg")),
    ] {
        if let Err(e) = res {
            eprintln!("e2e: {e}");
            ok = false;
        }
    }
    eprintln!("e2e: wrote {}/report.{{md,json,svg}}", out.display());
    let failed: Vec<&RunResult> = rep
        .results
        .iter()
        .filter(|r| r.status == "failed")
        .collect();
    for r in &failed {
        eprintln!(
            "e2e: FAILED {} against {}: {}",
            r.scenario,
            r.server,
            r.errors.join("; ")
        );
    }
    if failed.is_empty() && ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Half the reference peer's measured max publishing rate in the fan-out scenario; without it,
/// half the best other server's; without any, 1000 msgs/s.
fn half_peer_fanout(results: &[RunResult], servers: &[ServerSpec]) -> u64 {
    let fanout = |name: &str| {
        results
            .iter()
            .find(|r| r.scenario == "fanout" && r.server == name && r.ok())
            .and_then(|r| r.loadtest.as_ref())
            .map(|l| l.sent_per_s)
    };
    let reference = servers
        .iter()
        .find(|s| s.is_reference())
        .and_then(|s| fanout(&s.name));
    let any = || {
        servers
            .iter()
            .filter_map(|s| fanout(&s.name))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    reference
        .or_else(any)
        .map_or(1000, |r| ((r / 2.0).round() as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_flag_is_recognised() {
        let args = vec!["--history-size".to_owned(), "100".to_owned()];
        let clap = "error: unexpected argument '--history-size' found\n\nUsage: ringcast [OPTIONS]";
        assert_eq!(refused_arg(clap, &args), Some("--history-size"));
        assert_eq!(refused_arg("thread 'main' panicked", &args), None);
        assert_eq!(
            refused_arg("error: unexpected argument '--other' found", &args),
            None
        );
    }
}
