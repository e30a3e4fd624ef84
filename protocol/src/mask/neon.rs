//! aarch64 unmasking kernel on 16-byte NEON vectors.

use std::arch::aarch64::*;

use super::{Lanes, kernel};

#[derive(Clone, Copy)]
struct Neon(uint8x16_t);

impl Lanes for Neon {
    const WIDTH: usize = 16;

    #[inline(always)]
    unsafe fn splat(key: [u8; 4]) -> Self {
        // SAFETY: the caller guarantees NEON.
        Neon(unsafe { vreinterpretq_u8_u32(vdupq_n_u32(u32::from_ne_bytes(key))) })
    }

    #[inline(always)]
    unsafe fn xor_at(p: *mut u8, k: Self) {
        // SAFETY: the caller guarantees NEON and that `p` is valid for 16 bytes.
        unsafe { vst1q_u8(p, veorq_u8(vld1q_u8(p), k.0)) }
    }
}

/// Masks `buf` from phase 0 with NEON vectors.
///
/// # Safety
/// The CPU supports NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn neon(buf: &mut [u8], key: [u8; 4]) {
    // SAFETY: NEON is enabled for this function and guaranteed by the caller.
    unsafe { kernel::<Neon>(buf, key) }
}
