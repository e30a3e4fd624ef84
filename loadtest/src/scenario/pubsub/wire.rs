//! SPEC §5 JSON as the pub/sub scenario writes and reads it. Requests are built from byte
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

/// `{"op":"subscribe","topic":T,"id":ID}`, with `"since":{"offset":O,"epoch":E}` to resume.
pub fn subscribe(topic_json: &str, id: u64, since: Option<(u64, &str)>) -> Vec<u8> {
    let mut s = format!(r#"{{"op":"subscribe","topic":{topic_json},"id":{id}"#);
    if let Some((offset, epoch)) = since {
        s.push_str(&format!(
            r#","since":{{"offset":{offset},"epoch":{}}}"#,
            quote(epoch)
        ));
    }
    s.push('}');
    s.into_bytes()
}

/// A publish request whose `data` is a JSON string of exactly `size` bytes (quotes included):
/// `"` + the 40-hex-digit header (publisher, sequence, send time) + `.` filler + `"`.
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
        buf.extend(std::iter::repeat_n(b'.', size.max(MIN_DATA) - 2));
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
}

/// Parses one text message; `None` if it is not a JSON object of that shape.
pub fn parse(text: &[u8]) -> Option<Incoming<'_>> {
    serde_json::from_slice(text).ok()
}

/// The loadtest header inside a `data` value, if it is one of ours.
pub fn header(data: &RawValue) -> Option<Header> {
    let raw = data.get().as_bytes();
    if raw.len() < MIN_DATA || raw[0] != b'"' {
        return None;
    }
    payload::read(&raw[1..1 + TEXT_HEADER], false)
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
        let s = String::from_utf8(subscribe(&quote("t"), 2, Some((5, "e\"1")))).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid");
        assert_eq!(v["since"]["offset"], 5);
        assert_eq!(v["since"]["epoch"], "e\"1");
    }
}
