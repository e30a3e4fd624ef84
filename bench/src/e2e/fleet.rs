//! What one run drives: a single server, or the nodes of a cluster and their redis-server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::redis::{self, Redis};
use super::server::{self, ProcSample, Running, ServerKind, ServerSpec};

/// The started processes of one run.
pub struct Fleet {
    /// The servers clients connect to (one, or one per cluster node), in `--url` order.
    pub nodes: Vec<Running>,
    /// The cluster's bus, if this is a cluster.
    pub redis: Option<Redis>,
}

/// The outcome of [`Fleet::start`] that is not an error.
pub enum Started {
    /// Everything is up.
    Up(Fleet),
    /// The run does not apply (no echo URL for an external server, no redis-server): why.
    Skip(String),
}

/// `base` with `.{tag}` before its extension: `x.server.log` → `x.n1.server.log`.
fn tagged(base: &Path, tag: &str) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match name.split_once('.') {
        Some((stem, rest)) => format!("{stem}.{tag}.{rest}"),
        None => format!("{name}.{tag}"),
    };
    base.with_file_name(name)
}

impl Fleet {
    /// Starts `spec` fresh (see [`server::start`]); a cluster gets a redis-server on a free port
    /// and `nodes` ringcast processes pointed at it (logs next to `log`, tagged `redis`, `n1`,
    /// ...). A cluster is skipped when `redis-server` is not on `PATH`.
    pub fn start(
        spec: &ServerSpec,
        bin_dir: &Path,
        echo: bool,
        extra: &[String],
        tls: &[String],
        log: &Path,
    ) -> Result<Started, String> {
        let ServerKind::Cluster { nodes, workers } = spec.kind else {
            return Ok(match server::start(spec, bin_dir, echo, extra, tls, log)? {
                Some(r) => Started::Up(Self {
                    nodes: vec![r],
                    redis: None,
                }),
                None => Started::Skip("no echo-mode URL given (--peer-echo NAME=URL)".into()),
            });
        };
        if !redis::on_path() {
            return Ok(Started::Skip(
                "redis-server is not on PATH (install it: .ci/install.d/20-redis.sh)".into(),
            ));
        }
        let redis = Redis::start(&tagged(log, "redis"))?;
        let mut fleet = Self {
            nodes: Vec::with_capacity(nodes),
            redis: Some(redis),
        };
        let bus = fleet.redis.as_ref().map(Redis::url).unwrap_or_default();
        for i in 1..=nodes {
            let node = ServerSpec {
                name: format!("{}-n{i}", spec.name),
                kind: ServerKind::Ringcast { workers },
            };
            let mut args = vec![
                "--cluster".to_owned(),
                bus.clone(),
                "--node-id".to_owned(),
                format!("e2e-n{i}"),
                // Several processes share this machine's cores: pinned, every 1-worker node
                // would put its worker on the first allowed CPU.
                "--no-pin".to_owned(),
            ];
            args.extend_from_slice(extra);
            let log = tagged(log, &format!("n{i}"));
            match server::start(&node, bin_dir, echo, &args, &[], &log)? {
                Some(r) => fleet.nodes.push(r),
                None => return Err(format!("{} gave no URL", node.name)),
            }
        }
        Ok(Started::Up(fleet))
    }

    /// The URLs to give loadtest, one `--url` each.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|r| r.url.clone()).collect()
    }

    /// CPU and memory of the servers together (summed over nodes); `None` unless the runner
    /// started every one of them and all could be read.
    pub fn sample(&self) -> Option<ProcSample> {
        let mut sum = ProcSample::default();
        for r in &self.nodes {
            let s = server::sample(r.pid()?)?;
            sum.cpu_s += s.cpu_s;
            sum.rss_kib += s.rss_kib;
            sum.hwm_kib += s.hwm_kib;
        }
        Some(sum)
    }

    /// redis-server's CPU seconds so far, if this is a cluster.
    pub fn redis_cpu_s(&self) -> Option<f64> {
        server::sample(self.redis.as_ref()?.pid()?).map(|s| s.cpu_s)
    }

    /// The process id of the only server (for `loadtest connect --server-pid`); `None` for a
    /// cluster or an external server.
    pub fn single_pid(&self) -> Option<u32> {
        match self.nodes.as_slice() {
            [one] => one.pid(),
            _ => None,
        }
    }

    /// Why a server is no longer running when it should serve, if one exited.
    pub fn exited(&mut self) -> Option<String> {
        self.nodes
            .iter_mut()
            .enumerate()
            .find_map(|(i, r)| r.exited().map(|st| format!("node {}: {st}", i + 1)))
    }

    /// Stops every node (SIGTERM, see [`Running::stop`]) and then redis-server; `Ok` describes
    /// how they ended, `Err` names every one that did not stop cleanly.
    pub fn stop(self, patience: Duration) -> Result<String, String> {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let many = self.nodes.len() > 1;
        for (i, r) in self.nodes.into_iter().enumerate() {
            let who = if many {
                format!("node {}: ", i + 1)
            } else {
                String::new()
            };
            match r.stop(patience) {
                Ok(s) => ok.push(format!("{who}{s}")),
                Err(e) => bad.push(format!("{who}{e}")),
            }
        }
        if let Some(redis) = self.redis
            && let Err(e) = redis.stop(patience)
        {
            bad.push(e);
        }
        if bad.is_empty() {
            Ok(ok.join("; "))
        } else {
            Err(bad.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_logs_are_tagged() {
        let p = Path::new("/x/cluster-c3.server.log");
        assert_eq!(tagged(p, "n2"), Path::new("/x/cluster-c3.n2.server.log"));
        assert_eq!(
            tagged(Path::new("/x/log"), "redis"),
            Path::new("/x/log.redis")
        );
    }
}
