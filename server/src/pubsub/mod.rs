//! Pub/sub state every worker shares (docs/pubsub.md#history): the topic history (when `--history-size` > 0),
//! the presence registry and this node's id. Sessions and the fan-out read it; nothing here
//! does I/O.

use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use ringcast_pubsub::history::{History, HistoryConfig, SharedSpan, random_instance};
use ringcast_pubsub::presence::{ClientId, Presence};

use crate::config::Config;

pub mod idempotency;
pub mod nodes;
pub mod orders;

/// Topics one tick's TTL sweep visits at most (each tick of each worker takes a step of the
/// one shared pass): bounded work per tick, and at 10-500 ms ticks a pass over 100,000 topics
/// still ends within a couple of minutes, while a quiet topic's expired messages go sooner
/// with fewer topics.
const SWEEP_TOPICS_PER_TICK: usize = 256;

/// Pub/sub state shared by all workers.
pub struct Hub {
    /// Topic history; `None` with `--history-size 0`.
    pub history: Option<History<SharedSpan>>,
    /// Who is in each topic (subscribers and room-mode members).
    pub presence: Presence,
    /// `--node-id`, or a random one.
    pub node_id: String,
    /// The server API's orders about connections (disconnect, subscribe, unsubscribe),
    /// applied by every worker (docs/api.md#disconnect).
    pub orders: orders::Orders,
    /// Users banned by the server API's `disconnect` with `ban_until` (docs/api.md#disconnect).
    pub bans: orders::Bans,
    /// The server API's `idempotency_key` window (docs/api.md#publish).
    pub idempotency: idempotency::Idempotency,
    /// The other nodes' figures for the server API's `info` (docs/api.md#info).
    pub nodes: nodes::Nodes,
    start: Instant,
}

impl Hub {
    /// The hub `config` asks for.
    pub fn new(config: &Config) -> Hub {
        let node_id = config
            .node_id
            .clone()
            .unwrap_or_else(|| format!("n{:x}", RandomState::new().hash_one(0u8) & 0xff_ffff));
        let history = (config.history_size > 0).then(|| {
            History::new(HistoryConfig {
                size: config.history_size,
                ttl_secs: config.history_ttl,
                max_bytes: config.history_max_bytes,
                node_id: node_id.clone(),
                instance: random_instance(),
            })
        });
        Hub {
            history,
            presence: Presence::new(config.presence_max),
            node_id,
            orders: orders::Orders::new(config.workers),
            idempotency: idempotency::Idempotency::default(),
            bans: orders::Bans::default(),
            nodes: nodes::Nodes::default(),
            start: Instant::now(),
        }
    }

    /// Seconds since start: the history's clock (for the TTL).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// One bounded step of the history TTL sweep (from every worker's tick): frees expired
    /// messages of topics nobody appends to or asks about.
    pub fn sweep(&self) {
        if let Some(h) = &self.history {
            h.sweep_expired(self.now(), SWEEP_TOPICS_PER_TICK);
        }
    }

    /// Appends the pub/sub gauges to a `/metrics` body.
    pub fn render_metrics(&self, out: &mut String) {
        let (bytes, topics) = self
            .history
            .as_ref()
            .map_or((0, 0), |h| (h.bytes(), h.topics()));
        let _ = writeln!(
            out,
            "# HELP ringcast_history_bytes Bytes the topic history holds (bounded by --history-max-bytes).\n# TYPE ringcast_history_bytes gauge\nringcast_history_bytes {bytes}"
        );
        let _ = writeln!(
            out,
            "# HELP ringcast_history_topics Topics with a history.\n# TYPE ringcast_history_topics gauge\nringcast_history_topics {topics}"
        );
        let lost = self.orders.lost();
        let _ = writeln!(
            out,
            "# HELP ringcast_api_orders_lost_total Other nodes' server API orders (and node figures) this node missed: published while a Redis link was down.\n# TYPE ringcast_api_orders_lost_total counter\nringcast_api_orders_lost_total {lost}"
        );
    }

    /// The cluster-unique id of connection `slot` (generation `generation`) of `worker`.
    pub fn client_id(&self, worker: usize, slot: usize, generation: u32) -> ClientId {
        ClientId::new(&self.node_id, worker as u16, slot as u32, generation)
    }
}
