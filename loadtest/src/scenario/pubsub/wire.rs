//! The JSON of docs/pubsub.md as the pub/sub scenario writes and reads it. Requests are built from byte
//! templates (a publish overwrites only its 40-digit header in place); replies are read with a
//! borrowed serde struct that keeps only the fields the checks need (`data` stays raw text).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::payload::{self, Header, TEXT_HEADER};

/// Smallest `--size`: the `data` value is a JSON string holding the 40-digit header.
pub const MIN_DATA: usize = TEXT_HEADER + 2;

/// A JSON string literal for `s` (quotes and escapes included).
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// `{"op":"subscribe","topic":T,"id":ID}`, with `"since":{"offset":O,"epoch":E}` to resume and
/// `"presence":true` to get the snapshot and join / leave events.
pub fn subscribe(topic_json: &str, id: u64, since: Option<(u64, &str)>, presence: bool) -> Vec<u8> {
    let mut s = format!(r#"{{"op":"subscribe","topic":{topic_json},"id":{id}"#);
    if presence {
        s.push_str(r#","presence":true"#);
    }
    if let Some((offset, epoch)) = since {
        s.push_str(&format!(
            r#","since":{{"offset":{offset},"epoch":{}}}"#,
            quote(epoch)
        ));
    }
    s.push('}');
    s.into_bytes()
}

/// `{"op":"unsubscribe","topic":T,"id":ID}`.
pub fn unsubscribe(topic_json: &str, id: u64) -> Vec<u8> {
    format!(r#"{{"op":"unsubscribe","topic":{topic_json},"id":{id}}}"#).into_bytes()
}

/// A publish request whose `data` is a JSON string of exactly `size` bytes (quotes included):
/// `"` + the 40-hex-digit header (publisher, sequence, send time) + filler (`--filler`; chat's
/// quotes become `'` inside the string) + `"`.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    buf: Vec<u8>,
    header_at: usize,
}

impl PublishTemplate {
    /// The template for `topic_json` (already quoted); `size` ≥ [`MIN_DATA`].
    pub fn new(topic_json: &str, size: usize) -> Self {
        let mut buf = format!(r#"{{"op":"publish","topic":{topic_json},"data":""#).into_bytes();
        let header_at = buf.len();
        let filler = payload::template(size.max(MIN_DATA) - 2);
        buf.extend(filler.iter().map(|&b| if b == b'"' { b'\'' } else { b }));
        buf.extend_from_slice(b"\"}");
        Self { buf, header_at }
    }

    /// The request carrying header `h`.
    pub fn with(&mut self, h: Header) -> &[u8] {
        let end = self.header_at + TEXT_HEADER;
        payload::write(&mut self.buf[self.header_at..end], false, h);
        &self.buf
    }
}

/// The fields of a server → client message the scenario uses; everything else is skipped.
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    /// `message`, `subscribed`, `error`, ...
    #[serde(borrow)]
    pub op: Cow<'a, str>,
    /// The request id echoed (ours are numbers).
    #[serde(default)]
    pub id: Option<u64>,
    /// `data` as the publisher wrote it.
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    /// Offset (history on).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Epoch (in `subscribed`, history on).
    #[serde(borrow, default)]
    pub epoch: Option<Cow<'a, str>>,
    /// Resume outcome (in `subscribed` after `since`).
    #[serde(default)]
    pub recovered: Option<bool>,
    /// Error code (in `error`).
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    /// The member of a `join` / `leave`.
    #[serde(borrow, default)]
    pub client: Option<Cow<'a, str>>,
    /// The members of a `presence` snapshot (absent when it is a count only).
    #[serde(borrow, default)]
    pub clients: Option<Vec<Member<'a>>>,
}

/// One member of a presence snapshot.
#[derive(Debug, Deserialize)]
pub struct Member<'a> {
    /// The member's client id.
    #[serde(borrow)]
    pub client: Cow<'a, str>,
}

/// Parses one text message; `None` if it is not a JSON object of that shape.
pub fn parse(text: &[u8]) -> Option<Incoming<'_>> {
    serde_json::from_slice(text).ok()
}

/// The loadtest header inside a `data` value, if it is one of ours.
pub fn header(data: &RawValue) -> Option<Header> {
    header_in(data.get().as_bytes())
}

/// The loadtest header inside the raw JSON text of a `data` value, if it is one of ours.
fn header_in(raw: &[u8]) -> Option<Header> {
    if raw.len() < MIN_DATA || raw[0] != b'"' {
        return None;
    }
    payload::read(&raw[1..1 + TEXT_HEADER], false)
}

/// The fast path for the one message a subscriber gets a million times a second: the server's
/// envelope exactly as it writes it, `{"op":"message","topic":"T","data":"D"[,"offset":N]}`,
/// read by scanning (no serde pass: at ~1 M messages/s on the server's cores a full parse made
/// the load generator, not the server, the limit). Returns the `data` value's header and the
/// offset; `None` for anything else (another shape, field order or `data` type, escapes in
/// `data`), which [`parse`] then reads in full.
pub fn fast_message(text: &[u8]) -> Option<(Option<Header>, Option<u64>)> {
    let rest = text.strip_prefix(br#"{"op":"message","topic":""#)?;
    let topic_end = string_end(rest)?;
    let rest = rest[topic_end..].strip_prefix(br#","data":""#)?;
    let data_len = string_end(rest)?;
    // `data` with its quotes: the opening quote is the byte before `rest`.
    let data = &text[text.len() - rest.len() - 1..text.len() - rest.len() + data_len];
    let rest = &rest[data_len..];
    let offset = match rest {
        b"}" => None,
        _ => {
            let digits = rest.strip_prefix(br#","offset":"#)?.strip_suffix(b"}")?;
            if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(std::str::from_utf8(digits).ok()?.parse().ok()?)
        }
    };
    Some((header_in(data), offset))
}

/// Given the bytes after a string's opening quote, the length up to and including its closing
/// quote; `None` if it holds an escape or a control character (left to the full parser) or
/// does not end.
fn string_end(s: &[u8]) -> Option<usize> {
    let i = s
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (s[i] == b'"').then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trip() {
        let mut t = PublishTemplate::new(&quote("room0"), 64);
        let h = Header {
            publisher: 3,
            seq: 9,
            sent_ns: 12345,
        };
        let req = t.with(h).to_vec();
        let v: serde_json::Value = serde_json::from_slice(&req).expect("valid JSON");
        assert_eq!(v["op"], "publish");
        assert_eq!(v["topic"], "room0");
        let data = v["data"].as_str().expect("string");
        assert_eq!(data.len() + 2, 64);
        // What the server sends back: data passed through byte for byte.
        let msg = format!(
            r#"{{"op":"message","topic":"room0","data":{},"offset":17}}"#,
            quote(data)
        );
        let inc = parse(msg.as_bytes()).expect("parsed");
        assert_eq!((inc.op.as_ref(), inc.offset), ("message", Some(17)));
        assert_eq!(header(inc.data.expect("data")), Some(h));
    }

    #[test]
    fn fast_path_reads_what_the_full_parse_reads() {
        let mut t = PublishTemplate::new(&quote("room0"), 64);
        let h = Header {
            publisher: 3,
            seq: 9,
            sent_ns: 12345,
        };
        let req = String::from_utf8(t.with(h).to_vec()).expect("utf8");
        let at = req.find(r#""data":"#).expect("data") + 7;
        let data = &req[at..req.len() - 1];
        let with_offset =
            format!(r#"{{"op":"message","topic":"room0","data":{data},"offset":17}}"#);
        let without = format!(r#"{{"op":"message","topic":"room0","data":{data}}}"#);
        for (msg, offset) in [(&with_offset, Some(17)), (&without, None)] {
            let full = parse(msg.as_bytes()).expect("parsed");
            assert_eq!(full.offset, offset);
            assert_eq!(header(full.data.expect("data")), Some(h));
            assert_eq!(fast_message(msg.as_bytes()), Some((Some(h), offset)));
        }
        // Ours, but not the shape the fast path knows: left to the full parse.
        for other in [
            r#"{"op":"message","topic":"t","data":{"not":"ours"}}"#,
            r#"{"op":"message","topic":"t\"x","data":"a"}"#,
            r#"{"op":"message","topic":"t","data":"a\"b"}"#,
            r#"{"op":"message","topic":"t","data":"a","offset":}"#,
            r#"{"op":"message","topic":"t","data":"a","offset":1} "#,
            r#"{"op":"message","topic":"t","data":"a"#,
            r#"{"topic":"t","op":"message","data":"a"}"#,
            r#"{"op":"subscribed","topic":"t","id":4}"#,
        ] {
            assert_eq!(fast_message(other.as_bytes()), None, "{other}");
        }
        assert_eq!(
            fast_message(br#"{"op":"message","topic":"t","data":"short"}"#),
            Some((None, None)),
            "not one of ours: no header"
        );
    }

    #[test]
    fn replies_and_foreign_data() {
        let r = parse(br#"{"op":"subscribed","topic":"t","id":4,"epoch":"x\"y","offset":0,"recovered":true,"extra":[1,{"a":2}]}"#)
            .expect("parsed");
        assert_eq!(r.id, Some(4));
        assert_eq!(r.epoch.as_deref(), Some("x\"y"));
        assert_eq!((r.offset, r.recovered), (Some(0), Some(true)));
        let m = parse(br#"{"op":"message","topic":"t","data":{"not":"ours"}}"#).expect("parsed");
        assert_eq!(header(m.data.expect("data")), None);
        assert!(parse(b"not json").is_none());
        assert!(parse(br#"{"topic":"t"}"#).is_none());
        let s =
            String::from_utf8(subscribe(&quote("t"), 2, Some((5, "e\"1")), true)).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid");
        assert_eq!(v["since"]["offset"], 5);
        assert_eq!(v["since"]["epoch"], "e\"1");
        assert_eq!(v["presence"], true);
        let p = parse(br#"{"op":"presence","topic":"t","clients":[{"client":"n1.0.1","user":"u"}],"count":1}"#)
            .expect("parsed");
        assert_eq!(p.clients.expect("clients")[0].client, "n1.0.1");
        let j = parse(br#"{"op":"join","topic":"t","client":"n2.1.f"}"#).expect("parsed");
        assert_eq!(j.client.as_deref(), Some("n2.1.f"));
    }
}
