//! The HTTP/1.1 side of the opening handshake (RFC 6455 §4): parse a request head, validate an
//! upgrade, compute `Sec-WebSocket-Accept`, and render every response the server sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADERS: usize = 64;

/// A complete, valid request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// A valid WebSocket upgrade.
    Upgrade(Upgrade<'a>),
    /// A GET without any upgrade header; the server decides what the target means (an unknown
    /// one is answered with [`Rejection::UpgradeRequired`]).
    Get {
        /// Request target, query included.
        path: &'a str,
    },
}

/// A validated upgrade request; borrows the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade<'a> {
    /// Request target, query included (`/chat?token=...`).
    pub path: &'a str,
    /// `Sec-WebSocket-Accept` for the client's key.
    pub accept: String,
    /// Every `Sec-WebSocket-Protocol` header value, in order.
    pub protocols: Vec<&'a str>,
    /// `Origin`, when sent (at most once, or the request is refused).
    pub origin: Option<&'a str>,
    /// `Authorization`, when sent (at most once, or the request is refused).
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

    /// Picks the first offered token that `acceptable` admits (docs/room-mode.md#which-room). `Ok(None)` when none was
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

    /// permessage-deflate for this client, if it offered it and we can honour an offer
    /// (`crate::deflate::negotiate`). Only called by a server that enables compression: without
    /// it, nothing changes (no extension is answered, RSV1 stays a protocol error).
    pub fn negotiate_deflate(
        &self,
        config: &crate::deflate::DeflateConfig,
    ) -> Option<crate::deflate::Negotiated> {
        crate::deflate::negotiate(&self.extensions, config)
    }

    /// The path without its query.
    pub fn path_only(&self) -> &'a str {
        self.path.split_once('?').map_or(self.path, |(p, _)| p)
    }

    /// The first query parameter called `name` (e.g. `token`), undecoded, if any.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The credentials of an `Authorization: Bearer <token>` header (scheme matched without
    /// regard to case), if one was sent.
    pub fn bearer_token(&self) -> Option<&'a str> {
        let (scheme, token) = self.authorization?.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// Why the protocol refuses a request; renders a complete HTTP/1.1 error response. Refusals
/// that depend on the server's policy (limits, origins, tokens) are the server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Malformed request line or headers, or a missing/invalid/repeated upgrade header: 400.
    #[error("{0}")]
    BadRequest(&'static str),
    /// Subprotocols offered but none acceptable: 400.
    #[error("no acceptable subprotocol")]
    NoAcceptableProtocol,
    /// A method other than GET: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A GET of a path the server does not serve, without an upgrade: 426.
    #[error("this server speaks WebSocket on this path")]
    UpgradeRequired,
    /// `Sec-WebSocket-Version` other than 13: 426.
    #[error("unsupported Sec-WebSocket-Version, use 13")]
    UnsupportedVersion,
    /// Request head over the configured limit: 431.
    #[error("request head too large")]
    HeadTooLarge,
}

impl Rejection {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::BadRequest(_) | Rejection::NoAcceptableProtocol => 400,
            Rejection::MethodNotAllowed => 405,
            Rejection::UpgradeRequired | Rejection::UnsupportedVersion => 426,
            Rejection::HeadTooLarge => 431,
        }
    }

    /// A short label for metrics (`rejected{reason=...}`).
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::BadRequest(_) => "bad_request",
            Rejection::NoAcceptableProtocol => "no_subprotocol",
            Rejection::MethodNotAllowed => "method",
            Rejection::UpgradeRequired => "upgrade_required",
            Rejection::UnsupportedVersion => "version",
            Rejection::HeadTooLarge => "head_too_large",
        }
    }

    /// Appends the complete response: status line, `Connection: close`, a one-line text body.
    pub fn render(&self, out: &mut Vec<u8>) {
        let extra = match self {
            Rejection::MethodNotAllowed => "Allow: GET\r\n",
            Rejection::UpgradeRequired => "Upgrade: websocket\r\n",
            Rejection::UnsupportedVersion => "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n",
            Rejection::BadRequest(_)
            | Rejection::NoAcceptableProtocol
            | Rejection::HeadTooLarge => "",
        };
        render_error(out, self.status(), extra, &self.to_string());
    }
}

/// The reason phrase of a status code (RFC 9110 §15); `"Error"` for codes it does not name.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Appends a complete HTTP/1.1 error response for any `status`: status line and reason,
/// `extra_headers` (each ending in `\r\n`), `Connection: close`, and `reason` as a one-line
/// `text/plain` body. Every refusal the server sends, its own or the protocol's, goes through it.
pub fn render_error(out: &mut Vec<u8>, status: u16, extra_headers: &str, reason: &str) {
    let mut body = String::with_capacity(reason.len() + 1);
    // One line: a reason never ends the body early or adds lines.
    body.extend(reason.chars().map(|c| if c.is_control() { ' ' } else { c }));
    body.push('\n');
    render_response(
        out,
        status,
        extra_headers,
        "text/plain; charset=utf-8",
        body.as_bytes(),
    );
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
    render_accept_with_extensions(out, accept, protocol, None);
}

/// [`render_accept`] with a `Sec-WebSocket-Extensions` answer when one was negotiated (for
/// permessage-deflate: `crate::deflate::Negotiated::response`).
pub fn render_accept_with_extensions(
    out: &mut Vec<u8>,
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    if let Some(p) = protocol {
        out.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
    }
    if let Some(e) = extensions {
        out.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        out.extend_from_slice(e.as_bytes());
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
        up.take(h.name, value.trim())?;
    }
    if !up.upgrade_seen && up.key.is_none() && up.version.is_none() {
        return Ok(Some((Request::Get { path: target }, n)));
    }
    if req.version != Some(1) {
        return Err(Rejection::BadRequest("WebSocket upgrade needs HTTP/1.1"));
    }
    if !up.host {
        return Err(Rejection::BadRequest("missing Host header"));
    }
    if !up.upgrade_websocket {
        return Err(Rejection::BadRequest("missing Upgrade: websocket"));
    }
    if !up.connection_upgrade {
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
            path: target,
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

/// The headers an upgrade needs, collected in one pass. `Upgrade` and `Connection` are lists,
/// so several lines of each are merged (RFC 7230 §3.2.2); the others may appear once.
#[derive(Default)]
struct UpgradeHeaders<'a> {
    host: bool,
    upgrade_seen: bool,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    key: Option<&'a str>,
    version: Option<&'a str>,
    origin: Option<&'a str>,
    authorization: Option<&'a str>,
    protocols: Vec<&'a str>,
    extensions: Vec<&'a str>,
}

impl<'a> UpgradeHeaders<'a> {
    fn take(&mut self, name: &str, value: &'a str) -> Result<(), Rejection> {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            if self.host {
                return Err(Rejection::BadRequest("repeated Host header"));
            }
            self.host = true;
        } else if is("upgrade") {
            self.upgrade_seen = true;
            self.upgrade_websocket |= has_token(value, "websocket");
        } else if is("connection") {
            self.connection_upgrade |= has_token(value, "upgrade");
        } else if is("sec-websocket-key") {
            // RFC 6455 §11.3.1: must not appear more than once.
            once(&mut self.key, value, "repeated Sec-WebSocket-Key header")?;
        } else if is("sec-websocket-version") {
            // RFC 6455 §11.3.5: must not appear more than once in a request.
            once(
                &mut self.version,
                value,
                "repeated Sec-WebSocket-Version header",
            )?;
        } else if is("origin") {
            once(&mut self.origin, value, "repeated Origin header")?;
        } else if is("authorization") {
            once(
                &mut self.authorization,
                value,
                "repeated Authorization header",
            )?;
        } else if is("sec-websocket-protocol") {
            self.protocols.push(value);
        } else if is("sec-websocket-extensions") {
            self.extensions.push(value);
        }
        Ok(())
    }
}

/// Stores a header that may appear once; a second one is refused rather than one silently
/// winning, since the server would check one value and a proxy might act on the other.
fn once<'a>(
    slot: &mut Option<&'a str>,
    value: &'a str,
    repeated: &'static str,
) -> Result<(), Rejection> {
    if slot.is_some() {
        return Err(Rejection::BadRequest(repeated));
    }
    *slot = Some(value);
    Ok(())
}
