//! The bus wire format: one Redis PUBLISH carries one room's messages of one turn.
//!
//! ```text
//! u8  magic 0xRC (0xAC) | u8 version (2) | u8 origin length | origin (UTF-8)
//! u64 LE stream         | u64 LE first seq | u32 LE count
//! count × ( u8 kind | u32 LE length | payload )
//! ```
//! Sequence numbers count messages, per (origin, room, stream), from 1: the i-th message of an
//! envelope has `first + i`, so a receiver's gap is a number of messages. A stream is one run of
//! a room's numbering on its origin: a new one starts when the origin (re)starts, or forgot the
//! room's numbering (`crate::streams` bounds what it keeps), so receivers tell a fresh start
//! from a gap or a replay (`crate::gaps`). Version 1 (no stream field) is still decoded, as
//! stream 0. Payloads are raw bytes (no escaping), so each node builds its own frames from
//! kind + payload.
//!
//! Kinds 1–3 are messages. Kinds 4–6 (added in version 1 without a bump: each travels in an
//! envelope of its own, which a node that predates them counts as malformed and drops, nothing
//! else) are presence: `Join` / `Leave` carry a member ([`encode_member`]), published by the
//! member's node right after its HSET / HDEL; `Mark` is a node's marker to itself after a
//! presence query (its payload the query's token, u64 LE), never emitted.

use bytes::{BufMut, Bytes};

const MAGIC: u8 = 0xAC;
const VERSION: u8 = 2;
/// The version before stream ids: decoded as stream 0.
const VERSION_1: u8 = 1;

/// What a message's payload is, so each node encodes its own forms (room frame, pub/sub JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A room-mode text message (valid UTF-8).
    Text,
    /// A room-mode binary message.
    Binary,
    /// A pub/sub publish: the raw JSON text of the published value.
    Json,
    /// A member joined the room on the origin node (payload: [`encode_member`]).
    Join,
    /// A member left the room on the origin node (payload: [`encode_member`], empty user).
    Leave,
    /// Internal to the bus (a node's marker after its presence query): never emitted.
    Mark,
    /// A pub/sub publish (as [`MessageKind::Json`]) that the receivers keep out of their
    /// history: a server API publish with `skip_history` (the server's docs/api.md).
    JsonNoHistory,
}

impl MessageKind {
    /// A presence change (`Join` / `Leave`) rather than a message.
    pub fn is_presence(self) -> bool {
        matches!(self, Self::Join | Self::Leave)
    }
}

/// The payload of a `Join` / `Leave`: u16 LE client length, client, user (UTF-8 both).
pub fn encode_member(client: &str, user: &str) -> Vec<u8> {
    let client = &client.as_bytes()[..client.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(2 + client.len() + user.len());
    out.put_u16_le(client.len() as u16);
    out.put_slice(client);
    out.put_slice(user.as_bytes());
    out
}

/// The client and user of a `Join` / `Leave` payload; `None` when malformed.
pub fn decode_member(payload: &[u8]) -> Option<(&str, &str)> {
    let (len, rest) = payload.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    let client = std::str::from_utf8(rest.get(..len)?).ok()?;
    let user = std::str::from_utf8(&rest[len..]).ok()?;
    Some((client, user))
}

impl MessageKind {
    fn to_u8(self) -> u8 {
        match self {
            Self::Text => 1,
            Self::Binary => 2,
            Self::Json => 3,
            Self::Join => 4,
            Self::Leave => 5,
            Self::Mark => 6,
            Self::JsonNoHistory => 7,
        }
    }

    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Text),
            2 => Some(Self::Binary),
            3 => Some(Self::Json),
            4 => Some(Self::Join),
            5 => Some(Self::Leave),
            6 => Some(Self::Mark),
            7 => Some(Self::JsonNoHistory),
            _ => None,
        }
    }
}

/// One message crossing the bus. `payload` is a [`Bytes`]: wrap an `Arc<[u8]>` with
/// `Bytes::from_owner` to publish without a copy; received payloads are slices of the one buffer
/// Redis delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// How to interpret the payload.
    pub kind: MessageKind,
    /// The message body.
    pub payload: Bytes,
}

impl BusMessage {
    /// A message of `kind` with this payload.
    pub fn new(kind: MessageKind, payload: impl Into<Bytes>) -> Self {
        Self {
            kind,
            payload: payload.into(),
        }
    }
}

/// A decoded envelope.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub origin: &'a str,
    pub stream: u64,
    pub first_seq: u64,
    pub messages: Vec<BusMessage>,
}

/// Why an envelope was rejected (counted as malformed, never delivered).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    Header,
    Truncated,
    Kind(u8),
    Trailing,
}

/// Encodes one envelope; `origin` is at most 255 bytes (checked by the config).
pub(crate) fn encode(
    origin: &str,
    stream: u64,
    first_seq: u64,
    messages: &[BusMessage],
) -> Vec<u8> {
    let body: usize = messages.iter().map(|m| 5 + m.payload.len()).sum();
    let mut out = Vec::with_capacity(3 + origin.len() + 20 + body);
    out.put_u8(MAGIC);
    out.put_u8(VERSION);
    out.put_u8(origin.len() as u8);
    out.put_slice(origin.as_bytes());
    out.put_u64_le(stream);
    out.put_u64_le(first_seq);
    out.put_u32_le(messages.len() as u32);
    for m in messages {
        out.put_u8(m.kind.to_u8());
        out.put_u32_le(m.payload.len() as u32);
        out.put_slice(&m.payload);
    }
    out
}

/// Decodes an envelope; payloads are zero-copy slices of `buf`.
pub(crate) fn decode(buf: &Bytes) -> Result<Envelope<'_>, Malformed> {
    let mut r = Reader { buf, pos: 0 };
    if r.u8()? != MAGIC {
        return Err(Malformed::Header);
    }
    let version = r.u8()?;
    if version != VERSION && version != VERSION_1 {
        return Err(Malformed::Header);
    }
    let olen = usize::from(r.u8()?);
    let origin = std::str::from_utf8(r.take(olen)?).map_err(|_| Malformed::Header)?;
    let stream = match version {
        VERSION_1 => 0,
        _ => u64::from_le_bytes(r.array()?),
    };
    let first_seq = u64::from_le_bytes(r.array()?);
    let count = u32::from_le_bytes(r.array()?) as usize;
    // Each message needs at least 5 bytes: bound the allocation by what the buffer can hold.
    let mut messages = Vec::with_capacity(count.min(buf.len() / 5));
    for _ in 0..count {
        let k = r.u8()?;
        let kind = MessageKind::from_u8(k).ok_or(Malformed::Kind(k))?;
        let len = u32::from_le_bytes(r.array()?) as usize;
        let start = r.pos;
        r.take(len)?;
        messages.push(BusMessage {
            kind,
            payload: buf.slice(start..start + len),
        });
    }
    if r.pos != buf.len() {
        return Err(Malformed::Trailing);
    }
    Ok(Envelope {
        origin,
        stream,
        first_seq,
        messages,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<BusMessage> {
        vec![
            BusMessage::new(MessageKind::Text, "héllo"),
            BusMessage::new(MessageKind::Binary, vec![0u8, 255, 10, 13]),
            BusMessage::new(MessageKind::Json, r#"{"a":"\n"}"#),
            BusMessage::new(MessageKind::Binary, Bytes::new()),
        ]
    }

    #[test]
    fn round_trip() {
        let buf = Bytes::from(encode("node-a", 9, 41, &sample()));
        let env = decode(&buf).unwrap();
        assert_eq!(
            env,
            Envelope {
                origin: "node-a",
                stream: 9,
                first_seq: 41,
                messages: sample()
            }
        );
    }

    #[test]
    fn arc_payloads_publish_without_copy() {
        let shared: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"frame"[..]);
        let m = BusMessage::new(MessageKind::Binary, Bytes::from_owner(shared.clone()));
        assert_eq!(m.payload.as_ptr(), shared.as_ptr());
        let buf = Bytes::from(encode("n", 5, 1, &[m]));
        assert_eq!(&decode(&buf).unwrap().messages[0].payload[..], b"frame");
    }

    #[test]
    fn every_truncation_is_rejected() {
        let full = encode("n", 5, 1, &sample());
        for cut in 0..full.len() {
            let buf = Bytes::copy_from_slice(&full[..cut]);
            assert!(decode(&buf).is_err(), "cut at {cut} decoded");
        }
        let mut long = full.clone();
        long.push(0);
        assert_eq!(decode(&Bytes::from(long)), Err(Malformed::Trailing));
    }

    #[test]
    fn bad_header_and_kind() {
        let mut buf = encode("n", 5, 1, &sample());
        buf[0] = b'{';
        assert_eq!(decode(&Bytes::from(buf)), Err(Malformed::Header));
        let mut buf = encode("n", 5, 1, &sample()[..1]);
        let kind_at = 3 + 1 + 20;
        buf[kind_at] = 9;
        assert_eq!(decode(&Bytes::from(buf)), Err(Malformed::Kind(9)));
    }

    #[test]
    fn presence_kinds_and_members_round_trip() {
        let join = BusMessage::new(MessageKind::Join, encode_member("b-1-7", "ana"));
        let leave = BusMessage::new(MessageKind::Leave, encode_member("b-1-7", ""));
        let mark = BusMessage::new(MessageKind::Mark, 7u64.to_le_bytes().to_vec());
        let volatile = BusMessage::new(MessageKind::JsonNoHistory, "\"x\"");
        for m in [join, leave, mark, volatile] {
            let buf = Bytes::from(encode("b", 5, 3, std::slice::from_ref(&m)));
            let env = decode(&buf).unwrap();
            assert_eq!((env.first_seq, &env.messages[..]), (3, &[m][..]));
        }
        assert_eq!(buf_kind(4), Some(MessageKind::Join));
        assert_eq!(buf_kind(7), Some(MessageKind::JsonNoHistory));
        assert_eq!(buf_kind(8), None, "unknown kinds stay malformed");
        let p = encode_member("c\n1", "user\nx");
        assert_eq!(decode_member(&p), Some(("c\n1", "user\nx")));
        assert_eq!(decode_member(&encode_member("c", "")), Some(("c", "")));
        assert!(MessageKind::Leave.is_presence() && !MessageKind::Mark.is_presence());
        for cut in 0..3 {
            assert_eq!(decode_member(&p[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode_member(&[1, 0, 0xff]), None, "not UTF-8");
    }

    fn buf_kind(k: u8) -> Option<MessageKind> {
        MessageKind::from_u8(k)
    }

    #[test]
    fn version_1_decodes_as_stream_0() {
        let v2 = encode("node-a", 9, 41, &sample());
        // Version 1: the same without the stream field.
        let mut v1 = v2[..3 + 6].to_vec();
        v1[1] = 1;
        v1.extend_from_slice(&v2[3 + 6 + 8..]);
        let buf = Bytes::from(v1);
        let env = decode(&buf).unwrap();
        assert_eq!((env.origin, env.stream, env.first_seq), ("node-a", 0, 41));
        assert_eq!(env.messages, sample());
        let mut v3 = v2.clone();
        v3[1] = 3;
        assert_eq!(decode(&Bytes::from(v3)), Err(Malformed::Header));
    }

    #[test]
    fn huge_count_does_not_allocate_it() {
        let mut buf = encode("n", 5, 1, &[]);
        let at = buf.len() - 4;
        buf[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&Bytes::from(buf)), Err(Malformed::Truncated));
    }
}
