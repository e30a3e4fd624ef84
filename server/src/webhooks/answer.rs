//! A webhook receiver's answer: its status, and whether its connection can carry the next
//! POST. It can when the answer is HTTP/1.1 without `Connection: close` and its body has a
//! known length (`Content-Length`, or none for 204/304) of at most [`MAX_BODY`], read to
//! its end here; any other answer (HTTP/1.0, chunked, read-to-close, larger) ends its
//! connection, which costs only a new connection for the next POST.

use std::io::Read;
use std::time::Instant;

use super::failure::{PostError, remaining, stream_error};
use super::tls::Stream;

/// Largest response head read before the status is known.
const MAX_HEAD: usize = 16 * 1024;

/// Largest body read (and dropped) to keep a connection; receivers answer webhooks with
/// empty or tiny bodies.
const MAX_BODY: usize = 64 * 1024;

/// What the receiver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Its status code.
    pub status: u16,
    /// Whether the connection is at the start of the next answer (kept for the next POST).
    pub reusable: bool,
}

/// Reads the answer's head, then its body when that keeps the connection usable.
///
/// # Errors
/// [`PostError::Closed`]: the connection ended before any byte of an answer;
/// [`PostError::BadAnswer`], a timeout, an i/o or TLS failure otherwise.
pub fn read(stream: &mut Stream, deadline: Instant) -> Result<Answer, PostError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = read_some(stream, &mut chunk, deadline)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                PostError::Closed
            } else {
                PostError::BadAnswer
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut answer = httparse::Response::new(&mut headers);
        match answer.parse(&buf) {
            Ok(httparse::Status::Complete(head)) => {
                let status = answer.code.ok_or(PostError::BadAnswer)?;
                let Some(len) = body_len(&answer, status) else {
                    return Ok(Answer {
                        status,
                        reusable: false,
                    });
                };
                // The status is the answer: a body cut short only ends the connection.
                let reusable = drain(stream, buf.len() - head, len, deadline);
                return Ok(Answer { status, reusable });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            // Too many headers is still an answer: the status line parsed.
            Err(httparse::Error::TooManyHeaders) => {
                let status = answer.code.ok_or(PostError::BadAnswer)?;
                return Ok(Answer {
                    status,
                    reusable: false,
                });
            }
            _ => return Err(PostError::BadAnswer),
        }
    }
}

/// The body's length when the connection can be kept after it; `None` to end it.
fn body_len(answer: &httparse::Response<'_, '_>, status: u16) -> Option<usize> {
    if answer.version != Some(1) {
        return None;
    }
    let mut len = None;
    for h in answer.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection")
            && String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
        {
            return None;
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()?;
            // Two different lengths: not a connection to trust with the next POST.
            if len.is_some_and(|l| l != n) {
                return None;
            }
            len = Some(n);
        }
    }
    match status {
        // An interim answer: the final one follows (never asked for: no `Expect` is sent).
        100..=199 => return None,
        204 | 304 => return Some(0),
        _ => {}
    }
    len.filter(|&n| n <= MAX_BODY)
}

/// Reads the rest of a body of `len` bytes, `have` of them already read with the head;
/// whether the connection is then exactly at its end (false on any failure).
fn drain(stream: &mut Stream, have: usize, len: usize, deadline: Instant) -> bool {
    if have > len {
        // More than the body: not an answer to this POST alone.
        return false;
    }
    let mut left = len - have;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let want = left.min(chunk.len());
        match read_some(stream, &mut chunk[..want], deadline) {
            Ok(0) | Err(_) => return false,
            Ok(n) => left -= n,
        }
    }
    true
}

fn read_some(stream: &mut Stream, buf: &mut [u8], deadline: Instant) -> Result<usize, PostError> {
    stream
        .tcp()
        .set_read_timeout(Some(remaining(deadline)?))
        .map_err(PostError::Io)?;
    stream.read(buf).map_err(stream_error)
}
