//! Incremental frame decoder: any split of the input gives the same events.
//!
//! Payloads are unmasked in place in the caller's buffer (on the server, the kernel-provided
//! receive buffer). A message that arrives whole in one buffer is handed out as a slice of that
//! buffer with no copy; only messages split across reads or fragments are assembled, and the
//! assembled buffer is handed out with the event, so an idle decoder holds no message memory.
//! Reading frames lives in `read`, assembling messages in `assemble`; this module joins them.

use std::borrow::Cow;

use super::assemble::{Assembler, MessageKind};
use super::header::{Header, OpCode};
use super::read::{FrameReader, ReadConfig};
use crate::close::CloseFrame;
use crate::error::ProtocolError;
use crate::mask::apply_mask;
use crate::utf8;

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

/// What a complete frame or message means to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete data message. Text is valid UTF-8 unless `compressed` (then it is checked
    /// after inflating, by whoever inflates).
    Message {
        /// Text or binary.
        kind: MessageKind,
        /// The unmasked payload of all fragments: borrowed from the input when the message
        /// arrived whole, owned when it was assembled (dropping it frees the buffer).
        payload: Cow<'a, [u8]>,
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

/// Where the event produced by one `decode` call lives.
enum Ready {
    /// A whole frame in the caller's buffer.
    Input(Header, usize, usize),
    /// A control frame assembled by the assembler.
    Control(Header),
    /// A message assembled by the assembler.
    Message,
}

/// The incremental RFC 6455 frame decoder of one connection.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    reader: FrameReader,
    asm: Assembler,
}

impl Decoder {
    /// A decoder at a message boundary.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            reader: FrameReader::default(),
            asm: Assembler::new(config.max_message_bytes),
        }
    }

    /// The decoder's limits.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Bytes the decoder holds for an unfinished message or frame: the message buffer's
    /// capacity, a split control frame and split header bytes. It grows with the bytes that
    /// arrived, never with a length a header announces, and is 0 at a message boundary, so a
    /// server can keep all connections together under one budget (docs/limits.md#messages).
    pub fn pending_bytes(&self) -> usize {
        self.asm.pending_bytes() + self.reader.held()
    }

    /// True at a frame and message boundary: nothing partial is held.
    pub fn is_idle(&self) -> bool {
        self.reader.is_idle() && !self.asm.is_open()
    }

    fn read_config(&self) -> ReadConfig {
        ReadConfig {
            allow_rsv1: self.config.allow_rsv1,
            require_mask: self.config.require_mask,
        }
    }

    /// Decodes from `input`, unmasking in place. Returns how many bytes were consumed and at
    /// most one event; call again with the rest of the input until it is consumed. Bytes of an
    /// incomplete frame are consumed into the decoder's state.
    pub fn decode<'a>(
        &'a mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        self.asm.release_control();
        let (used, ready) = self.step(input)?;
        let event = match ready {
            None => None,
            Some(Ready::Input(h, start, end)) => Some(whole_frame_event(h, &input[start..end])?),
            Some(Ready::Control(h)) => Some(control_event(h.opcode, self.asm.finish_control())?),
            Some(Ready::Message) => {
                let (kind, compressed, payload) = self.asm.finish_message()?;
                Some(Event::Message {
                    kind,
                    payload: Cow::Owned(payload),
                    compressed,
                })
            }
        };
        Ok((used, event))
    }

    fn step(&mut self, input: &mut [u8]) -> Result<(usize, Option<Ready>), ProtocolError> {
        let mut pos = 0;
        loop {
            if self.reader.is_idle()
                && !self.asm.is_open()
                && let Some((header, start, end)) =
                    FrameReader::small_whole_frame(&mut input[pos..], self.config.max_message_bytes)
            {
                return Ok((
                    pos + end,
                    Some(Ready::Input(header, pos + start, pos + end)),
                ));
            }
            let mut frame = match self.reader.frame {
                Some(f) => f,
                None => {
                    let config = self.read_config();
                    let asm = &self.asm;
                    let Some((header, used)) =
                        self.reader.read_header(&input[pos..], config, |op, rsv1| {
                            asm.check_sequence(op, rsv1)
                        })?
                    else {
                        return Ok((input.len(), None));
                    };
                    pos += used;
                    if self.config.require_mask && header.mask.is_none() {
                        return Err(ProtocolError::Unmasked);
                    }
                    self.asm.check_frame(&header)?;
                    let whole = input.len() - pos >= header.len as usize
                        && (header.len as usize) as u64 == header.len;
                    if whole && (header.opcode.is_control() || (header.fin && !self.asm.is_open()))
                    {
                        // Fast path: the whole frame is here and needs no assembly.
                        let end = pos + header.len as usize;
                        if let Some(key) = header.mask {
                            apply_mask(&mut input[pos..end], key, 0);
                        }
                        return Ok((end, Some(Ready::Input(header, pos, end))));
                    }
                    self.asm.begin(&header);
                    self.reader.begin(header)
                }
            };
            let avail =
                (input.len() - pos).min(usize::try_from(frame.remaining).unwrap_or(usize::MAX));
            let chunk = &mut input[pos..pos + avail];
            frame.consume(chunk);
            if frame.header.opcode.is_control() {
                self.asm.push_control(chunk);
            } else {
                self.asm.push_data(chunk)?;
            }
            pos += avail;
            if frame.remaining > 0 {
                self.reader.frame = Some(frame);
                return Ok((pos, None));
            }
            self.reader.frame = None;
            let h = frame.header;
            if h.opcode.is_control() {
                return Ok((pos, Some(Ready::Control(h))));
            }
            if h.fin {
                return Ok((pos, Some(Ready::Message)));
            }
            if pos == input.len() {
                return Ok((pos, None));
            }
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
                payload: Cow::Borrowed(payload),
                compressed: h.rsv1,
            })
        }
        OpCode::Binary => Ok(Event::Message {
            kind: MessageKind::Binary,
            payload: Cow::Borrowed(payload),
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
