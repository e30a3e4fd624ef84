//! Commands waiting for Redis: accumulated between sends, then sent as one pipeline. One batch is
//! in flight per connection at a time, which keeps every room's PUBLISHes in sequence order and
//! lets the next batch grow while Redis answers.

use redis::aio::MultiplexedConnection;
use redis::{Pipeline, RedisResult, Value};

use crate::link::LocalFuture;
use std::sync::Arc;

/// Why a command is in a batch: what to do with its reply (or its failure).
pub(crate) enum Tag {
    /// A PUBLISH carrying `n` messages of `room`'s `stream` from `first`, holding `bytes` of the
    /// publish budget until answered.
    Publish {
        n: u64,
        bytes: usize,
        room: Arc<str>,
        stream: u64,
        first: u64,
    },
    /// A presence query to answer with this token.
    Query { room: Arc<str>, token: u64 },
    /// A cache read (`shard::cache`) to answer with this token.
    Cache { room: Arc<str>, token: u64 },
    /// This node's claim on its id (`SET … GET`): the reply is the previous holder.
    Claim,
    /// Anything whose reply only matters if it is an error.
    Other,
}

/// A sent batch's tags with the replies (or the failure) of its commands.
pub(crate) type BatchDone = (Vec<Tag>, RedisResult<Vec<Value>>);

/// The pending commands and the batch in flight.
pub(crate) struct Batch {
    pipe: Pipeline,
    tags: Vec<Tag>,
    publishes: usize,
    in_flight: Option<LocalFuture<BatchDone>>,
}

impl Batch {
    pub fn new() -> Self {
        Self {
            pipe: redis::pipe(),
            tags: Vec::new(),
            publishes: 0,
            in_flight: None,
        }
    }

    /// Adds a command to the next batch.
    pub fn push(&mut self, cmd: redis::Cmd, tag: Tag) {
        if let Tag::Publish { .. } = tag {
            self.publishes += 1;
        }
        self.pipe.add_command(cmd);
        self.tags.push(tag);
    }

    /// PUBLISHes waiting for the next send.
    pub fn pending_publishes(&self) -> usize {
        self.publishes
    }

    /// Nothing pending and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none() && self.tags.is_empty()
    }

    /// Sends the pending commands on `conn` unless a batch is already in flight.
    pub fn start(&mut self, conn: &MultiplexedConnection) {
        if self.in_flight.is_some() || self.tags.is_empty() {
            return;
        }
        let mut conn = conn.clone();
        let pipe = std::mem::replace(&mut self.pipe, redis::pipe());
        let tags = std::mem::take(&mut self.tags);
        self.publishes = 0;
        self.in_flight = Some(Box::pin(async move {
            let r = conn.send_packed_commands(&pipe, 0, tags.len()).await;
            (tags, r)
        }));
    }

    /// Waits for the batch in flight (forever if none). Cancel-safe.
    pub async fn done(&mut self) -> BatchDone {
        let Some(f) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        let r = f.as_mut().await;
        self.in_flight = None;
        r
    }

    /// Forgets the pending (unsent) commands and returns their tags.
    pub fn take_pending(&mut self) -> Vec<Tag> {
        self.pipe = redis::pipe();
        self.publishes = 0;
        std::mem::take(&mut self.tags)
    }
}
