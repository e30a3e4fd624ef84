//! The answers of Pusher's HTTP API: the checks of a `GET` query against what can be answered
//! (400 otherwise) and the JSON bodies of every answer (`events`, `batch_events`, `channels`,
//! `channel`, `users`).

use crate::app::Limits;
use crate::channel::Channel;
use crate::http_api::{ApiError, Info};
use crate::json::{write_str, write_u64};

/// The attributes of one channel in an answer (`None`: not asked for, or not applicable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelInfo {
    /// Distinct users (presence channels).
    pub user_count: Option<u64>,
    /// Subscribed connections.
    pub subscription_count: Option<u64>,
}

/// Checks a `GET /channels` query: `user_count` only with `filter_by_prefix` starting with
/// `presence-` (documented: 400 otherwise).
///
/// # Errors
/// [`ApiError::NotApplicable`].
pub fn check_channels_query(info: Info, filter_by_prefix: Option<&str>) -> Result<(), ApiError> {
    if info.user_count && !filter_by_prefix.is_some_and(|p| p.starts_with("presence-")) {
        return Err(ApiError::NotApplicable(
            "user_count may only be requested for presence channels (filter_by_prefix=presence-)",
        ));
    }
    Ok(())
}

/// Checks a `GET /channels/{name}` query: `user_count` only for a presence channel.
///
/// # Errors
/// [`ApiError::BadChannel`] or [`ApiError::NotApplicable`].
pub fn check_channel_query(channel: &str, info: Info, limits: &Limits) -> Result<(), ApiError> {
    let c = Channel::parse(channel, limits.max_channel_name_len)
        .map_err(|_| ApiError::BadChannel(channel.to_owned()))?;
    if info.user_count && !c.is_presence() {
        return Err(ApiError::NotApplicable(
            "user_count may only be requested for presence channels",
        ));
    }
    Ok(())
}

/// Checks a `GET /channels/{name}/users`: presence channels only.
///
/// # Errors
/// [`ApiError::BadChannel`] or [`ApiError::NotApplicable`].
pub fn check_users_query(channel: &str, limits: &Limits) -> Result<(), ApiError> {
    let c = Channel::parse(channel, limits.max_channel_name_len)
        .map_err(|_| ApiError::BadChannel(channel.to_owned()))?;
    if !c.is_presence() {
        return Err(ApiError::NotApplicable(
            "users may only be requested for presence channels",
        ));
    }
    Ok(())
}

/// The answer of `POST /events`: `{}`, or with `info` asked for,
/// `{"channels":{name:{attrs},…}}`.
pub fn write_trigger_answer<'c>(
    out: &mut Vec<u8>,
    channels: Option<impl IntoIterator<Item = (&'c str, ChannelInfo)>>,
) {
    match channels {
        None => out.extend_from_slice(b"{}"),
        Some(list) => write_channels(out, list),
    }
}

/// The answer of `POST /batch_events`: `{}`, or with `info` on any event,
/// `{"batch":[{attrs},…]}` in request order.
pub fn write_batch_answer(out: &mut Vec<u8>, infos: Option<impl IntoIterator<Item = ChannelInfo>>) {
    let Some(infos) = infos else {
        out.extend_from_slice(b"{}");
        return;
    };
    out.extend_from_slice(b"{\"batch\":[");
    for (i, info) in infos.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_attrs(out, info, false);
    }
    out.extend_from_slice(b"]}");
}

/// The answer of `GET /channels`: `{"channels":{name:{attrs},…}}`.
pub fn write_channels<'c>(
    out: &mut Vec<u8>,
    channels: impl IntoIterator<Item = (&'c str, ChannelInfo)>,
) {
    out.extend_from_slice(b"{\"channels\":{");
    for (i, (name, info)) in channels.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_attrs(out, info, false);
    }
    out.extend_from_slice(b"}}");
}

/// The answer of `GET /channels/{name}`: `{"occupied":b[,"user_count":n][,"subscription_count":n]}`.
pub fn write_channel(out: &mut Vec<u8>, occupied: bool, info: ChannelInfo) {
    out.extend_from_slice(if occupied {
        b"{\"occupied\":true"
    } else {
        b"{\"occupied\":false"
    });
    write_attrs(out, info, true);
}

/// The answer of `GET /channels/{name}/users`: `{"users":[{"id":…},…]}`.
pub fn write_users<'u>(out: &mut Vec<u8>, users: impl IntoIterator<Item = &'u str>) {
    out.extend_from_slice(b"{\"users\":[");
    for (i, id) in users.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        write_str(out, id);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// `{"user_count":n,"subscription_count":n}` (only the present ones); with `open` the
/// object's `{` and first field were already written.
fn write_attrs(out: &mut Vec<u8>, info: ChannelInfo, open: bool) {
    let mut first = !open;
    if !open {
        out.push(b'{');
    }
    for (name, value) in [
        ("user_count", info.user_count),
        ("subscription_count", info.subscription_count),
    ] {
        if let Some(v) = value {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            write_u64(out, v);
        }
    }
    out.push(b'}');
}
