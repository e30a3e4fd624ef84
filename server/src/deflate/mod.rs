//! permessage-deflate in the server (RFC 7692, docs/compression.md): the upgrade's negotiation,
//! the worker's one inflater and one set of compressors, and the process's counters.
//!
//! Per-connection state is none beyond a flag: every answer says `server_no_context_takeover`
//! and `client_no_context_takeover` (`ringcast_protocol::deflate::negotiate`), so a worker
//! inflates every connection's messages with one inflater reset per message, and compresses a
//! batch's message once for every receiver (`form`). Both live in a thread-local of the worker
//! thread: they are the worker's, like its ring, and the fan-out builds a batch's compressed
//! form lazily from `FrozenBatch::form`, where no worker state is passed in.

mod form;
pub mod replay;
pub mod reply;
mod stats;

use std::borrow::Cow;
use std::cell::RefCell;

use ringcast_protocol::ProtocolError;
use ringcast_protocol::deflate::{
    CompressConfig, DeflateConfig, Deflater, Inflater, MAX_WINDOW_BITS, Negotiated,
};
use ringcast_protocol::frame::MessageKind;
use ringcast_protocol::handshake::Upgrade;

use crate::config::{Config, Switch};

pub use form::compress_form;
pub use stats::{STATS, render};

/// The codec state of one worker thread.
struct Codec {
    /// Created on the first compressed message received (47.5 KB), so a worker that never
    /// gets one never pays for it.
    inflater: Option<Inflater>,
    /// One zlib stream per window size, each created on first use (380 KB at level 1).
    deflater: Deflater,
}

thread_local! {
    static CODEC: RefCell<Codec> = RefCell::new(Codec {
        inflater: None,
        deflater: Deflater::new(CompressConfig::default()),
    });
}

/// What `--compression-level` and `--compression-min-size` make of a compressor.
pub fn compress_config(config: &Config) -> CompressConfig {
    CompressConfig {
        level: config.compression_level,
        min_size: config.compression_min_size,
    }
}

/// Sets this worker thread's compression settings (`Worker::new`, on the worker's thread).
pub fn install(config: CompressConfig) {
    CODEC.with(|c| c.borrow_mut().deflater = Deflater::new(config));
}

/// The upgrade's answer to a client's `Sec-WebSocket-Extensions` offers: the negotiated
/// extension, or `None` with `--compression off` or when no offer can be honoured (then the
/// connection opens without it; a declined offer never fails the handshake). Every upgrade
/// path (room mode, JSON pub/sub, other dialects) calls this and, on `Some(n)`, answers
/// `n.response()` (`render_accept_with_extensions`), builds its decoder with
/// `n.decoder_config(..)` and joins rooms with [`deflate_class`].
pub fn negotiate(config: &Config, up: &Upgrade<'_>) -> Option<Negotiated> {
    if config.compression == Switch::Off {
        return None;
    }
    up.negotiate_deflate(&DeflateConfig::default())
}

/// Whether a connection gets the shared compressed form of batches: it negotiated the
/// extension with the full 32 KiB window the shared form is made with. A client that asked
/// for a smaller `server_max_window_bits` gets plain frames, which RFC 7692 always allows.
pub fn deflate_class(negotiated: Option<&Negotiated>) -> bool {
    negotiated.is_some_and(|n| n.server_max_window_bits == MAX_WINDOW_BITS)
}

/// A received message's payload, inflated when it was `compressed` (RSV1) with the worker's
/// inflater, capped by `max_message_bytes` (1009 as soon as it is exceeded), text checked as
/// UTF-8 while inflating (1007); invalid deflate data is 1007 (RFC 7692 §8: "fail the
/// connection"). Failures are counted.
pub fn inflated<'p>(
    payload: Cow<'p, [u8]>,
    compressed: bool,
    kind: MessageKind,
    max_message_bytes: u64,
) -> Result<Cow<'p, [u8]>, ProtocolError> {
    if !compressed {
        return Ok(payload);
    }
    let mut out = Vec::new();
    let result = CODEC.with(|c| {
        let mut c = c.borrow_mut();
        let inflater = c.inflater.get_or_insert_with(Inflater::new);
        inflater.inflate(&payload, kind, max_message_bytes, &mut out)
    });
    STATS.inflated(payload.len(), out.len(), result.is_ok());
    result.map(|()| Cow::Owned(out))
}

/// Runs `f` with this worker's compressors.
fn with_deflater<R>(f: impl FnOnce(&mut Deflater) -> R) -> R {
    CODEC.with(|c| f(&mut c.borrow_mut().deflater))
}
