//! Frame encoding into a caller's buffer, and encode-once frames shared by many receivers.

use std::sync::Arc;

use super::header::OpCode;
use crate::close::CloseCode;
use crate::mask::apply_mask;

/// Longest header a server writes (2 + 8 length bytes, no mask).
pub const MAX_HEADER_LEN: usize = 10;

/// Writes an unmasked header into `out` and returns its length.
pub fn encode_header(
    out: &mut [u8; MAX_HEADER_LEN],
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    len: u64,
) -> usize {
    out[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.as_u8();
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u64::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        10
    }
}

/// Appends one complete unmasked (server) frame with FIN set.
pub fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut head, opcode, true, false, payload.len() as u64);
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
}

/// Appends a Close frame with `code` and `reason`; the reason is cut at a character boundary so
/// the payload stays within the 125 bytes a control frame may carry.
pub fn encode_close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0u8; 125];
    payload[..2].copy_from_slice(&code.0.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    encode_frame(out, OpCode::Close, &payload[..2 + end]);
}

/// Appends one complete unmasked (server) frame with FIN and RSV1 set: a message compressed
/// with permessage-deflate (`crate::deflate`).
pub fn encode_compressed_frame(out: &mut Vec<u8>, opcode: OpCode, compressed: &[u8]) {
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut head, opcode, true, true, compressed.len() as u64);
    out.reserve(n + compressed.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(compressed);
}

/// Encodes a message once into an immutable, reference-counted frame that any number of
/// connections on any thread can send without copying it.
pub fn shared_frame(opcode: OpCode, payload: &[u8]) -> Arc<[u8]> {
    shared_frame_with(opcode, false, payload)
}

/// [`shared_frame`] with RSV1 set: a message compressed with permessage-deflate, once for every
/// receiver that negotiated it (`crate::deflate::Deflater::compressed_frame`).
pub fn shared_frame_rsv1(opcode: OpCode, compressed: &[u8]) -> Arc<[u8]> {
    shared_frame_with(opcode, true, compressed)
}

fn shared_frame_with(opcode: OpCode, rsv1: bool, payload: &[u8]) -> Arc<[u8]> {
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut head, opcode, true, rsv1, payload.len() as u64);
    let mut frame = Arc::<[u8]>::new_uninit_slice(n + payload.len());
    let dst = Arc::get_mut(&mut frame).expect("a new Arc is unique");
    let ptr = dst.as_mut_ptr().cast::<u8>();
    // SAFETY: `dst` has exactly n + payload.len() bytes; the two copies fill [0, n) and
    // [n, n + payload.len()) from sources that cannot overlap a fresh allocation.
    unsafe {
        std::ptr::copy_nonoverlapping(head.as_ptr(), ptr, n);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), ptr.add(n), payload.len());
    }
    // SAFETY: every byte was written just above.
    unsafe { frame.assume_init() }
}

/// Appends a masked (client) frame: for clients, tests and the load generator.
pub fn encode_masked_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    key: [u8; 4],
) {
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut head, opcode, fin, false, payload.len() as u64);
    head[1] |= 0x80;
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}
