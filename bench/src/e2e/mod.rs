//! The end-to-end runner: builds the release binaries, starts each server in turn (fresh for
//! every scenario, same cores, no pinning by the runner), drives the same loadtest scenarios
//! against each, and writes `report.md`, `report.json` and `report.svg`.
//!
//! It fails (exit code 1) on errors and on lost messages, never on a speed number.

pub mod chart;
pub mod cluster;
pub mod fleet;
pub mod lt;
pub mod machine;
pub mod pusher;
pub mod redis;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scenarios;
pub mod server;
pub mod tls;
pub mod units;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use serde::Serialize;

pub use lt::{LtLatency, LtPubsub, LtReport};
pub use machine::Machine;
pub use run::RunResult;

use machine::{build, loadavg, machine, now_utc, workspace_root};
use run::{Ctx, run_one};
use scenarios::{Rate, Scenario};
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
    /// `connect`, `rounds`, `pubsub`, `api`, `cluster`, `wss` for the TLS rows); repeatable.
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
    let mut scs = scenarios::all(cli.quick);
    let tls_rows = tls::scenarios(cli.quick, &scs);
    scs.extend(tls_rows);
    if !cli.only.is_empty() {
        scs.retain(|s| cli.only.iter().any(|f| s.key.contains(f.as_str())));
    }
    let tls = if scs.iter().any(|s| s.tls) {
        match tls::make_certs(&out.join("tls")) {
            Ok(files) => Some(files),
            Err(e) => {
                eprintln!("e2e: the TLS rows' test certificate: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let ctx = Ctx {
        bin_dir: bin_dir.clone(),
        logs,
        threads: cli.loadtest_threads,
        tls,
    };
    let mut mach = machine(&bin_dir);
    let servers = servers(&cli);
    let mut results: Vec<RunResult> = Vec::new();
    let t_all = Instant::now();
    for sc in &scs {
        let rate = match sc.rate() {
            Some(Rate::Max) | None => 0,
            Some(Rate::Fixed(r)) => r,
            Some(Rate::HalfPeerFanout) => half_peer_fanout(&results, &servers),
        };
        let list = if sc.cluster {
            cluster::servers(cli.workers.max(1), &cli.servers)
        } else if sc.tls {
            tls::servers(&servers)
        } else {
            servers.clone()
        };
        for srv in &list {
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
    // The cluster and TLS rows compare other servers; their numbers are in the tables.
    let chart_scs: Vec<Scenario> = (scs.iter().filter(|s| !s.cluster && !s.tls))
        .cloned()
        .collect();
    let json = serde_json::to_string_pretty(&rep).unwrap_or_default() + "\n";
    for res in [
        write("report.md", md.as_bytes()),
        write("report.json", json.as_bytes()),
        chart::svg(&rep, &chart_scs, &out.join("report.svg")),
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
