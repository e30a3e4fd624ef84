//! The HTTP/1.1 side of the opening handshake (RFC 6455 §4): parse a request head, validate an
//! upgrade, compute `Sec-WebSocket-Accept`, and render every response the server sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADERS: usize = 64;

/// A plain (non-upgrade) GET route the server answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the demo page.
    Index,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
}

/// A complete, valid request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// A valid WebSocket upgrade.
    Upgrade(Upgrade<'a>),
    /// A plain GET of a known route.
    Get(Route),
}

/// A validated upgrade request; borrows the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade<'a> {
    /// Request target, query included.
    pub target: &'a str,
    /// `Sec-WebSocket-Accept` for the client's key.
    pub accept: String,
    /// Every `Sec-WebSocket-Protocol` header value, in order.
    pub protocols: Vec<&'a str>,
    /// `Origin`, when sent.
    pub origin: Option<&'a str>,
    /// `Authorization`, when sent.
    pub authorization: Option<&'a str>,
    /// `Sec-WebSocket-Extensions` header values, in order (for permessage-deflate).
    pub extensions: Vec<&'a str>,
}

impl<'a> Upgrade<'a> {
    /// Whether the client sent a `Sec-WebSocket-Protocol` header at all.
    pub fn offers_protocols(&self) -> bool {
        !self.protocols.is_empty()
    }

    /// The offered subprotocol tokens, in order, whitespace trimmed.
    pub fn offered(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.protocols
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Picks the first offered token that `acceptable` admits (SPEC §4). `Ok(None)` when none was
    /// offered; a rejection when tokens were offered but none is acceptable.
    pub fn select_protocol(
        &self,
        mut acceptable: impl FnMut(&str) -> bool,
    ) -> Result<Option<&'a str>, Rejection> {
        if !self.offers_protocols() {
            return Ok(None);
        }
        self.offered()
            .find(|t| is_token(t) && acceptable(t))
            .map(Some)
            .ok_or(Rejection::NoAcceptableProtocol)
    }

    /// The `?token=` query parameter, if any.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Why a request is refused; renders a complete HTTP/1.1 error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Malformed request line or headers, or a missing/invalid upgrade header: 400.
    #[error("{0}")]
    BadRequest(&'static str),
    /// Subprotocols offered but none acceptable: 400.
    #[error("no acceptable subprotocol")]
    NoAcceptableProtocol,
    /// A bad or expired token: 401.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// `Origin` not allowed: 403.
    #[error("origin not allowed")]
    Forbidden,
    /// A method other than GET: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A GET of an unknown path without an upgrade: 426.
    #[error("this server speaks WebSocket on this path")]
    UpgradeRequired,
    /// `Sec-WebSocket-Version` other than 13: 426.
    #[error("unsupported Sec-WebSocket-Version, use 13")]
    UnsupportedVersion,
    /// Request head over the configured limit: 431.
    #[error("request head too large")]
    HeadTooLarge,
    /// Over the connection limit: 503.
    #[error("server at connection limit")]
    Unavailable,
}

impl Rejection {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::BadRequest(_) | Rejection::NoAcceptableProtocol => 400,
            Rejection::Unauthorized(_) => 401,
            Rejection::Forbidden => 403,
            Rejection::MethodNotAllowed => 405,
            Rejection::UpgradeRequired | Rejection::UnsupportedVersion => 426,
            Rejection::HeadTooLarge => 431,
            Rejection::Unavailable => 503,
        }
    }

    /// A short label for metrics (`rejected{reason=...}`).
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::BadRequest(_) => "bad_request",
            Rejection::NoAcceptableProtocol => "no_subprotocol",
            Rejection::Unauthorized(_) => "unauthorized",
            Rejection::Forbidden => "forbidden",
            Rejection::MethodNotAllowed => "method",
            Rejection::UpgradeRequired => "upgrade_required",
            Rejection::UnsupportedVersion => "version",
            Rejection::HeadTooLarge => "head_too_large",
            Rejection::Unavailable => "unavailable",
        }
    }

    /// Appends the complete response: status line, `Connection: close`, a one-line text body.
    pub fn render(&self, out: &mut Vec<u8>) {
        let extra = match self {
            Rejection::MethodNotAllowed => "Allow: GET\r\n",
            Rejection::UpgradeRequired => "Upgrade: websocket\r\n",
            Rejection::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n",
            _ => "",
        };
        let body = format!("{self}\n");
        render_response(
            out,
            self.status(),
            extra,
            "text/plain; charset=utf-8",
            body.as_bytes(),
        );
    }
}

/// The reason phrase of the statuses the server sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Appends a complete HTTP/1.1 response that closes the connection.
pub fn render_response(
    out: &mut Vec<u8>,
    status: u16,
    extra_headers: &str,
    content_type: &str,
    body: &[u8],
) {
    let mut head = String::with_capacity(160);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\n{extra_headers}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// Appends the 101 response, with the chosen subprotocol when one was negotiated.
pub fn render_accept(out: &mut Vec<u8>, accept: &str, protocol: Option<&str>) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    if let Some(p) = protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    STANDARD.encode(sha.finalize())
}

/// Whether `s` is an RFC 7230 token (the only names browsers send as subprotocols).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete, call again with more bytes. `Ok(Some((request, n)))`: the head took
/// `n` bytes; anything after it (pipelined frames) belongs to the caller. A head that is not
/// complete within `max_head_bytes` is rejected as soon as that many bytes are seen.
pub fn parse_request(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<(Request<'_>, usize)>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max_head_bytes {
                Err(Rejection::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::HeadTooLarge),
        Err(e) => return Err(Rejection::BadRequest(bad_syntax(e))),
    };
    if n > max_head_bytes {
        return Err(Rejection::HeadTooLarge);
    }
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("/");
    if method != "GET" {
        return Err(Rejection::MethodNotAllowed);
    }
    let mut up = UpgradeHeaders::default();
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(Rejection::BadRequest("header value is not UTF-8"));
        };
        up.take(h.name, value.trim());
    }
    if up.upgrade.is_none() && up.key.is_none() && up.version.is_none() {
        let path = target.split('?').next().unwrap_or(target);
        return match path {
            "/" => Ok(Some((Request::Get(Route::Index), n))),
            "/healthz" => Ok(Some((Request::Get(Route::Healthz), n))),
            "/metrics" => Ok(Some((Request::Get(Route::Metrics), n))),
            _ => Err(Rejection::UpgradeRequired),
        };
    }
    if req.version != Some(1) {
        return Err(Rejection::BadRequest("WebSocket upgrade needs HTTP/1.1"));
    }
    if !up.host {
        return Err(Rejection::BadRequest("missing Host header"));
    }
    if !up.upgrade.is_some_and(|v| has_token(v, "websocket")) {
        return Err(Rejection::BadRequest("missing Upgrade: websocket"));
    }
    if !up.connection.is_some_and(|v| has_token(v, "upgrade")) {
        return Err(Rejection::BadRequest("missing Connection: Upgrade"));
    }
    if up.version != Some("13") {
        return Err(Rejection::UnsupportedVersion);
    }
    let key = up
        .key
        .ok_or(Rejection::BadRequest("missing Sec-WebSocket-Key"))?;
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => {
            return Err(Rejection::BadRequest(
                "Sec-WebSocket-Key must be base64 of 16 bytes",
            ));
        }
    }
    Ok(Some((
        Request::Upgrade(Upgrade {
            target,
            accept: accept_key(key.as_bytes()),
            protocols: up.protocols,
            origin: up.origin,
            authorization: up.authorization,
            extensions: up.extensions,
        }),
        n,
    )))
}

fn bad_syntax(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::Token => "malformed request line",
        httparse::Error::Version => "malformed HTTP version",
        httparse::Error::HeaderName | httparse::Error::HeaderValue => "malformed header",
        httparse::Error::NewLine => "malformed line ending",
        _ => "malformed request",
    }
}

#[derive(Default)]
struct UpgradeHeaders<'a> {
    host: bool,
    upgrade: Option<&'a str>,
    connection: Option<&'a str>,
    key: Option<&'a str>,
    version: Option<&'a str>,
    origin: Option<&'a str>,
    authorization: Option<&'a str>,
    protocols: Vec<&'a str>,
    extensions: Vec<&'a str>,
}

impl<'a> UpgradeHeaders<'a> {
    fn take(&mut self, name: &str, value: &'a str) {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            self.host = true;
        } else if is("upgrade") {
            self.upgrade = Some(value);
        } else if is("connection") {
            self.connection = Some(value);
        } else if is("sec-websocket-key") {
            self.key = Some(value);
        } else if is("sec-websocket-version") {
            self.version = Some(value);
        } else if is("origin") {
            self.origin = Some(value);
        } else if is("authorization") {
            self.authorization = Some(value);
        } else if is("sec-websocket-protocol") {
            self.protocols.push(value);
        } else if is("sec-websocket-extensions") {
            self.extensions.push(value);
        }
    }
}
