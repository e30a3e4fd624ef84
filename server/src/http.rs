//! The HTTP side of a connection: the request head, the upgrade, and the plain routes
//! (`/`, `/healthz`, `/metrics`) served on the same port.

use std::sync::atomic::Ordering;

use ringcast_protocol::Decoder;
use ringcast_protocol::frame::DecoderConfig;
use ringcast_protocol::handshake::{
    Rejection, Request, Route, Upgrade, parse_request, render_accept, render_response,
};

use crate::conn::Phase;
use crate::room::JoinError;
use crate::worker::State;

/// The demo chat page served at `/`.
const DEMO_PAGE: &str = include_str!("demo.html");

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
            Err(rejection) => return self.reject(key, rejection),
        };
        match request {
            Request::Get(route) => self.serve(key, route),
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

    fn upgrade(&mut self, key: usize, up: &Upgrade<'_>) -> Result<(), Rejection> {
        let cfg = &self.shared.config;
        if !cfg.allowed_origins.is_empty()
            && !up
                .origin
                .is_some_and(|o| cfg.allowed_origins.iter().any(|a| a == o))
        {
            return Err(Rejection::Forbidden);
        }
        let chosen = up.select_protocol(|t| cfg.room_allowed(t) || t == cfg.pubsub_protocol)?;
        let room_name = chosen.unwrap_or(&cfg.default_room);
        let room = self
            .shared
            .directory
            .join(room_name, self.id)
            .map_err(|JoinError::TooManyRooms| Rejection::Unavailable)?;
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
    pub(crate) fn reject(&mut self, key: usize, rejection: Rejection) {
        self.metrics().rejected(rejection.label());
        let mut out = Vec::with_capacity(192);
        rejection.render(&mut out);
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
