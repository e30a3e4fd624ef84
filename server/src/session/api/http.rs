//! HTTP/1.1 framing of the server API (docs/api.md#http): request heads, and the heads of
//! answers (always with a `Content-Length`).

use crate::config::Config;

/// Headers a request may carry.
const MAX_HEADERS: usize = 32;

/// The statuses the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200: the call ran (its JSON says whether it succeeded).
    Ok,
    /// 400: bad JSON, bad fields, a malformed head or body framing.
    BadRequest,
    /// 401: no valid API key.
    Unauthorized,
    /// 404: no such method.
    NotFound,
    /// 405: not a POST.
    MethodNotAllowed,
    /// 413: a body over `--api-max-body`.
    TooLarge,
    /// 431: a head over `--max-header-bytes`.
    HeadTooLarge,
    /// 503: the client does not read its answers.
    Unavailable,
}

impl Status {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::TooLarge => 413,
            Status::HeadTooLarge => 431,
            Status::Unavailable => 503,
        }
    }

    fn line(self) -> &'static str {
        match self {
            Status::Ok => "HTTP/1.1 200 OK\r\n",
            Status::BadRequest => "HTTP/1.1 400 Bad Request\r\n",
            Status::Unauthorized => "HTTP/1.1 401 Unauthorized\r\n",
            Status::NotFound => "HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => "HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\n",
            Status::TooLarge => "HTTP/1.1 413 Content Too Large\r\n",
            Status::HeadTooLarge => "HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::Unavailable => "HTTP/1.1 503 Service Unavailable\r\n",
        }
    }

    /// The error code in the JSON body (Centrifugo's numbering, docs/api.md#errors).
    pub fn error_code(self) -> u32 {
        match self {
            Status::Ok | Status::BadRequest | Status::MethodNotAllowed => 107,
            Status::Unauthorized => 101,
            Status::NotFound => 104,
            Status::TooLarge | Status::HeadTooLarge => 106,
            Status::Unavailable => 111,
        }
    }
}

/// What a request head says.
#[derive(Debug)]
pub struct Head {
    /// The method name: the path after `/api/`, query dropped, as the metrics list it
    /// (`other` when it names no method: nothing the client chose is kept or logged).
    pub method: &'static str,
    /// The HTTP method is POST.
    pub post: bool,
    /// The request carries the API key.
    pub authorized: bool,
    /// Body bytes (`Content-Length`, 0 without).
    pub length: usize,
    /// Head bytes.
    pub size: usize,
    /// The connection stays open after the answer.
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete, an error
/// status when it cannot be served (the connection then closes: its framing is lost).
pub fn parse_head(buf: &[u8], cfg: &Config) -> Result<Option<Head>, (Status, &'static str)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let size = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= cfg.max_header_bytes => {
            return Err((Status::HeadTooLarge, "request head over --max-header-bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err((Status::HeadTooLarge, "too many headers"));
        }
        Err(_) => return Err((Status::BadRequest, "malformed request head")),
    };
    if size > cfg.max_header_bytes {
        return Err((Status::HeadTooLarge, "request head over --max-header-bytes"));
    }
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let method = metric_name(path.strip_prefix("/api/").unwrap_or(""));
    let key = cfg.api.as_ref().map(|k| k.0.as_bytes());
    let framing = crate::session::http_framing::framing(req.headers, req.version)
        .map_err(|why| (Status::BadRequest, why))?;
    let mut head = Head {
        method,
        post: req.method == Some("POST"),
        authorized: false,
        length: framing.length,
        size,
        keep_alive: framing.keep_alive,
        expect_continue: framing.expect_continue,
    };
    for h in req.headers.iter() {
        let value = trim(h.value);
        if h.name.eq_ignore_ascii_case("x-api-key") {
            head.authorized |= key.is_some_and(|k| same(value, k));
        } else if h.name.eq_ignore_ascii_case("authorization") {
            let given = value
                .split_at_checked(7)
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"apikey "))
                .map(|(_, k)| trim(k));
            head.authorized |= matches!((given, key), (Some(g), Some(k)) if same(g, k));
        }
    }
    Ok(Some(head))
}

/// `method`'s name in the metrics' list (`other` when it is not one).
fn metric_name(method: &str) -> &'static str {
    let names = crate::metrics::api::METHODS;
    (names.iter().find(|&&n| n == method)).map_or(names[names.len() - 1], |n| *n)
}

/// Compares a presented key with the configured one in time that depends only on the
/// configured key's length.
fn same(given: &[u8], key: &[u8]) -> bool {
    let mut diff = given.len() ^ key.len();
    for (i, &k) in key.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ k);
    }
    std::hint::black_box(diff) == 0
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// Appends the head of an answer with `status` and a body of `length` bytes.
pub fn head(out: &mut Vec<u8>, status: Status, length: usize, keep_alive: bool) {
    out.extend_from_slice(status.line().as_bytes());
    out.extend_from_slice(b"Content-Type: application/json\r\n");
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    ringcast_pubsub::envelope::write_u64(out, length as u64);
    out.extend_from_slice(b"\r\n\r\n");
}

/// A publish result: `{"offset":O,"epoch":"E"}` with history, else `{}`.
pub fn publish_result(out: &mut Vec<u8>, position: Option<(&str, u64)>) {
    match position {
        Some((epoch, offset)) => {
            out.extend_from_slice(b"{\"offset\":");
            ringcast_pubsub::envelope::write_u64(out, offset);
            out.extend_from_slice(b",\"epoch\":");
            ringcast_pubsub::envelope::write_str(out, epoch);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"{}"),
    }
}
