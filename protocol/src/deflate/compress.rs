//! Compressing a message once for every receiver.
//!
//! Every answer we give says `server_no_context_takeover` (see `negotiate`), so a message is
//! compressed on its own, from a reset stream, and the result is the same bytes for every
//! connection whose negotiated window is at least the one it was made with. A worker keeps one
//! zlib stream per window size in use (created on first use; zlib-rs at level 1 measured 380 KB
//! at window bits 15, 251 KB at 9: tests/deflate_bomb.rs), not one per connection: the server compresses a batch's message once per form and
//! shares the frame like today's encoded frame.

use std::sync::Arc;

use flate2::{Compress, Compression, FlushCompress};

use super::inflate::TAIL;
use super::negotiate::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};
use crate::frame::{OpCode, shared_frame_rsv1};

/// How a worker compresses outgoing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressConfig {
    /// zlib level, 0..=9 (0 stores; 1 is fastest; 6 is zlib's default). See the `deflate`
    /// bench for level 1 against 6 on chat-sized JSON.
    pub level: u32,
    /// Messages shorter than this go out uncompressed: deflate's block overhead and the CPU
    /// are not worth it on them (a 60-byte message rarely shrinks).
    pub min_size: usize,
}

impl Default for CompressConfig {
    fn default() -> Self {
        CompressConfig {
            level: 1,
            min_size: 256,
        }
    }
}

/// One raw-deflate stream with a fixed level and window, reset before each message.
pub struct Compressor {
    z: Compress,
    window_bits: u8,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor at `level` (clamped to 0..=9) with a window of `window_bits` (clamped to
    /// 9..=15).
    pub fn new(level: u32, window_bits: u8) -> Self {
        let window_bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        Compressor {
            z: Compress::new_with_window_bits(Compression::new(level.min(9)), false, window_bits),
            window_bits,
        }
    }

    /// The window (base-2 log) its output needs: valid for receivers that negotiated at least
    /// this much.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Appends the permessage-deflate payload of one whole message to `out`: raw deflate,
    /// sync-flushed, with the trailing `00 00 ff ff` removed (RFC 7692 §7.2.1). It refers to no
    /// earlier message, so any receiver can inflate it alone.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.z.reset();
        let base = out.len();
        // Worst case of deflate is a little over the input (stored blocks: 5 bytes per 16 KiB).
        out.reserve(payload.len() + payload.len() / 1000 + 64);
        let mut input = payload;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity() - base + 64);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(input, out, FlushCompress::Sync)
                .expect("deflate of a reset stream with room to write cannot fail");
            input = &input[(self.z.total_in() - before) as usize..];
            // Done when all input went in and the flush did not run out of room.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        debug_assert!(out[base..].ends_with(&TAIL));
        if out[base..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
    }
}

/// The compressors of one worker, one per window size in use, and the size below which a
/// message is sent as it is.
#[derive(Debug)]
pub struct Deflater {
    config: CompressConfig,
    /// Index `bits - MIN_WINDOW_BITS`; created on first use.
    streams: [Option<Compressor>; (MAX_WINDOW_BITS - MIN_WINDOW_BITS + 1) as usize],
}

impl Deflater {
    /// No stream allocated yet.
    pub fn new(config: CompressConfig) -> Self {
        Deflater {
            config,
            streams: Default::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &CompressConfig {
        &self.config
    }

    /// Whether a message of `len` bytes is worth compressing at all.
    pub fn worth_compressing(&self, len: usize) -> bool {
        len >= self.config.min_size
    }

    /// The compressed payload of one message for receivers that negotiated `window_bits` (or
    /// more), or `None` when the message should go out uncompressed: shorter than
    /// `min_size`, or not smaller once compressed. Call it once per message and form, and send
    /// the result to every such receiver.
    pub fn compress(&mut self, window_bits: u8, payload: &[u8]) -> Option<Vec<u8>> {
        if !self.worth_compressing(payload.len()) {
            return None;
        }
        let mut out = Vec::new();
        self.compressor(window_bits).compress(payload, &mut out);
        (out.len() < payload.len()).then_some(out)
    }

    /// [`Deflater::compress`] framed once: an unmasked final frame with RSV1 set, shared by
    /// every receiver of that form. `None` means: send the plain frame.
    pub fn compressed_frame(
        &mut self,
        window_bits: u8,
        opcode: OpCode,
        payload: &[u8],
    ) -> Option<Arc<[u8]>> {
        let compressed = self.compress(window_bits, payload)?;
        Some(shared_frame_rsv1(opcode, &compressed))
    }

    /// The compressor for `window_bits` (clamped to 9..=15), created on first use.
    pub fn compressor(&mut self, window_bits: u8) -> &mut Compressor {
        let bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        let level = self.config.level;
        self.streams[usize::from(bits - MIN_WINDOW_BITS)]
            .get_or_insert_with(|| Compressor::new(level, bits))
    }
}
