//! The TLS rows (issue 22): the same loads over `wss://`, ringcast against the tokio-rustls
//! peer (`peer --tls-cert`), a test CA and certificate made by `openssl` at run time (nothing
//! committed), and the goal table beside ringcast's own `ws://` rows of the same run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::scenarios::{Load, Scenario};
use super::server::{ServerKind, ServerSpec};
use super::units::si;
use super::{Report, RunResult};

/// The test CA (for loadtest's `--ca`) and the servers' certificate chain and key.
#[derive(Debug, Clone)]
pub struct Files {
    /// The CA certificate, PEM.
    pub ca: PathBuf,
    /// The leaf certificate (`localhost`, `127.0.0.1`), PEM.
    pub cert: PathBuf,
    /// Its key, PEM (PKCS#8).
    pub key: PathBuf,
}

impl Files {
    /// The server arguments that turn TLS on (ringcast and the peer take the same flags).
    pub fn server_args(&self) -> Vec<String> {
        let s = |p: &Path| p.display().to_string();
        vec![
            "--tls-cert".into(),
            s(&self.cert),
            "--tls-key".into(),
            s(&self.key),
        ]
    }
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("openssl: {e} (install it: .ci/install-deps.sh)"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "openssl {}: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Makes a P-256 test CA and a leaf certificate for `localhost` and `127.0.0.1` in `dir`,
/// valid two days.
pub fn make_certs(dir: &Path) -> Result<Files, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]);
    ca.extend(["-subj", "/CN=ringcast-e2e-ca"]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr)?;
    let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
               extendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("leaf.ext"), ext).map_err(|e| format!("leaf.ext: {e}"))?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    )?;
    Ok(Files {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    })
}

/// Connections of the handshake rows (full form, quick form): the full form is also the
/// issue's idle-memory count.
const HANDSHAKES: usize = 10_000;
const HANDSHAKES_QUICK: usize = 1_000;

/// The TLS twins of `plain`'s fan-out and first rounds scenario (same load over `wss://`),
/// and two handshake rows: full handshakes (`loadtest --no-resume`) and resumed ones.
pub fn scenarios(quick: bool, plain: &[Scenario]) -> Vec<Scenario> {
    let mut v = Vec::new();
    let first_rounds = plain.iter().find(|s| matches!(s.load, Load::Rounds { .. }));
    for base in plain
        .iter()
        .filter(|s| s.key == "fanout")
        .chain(first_rounds)
    {
        let mut t = base.clone();
        t.key = format!("{}-wss", base.key);
        t.title = format!(
            "{}; over wss:// (TLS 1.3), ratios against the peer over wss://",
            base.title
        );
        t.tls = true;
        t.letter = "(i)";
        v.push(t);
    }
    let Some(connect) = plain.iter().find(|s| s.key == "connect") else {
        return v;
    };
    let n = if quick { HANDSHAKES_QUICK } else { HANDSHAKES };
    for resume in [false, true] {
        let mut t = connect.clone();
        t.load = Load::Connect { connections: n };
        t.tls = true;
        t.letter = "(i)";
        if resume {
            t.key = "handshake-resumed-wss".into();
            t.title = format!(
                "TLS handshakes: {n} connections over wss://, the client resumes its TLS session \
                 when the server offers it (TLS 1.3 tickets)"
            );
        } else {
            t.key = "handshake-wss".into();
            t.title = format!(
                "TLS handshakes: {n} connections over wss://, every one a full handshake \
                 (`loadtest --no-resume`), held idle: setup rate and RSS per connection"
            );
            t.loadtest_flags.push("--no-resume".into());
        }
        v.push(t);
    }
    v
}

/// The servers of a TLS row: the reference peer and the ringcast with the most workers (the
/// goals compare equal worker counts); a cluster or an external server gets no certificate.
pub fn servers(all: &[ServerSpec]) -> Vec<ServerSpec> {
    let most = all
        .iter()
        .filter_map(|s| match s.kind {
            ServerKind::Ringcast { workers } => Some(workers),
            _ => None,
        })
        .max();
    all.iter()
        .filter(|s| match s.kind {
            ServerKind::Peer { .. } => true,
            ServerKind::Ringcast { workers } => Some(workers) == most,
            _ => false,
        })
        .cloned()
        .collect()
}

/// Messages loadtest received over its whole run (every phase) per server CPU-second.
fn received_per_cpu(r: &RunResult) -> Option<f64> {
    let lt = r.loadtest.as_ref()?;
    let cpu = r.server_cpu_s.filter(|&c| c > 0.0)?;
    Some(lt.received_per_loadtest_cpu_s * lt.loadtest_cpu_s / cpu)
}

/// Connections set up per server CPU-second.
fn connections_per_cpu(r: &RunResult) -> Option<f64> {
    let lt = r.loadtest.as_ref()?;
    let cpu = r.server_cpu_s.filter(|&c| c > 0.0)?;
    Some(lt.connected as f64 / cpu)
}

/// Server RSS growth per connection, KiB.
fn rss_per_conn(r: &RunResult) -> Option<f64> {
    r.loadtest.as_ref()?.server_rss_per_conn_kib
}

/// Rounds per second.
fn rounds(r: &RunResult) -> Option<f64> {
    Some(r.loadtest.as_ref()?.rounds_per_s)
}

/// The goal table (informational, never a failure), when the run has TLS rows.
pub fn goals(s: &mut String, rep: &Report, scs: &[Scenario]) {
    if !scs.iter().any(|sc| sc.tls) {
        return;
    }
    // The ringcast of the TLS rows (`servers`), and its own ws:// rows.
    let tls_keys: Vec<&str> = scs
        .iter()
        .filter(|sc| sc.tls)
        .map(|sc| sc.key.as_str())
        .collect();
    let ringcast = rep
        .results
        .iter()
        .find(|r| tls_keys.contains(&r.scenario.as_str()) && r.server.starts_with("ringcast"))
        .map(|r| r.server.clone());
    let find = |key: &str, ringcast_row: bool| {
        rep.results.iter().find(|r| {
            r.scenario == key
                && r.ok()
                && if ringcast_row {
                    Some(&r.server) == ringcast.as_ref()
                } else {
                    !r.server.starts_with("ringcast")
                }
        })
    };
    let rounds_key = scs
        .iter()
        .find(|sc| sc.tls && matches!(sc.load, Load::Rounds { .. }))
        .map_or(String::new(), |sc| sc.key.clone());
    let rounds_plain = rounds_key.trim_end_matches("-wss").to_owned();
    type Metric = fn(&RunResult) -> Option<f64>;
    let rows: [(&str, &str, &str, Metric, &str); 5] = [
        (
            "fan-out: messages received per server CPU-s over the whole run, connects and TLS \
             handshakes included (bench/tls-goals.sh also measures from the moment all are \
             connected)",
            "fanout",
            "fanout-wss",
            received_per_cpu,
            "wss ≥ 0.7× ws, ≥ 5× peer",
        ),
        (
            "all-to-all rounds/s",
            &rounds_plain,
            &rounds_key,
            rounds,
            "wss ≥ 3× peer",
        ),
        (
            "full TLS handshakes per server CPU-s",
            "",
            "handshake-wss",
            connections_per_cpu,
            "≥ peer (per worker, equal workers)",
        ),
        (
            "resumed TLS handshakes per server CPU-s",
            "",
            "handshake-resumed-wss",
            connections_per_cpu,
            "≥ peer",
        ),
        (
            "RSS per idle connection, KiB (ws: `connect`)",
            "connect",
            "handshake-wss",
            rss_per_conn,
            "wss ≤ ws + 4 KiB",
        ),
    ];
    let _ = writeln!(
        s,
        "## TLS goals (issue 22; informational, never a failure)\n\n\
         | row | ringcast ws:// | ringcast wss:// | wss ÷ ws | peer wss:// | ringcast wss ÷ peer | goal |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    let cell = |v: Option<f64>| v.map_or("–".into(), si);
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    };
    for (name, plain, tls, metric, goal) in rows {
        let ws = find(plain, true).and_then(metric);
        let wss = find(tls, true).and_then(metric);
        let peer = find(tls, false).and_then(metric);
        let (ws_s, mut wss_s, mut peer_s) = if name.starts_with("RSS") {
            let kib = |v: Option<f64>| v.map_or("–".into(), |k| format!("{k:.2}"));
            (kib(ws), kib(wss), kib(peer))
        } else {
            (cell(ws), cell(wss), cell(peer))
        };
        if tls.starts_with("handshake") && !name.starts_with("RSS") {
            // How many of the connections resumed (loadtest counts them).
            let resumed = |r: Option<&RunResult>| {
                r.and_then(|r| r.loadtest.as_ref())
                    .map_or(String::new(), |l| format!(" ({} resumed)", l.tls_resumed))
            };
            wss_s += &resumed(find(tls, true));
            peer_s += &resumed(find(tls, false));
        }
        let _ = writeln!(
            s,
            "| {name} | {ws_s} | {wss_s} | {} | {peer_s} | {} | {goal} |",
            div(wss, ws),
            div(wss, peer)
        );
    }
    s.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_rows_twin_the_plain_ones_and_run_on_peer_and_the_widest_ringcast() {
        let plain = super::super::scenarios::all(true);
        let t = scenarios(true, &plain);
        let keys: Vec<&str> = t.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "fanout-wss",
                "rounds50-wss",
                "handshake-wss",
                "handshake-resumed-wss"
            ]
        );
        assert!(t.iter().all(|s| s.tls && s.letter == "(i)"));
        assert!(t[2].loadtest_flags.contains(&"--no-resume".to_owned()));
        let spec = |name: &str, kind| ServerSpec {
            name: name.into(),
            kind,
        };
        let all = [
            spec("peer-w2", ServerKind::Peer { workers: 2 }),
            spec("ringcast-w1", ServerKind::Ringcast { workers: 1 }),
            spec("ringcast-w2", ServerKind::Ringcast { workers: 2 }),
        ];
        let names: Vec<String> = servers(&all).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["peer-w2", "ringcast-w2"]);
    }
}
