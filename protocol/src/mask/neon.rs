//! aarch64 unmasking kernel on 16-byte NEON vectors.

use std::arch::aarch64::*;

use super::{Lanes, kernel, mask_tiny};

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
    unsafe fn xor(self, other: Self) -> Self {
        // SAFETY: the caller guarantees NEON.
        Neon(unsafe { veorq_u8(self.0, other.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller guarantees NEON and that `p` is valid for 16 bytes; NEON loads
        // have no alignment need.
        Neon(unsafe { vld1q_u8(p) })
    }

    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        // SAFETY: the caller guarantees NEON and that `p` is valid for 16 bytes.
        unsafe { vst1q_u8(p, v.0) }
    }

    #[inline(always)]
    unsafe fn xor_aligned(p: *mut u8, k: Self) {
        // SAFETY: the caller guarantees NEON and that `p` is valid for 16 bytes.
        unsafe { vst1q_u8(p, veorq_u8(vld1q_u8(p), k.0)) }
    }

    #[inline(always)]
    unsafe fn short(buf: &mut [u8], key: [u8; 4]) {
        mask_tiny(buf, key);
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
