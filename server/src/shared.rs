//! What every worker shares, read-mostly: the settings, the room directory, the counters and the
//! connection limits. Nothing here is touched per message but relaxed atomics.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::bridge::{Bridge, BusRooms};
use crate::config::Config;
use crate::metrics::WorkerMetrics;
use crate::pubsub::Hub;
use crate::pusher::cache::Cache;
use crate::pusher::registry::Registry;
use crate::refusal::Refusal;
use crate::rooms::Directory;
use crate::webhooks::Webhooks;

/// State every worker shares.
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// Which workers have members in which rooms.
    pub directory: Directory,
    /// Counters, one block per worker.
    pub metrics: Box<[WorkerMetrics]>,
    /// Connections open in the whole process.
    pub open: AtomicUsize,
    /// Bytes all decoders hold for unfinished messages (`--max-pending-bytes`).
    pub pending: AtomicUsize,
    /// Open connections per client IP (only maintained with `--max-connections-per-ip`).
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Pub/sub history, presence and node id.
    pub hub: Hub,
    /// The cluster bus (`--cluster`); `None` on a single node.
    pub cluster: Option<Arc<Bridge>>,
    /// The Pusher channels of this process (docs/pusher.md).
    pub pusher: Registry,
    /// Webhook emission of the Pusher apps (disabled until `with_webhooks`).
    pub webhooks: Webhooks,
    /// The last event of each Pusher cache channel (docs/pusher.md#cache-channels).
    pub pusher_cache: Cache,
    /// The TLS certificate's notAfter in unix seconds (0: no TLS, or unreadable), set at
    /// start and on each reload; `ringcast_tls_certificate_expiry_seconds`.
    pub tls_not_after: AtomicI64,
}

impl Shared {
    /// State for `config` with `workers` counter blocks.
    pub fn new(config: Config, workers: usize) -> Shared {
        Shared {
            directory: Directory::new(config.max_rooms),
            metrics: (0..workers).map(|_| WorkerMetrics::default()).collect(),
            open: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            hub: Hub::new(&config),
            cluster: None,
            pusher: Registry::default(),
            webhooks: Webhooks::disabled(),
            pusher_cache: Cache::default(),
            tls_not_after: AtomicI64::new(0),
            config,
        }
    }

    /// Joins the cluster through `bridge`: the directory reports rooms' first and last local
    /// members to it (SUBSCRIBE / UNSUBSCRIBE), workers publish and register presence through it.
    pub fn with_cluster(mut self, bridge: Option<Arc<Bridge>>) -> Shared {
        if let Some(b) = &bridge {
            let history = self.hub.history.clone();
            (self.directory).set_watch(Arc::new(BusRooms::new(b.clone(), history)));
            if self.config.pusher.is_some() {
                let b = b.clone();
                (self.pusher).set_publisher(move |delta| b.publish_pusher_state(delta));
            }
        }
        self.cluster = bridge;
        self
    }

    /// This node's figures as the server API's `info` lists them (docs/api.md#info).
    pub fn node_info(&self) -> crate::pubsub::nodes::NodeInfo {
        let names = self.directory.names();
        let subs: usize = names.iter().map(|n| self.hub.presence.count(n)).sum();
        crate::pubsub::nodes::NodeInfo {
            uid: self.hub.node_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            num_clients: self.open.load(Ordering::Relaxed) as u64,
            num_subs: subs as u64,
            num_channels: names.len() as u64,
            uptime: self.hub.now(),
        }
    }

    /// Emits the Pusher apps' webhooks through `webhooks`.
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Shared {
        self.webhooks = webhooks;
        self
    }

    /// The `/metrics` page: every worker's counters, rooms, pub/sub and cluster gauges
    /// (Prometheus text, docs/metrics.md).
    pub fn render_metrics(&self) -> String {
        let workers: Vec<_> = self.metrics.iter().collect();
        let mut body = crate::metrics::render(&workers, self.directory.len());
        self.hub.render_metrics(&mut body);
        let bus = self.cluster.as_ref().map(|c| c.stats());
        crate::metrics::render_cluster(&mut body, bus);
        if let Some(apps) = &self.config.pusher {
            let ids = apps.all().iter().map(|a| a.id.as_str());
            self.pusher.render_metrics(&mut body, ids);
            self.pusher_cache.render_metrics(&mut body);
        }
        self.webhooks.render_metrics(&mut body);
        let not_after = self.tls_not_after.load(Ordering::Relaxed);
        crate::metrics::render_tls_expiry(&mut body, not_after);
        crate::deflate::render(&mut body);
        body
    }

    /// Counts a new connection from `ip`; returns the refusal when it is over
    /// `--max-connections` or `--max-connections-per-ip`. Every admitted connection, refused or
    /// not, is released once.
    pub fn admit(&self, ip: IpAddr) -> Option<Refusal> {
        let cfg = &self.config;
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        let mut refusal = (open > cfg.max_connections).then_some(Refusal::ConnectionLimit);
        if cfg.max_connections_per_ip > 0 {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            *n += 1;
            if *n > cfg.max_connections_per_ip {
                refusal = refusal.or(Some(Refusal::PerIpLimit));
            }
        }
        refusal
    }

    /// Uncounts a connection from `ip` (its slot was freed).
    pub fn release(&self, ip: IpAddr) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if self.config.max_connections_per_ip > 0 {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}
