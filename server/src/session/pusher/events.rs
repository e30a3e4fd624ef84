//! Client events and `pusher:signin` (docs/pusher.md#client-events, #signin).
//!
//! A client event goes only to a private or presence channel the sender is subscribed to,
//! within the app's data limit and its per-connection rate (past it: `pusher:error` 4301,
//! the event dropped, the connection open); it is published into the channel's room as the
//! finished `{"event":"client-…","channel":…,"data":…[,"user_id":…]}` frame and the sender
//! never gets it back.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Instant;

use ringcast_protocol::frame::OpCode;
use ringcast_pusher::app::App;
use ringcast_pusher::auth;
use ringcast_pusher::channel::Kind;
use ringcast_pusher::error::ErrorCode;
use ringcast_pusher::json::Dom;
use ringcast_pusher::presence;
use ringcast_pusher::webhook::Event;
use ringcast_pusher::write;

use super::{Conn, error};
use crate::session::sink::Sink;

thread_local! {
    /// The worker's parser of `user_data` (reused buffers).
    static DOM: RefCell<Dom> = RefCell::new(Dom::default());
}

/// Milliseconds on a monotonic clock (the client-event rate windows).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Conn {
    pub(super) fn client_event(
        &mut self,
        app: &App,
        event: &str,
        channel: &str,
        data: &str,
        sink: &mut Sink<'_>,
    ) {
        if !app.limits.client_events {
            return error(sink, None, "client events are not enabled for this app");
        }
        if event.len() > app.limits.max_event_name_len {
            return error(sink, None, "event name is too long");
        }
        let Some(sub) = self.subs.iter().find(|s| &*s.channel == channel) else {
            return error(sink, None, "client event on a channel not subscribed to");
        };
        if !matches!(sub.kind, Kind::Private | Kind::Presence) {
            let msg = "client events are only allowed on private and presence channels";
            return error(sink, None, msg);
        }
        if data.len() > app.limits.max_event_data_bytes {
            return error(sink, None, "event data is too large");
        }
        if !self.budget.allow(now_ms()) {
            return error(sink, Some(ErrorCode::ClientEventRateLimit), "");
        }
        let user = sub.member.as_deref();
        let mut out = Vec::with_capacity(64 + event.len() + channel.len() + data.len());
        write::channel_event(&mut out, event, channel, data, user);
        let room = sub.room.clone();
        sink.publish(&room, OpCode::Text, &out);
        sink.webhooks().emit(
            &app.id,
            Event::ClientEvent {
                channel: channel.to_owned(),
                event: event.to_owned(),
                data: data.to_owned(),
                socket_id: self.socket_id,
                user_id: user.map(str::to_owned),
            },
        );
    }

    pub(super) fn signin(&mut self, app: &App, auth: &str, user_data: &str, sink: &mut Sink<'_>) {
        if let Err(e) = auth::verify_user(app, &self.socket_text, user_data, auth) {
            tracing::debug!(reason = %e, "pusher signin refused");
            return super::close_with(sink, ErrorCode::Unauthorized);
        }
        let parsed =
            DOM.with(|d| presence::parse_user_data(&mut d.borrow_mut(), user_data, &app.limits));
        let user = match parsed {
            Ok(u) => u,
            Err(e) => return error(sink, None, &e.to_string()),
        };
        let watching = self.signed_in(app, &user.id, &user.watchlist, sink);
        self.user_key = Some(super::user_key(&app.id, &user.id).into_boxed_str());
        let mut out = Vec::with_capacity(64 + user_data.len());
        write::signin_success(&mut out, user_data);
        sink.reply_frame(OpCode::Text, &out);
        if let Some(frame) = watching {
            sink.reply_frame(OpCode::Text, &frame);
        }
        if user.watchlist_truncated {
            error(sink, Some(ErrorCode::WatchlistLimit), "");
        }
    }
}
