//! Unmasking of client payloads (RFC 6455 §5.3).

/// Applies `key` to `buf` in place, starting at key phase `phase` (0..4); returns the phase the
/// next byte of the same payload starts at.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) -> usize {
    apply_mask_scalar(buf, key, phase)
}

/// Byte-at-a-time reference implementation every SIMD path is tested against.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], phase: usize) -> usize {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(phase + i) & 3];
    }
    (phase + buf.len()) & 3
}
