//! Pub/sub state every worker shares (SPEC §5): the topic history (when `--history-size` > 0),
//! the presence registry and this node's id. Sessions and the fan-out read it; nothing here
//! does I/O.

use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use ringcast_pubsub::history::{History, HistoryConfig, SharedSpan, random_instance};
use ringcast_pubsub::presence::{ClientId, Presence};

use crate::config::Config;

/// Pub/sub state shared by all workers.
pub struct Hub {
    /// Topic history; `None` with `--history-size 0`.
    pub history: Option<History<SharedSpan>>,
    /// Who is in each topic (subscribers and room-mode members).
    pub presence: Presence,
    /// `--node-id`, or a random one.
    pub node_id: String,
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
            start: Instant::now(),
        }
    }

    /// Seconds since start: the history's clock (for the TTL).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// The cluster-unique id of connection `slot` (generation `generation`) of `worker`.
    pub fn client_id(&self, worker: usize, slot: usize, generation: u32) -> ClientId {
        ClientId::new(&self.node_id, worker as u16, slot as u32, generation)
    }
}
