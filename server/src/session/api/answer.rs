//! An answer of the server API being built (docs/api.md#http): JSON text with the places of
//! publish results, known at the end of the turn, and of the cluster's answers (`replies`).

use std::sync::Arc;

use ringcast_pubsub::envelope::{write_str, write_u64};

use crate::rooms::SharedRoom;

/// An answer being built: JSON text with the places of publish results (known at the end of
/// the turn) between its pieces.
#[derive(Default)]
pub struct Answer {
    parts: Vec<Part>,
    tail: Vec<u8>,
}

/// A piece of an [`Answer`].
pub enum Part {
    /// Bytes known now.
    Bytes(Vec<u8>),
    /// A publish whose result goes here.
    Publish(Publish),
    /// A question to the cluster whose answer goes here.
    Ask(Ask),
}

/// A `presence` or `presence_stats` of every node's members, asked of the cluster when the
/// answer is queued (docs/api.md#across-the-cluster).
pub struct Ask {
    /// The channel.
    pub channel: std::sync::Arc<str>,
    /// `presence_stats` (counts) rather than `presence` (the members).
    pub stats: bool,
}

/// A publish to run when the answer is queued (its result then has a place in the queue).
pub struct Publish {
    /// The channel.
    pub topic: Arc<str>,
    /// Its room, when it has members in this process.
    pub room: Option<Arc<SharedRoom>>,
    /// `data` as JSON text.
    pub data: Vec<u8>,
    /// Not appended to history.
    pub skip_history: bool,
    /// Where its result is kept for its `idempotency_key`.
    pub keep: Option<crate::pubsub::idempotency::ResultCell>,
}

impl Answer {
    /// Appends JSON text.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
    }

    /// Appends the place of a publish's result.
    pub fn publish(&mut self, p: Publish) {
        self.place(Part::Publish(p));
    }

    /// Appends the place of a cluster's answer.
    pub fn ask(&mut self, a: Ask) {
        self.place(Part::Ask(a));
    }

    fn place(&mut self, part: Part) {
        let bytes = std::mem::take(&mut self.tail);
        self.parts.push(Part::Bytes(bytes));
        self.parts.push(part);
    }

    /// Appends another answer.
    pub fn append(&mut self, other: Answer) {
        for part in other.parts {
            match part {
                Part::Bytes(b) => self.tail.extend_from_slice(&b),
                part => self.place(part),
            }
        }
        self.tail.extend_from_slice(&other.tail);
    }

    /// Bytes known so far.
    pub fn len(&self) -> usize {
        let parts: usize = (self.parts.iter())
            .map(|p| match p {
                Part::Bytes(b) => b.len(),
                Part::Publish(_) => 48,
                Part::Ask(_) => 64,
            })
            .sum();
        parts + self.tail.len()
    }

    /// The pieces before the last publish and the bytes after it.
    pub fn into_parts(self) -> (Vec<Part>, Vec<u8>) {
        (self.parts, self.tail)
    }
}

/// Appends `{"code":N,"message":…}`.
pub fn error_body(out: &mut Vec<u8>, code: u32, message: &str) {
    out.extend_from_slice(b"{\"code\":");
    write_u64(out, u64::from(code));
    out.extend_from_slice(b",\"message\":");
    write_str(out, message);
    out.push(b'}');
}
