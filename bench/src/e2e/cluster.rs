//! The cluster row: which servers it compares (3 ringcast nodes × 1 worker with a redis-server,
//! against 1 node × N workers at the same load) and its table (same-node and cross-node p99,
//! server and redis-server CPU).

use std::fmt::Write as _;

use super::scenarios::Scenario;
use super::server::{ServerKind, ServerSpec};
use super::units::{ms, pct, si};
use super::{LtLatency, Report};

/// Nodes of the cluster.
pub const NODES: usize = 3;

/// The servers of the cluster scenario: the cluster, then one node with `workers` workers.
/// `filter` (`--servers`) keeps those whose name contains one of its entries.
pub fn servers(workers: usize, filter: &[String]) -> Vec<ServerSpec> {
    let mut v = vec![
        ServerSpec {
            name: format!("cluster-{NODES}x1"),
            kind: ServerKind::Cluster {
                nodes: NODES,
                workers: 1,
            },
        },
        ServerSpec {
            name: format!("ringcast-w{workers}"),
            kind: ServerKind::Ringcast { workers },
        },
    ];
    if !filter.is_empty() {
        v.retain(|s| filter.iter().any(|f| s.name.contains(f.as_str())));
    }
    v
}

fn p99(l: Option<&LtLatency>) -> String {
    l.map_or("–".into(), |l| ms(l.p99_us))
}

/// Cross-node p99 minus same-node p99 against the goal (≤ 2 ms), `–` without a split.
fn goal(same: Option<&LtLatency>, cross: Option<&LtLatency>) -> String {
    match (same, cross) {
        (Some(s), Some(c)) => {
            let d = c.p99_us - s.p99_us;
            let sign = if d < 0.0 { "−" } else { "+" };
            let met = if d <= GOAL_US { "✅" } else { "❌" };
            format!("{sign}{} {met}", ms(d.abs()))
        }
        _ => "–".into(),
    }
}

/// Issue 16: cross-node p99 ≤ same-node p99 + 2 ms.
const GOAL_US: f64 = 2000.0;

/// The cluster scenario's table: one row per server it ran against.
pub fn table(s: &mut String, rep: &Report, sc: &Scenario) {
    let _ = writeln!(
        s,
        "| server | status | delivered/s | sent/s | p99 | same-node p99 | cross-node p99 | \
         cross − same (goal ≤ +2 ms) | lost | dup / reordered | server CPU | redis CPU | loadtest CPU |"
    );
    let _ = writeln!(
        s,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rep.results.iter().filter(|r| r.scenario == sc.key) {
        let l = r.loadtest.as_ref();
        let num = |f: &dyn Fn(&super::LtReport) -> String| l.map_or("–".into(), f);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.server,
            r.status_cell(),
            num(&|l| si(l.delivered_per_s)),
            num(&|l| si(l.sent_per_s)),
            num(&|l| ms(l.latency.p99_us)),
            p99(l.and_then(|l| l.latency_same_node.as_ref())),
            p99(l.and_then(|l| l.latency_cross_node.as_ref())),
            goal(
                l.and_then(|l| l.latency_same_node.as_ref()),
                l.and_then(|l| l.latency_cross_node.as_ref())
            ),
            num(&|l| l.lost.to_string()),
            num(&|l| format!("{} / {}", l.duplicates, l.reordered)),
            pct(r.server_cpu_pct),
            pct(r.redis_cpu_pct),
            pct(r.loadtest_cpu_pct),
        );
    }
    let _ = writeln!(
        s,
        "\nServer CPU sums the nodes; same-node: the receiver is on its publisher's node, \
         cross-node: the copy went through Redis. The goal column is informational, never a \
         failure."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_then_single_node() {
        let v = servers(2, &[]);
        let names: Vec<&str> = v.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cluster-3x1", "ringcast-w2"]);
        assert!(matches!(
            v[0].kind,
            ServerKind::Cluster {
                nodes: 3,
                workers: 1
            }
        ));
        assert_eq!(servers(2, &["cluster".into()]).len(), 1);
    }

    #[test]
    fn goal_is_cross_within_two_ms_of_same() {
        let at = |p99_us| LtLatency {
            p99_us,
            ..LtLatency::default()
        };
        assert_eq!(goal(Some(&at(5000.0)), Some(&at(6500.0))), "+1.50 ms ✅");
        assert_eq!(goal(Some(&at(5000.0)), Some(&at(7500.0))), "+2.50 ms ❌");
        assert_eq!(goal(Some(&at(5000.0)), Some(&at(4000.0))), "−1.00 ms ✅");
        assert_eq!(goal(None, Some(&at(1.0))), "–");
    }
}
