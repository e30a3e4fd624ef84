//! One scenario against one server: start it fresh, run loadtest against it, sample its CPU and
//! memory, stop it, and check loadtest's numbers for correctness (never for speed).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fleet::{Fleet, Started};
use super::lt::LtReport;
use super::scenarios::{Load, Scenario};
use super::server::{ServerKind, ServerSpec};

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
    /// Server CPU seconds (user + system) over the loadtest run (a cluster's nodes summed,
    /// redis-server apart).
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s / wall_s`, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// loadtest CPU, percent of one core over its run.
    pub loadtest_cpu_pct: Option<f64>,
    /// Server RSS at the end of the run, KiB (a cluster's nodes summed).
    pub server_rss_end_kib: Option<u64>,
    /// Server peak RSS, KiB.
    pub server_rss_peak_kib: Option<u64>,
    /// How the server stopped.
    pub server_stop: Option<String>,
    /// Cluster runs: redis-server's CPU over the loadtest run, percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cpu_pct: Option<f64>,
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
            redis_cpu_pct: None,
        }
    }

    /// The status as a table cell: `ok`, else upper case (`FAILED`, `SKIPPED`, `N/A`).
    pub fn status_cell(&self) -> String {
        if self.ok() {
            "ok".into()
        } else {
            self.status.to_uppercase()
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

/// Where the runs find binaries and write logs.
pub(super) struct Ctx {
    pub(super) bin_dir: PathBuf,
    pub(super) logs: PathBuf,
    pub(super) threads: Option<usize>,
    /// The test certificate of the TLS rows (made when any is selected).
    pub(super) tls: Option<super::tls::Files>,
}

pub(super) fn run_one(ctx: &Ctx, sc: &Scenario, srv: &ServerSpec, rate: u64) -> RunResult {
    let mut r = RunResult::new(sc, srv);
    if sc.rate().is_some() {
        r.rate_per_publisher = Some(rate);
    }
    if sc.ringcast_only() && !matches!(srv.kind, ServerKind::Ringcast { .. }) {
        r.status = "skipped".into();
        r.notes.push(
            "no JSON pub/sub mode nor Pusher dialect (ringcast's own room mode is the baseline)"
                .into(),
        );
        return r;
    }
    let stem = format!("{}-{}", sc.key, srv.name);
    let server_log = ctx.logs.join(format!("{stem}.server.log"));
    let server_args = match super::pusher::server_args(sc, &ctx.logs) {
        Ok(args) => args,
        Err(e) => {
            r.fail(format!("writing the Pusher app file: {e}"));
            return r;
        }
    };
    let tls = ctx.tls.as_ref().filter(|_| sc.tls);
    let tls_args = tls.map(super::tls::Files::server_args).unwrap_or_default();
    let started = Fleet::start(
        srv,
        &ctx.bin_dir,
        sc.echo,
        &server_args,
        &tls_args,
        &server_log,
    );
    let running = match started {
        Ok(Started::Up(x)) => x,
        Ok(Started::Skip(why)) => {
            r.status = "skipped".into();
            r.notes.push(why);
            return r;
        }
        Err(e) => {
            let log = std::fs::read_to_string(&server_log).unwrap_or_default();
            if let Some(arg) = refused_arg(&log, &server_args) {
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
    let urls = running.urls();
    r.url = Some(urls.join(" "));
    let pid = running.single_pid();
    let json = ctx.logs.join(format!("{stem}.json"));
    let _ = std::fs::remove_file(&json);
    let mut args = sc.loadtest_args(&urls, rate, &json, pid, ctx.threads);
    if let Some(files) = tls {
        args.splice(0..0, ["--ca".to_owned(), files.ca.display().to_string()]);
    }
    r.loadtest_args = args.clone();
    let out_path = ctx.logs.join(format!("{stem}.loadtest.txt"));
    let before = running.sample();
    let redis_before = running.redis_cpu_s();
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
    let after = running.sample();
    if let (Some(b), Some(a)) = (redis_before, running.redis_cpu_s())
        && r.wall_s > 0.0
    {
        r.redis_cpu_pct = Some((a - b) / r.wall_s * 100.0);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::LtLatency;
    use crate::e2e::{cluster, scenarios};

    #[test]
    fn cluster_row_fails_on_loss_never_on_latency() {
        let sc = scenarios::all(true)
            .into_iter()
            .find(|s| s.cluster)
            .expect("cluster scenario");
        let srv = &cluster::servers(2, &[])[0];
        let slow = LtLatency {
            p99_us: 5e6,
            ..LtLatency::default()
        };
        let lt = LtReport {
            connections: 620,
            connected: 620,
            sent: 4000,
            delivered: 120_000,
            expected: 120_000,
            latency: slow.clone(),
            latency_same_node: Some(LtLatency::default()),
            latency_cross_node: Some(slow),
            ..LtReport::default()
        };
        let mut r = RunResult::new(&sc, srv);
        check(&mut r, &sc, &lt);
        assert!(r.ok(), "a 5 s p99 is no failure: {:?}", r.errors);
        let lossy = LtReport {
            lost: 3,
            delivered: 119_997,
            ..lt
        };
        let mut r = RunResult::new(&sc, srv);
        check(&mut r, &sc, &lossy);
        assert_eq!(r.status, "failed");
        assert!(r.errors[0].contains("3 of 120000"), "{:?}", r.errors);
    }

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
