//! The answers of one read (docs/api.md#http): every request that arrived complete in it is
//! answered in order, each with a `Content-Length`. When some carry a publish result (known
//! only once the turn's batches ran through the pipeline), the whole run of answers waits in
//! one place held in the connection's queue ([`Waiting`]), filled by the pipeline's ack step
//! when the last result is in (`AckTo::Api`): one hold and one fill per read, however many
//! requests were pipelined in it.

use std::sync::{Arc, Mutex};

use crate::conn::outq::HoldId;
use crate::fanout::ack::{AckTo, ApiAnswers};
use crate::pubsub::idempotency::ResultCell;
use crate::session::sink::Sink;

use super::answer::{Answer, Part, Publish, error_body};
use super::http::{self, Status};

/// One answer: its status, whether the connection stays open, its body's pieces.
struct Template {
    status: Status,
    keep_alive: bool,
    body: Vec<Piece>,
}

enum Piece {
    Bytes(Vec<u8>),
    /// The result of publish number N of the run.
    Result(usize),
}

/// The answers of one read, not queued yet.
#[derive(Default)]
pub struct Replies {
    templates: Vec<Template>,
    publishes: Vec<Publish>,
}

impl Replies {
    /// Adds the answer to one request.
    pub fn push(&mut self, status: Status, answer: Answer, keep_alive: bool) {
        let (parts, tail) = answer.into_parts();
        let mut body = Vec::with_capacity(parts.len() + 1);
        for part in parts {
            match part {
                Part::Bytes(b) if b.is_empty() => {}
                Part::Bytes(b) => body.push(Piece::Bytes(b)),
                Part::Publish(p) => {
                    body.push(Piece::Result(self.publishes.len()));
                    self.publishes.push(p);
                }
            }
        }
        body.push(Piece::Bytes(tail));
        self.templates.push(Template {
            status,
            keep_alive,
            body,
        });
    }

    /// Adds `{"error":{"code":N,"message":…}}` with `status`.
    pub fn error(&mut self, status: Status, message: &str, keep_alive: bool) {
        let mut body = Vec::with_capacity(64 + message.len());
        body.extend_from_slice(b"{\"error\":");
        error_body(&mut body, status.error_code(), message);
        body.push(b'}');
        let mut answer = Answer::default();
        answer.raw(&body);
        self.push(status, answer, keep_alive);
    }

    /// Queues the answers: at once when none waits for a publish result, else in one held
    /// place, the publishes entering the pipeline with their results' slots.
    pub fn flush(&mut self, sink: &mut Sink<'_>) {
        if self.templates.is_empty() {
            return;
        }
        let templates = std::mem::take(&mut self.templates);
        let publishes = std::mem::take(&mut self.publishes);
        if publishes.is_empty() {
            sink.reply(render(&templates, &[]));
            return;
        }
        let hold = sink.hold();
        let n = publishes.len();
        let keeps = publishes.iter().map(|p| p.keep.clone()).collect();
        let waiting = Arc::new(Waiting {
            inner: Mutex::new(Inner {
                hold,
                templates,
                results: vec![None; n],
                keeps,
                missing: n,
            }),
        });
        for (slot, p) in publishes.into_iter().enumerate() {
            let ack = AckTo::Api {
                answers: waiting.clone(),
                slot: slot as u32,
            };
            sink.publish_api(&p.topic, p.room.as_ref(), &p.data, p.skip_history, ack);
        }
    }
}

/// A result: `Some((epoch, offset))` with history, `None` without.
type Position = Option<(Arc<str>, u64)>;

/// Answers waiting for their publish results.
struct Waiting {
    inner: Mutex<Inner>,
}

struct Inner {
    hold: HoldId,
    templates: Vec<Template>,
    results: Vec<Option<Position>>,
    /// Per publish: where its result is also kept (its `idempotency_key`).
    keeps: Vec<Option<ResultCell>>,
    missing: usize,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waiting { .. }")
    }
}

impl ApiAnswers for Waiting {
    fn result(&self, slot: u32, position: Option<(&str, u64)>) -> Option<(HoldId, Vec<u8>)> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        let slot = slot as usize;
        let result: Position = position.map(|(e, o)| (Arc::from(e), o));
        if let Some(Some(cell)) = inner.keeps.get(slot) {
            let _ = cell.set(result.clone());
        }
        match inner.results.get_mut(slot) {
            Some(r @ None) => {
                *r = Some(result);
                inner.missing -= 1;
            }
            _ => return None,
        }
        if inner.missing > 0 {
            return None;
        }
        let results: Vec<Position> = inner.results.iter().map(|r| r.clone().flatten()).collect();
        Some((inner.hold, render(&inner.templates, &results)))
    }
}

/// The answers, each a head with its `Content-Length` and its body.
fn render(templates: &[Template], results: &[Position]) -> Vec<u8> {
    let mut out = Vec::with_capacity(templates.len() * 160);
    let mut body = Vec::with_capacity(256);
    for t in templates {
        body.clear();
        for piece in &t.body {
            match piece {
                Piece::Bytes(b) => body.extend_from_slice(b),
                Piece::Result(i) => {
                    let r = results.get(*i).and_then(|r| r.as_ref());
                    http::publish_result(&mut body, r.map(|(e, o)| (&**e, *o)));
                }
            }
        }
        http::head(&mut out, t.status, body.len(), t.keep_alive);
        out.extend_from_slice(&body);
    }
    out
}
