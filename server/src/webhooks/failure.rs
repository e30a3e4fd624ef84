//! Why one webhook POST failed, and the socket and TLS errors sorted into those reasons (the
//! `reason` label of `ringcast_webhook_request_failures_total`).

use std::time::{Duration, Instant};

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The receiver answered, but not 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Nothing within the attempt's timeout (`WebhookConfig::timeout`: connect, TLS
    /// handshake, send or answer).
    #[error("timed out")]
    Timeout,
    /// The name did not resolve or no address accepted the connection.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The connection failed while sending or reading.
    #[error("i/o: {0}")]
    Io(std::io::Error),
    /// The answer was not an HTTP/1.x status line and head.
    #[error("not an HTTP answer")]
    BadAnswer,
    /// The receiver closed the connection before any byte of an answer.
    #[error("connection closed before an answer")]
    Closed,
    /// TLS failed: a certificate the server does not trust, one for another name, a failed
    /// handshake or an alert from the receiver.
    #[error("TLS: {0}")]
    Tls(rustls::Error),
}

impl PostError {
    /// Its `reason` label in `ringcast_webhook_request_failures_total`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            PostError::Status(_) => "status",
            PostError::Timeout => "timeout",
            PostError::Connect(_) => "connect",
            PostError::Io(_) | PostError::BadAnswer | PostError::Closed => "io",
            PostError::Tls(_) => "tls",
        }
    }
}

impl PostError {
    /// Whether this says only that the receiver had closed the connection (a kept one:
    /// written into a closed socket, or ended before the answer began), so a new
    /// connection may carry the POST.
    #[must_use]
    pub fn is_closed_connection(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        match self {
            PostError::Closed => true,
            PostError::Io(e) => matches!(
                e.kind(),
                BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// The time left before `deadline`.
///
/// # Errors
/// [`PostError::Timeout`] when none is.
pub fn remaining(deadline: Instant) -> Result<Duration, PostError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(PostError::Timeout)
    } else {
        Ok(left)
    }
}

/// Whether a socket error is its timeout running out.
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// A socket error as a [`PostError`]: a timeout, or another i/o failure.
pub fn io_error(e: std::io::Error) -> PostError {
    if is_timeout(&e) {
        PostError::Timeout
    } else {
        PostError::Io(e)
    }
}

/// An i/o error of a (TLS) stream as a [`PostError`]: rustls reports its own failures (a bad
/// certificate, an alert from the receiver) as `InvalidData` errors wrapping a
/// `rustls::Error`.
pub fn stream_error(e: std::io::Error) -> PostError {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(t) => PostError::Tls(t),
        None => io_error(e),
    }
}
