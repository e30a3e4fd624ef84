//! The HTTP phase of a connection: the request head, the upgrade, and the plain routes
//! (`/`, `/healthz`, `/metrics`) served on the same port.

use std::sync::atomic::Ordering;

use ringcast_protocol::handshake::{
    Rejection, Request, Upgrade, parse_request, render_accept_with_extensions, render_response,
};

use ringcast_pubsub::auth::Access;
use ringcast_pubsub::presence::ChangeKind;

use crate::refusal::Refusal;
use crate::rooms::JoinError;
use crate::rooms::local::Class;
use crate::session::api::{self, ApiSession};
use crate::session::auth;
use crate::session::presence::announce;
use crate::session::pubsub::PubSubSession;
use crate::session::pusher::http::PusherApiSession;
use crate::session::pusher::{self, PusherSession};
use crate::session::room::RoomSession;
use crate::session::sink::Sink;

/// The demo chat page served at `/`.
const DEMO_PAGE: &str = include_str!("../demo.html");

/// A plain (non-upgrade) GET route the server answers itself (docs/http.md#routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `GET /`: the demo page.
    Index,
    /// `GET /healthz`.
    Healthz,
    /// `GET /metrics`.
    Metrics,
}

impl Route {
    /// The route a request target names, query ignored; `None` for any other path.
    fn of(target: &str) -> Option<Route> {
        match target.split_once('?').map_or(target, |(p, _)| p) {
            "/" => Some(Route::Index),
            "/healthz" => Some(Route::Healthz),
            "/metrics" => Some(Route::Metrics),
            _ => None,
        }
    }
}

/// A connection reading its request head.
#[derive(Default)]
pub struct Handshake {
    /// Head bytes received so far, when the head did not arrive in one piece.
    head: Vec<u8>,
    /// Accepted past `--max-connections` / `--max-connections-per-ip`: this 503 is sent, but
    /// only after the Origin, token and room checks (docs/tokens.md#order-of-checks orders them before limits).
    over_limit: Option<Refusal>,
}

impl Handshake {
    /// A connection accepted past a connection limit (`limit` says which): its upgrade gets
    /// that refusal once the checks that come first pass; a plain GET gets it at once.
    pub fn over_limit(limit: Refusal) -> Handshake {
        Handshake {
            head: Vec::new(),
            over_limit: Some(limit),
        }
    }

    /// The refusal waiting for the request head of a connection accepted past a limit.
    pub fn limit(&self) -> Option<Refusal> {
        self.over_limit
    }

    /// Handles received bytes; returns the room session once upgraded (having fed it the bytes
    /// that followed the head).
    pub fn feed(&mut self, data: &mut [u8], sink: &mut Sink<'_>) -> Option<Upgraded> {
        let max = sink.config().max_header_bytes;
        // Parse straight from the receive buffer when the head arrived in one piece; a head in
        // pieces is appended to `head` once per piece, never copied again (issue 14 row 4).
        let pieces = !self.head.is_empty();
        let buf: &mut [u8] = if pieces {
            self.head.extend_from_slice(data);
            &mut self.head
        } else {
            data
        };
        if sink.config().api.is_some() && api::is_api_request(buf) {
            // The server API (docs/api.md): this connection speaks HTTP from now on.
            if let Some(limit) = self.over_limit {
                reject(sink, limit);
                return None;
            }
            let mut session = ApiSession::default();
            session.feed(buf, sink);
            return Some(Upgraded::Api(session));
        }
        if pusher::http::is_request(buf, sink.config()) {
            // The Pusher HTTP API (docs/pusher.md#http-api): HTTP from now on.
            if let Some(limit) = self.over_limit {
                reject(sink, limit);
                return None;
            }
            let mut session = PusherApiSession::default();
            session.feed(buf, sink);
            return Some(Upgraded::PusherApi(session));
        }
        let (request, used) = match parse_request(buf, max) {
            Ok(Some(found)) => found,
            Ok(None) => {
                if !pieces {
                    let first = buf.to_vec();
                    self.head = first;
                }
                return None;
            }
            Err(rejection) => {
                reject(sink, rejection.into());
                return None;
            }
        };
        match request {
            Request::Get { path } => {
                match (self.over_limit, Route::of(path)) {
                    (Some(limit), _) => reject(sink, limit),
                    (None, Some(route)) => serve(sink, route),
                    (None, None) => match pusher::demo::response(path, sink.config()) {
                        // The Pusher demo page (docs/pusher.md#demo-page).
                        Some(out) => {
                            sink.reply(out);
                            sink.finish();
                        }
                        None => reject(sink, Rejection::UpgradeRequired.into()),
                    },
                }
                None
            }
            Request::Upgrade(upgrade) => match route_upgrade(sink, &upgrade, self.over_limit) {
                Err(refusal) => {
                    reject(sink, refusal);
                    None
                }
                Ok(mut up) => {
                    drop(upgrade);
                    let rest = &mut buf[used..];
                    if !rest.is_empty() {
                        match &mut up {
                            Upgraded::Room(r) => r.feed(rest, sink),
                            Upgraded::PubSub(p) => p.feed(rest, sink),
                            Upgraded::Api(a) => a.feed(rest, sink),
                            Upgraded::Pusher(p) => p.feed(rest, sink),
                            Upgraded::PusherApi(a) => a.feed(rest, sink),
                        }
                    }
                    Some(up)
                }
            },
        }
    }
}

/// The mode an upgraded connection enters (the session module turns it into a `Session`).
pub enum Upgraded {
    /// A member of one room.
    Room(RoomSession),
    /// JSON pub/sub (the `--pubsub-protocol` token).
    PubSub(PubSubSession),
    /// The server API (a request to `/api/…` with `--api-key` set).
    Api(ApiSession),
    /// The Pusher dialect (an upgrade at `{--pusher-path-prefix}/app/…` with apps set).
    Pusher(PusherSession),
    /// The Pusher HTTP API (a request to `{--pusher-path-prefix}/apps/…` with apps set).
    PusherApi(PusherApiSession),
}

/// Picks the dialect of an upgrade by its path: the Pusher dialect's own, or [`accept`].
fn route_upgrade(
    sink: &mut Sink<'_>,
    up: &Upgrade<'_>,
    over_limit: Option<Refusal>,
) -> Result<Upgraded, Refusal> {
    if pusher::upgrade::is_pusher_path(sink.config(), up.path) {
        return pusher::upgrade::accept(sink, up, over_limit).map(Upgraded::Pusher);
    }
    accept(sink, up, over_limit)
}

/// Whether `up`'s Origin is allowed (any without `--allowed-origins`).
pub fn origin_allowed(cfg: &crate::config::Config, up: &Upgrade<'_>) -> bool {
    cfg.allowed_origins.is_empty()
        || up
            .origin
            .is_some_and(|o| cfg.allowed_origins.iter().any(|a| a == o))
}

/// Completes the upgrade: checks Origin (403), token (401), room (403) and limits (503) in
/// that order (docs/tokens.md#order-of-checks), joins the room (room mode) and queues the 101.
fn accept(
    sink: &mut Sink<'_>,
    up: &Upgrade<'_>,
    over_limit: Option<Refusal>,
) -> Result<Upgraded, Refusal> {
    let cfg = sink.config();
    if !origin_allowed(cfg, up) {
        return Err(Refusal::Forbidden);
    }
    let claims = auth::check_token(cfg.auth.as_deref(), up)?;
    // A user the server API banned (docs/api.md#disconnect) is refused like a bad token.
    if let Some(sub) = claims.as_ref().and_then(|c| c.sub.as_deref())
        && sink.hub().bans.banned(sub, auth::now_unix())
    {
        return Err(Refusal::Unauthorized("user is banned"));
    }
    let chosen = up.select_protocol(|t| cfg.room_allowed(t) || t == cfg.pubsub_protocol)?;
    let pubsub = chosen == Some(cfg.pubsub_protocol.as_str());
    let room_name = chosen.unwrap_or(&cfg.default_room);
    if chosen.is_none() && !cfg.room_allowed(room_name) {
        // An explicit `--rooms` list governs the default room too (issue 14 row 17).
        return Err(Rejection::NoAcceptableProtocol.into());
    }
    // The pub/sub token is not a room: its topics are checked per subscribe and publish.
    let access = if pubsub {
        Access::Full
    } else {
        auth::check_room(claims.as_ref(), room_name)?
    };
    if let Some(limit) = over_limit {
        return Err(limit);
    }
    // permessage-deflate (docs/compression.md): RSV1 is legal only when it was negotiated.
    let deflate = crate::deflate::negotiate(cfg, up);
    let decoder = crate::session::messages::decoder(cfg, deflate.as_ref());
    let compressed = crate::deflate::deflate_class(deflate.as_ref());
    let client = sink.client_id();
    let claims = claims.map(Box::new);
    let upgraded = if pubsub {
        Upgraded::PubSub(PubSubSession::new(decoder, client, claims, compressed))
    } else {
        let (room, slot) = sink
            .join(room_name, Class::Raw.with_deflate(compressed))
            .map_err(|JoinError::TooManyRooms| Refusal::TooManyRooms)?;
        let user = claims.as_ref().and_then(|c| c.sub.as_deref());
        announce(sink, &room, &client, user, ChangeKind::Join);
        let mut session = RoomSession::new(room, slot, decoder, client, access);
        session.user = user.map(Box::from);
        session.expires = claims.as_ref().and_then(|c| c.exp);
        Upgraded::Room(session)
    };
    let mut response = Vec::with_capacity(160);
    let extensions = deflate.as_ref().map(|n| n.response());
    render_accept_with_extensions(&mut response, &up.accept, chosen, extensions);
    sink.reply(response);
    sink.metrics().upgraded.fetch_add(1, Ordering::Relaxed);
    Ok(upgraded)
}

/// Answers with an HTTP error and closes once it is flushed.
pub fn reject(sink: &mut Sink<'_>, refusal: Refusal) {
    if matches!(refusal, Refusal::Unauthorized(_) | Refusal::RoomForbidden) {
        // The reason names what was wrong, never the token.
        tracing::debug!(reason = %refusal, "upgrade refused by token auth");
    }
    sink.metrics().rejected(refusal.label());
    let mut out = Vec::with_capacity(192);
    refusal.render(&mut out);
    sink.reply(out);
    sink.finish();
}

fn serve(sink: &mut Sink<'_>, route: Route) {
    let mut out = Vec::new();
    match route {
        Route::Index => render_response(
            &mut out,
            200,
            "",
            "text/html; charset=utf-8",
            DEMO_PAGE.as_bytes(),
        ),
        Route::Healthz => render_response(&mut out, 200, "", "text/plain; charset=utf-8", b"ok"),
        Route::Metrics => {
            let body = sink.render_metrics();
            render_response(
                &mut out,
                200,
                "",
                "text/plain; version=0.0.4",
                body.as_bytes(),
            );
        }
    }
    sink.reply(out);
    sink.finish();
}
