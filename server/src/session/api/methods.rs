//! The server API's methods (docs/api.md#methods): a JSON body parsed with simd-json into a
//! [`Call`], run against the shared state, answered as JSON in Centrifugo's shapes.
//!
//! A channel is a topic (room) of the one namespace: a publish reaches room-mode members as
//! text and pub/sub subscribers as `message`, through the one publish pipeline.

use std::sync::Arc;

use ringcast_pubsub::command::MAX_TOPIC_LEN;
use ringcast_pubsub::envelope::{write_str, write_u64};
use ringcast_pubsub::history::{Recovery, Replay, SharedSpan};
use simd_json::BorrowedValue;
use simd_json::prelude::*;

use crate::session::sink::Sink;

use crate::pubsub::idempotency::{MAX_KEY_LEN, Seen};
use crate::pubsub::orders::{Act, Order};

use super::answer::{Answer, Publish, error_body};
use super::http::{Status, publish_result};

/// Error code of a bad request (Centrifugo's numbering, docs/api.md#errors).
pub const BAD_REQUEST: u32 = 107;
/// Error code of an unknown method.
const METHOD_NOT_FOUND: u32 = 104;
/// Error code of a channel outside `--rooms`.
const UNKNOWN_CHANNEL: u32 = 102;
/// Error code of a limit reached (presence above `--presence-max`).
const LIMIT_EXCEEDED: u32 = 106;
/// Error code of a feature that is off (history without `--history-size`).
const NOT_AVAILABLE: u32 = 108;
/// Error code of a request to retry later (a repeated `idempotency_key` still in progress).
const TOO_MANY_REQUESTS: u32 = 111;
/// Error code of a history position that cannot be continued.
const UNRECOVERABLE_POSITION: u32 = 112;

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
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            code: BAD_REQUEST,
            message: message.into(),
        }
    }

    fn new(code: u32, message: impl Into<String>) -> ApiError {
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
pub fn parse(method: &str, body: &mut [u8]) -> Result<Call, (Status, ApiError)> {
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
    let value = simd_json::to_borrowed_value(body)
        .map_err(|e| (Status::BadRequest, ApiError::bad(format!("bad JSON: {e}"))))?;
    if method == "batch" {
        return batch(&value).map_err(|e| (Status::BadRequest, e));
    }
    call(method, &value).map_err(|e| (Status::BadRequest, e))
}

/// The methods served.
const KNOWN: &[&str] = &[
    "publish",
    "broadcast",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "disconnect",
    "subscribe",
    "unsubscribe",
    "batch",
];

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

/// Runs one call; its result object (or its error) is appended to `answer`, wrapped as
/// `{"result":…}` / `{"error":…}` (`wrap`) or as a batch reply `{"<method>":…}`.
pub fn run(call: Call, sink: &mut Sink<'_>) -> Result<Answer, ApiError> {
    let (hub, cluster) = (sink.hub(), sink.cluster());
    let cfg = sink.config();
    let allowed = |c: &str| -> Result<(), ApiError> {
        if cfg.rooms.is_empty() || cfg.rooms.iter().any(|r| r == c) {
            Ok(())
        } else {
            Err(ApiError::new(
                UNKNOWN_CHANNEL,
                "the channel is not in the server's --rooms list",
            ))
        }
    };
    let mut a = Answer::default();
    let mut out = Vec::with_capacity(128);
    match call {
        Call::Publish {
            channel,
            data,
            skip_history,
            idempotency_key,
        } => {
            allowed(&channel)?;
            let key = idempotency_key.as_deref();
            publish(sink, &mut a, &channel, data, skip_history, key)?;
            return Ok(a);
        }
        Call::Broadcast {
            channels,
            data,
            skip_history,
            idempotency_key,
        } => {
            a.raw(b"{\"responses\":[");
            for (i, c) in channels.iter().enumerate() {
                if i > 0 {
                    a.raw(b",");
                }
                let mut one = Answer::default();
                let key = idempotency_key.as_deref();
                match allowed(c)
                    .and_then(|()| publish(sink, &mut one, c, data.clone(), skip_history, key))
                {
                    Ok(()) => {
                        a.raw(b"{\"result\":");
                        a.append(one);
                        a.raw(b"}");
                    }
                    Err(e) => error_object(&mut a, &e),
                }
            }
            a.raw(b"]}");
            return Ok(a);
        }
        Call::Presence { channel } => {
            allowed(&channel)?;
            let snap = hub.presence.snapshot(&channel);
            let Some(members) = snap.members else {
                return Err(ApiError::new(
                    LIMIT_EXCEEDED,
                    "more members than --presence-max: use presence_stats",
                ));
            };
            out.extend_from_slice(b"{\"presence\":{");
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(&mut out, m.client.as_str());
                out.extend_from_slice(b":{\"client\":");
                write_str(&mut out, m.client.as_str());
                out.extend_from_slice(b",\"user\":");
                write_str(&mut out, m.user.as_deref().unwrap_or(""));
                out.push(b'}');
            }
            out.extend_from_slice(b"}}");
        }
        Call::PresenceStats { channel } => {
            allowed(&channel)?;
            let (clients, users) = hub.presence.stats(&channel);
            out.extend_from_slice(b"{\"num_clients\":");
            write_u64(&mut out, clients as u64);
            out.extend_from_slice(b",\"num_users\":");
            write_u64(&mut out, users as u64);
            out.push(b'}');
        }
        Call::History {
            channel,
            limit,
            since,
            reverse,
        } => {
            allowed(&channel)?;
            history(sink, &channel, limit, since, reverse, &mut out)?;
        }
        Call::HistoryRemove { channel } => {
            allowed(&channel)?;
            if let Some(h) = &hub.history {
                h.break_continuity(Some(&channel));
            }
            out.extend_from_slice(b"{}");
        }
        Call::Channels { pattern } => {
            let mut names = sink.room_names();
            names.sort_unstable();
            out.extend_from_slice(b"{\"channels\":{");
            let mut listed = 0;
            let mut truncated = false;
            for name in names {
                if pattern.as_deref().is_some_and(|p| !glob(p, &name)) {
                    continue;
                }
                if listed == MAX_CHANNELS_LISTED {
                    truncated = true;
                    break;
                }
                if listed > 0 {
                    out.push(b',');
                }
                listed += 1;
                write_str(&mut out, &name);
                out.extend_from_slice(b":{\"num_clients\":");
                write_u64(&mut out, hub.presence.count(&name) as u64);
                out.push(b'}');
            }
            out.push(b'}');
            if truncated {
                out.extend_from_slice(b",\"truncated\":true");
            }
            out.push(b'}');
        }
        Call::Info => {
            let names = sink.room_names();
            let subs: usize = names.iter().map(|n| hub.presence.count(n)).sum();
            let id = &hub.node_id;
            out.extend_from_slice(b"{\"nodes\":[{\"uid\":");
            write_str(&mut out, id);
            out.extend_from_slice(b",\"name\":");
            write_str(&mut out, id);
            out.extend_from_slice(b",\"version\":");
            write_str(&mut out, env!("CARGO_PKG_VERSION"));
            out.extend_from_slice(b",\"num_clients\":");
            write_u64(&mut out, sink.open_connections() as u64);
            out.extend_from_slice(b",\"num_subs\":");
            write_u64(&mut out, subs as u64);
            out.extend_from_slice(b",\"num_channels\":");
            write_u64(&mut out, names.len() as u64);
            out.extend_from_slice(b",\"uptime\":");
            write_u64(&mut out, hub.now());
            out.extend_from_slice(b"}]}");
        }
        Call::Order(order) => {
            // Applied by every worker on its next tick (docs/api.md#disconnect). A channel
            // outside --rooms is refused here; the rest is checked per connection.
            if let Act::Subscribe(c) | Act::Unsubscribe(c) = &order.act {
                allowed(c)?;
            }
            if let Some(bus) = cluster {
                bus.publish_order(crate::pubsub::orders::encode(&order, None));
            }
            hub.orders.post(order);
            out.extend_from_slice(b"{}");
        }
        Call::Ban(order, until) => {
            if !hub
                .bans
                .ban(&order.user, until, crate::session::auth::now_unix())
            {
                return Err(ApiError::new(
                    LIMIT_EXCEEDED,
                    "too many users banned at once",
                ));
            }
            if let Some(bus) = cluster {
                bus.publish_order(crate::pubsub::orders::encode(&order, Some(until)));
            }
            hub.orders.post(order);
            out.extend_from_slice(b"{}");
        }
        Call::Batch(_) => return Err(ApiError::bad("batch cannot be nested")),
    }
    a.raw(&out);
    Ok(a)
}

/// A publish to `channel` (into its room when it has members in this process) with its
/// result's place in `answer`; with an `idempotency_key` seen in the window, the first
/// publish's result instead.
fn publish(
    sink: &Sink<'_>,
    answer: &mut Answer,
    channel: &str,
    data: Vec<u8>,
    skip_history: bool,
    key: Option<&str>,
) -> Result<(), ApiError> {
    let hub = sink.hub();
    let keep = match key.map(|k| hub.idempotency.check(channel, k)) {
        None => None,
        Some(Seen::First(cell)) => Some(cell),
        Some(Seen::Done(result)) => {
            let mut out = Vec::with_capacity(64);
            publish_result(&mut out, result.as_ref().map(|(e, o)| (&**e, *o)));
            answer.raw(&out);
            return Ok(());
        }
        Some(Seen::Pending) => {
            return Err(ApiError::new(
                TOO_MANY_REQUESTS,
                "a publish with this idempotency_key is still in progress",
            ));
        }
    };
    let room = sink.find_room(channel);
    let topic = room
        .as_ref()
        .map_or_else(|| Arc::from(channel), |r| r.name.clone());
    answer.publish(Publish {
        topic,
        room,
        data,
        skip_history,
        keep,
    });
    Ok(())
}

/// `history`: this node's history of `channel` (docs/api.md#history).
fn history(
    sink: &Sink<'_>,
    channel: &str,
    limit: Option<usize>,
    since: Option<(u64, String)>,
    reverse: bool,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    // An answer is bounded like what may wait for a client (docs/api.md#limits).
    let budget = sink.config().max_backpressure;
    let hub = sink.hub();
    let Some(h) = &hub.history else {
        return Err(ApiError::new(
            NOT_AVAILABLE,
            "history is off (--history-size 0)",
        ));
    };
    let now = hub.now();
    let mut handle = h.topic(channel);
    let position = handle.position(now);
    let limit = limit.unwrap_or(usize::MAX);
    let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut truncated = false;
    if limit > 0 {
        let replay: Replay<SharedSpan> = match (&since, reverse) {
            (Some((offset, epoch)), false) => match handle.since(*offset, epoch, now) {
                Recovery::Recovered(r) => r,
                Recovery::NotRecovered(_) => {
                    return Err(ApiError::new(
                        UNRECOVERABLE_POSITION,
                        "the position is not in this node's history (other epoch or dropped)",
                    ));
                }
            },
            (Some((_, epoch)), true) if *epoch != *position.epoch => {
                return Err(ApiError::new(
                    UNRECOVERABLE_POSITION,
                    "the epoch is not the channel's current one",
                ));
            }
            _ => handle.last(usize::MAX, now),
        };
        // Newest first with `reverse` (before `since` when given), else oldest first; at most
        // `limit`, and no more bytes than `budget` (then `truncated`).
        let before = since.as_ref().filter(|_| reverse).map(|s| s.0);
        let n = replay.entries.len();
        let mut bytes = 0;
        for k in 0..n {
            let span = &replay.entries[if reverse { n - 1 - k } else { k }];
            let Some(p) = publication(span.bytes()) else {
                continue;
            };
            if before.is_some_and(|b| p.0 >= b) {
                continue;
            }
            if entries.len() == limit {
                break;
            }
            bytes += p.1.len() + 32;
            if bytes > budget {
                truncated = true;
                break;
            }
            entries.push(p);
        }
    }
    out.extend_from_slice(b"{\"publications\":[");
    for (i, (offset, data)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(data);
        out.extend_from_slice(b",\"offset\":");
        write_u64(out, *offset);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"offset\":");
    write_u64(out, position.offset);
    out.extend_from_slice(b",\"epoch\":");
    write_str(out, &position.epoch);
    if truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b'}');
    Ok(())
}

/// A held message (one text frame of `{"op":"message",…}`) as the start of a publication:
/// its offset and `{"data":…` (a room-mode binary message as `{"b64data":…`), without the
/// closing brace.
fn publication(frame: &[u8]) -> Option<(u64, Vec<u8>)> {
    let len = *frame.get(1)? & 0x7f;
    let header = match len {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let mut json = frame.get(header..)?.to_vec();
    let v = simd_json::to_borrowed_value(&mut json).ok()?;
    let o = v.as_object()?;
    let offset = o.get("offset")?.as_u64()?;
    let mut out = Vec::with_capacity(frame.len());
    if let Some(data) = o.get("data") {
        out.extend_from_slice(b"{\"data\":");
        out.extend_from_slice(data.encode().as_bytes());
    } else {
        out.extend_from_slice(b"{\"data\":null,\"b64data\":");
        write_str(&mut out, o.get("binary")?.as_str()?);
    }
    Some((offset, out))
}

/// Whether `name` matches the glob `pattern` (`*` any run, `?` any one character).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_and_marks() {
        assert!(glob("*", "anything"));
        assert!(glob("chat:*", "chat:1"));
        assert!(!glob("chat:*", "news:1"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*b*", "abc"));
        assert!(!glob("", "a"));
    }

    #[test]
    fn a_held_message_becomes_a_publication() {
        let mut frame = vec![0x81, 0];
        let body = br#"{"op":"message","topic":"t","data":{"a":[1,2]},"offset":7}"#;
        frame[1] = body.len() as u8;
        frame.extend_from_slice(body);
        let (offset, start) = publication(&frame).expect("parsed");
        assert_eq!(offset, 7);
        assert_eq!(start, br#"{"data":{"a":[1,2]}"#);
    }

    #[test]
    fn calls_are_checked_field_by_field() {
        let mut ok = br#"{"channel":"c","data":{"x":1},"skip_history":true}"#.to_vec();
        assert!(matches!(
            parse("publish", &mut ok),
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
            let got = parse(method, &mut body).map(|_| ()).map_err(|e| e.0);
            assert_eq!(
                got,
                Err(status),
                "{method} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}
