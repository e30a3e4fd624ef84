//! Incremental frame decoder: any split of the input gives the same events.
//!
//! Payloads are unmasked in place in the caller's buffer (on the server, the kernel-provided
//! receive buffer). A message that arrives whole in one buffer is handed out as a slice of that
//! buffer with no copy; only messages split across reads or fragments are assembled in the
//! decoder's own buffer, whose size the message limit bounds.

use super::header::{Header, OpCode};
use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::mask::apply_mask;
use crate::utf8::{self, Utf8Validator};

/// Limits and negotiated options of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest message (sum of its fragments) accepted; larger ones fail with 1009.
    pub max_message_bytes: u64,
    /// Whether RSV1 may be set on the first frame of a message (permessage-deflate negotiated).
    pub allow_rsv1: bool,
    /// Whether frames must be masked (true for a server decoding client frames).
    pub require_mask: bool,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_message_bytes: 1 << 20,
            allow_rsv1: false,
            require_mask: true,
        }
    }
}

/// Kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text (validated unless compressed).
    Text,
    /// Binary.
    Binary,
}

/// What a complete frame or message means to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete data message. Text is valid UTF-8 unless `compressed` (then it is checked
    /// after inflating, by whoever inflates).
    Message {
        /// Text or binary.
        kind: MessageKind,
        /// The unmasked payload of all fragments.
        payload: &'a [u8],
        /// RSV1 was set on its first frame.
        compressed: bool,
    },
    /// A Ping; answer with a Pong carrying the same payload.
    Ping(&'a [u8]),
    /// A Pong.
    Pong(&'a [u8]),
    /// A validated Close.
    Close(CloseFrame<'a>),
}

#[derive(Debug, Clone, Copy)]
struct FrameState {
    header: Header,
    remaining: u64,
    phase: usize,
}

/// Where the event produced by one `decode` call lives.
enum Ready {
    /// A whole frame in the caller's buffer.
    Input(Header, usize, usize),
    /// A control frame assembled in `ctrl`.
    Control(Header),
    /// A message assembled in `msg`.
    Message,
}

/// The incremental RFC 6455 frame decoder of one connection.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    head: [u8; 14],
    head_len: u8,
    frame: Option<FrameState>,
    /// Kind and compression flag of the open (fragmented or split) message.
    open: Option<(MessageKind, bool)>,
    msg: Vec<u8>,
    release_msg: bool,
    release_ctrl: bool,
    /// A control frame split across reads (rare, so allocated only then).
    ctrl: Vec<u8>,
    utf8: Utf8Validator,
}

impl Decoder {
    /// A decoder at a message boundary.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            head: [0; 14],
            head_len: 0,
            frame: None,
            open: None,
            msg: Vec::new(),
            release_msg: false,
            release_ctrl: false,
            ctrl: Vec::new(),
            utf8: Utf8Validator::new(),
        }
    }

    /// The decoder's limits.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Bytes the decoder holds for a message in progress (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.msg.capacity()
    }

    /// True at a frame and message boundary: nothing partial is held.
    pub fn is_idle(&self) -> bool {
        self.head_len == 0 && self.frame.is_none() && self.open.is_none()
    }

    /// Decodes from `input`, unmasking in place. Returns how many bytes were consumed and at
    /// most one event; call again with the rest of the input until it is consumed. Bytes of an
    /// incomplete frame are consumed into the decoder's state.
    pub fn decode<'a>(
        &'a mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        if self.release_ctrl {
            self.release_ctrl = false;
            self.ctrl = Vec::new();
        }
        if self.release_msg {
            self.release_msg = false;
            self.msg.clear();
            // A large message must not pin its buffer on an idle connection.
            if self.msg.capacity() > 4096 {
                self.msg = Vec::new();
            }
        }
        let (used, ready) = self.step(input)?;
        let event = match ready {
            None => None,
            Some(Ready::Input(h, start, end)) => Some(whole_frame_event(h, &input[start..end])?),
            Some(Ready::Control(h)) => {
                self.release_ctrl = true;
                Some(control_event(h.opcode, &self.ctrl)?)
            }
            Some(Ready::Message) => {
                let (kind, compressed) = self.open.take().unwrap_or((MessageKind::Binary, false));
                self.release_msg = true;
                Some(Event::Message {
                    kind,
                    payload: &self.msg,
                    compressed,
                })
            }
        };
        Ok((used, event))
    }

    fn step(&mut self, input: &mut [u8]) -> Result<(usize, Option<Ready>), ProtocolError> {
        let mut pos = 0;
        loop {
            if self.frame.is_none()
                && self.head_len == 0
                && self.open.is_none()
                && let Some((header, start, end)) = self.small_whole_frame(&mut input[pos..])
            {
                return Ok((
                    pos + end,
                    Some(Ready::Input(header, pos + start, pos + end)),
                ));
            }
            let mut frame = match self.frame {
                Some(f) => f,
                None => {
                    let Some((header, used)) = self.read_header(&input[pos..])? else {
                        return Ok((input.len(), None));
                    };
                    pos += used;
                    self.check_header(&header)?;
                    let whole = input.len() - pos >= header.len as usize
                        && (header.len as usize) as u64 == header.len;
                    if whole && (header.opcode.is_control() || (header.fin && self.open.is_none()))
                    {
                        // Fast path: the whole frame is here and needs no assembly.
                        let end = pos + header.len as usize;
                        if let Some(key) = header.mask {
                            apply_mask(&mut input[pos..end], key, 0);
                        }
                        return Ok((end, Some(Ready::Input(header, pos, end))));
                    }
                    self.begin_frame(header)
                }
            };
            let avail =
                (input.len() - pos).min(usize::try_from(frame.remaining).unwrap_or(usize::MAX));
            let chunk = &mut input[pos..pos + avail];
            if let Some(key) = frame.header.mask {
                frame.phase = apply_mask(chunk, key, frame.phase);
            }
            if frame.header.opcode.is_control() {
                self.ctrl.extend_from_slice(chunk);
            } else {
                if matches!(self.open, Some((MessageKind::Text, false))) {
                    self.utf8
                        .feed(chunk)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                self.msg.extend_from_slice(chunk);
            }
            pos += avail;
            frame.remaining -= avail as u64;
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return Ok((pos, None));
            }
            self.frame = None;
            let h = frame.header;
            if h.opcode.is_control() {
                return Ok((pos, Some(Ready::Control(h))));
            }
            if h.fin {
                if matches!(self.open, Some((MessageKind::Text, false))) {
                    self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                return Ok((pos, Some(Ready::Message)));
            }
            if pos == input.len() {
                return Ok((pos, None));
            }
        }
    }

    /// The common case in one step: a final, masked, unextended text or binary frame with a
    /// payload under 126 bytes, whole in `input`. Anything else (or anything invalid) returns
    /// `None` and takes the general path, which applies every check.
    #[inline]
    fn small_whole_frame(&self, input: &mut [u8]) -> Option<(Header, usize, usize)> {
        let [b0, b1, k0, k1, k2, k3, ..] = *input else {
            return None;
        };
        let opcode = match b0 {
            0x81 => OpCode::Text,
            0x82 => OpCode::Binary,
            _ => return None,
        };
        if b1 & 0x80 == 0 || b1 & 0x7f >= 126 {
            return None;
        }
        let len = usize::from(b1 & 0x7f);
        if input.len() < 6 + len || len as u64 > self.config.max_message_bytes {
            return None;
        }
        let key = [k0, k1, k2, k3];
        apply_mask(&mut input[6..6 + len], key, 0);
        let header = Header {
            fin: true,
            rsv1: false,
            opcode,
            mask: Some(key),
            len: len as u64,
        };
        Some((header, 6, 6 + len))
    }

    /// Collects header bytes, possibly across calls. Returns the header and how many bytes of
    /// `input` it took.
    fn read_header(&mut self, input: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
        if self.head_len == 0 {
            // Same checks in the same order as when the header arrives in pieces, so the error
            // never depends on how the input was split.
            if let Some(opcode) = self.prefix_checks(input)?
                && let Some(found) = Header::parse_fields(input, opcode)?
            {
                return Ok(Some(found));
            }
        }
        let have = usize::from(self.head_len);
        let mut need = if have + input.len() >= 2 || have >= 2 {
            let mut two = [0u8; 2];
            for (i, b) in two.iter_mut().enumerate() {
                *b = if i < have {
                    self.head[i]
                } else {
                    input[i - have]
                };
            }
            Header::wire_len(two)
        } else {
            2
        };
        need = need.max(have);
        let take = (need - have).min(input.len());
        self.head[have..have + take].copy_from_slice(&input[..take]);
        self.head_len += take as u8;
        let buffered = &self.head[..usize::from(self.head_len)];
        self.prefix_checks(buffered)?;
        match Header::parse(buffered, self.config.allow_rsv1)? {
            Some((h, _)) => {
                self.head_len = 0;
                Ok(Some((h, take)))
            }
            None => Ok(None),
        }
    }

    /// Fails fast on what the first two bytes can prove, before the rest of the header.
    /// Returns the opcode once two bytes were checked.
    fn prefix_checks(&self, bytes: &[u8]) -> Result<Option<OpCode>, ProtocolError> {
        let Some(&b0) = bytes.first() else {
            return Ok(None);
        };
        let opcode = Header::check_first(b0, self.config.allow_rsv1)?;
        self.check_sequence(opcode, b0 & 0x80 != 0, b0 & 0x40 != 0)?;
        if let Some(&b1) = bytes.get(1) {
            Header::check_prefix(b0, b1, self.config.allow_rsv1)?;
            if self.config.require_mask && b1 & 0x80 == 0 {
                return Err(ProtocolError::Unmasked);
            }
            return Ok(Some(opcode));
        }
        Ok(None)
    }

    fn check_sequence(&self, opcode: OpCode, _fin: bool, rsv1: bool) -> Result<(), ProtocolError> {
        match opcode {
            OpCode::Continuation if self.open.is_none() => {
                Err(ProtocolError::UnexpectedContinuation)
            }
            OpCode::Continuation if rsv1 => Err(ProtocolError::ReservedBits),
            OpCode::Text | OpCode::Binary if self.open.is_some() => {
                Err(ProtocolError::ExpectedContinuation)
            }
            _ => Ok(()),
        }
    }

    fn check_header(&self, h: &Header) -> Result<(), ProtocolError> {
        self.check_sequence(h.opcode, h.fin, h.rsv1)?;
        if self.config.require_mask && h.mask.is_none() {
            return Err(ProtocolError::Unmasked);
        }
        if !h.opcode.is_control() {
            let size = self.msg.len() as u64 + h.len;
            if size > self.config.max_message_bytes {
                return Err(ProtocolError::MessageTooBig {
                    size,
                    limit: self.config.max_message_bytes,
                });
            }
        }
        Ok(())
    }

    fn begin_frame(&mut self, header: Header) -> FrameState {
        match header.opcode {
            OpCode::Text => {
                self.open = Some((MessageKind::Text, header.rsv1));
                self.utf8.reset();
            }
            OpCode::Binary => self.open = Some((MessageKind::Binary, header.rsv1)),
            _ => {}
        }
        if !header.opcode.is_control() && self.msg.capacity() == 0 {
            // Reserve what this frame announces, bounded by the limit already checked.
            self.msg.reserve(header.len.min(1 << 16) as usize);
        }
        FrameState {
            header,
            remaining: header.len,
            phase: 0,
        }
    }
}

/// Builds the event of a frame that arrived whole (a control frame, or an unfragmented message
/// outside any open message).
fn whole_frame_event(h: Header, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
    match h.opcode {
        OpCode::Text => {
            // Short chat messages are mostly ASCII: a word-wide check skips the validator.
            if !h.rsv1 && !is_ascii(payload) {
                utf8::validate(payload).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            Ok(Event::Message {
                kind: MessageKind::Text,
                payload,
                compressed: h.rsv1,
            })
        }
        OpCode::Binary => Ok(Event::Message {
            kind: MessageKind::Binary,
            payload,
            compressed: h.rsv1,
        }),
        op => control_event(op, payload),
    }
}

/// Whether `bytes` is all ASCII; only worth it for short payloads, where the SIMD validator's
/// fixed cost dominates.
fn is_ascii(bytes: &[u8]) -> bool {
    bytes.len() <= 128 && bytes.is_ascii()
}

fn control_event(op: OpCode, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
    Ok(match op {
        OpCode::Ping => Event::Ping(payload),
        OpCode::Pong => Event::Pong(payload),
        _ => Event::Close(CloseFrame::parse(payload)?),
    })
}
