//! x86_64 unmasking kernels: SSE2 (always present), AVX2 and AVX-512F (chosen at run time).

use std::arch::x86_64::*;

use super::{Lanes, kernel, mask_tiny};

#[derive(Clone, Copy)]
struct Sse2(__m128i);

impl Lanes for Sse2 {
    const WIDTH: usize = 16;

    #[inline(always)]
    unsafe fn splat(key: [u8; 4]) -> Self {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        Sse2(unsafe { _mm_set1_epi32(i32::from_ne_bytes(key)) })
    }

    #[inline(always)]
    unsafe fn xor(self, other: Self) -> Self {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        Sse2(unsafe { _mm_xor_si128(self.0, other.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller guarantees `p` is valid for 16 bytes; loadu has no alignment need.
        Sse2(unsafe { _mm_loadu_si128(p.cast()) })
    }

    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        // SAFETY: the caller guarantees `p` is valid for 16 bytes; storeu has no alignment need.
        unsafe { _mm_storeu_si128(p.cast(), v.0) }
    }

    #[inline(always)]
    unsafe fn xor_aligned(p: *mut u8, k: Self) {
        let p = p.cast::<__m128i>();
        // SAFETY: the caller guarantees `p` is 16-aligned and valid for 16 bytes.
        unsafe { _mm_store_si128(p, _mm_xor_si128(_mm_load_si128(p), k.0)) }
    }

    #[inline(always)]
    unsafe fn short(buf: &mut [u8], key: [u8; 4]) {
        mask_tiny(buf, key);
    }
}

#[derive(Clone, Copy)]
struct Avx2(__m256i);

impl Lanes for Avx2 {
    const WIDTH: usize = 32;

    #[inline(always)]
    unsafe fn splat(key: [u8; 4]) -> Self {
        // SAFETY: the caller guarantees AVX2.
        Avx2(unsafe { _mm256_set1_epi32(i32::from_ne_bytes(key)) })
    }

    #[inline(always)]
    unsafe fn xor(self, other: Self) -> Self {
        // SAFETY: the caller guarantees AVX2.
        Avx2(unsafe { _mm256_xor_si256(self.0, other.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller guarantees AVX2 and that `p` is valid for 32 bytes.
        Avx2(unsafe { _mm256_loadu_si256(p.cast()) })
    }

    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        // SAFETY: the caller guarantees AVX2 and that `p` is valid for 32 bytes.
        unsafe { _mm256_storeu_si256(p.cast(), v.0) }
    }

    #[inline(always)]
    unsafe fn xor_aligned(p: *mut u8, k: Self) {
        let p = p.cast::<__m256i>();
        // SAFETY: the caller guarantees AVX2 and a 32-aligned `p` valid for 32 bytes.
        unsafe { _mm256_store_si256(p, _mm256_xor_si256(_mm256_load_si256(p), k.0)) }
    }

    #[inline(always)]
    unsafe fn short(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { kernel::<Sse2>(buf, key) }
    }
}

#[derive(Clone, Copy)]
struct Avx512(__m512i);

impl Lanes for Avx512 {
    const WIDTH: usize = 64;

    #[inline(always)]
    unsafe fn splat(key: [u8; 4]) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Avx512(unsafe { _mm512_set1_epi32(i32::from_ne_bytes(key)) })
    }

    #[inline(always)]
    unsafe fn xor(self, other: Self) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Avx512(unsafe { _mm512_xor_si512(self.0, other.0) })
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller guarantees AVX-512F and that `p` is valid for 64 bytes.
        Avx512(unsafe { _mm512_loadu_si512(p.cast()) })
    }

    #[inline(always)]
    unsafe fn store(p: *mut u8, v: Self) {
        // SAFETY: the caller guarantees AVX-512F and that `p` is valid for 64 bytes.
        unsafe { _mm512_storeu_si512(p.cast(), v.0) }
    }

    #[inline(always)]
    unsafe fn xor_aligned(p: *mut u8, k: Self) {
        let p = p.cast::<__m512i>();
        // SAFETY: the caller guarantees AVX-512F and a 64-aligned `p` valid for 64 bytes.
        unsafe { _mm512_store_si512(p, _mm512_xor_si512(_mm512_load_si512(p), k.0)) }
    }

    #[inline(always)]
    unsafe fn short(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: the AVX-512 level is only selected together with AVX2.
        unsafe { kernel::<Avx2>(buf, key) }
    }
}

/// Masks `buf` from phase 0 with 16-byte vectors.
#[inline(always)]
pub(super) fn sse2(buf: &mut [u8], key: [u8; 4]) {
    // SAFETY: SSE2 is part of the x86_64 baseline.
    unsafe { kernel::<Sse2>(buf, key) }
}

/// Masks `buf` from phase 0 with 32-byte vectors.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2(buf: &mut [u8], key: [u8; 4]) {
    // SAFETY: AVX2 is enabled for this function and guaranteed by the caller.
    unsafe { kernel::<Avx2>(buf, key) }
}

/// Masks `buf` from phase 0 with 64-byte vectors.
///
/// # Safety
/// The CPU supports AVX-512F and AVX2.
#[target_feature(enable = "avx512f,avx2")]
pub(super) unsafe fn avx512(buf: &mut [u8], key: [u8; 4]) {
    // SAFETY: both features are enabled for this function and guaranteed by the caller.
    unsafe { kernel::<Avx512>(buf, key) }
}
