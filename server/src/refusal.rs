//! Why the server refuses a request: the protocol's own rejections and the server's policy
//! (origin, token, limits, draining), each with its status, reason line and metric label.

use ringcast_protocol::handshake::{Rejection, render_error};

/// A refused request; rendered as a complete HTTP/1.1 response with a one-line reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Malformed or not a valid upgrade (400, 405, 426, 431).
    #[error("{0}")]
    Protocol(#[from] Rejection),
    /// `Origin` not in `--allowed-origins`: 403.
    #[error("origin not allowed")]
    Forbidden,
    /// A missing, bad or expired token (`--auth-secret`): 401. The reason never quotes it.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The chosen room is outside the token's `rooms` and `read` claims: 403.
    #[error("room not allowed by the token")]
    RoomForbidden,
    /// Over `--max-connections`: 503.
    #[error("server at connection limit")]
    ConnectionLimit,
    /// Over `--max-connections-per-ip`: 503.
    #[error("too many connections from this address")]
    PerIpLimit,
    /// Joining a new room past `--max-rooms`: 503.
    #[error("too many rooms")]
    TooManyRooms,
    /// The server is draining for shutdown: 503.
    #[error("server is shutting down")]
    Draining,
}

impl Refusal {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Protocol(r) => r.status(),
            Refusal::Unauthorized(_) => 401,
            Refusal::Forbidden | Refusal::RoomForbidden => 403,
            Refusal::ConnectionLimit
            | Refusal::PerIpLimit
            | Refusal::TooManyRooms
            | Refusal::Draining => 503,
        }
    }

    /// The metric label (`rejected{reason=...}`), one of `metrics::REJECT_REASONS`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Protocol(r) => r.label(),
            Refusal::Unauthorized(_) => "unauthorized",
            Refusal::Forbidden => "forbidden",
            Refusal::RoomForbidden => "room_forbidden",
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::PerIpLimit => "per_ip_limit",
            Refusal::TooManyRooms => "too_many_rooms",
            Refusal::Draining => "draining",
        }
    }

    /// Appends the complete response (`Connection: close`, a one-line reason).
    pub fn render(&self, out: &mut Vec<u8>) {
        match self {
            Refusal::Protocol(r) => r.render(out),
            // RFC 6750 §3: a 401 names the scheme it expects.
            Refusal::Unauthorized(_) => {
                render_error(out, 401, "WWW-Authenticate: Bearer\r\n", &self.to_string())
            }
            _ => render_error(out, self.status(), "", &self.to_string()),
        }
    }
}
