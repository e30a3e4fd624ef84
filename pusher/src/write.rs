//! Server → client events of protocol 7, appended to a caller's `Vec<u8>`.
//!
//! Every writer appends exactly one JSON object and never clears `out`. Double encoding is
//! done where the "Channels Protocol" page documents it: `connection_established`,
//! `subscription_succeeded`, `member_added`/`member_removed`, `subscription_count` and every
//! channel event carry `data` as a string of JSON; `pusher:error`, `pusher:signin_success`
//! and `ping`/`pong` carry an object.
//!
//! A channel event is written once per publish and the same bytes go to every subscriber
//! (the encode-once path); nothing here depends on the receiver.

use crate::error::ErrorCode;
use crate::json::{write_escaped, write_str, write_u64};
use crate::socket_id::SocketId;

/// One presence member as sent in `subscription_succeeded` and `member_added`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// The user id.
    pub user_id: &'a str,
    /// The `user_info` JSON text (`None`: written as `null` in the hash, omitted from
    /// `member_added`).
    pub user_info: Option<&'a str>,
}

/// `{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`.
pub fn connection_established(out: &mut Vec<u8>, socket_id: SocketId, activity_timeout: u32) {
    let mut inner = Vec::with_capacity(64);
    inner.extend_from_slice(b"{\"socket_id\":\"");
    write_u64(&mut inner, socket_id.high);
    inner.push(b'.');
    write_u64(&mut inner, socket_id.low);
    inner.extend_from_slice(b"\",\"activity_timeout\":");
    write_u64(&mut inner, u64::from(activity_timeout));
    inner.push(b'}');
    event_head(out, "pusher:connection_established", None);
    out.extend_from_slice(b",\"data\":");
    write_escaped(out, &inner);
    out.push(b'}');
}

/// `{"event":"pusher:ping","data":{}}`.
pub fn ping(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"event\":\"pusher:ping\",\"data\":{}}");
}

/// `{"event":"pusher:pong","data":{}}`.
pub fn pong(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"event\":\"pusher:pong\",\"data\":{}}");
}

/// `{"event":"pusher:error","data":{"code":C,"message":M}}`; `code: None` writes `null` (the
/// code is optional, and Pusher sends `null` for errors outside the table).
pub fn error(out: &mut Vec<u8>, code: Option<u16>, message: &str) {
    out.extend_from_slice(b"{\"event\":\"pusher:error\",\"data\":{\"code\":");
    match code {
        Some(c) => write_u64(out, u64::from(c)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"message\":");
    write_str(out, message);
    out.extend_from_slice(b"}}");
}

/// [`error`] with a documented code and its documented message.
pub fn error_code(out: &mut Vec<u8>, code: ErrorCode) {
    error(out, Some(code.code()), code.message());
}

/// `{"event":"pusher:subscription_error","channel":C,"data":{"type":T,"error":E,"status":S}}`:
/// a failed subscription, delivered to the channel's own handlers (pusher-js emits it on the
/// channel, Laravel Echo's `.error()` listens for it); the connection stays open. `kind` is
/// `AuthError` for a refused signature (status 401), as pusher-js itself reports an auth
/// endpoint's failure.
pub fn subscription_error(out: &mut Vec<u8>, channel: &str, kind: &str, error: &str, status: u16) {
    event_head(out, "pusher:subscription_error", Some(channel));
    out.extend_from_slice(b",\"data\":{\"type\":");
    write_str(out, kind);
    out.extend_from_slice(b",\"error\":");
    write_str(out, error);
    out.extend_from_slice(b",\"status\":");
    write_u64(out, u64::from(status));
    out.extend_from_slice(b"}}");
}

/// `{"event":"pusher_internal:subscription_succeeded","channel":C,"data":"{}"}` for a
/// channel without members.
pub fn subscription_succeeded(out: &mut Vec<u8>, channel: &str) {
    event_head(out, "pusher_internal:subscription_succeeded", Some(channel));
    out.extend_from_slice(b",\"data\":\"{}\"}");
}

/// `pusher_internal:subscription_succeeded` of a presence channel, `data` the string of
/// `{"presence":{"ids":[…],"hash":{id:info,…},"count":N}}`. `members` must be distinct
/// users; `count` is their number.
pub fn presence_subscription_succeeded<'m>(
    out: &mut Vec<u8>,
    channel: &str,
    members: impl IntoIterator<Item = Member<'m>> + Clone,
) {
    let mut inner = Vec::with_capacity(128);
    inner.extend_from_slice(b"{\"presence\":{\"ids\":[");
    let mut count = 0u64;
    for (i, m) in members.clone().into_iter().enumerate() {
        if i > 0 {
            inner.push(b',');
        }
        write_str(&mut inner, m.user_id);
        count += 1;
    }
    inner.extend_from_slice(b"],\"hash\":{");
    for (i, m) in members.into_iter().enumerate() {
        if i > 0 {
            inner.push(b',');
        }
        write_str(&mut inner, m.user_id);
        inner.push(b':');
        inner.extend_from_slice(m.user_info.unwrap_or("null").as_bytes());
    }
    inner.extend_from_slice(b"},\"count\":");
    write_u64(&mut inner, count);
    inner.extend_from_slice(b"}}");
    event_head(out, "pusher_internal:subscription_succeeded", Some(channel));
    out.extend_from_slice(b",\"data\":");
    write_escaped(out, &inner);
    out.push(b'}');
}

/// `{"event":"pusher_internal:member_added","channel":C,"data":"{\"user_id\":…,\"user_info\":…}"}`.
pub fn member_added(out: &mut Vec<u8>, channel: &str, member: Member<'_>) {
    let mut inner = Vec::with_capacity(64);
    inner.extend_from_slice(b"{\"user_id\":");
    write_str(&mut inner, member.user_id);
    if let Some(info) = member.user_info {
        inner.extend_from_slice(b",\"user_info\":");
        inner.extend_from_slice(info.as_bytes());
    }
    inner.push(b'}');
    event_head(out, "pusher_internal:member_added", Some(channel));
    out.extend_from_slice(b",\"data\":");
    write_escaped(out, &inner);
    out.push(b'}');
}

/// `{"event":"pusher_internal:member_removed","channel":C,"data":"{\"user_id\":…}"}`.
pub fn member_removed(out: &mut Vec<u8>, channel: &str, user_id: &str) {
    let mut inner = Vec::with_capacity(32);
    inner.extend_from_slice(b"{\"user_id\":");
    write_str(&mut inner, user_id);
    inner.push(b'}');
    event_head(out, "pusher_internal:member_removed", Some(channel));
    out.extend_from_slice(b",\"data\":");
    write_escaped(out, &inner);
    out.push(b'}');
}

/// `{"event":"pusher_internal:subscription_count","channel":C,"data":"{\"subscription_count\":N}"}`.
pub fn subscription_count(out: &mut Vec<u8>, channel: &str, count: u64) {
    let mut inner = Vec::with_capacity(32);
    inner.extend_from_slice(b"{\"subscription_count\":");
    write_u64(&mut inner, count);
    inner.push(b'}');
    event_head(out, "pusher_internal:subscription_count", Some(channel));
    out.extend_from_slice(b",\"data\":");
    write_escaped(out, &inner);
    out.push(b'}');
}

/// `{"event":"pusher:cache_miss","channel":C}`: a cache channel has no cached event.
pub fn cache_miss(out: &mut Vec<u8>, channel: &str) {
    event_head(out, "pusher:cache_miss", Some(channel));
    out.push(b'}');
}

/// `{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":N,\"user_ids\":[…]},…]}"}`:
/// the online status of users of a signed-in connection's watchlist, one entry per status
/// (`online`, `offline`) with at least one user.
pub fn watchlist_events(out: &mut Vec<u8>, events: &[(&str, &[&str])]) {
    let mut inner = Vec::with_capacity(64);
    inner.extend_from_slice(b"{\"events\":[");
    let mut first = true;
    for (name, ids) in events.iter().filter(|(_, ids)| !ids.is_empty()) {
        if !std::mem::take(&mut first) {
            inner.push(b',');
        }
        inner.extend_from_slice(b"{\"name\":");
        write_str(&mut inner, name);
        inner.extend_from_slice(b",\"user_ids\":[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                inner.push(b',');
            }
            write_str(&mut inner, id);
        }
        inner.extend_from_slice(b"]}");
    }
    inner.extend_from_slice(b"]}");
    event_head(out, "pusher_internal:watchlist_events", None);
    out.extend_from_slice(b",\"data\":");
    write_escaped(out, &inner);
    out.push(b'}');
}

/// [`watchlist_events`] for one user's new status: `online` or `offline`.
pub fn watchlist_status(out: &mut Vec<u8>, user_id: &str, online: bool) {
    let name = if online { "online" } else { "offline" };
    watchlist_events(out, &[(name, &[user_id])]);
}

/// `{"event":"pusher:signin_success","data":{"user_data":"…"}}` (`user_data` as the client
/// sent it).
pub fn signin_success(out: &mut Vec<u8>, user_data: &str) {
    out.extend_from_slice(b"{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":");
    write_str(out, user_data);
    out.extend_from_slice(b"}}");
}

/// A channel event, `{"event":E,"channel":C,"data":"…"[,"user_id":U]}`: an HTTP API publish
/// or a client event. `data` is written as a string (the documented form); `user_id` is the
/// sender's on a presence channel's client event.
pub fn channel_event(
    out: &mut Vec<u8>,
    event: &str,
    channel: &str,
    data: &str,
    user_id: Option<&str>,
) {
    event_head(out, event, Some(channel));
    out.extend_from_slice(b",\"data\":");
    write_str(out, data);
    if let Some(user) = user_id {
        out.extend_from_slice(b",\"user_id\":");
        write_str(out, user);
    }
    out.push(b'}');
}

/// `{"event":E[,"channel":C]` (no closing brace).
fn event_head(out: &mut Vec<u8>, event: &str, channel: Option<&str>) {
    out.extend_from_slice(b"{\"event\":");
    write_str(out, event);
    if let Some(c) = channel {
        out.extend_from_slice(b",\"channel\":");
        write_str(out, c);
    }
}
