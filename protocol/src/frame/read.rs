//! Frame reading: headers (whole or split across reads), per-header checks and unmasking.
//!
//! The reader knows frames only. Whether an opcode may come next depends on the message being
//! assembled, so the caller passes that in (`open`: a fragmented or split message is open).

use super::header::{Header, OpCode};
use crate::error::ProtocolError;
use crate::mask::apply_mask;

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameState {
    /// Its header.
    pub(super) header: Header,
    /// Payload bytes not read yet.
    pub(super) remaining: u64,
    /// Mask phase of the next payload byte.
    phase: usize,
}

impl FrameState {
    /// Unmasks the next payload bytes in place and counts them as read.
    #[inline]
    pub(super) fn consume(&mut self, chunk: &mut [u8]) {
        if let Some(key) = self.header.mask {
            self.phase = apply_mask(chunk, key, self.phase);
        }
        self.remaining -= chunk.len() as u64;
    }
}

/// Header bytes split across reads, and the frame in progress.
#[derive(Debug, Default)]
pub(super) struct FrameReader {
    /// Header bytes collected so far (a header is at most 14 bytes).
    head: [u8; 14],
    head_len: u8,
    /// The frame whose payload is being read, once its header is complete.
    pub(super) frame: Option<FrameState>,
}

impl FrameReader {
    /// True between frames with no header bytes held.
    #[inline]
    pub(super) fn is_idle(&self) -> bool {
        self.head_len == 0 && self.frame.is_none()
    }

    /// Header bytes held for a header split across reads.
    pub(super) fn held(&self) -> usize {
        usize::from(self.head_len)
    }

    /// Starts reading the payload of `header`.
    pub(super) fn begin(&mut self, header: Header) -> FrameState {
        FrameState {
            header,
            remaining: header.len,
            phase: 0,
        }
    }

    /// The common case in one step: a final, masked, unextended text or binary frame with a
    /// payload under 126 bytes, whole in `input`, unmasked in place. Anything else (or anything
    /// invalid) returns `None` and takes the general path, which applies every check.
    #[inline]
    pub(super) fn small_whole_frame(
        input: &mut [u8],
        max_message_bytes: u64,
    ) -> Option<(Header, usize, usize)> {
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
        if input.len() < 6 + len || len as u64 > max_message_bytes {
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
    /// `input` it took; `Ok(None)` when all of `input` went into a still incomplete header.
    /// `sequence` checks whether the opcode may come now (see [`FrameReader`]).
    pub(super) fn read_header(
        &mut self,
        input: &[u8],
        config: ReadConfig,
        sequence: impl Fn(OpCode, bool) -> Result<(), ProtocolError>,
    ) -> Result<Option<(Header, usize)>, ProtocolError> {
        if self.head_len == 0 {
            // Same checks in the same order as when the header arrives in pieces, so the error
            // never depends on how the input was split.
            if let Some(opcode) = prefix_checks(input, config, &sequence)?
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
        prefix_checks(buffered, config, &sequence)?;
        match Header::parse(buffered, config.allow_rsv1)? {
            Some((h, _)) => {
                self.head_len = 0;
                Ok(Some((h, take)))
            }
            None => Ok(None),
        }
    }
}

/// The decoder settings the reader checks headers against.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadConfig {
    /// RSV1 may be set (permessage-deflate negotiated).
    pub(super) allow_rsv1: bool,
    /// Frames must be masked.
    pub(super) require_mask: bool,
}

/// Fails fast on what the first two bytes can prove, before the rest of the header.
/// Returns the opcode once two bytes were checked.
fn prefix_checks(
    bytes: &[u8],
    config: ReadConfig,
    sequence: &impl Fn(OpCode, bool) -> Result<(), ProtocolError>,
) -> Result<Option<OpCode>, ProtocolError> {
    let Some(&b0) = bytes.first() else {
        return Ok(None);
    };
    let opcode = Header::check_first(b0, config.allow_rsv1)?;
    sequence(opcode, b0 & 0x40 != 0)?;
    if let Some(&b1) = bytes.get(1) {
        Header::check_prefix(b0, b1, config.allow_rsv1)?;
        if config.require_mask && b1 & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        return Ok(Some(opcode));
    }
    Ok(None)
}
