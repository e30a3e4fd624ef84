//! Starting the bus: validating the configuration, one thread with a current-thread Tokio
//! runtime (the only async runtime in ringcast), one task per Redis shard.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use redis::{IntoConnectionInfo, ProtocolVersion};
use tokio::sync::mpsc;

use crate::handle::{Counters, ShardTx};
use crate::shard::{Shard, ShardConfig};
use crate::{BusConfig, BusEvent, BusHandle, ClusterError};

/// The cluster bus. See the crate documentation for the contract.
#[derive(Debug)]
pub struct Bus;

impl Bus {
    /// Validates `config`, spawns the bus thread and returns at once: connecting happens in the
    /// background (Redis being down at start is not an error; `BusEvent::Up(true)` says when every
    /// shard is connected). `on_event` runs on the bus thread, so it must be cheap and must not
    /// block (push into a worker's queue and wake it).
    pub fn start(
        config: BusConfig,
        on_event: impl Fn(BusEvent) + Send + 'static,
    ) -> Result<BusHandle, ClusterError> {
        config.validate()?;
        let mut clients = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            let bad = |e: redis::RedisError| ClusterError::Url {
                url: crate::redact_url(url),
                reason: e.to_string().replace(url.as_str(), &crate::redact_url(url)),
            };
            let info = url.as_str().into_connection_info().map_err(bad)?;
            // RESP3: pushes (pub/sub messages) and commands share one multiplexed connection.
            let redis = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            clients.push(redis::Client::open(info.set_redis_settings(redis)).map_err(bad)?);
        }
        let node: Arc<str> = Arc::from(config.node_id.as_str());
        let counters = Arc::new(Counters::default());
        let mut txs = Vec::new();
        let mut shards = Vec::new();
        for (index, client) in clients.into_iter().enumerate() {
            let (data_tx, data_rx) = mpsc::channel(config.queue_capacity);
            let (control_tx, control_rx) = mpsc::unbounded_channel();
            let tx = Arc::new(ShardTx {
                data: data_tx,
                control: control_tx,
                skipped: Mutex::default(),
                has_skipped: AtomicBool::new(false),
            });
            let cfg = ShardConfig {
                index,
                url: crate::redact_url(&config.urls[index]),
                client,
                node: node.clone(),
                prefix: config.prefix.clone(),
                ttl: config.presence_ttl,
                reconnect_max: config.reconnect_max,
                response_timeout: config.response_timeout,
                shards: config.urls.len(),
            };
            shards.push((cfg, data_rx, control_rx, tx.clone()));
            txs.push(tx);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Spawn(e.to_string()))?;
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("ringcast-bus".into())
            .spawn(move || {
                let emit: Rc<dyn Fn(BusEvent)> = Rc::new(on_event);
                // Timers in `Shard::new` need the runtime's context.
                let _context = runtime.enter();
                let local = tokio::task::LocalSet::new();
                for (cfg, data, control, tx) in shards {
                    let shard = Shard::new(
                        cfg,
                        data,
                        control,
                        tx,
                        thread_counters.clone(),
                        emit.clone(),
                    );
                    local.spawn_local(shard.run());
                }
                runtime.block_on(local);
            })
            .map_err(|e| ClusterError::Spawn(e.to_string()))?;
        Ok(BusHandle::new(
            node,
            txs,
            counters,
            config.max_queued_bytes,
            thread,
        ))
    }
}
