//! One client text message → one borrowed [`Command`] (docs/pubsub.md#requests), parsed with simd-json.
//!
//! simd-json unescapes strings in place, so it parses a private copy of the message and the raw
//! texts of `id` and `data` are cut from the caller's untouched bytes. Their byte spans come from
//! simd-json's own stage-1 structural indexes, walked in lockstep with its tape: nothing is
//! scanned twice and nothing is re-printed.
//!
//! Two gaps in simd-json are closed here (issue 21 row 12):
//! - A number no `u64`/`i64`/finite `f64` holds (`1e400`, a 30-digit integer) makes simd-json
//!   refuse the whole message, though it is valid JSON and docs/pubsub.md#requests allows any JSON number as an
//!   `id` (echoed as its raw text) and any value as `data` (passed through). On that error only, the
//!   parser finds each such number among simd-json's structurals, checks it against the JSON
//!   grammar, overwrites it with `0` and spaces in a second private copy and parses that again; the
//!   raw texts still come from the caller's bytes, and `since` refuses such a number as `bad_field`.
//! - simd-json decodes a high surrogate escape with no low one after it as U+0000 (upstream
//!   simd-json #481), so `"\ud800"` and `"\u0000"` would name the same topic. A decoded topic or
//!   epoch containing NUL has its raw text checked for a lone surrogate, which is refused as
//!   `bad_field` ([`ErrorKind::LoneSurrogate`]). `id` and `data` are raw text and are left alone.

use simd_json::{Buffers, ErrorType, Node, StaticNode, Tape};
use thiserror::Error;

use crate::error::ErrorCode;
use crate::json_gaps::{has_lone_surrogate, neutralize_huge_numbers};

/// Longest topic in bytes (docs/pubsub.md#requests).
pub const MAX_TOPIC_LEN: usize = 256;

/// Where a subscriber wants its history to start (`"since"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since<'a> {
    /// `{"last":N}`: the last N messages of the topic's history, then live ones.
    Last(u64),
    /// `{"offset":O,"epoch":"E"}`: every message after O if the epoch still matches.
    Offset {
        /// The last offset the client saw.
        offset: u64,
        /// The epoch the client saw that offset in (unescaped).
        epoch: &'a str,
    },
}

/// One parsed request. `topic` and `epoch` are unescaped; `id` and `data` are the raw JSON text
/// exactly as the client wrote it (valid JSON, echo or forward it verbatim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `{"op":"subscribe",...}`.
    Subscribe {
        /// The topic, 1–256 bytes of UTF-8.
        topic: &'a str,
        /// Raw JSON text of `id` (a number or a string), if any.
        id: Option<&'a str>,
        /// History replay requested, if any.
        since: Option<Since<'a>>,
        /// `"presence":true` (absent means false).
        presence: bool,
    },
    /// `{"op":"unsubscribe",...}`.
    Unsubscribe {
        /// The topic.
        topic: &'a str,
        /// Raw JSON text of `id`, if any.
        id: Option<&'a str>,
    },
    /// `{"op":"publish",...}`.
    Publish {
        /// The topic.
        topic: &'a str,
        /// Raw JSON text of `id`, if any.
        id: Option<&'a str>,
        /// Raw JSON text of `data`, byte for byte as sent (any JSON value, `null` included).
        data: &'a str,
    },
    /// `{"op":"refresh","token":"…"}`: a new token for the same `sub`, so the connection outlives
    /// its first one (docs/tokens.md#expiry).
    Refresh {
        /// Raw JSON text of `id`, if any.
        id: Option<&'a str>,
        /// The new token (unescaped).
        token: &'a str,
    },
    /// `{"op":"presence",...}`: a one-off presence snapshot.
    Presence {
        /// The topic.
        topic: &'a str,
        /// Raw JSON text of `id`, if any.
        id: Option<&'a str>,
    },
}

/// The request field a `bad_field` error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `op`: missing or not a string.
    Op,
    /// `id`: not a number or a string.
    Id,
    /// `topic`: missing, not a string, or empty.
    Topic,
    /// `data`: missing from a publish.
    Data,
    /// `since`: not `{"last":N}` or `{"offset":O,"epoch":"E"}` (N, O non-negative integers).
    Since,
    /// `presence`: not a boolean.
    Presence,
    /// `token`: missing from a refresh, or not a string.
    Token,
}

/// Why a text message is not a valid request.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid JSON, or valid JSON that is not an object.
    #[error("not a JSON object")]
    BadJson,
    /// `op` is a string naming no known request.
    #[error("unknown op")]
    UnknownOp,
    /// A field is missing or mistyped (or the topic is empty).
    #[error("{}", .0.message())]
    BadField(Field),
    /// The topic is longer than [`MAX_TOPIC_LEN`] bytes.
    #[error("topic longer than 256 bytes")]
    TopicTooLong,
    /// A name (the topic, or `since`'s epoch) holds a `\uD8xx`-`\uDFxx` escape that is not half of a
    /// surrogate pair: it is not Unicode, so it names nothing. Wire code `bad_field`.
    #[error("{}", ErrorKind::LoneSurrogate(*.0).message())]
    LoneSurrogate(Field),
}

impl Field {
    /// The human-readable `message` of the `bad_field` error envelope.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Op => "missing or non-string op",
            Self::Id => "id must be a number or a string",
            Self::Topic => "missing, non-string or empty topic",
            Self::Data => "missing data",
            Self::Since => "since must be {\"last\":N} or {\"offset\":O,\"epoch\":\"E\"}",
            Self::Presence => "presence must be a boolean",
            Self::Token => "missing, non-string or empty token",
        }
    }
}

impl ErrorKind {
    /// The wire code of this error.
    #[must_use]
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::BadJson => ErrorCode::BadJson,
            Self::UnknownOp => ErrorCode::UnknownOp,
            Self::BadField(_) | Self::LoneSurrogate(_) => ErrorCode::BadField,
            Self::TopicTooLong => ErrorCode::TopicTooLong,
        }
    }

    /// The static human-readable `message` of the error envelope (allocation-free).
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::BadJson => "not a JSON object",
            Self::UnknownOp => "unknown op",
            Self::BadField(f) => f.message(),
            Self::TopicTooLong => "topic longer than 256 bytes",
            Self::LoneSurrogate(Field::Since) => "lone surrogate escape in since epoch",
            Self::LoneSurrogate(_) => "lone surrogate escape in topic",
        }
    }
}

/// A rejected request: what is wrong, and the raw `id` to echo when it could be read.
///
/// `id` is `None` for `bad_json` (nothing could be parsed) and when `id` itself is mistyped.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("{kind}")]
pub struct ParseError<'a> {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Raw JSON text of the request's `id`, when it was present and well-typed.
    pub id: Option<&'a str>,
}

impl ParseError<'_> {
    const BAD_JSON: Self = Self {
        kind: ErrorKind::BadJson,
        id: None,
    };
}

/// A reusable per-worker parser. Its buffers grow to the largest message seen and are reused, so
/// parsing allocates nothing once warm.
pub struct Parser {
    buffers: Buffers,
    /// Private copy of the message that simd-json may rewrite while unescaping.
    scratch: Vec<u8>,
    /// The tape, kept empty between calls (only its capacity is reused).
    tape: Tape<'static>,
    /// Second private copy, with out-of-range numbers overwritten: only used (and grown) when the
    /// first parse fails on such a number.
    retry: Vec<u8>,
    /// Byte offsets of the out-of-range numbers overwritten in `retry` (empty otherwise).
    huge: Vec<u32>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Parser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser").finish_non_exhaustive()
    }
}

/// Fields of interest, seen while walking the top-level object.
#[derive(Default)]
struct Fields<'a> {
    op: Option<Node<'a>>,
    id: Option<(Node<'a>, &'a str)>,
    topic: Option<(Node<'a>, &'a str)>,
    data: Option<&'a str>,
    since: Option<(Since<'a>, &'a str)>,
    since_bad: bool,
    presence: Option<Node<'a>>,
    token: Option<Node<'a>>,
}

impl Parser {
    /// A parser sized for messages of about 2 KiB; it grows on demand.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(2048)
    }

    /// A parser whose buffers already fit messages of `len` bytes.
    #[must_use]
    pub fn with_capacity(len: usize) -> Self {
        Self {
            buffers: Buffers::new(len),
            scratch: Vec::with_capacity(len),
            tape: Tape(Vec::with_capacity(len / 4)),
            retry: Vec::new(),
            huge: Vec::new(),
        }
    }

    /// Parses one client text message. `input` is never modified; the command borrows from it
    /// (`id`, `data`) and from this parser (`topic`, `epoch`) until the next call.
    ///
    /// # Errors
    /// A [`ParseError`] whose kind maps to `bad_json`, `unknown_op`, `bad_field` or
    /// `topic_too_long`; the connection stays usable (docs/pubsub.md#requests).
    pub fn parse<'a>(&'a mut self, input: &'a [u8]) -> Result<Command<'a>, ParseError<'a>> {
        self.scratch.clear();
        self.scratch.extend_from_slice(input);
        let mut tape: Tape<'a> = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let filled = simd_json::fill_tape(&mut self.scratch, &mut self.buffers, &mut tape);
        let result = match filled {
            Ok(()) => interpret(&tape.0, self.buffers.structural_indexes(), input, &[]),
            Err(e)
                if matches!(e.error(), ErrorType::InvalidNumber)
                    && neutralize_huge_numbers(
                        input,
                        self.buffers.structural_indexes(),
                        &mut self.retry,
                        &mut self.huge,
                    ) =>
            {
                // `scratch` stays borrowed for 'a by the first tape, so the retry parses its own
                // copy; the raw spans are the same since every overwrite keeps its length.
                let mut again: Tape<'a> = tape.reset();
                let filled = simd_json::fill_tape(&mut self.retry, &mut self.buffers, &mut again);
                let result = match filled {
                    Ok(()) => interpret(
                        &again.0,
                        self.buffers.structural_indexes(),
                        input,
                        &self.huge,
                    ),
                    Err(_) => Err(ParseError::BAD_JSON),
                };
                tape = again;
                result
            }
            Err(_) => Err(ParseError::BAD_JSON),
        };
        // Put the (emptied) tape back so its capacity serves the next message.
        self.tape = tape.reset();
        result
    }
}

/// Turns a validated tape into a command; `structurals` and `input` locate raw value spans.
///
/// `huge` holds the offsets of out-of-range numbers that were parsed as `0` (see
/// [`neutralize_huge_numbers`](crate::json_gaps::neutralize_huge_numbers)).
fn interpret<'a>(
    tape: &[Node<'a>],
    structurals: &[u32],
    input: &'a [u8],
    huge: &[u32],
) -> Result<Command<'a>, ParseError<'a>> {
    let fields = walk_object(tape, structurals, input, huge)?;
    let id = match fields.id {
        None => None,
        Some((Node::String(_) | Node::Static(StaticNode::I64(_) | StaticNode::U64(_)), raw)) => {
            Some(raw)
        }
        Some((Node::Static(StaticNode::F64(_)), raw)) => Some(raw),
        Some(_) => return Err(bad(Field::Id, None)),
    };
    let op = match fields.op {
        Some(Node::String(op)) => op,
        _ => return Err(bad(Field::Op, id)),
    };
    let err = |kind| ParseError { kind, id };
    // Check the op before the topic so `{"op":"nope"}` is unknown_op, not bad_field.
    if !matches!(
        op,
        "subscribe" | "unsubscribe" | "publish" | "presence" | "refresh"
    ) {
        return Err(err(ErrorKind::UnknownOp));
    }
    if op == "refresh" {
        return match fields.token {
            Some(Node::String(token)) if !token.is_empty() => Ok(Command::Refresh { id, token }),
            _ => Err(err(ErrorKind::BadField(Field::Token))),
        };
    }
    let topic = match fields.topic {
        Some((Node::String(t), _)) if !t.is_empty() => t,
        _ => return Err(err(ErrorKind::BadField(Field::Topic))),
    };
    if topic.len() > MAX_TOPIC_LEN {
        return Err(err(ErrorKind::TopicTooLong));
    }
    // A lone surrogate decodes to NUL, so only a topic holding NUL needs its raw text read.
    if let Some((_, raw)) = fields.topic
        && topic.contains('\0')
        && has_lone_surrogate(raw)
    {
        return Err(err(ErrorKind::LoneSurrogate(Field::Topic)));
    }
    Ok(match op {
        "subscribe" => {
            if fields.since_bad {
                return Err(err(ErrorKind::BadField(Field::Since)));
            }
            let presence = match fields.presence {
                None => false,
                Some(Node::Static(StaticNode::Bool(b))) => b,
                Some(_) => return Err(err(ErrorKind::BadField(Field::Presence))),
            };
            let since = match fields.since {
                Some((Since::Offset { epoch, .. }, raw))
                    if epoch.contains('\0') && has_lone_surrogate(raw) =>
                {
                    return Err(err(ErrorKind::LoneSurrogate(Field::Since)));
                }
                since => since.map(|(since, _)| since),
            };
            Command::Subscribe {
                topic,
                id,
                since,
                presence,
            }
        }
        "unsubscribe" => Command::Unsubscribe { topic, id },
        "publish" => match fields.data {
            Some(data) => Command::Publish { topic, id, data },
            None => return Err(err(ErrorKind::BadField(Field::Data))),
        },
        _ => Command::Presence { topic, id },
    })
}

fn bad(field: Field, id: Option<&str>) -> ParseError<'_> {
    ParseError {
        kind: ErrorKind::BadField(field),
        id,
    }
}

/// Walks the members of the top-level object on the tape and, in lockstep, on the structural
/// indexes (`{ "key" : value , ... }`), recording the fields we know. Duplicate keys: the last wins,
/// as in `JSON.parse`.
fn walk_object<'a>(
    tape: &[Node<'a>],
    structurals: &[u32],
    input: &'a [u8],
    huge: &[u32],
) -> Result<Fields<'a>, ParseError<'a>> {
    let Some(&Node::Object { len, .. }) = tape.first() else {
        return Err(ParseError::BAD_JSON);
    };
    // SAFETY: simd-json's stage 1 validated these exact bytes as UTF-8 (it parsed a byte-for-byte
    // copy and `fill_tape` returned Ok); re-validating would cost a second pass over `data`.
    let input: &'a str = unsafe { std::str::from_utf8_unchecked(input) };
    let mut fields = Fields::default();
    let at = |i: usize| -> Result<usize, ParseError<'a>> {
        structurals
            .get(i)
            .map(|&p| p as usize)
            .ok_or(ParseError::BAD_JSON)
    };
    let byte = |p: usize| -> Result<u8, ParseError<'a>> {
        input.as_bytes().get(p).copied().ok_or(ParseError::BAD_JSON)
    };
    // Tape cursor (node index) and structural cursor: structurals[s] is the key's opening quote,
    // s + 1 the ':', s + 2 the value's first byte.
    let mut t = 1;
    let mut s = 1;
    for _ in 0..len {
        let Some(&Node::String(key)) = tape.get(t) else {
            return Err(ParseError::BAD_JSON);
        };
        let node = *tape.get(t + 1).ok_or(ParseError::BAD_JSON)?;
        let start = at(s + 2)?;
        // `next` is the structural index of the ',' or '}' after the value.
        let (end, next) = match node {
            Node::Object { count, .. } | Node::Array { count, .. } => {
                t += 2 + count;
                let mut depth = 0usize;
                let mut q = s + 2;
                loop {
                    match byte(at(q)?)? {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1).ok_or(ParseError::BAD_JSON)?;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    q += 1;
                }
                (at(q)? + 1, q + 1)
            }
            Node::String(_) | Node::Static(_) => {
                t += 2;
                let mut end = at(s + 3)?;
                // Only JSON whitespace can sit between a scalar and the next structural.
                while end > start && matches!(byte(end - 1)?, b' ' | b'\t' | b'\n' | b'\r') {
                    end -= 1;
                }
                (end, s + 3)
            }
        };
        s = next + 1;
        // `str::get` checks char boundaries, so a wrong span is an error, never a broken `str`.
        let raw = input.get(start..end).ok_or(ParseError::BAD_JSON)?;
        match key {
            "op" => fields.op = Some(node),
            "id" => fields.id = Some((node, raw)),
            "topic" => fields.topic = Some((node, raw)),
            "data" => fields.data = Some(raw),
            "presence" => fields.presence = Some(node),
            "token" => fields.token = Some(node),
            "since" => match parse_since(tape.get(t - 1 - node_count(node)..t)) {
                // An out-of-range number inside `since` was parsed as 0: not the client's N or O.
                Some(since) if !huge.iter().any(|&h| (start..end).contains(&(h as usize))) => {
                    fields.since = Some((since, raw));
                    fields.since_bad = false;
                }
                _ => fields.since_bad = true,
            },
            _ => {}
        }
    }
    Ok(fields)
}

/// Number of nodes under an object or array header (0 for scalars).
fn node_count(node: Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count,
        _ => 0,
    }
}

/// `since` from its nodes on the tape: `{"last":N}` or `{"offset":O,"epoch":"E"}`.
fn parse_since<'a>(nodes: Option<&[Node<'a>]>) -> Option<Since<'a>> {
    let nodes = nodes?;
    let &Node::Object { len, .. } = nodes.first()? else {
        return None;
    };
    let (mut last, mut offset, mut epoch) = (None, None, None);
    let mut i = 1;
    for _ in 0..len {
        let Node::String(key) = *nodes.get(i)? else {
            return None;
        };
        let value = *nodes.get(i + 1)?;
        i += 2 + node_count(value);
        let uint = match value {
            Node::Static(StaticNode::U64(n)) => Some(n),
            Node::Static(StaticNode::I64(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        match key {
            "last" => last = Some(uint?),
            "offset" => offset = Some(uint?),
            "epoch" => match value {
                Node::String(e) => epoch = Some(e),
                _ => return None,
            },
            _ => {}
        }
    }
    match (last, offset, epoch) {
        (Some(n), None, None) => Some(Since::Last(n)),
        (None, Some(offset), Some(epoch)) => Some(Since::Offset { offset, epoch }),
        _ => None,
    }
}
