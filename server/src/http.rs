//! The HTTP side of a connection: the request head, the upgrade, and the plain routes
//! (`/`, `/healthz`, `/metrics`) served on the same port.

use std::sync::atomic::Ordering;

use ringcast_protocol::Decoder;
use ringcast_protocol::frame::DecoderConfig;
use ringcast_protocol::handshake::{
    Rejection, Request, Upgrade, parse_request, render_accept, render_error, render_response,
};

use crate::conn::Phase;
use crate::room::JoinError;
use crate::worker::State;

/// The demo chat page served at `/`.
const DEMO_PAGE: &str = include_str!("demo.html");

/// A plain (non-upgrade) GET route the server answers itself (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /`: the demo page.
    Index,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
}

impl Route {
    /// The route a request target names, query ignored; `None` for any other path.
    pub(crate) fn of(target: &str) -> Option<Route> {
        match target.split_once('?').map_or(target, |(p, _)| p) {
            "/" => Some(Route::Index),
            "/healthz" => Some(Route::Healthz),
            "/metrics" => Some(Route::Metrics),
            _ => None,
        }
    }
}

/// Why the server refuses a request: the protocol's own rejections, and the server's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Malformed or not a valid upgrade (400, 405, 426, 431).
    #[error("{0}")]
    Protocol(#[from] Rejection),
    /// `Origin` not in `--allowed-origins`: 403.
    #[error("origin not allowed")]
    Forbidden,
    /// A missing, bad or expired token: 401.
    #[allow(dead_code, reason = "token auth (SPEC §10) is the next feature")]
    #[error("{0}")]
    Unauthorized(&'static str),
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
    pub(crate) fn status(&self) -> u16 {
        match self {
            Refusal::Protocol(r) => r.status(),
            Refusal::Unauthorized(_) => 401,
            Refusal::Forbidden => 403,
            Refusal::ConnectionLimit
            | Refusal::PerIpLimit
            | Refusal::TooManyRooms
            | Refusal::Draining => 503,
        }
    }

    /// The metric label (`rejected{reason=...}`), one of `metrics::REJECT_REASONS`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Refusal::Protocol(r) => r.label(),
            Refusal::Unauthorized(_) => "unauthorized",
            Refusal::Forbidden => "forbidden",
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::PerIpLimit => "per_ip_limit",
            Refusal::TooManyRooms => "too_many_rooms",
            Refusal::Draining => "draining",
        }
    }

    /// Appends the complete response (`Connection: close`, a one-line reason).
    pub(crate) fn render(&self, out: &mut Vec<u8>) {
        match self {
            Refusal::Protocol(r) => r.render(out),
            _ => render_error(out, self.status(), "", &self.to_string()),
        }
    }
}

impl State {
    /// Handles bytes received on a connection, in whatever phase it is.
    pub(crate) fn on_data(&mut self, key: usize, data: &mut [u8]) {
        let conn = &mut self.conns[key];
        conn.last_rx_ms = self.now_ms;
        conn.ping_outstanding = false;
        match conn.phase {
            Phase::Handshake => self.handshake(key, data),
            Phase::Open => self.frames(key, data),
            // Waiting for the client's FIN: whatever it still sends is read and dropped.
            Phase::Closing => {}
        }
    }

    fn handshake(&mut self, key: usize, data: &mut [u8]) {
        let max = self.shared.config.max_header_bytes;
        let conn = &mut self.conns[key];
        let mut owned;
        // Parse straight from the receive buffer when the head arrived in one piece.
        let buf: &mut [u8] = if conn.head.is_empty() {
            data
        } else {
            conn.head.extend_from_slice(data);
            owned = std::mem::take(&mut conn.head);
            &mut owned
        };
        let (request, used) = match parse_request(buf, max) {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.conns[key].head = buf.to_vec();
                return;
            }
            Err(rejection) => return self.reject(key, rejection.into()),
        };
        match request {
            Request::Get { path } => match Route::of(path) {
                Some(route) => self.serve(key, route),
                None => self.reject(key, Rejection::UpgradeRequired.into()),
            },
            Request::Upgrade(upgrade) => {
                if let Err(rejection) = self.upgrade(key, &upgrade) {
                    return self.reject(key, rejection);
                }
                drop(upgrade);
                let rest = &mut buf[used..];
                if !rest.is_empty() {
                    self.frames(key, rest);
                }
            }
        }
    }

    fn upgrade(&mut self, key: usize, up: &Upgrade<'_>) -> Result<(), Refusal> {
        let cfg = &self.shared.config;
        if !cfg.allowed_origins.is_empty()
            && !up
                .origin
                .is_some_and(|o| cfg.allowed_origins.iter().any(|a| a == o))
        {
            return Err(Refusal::Forbidden);
        }
        let chosen = up.select_protocol(|t| cfg.room_allowed(t) || t == cfg.pubsub_protocol)?;
        let room_name = chosen.unwrap_or(&cfg.default_room);
        let room = self
            .shared
            .directory
            .join(room_name, self.id)
            .map_err(|JoinError::TooManyRooms| Refusal::TooManyRooms)?;
        let index = self.rooms.add(&room, key);
        let decoder = Decoder::new(DecoderConfig {
            max_message_bytes: cfg.max_message_bytes,
            allow_rsv1: false,
            require_mask: true,
        });
        let mut response = Vec::with_capacity(160);
        render_accept(&mut response, &up.accept, chosen);
        let conn = &mut self.conns[key];
        conn.room = Some((room, index));
        conn.decoder = Some(Box::new(decoder));
        conn.phase = Phase::Open;
        conn.head = Vec::new();
        conn.push_owned(response);
        self.metrics().upgraded.fetch_add(1, Ordering::Relaxed);
        self.mark_dirty(key);
        Ok(())
    }

    /// Answers with an HTTP error and closes.
    pub(crate) fn reject(&mut self, key: usize, refusal: Refusal) {
        self.metrics().rejected(refusal.label());
        let mut out = Vec::with_capacity(192);
        refusal.render(&mut out);
        self.respond(key, out);
    }

    fn serve(&mut self, key: usize, route: Route) {
        let mut out = Vec::new();
        match route {
            Route::Index => render_response(
                &mut out,
                200,
                "",
                "text/html; charset=utf-8",
                DEMO_PAGE.as_bytes(),
            ),
            Route::Healthz => {
                render_response(&mut out, 200, "", "text/plain; charset=utf-8", b"ok")
            }
            Route::Metrics => {
                let workers: Vec<_> = self.shared.metrics.iter().collect();
                let body = crate::metrics::render(&workers, self.shared.directory.len());
                render_response(
                    &mut out,
                    200,
                    "",
                    "text/plain; version=0.0.4",
                    body.as_bytes(),
                );
            }
        }
        self.respond(key, out);
    }

    fn respond(&mut self, key: usize, response: Vec<u8>) {
        let now = self.now_ms;
        let conn = &mut self.conns[key];
        conn.head = Vec::new();
        conn.push_owned(response);
        conn.begin_closing(now);
        self.mark_dirty(key);
    }
}
