//! The connection a URL's sender keeps between POSTs (HTTP/1.1 keep-alive, plain or TLS), so
//! a receiver that keeps it open is not asked for a new TCP connection and TLS handshake per
//! batch. Kept at most [`KEEP_IDLE`] unused, and checked before it is used again: one the
//! receiver closed meanwhile (its FIN or TLS close_notify already here) is dropped, not
//! written to.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::tls::Stream;

/// Longest a connection waits unused for the next POST. Receivers close idle ones after 5 s
/// (Node, Apache) to 75 s (nginx); one closed by then is seen at [`Kept::take`], and one
/// closed while a POST is being written is retried once on a new connection (`http::post`).
pub const KEEP_IDLE: Duration = Duration::from_secs(30);

/// The kept connection, if any, and since when it is unused.
#[derive(Default)]
pub struct Kept {
    conn: Option<(Stream, Instant)>,
}

impl Kept {
    /// The kept connection when it is recent and still open; dropped otherwise.
    pub fn take(&mut self, now: Instant) -> Option<Stream> {
        let (stream, since) = self.conn.take()?;
        (now.saturating_duration_since(since) <= KEEP_IDLE && idle_and_open(stream.tcp()))
            .then_some(stream)
    }

    /// Keeps `stream` for the next POST.
    pub fn put(&mut self, stream: Stream, now: Instant) {
        self.conn = Some((stream, now));
    }

    /// Whether a connection is kept (tests).
    #[cfg(test)]
    pub fn is_kept(&self) -> bool {
        self.conn.is_some()
    }
}

/// Whether nothing arrived on an idle connection: no FIN, no bytes (a TLS alert such as
/// close_notify, or anything else the next answer would be confused with).
fn idle_and_open(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return false;
    }
    let nothing = matches!(
        tcp.peek(&mut [0u8; 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    tcp.set_nonblocking(false).is_ok() && nothing
}
