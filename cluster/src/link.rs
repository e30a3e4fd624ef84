//! The lifecycle of one Redis connection: down (waiting to retry) → connecting → up.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Pipeline, PushInfo, RedisResult};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::Sleep;

/// A boxed future of the bus thread (not `Send`: it never leaves that thread).
pub(crate) type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;
/// A connection with its stream of pushes (pub/sub messages, disconnection).
pub(crate) type Connected = RedisResult<(MultiplexedConnection, UnboundedReceiver<PushInfo>)>;

/// First reconnect delay; it doubles per failed attempt up to the configured cap.
pub(crate) const BACKOFF_START: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the connection is. `backoff` is the delay before the attempt after the current one.
pub(crate) enum Link {
    Down {
        retry: Pin<Box<Sleep>>,
        backoff: Duration,
    },
    Connecting {
        fut: LocalFuture<Connected>,
        backoff: Duration,
    },
    Up {
        conn: MultiplexedConnection,
        pushes: UnboundedReceiver<PushInfo>,
    },
}

/// What the link produced.
pub(crate) enum LinkEvent {
    /// The retry delay is over: start connecting.
    Retry,
    /// A connection attempt finished.
    Connected(Connected),
    /// A push from Redis; `None` when the connection is gone.
    Push(Option<PushInfo>),
}

impl Link {
    /// Down, retrying after `delay`.
    pub fn down(delay: Duration, backoff: Duration) -> Self {
        Link::Down {
            retry: Box::pin(tokio::time::sleep(delay)),
            backoff,
        }
    }

    pub fn is_up(&self) -> bool {
        matches!(self, Link::Up { .. })
    }

    pub fn is_down(&self) -> bool {
        matches!(self, Link::Down { .. })
    }

    /// The delay to use after the current attempt fails.
    pub fn backoff(&self) -> Duration {
        match self {
            Link::Down { backoff, .. } | Link::Connecting { backoff, .. } => *backoff,
            Link::Up { .. } => BACKOFF_START,
        }
    }

    /// Waits for the next thing that changes or feeds the link. Cancel-safe.
    pub async fn next(&mut self) -> LinkEvent {
        match self {
            Link::Down { retry, .. } => {
                retry.as_mut().await;
                LinkEvent::Retry
            }
            Link::Connecting { fut, .. } => LinkEvent::Connected(fut.as_mut().await),
            Link::Up { pushes, .. } => LinkEvent::Push(pushes.recv().await),
        }
    }
}

/// Connects with RESP3 (pushes and commands on one connection) and runs `restore` (subscribes
/// and presence) before the connection is handed over, so "up" means "receiving".
pub(crate) fn connect(
    client: Client,
    response_timeout: Duration,
    restore: Pipeline,
) -> LocalFuture<Connected> {
    Box::pin(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_push_sender(tx)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        if !restore.is_empty() {
            restore.exec_async(&mut conn).await?;
        }
        Ok((conn, rx))
    })
}
