//! `loadtest`: drives any RFC 6455 server and reports throughput and latency.
//!
//! One io_uring event loop per thread handles many non-blocking client connections with a small
//! hand-rolled client codec; scenarios decide what each connection sends and checks.

mod cli;
mod client;
mod conn;
mod driver;
mod payload;
mod progress;
mod report;
mod rng;
mod runner;
mod scenario;
mod shared;
mod stats;
mod target;
mod tls;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mimalloc::MiMalloc;

use cli::{Cli, ScenarioCmd};
use driver::DriverConfig;
use report::Report;
use runner::RunOptions;
use scenario::Scenario;
use shared::Shared;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

fn check_size(size: usize, binary: bool) -> Result<(), String> {
    let min = payload::min_size(binary);
    if size < min {
        return Err(format!(
            "--size {size} is too small: {} messages need at least {min} bytes",
            if binary { "binary" } else { "text" }
        ));
    }
    Ok(())
}

/// The parameters of `broadcast` (and of `pusher`, which speaks the Pusher dialect).
fn broadcast_params(
    a: &cli::BroadcastArgs,
    prefix: String,
    servers: usize,
    pusher: Option<scenario::broadcast::pusher::Dialect>,
) -> Result<scenario::broadcast::Params, String> {
    check_size(a.size, a.binary)?;
    if a.rate == 0 && a.subscribers == 0 && a.publishers > 0 {
        return Err("--rate 0 needs at least one subscriber per room".into());
    }
    Ok(scenario::broadcast::Params {
        rooms: a.rooms,
        subscribers: a.subscribers,
        publishers: a.publishers,
        size: a.size,
        rate: a.rate,
        window: a.window.max(1),
        binary: a.binary,
        prefix,
        check_publishers: a.check_publishers,
        servers,
        pusher,
    })
}

fn execute<S: Scenario + Send + 'static>(
    opts: &RunOptions,
    shared: Arc<Shared>,
    plan: Vec<(Vec<Option<String>>, S)>,
    on_ready: impl FnOnce(),
) -> Result<(stats::Stats, Vec<S>), String> {
    runner::run(opts, shared, plan, on_ready).map_err(|e| e.to_string())
}

/// The `api` scenario's `--api-url`, `http://HOST:PORT` (plain HTTP only).
fn api_target(url: &str) -> Result<target::Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--api-url {url}: only http:// URLs are supported"))?;
    let mut t = target::parse_url(&format!("ws://{rest}"))?;
    t.url = url.to_owned();
    Ok(t)
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let _ = payload::FILLER.set(cli.filler);
    let mut targets = cli
        .url
        .iter()
        .map(|u| target::parse_url(u))
        .collect::<Result<Vec<_>, _>>()?;
    if let ScenarioCmd::Pusher(a) = &cli.scenario {
        // A bare server URL means the Pusher dialect's path of the app.
        for t in targets.iter_mut().filter(|t| t.path == "/") {
            t.path = format!("/app/{}?protocol=7&client=loadtest&version=1.0", a.app_key);
        }
    }
    let tls = if targets.iter().any(|t| t.tls) {
        let trust = match (&cli.ca, cli.insecure) {
            (Some(file), _) => tls::Trust::Ca(file.clone()),
            (None, true) => tls::Trust::Insecure,
            (None, false) => return Err("wss:// URLs need --ca FILE or --insecure".into()),
        };
        Some(tls::client_config(&trust, !cli.no_resume)?)
    } else {
        None
    };
    let http_target = match &cli.scenario {
        ScenarioCmd::Api(a) => a.api_url.as_deref().map(api_target).transpose()?,
        _ => None,
    };
    if http_target.is_some() && targets.len() > 1 {
        return Err("--api-url needs a single --url (publishers would not be spread)".into());
    }
    let url_list = cli.url.join(" ");
    let servers = targets.len();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let opts = RunOptions {
        driver: DriverConfig {
            targets,
            http_target,
            ramp_ns: cli.ramp.as_nanos() as u64,
            concurrency: cli.concurrency.max(1),
            recv_buf: cli.recv_buf.max(256),
            max_frame: cli.max_frame,
            tls,
            compression: cli.compression,
        },
        warmup: cli.warmup,
        duration: cli.duration,
        grace: cli.grace,
        progress: progress::Mode::detect(cli.quiet),
    };
    let shared = Arc::new(Shared::new(threads).map_err(|e| format!("eventfd: {e}"))?);
    let cpu0 = report::process_cpu_s();
    let wall0 = std::time::Instant::now();
    let prefix = cli.subprotocol_prefix.clone();
    let mut rss: (Option<u64>, Option<u64>) = (None, None);
    let mut pubsub = None;
    let (name, conns, stats) = match &cli.scenario {
        ScenarioCmd::Broadcast(a) => {
            let p = broadcast_params(a, prefix, servers, None)?;
            let n = a.rooms * (a.subscribers + a.publishers);
            let plan = scenario::broadcast::plan(p, threads);
            ("broadcast", n, execute(&opts, shared, plan, || {})?.0)
        }
        ScenarioCmd::Pusher(a) => {
            if a.broadcast.binary {
                return Err("pusher sends text client events: --binary does not apply".into());
            }
            let run = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() ^ std::process::id());
            let dialect = scenario::broadcast::pusher::Dialect::new(
                a.app_key.clone(),
                a.app_secret.clone(),
                run,
            );
            let b = &a.broadcast;
            let p = broadcast_params(b, prefix, servers, Some(dialect))?;
            let n = b.rooms * (b.subscribers + b.publishers);
            let plan = scenario::broadcast::plan(p, threads);
            ("pusher", n, execute(&opts, shared, plan, || {})?.0)
        }
        ScenarioCmd::Echo(a) => {
            check_size(a.size, a.binary)?;
            let p = scenario::echo::Params {
                connections: a.connections,
                size: a.size,
                binary: a.binary,
                prefix,
            };
            let plan = scenario::echo::plan(p, threads);
            (
                "echo",
                a.connections,
                execute(&opts, shared, plan, || {})?.0,
            )
        }
        ScenarioCmd::Connect(a) => {
            rss.0 = a.server_pid.and_then(scenario::connect::rss_kib);
            let plan = scenario::connect::plan(a.connections, &prefix, threads);
            let pid = a.server_pid;
            let after = &mut rss.1;
            let stats = execute(&opts, shared, plan, || {
                *after = pid.and_then(scenario::connect::rss_kib);
            })?
            .0;
            ("connect", a.connections, stats)
        }
        ScenarioCmd::Rounds(a) => {
            check_size(a.size, true)?;
            let p = scenario::rounds::Params {
                clients: a.clients,
                size: a.size,
                prefix,
            };
            let (plan, _) = scenario::rounds::plan(&p, threads);
            ("rounds", a.clients, execute(&opts, shared, plan, || {})?.0)
        }
        ScenarioCmd::Pubsub(_) | ScenarioCmd::Api(_) => {
            let (a, api_key) = match &cli.scenario {
                ScenarioCmd::Api(x) => (&x.pubsub, Some(x.api_key.clone())),
                ScenarioCmd::Pubsub(x) => (x, None),
                _ => unreachable!("matched above"),
            };
            if a.size < scenario::pubsub::wire::MIN_DATA {
                return Err(format!(
                    "--size {} is too small: the data string needs at least {} bytes",
                    a.size,
                    scenario::pubsub::wire::MIN_DATA
                ));
            }
            if a.churn > 0.0 && !a.history {
                return Err(
                    "--churn needs --history (a resume asks for since:{offset,epoch})".into(),
                );
            }
            if !a.churn.is_finite() || a.churn < 0.0 {
                return Err("--churn must be a rate ≥ 0".into());
            }
            if !a.unsubscribe_churn.is_finite() || a.unsubscribe_churn < 0.0 {
                return Err("--unsubscribe-churn must be a rate ≥ 0".into());
            }
            if a.unsubscribe_churn > 0.0 && !a.history {
                return Err(
                    "--unsubscribe-churn needs --history (a resume asks for since:{offset,epoch})"
                        .into(),
                );
            }
            let p = scenario::pubsub::Params {
                topics: a.topics,
                subscribers: a.subscribers,
                publishers: a.publishers,
                size: a.size,
                rate: a.rate,
                window: a.window.max(1),
                history: a.history,
                churn: a.churn,
                unsubscribe_churn: a.unsubscribe_churn,
                unsubscribe_pause: a.unsubscribe_pause.as_nanos() as u64,
                presence: a.presence,
                protocol: a.pubsub_protocol.clone(),
                prefix,
                api_key: api_key.clone(),
                servers,
            };
            let n = a.topics * (a.subscribers + a.publishers);
            let plan = scenario::pubsub::plan(p, threads);
            let (stats, scs) = execute(&opts, shared, plan, || {})?;
            pubsub = Some(scenario::pubsub::summarize(&scs));
            let name = if api_key.is_some() { "api" } else { "pubsub" };
            (name, n, stats)
        }
    };
    let mut rep = Report::new(name, &url_list, threads, conns as u64, &stats);
    rep.set_duration(cli.duration.as_secs_f64());
    if name == "rounds"
        && let ScenarioCmd::Rounds(a) = &cli.scenario
    {
        // Every client receives every client's message (its own echo included) each round.
        rep.delivered_per_s = rep.rounds_per_s * (a.clients * a.clients) as f64;
    }
    rep.pubsub = pubsub;
    rep.server_rss_before_kib = rss.0;
    rep.server_rss_after_kib = rss.1;
    if let (Some(b), Some(a)) = rss
        && stats.connected > 0
    {
        rep.server_rss_per_conn_kib = Some((a as f64 - b as f64) / stats.connected as f64);
    }
    rep.loadtest_cpu_s = report::process_cpu_s() - cpu0;
    rep.wall_s = wall0.elapsed().as_secs_f64();
    if rep.loadtest_cpu_s > 0.0 {
        rep.received_per_loadtest_cpu_s = stats.received_all as f64 / rep.loadtest_cpu_s;
    }
    print!("{}", rep.table());
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&rep).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(ps) = &rep.pubsub {
        // A server that is down is a failure (1), not a missing feature (3).
        if ps.unanswered && stats.connect_errors == 0 {
            eprintln!(
                "loadtest: no connection got an answer to subscribe ({} upgraded, {} refused): the server has no JSON pub/sub mode on this subprotocol",
                stats.connected, stats.handshake_errors
            );
            return Ok(ExitCode::from(3));
        }
        if let Some(e) = ps.problem(cli.fail_on_loss) {
            eprintln!("loadtest: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    let failed_conns = stats.connect_errors + stats.handshake_errors + stats.unexpected_closes;
    if failed_conns > 0 {
        eprintln!("loadtest: {failed_conns} connection(s) failed unexpectedly");
        return Ok(ExitCode::from(1));
    }
    if cli.fail_on_loss && stats.lost > 0 {
        eprintln!("loadtest: {} message(s) lost", stats.lost);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
