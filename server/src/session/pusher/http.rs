//! The Pusher HTTP API's connection (docs/pusher.md#http-api): HTTP/1.1 requests under
//! `{--pusher-path-prefix}/apps/` on the main listener, keep-alive and pipelined, each
//! answered in order as soon as its body is in (the calls are in [`super::calls`]; Pusher's
//! answers need no publish result, so nothing is held).
//!
//! Bounds: a partial request is at most `--max-header-bytes` of head and `--api-max-body`
//! of body (413 before any body byte is kept), counted in `--max-pending-bytes`; a request
//! still arriving after `--handshake-timeout` or a connection quiet for `--idle-timeout` is
//! cut (`worker::conns`); a client that pipelines without reading past `--max-backpressure`
//! gets 503 and is closed.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::session::sink::Sink;

/// Headers a request may carry.
const MAX_HEADERS: usize = 32;

/// A connection speaking the Pusher HTTP API.
#[derive(Default)]
pub struct PusherApiSession {
    /// Bytes of a request not complete yet.
    partial: Vec<u8>,
    /// When the first byte of the request in `partial` arrived.
    since: Option<Instant>,
    /// The connection is ending: what the client still sends is dropped.
    done: bool,
}

/// Whether the request line at the start of `head` targets the Pusher HTTP API
/// (`{prefix}/apps/…`) with the dialect configured; `false` while the line is incomplete.
pub fn is_request(head: &[u8], cfg: &Config) -> bool {
    if cfg.pusher.is_none() {
        return false;
    }
    let line_end = head.iter().take(2048).position(|&b| b == b'\n');
    let Some(end) = line_end else {
        return false;
    };
    let mut parts = head[..end].split(|&b| b == b' ');
    let _method = parts.next();
    let prefix = cfg.pusher_path_prefix.trim_end_matches('/').as_bytes();
    parts.next().is_some_and(|target| {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(b"/apps/"))
    })
}

/// One parsed request head.
struct Head {
    method: String,
    target: String,
    length: usize,
    size: usize,
    keep_alive: bool,
}

impl PusherApiSession {
    /// Bytes held for a request not complete yet (`--max-pending-bytes`).
    pub fn pending_bytes(&self) -> usize {
        self.partial.len()
    }

    /// A request has been arriving for longer than `limit`.
    pub fn stalled(&self, limit: Duration) -> bool {
        self.since.is_some_and(|s| s.elapsed() >= limit)
    }

    /// Handles received bytes: every complete request is answered, in order.
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) {
        if self.done {
            return;
        }
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(data);
        let used = self.requests(&buf, sink);
        if !self.done && used < buf.len() {
            buf.drain(..used);
            self.partial = buf;
        }
        match (self.partial.is_empty(), self.since) {
            (true, _) => self.since = None,
            (false, Some(_)) if used == 0 => {}
            (false, _) => self.since = Some(Instant::now()),
        }
    }

    fn requests(&mut self, buf: &[u8], sink: &mut Sink<'_>) -> usize {
        let cfg = sink.config();
        let mut pos = 0;
        while pos < buf.len() && !self.done {
            if sink.unsent() > cfg.max_backpressure {
                count(sink, None, 503);
                self.end(sink, 503, "answers are not being read");
                return pos;
            }
            let head = match parse_head(&buf[pos..], cfg) {
                Ok(Some(head)) => head,
                Ok(None) => return pos,
                Err((status, why)) => {
                    count(sink, None, status);
                    self.end(sink, status, why);
                    return pos;
                }
            };
            if head.length > cfg.api_max_body {
                count(sink, Some(&head), 413);
                self.end(sink, 413, "the body is larger than --api-max-body");
                return pos;
            }
            let start = pos + head.size;
            if buf.len() - start < head.length {
                return pos;
            }
            let body = &buf[start..start + head.length];
            let (status, answer) = super::calls::answer(&head.method, &head.target, body, sink)
                .unwrap_or_else(|e| {
                    tracing::info!(status = e.status(), "pusher API call refused: {e}");
                    (e.status(), e.to_string().into_bytes())
                });
            count(sink, Some(&head), status);
            respond(sink, status, &answer, head.keep_alive);
            pos = start + head.length;
            if !head.keep_alive {
                self.done = true;
                sink.finish();
            }
        }
        pos
    }

    /// Answers with an error and closes once it is written (the request's framing is lost).
    fn end(&mut self, sink: &mut Sink<'_>, status: u16, why: &str) {
        respond(sink, status, why.as_bytes(), false);
        self.done = true;
        self.partial = Vec::new();
        sink.finish();
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete.
fn parse_head(buf: &[u8], cfg: &Config) -> Result<Option<Head>, (u16, &'static str)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let size = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= cfg.max_header_bytes => {
            return Err((431, "request head over --max-header-bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err((400, "malformed request head")),
    };
    if size > cfg.max_header_bytes {
        return Err((431, "request head over --max-header-bytes"));
    }
    let framing = crate::session::http_framing::framing(req.headers, req.version)
        .map_err(|why| (400, why))?;
    Ok(Some(Head {
        method: req.method.unwrap_or("").to_owned(),
        target: req.path.unwrap_or("").to_owned(),
        length: framing.length,
        size,
        keep_alive: framing.keep_alive,
    }))
}

/// Counts a call in `ringcast_pusher_api_requests_total` (docs/metrics.md#pusher): its route
/// when the head was read and names one, else `other`.
fn count(sink: &Sink<'_>, head: Option<&Head>, status: u16) {
    let prefix = &sink.config().pusher_path_prefix;
    let route = head.and_then(|h| {
        let path = h
            .target
            .split_once('?')
            .map_or(h.target.as_str(), |(p, _)| p);
        ringcast_pusher::http_api::route(prefix, &h.method, path).ok()
    });
    let label = crate::metrics::pusher_api::label(route.as_ref().map(|(_, r)| r));
    sink.metrics().pusher_api.record(label, status);
}

/// Queues an answer: JSON for 200, Pusher's plain-text message otherwise.
fn respond(sink: &mut Sink<'_>, status: u16, body: &[u8], keep_alive: bool) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let kind = if status == 200 {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(
        format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n").as_bytes(),
    );
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    sink.reply(out);
}
