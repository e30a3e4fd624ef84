//! The server API's methods (docs/api.md#methods): a JSON body parsed with simd-json into a
//! [`Call`] (run by `run.rs`), and the errors in Centrifugo's numbering.
//!
//! A channel is a topic (room) of the one namespace: a publish reaches room-mode members as
//! text and pub/sub subscribers as `message`, through the one publish pipeline.

use ringcast_pubsub::command::MAX_TOPIC_LEN;
use simd_json::BorrowedValue;
use simd_json::prelude::*;

use crate::pubsub::idempotency::MAX_KEY_LEN;
use crate::pubsub::orders::{Act, Order};

use super::answer::{Answer, error_body};
use super::http::Status;

/// Error code of a bad request (Centrifugo's numbering, docs/api.md#errors).
pub const BAD_REQUEST: u32 = 107;
/// Error code of an unknown method.
pub(super) const METHOD_NOT_FOUND: u32 = 104;
/// Error code of a channel outside `--rooms`.
pub(super) const UNKNOWN_CHANNEL: u32 = 102;
/// Error code of a limit reached (presence above `--presence-max`).
pub(super) const LIMIT_EXCEEDED: u32 = 106;
/// Error code of a feature that is off (history without `--history-size`).
pub(super) const NOT_AVAILABLE: u32 = 108;
/// Error code of a request to retry later (a repeated `idempotency_key` still in progress).
pub(super) const TOO_MANY_REQUESTS: u32 = 111;
/// Error code of a history position that cannot be continued.
pub(super) const UNRECOVERABLE_POSITION: u32 = 112;

/// Channels one `channels` answer lists at most (it says `"truncated":true` past it).
pub const MAX_CHANNELS_LISTED: usize = 10_000;

/// An error answer: Centrifugo's code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: u32,
    /// What was wrong.
    pub message: String,
}

impl ApiError {
    pub(super) fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            code: BAD_REQUEST,
            message: message.into(),
        }
    }

    pub(super) fn new(code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// One parsed call.
#[derive(Debug)]
pub enum Call {
    /// `publish`.
    Publish {
        /// The channel.
        channel: String,
        /// `data` as JSON text.
        data: Vec<u8>,
        /// Not appended to history.
        skip_history: bool,
        /// A repeat within the window is answered with the first result, not published.
        idempotency_key: Option<String>,
    },
    /// `broadcast`: one publish per channel.
    Broadcast {
        /// The channels.
        channels: Vec<String>,
        /// `data` as JSON text.
        data: Vec<u8>,
        /// Not appended to history.
        skip_history: bool,
        /// Per channel, as for `publish`.
        idempotency_key: Option<String>,
    },
    /// `presence`.
    Presence {
        /// The channel.
        channel: String,
    },
    /// `presence_stats`.
    PresenceStats {
        /// The channel.
        channel: String,
    },
    /// `history`.
    History {
        /// The channel.
        channel: String,
        /// Publications to return (0: the position only; `None`: all held).
        limit: Option<usize>,
        /// Publications after this (offset, epoch).
        since: Option<(u64, String)>,
        /// Newest first.
        reverse: bool,
    },
    /// `history_remove`.
    HistoryRemove {
        /// The channel.
        channel: String,
    },
    /// `channels`.
    Channels {
        /// A glob (`*`, `?`) the names must match.
        pattern: Option<String>,
    },
    /// `info`.
    Info,
    /// `disconnect`, `subscribe`, `unsubscribe`: an order about a user's connections, or one
    /// client's, that every worker applies.
    Order(Order),
    /// `disconnect` with `ban_until` (unix seconds): the user's new connections are refused
    /// until then, and its open ones closed.
    Ban(Order, i64),
    /// `batch`: each command's method name and call (or why it cannot run).
    Batch(Vec<(String, Result<Call, ApiError>)>),
}

/// The error of a batch command left out because the answer reached `--max-backpressure`.
pub fn answer_too_large() -> ApiError {
    ApiError::new(
        LIMIT_EXCEEDED,
        "not run: the batch's answer reached --max-backpressure",
    )
}

/// Appends `{"error":{…}}`.
pub fn error_object(answer: &mut Answer, e: &ApiError) {
    answer.raw(b"{\"error\":");
    let mut body = Vec::with_capacity(32 + e.message.len());
    error_body(&mut body, e.code, &e.message);
    answer.raw(&body);
    answer.raw(b"}");
}

/// Parses the body of a call to `method`; an error says which status it gets.
///
/// A body of at most [`REUSED_BUFFERS_MAX`] bytes is parsed with `buffers` (simd-json's scratch
/// space, kept by the connection: no allocation per request); a larger one with its own, so
/// what a connection keeps stays small whatever it was sent.
pub fn parse(
    method: &str,
    body: &mut [u8],
    buffers: &mut Option<simd_json::Buffers>,
) -> Result<Call, (Status, ApiError)> {
    if !KNOWN.contains(&method) {
        let e = ApiError::new(METHOD_NOT_FOUND, "unknown method");
        return Err((Status::NotFound, e));
    }
    let mut empty = *b"{}";
    let body: &mut [u8] = if body.iter().all(u8::is_ascii_whitespace) {
        &mut empty
    } else {
        body
    };
    let value = if body.len() <= REUSED_BUFFERS_MAX {
        let buffers = buffers.get_or_insert_with(|| simd_json::Buffers::new(REUSED_BUFFERS_MAX));
        simd_json::value::borrowed::to_value_with_buffers(body, buffers)
    } else {
        simd_json::to_borrowed_value(body)
    };
    let value = value.map_err(|e| (Status::BadRequest, ApiError::bad(format!("bad JSON: {e}"))))?;
    if method == "batch" {
        return batch(&value).map_err(|e| (Status::BadRequest, e));
    }
    call(method, &value).map_err(|e| (Status::BadRequest, e))
}

/// The largest body parsed with the connection's kept buffers ([`parse`]).
pub const REUSED_BUFFERS_MAX: usize = 4096;

/// The methods served: the metrics' list of names, less its final `other`.
const KNOWN: &[&str] = {
    let (served, _other) = crate::metrics::api::METHODS.split_at(METHODS_SERVED);
    served
};
const METHODS_SERVED: usize = crate::metrics::api::METHODS.len() - 1;

fn batch(value: &BorrowedValue<'_>) -> Result<Call, ApiError> {
    let commands = object(value)?
        .get("commands")
        .and_then(|c| c.as_array())
        .ok_or_else(|| ApiError::bad("commands must be an array"))?;
    let mut calls = Vec::with_capacity(commands.len());
    for command in commands {
        let one = command
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
            .ok_or_else(|| ApiError::bad("each command is an object with one method"))?;
        let (name, params) = (one.0.to_string(), one.1);
        let parsed = if name == "batch" || !KNOWN.contains(&name.as_str()) {
            Err(ApiError::new(METHOD_NOT_FOUND, "unknown method"))
        } else {
            call(&name, params)
        };
        calls.push((name, parsed));
    }
    Ok(Call::Batch(calls))
}

fn call(method: &str, value: &BorrowedValue<'_>) -> Result<Call, ApiError> {
    let o = object(value)?;
    Ok(match method {
        "publish" => Call::Publish {
            channel: channel(o.get("channel"))?,
            data: data(o.get("data"))?,
            skip_history: flag(o.get("skip_history"), "skip_history")?,
            idempotency_key: idempotency_key(o)?,
        },
        "broadcast" => {
            let list = o
                .get("channels")
                .and_then(|c| c.as_array())
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ApiError::bad("channels must be a non-empty array"))?;
            Call::Broadcast {
                channels: list
                    .iter()
                    .map(|c| channel(Some(c)))
                    .collect::<Result<_, _>>()?,
                data: data(o.get("data"))?,
                skip_history: flag(o.get("skip_history"), "skip_history")?,
                idempotency_key: idempotency_key(o)?,
            }
        }
        "presence" => Call::Presence {
            channel: channel(o.get("channel"))?,
        },
        "presence_stats" => Call::PresenceStats {
            channel: channel(o.get("channel"))?,
        },
        "history" => {
            let limit = match o.get("limit") {
                None => Some(0),
                Some(v) if v.is_null() => Some(0),
                Some(v) => match v.as_i64() {
                    Some(-1) => None,
                    Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                    _ => return Err(ApiError::bad("limit must be -1 or a count")),
                },
            };
            let since = match o.get("since") {
                None => None,
                Some(v) if v.is_null() => None,
                Some(v) => {
                    let s = object(v)?;
                    let offset = match s.get("offset") {
                        None => 0,
                        Some(o) => o
                            .as_u64()
                            .ok_or_else(|| ApiError::bad("since.offset must be a count"))?,
                    };
                    let epoch = match s.get("epoch") {
                        None => String::new(),
                        Some(e) => e
                            .as_str()
                            .ok_or_else(|| ApiError::bad("since.epoch must be a string"))?
                            .to_string(),
                    };
                    Some((offset, epoch))
                }
            };
            Call::History {
                channel: channel(o.get("channel"))?,
                limit,
                since,
                reverse: flag(o.get("reverse"), "reverse")?,
            }
        }
        "history_remove" => Call::HistoryRemove {
            channel: channel(o.get("channel"))?,
        },
        "channels" => Call::Channels {
            pattern: match o.get("pattern") {
                None => None,
                Some(v) if v.is_null() => None,
                Some(v) => Some(
                    v.as_str()
                        .ok_or_else(|| ApiError::bad("pattern must be a string"))?
                        .to_string(),
                ),
            },
        },
        "info" => Call::Info,
        "disconnect" => {
            let order = disconnect(o)?;
            match o.get("ban_until").filter(|v| !v.is_null()) {
                None => Call::Order(order),
                Some(v) => {
                    let until = (v.as_i64())
                        .ok_or_else(|| ApiError::bad("ban_until must be unix seconds"))?;
                    if order.user.is_empty() {
                        return Err(ApiError::bad("ban_until needs a user"));
                    }
                    Call::Ban(order, until)
                }
            }
        }
        "subscribe" | "unsubscribe" => {
            let channel: Box<str> = channel(o.get("channel"))?.into();
            let (user, client) = target(o)?;
            Call::Order(Order {
                user,
                client,
                act: if method == "subscribe" {
                    Act::Subscribe(channel)
                } else {
                    Act::Unsubscribe(channel)
                },
            })
        }
        _ => return Err(ApiError::new(METHOD_NOT_FOUND, "unknown method")),
    })
}

type Object<'v, 'a> = &'v <BorrowedValue<'a> as ValueAsObject>::Object;

fn object<'v, 'a>(value: &'v BorrowedValue<'a>) -> Result<Object<'v, 'a>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| ApiError::bad("the body must be a JSON object"))
}

/// Close code of a `disconnect` without one.
const DEFAULT_DISCONNECT_CODE: u16 = 1008;

/// The `user` and optional `client` an order about connections names.
fn target(o: Object<'_, '_>) -> Result<(Box<str>, Option<Box<str>>), ApiError> {
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        match o.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => (v.as_str())
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("{name} must be a string"))),
        }
    };
    let user = text("user")?.unwrap_or("");
    let client = text("client")?.filter(|c| !c.is_empty());
    if user.is_empty() && client.is_none() {
        return Err(ApiError::bad("user (or client) is required"));
    }
    Ok((user.into(), client.map(Box::from)))
}

fn disconnect(o: Object<'_, '_>) -> Result<Order, ApiError> {
    let (user, client) = target(o)?;
    let (mut code, mut reason) = (DEFAULT_DISCONNECT_CODE, "disconnected by the server");
    if let Some(d) = o.get("disconnect").filter(|d| !d.is_null()) {
        let d = object(d)?;
        if let Some(c) = d.get("code") {
            code = (c.as_u64())
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999))
                .ok_or_else(|| {
                    ApiError::bad("disconnect.code must be a close code a server may send")
                })?;
        }
        if let Some(r) = d.get("reason") {
            reason = (r.as_str()).filter(|r| r.len() <= 123).ok_or_else(|| {
                ApiError::bad("disconnect.reason must be a string of at most 123 bytes")
            })?;
        }
    }
    Ok(Order {
        user,
        client,
        act: Act::Disconnect {
            code,
            reason: reason.into(),
        },
    })
}

fn channel(value: Option<&BorrowedValue<'_>>) -> Result<String, ApiError> {
    match value.and_then(|v| v.as_str()) {
        Some(c) if !c.is_empty() && c.len() <= MAX_TOPIC_LEN => Ok(c.to_string()),
        _ => Err(ApiError::bad(format!(
            "channel must be a string of 1 to {MAX_TOPIC_LEN} bytes"
        ))),
    }
}

fn data(value: Option<&BorrowedValue<'_>>) -> Result<Vec<u8>, ApiError> {
    let v = value.ok_or_else(|| ApiError::bad("data is required"))?;
    Ok(v.encode().into_bytes())
}

fn idempotency_key(o: Object<'_, '_>) -> Result<Option<String>, ApiError> {
    match o.get("idempotency_key") {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.as_str() {
            Some("") => Ok(None),
            Some(k) if k.len() <= MAX_KEY_LEN => Ok(Some(k.to_string())),
            _ => Err(ApiError::bad(format!(
                "idempotency_key must be a string of at most {MAX_KEY_LEN} bytes"
            ))),
        },
    }
}

fn flag(value: Option<&BorrowedValue<'_>>, name: &str) -> Result<bool, ApiError> {
    match value {
        None => Ok(false),
        Some(v) if v.is_null() => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ApiError::bad(format!("{name} must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_checked_field_by_field() {
        // One connection's buffers for every call, good and bad, as on a kept-alive connection.
        let mut buffers = None;
        let mut ok = br#"{"channel":"c","data":{"x":1},"skip_history":true}"#.to_vec();
        assert!(matches!(
            parse("publish", &mut ok, &mut buffers),
            Ok(Call::Publish {
                skip_history: true,
                ..
            })
        ));
        for (method, body, status) in [
            ("publish", &br#"{"data":1}"#[..], Status::BadRequest),
            ("publish", br#"{"channel":"c"}"#, Status::BadRequest),
            ("publish", br#"{"channel":"","data":1}"#, Status::BadRequest),
            ("publish", br#"{"channel":"c","data":1"#, Status::BadRequest),
            (
                "history",
                br#"{"channel":"c","limit":-2}"#,
                Status::BadRequest,
            ),
            (
                "broadcast",
                br#"{"channels":[],"data":1}"#,
                Status::BadRequest,
            ),
            ("nope", b"{}", Status::NotFound),
        ] {
            let mut body = body.to_vec();
            let got = (parse(method, &mut body, &mut buffers))
                .map(|_| ())
                .map_err(|e| e.0);
            assert_eq!(
                got,
                Err(status),
                "{method} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn a_large_body_is_parsed_without_growing_the_kept_buffers() {
        let mut buffers = None;
        let data = "x".repeat(REUSED_BUFFERS_MAX);
        let mut large = format!(r#"{{"channel":"c","data":"{data}"}}"#).into_bytes();
        let call = parse("publish", &mut large, &mut buffers);
        assert!(
            matches!(call, Ok(Call::Publish { data, .. }) if data.len() == REUSED_BUFFERS_MAX + 2)
        );
        assert!(
            buffers.is_none(),
            "a large body must not be parsed in the kept buffers"
        );
        let mut small = br#"{"channel":"c","data":1}"#.to_vec();
        assert!(parse("publish", &mut small, &mut buffers).is_ok());
        assert!(buffers.is_some());
    }
}
