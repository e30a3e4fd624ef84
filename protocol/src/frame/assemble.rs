//! Message assembly: fragments and payloads split across reads, the fragment-sequence rules,
//! the message size limit and incremental UTF-8 validation.
//!
//! Memory follows the bytes that arrived, never the length a header announces (docs/limits.md#messages): the
//! buffer grows by doubling, capped at the message limit, and a finished message's buffer is
//! handed to the caller, so an idle decoder holds nothing.

use super::header::{Header, OpCode};
use crate::error::ProtocolError;
use crate::utf8::Utf8Validator;

/// Smallest allocation for a message buffer; below it, doubling would reallocate for nothing.
const MIN_GROWTH: usize = 64;

/// Kind of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text (validated unless compressed).
    Text,
    /// Binary.
    Binary,
}

/// A data message being assembled, and a control frame split across reads.
#[derive(Debug)]
pub(super) struct Assembler {
    /// Largest message accepted.
    limit: u64,
    /// Kind and compression flag of the open (fragmented or split) message.
    open: Option<(MessageKind, bool)>,
    /// Payload of the open message so far.
    msg: Vec<u8>,
    /// A control frame split across reads (rare, so allocated only then).
    ctrl: Vec<u8>,
    /// `ctrl` holds a finished control frame that an event borrowed: free it on the next call.
    ctrl_done: bool,
    utf8: Utf8Validator,
}

impl Assembler {
    /// No message open, nothing held.
    pub(super) fn new(limit: u64) -> Self {
        Assembler {
            limit,
            open: None,
            msg: Vec::new(),
            ctrl: Vec::new(),
            ctrl_done: false,
            utf8: Utf8Validator::new(),
        }
    }

    /// Whether a data message is open (its next frame must be a continuation).
    #[inline]
    pub(super) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Bytes held for an unfinished message or control frame.
    pub(super) fn pending_bytes(&self) -> usize {
        let ctrl = if self.ctrl_done {
            0
        } else {
            self.ctrl.capacity()
        };
        self.msg.capacity() + ctrl
    }

    /// Frees a finished control frame's buffer once no event borrows it any more.
    #[inline]
    pub(super) fn release_control(&mut self) {
        if self.ctrl_done {
            self.ctrl_done = false;
            self.ctrl = Vec::new();
        }
    }

    /// Whether `opcode` may start a frame now (RFC 6455 §5.4): continuations only inside an open
    /// message and never with RSV1, new data frames only outside one.
    pub(super) fn check_sequence(&self, opcode: OpCode, rsv1: bool) -> Result<(), ProtocolError> {
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

    /// Checks a complete header against the sequence rules and the message limit, before any
    /// of its payload is buffered.
    pub(super) fn check_frame(&self, h: &Header) -> Result<(), ProtocolError> {
        self.check_sequence(h.opcode, h.rsv1)?;
        if !h.opcode.is_control() {
            let size = self.msg.len() as u64 + h.len;
            if size > self.limit {
                return Err(ProtocolError::MessageTooBig {
                    size,
                    limit: self.limit,
                });
            }
        }
        Ok(())
    }

    /// Opens a message for the first frame of a text or binary message.
    pub(super) fn begin(&mut self, header: &Header) {
        match header.opcode {
            OpCode::Text => {
                self.open = Some((MessageKind::Text, header.rsv1));
                self.utf8.reset();
            }
            OpCode::Binary => self.open = Some((MessageKind::Binary, header.rsv1)),
            _ => {}
        }
    }

    /// Appends payload bytes of the open message, failing as soon as a text message can no
    /// longer be UTF-8.
    pub(super) fn push_data(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        if matches!(self.open, Some((MessageKind::Text, false))) {
            self.utf8
                .feed(chunk)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.grow(chunk.len());
        self.msg.extend_from_slice(chunk);
        Ok(())
    }

    /// Appends payload bytes of a control frame split across reads.
    pub(super) fn push_control(&mut self, chunk: &[u8]) {
        self.ctrl.extend_from_slice(chunk);
    }

    /// The payload of the control frame just completed; freed on the next decode call.
    pub(super) fn finish_control(&mut self) -> &[u8] {
        self.ctrl_done = true;
        &self.ctrl
    }

    /// Ends the open message: checks that text ends on a code point, and hands over the
    /// assembled payload, so no buffer stays behind.
    pub(super) fn finish_message(&mut self) -> Result<(MessageKind, bool, Vec<u8>), ProtocolError> {
        let (kind, compressed) = self.open.take().unwrap_or((MessageKind::Binary, false));
        if kind == MessageKind::Text && !compressed {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok((kind, compressed, std::mem::take(&mut self.msg)))
    }

    /// Makes room for `extra` more bytes: doubling (amortized), never past the message limit,
    /// so a header alone reserves nothing.
    fn grow(&mut self, extra: usize) {
        let need = self.msg.len() + extra;
        if need <= self.msg.capacity() {
            return;
        }
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let target = self
            .msg
            .capacity()
            .saturating_mul(2)
            .max(MIN_GROWTH)
            .min(limit)
            .max(need);
        self.msg.reserve_exact(target - self.msg.len());
    }
}
