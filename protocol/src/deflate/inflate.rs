//! Inflating received messages with bounded memory: one inflater per worker, reset per message.
//!
//! Every connection that negotiated permessage-deflate was asked for
//! `client_no_context_takeover` (see `negotiate`), so no message refers back to an earlier one
//! and one inflater (a 32 KiB window plus zlib-rs state, 47.5 KB measured) serves every connection
//! of a worker. The output grows by doubling and never past the message limit plus one byte:
//! inflating stops as soon as the limit is crossed, so a bomb (a few KiB inflating to gigabytes)
//! costs at most the limit in memory and the time to inflate that much
//! (docs/limits.md#messages).

use flate2::{Decompress, FlushDecompress, Status};

use super::negotiate::MAX_WINDOW_BITS;
use crate::error::ProtocolError;
use crate::frame::MessageKind;
use crate::utf8::Utf8Validator;

/// The empty stored block a sender strips from each compressed message and the receiver
/// appends before inflating (RFC 7692 §7.2.2).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Smallest first allocation of the output; below it, doubling would reallocate for nothing.
const MIN_OUTPUT: usize = 256;

/// A raw-deflate inflater shared by the connections of one worker (one message at a time).
pub struct Inflater {
    z: Decompress,
    utf8: Utf8Validator,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// An inflater with the largest window RFC 7692 allows, so it reads what any client sends.
    pub fn new() -> Self {
        Inflater {
            z: Decompress::new_with_window_bits(false, MAX_WINDOW_BITS),
            utf8: Utf8Validator::new(),
        }
    }

    /// Inflates one message's payload (as received, RSV1 set on its first frame, without the
    /// tail that the sender stripped) and appends it to `out`.
    ///
    /// Fails with [`ProtocolError::MessageTooBig`] (close 1009) as soon as more than
    /// `max_message_bytes` come out, with [`ProtocolError::InvalidDeflate`] (1007) on data
    /// that is not deflate or refers to an earlier message, and for text with
    /// [`ProtocolError::InvalidUtf8`] (1007) as soon as the output can no longer be UTF-8. On an
    /// error `out` holds a prefix of the output; the inflater is ready for the next message
    /// either way.
    pub fn inflate(
        &mut self,
        payload: &[u8],
        kind: MessageKind,
        max_message_bytes: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        self.z.reset(false);
        self.utf8.reset();
        let result = self.run(payload, kind == MessageKind::Text, max_message_bytes, out);
        // Back to a clean state now, so no message's window lingers between messages.
        self.z.reset(false);
        result
    }

    fn run(
        &mut self,
        payload: &[u8],
        text: bool,
        max_message_bytes: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let base = out.len();
        let limit = usize::try_from(max_message_bytes).unwrap_or(usize::MAX);
        // One byte over the limit is how an oversized message shows itself.
        let cap = base.saturating_add(limit).saturating_add(1);
        let too_big = ProtocolError::MessageTooBig {
            size: max_message_bytes.saturating_add(1),
            limit: max_message_bytes,
        };
        let mut inputs = [payload, &TAIL[..]];
        let mut current = 0;
        loop {
            if out.len() == out.capacity() {
                if out.capacity() >= cap {
                    return Err(too_big);
                }
                let want = out
                    .capacity()
                    .saturating_mul(2)
                    .max(base + MIN_OUTPUT.max(payload.len().saturating_mul(4)))
                    .min(cap);
                out.reserve_exact(want - out.len());
            }
            let input = inputs[current];
            let before_in = self.z.total_in();
            let produced_from = out.len();
            let status = self
                .z
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidDeflate)?;
            let used = (self.z.total_in() - before_in) as usize;
            inputs[current] = &input[used..];
            if text {
                self.utf8
                    .feed(&out[produced_from..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if out.len() - base > limit {
                return Err(too_big);
            }
            if status == Status::StreamEnd {
                // A final block (BFINAL): what follows, the tail included, is not deflate data.
                break;
            }
            if inputs[current].is_empty() {
                if current == 0 {
                    current = 1;
                    continue;
                }
                if out.len() < out.capacity() {
                    // All input taken and room left: nothing more will come out.
                    break;
                }
            } else if out.len() < out.capacity() && used == 0 && out.len() == produced_from {
                // No progress with input and room: zlib wants something it will never get.
                return Err(ProtocolError::InvalidDeflate);
            }
        }
        if text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }
}
