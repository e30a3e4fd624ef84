//! Running a server API call (docs/api.md#methods) against what the worker's sink lets a
//! session reach: publishes enter the one pipeline, reads answer from this node's state, and
//! orders reach the connections through every worker's tick (and the other nodes' through the
//! bus).

use std::sync::Arc;

use ringcast_pubsub::envelope::{write_str, write_u64};
use ringcast_pubsub::history::{Recovery, Replay, SharedSpan};

use crate::pubsub::idempotency::Seen;
use crate::pubsub::nodes;
use crate::pubsub::orders::Act;
use crate::session::sink::Sink;

use super::answer::{Answer, Ask, Publish};
use super::http::publish_result;
use super::methods::*;
use super::presence;
use simd_json::prelude::*;

/// Runs one call; its result object (or its error) is appended to `answer`, wrapped as
/// `{"result":…}` / `{"error":…}` (`wrap`) or as a batch reply `{"<method>":…}`.
///
/// `asks` is how many more questions this connection may put to the cluster
/// (`limits::MAX_ASKS_IN_FLIGHT`, as for a pub/sub connection); a `presence` past it is
/// refused with error 111.
pub fn run(call: Call, sink: &mut Sink<'_>, asks: &mut usize) -> Result<Answer, ApiError> {
    let (hub, cluster) = (sink.hub(), sink.cluster());
    let cfg = sink.config();
    let allowed = |c: &str| -> Result<(), ApiError> {
        if c.starts_with(ringcast_pusher::app::TOPIC_PREFIX) {
            // Pusher channels are published through the Pusher HTTP API (docs/pusher.md).
            Err(ApiError::new(
                UNKNOWN_CHANNEL,
                "#pusher/ channels belong to the Pusher dialect",
            ))
        } else if cfg.rooms.is_empty() || cfg.rooms.iter().any(|r| r == c) {
            Ok(())
        } else {
            Err(ApiError::new(
                UNKNOWN_CHANNEL,
                "the channel is not in the server's --rooms list",
            ))
        }
    };
    let mut ask = |channel: String, stats: bool| -> Result<Answer, ApiError> {
        allowed(&channel)?;
        if *asks == 0 {
            return Err(ApiError::new(
                TOO_MANY_REQUESTS,
                "too many presence calls waiting for the cluster's answer",
            ));
        }
        *asks -= 1;
        let mut a = Answer::default();
        let channel = Arc::from(channel);
        a.ask(Ask { channel, stats });
        Ok(a)
    };
    let mut a = Answer::default();
    // No allocation for a publish, which writes no text here.
    let mut out = Vec::new();
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
        // In a cluster: every node's members, asked of Redis when the answer is queued.
        Call::Presence { channel } if cluster.is_some() => return ask(channel, false),
        Call::PresenceStats { channel } if cluster.is_some() => return ask(channel, true),
        Call::Presence { channel } => {
            allowed(&channel)?;
            presence::local_presence(sink, &channel, &mut out)?;
        }
        Call::PresenceStats { channel } => {
            allowed(&channel)?;
            presence::local_stats(sink, &channel, &mut out);
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
                // A Pusher app's channels are its own namespace (docs/pusher.md#apps), listed
                // by that app's HTTP API, not here.
                if name.starts_with(ringcast_pusher::app::TOPIC_PREFIX) {
                    continue;
                }
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
            // This node, then the others heard from lately (docs/api.md#info).
            let own = sink.node_info();
            out.extend_from_slice(b"{\"nodes\":[");
            nodes::write(&mut out, &own, false);
            for other in hub.nodes.up(&own.uid) {
                out.push(b',');
                nodes::write(&mut out, &other, false);
            }
            out.extend_from_slice(b"]}");
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
}
