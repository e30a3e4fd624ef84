//! Who waits for a publish's result: the pipeline's ack step (`fanout::pipeline::ack`) hands
//! each one its offset once history has given it, to a pub/sub client as `published`, or to a
//! server API request through the answers its connection holds ([`ApiAnswers`]), so the
//! fan-out knows nothing of HTTP.

use std::sync::Arc;

use crate::conn::outq::HoldId;

/// Answers of a server API connection that wait for publish results (docs/api.md#http); the
/// API module implements it, so the fan-out knows nothing of HTTP.
pub trait ApiAnswers: Send + Sync + std::fmt::Debug {
    /// Result number `slot` is known (`position`: epoch and offset, with history). When it was
    /// the last one missing: the place held for the answers and the bytes that fill it.
    fn result(&self, slot: u32, position: Option<(&str, u64)>) -> Option<(HoldId, Vec<u8>)>;
}

/// Who waits for a publish's result, which the pipeline gives once history has given its
/// offset (`fanout::pipeline::ack`).
#[derive(Debug, Clone)]
pub enum AckTo {
    /// A pub/sub client: the raw JSON text of its request's `id`; it gets `published`.
    Client(Box<str>),
    /// A server API request (docs/api.md#publish): result `slot` of the answers waiting in
    /// its connection's queue.
    Api {
        /// The answers waiting for this result.
        answers: Arc<dyn ApiAnswers>,
        /// Which of their results this is.
        slot: u32,
    },
}

/// A publish's result to hand out: the offset (with history on), the sender's slab key on the
/// batch's origin worker, and who waits for it.
pub type Ack = (Option<u64>, usize, AckTo);
