//! The upgrade of a Pusher connection (docs/pusher.md#connecting): the same Origin check and
//! connection limits as the other dialects (HTTP refusals), then the 101; a bad path, key or
//! protocol gets the documented close code after the 101 (what Pusher clients read to decide
//! whether to reconnect), a good one `pusher:connection_established`.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use ringcast_protocol::frame::OpCode;
use ringcast_protocol::handshake::{Upgrade, render_accept_with_extensions};
use ringcast_pusher::app::ClientEventBudget;
use ringcast_pusher::error::ErrorCode;
use ringcast_pusher::socket_id::SocketId;
use ringcast_pusher::upgrade::UpgradePath;
use ringcast_pusher::write;

use super::{Conn, PusherSession, close_with};
use crate::config::Config;
use crate::refusal::Refusal;
use crate::session::sink::Sink;

thread_local! {
    /// The worker's generator of socket id halves (xorshift64*, seeded from the clock and
    /// the thread): ids are unguessable enough that one connection cannot sign for another
    /// by guessing, and unique with the slot part.
    static RANDOM: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let thread = std::thread::current().id();
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(nanos, thread), &mut h);
    std::hash::Hasher::finish(&h) | 1
}

fn random() -> u64 {
    RANDOM.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Whether the request target `path` is for the Pusher dialect (it is configured and the
/// path is `{prefix}/app…`).
pub fn is_pusher_path(config: &Config, path: &str) -> bool {
    config.pusher.is_some() && UpgradePath::new(&config.pusher_path_prefix).matches(path)
}

/// Completes the upgrade of a Pusher connection. `Err` is an HTTP refusal (Origin, limits);
/// everything Pusher documents a close code for is answered after the 101.
///
/// # Errors
/// The refusal: `Forbidden` for an Origin outside `--allowed-origins`, or `over_limit`.
pub fn accept(
    sink: &mut Sink<'_>,
    up: &Upgrade<'_>,
    over_limit: Option<Refusal>,
) -> Result<PusherSession, Refusal> {
    let cfg = sink.config();
    if !crate::session::handshake::origin_allowed(cfg, up) {
        return Err(Refusal::Forbidden);
    }
    if let Some(limit) = over_limit {
        return Err(limit);
    }
    // permessage-deflate (docs/compression.md), as for the other dialects: channel events
    // reach this connection compressed once per batch for every receiver.
    let deflate = crate::deflate::negotiate(cfg, up);
    let decoder = crate::session::messages::decoder(cfg, deflate.as_ref());
    let (worker, key, generation) = sink.address();
    // Unique in the process by (worker, slot, generation); the random bits make it hard
    // to guess.
    let low = ((worker as u64) << 56) | (u64::from(generation & 0xff_ffff) << 32) | key as u64;
    // The high part starts with the node's tag: an HTTP API call on another node of a
    // cluster finds the node to exclude the connection on (docs/pusher.md#http-api).
    let tag = crate::pusher::nodes::node_tag(&sink.hub().node_id);
    let socket_id = SocketId::new((tag << 31) | (random() >> 33), low);
    let mut session = Conn {
        app_id: Box::from(""),
        socket_id,
        socket_text: socket_id.to_string().into_boxed_str(),
        client: sink.client_id(),
        subs: Vec::new(),
        budget: ClientEventBudget::new(0),
        user: None,
        user_key: None,
        released: true,
        deflate: crate::deflate::deflate_class(deflate.as_ref()),
        cache_asks: 0,
        watching: Vec::new(),
    };
    let decoder = Box::new(decoder);
    let mut response = Vec::with_capacity(160);
    let extensions = deflate.as_ref().map(|n| n.response());
    render_accept_with_extensions(&mut response, &up.accept, None, extensions);
    sink.reply(response);
    sink.metrics().upgraded.fetch_add(1, Ordering::Relaxed);
    let apps = cfg.pusher.as_deref();
    let path = UpgradePath::new(&cfg.pusher_path_prefix);
    let parsed = apps
        .ok_or(ErrorCode::AppNotFound)
        .and_then(|apps| path.parse(apps, up.path));
    let app = match parsed {
        Ok(u) => u.app,
        Err(code) => {
            close_with(sink, code);
            return Ok(PusherSession {
                decoder,
                conn: session,
            });
        }
    };
    if !sink
        .pusher()
        .connections
        .connect(&app.id, app.limits.max_connections)
    {
        close_with(sink, ErrorCode::OverConnectionQuota);
        return Ok(PusherSession {
            decoder,
            conn: session,
        });
    }
    session.app_id = Box::from(app.id.as_str());
    session.budget = ClientEventBudget::new(app.limits.client_events_per_second);
    session.released = false;
    let mut out = Vec::with_capacity(128);
    write::connection_established(&mut out, socket_id, app.limits.activity_timeout_secs);
    sink.reply_frame(OpCode::Text, &out);
    Ok(PusherSession {
        decoder,
        conn: session,
    })
}
