//! The framing headers of an HTTP/1.1 request that the server reads itself (the server API,
//! the Pusher HTTP API): `Content-Length`, `Transfer-Encoding` (refused), `Connection` and
//! `Expect`.

/// What a request head says about its body and the connection after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Body bytes (`Content-Length`, 0 without).
    pub length: usize,
    /// The connection stays open after the answer (HTTP/1.1's default, `Connection`).
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Reads the framing of a request of HTTP/1.`minor` with `headers`.
///
/// # Errors
/// Why the request cannot be framed (answer 400 and close): a bad or conflicting
/// `Content-Length`, or a `Transfer-Encoding`.
pub fn framing(
    headers: &[httparse::Header<'_>],
    minor: Option<u8>,
) -> Result<Framing, &'static str> {
    let mut f = Framing {
        length: 0,
        keep_alive: minor == Some(1),
        expect_continue: false,
    };
    let mut length = None;
    for h in headers {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err("bad Content-Length"),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("Transfer-Encoding bodies are not accepted: send a Content-Length");
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    f.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    f.keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            f.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    f.length = length.unwrap_or(0);
    Ok(f)
}
