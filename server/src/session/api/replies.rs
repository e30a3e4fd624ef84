//! The answers of one read (docs/api.md#http): every request that arrived complete in it is
//! answered in order, each with a `Content-Length`. When some carry a publish result (known
//! only once the turn's batches ran through the pipeline) or a cluster-wide presence (known
//! when Redis answers), the whole run of answers waits in one place held in the connection's
//! queue ([`Waiting`]), filled when the last of them is in: by the pipeline's ack step
//! (`AckTo::Api`) or by the worker handing over Redis' answer (`Remote::ApiPresence`). One
//! hold and one fill per read, however many requests were pipelined in it.

use std::collections::HashMap;
use std::ops::Range;
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

/// One answer: its status, whether the connection stays open, its body's pieces (a range of
/// the run's pieces).
struct Template {
    status: Status,
    keep_alive: bool,
    body: Range<usize>,
}

/// A piece of an answer's body. The pieces and text of every answer of a read share two
/// buffers ([`Run`]): no allocation per answer.
enum Piece {
    /// These bytes of the run's text.
    Bytes(Range<usize>),
    /// What waits in place N of the run (a publish result, a cluster's answer).
    Later(usize),
}

/// The answers of one read: their templates, their pieces and the text the pieces point into.
#[derive(Default)]
struct Run {
    templates: Vec<Template>,
    pieces: Vec<Piece>,
    text: Vec<u8>,
}

impl Run {
    /// Appends `bytes` to the body being built (whose pieces start at `from`).
    fn bytes(&mut self, from: usize, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.text.len();
        self.text.extend_from_slice(bytes);
        let end = self.text.len();
        let ours = self.pieces.len() > from;
        match self.pieces.last_mut() {
            // The last piece is this body's and ends where these bytes begin: grow it.
            Some(Piece::Bytes(r)) if ours && r.end == start => r.end = end,
            _ => self.pieces.push(Piece::Bytes(start..end)),
        }
    }
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
    run: Run,
    waits: Vec<Wait>,
    /// How many of `waits` are presence questions.
    asks: usize,
    asked: HashMap<u64, Asked>,
}

impl Replies {
    /// Adds the answer to one request.
    pub fn push(&mut self, status: Status, answer: Answer, keep_alive: bool) {
        self.push_wrapped(status, b"", answer, b"", keep_alive);
    }

    /// Adds the answer to one request, its body `answer` between `before` and `after` (as
    /// `{"result":…}`) without building that text apart.
    pub fn push_wrapped(
        &mut self,
        status: Status,
        before: &[u8],
        answer: Answer,
        after: &[u8],
        keep_alive: bool,
    ) {
        let from = self.run.pieces.len();
        self.run.bytes(from, before);
        let (parts, tail) = answer.into_parts();
        for part in parts {
            let wait = match part {
                Part::Bytes(b) => {
                    self.run.bytes(from, &b);
                    continue;
                }
                Part::Publish(p) => Wait::Publish(p),
                Part::Ask(a) => {
                    self.asks += 1;
                    Wait::Ask(a)
                }
            };
            self.run.pieces.push(Piece::Later(self.waits.len()));
            self.waits.push(wait);
        }
        self.run.bytes(from, &tail);
        self.run.bytes(from, after);
        let body = from..self.run.pieces.len();
        self.run.templates.push(Template {
            status,
            keep_alive,
            body,
        });
    }

    /// How many more presence questions this connection may put to the cluster now
    /// (`limits::MAX_ASKS_IN_FLIGHT`): those awaited and those of this read count.
    pub fn asks_left(&self) -> usize {
        MAX_ASKS_IN_FLIGHT.saturating_sub(self.asked.len() + self.asks)
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
        if self.run.templates.is_empty() {
            return;
        }
        let run = std::mem::take(&mut self.run);
        let waits = std::mem::take(&mut self.waits);
        self.asks = 0;
        if waits.is_empty() {
            sink.reply(render(&run, &[]));
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
                run,
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
    run: Run,
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
        Some((inner.hold, render(&inner.run, &inner.results)))
    }
}

impl ApiAnswers for Waiting {
    fn result(&self, slot: u32, position: Option<(&str, u64)>) -> Option<(HoldId, Vec<u8>)> {
        let result: Position = position.map(|(e, o)| (Arc::from(e), o));
        self.put(slot, Fill::Position(result))
    }
}

/// The answers, each a head with its `Content-Length` and its body.
fn render(run: &Run, results: &[Option<Fill>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.templates.len() * 160);
    let mut body = Vec::with_capacity(256);
    for t in &run.templates {
        body.clear();
        for piece in run.pieces.get(t.body.clone()).unwrap_or_default() {
            match piece {
                Piece::Bytes(r) => {
                    body.extend_from_slice(run.text.get(r.clone()).unwrap_or_default())
                }
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
