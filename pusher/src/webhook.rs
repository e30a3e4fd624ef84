//! Webhooks (Pusher's "Webhooks" page): the body `{"time_ms":…,"events":[…]}` and its
//! `X-Pusher-Key` / `X-Pusher-Signature` headers, the signature being the hex HMAC-SHA256 of
//! the body bytes under the app's secret. Batching, retries and delivery are the server's.

use crate::app::App;
use crate::auth;
use crate::json::{write_str, write_u64};
use crate::socket_id::SocketId;

/// One webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A channel got its first subscriber.
    ChannelOccupied {
        /// The channel.
        channel: String,
    },
    /// A channel lost its last subscriber.
    ChannelVacated {
        /// The channel.
        channel: String,
    },
    /// A user joined a presence channel (first connection).
    MemberAdded {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// A user left a presence channel (last connection).
    MemberRemoved {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// A client sent a `client-*` event.
    ClientEvent {
        /// The channel.
        channel: String,
        /// The event name.
        event: String,
        /// The event's `data` string.
        data: String,
        /// The sender.
        socket_id: SocketId,
        /// The sender's user on a presence channel.
        user_id: Option<String>,
    },
    /// A cache channel was subscribed to while it had no cached event.
    CacheMiss {
        /// The channel.
        channel: String,
    },
    /// A channel's subscription count changed.
    SubscriptionCount {
        /// The channel.
        channel: String,
        /// Its subscriptions now.
        subscription_count: u64,
    },
}

/// Appends the body `{"time_ms":T,"events":[…]}` for `events` at `time_ms` (Unix
/// milliseconds; the SDKs refuse a webhook more than 5 minutes old).
pub fn body<'e>(out: &mut Vec<u8>, time_ms: u64, events: impl IntoIterator<Item = &'e Event>) {
    out.extend_from_slice(b"{\"time_ms\":");
    write_u64(out, time_ms);
    out.extend_from_slice(b",\"events\":[");
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        event(out, e);
    }
    out.extend_from_slice(b"]}");
}

/// The `X-Pusher-Signature` of `body`: hex HMAC-SHA256 under the app's secret.
#[must_use]
pub fn signature(app: &App, body: &[u8]) -> String {
    auth::hmac_hex_bytes(&app.secret, body)
}

/// The two headers to send with `body`: `X-Pusher-Key` and `X-Pusher-Signature`.
#[must_use]
pub fn headers(app: &App, body: &[u8]) -> [(&'static str, String); 2] {
    [
        ("X-Pusher-Key", app.key.clone()),
        ("X-Pusher-Signature", signature(app, body)),
    ]
}

fn event(out: &mut Vec<u8>, e: &Event) {
    let (name, channel) = match e {
        Event::ChannelOccupied { channel } => ("channel_occupied", channel),
        Event::ChannelVacated { channel } => ("channel_vacated", channel),
        Event::MemberAdded { channel, .. } => ("member_added", channel),
        Event::MemberRemoved { channel, .. } => ("member_removed", channel),
        Event::ClientEvent { channel, .. } => ("client_event", channel),
        Event::CacheMiss { channel } => ("cache_miss", channel),
        Event::SubscriptionCount { channel, .. } => ("subscription_count", channel),
    };
    out.extend_from_slice(b"{\"name\":\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\",\"channel\":");
    write_str(out, channel);
    match e {
        Event::MemberAdded { user_id, .. } | Event::MemberRemoved { user_id, .. } => {
            out.extend_from_slice(b",\"user_id\":");
            write_str(out, user_id);
        }
        Event::ClientEvent {
            event,
            data,
            socket_id,
            user_id,
            ..
        } => {
            out.extend_from_slice(b",\"event\":");
            write_str(out, event);
            out.extend_from_slice(b",\"data\":");
            write_str(out, data);
            out.extend_from_slice(b",\"socket_id\":\"");
            write_u64(out, socket_id.high);
            out.push(b'.');
            write_u64(out, socket_id.low);
            out.push(b'"');
            if let Some(user) = user_id {
                out.extend_from_slice(b",\"user_id\":");
                write_str(out, user);
            }
        }
        Event::SubscriptionCount {
            subscription_count, ..
        } => {
            out.extend_from_slice(b",\"subscription_count\":");
            write_u64(out, *subscription_count);
        }
        _ => {}
    }
    out.push(b'}');
}
