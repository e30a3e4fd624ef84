//! Frames for one connection that negotiated permessage-deflate (replies, errors, presence
//! snapshots; history replays through `replay`'s cache): a message at least `--compression-min-size` long is compressed
//! with the worker's shared compressor, on its own (no context takeover), so no connection
//! keeps compressor state; shorter ones, and ones that do not get smaller, stay plain.

use ringcast_protocol::deflate::{Deflater, MAX_WINDOW_BITS};
use ringcast_protocol::frame::{Header, OpCode, encode_compressed_frame, encode_frame};

use super::{STATS, with_deflater};

/// Appends `payload` to `out` as one compressed frame (RSV1) when it is worth it, and returns
/// whether it did; `scratch` holds the compressed bytes meanwhile.
fn push_compressed(
    deflater: &mut Deflater,
    out: &mut Vec<u8>,
    opcode: OpCode,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> bool {
    if !deflater.worth_compressing(payload.len()) {
        return false;
    }
    scratch.clear();
    (deflater.compressor(MAX_WINDOW_BITS)).compress(payload, scratch);
    if scratch.len() >= payload.len() {
        return false;
    }
    STATS.compressed(payload.len(), scratch.len());
    encode_compressed_frame(out, opcode, scratch);
    true
}

/// Appends `payload` to `out` as one frame, compressed when long enough.
pub fn encode(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let mut scratch = Vec::new();
    let done = with_deflater(|d| push_compressed(d, out, opcode, payload, &mut scratch));
    if !done {
        encode_frame(out, opcode, payload);
    }
}

/// Appends `frame` (encoded, unmasked, FIN set) to `out`, compressed when worth it (returns
/// `true`), otherwise as it is.
pub(super) fn recode_one(
    deflater: &mut Deflater,
    out: &mut Vec<u8>,
    frame: &[u8],
    scratch: &mut Vec<u8>,
) -> bool {
    let done = match Header::parse(frame, false).ok().flatten() {
        Some((h, len)) => push_compressed(deflater, out, h.opcode, &frame[len..], scratch),
        None => false,
    };
    if !done {
        out.extend_from_slice(frame);
    }
    done
}

#[cfg(test)]
mod tests {
    use ringcast_protocol::deflate::Inflater;
    use ringcast_protocol::frame::MessageKind;

    use super::*;

    #[test]
    fn long_replies_are_compressed_and_short_ones_plain() {
        let long = "{\"op\":\"presence\",\"topic\":\"lobby\"} ".repeat(20);
        let mut out = Vec::new();
        encode(&mut out, OpCode::Text, long.as_bytes());
        let (h, len) = Header::parse(&out, true).ok().flatten().expect("header");
        assert!(h.rsv1 && h.fin && out.len() < long.len() / 2);
        let mut inflated = Vec::new();
        (Inflater::new())
            .inflate(&out[len..], MessageKind::Text, 1 << 20, &mut inflated)
            .expect("inflates");
        assert_eq!(inflated, long.as_bytes());
        let mut short = Vec::new();
        encode(&mut short, OpCode::Text, b"short");
        assert_eq!(short, b"\x81\x05short");
    }
}
