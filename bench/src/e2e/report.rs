//! `report.md`: machine facts, a goal summary, and one table per scenario with ratios to the
//! reference peer.

use std::fmt::Write as _;
use std::time::Duration;

use super::scenarios::{Load, PUBSUB_BASELINE, Scenario};
use super::units::{ms, pct, si};
use super::{Report, RunResult};

fn ratio(v: Option<f64>, reference: Option<f64>) -> String {
    match (v, reference) {
        (Some(v), Some(r)) if r > 0.0 => format!("{:.2}×", v / r),
        _ => "–".into(),
    }
}

/// The primary throughput of a run: deliveries per second, or setup rate for `connect`.
pub fn throughput(r: &RunResult, sc: &Scenario) -> Option<f64> {
    let lt = r.loadtest.as_ref()?;
    Some(match sc.load {
        Load::Connect { .. } => lt.connect_rate_per_s,
        _ => lt.delivered_per_s,
    })
}

/// p99 latency in µs (not for `connect`).
pub fn p99(r: &RunResult, sc: &Scenario) -> Option<f64> {
    match sc.load {
        Load::Connect { .. } => None,
        _ => r.loadtest.as_ref().map(|l| l.latency.p99_us),
    }
}

/// Server RSS growth per connection, KiB (`connect` only).
pub fn rss_per_conn(r: &RunResult) -> Option<f64> {
    r.loadtest.as_ref()?.server_rss_per_conn_kib
}

/// The progress line printed after each run.
pub fn one_line(r: &RunResult) -> String {
    let mut s = r.status.clone();
    match &r.loadtest {
        Some(l) if l.server_rss_per_conn_kib.is_some() || l.sent == 0 => {
            let _ = write!(
                s,
                ": {}/{} conns at {}/s",
                l.connected,
                l.connections,
                si(l.connect_rate_per_s)
            );
            if let Some(k) = l.server_rss_per_conn_kib {
                let _ = write!(s, ", {k:.2} KiB/conn");
            }
        }
        Some(l) => {
            let _ = write!(
                s,
                ": delivered {}/s sent {}/s p99 {} lost {}",
                si(l.delivered_per_s),
                si(l.sent_per_s),
                ms(l.latency.p99_us),
                l.lost
            );
            if l.rounds > 0 {
                let _ = write!(s, " rounds {:.1}/s", l.rounds_per_s);
            }
            if let (Some(same), Some(cross)) = (&l.latency_same_node, &l.latency_cross_node) {
                let _ = write!(
                    s,
                    " (p99 same-node {}, cross-node {})",
                    ms(same.p99_us),
                    ms(cross.p99_us)
                );
            }
        }
        None => {}
    }
    if let Some(c) = r.server_cpu_pct {
        let _ = write!(s, ", server CPU {c:.0} %");
    }
    if let Some(c) = r.redis_cpu_pct {
        let _ = write!(s, ", redis CPU {c:.0} %");
    }
    for e in &r.errors {
        let _ = write!(s, " | ERROR {e}");
    }
    for n in &r.notes {
        let _ = write!(s, " | note: {n}");
    }
    s
}

fn find<'a>(rep: &'a Report, sc: &str, server: &str) -> Option<&'a RunResult> {
    rep.results
        .iter()
        .find(|r| r.scenario == sc && r.server == server)
}

/// The whole Markdown report.
pub fn markdown(rep: &Report, scs: &[Scenario], reference: Option<&str>, took: Duration) -> String {
    let m = &rep.machine;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# ringcast end-to-end comparison ({})\n",
        if rep.quick { "quick form" } else { "full form" }
    );
    let _ = writeln!(s, "| | |\n| --- | --- |");
    for (k, v) in [
        ("date", format!("{} → {}", m.started, m.finished)),
        ("kernel (`uname -r`)", m.kernel.clone()),
        ("CPU", m.cpu_model.clone()),
        ("cores", m.cores.to_string()),
        (
            "load average (1/5/15 min)",
            format!("{} at start, {} at end", m.loadavg_start, m.loadavg_end),
        ),
        ("rustc", m.rustc.clone()),
        ("ringcast", m.ringcast.clone()),
        ("loadtest", m.loadtest.clone()),
        ("git", m.git.clone()),
        ("runner wall time", format!("{:.0} s", took.as_secs_f64())),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(
        s,
        "\nEvery server is started fresh for every scenario on `127.0.0.1:0` and shares the \
         machine's cores with loadtest (the runner pins nothing; ringcast pins worker *i* to the \
         *i*-th allowed CPU itself, except the cluster row's nodes, started with `--no-pin`). CPU columns are percent of one core over the whole loadtest run \
         (connect, warm-up, measure, drain). Latency is send → receive at the clients. \
         Ratios divide by `{}`. Nothing here fails on a speed number; a run fails on an error or \
         on a lost message that was not a counted backpressure drop.\n",
        reference.unwrap_or("–")
    );

    summary(&mut s, rep, scs, reference);
    super::tls::goals(&mut s, rep, scs);

    let failed: Vec<&RunResult> = rep
        .results
        .iter()
        .filter(|r| r.status == "failed")
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "## Failures\n");
        for r in failed {
            let _ = writeln!(
                s,
                "- **{} against {}**: {}",
                r.scenario,
                r.server,
                r.errors.join("; ")
            );
        }
        s.push('\n');
    }

    for sc in scs {
        let _ = writeln!(s, "## {} `{}` — {}\n", sc.letter, sc.key, sc.title);
        let rate = rep
            .results
            .iter()
            .find(|r| r.scenario == sc.key)
            .and_then(|r| r.rate_per_publisher)
            .filter(|&r| r > 0);
        if let Some(rate) = rate {
            let _ = writeln!(s, "Rate per publisher: {rate} msgs/s.\n");
        }
        let refr = reference
            .and_then(|n| find(rep, &sc.key, n))
            .filter(|r| r.ok());
        match (sc.load.clone(), sc.baseline) {
            _ if sc.cluster => super::cluster::table(&mut s, rep, sc),
            (Load::Connect { .. }, _) => connect_table(&mut s, rep, sc, refr),
            (_, Some(base)) => {
                // Each server against its own run of the baseline scenario.
                let refr_of = |name: &str| find(rep, base, name).filter(|r| r.ok());
                let label = format!("÷ own `{base}`");
                traffic_table(&mut s, rep, sc, &refr_of, &label)
            }
            (_, None) => traffic_table(&mut s, rep, sc, &|_: &str| refr, "÷ peer"),
        }
        let mut notes = Vec::new();
        for r in rep.results.iter().filter(|r| r.scenario == sc.key) {
            for e in &r.errors {
                notes.push(format!("- `{}` **error**: {e}", r.server));
            }
            for n in &r.notes {
                notes.push(format!("- `{}`: {n}", r.server));
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(s, "\n{}", notes.join("\n"));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Raw numbers: `report.json`; per-run logs (loadtest tables, server stderr, loadtest \
         JSON): `logs/`; chart: `report.svg`."
    );
    s
}

fn lost_cell(r: &RunResult) -> String {
    match &r.loadtest {
        Some(l) if l.lost_at_closed_receivers > 0 => {
            format!("{} (+{} closed)", l.lost, l.lost_at_closed_receivers)
        }
        Some(l) => l.lost.to_string(),
        None => "–".into(),
    }
}

fn traffic_table<'a>(
    s: &mut String,
    rep: &'a Report,
    sc: &Scenario,
    refr_of: &dyn Fn(&str) -> Option<&'a RunResult>,
    per: &str,
) {
    let rounds = matches!(sc.load, Load::Rounds { .. });
    let _ = writeln!(
        s,
        "| server | status | delivered/s | sent/s |{} p50 | p99 | p99.9 | lost | server CPU | \
         loadtest CPU | delivered/s {per} | p99 {per} |",
        if rounds { " rounds/s |" } else { "" }
    );
    let _ = writeln!(
        s,
        "| --- | --- | ---: | ---: |{} ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        if rounds { " ---: |" } else { "" }
    );
    for name in &rep.servers {
        let Some(r) = find(rep, &sc.key, name) else {
            continue;
        };
        let refr = refr_of(name);
        let l = r.loadtest.as_ref();
        let num = |f: &dyn Fn(&super::LtReport) -> String| l.map_or("–".into(), f);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |{} {} | {} | {} | {} | {} | {} | {} | {} |",
            name,
            r.status_cell(),
            num(&|l| si(l.delivered_per_s)),
            num(&|l| si(l.sent_per_s)),
            if rounds {
                format!(" {} |", num(&|l| format!("{:.1}", l.rounds_per_s)))
            } else {
                String::new()
            },
            num(&|l| ms(l.latency.p50_us)),
            num(&|l| ms(l.latency.p99_us)),
            num(&|l| ms(l.latency.p999_us)),
            lost_cell(r),
            pct(r.server_cpu_pct),
            pct(r.loadtest_cpu_pct),
            ratio(throughput(r, sc), refr.and_then(|x| throughput(x, sc))),
            ratio(p99(r, sc), refr.and_then(|x| p99(x, sc))),
        );
    }
}

fn connect_table(s: &mut String, rep: &Report, sc: &Scenario, refr: Option<&RunResult>) {
    let _ = writeln!(
        s,
        "| server | status | connected | setup conn/s | RSS before | RSS with all open | \
         RSS per conn | server CPU | loadtest CPU | RSS/conn ÷ peer | setup ÷ peer |"
    );
    let _ = writeln!(
        s,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mib = |k: Option<u64>| k.map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    for name in &rep.servers {
        let Some(r) = find(rep, &sc.key, name) else {
            continue;
        };
        let l = r.loadtest.as_ref();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            name,
            r.status_cell(),
            l.map_or("–".into(), |l| format!(
                "{} / {}",
                l.connected, l.connections
            )),
            l.map_or("–".into(), |l| si(l.connect_rate_per_s)),
            mib(l.and_then(|l| l.server_rss_before_kib)),
            mib(l.and_then(|l| l.server_rss_after_kib)),
            rss_per_conn(r).map_or("–".into(), |k| format!("{k:.2} KiB")),
            pct(r.server_cpu_pct),
            pct(r.loadtest_cpu_pct),
            ratio(rss_per_conn(r), refr.and_then(rss_per_conn)),
            ratio(throughput(r, sc), refr.and_then(|x| throughput(x, sc))),
        );
    }
}

/// The goals of the issue, checked for information only.
fn summary(s: &mut String, rep: &Report, scs: &[Scenario], reference: Option<&str>) {
    let Some(reference) = reference else { return };
    let others: Vec<&String> = rep.servers.iter().filter(|n| *n != reference).collect();
    if others.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Goals (informational, never a failure)\n");
    let mut head = "| scenario | goal |".to_string();
    let mut rule = "| --- | --- |".to_string();
    for o in &others {
        let _ = write!(head, " {o} |");
        rule.push_str(" --- |");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for sc in scs {
        let Some(refr) = find(rep, &sc.key, reference).filter(|r| r.ok()) else {
            continue;
        };
        if sc.baseline.is_some() || sc.tls {
            continue;
        }
        type Metric = fn(&RunResult, &Scenario) -> Option<f64>;
        let (goal, metric, want_low, bound, abs): (&str, Metric, bool, f64, Option<f64>) =
            match sc.load {
                Load::Connect { .. } => (
                    "RSS/conn ≤ ½ peer and ≤ 2 KiB",
                    |r, _| rss_per_conn(r),
                    true,
                    0.5,
                    Some(2.0),
                ),
                _ if sc.key == "latency" => ("p99 ≤ ½ peer", p99, true, 0.5, None),
                _ if sc.key == "rooms" => (
                    "(fixed rate: all deliver the same; compare p99)",
                    p99,
                    true,
                    f64::INFINITY,
                    None,
                ),
                _ => ("delivered/s ≥ 3× peer", throughput, false, 3.0, None),
            };
        let base = metric(refr, sc);
        let mut row = format!("| {} `{}` | {goal} |", sc.letter, sc.key);
        for o in &others {
            let cell = match find(rep, &sc.key, o).filter(|r| r.ok()) {
                Some(r) => match (metric(r, sc), base) {
                    (Some(v), Some(b)) if b > 0.0 => {
                        let q = v / b;
                        let met = if bound.is_infinite() {
                            ""
                        } else if (want_low && q <= bound && abs.is_none_or(|a| v <= a))
                            || (!want_low && q >= bound)
                        {
                            " ✅"
                        } else {
                            " ❌"
                        };
                        let unit = match sc.load {
                            Load::Connect { .. } => format!(" ({v:.2} KiB)"),
                            _ if sc.key == "rooms" || sc.key == "latency" => " (p99)".into(),
                            _ => String::new(),
                        };
                        format!("{q:.2}×{unit}{met}")
                    }
                    _ => "–".into(),
                },
                None => "failed/skipped".into(),
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(s, "{row}");
    }
    pubsub_goals(s, rep, scs, &others);
    s.push('\n');
}

/// Pub/sub goals: JSON mode ≥ 0.8× the same server's room mode; history on costs ≤ 10 %; an
/// API publish costs the subscriber path ≤ 10 % (deliveries per server CPU-second, issue 23);
/// the Pusher dialect ≥ 0.8× room mode per server CPU-second (issue 24).
fn pubsub_goals(s: &mut String, rep: &Report, scs: &[Scenario], others: &[&String]) {
    for (key, base, goal, bound, per_cpu) in [
        (
            "pubsub",
            PUBSUB_BASELINE,
            "JSON mode ≥ 0.8× own room mode (a)",
            0.8,
            false,
        ),
        (
            "pubsub-hist",
            "pubsub",
            "history on ≥ 0.9× history off",
            0.9,
            false,
        ),
        (
            "api",
            "api-ws",
            "deliveries per server CPU-s, API-published ≥ 0.9× WebSocket-published",
            0.9,
            true,
        ),
        (
            "pusher",
            PUBSUB_BASELINE,
            "deliveries per server CPU-s, Pusher dialect ≥ 0.8× own room mode (a)",
            0.8,
            true,
        ),
    ] {
        let rate = |key: &str, name: &str| {
            let r = find(rep, key, name).filter(|r| r.ok())?;
            let l = r.loadtest.as_ref()?;
            match per_cpu {
                true => r
                    .server_cpu_s
                    .filter(|&c| c > 0.0)
                    .map(|c| l.delivered as f64 / c),
                false => Some(l.delivered_per_s),
            }
        };
        let Some(sc) = scs.iter().find(|x| x.key == key) else {
            continue;
        };
        let mut row = format!("| {} `{}` | {goal} |", sc.letter, sc.key);
        for o in others {
            let cell = match (rate(key, o), rate(base, o)) {
                (Some(v), Some(b)) if b > 0.0 => {
                    let q = v / b;
                    format!("{q:.2}×{}", if q >= bound { " ✅" } else { " ❌" })
                }
                _ => match find(rep, key, o).map(|r| r.status.as_str()) {
                    Some("n/a") => "n/a".into(),
                    _ => "–".into(),
                },
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(s, "{row}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(si(1_540_000.0), "1.54 M");
        assert_eq!(si(183_000.0), "183 k");
        assert_eq!(si(1_500.0), "1.5 k");
        assert_eq!(si(52.8), "52.8");
        assert_eq!(ms(410.0), "0.41 ms");
        assert_eq!(ms(153_000.0), "153 ms");
        assert_eq!(ratio(Some(3.0), Some(1.5)), "2.00×");
        assert_eq!(ratio(Some(3.0), None), "–");
    }
}
