//! The answers of one read (docs/api.md#http): every request that arrived complete in it is
//! answered in order, each with a `Content-Length`. When some carry a publish result (known
//! only once the turn's batches ran through the pipeline) or a cluster-wide presence (known
//! when Redis answers), the whole run of answers waits in one place held in the connection's
//! queue ([`Waiting`]), filled when the last of them is in: by the pipeline's ack step
//! (`AckTo::Api`) or by the worker handing over Redis' answer (`Remote::ApiPresence`). One
//! hold and one fill per read, however many requests were pipelined in it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ringcast_cluster::PresenceMember;

use crate::bridge::{AskFor, PresenceAsk};
use crate::conn::outq::HoldId;
use crate::fanout::ack::{AckTo, ApiAnswers};
use crate::limits::MAX_ASKS_IN_FLIGHT;
use crate::pubsub::idempotency::ResultCell;
use crate::session::sink::Sink;

use super::answer::{Answer, Ask, Part, Publish, error_body};
use super::http::{self, Status};
use super::presence;

/// One answer: its status, whether the connection stays open, its body's pieces.
struct Template {
    status: Status,
    keep_alive: bool,
    body: Vec<Piece>,
}

enum Piece {
    Bytes(Vec<u8>),
    /// What waits in place N of the run (a publish result, a cluster's answer).
    Later(usize),
}

/// What a place of the run waits for.
enum Wait {
    Publish(Publish),
    Ask(Ask),
}

/// A cluster-wide presence asked under a token, and where its answer goes.
struct Asked {
    waiting: Arc<Waiting>,
    slot: u32,
    channel: Arc<str>,
    stats: bool,
}

/// The answers of one read, not queued yet, and the cluster's answers still awaited.
#[derive(Default)]
pub struct Replies {
    templates: Vec<Template>,
    waits: Vec<Wait>,
    asked: HashMap<u64, Asked>,
}

impl Replies {
    /// Adds the answer to one request.
    pub fn push(&mut self, status: Status, answer: Answer, keep_alive: bool) {
        let (parts, tail) = answer.into_parts();
        let mut body = Vec::with_capacity(parts.len() + 1);
        for part in parts {
            let wait = match part {
                Part::Bytes(b) if b.is_empty() => continue,
                Part::Bytes(b) => {
                    body.push(Piece::Bytes(b));
                    continue;
                }
                Part::Publish(p) => Wait::Publish(p),
                Part::Ask(a) => Wait::Ask(a),
            };
            body.push(Piece::Later(self.waits.len()));
            self.waits.push(wait);
        }
        body.push(Piece::Bytes(tail));
        self.templates.push(Template {
            status,
            keep_alive,
            body,
        });
    }

    /// How many more presence questions this connection may put to the cluster now
    /// (`limits::MAX_ASKS_IN_FLIGHT`): those awaited and those of this read count.
    pub fn asks_left(&self) -> usize {
        let queued = (self.waits.iter())
            .filter(|w| matches!(w, Wait::Ask(_)))
            .count();
        MAX_ASKS_IN_FLIGHT.saturating_sub(self.asked.len() + queued)
    }

    /// Some answer waits for the cluster.
    pub fn awaiting(&self) -> bool {
        !self.asked.is_empty()
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

    /// Queues the answers: at once when none waits, else in one held place, the publishes
    /// entering the pipeline with their results' slots and the presence questions going to
    /// the cluster.
    pub fn flush(&mut self, sink: &mut Sink<'_>) {
        if self.templates.is_empty() {
            return;
        }
        let templates = std::mem::take(&mut self.templates);
        let waits = std::mem::take(&mut self.waits);
        if waits.is_empty() {
            sink.reply(render(&templates, &[]));
            return;
        }
        let hold = sink.hold();
        let n = waits.len();
        let keeps = (waits.iter())
            .map(|w| match w {
                Wait::Publish(p) => p.keep.clone(),
                Wait::Ask(_) => None,
            })
            .collect();
        let waiting = Arc::new(Waiting {
            inner: Mutex::new(Inner {
                hold,
                templates,
                results: (0..n).map(|_| None).collect(),
                keeps,
                missing: n,
            }),
        });
        for (slot, wait) in waits.into_iter().enumerate() {
            let slot = slot as u32;
            match wait {
                Wait::Publish(p) => {
                    let ack = AckTo::Api {
                        answers: waiting.clone(),
                        slot,
                    };
                    sink.publish_api(&p.topic, p.room.as_ref(), &p.data, p.skip_history, ack);
                }
                Wait::Ask(a) => {
                    let ask = PresenceAsk {
                        conn: sink.address(),
                        topic: a.channel.clone(),
                        purpose: AskFor::Api,
                    };
                    let asked = Asked {
                        waiting: waiting.clone(),
                        slot,
                        channel: a.channel,
                        stats: a.stats,
                    };
                    match sink.cluster().and_then(|bus| bus.try_ask_presence(ask)) {
                        Some(token) => {
                            self.asked.insert(token, asked);
                        }
                        // The bus did not take it: this node's members, as when Redis is down.
                        None => asked.answer(None, sink),
                    }
                }
            }
        }
    }

    /// The cluster's answer to the question asked under `token`: its place is filled, and
    /// the run of answers it belongs to is queued if it was the last one missing.
    pub fn answered(
        &mut self,
        token: u64,
        members: Option<Vec<PresenceMember>>,
        sink: &mut Sink<'_>,
    ) {
        if let Some(asked) = self.asked.remove(&token) {
            asked.answer(members, sink);
        }
    }
}

impl Asked {
    fn answer(self, members: Option<Vec<PresenceMember>>, sink: &mut Sink<'_>) {
        let json = presence::cluster(sink, &self.channel, self.stats, members);
        if let Some((hold, bytes)) = self.waiting.put(self.slot, Fill::Json(json)) {
            sink.fill(hold, bytes);
        }
    }
}

/// A publish result: `Some((epoch, offset))` with history, `None` without.
type Position = Option<(Arc<str>, u64)>;

/// What fills a place of the run.
#[derive(Clone)]
enum Fill {
    Position(Position),
    /// A result object written elsewhere (a cluster-wide presence).
    Json(Vec<u8>),
}

/// Answers waiting for their publish results and cluster answers.
struct Waiting {
    inner: Mutex<Inner>,
}

struct Inner {
    hold: HoldId,
    templates: Vec<Template>,
    results: Vec<Option<Fill>>,
    /// Per place: where a publish's result is also kept (its `idempotency_key`).
    keeps: Vec<Option<ResultCell>>,
    missing: usize,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waiting { .. }")
    }
}

impl Waiting {
    /// Fills place `slot`; when it was the last one missing: the place held for the answers
    /// and the bytes that fill it.
    fn put(&self, slot: u32, fill: Fill) -> Option<(HoldId, Vec<u8>)> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        let slot = slot as usize;
        if let (Some(Some(cell)), Fill::Position(p)) = (inner.keeps.get(slot), &fill) {
            let _ = cell.set(p.clone());
        }
        match inner.results.get_mut(slot) {
            Some(r @ None) => {
                *r = Some(fill);
                inner.missing -= 1;
            }
            _ => return None,
        }
        if inner.missing > 0 {
            return None;
        }
        Some((inner.hold, render(&inner.templates, &inner.results)))
    }
}

impl ApiAnswers for Waiting {
    fn result(&self, slot: u32, position: Option<(&str, u64)>) -> Option<(HoldId, Vec<u8>)> {
        let result: Position = position.map(|(e, o)| (Arc::from(e), o));
        self.put(slot, Fill::Position(result))
    }
}

/// The answers, each a head with its `Content-Length` and its body.
fn render(templates: &[Template], results: &[Option<Fill>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(templates.len() * 160);
    let mut body = Vec::with_capacity(256);
    for t in templates {
        body.clear();
        for piece in &t.body {
            match piece {
                Piece::Bytes(b) => body.extend_from_slice(b),
                Piece::Later(i) => match results.get(*i).and_then(|r| r.as_ref()) {
                    Some(Fill::Json(json)) => body.extend_from_slice(json),
                    Some(Fill::Position(Some((e, o)))) => {
                        http::publish_result(&mut body, Some((e, *o)));
                    }
                    _ => http::publish_result(&mut body, None),
                },
            }
        }
        http::head(&mut out, t.status, body.len(), t.keep_alive);
        out.extend_from_slice(&body);
    }
    out
}
