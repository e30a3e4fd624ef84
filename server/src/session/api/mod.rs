//! The server API for the application backend (docs/api.md): `POST /api/<method>` with a JSON
//! body, on the main listener when `--api-key` (or `--api-key-file`) is set.
//!
//! A connection becomes a [`ApiSession`] when its first request line names a path under
//! `/api/` (`session::handshake` looks before it parses the head as an upgrade). From then on
//! the connection speaks HTTP/1.1 only: keep-alive and pipelined requests, each answered in
//! order, each body framed by `Content-Length` (at most `--api-max-body`). Nothing here waits:
//! a request is handled as soon as its last byte arrived, in the same turn.
//!
//! A publish's result (its history offset) is known only when the turn's batches ran through
//! the one publish pipeline (`fanout::pipeline`, `Source::Api`). The answers of one read are
//! therefore gathered (`replies`): without a publish they are queued at once; with some, their
//! place is held in the connection's outbound queue (`OutQueue::hold`, one hold per read) and
//! the pipeline's ack step fills it once the last result is in (`AckTo::Api`). Every answer
//! carries a `Content-Length`, and answers leave in request order, since the queue is FIFO and
//! a hold stops the send until it is filled.
//!
//! Bounds (docs/api.md#limits): a partial request is at most `--max-header-bytes` of head plus
//! `--api-max-body` of body (413 past it, before any body byte is kept), and counts towards
//! `--max-pending-bytes`; a request not complete within `--handshake-timeout` of its first
//! byte, or a connection quiet for `--idle-timeout`, is dropped (`worker::conns`); a client
//! that does not read its answers past `--max-backpressure` is closed.

mod answer;
mod http;
mod methods;
mod presence;
mod replies;
mod run;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::metrics::api::Outcome;
use crate::session::sink::Sink;

use self::answer::Answer;
use self::http::{Head, Status};
use self::methods::Call;
use self::replies::Replies;

/// A connection speaking the server API.
#[derive(Default)]
pub struct ApiSession {
    /// Bytes of a request not complete yet (head and body so far).
    partial: Vec<u8>,
    /// When the first byte of the request in `partial` arrived.
    since: Option<Instant>,
    /// `100 Continue` was sent for the request in `partial`.
    continued: bool,
    /// The answers of this read, queued at its end (or before a `100 Continue`).
    replies: Replies,
    /// The connection is ending: what the client still sends is dropped.
    done: bool,
    /// The calls answered in this read and how they went, counted at its end (one clock
    /// read per read, not per call).
    timed: Vec<(&'static str, Outcome)>,
    /// simd-json's scratch space, reused by every request with a small body.
    json: Option<simd_json::Buffers>,
}

/// Whether the request line at the start of `head` names a server API path (`/api/…`); `false`
/// while the line is incomplete (the handshake keeps reading the head then).
pub fn is_api_request(head: &[u8]) -> bool {
    let line_end = head.iter().take(512).position(|&b| b == b'\n');
    let Some(end) = line_end else {
        return false;
    };
    let mut parts = head[..end].split(|&b| b == b' ');
    let _method = parts.next();
    parts
        .next()
        .is_some_and(|target| target == b"/api" || target.starts_with(b"/api/"))
}

impl ApiSession {
    /// Bytes held for a request not complete yet (`--max-pending-bytes`).
    pub fn pending_bytes(&self) -> usize {
        self.partial.len()
    }

    /// Still serving, and the request line of the next request is not complete yet (its
    /// first bytes, if any, are in [`Self::take_partial`]): what the request is for is open.
    pub fn before_request_line(&self) -> bool {
        !self.done && !self.partial.contains(&b'\n')
    }

    /// The bytes held of a request not complete yet, taken out (another session serves it).
    pub fn take_partial(&mut self) -> Vec<u8> {
        self.since = None;
        std::mem::take(&mut self.partial)
    }

    /// A request has been arriving for longer than `limit` (a slow or trickled body).
    pub fn stalled(&self, limit: Duration) -> bool {
        self.since.is_some_and(|s| s.elapsed() >= limit)
    }

    /// Handles received bytes: every complete request is answered, in order; the rest is kept.
    ///
    /// The read is parsed where it lies: only the bytes a request left unfinished by an
    /// earlier read still needs are copied (to complete it in `partial`), and only the
    /// unfinished tail of this read is kept.
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) {
        if self.done {
            return;
        }
        let mut data = data;
        let mut used = 0;
        // One clock read per read: the calls of this read are timed together.
        let started = Instant::now();
        while !self.partial.is_empty() && !data.is_empty() && !self.done {
            let take = self.wanted(data, sink).min(data.len());
            let (head, rest) = std::mem::take(&mut data).split_at_mut(take);
            data = rest;
            self.partial.extend_from_slice(head);
            let mut buf = std::mem::take(&mut self.partial);
            let done = self.requests(&mut buf, sink);
            used += done;
            if done < buf.len() {
                buf.drain(..done);
                self.partial = buf;
            }
            // Else the buffer is dropped: an idle connection holds no capacity.
        }
        if self.partial.is_empty() && !self.done {
            let done = self.requests(data, sink);
            used += done;
            if !self.done && done < data.len() {
                self.partial.extend_from_slice(&data[done..]);
            }
        }
        self.record(started, sink);
        // Every answer of this read, in order (a no-op after `end`, which queued them).
        self.replies.flush(sink);
        if self.done {
            self.partial = Vec::new();
            self.finish_when_answered(sink);
        }
        // The deadline runs from the first byte of the request still incomplete.
        match (self.partial.is_empty(), self.since) {
            (true, _) => self.since = None,
            (false, Some(_)) if used == 0 => {}
            (false, _) => self.since = Some(started),
        }
    }

    /// How many bytes of `data` the request begun in `partial` still needs: the rest of its
    /// body once its head is complete, else up to the next line end (where the head may end).
    fn wanted(&self, data: &[u8], sink: &Sink<'_>) -> usize {
        match http::parse_head(&self.partial, sink.config()) {
            // Past --api-max-body, `requests` answers 413 before any body byte is kept.
            Ok(Some(head)) if head.length > sink.config().api_max_body => 0,
            Ok(Some(head)) => (head.size + head.length).saturating_sub(self.partial.len()),
            Ok(None) => data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| i + 1),
            // `requests` answers the error and ends the connection.
            Err(_) => 0,
        }
    }

    /// Counts the calls answered in this read (docs/metrics.md#server-api), each timed as
    /// the read's handling time shared evenly among them.
    fn record(&mut self, started: Instant, sink: &Sink<'_>) {
        if self.timed.is_empty() {
            return;
        }
        let n = u32::try_from(self.timed.len()).unwrap_or(u32::MAX);
        let each = started.elapsed() / n;
        let api = &sink.metrics().api;
        for (method, outcome) in self.timed.drain(..) {
            api.record(method, outcome, each);
        }
    }

    /// Every node's members for the `presence` / `presence_stats` asked under `token`
    /// (`None`: Redis could not answer): its place among the held answers is filled.
    pub fn presence_answer(
        &mut self,
        token: u64,
        members: Option<Vec<ringcast_cluster::PresenceMember>>,
        sink: &mut Sink<'_>,
    ) {
        self.replies.answered(token, members, sink);
        self.finish_when_answered(sink);
    }

    /// Answers each complete request at the start of `buf`; returns the bytes used.
    fn requests(&mut self, buf: &mut [u8], sink: &mut Sink<'_>) -> usize {
        let cfg = sink.config();
        let mut pos = 0;
        while pos < buf.len() && !self.done {
            if sink.unsent() > cfg.max_backpressure {
                // A client that pipelines requests without reading the answers.
                self.end(sink, Status::Unavailable, "answers are not being read");
                return pos;
            }
            let head = match http::parse_head(&buf[pos..], cfg) {
                Ok(Some(head)) => head,
                Ok(None) => return pos,
                Err((status, why)) => {
                    self.end(sink, status, why);
                    return pos;
                }
            };
            if head.length > cfg.api_max_body {
                let took = Duration::ZERO;
                sink.metrics()
                    .api
                    .record(head.method, Outcome::Invalid, took);
                self.end(
                    sink,
                    Status::TooLarge,
                    "the body is larger than --api-max-body",
                );
                return pos;
            }
            let start = pos + head.size;
            if buf.len() - start < head.length {
                if head.expect_continue && !self.continued {
                    self.continued = true;
                    // The answers before it go first.
                    self.replies.flush(sink);
                    sink.reply(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
                }
                return pos;
            }
            self.continued = false;
            let body = &mut buf[start..start + head.length];
            self.request(&head, body, sink);
            pos = start + head.length;
            if !head.keep_alive && !self.done {
                self.done = true;
            }
        }
        pos
    }

    /// Answers one complete request; it is counted at the end of the read ([`Self::record`]).
    fn request(&mut self, head: &Head, body: &mut [u8], sink: &mut Sink<'_>) {
        let outcome = self.answer(head, body, sink);
        self.timed.push((head.method, outcome));
    }

    fn answer(&mut self, head: &Head, body: &mut [u8], sink: &mut Sink<'_>) -> Outcome {
        let m = sink.metrics();
        m.messages_in.fetch_add(1, Ordering::Relaxed);
        m.bytes_in.fetch_add(body.len() as u64, Ordering::Relaxed);
        let refused = if !head.post {
            Some((Status::MethodNotAllowed, "only POST is served under /api/"))
        } else if !head.authorized {
            Some((Status::Unauthorized, "a valid X-API-Key is required"))
        } else {
            None
        };
        if let Some((status, why)) = refused {
            // One line per refused call: never the key, never the body.
            tracing::info!(status = status.code(), method = %head.method, "server API call refused: {why}");
            self.replies.error(status, why, head.keep_alive);
            return match status {
                Status::Unauthorized => Outcome::Unauthorized,
                _ => Outcome::Invalid,
            };
        }
        let call = match methods::parse(head.method, body, &mut self.json) {
            Ok(call) => call,
            Err((status, e)) => {
                tracing::info!(status = status.code(), method = %head.method, "server API call refused: {}", e.message);
                self.replies.error(status, &e.message, head.keep_alive);
                return Outcome::Invalid;
            }
        };
        let mut answer = Answer::default();
        let mut outcome = Outcome::Ok;
        let mut asks = self.replies.asks_left();
        match call {
            Call::Batch(calls) => {
                answer.raw(b"{\"replies\":[");
                for (i, (name, call)) in calls.into_iter().enumerate() {
                    if i > 0 {
                        answer.raw(b",");
                    }
                    // The whole answer is bounded like one history answer (docs/api.md#limits).
                    let full = answer.len() > sink.config().max_backpressure;
                    let call = call.and_then(|call| match full {
                        true => Err(methods::answer_too_large()),
                        false => Ok(call),
                    });
                    match call.and_then(|call| run::run(call, sink, &mut asks)) {
                        Ok(result) => {
                            answer.raw(b"{\"");
                            answer.raw(name.as_bytes());
                            answer.raw(b"\":");
                            answer.append(result);
                            answer.raw(b"}");
                        }
                        Err(e) => methods::error_object(&mut answer, &e),
                    }
                }
                answer.raw(b"]}");
            }
            call => match run::run(call, sink, &mut asks) {
                Ok(result) => {
                    let (before, after) = (b"{\"result\":", b"}");
                    self.replies
                        .push_wrapped(Status::Ok, before, result, after, head.keep_alive);
                    return outcome;
                }
                Err(e) => {
                    outcome = Outcome::Error;
                    methods::error_object(&mut answer, &e);
                }
            },
        }
        self.replies.push(Status::Ok, answer, head.keep_alive);
        outcome
    }

    /// Answers with an error and closes once it is written (the request's framing is lost;
    /// `feed` flushes the answers and closes).
    fn end(&mut self, sink: &mut Sink<'_>, status: Status, why: &str) {
        tracing::info!(
            status = status.code(),
            "server API connection refused: {why}"
        );
        self.replies.error(status, why, false);
        self.replies.flush(sink);
        self.done = true;
    }

    /// Once the connection is ending and no answer waits for the cluster, it closes after what
    /// is queued is written (a close earlier would drop the place held for that answer).
    fn finish_when_answered(&self, sink: &mut Sink<'_>) {
        if self.done && !self.replies.awaiting() {
            sink.finish();
        }
    }
}
