//! Server → client JSON envelopes (docs/pubsub.md), appended to a caller's `Vec<u8>`.
//!
//! Every encoder appends exactly one JSON object and never clears `out`, so a caller can build
//! several envelopes in one buffer. Strings (topics, epochs, client and user ids, messages, room
//! text) are JSON-escaped; raw JSON arguments (`data`, `id`) are copied verbatim and must be valid
//! JSON text, as [`crate::command::Parser`] cuts them. Nothing here allocates except `out` growing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::command::ParseError;
use crate::error::ErrorCode;

/// A topic's history position, carried by `subscribed` when history is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position<'a> {
    /// The topic's current epoch.
    pub epoch: &'a str,
    /// The newest message's offset (0 for an empty topic).
    pub offset: u64,
}

/// One member in a presence snapshot or a join/leave event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Server-assigned client id, unique in the cluster.
    pub client: &'a str,
    /// The token's `sub`; `None` without auth (the field is then omitted).
    pub user: Option<&'a str>,
}

/// Whether `data` is exactly one JSON value (surrounding whitespace allowed), so it can be
/// spliced as the `data` of a [`message`]. A client's `data` is checked by the command parser;
/// this is for `data` from elsewhere (another node's publish through the cluster bus).
#[must_use]
pub fn is_json_value(data: &[u8]) -> bool {
    // serde_json skips an ignored string's bytes without checking them: UTF-8 first.
    std::str::from_utf8(data)
        .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
}

/// `{"op":"message","topic":T,"data":V[,"offset":O]}` for a publish; `data` is the raw JSON text.
pub fn message(out: &mut Vec<u8>, topic: &str, data: &[u8], offset: Option<u64>) {
    head(out, "message", topic);
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(data);
    tail_offset(out, offset);
}

/// `{"op":"message","topic":T,"data":"<text>"[,"offset":O]}` for a room-mode text message.
pub fn message_text(out: &mut Vec<u8>, topic: &str, text: &str, offset: Option<u64>) {
    head(out, "message", topic);
    out.extend_from_slice(b",\"data\":");
    write_str(out, text);
    tail_offset(out, offset);
}

/// `{"op":"message","topic":T,"binary":"<base64>"[,"offset":O]}` for a room-mode binary message
/// (standard alphabet, with padding).
pub fn message_binary(out: &mut Vec<u8>, topic: &str, payload: &[u8], offset: Option<u64>) {
    head(out, "message", topic);
    out.extend_from_slice(b",\"binary\":\"");
    let start = out.len();
    let len = base64::encoded_len(payload.len(), true).unwrap_or(usize::MAX);
    out.resize(start + len, 0);
    // The slice is exactly `encoded_len` long, so encoding cannot run out of room.
    let written = STANDARD
        .encode_slice(payload, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
    tail_offset(out, offset);
}

/// `{"op":"subscribed","topic":T,"id":…[,"epoch":E,"offset":O][,"recovered":b]}`.
///
/// `position` is `Some` when history is on; `recovered` is `Some` when the subscribe carried
/// `since:{offset,epoch}`.
pub fn subscribed(
    out: &mut Vec<u8>,
    topic: &str,
    id: &str,
    position: Option<Position<'_>>,
    recovered: Option<bool>,
) {
    head(out, "subscribed", topic);
    raw_field(out, "id", id.as_bytes());
    if let Some(p) = position {
        out.extend_from_slice(b",\"epoch\":");
        write_str(out, p.epoch);
        out.extend_from_slice(b",\"offset\":");
        write_u64(out, p.offset);
    }
    if let Some(r) = recovered {
        out.extend_from_slice(if r {
            b",\"recovered\":true"
        } else {
            b",\"recovered\":false"
        });
    }
    out.push(b'}');
}

/// `{"op":"unsubscribed","topic":T,"id":…}`.
pub fn unsubscribed(out: &mut Vec<u8>, topic: &str, id: &str) {
    head(out, "unsubscribed", topic);
    raw_field(out, "id", id.as_bytes());
    out.push(b'}');
}

/// `{"op":"published","topic":T,"id":…[,"offset":O]}` (offset with history on).
pub fn published(out: &mut Vec<u8>, topic: &str, id: &str, offset: Option<u64>) {
    head(out, "published", topic);
    raw_field(out, "id", id.as_bytes());
    tail_offset(out, offset);
}

/// `{"op":"error"[,"id":…],"code":C,"message":M}`.
pub fn error(out: &mut Vec<u8>, id: Option<&str>, code: ErrorCode, message: &str) {
    out.extend_from_slice(b"{\"op\":\"error\"");
    if let Some(id) = id {
        raw_field(out, "id", id.as_bytes());
    }
    out.extend_from_slice(b",\"code\":\"");
    // Codes are fixed ASCII identifiers: nothing to escape.
    out.extend_from_slice(code.as_str().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    write_str(out, message);
    out.push(b'}');
}

/// The `error` envelope for a rejected request (its id echoed when it was readable).
pub fn parse_error(out: &mut Vec<u8>, err: &ParseError<'_>) {
    error(out, err.id, err.kind.code(), err.kind.message());
}

/// `{"op":"presence","topic":T[,"id":…],"clients":[{"client":…,"user":…},…],"count":N}`.
///
/// `id` echoes a `presence` query's id when it had one (pass `None` after a subscribe).
pub fn presence<'m>(
    out: &mut Vec<u8>,
    topic: &str,
    id: Option<&str>,
    members: impl IntoIterator<Item = Member<'m>>,
    count: usize,
) {
    head(out, "presence", topic);
    if let Some(id) = id {
        raw_field(out, "id", id.as_bytes());
    }
    out.extend_from_slice(b",\"clients\":[");
    for (i, m) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        member_object(out, m);
    }
    out.extend_from_slice(b"],\"count\":");
    write_u64(out, count as u64);
    out.push(b'}');
}

/// `{"op":"presence","topic":T[,"id":…],"count":N}`: the snapshot above `--presence-max`.
pub fn presence_count(out: &mut Vec<u8>, topic: &str, id: Option<&str>, count: usize) {
    head(out, "presence", topic);
    if let Some(id) = id {
        raw_field(out, "id", id.as_bytes());
    }
    out.extend_from_slice(b",\"count\":");
    write_u64(out, count as u64);
    out.push(b'}');
}

/// `{"op":"join","topic":T,"client":…[,"user":…]}`.
pub fn join(out: &mut Vec<u8>, topic: &str, member: Member<'_>) {
    head(out, "join", topic);
    member_fields(out, member);
    out.push(b'}');
}

/// `{"op":"leave","topic":T,"client":…[,"user":…]}`.
pub fn leave(out: &mut Vec<u8>, topic: &str, member: Member<'_>) {
    head(out, "leave", topic);
    member_fields(out, member);
    out.push(b'}');
}

/// Appends `s` as a JSON string literal: quotes, backslash and control characters escaped
/// (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`); everything else, non-ASCII included, verbatim.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_escaped(out, s.as_bytes());
}

/// [`write_str`] for UTF-8 text held as bytes (JSON text written into a string: the Pusher
/// dialect's double encoding uses it too).
pub fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ],
            _ => continue,
        };
        // Copy the clean run before this byte in one go, then its escape.
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(esc);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Appends `n` in decimal.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `{"op":"<op>","topic":<topic>` (no closing brace).
fn head(out: &mut Vec<u8>, op: &str, topic: &str) {
    out.extend_from_slice(b"{\"op\":\"");
    // Ops are fixed ASCII identifiers: nothing to escape.
    out.extend_from_slice(op.as_bytes());
    out.extend_from_slice(b"\",\"topic\":");
    write_str(out, topic);
}

fn raw_field(out: &mut Vec<u8>, name: &str, raw: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(raw);
}

/// `[,"offset":O]}`.
fn tail_offset(out: &mut Vec<u8>, offset: Option<u64>) {
    if let Some(o) = offset {
        out.extend_from_slice(b",\"offset\":");
        write_u64(out, o);
    }
    out.push(b'}');
}

fn member_fields(out: &mut Vec<u8>, m: Member<'_>) {
    out.extend_from_slice(b",\"client\":");
    write_str(out, m.client);
    if let Some(user) = m.user {
        out.extend_from_slice(b",\"user\":");
        write_str(out, user);
    }
}

fn member_object(out: &mut Vec<u8>, m: Member<'_>) {
    out.extend_from_slice(b"{\"client\":");
    write_str(out, m.client);
    if let Some(user) = m.user {
        out.extend_from_slice(b",\"user\":");
        write_str(out, user);
    }
    out.push(b'}');
}
