//! Pusher's HTTP API ("HTTP API reference"): routes, the query-string signature, the bodies
//! of `POST /apps/{id}/events` and `/batch_events`, and the answers of the `GET` calls.
//!
//! The signature is `auth_signature = hex(HMAC-SHA256(secret, METHOD\npath\nquery))`, where
//! `query` is every parameter but `auth_signature`, keys lowercased, sorted by key, values
//! unescaped, joined `k=v&k=v`; `body_md5` (hex MD5 of the body) is required for a non-empty
//! body, and `auth_timestamp` must be within [`TIMESTAMP_WINDOW_SECS`] of the server's clock.

use md5::{Digest, Md5};
use simd_json::BorrowedValue;
use simd_json::prelude::*;
use thiserror::Error;

use crate::app::{App, Apps, Limits};
use crate::auth;
use crate::channel::{Channel, Kind};
use crate::hex;
use crate::json::{self, Dom};
use crate::query;
use crate::socket_id::SocketId;

/// How far `auth_timestamp` may be from the server's clock, either way (documented: 600 s).
pub const TIMESTAMP_WINDOW_SECS: i64 = 600;

/// An HTTP API call, from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /apps/{id}/events`.
    Events,
    /// `POST /apps/{id}/batch_events`.
    BatchEvents,
    /// `GET /apps/{id}/channels`.
    Channels,
    /// `GET /apps/{id}/channels/{name}`.
    Channel(String),
    /// `GET /apps/{id}/channels/{name}/users`.
    ChannelUsers(String),
    /// `POST /apps/{id}/users/{user_id}/terminate_connections`.
    TerminateUserConnections(String),
}

/// Why a call is refused, with its HTTP status ([`ApiError::status`]) and the plain-text
/// body Pusher answers with ([`ApiError`]'s `Display`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// No route for this method and path (404).
    #[error("Not found")]
    NotFound,
    /// The path names a route but with another method (405).
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// No app has this id (404).
    #[error("Unknown app")]
    UnknownApp,
    /// The app is disabled (403).
    #[error("App disabled")]
    AppDisabled,
    /// A required auth parameter is missing (401).
    #[error("Missing {0} parameter")]
    MissingAuthParam(&'static str),
    /// `auth_key` is not this app's key (401).
    #[error("Unknown auth_key")]
    UnknownKey,
    /// `auth_version` is not `1.0` (401).
    #[error("Unsupported auth_version")]
    AuthVersion,
    /// `auth_timestamp` is not an integer within the window (401).
    #[error("Timestamp expired: Given timestamp ({given}) not within 600s of server time ({now})")]
    Timestamp {
        /// The timestamp given.
        given: String,
        /// The server's time.
        now: i64,
    },
    /// `body_md5` does not match the body (401).
    #[error("The md5 of the body does not match the body_md5 parameter")]
    BodyMd5,
    /// The signature does not match (401). The message names the string that was signed (it
    /// holds no secret), which is what a library author needs to find the difference.
    #[error("Invalid signature: Expected HMAC SHA256 hex digest of {string_to_sign:?}")]
    Signature {
        /// The string the server signed.
        string_to_sign: String,
    },
    /// The query string is not decodable UTF-8 (400).
    #[error("Invalid query string")]
    BadQuery,
    /// The body is not the JSON object expected (400).
    #[error("Invalid JSON body")]
    BadJson,
    /// A field is missing or mistyped (400).
    #[error("Invalid or missing {0}")]
    BadField(&'static str),
    /// A channel name is invalid (400).
    #[error("Invalid channel name {0:?}")]
    BadChannel(String),
    /// An event name is too long or uses a reserved prefix (400).
    #[error("Invalid event name")]
    BadEventName,
    /// More channels than the app's limit (400).
    #[error("Too many channels (at most {0})")]
    TooManyChannels(usize),
    /// More batch events than the app's limit (400).
    #[error("Batch too large (at most {0} events)")]
    BatchTooLarge(usize),
    /// An encrypted channel among several channels (400: its data is encrypted for one).
    #[error("Cannot trigger to multiple channels when using encrypted channels")]
    EncryptedMulti,
    /// `socket_id` is not `N.N` (400).
    #[error("Invalid socket_id")]
    BadSocketId,
    /// `data` larger than the app's limit (413).
    #[error("Event data too large (at most {0} bytes)")]
    DataTooLarge(usize),
    /// An attribute requested where it does not apply (400), e.g. `user_count` of a
    /// non-presence channel, or `/users` of a non-presence channel.
    #[error("{0}")]
    NotApplicable(&'static str),
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound | Self::UnknownApp => 404,
            Self::MethodNotAllowed => 405,
            Self::AppDisabled => 403,
            Self::MissingAuthParam(_)
            | Self::UnknownKey
            | Self::AuthVersion
            | Self::Timestamp { .. }
            | Self::BodyMd5
            | Self::Signature { .. } => 401,
            Self::DataTooLarge(_) => 413,
            _ => 400,
        }
    }
}

/// Finds the call: `path` must start with `{prefix}/apps/{app_id}/`. Returns the app id and
/// the route.
///
/// # Errors
/// [`ApiError::NotFound`] for a path that is not an API call, [`ApiError::MethodNotAllowed`]
/// for a known path with the wrong method.
pub fn route<'p>(prefix: &str, method: &str, path: &'p str) -> Result<(&'p str, Route), ApiError> {
    let rest = path
        .strip_prefix(prefix.trim_end_matches('/'))
        .and_then(|r| r.strip_prefix("/apps/"))
        .ok_or(ApiError::NotFound)?;
    let (app_id, rest) = rest.split_once('/').ok_or(ApiError::NotFound)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let decoded = |s: &str| {
        query::decode(s)
            .map(|c| c.into_owned())
            .ok_or(ApiError::NotFound)
    };
    let (want, route) = match parts.as_slice() {
        ["events"] => ("POST", Route::Events),
        ["batch_events"] => ("POST", Route::BatchEvents),
        ["channels"] => ("GET", Route::Channels),
        ["channels", name] if !name.is_empty() => ("GET", Route::Channel(decoded(name)?)),
        ["channels", name, "users"] if !name.is_empty() => {
            ("GET", Route::ChannelUsers(decoded(name)?))
        }
        ["users", user, "terminate_connections"] if !user.is_empty() => {
            ("POST", Route::TerminateUserConnections(decoded(user)?))
        }
        _ => return Err(ApiError::NotFound),
    };
    if method != want {
        return Err(ApiError::MethodNotAllowed);
    }
    Ok((app_id, route))
}

/// The decoded query parameters of an authenticated call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The first value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Authenticates a call to app `app_id`: `method` and `path` exactly as the client sent them
/// (the path before any proxy rewrote it, since the SDK signed that one), `query` the raw
/// query string without `?`, `body` the raw body, `now_unix` the server's clock.
///
/// # Errors
/// [`ApiError::UnknownApp`], [`ApiError::AppDisabled`], [`ApiError::BadQuery`], or one of the
/// 401 errors.
pub fn authenticate<'a>(
    apps: &'a Apps,
    app_id: &str,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(&'a App, Params), ApiError> {
    let app = apps.by_id(app_id).ok_or(ApiError::UnknownApp)?;
    if !app.enabled {
        return Err(ApiError::AppDisabled);
    }
    let raw = query::parse(query).ok_or(ApiError::BadQuery)?;
    let mut pairs: Vec<(String, String)> = raw
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    let find = |pairs: &[(String, String)], key: &'static str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or(ApiError::MissingAuthParam(key))
    };
    let key = find(&pairs, "auth_key")?;
    let timestamp = find(&pairs, "auth_timestamp")?;
    let version = find(&pairs, "auth_version")?;
    let signature = find(&pairs, "auth_signature")?;
    if key != app.key {
        return Err(ApiError::UnknownKey);
    }
    if version != "1.0" {
        return Err(ApiError::AuthVersion);
    }
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (t - now_unix).abs() <= TIMESTAMP_WINDOW_SECS);
    if !fresh {
        return Err(ApiError::Timestamp {
            given: timestamp,
            now: now_unix,
        });
    }
    let md5 = pairs.iter().find(|(k, _)| k == "body_md5").map(|(_, v)| v);
    match md5 {
        Some(given) if !given.eq_ignore_ascii_case(&body_md5(body)) => {
            return Err(ApiError::BodyMd5);
        }
        None if !body.is_empty() => return Err(ApiError::MissingAuthParam("body_md5")),
        _ => {}
    }
    pairs.retain(|(k, _)| k != "auth_signature");
    // A stable sort by key: repeated keys (`channels[]=a&channels[]=b`) keep their order.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let string_to_sign = string_to_sign(method, path, &pairs);
    if !auth::hmac_matches(&app.secret, &[&string_to_sign], &signature) {
        return Err(ApiError::Signature { string_to_sign });
    }
    Ok((app, Params { pairs }))
}

/// `METHOD\npath\nk=v&k=v` over already lowercased, sorted pairs.
fn string_to_sign(method: &str, path: &str, sorted: &[(String, String)]) -> String {
    let mut s = String::with_capacity(method.len() + path.len() + 128);
    s.push_str(&method.to_ascii_uppercase());
    s.push('\n');
    s.push_str(path);
    s.push('\n');
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Hex MD5 of `body` (the `body_md5` parameter).
#[must_use]
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(&Md5::digest(body))
}

/// Signs a call the way Pusher's server SDKs do (`auth_*` and, for a non-empty body,
/// `body_md5` added to `params`); returns the query string to send, `auth_signature` last.
/// For tests and tools (the loadtest's HTTP publisher).
#[must_use]
pub fn sign_request(
    app: &App,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
    now_unix: i64,
) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect();
    pairs.push(("auth_key".into(), app.key.clone()));
    pairs.push(("auth_timestamp".into(), now_unix.to_string()));
    pairs.push(("auth_version".into(), "1.0".into()));
    if !body.is_empty() {
        pairs.push(("body_md5".into(), body_md5(body)));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let signature = auth::hmac_hex(&app.secret, &[&string_to_sign(method, path, &pairs)]);
    let mut q = String::new();
    for (k, v) in &pairs {
        q.push_str(k);
        q.push('=');
        q.push_str(&percent_encode(v));
        q.push('&');
    }
    q.push_str("auth_signature=");
    q.push_str(&signature);
    q
}

/// Percent-encodes everything but unreserved characters.
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            const UPPER: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(UPPER[usize::from(b >> 4)]));
            out.push(char::from(UPPER[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Attributes asked for with `info=…` (comma-separated; unknown ones ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    /// `user_count`: distinct users of a presence channel.
    pub user_count: bool,
    /// `subscription_count`: connections subscribed.
    pub subscription_count: bool,
}

impl Info {
    /// Parses `user_count,subscription_count` (either, both, or neither).
    #[must_use]
    pub fn parse(info: Option<&str>) -> Info {
        let mut out = Info::default();
        for attr in info.unwrap_or("").split(',').map(str::trim) {
            match attr {
                "user_count" => out.user_count = true,
                "subscription_count" => out.subscription_count = true,
                _ => {}
            }
        }
        out
    }

    /// Whether any attribute was asked for.
    #[must_use]
    pub fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Event name.
    pub name: String,
    /// The `data` string, sent to clients as is (a non-string `data` as its JSON text).
    pub data: String,
    /// The channels, valid names, no duplicates.
    pub channels: Vec<String>,
    /// The connection not to send it to.
    pub socket_id: Option<SocketId>,
    /// Attributes to answer with.
    pub info: Info,
}

/// Parses the body of `POST /apps/{id}/events`: `name`, `data`, `channels` or `channel`,
/// optional `socket_id` and `info`.
///
/// # Errors
/// 400 errors for a bad body, name, channel or socket id, too many channels or an encrypted
/// channel among several; 413 for oversized data.
pub fn parse_trigger(dom: &mut Dom, body: &[u8], limits: &Limits) -> Result<Trigger, ApiError> {
    let value = dom
        .parse(body)
        .filter(|v| v.as_object().is_some())
        .ok_or(ApiError::BadJson)?;
    let channels = match (value.get("channels"), value.get("channel")) {
        (Some(list), _) => {
            let list = list.as_array().ok_or(ApiError::BadField("channels"))?;
            if list.len() > limits.max_channels_per_trigger {
                return Err(ApiError::TooManyChannels(limits.max_channels_per_trigger));
            }
            let mut names = Vec::with_capacity(list.len());
            for c in list {
                names.push(c.as_str().ok_or(ApiError::BadField("channels"))?.to_owned());
            }
            names
        }
        (None, Some(c)) => vec![c.as_str().ok_or(ApiError::BadField("channel"))?.to_owned()],
        (None, None) => return Err(ApiError::BadField("channels")),
    };
    trigger(&value, channels, limits)
}

/// Parses the body of `POST /apps/{id}/batch_events`: `{"batch":[{name,data,channel,
/// socket_id?,info?},…]}`, each with exactly one channel.
///
/// # Errors
/// As [`parse_trigger`], and [`ApiError::BatchTooLarge`].
pub fn parse_batch(dom: &mut Dom, body: &[u8], limits: &Limits) -> Result<Vec<Trigger>, ApiError> {
    let value = dom
        .parse(body)
        .filter(|v| v.as_object().is_some())
        .ok_or(ApiError::BadJson)?;
    let batch = value
        .get("batch")
        .and_then(|b| b.as_array())
        .ok_or(ApiError::BadField("batch"))?;
    if batch.len() > limits.max_batch_events {
        return Err(ApiError::BatchTooLarge(limits.max_batch_events));
    }
    let mut out = Vec::with_capacity(batch.len());
    for event in batch {
        if event.as_object().is_none() {
            return Err(ApiError::BadField("batch"));
        }
        let channel = event
            .get("channel")
            .and_then(|c| c.as_str())
            .ok_or(ApiError::BadField("channel"))?;
        out.push(trigger(event, vec![channel.to_owned()], limits)?);
    }
    Ok(out)
}

fn trigger(
    value: &BorrowedValue<'_>,
    mut channels: Vec<String>,
    limits: &Limits,
) -> Result<Trigger, ApiError> {
    let name = value
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or(ApiError::BadField("name"))?;
    if name.is_empty()
        || name.len() > limits.max_event_name_len
        || name.starts_with("pusher:")
        || name.starts_with("pusher_internal:")
    {
        return Err(ApiError::BadEventName);
    }
    let data = match value.get("data") {
        Some(d) => d.as_str().map_or_else(|| json::text(d), str::to_owned),
        None => return Err(ApiError::BadField("data")),
    };
    if data.len() > limits.max_event_data_bytes {
        return Err(ApiError::DataTooLarge(limits.max_event_data_bytes));
    }
    if channels.is_empty() {
        return Err(ApiError::BadField("channels"));
    }
    for c in &channels {
        let parsed = Channel::parse(c, limits.max_channel_name_len)
            .map_err(|_| ApiError::BadChannel(c.clone()))?;
        if parsed.kind == Kind::PrivateEncrypted && channels.len() > 1 {
            return Err(ApiError::EncryptedMulti);
        }
    }
    channels.sort();
    channels.dedup();
    let socket_id = match value.get("socket_id").filter(|s| !s.is_null()) {
        Some(s) => Some(
            s.as_str()
                .and_then(SocketId::parse)
                .ok_or(ApiError::BadSocketId)?,
        ),
        None => None,
    };
    let info = Info::parse(value.get("info").and_then(|i| i.as_str()));
    Ok(Trigger {
        name: name.to_owned(),
        data,
        channels,
        socket_id,
        info,
    })
}
