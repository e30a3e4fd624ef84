//! Unmasking of client payloads (RFC 6455 §5.3).
//!
//! The key repeats every four bytes, so every kernel receives the key already rotated to the
//! payload's phase and treats its buffer as starting at phase 0; the phase handed back to the
//! caller is plain arithmetic on the length. Vector kernels process an unaligned head with the
//! word loop, then run on aligned vectors: a misaligned vector store that straddles two cache
//! lines costs more than the few scalar head bytes.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Below this length a vector kernel would spend its time on head and tail bytes; the inline
/// word loop is cheaper than even the dispatch.
const SMALL: usize = 32;

/// Applies `key` to `buf` in place, starting at key phase `phase` (0..4); returns the phase the
/// next byte of the same payload starts at.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) -> usize {
    let next = (phase + buf.len()) & 3;
    let key = rotate(key, phase);
    if buf.len() < SMALL {
        mask_words(buf, key);
    } else {
        // SAFETY: `best` only returns levels the running CPU was detected to support.
        unsafe { run(best(), buf, key) };
    }
    next
}

/// Byte-at-a-time reference implementation every SIMD path is tested against.
pub fn apply_mask_scalar(buf: &mut [u8], key: [u8; 4], phase: usize) -> usize {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(phase + i) & 3];
    }
    (phase + buf.len()) & 3
}

/// Eight bytes at a time, the way most WebSocket libraries unmask; kept as a benchmark baseline
/// and as the kernel on targets without a vector path.
pub fn apply_mask_word(buf: &mut [u8], key: [u8; 4], phase: usize) -> usize {
    mask_words(buf, rotate(key, phase));
    (phase + buf.len()) & 3
}

/// An unmasking implementation, for tests and benchmarks that must pin one down.
#[doc(hidden)]
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// [`apply_mask_scalar`].
    Scalar = 1,
    /// [`apply_mask_word`].
    Word = 2,
    /// 16-byte SSE2 vectors (x86_64 baseline).
    Sse2 = 3,
    /// 32-byte AVX2 vectors.
    Avx2 = 4,
    /// 64-byte AVX-512F vectors.
    Avx512 = 5,
    /// 16-byte NEON vectors (aarch64).
    Neon = 6,
}

impl Level {
    /// Every level, supported or not.
    pub const ALL: [Level; 6] = [
        Level::Scalar,
        Level::Word,
        Level::Sse2,
        Level::Avx2,
        Level::Avx512,
        Level::Neon,
    ];

    /// Whether this build and the running CPU can execute the level.
    pub fn is_supported(self) -> bool {
        match self {
            Level::Scalar | Level::Word => true,
            #[cfg(target_arch = "x86_64")]
            Level::Sse2 => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    fn from_u8(v: u8) -> Option<Level> {
        Level::ALL.into_iter().find(|l| *l as u8 == v)
    }
}

/// Like [`apply_mask`], but with the implementation chosen by the caller.
///
/// # Panics
/// If `level` is not supported on this CPU.
#[doc(hidden)]
pub fn apply_mask_with(level: Level, buf: &mut [u8], key: [u8; 4], phase: usize) -> usize {
    assert!(level.is_supported(), "{level:?} is not supported here");
    let next = (phase + buf.len()) & 3;
    // SAFETY: support was asserted just above.
    unsafe { run(level, buf, rotate(key, phase)) };
    next
}

/// The level [`apply_mask`] uses for payloads of at least [`SMALL`] bytes.
#[doc(hidden)]
pub fn best() -> Level {
    // 0 means "not detected yet"; detection is idempotent, so racing threads are harmless.
    static BEST: AtomicU8 = AtomicU8::new(0);
    if let Some(level) = Level::from_u8(BEST.load(Ordering::Relaxed)) {
        return level;
    }
    let level = [Level::Avx512, Level::Avx2, Level::Sse2, Level::Neon]
        .into_iter()
        .find(|l| l.is_supported())
        .unwrap_or(Level::Word);
    BEST.store(level as u8, Ordering::Relaxed);
    level
}

/// Masks `buf` from phase 0 with an already rotated `key`.
///
/// # Safety
/// `level.is_supported()` must hold.
unsafe fn run(level: Level, buf: &mut [u8], key: [u8; 4]) {
    match level {
        Level::Scalar => {
            apply_mask_scalar(buf, key, 0);
        }
        #[cfg(target_arch = "x86_64")]
        Level::Sse2 => x86::sse2(buf, key),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX2 is available.
        Level::Avx2 => unsafe { x86::avx2(buf, key) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller guarantees AVX-512F is available.
        Level::Avx512 => unsafe { x86::avx512(buf, key) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the caller guarantees NEON is available.
        Level::Neon => unsafe { neon::neon(buf, key) },
        _ => mask_words(buf, key),
    }
}

/// `key` as seen by a payload that starts `by` bytes later.
#[inline(always)]
fn rotate(key: [u8; 4], by: usize) -> [u8; 4] {
    let b = by & 3;
    [key[b], key[(b + 1) & 3], key[(b + 2) & 3], key[(b + 3) & 3]]
}

/// Word loop from phase 0; also the head and tail of every vector kernel, where inlining into a
/// `#[target_feature]` caller lets the compiler widen it further.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let k = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ k;
        w.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in words
        .into_remainder()
        .iter_mut()
        .zip(key.into_iter().cycle())
    {
        *b ^= k;
    }
}

/// One vector width's worth of the operations a kernel needs.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
trait Lanes: Copy {
    /// Bytes per vector, a power of two and a multiple of 4.
    const WIDTH: usize;

    /// The key repeated across a vector.
    ///
    /// # Safety
    /// The CPU supports the instructions behind this type.
    unsafe fn splat(key: [u8; 4]) -> Self;

    /// XORs the `WIDTH` bytes at `p` with `k`.
    ///
    /// # Safety
    /// As for `splat`; also `p` is aligned to `WIDTH` and valid for reads and writes of `WIDTH`
    /// bytes.
    unsafe fn xor_at(p: *mut u8, k: Self);
}

/// The kernel shape shared by every vector width: word-loop head up to alignment, four vectors
/// per iteration, single vectors, word-loop tail.
///
/// # Safety
/// The CPU supports `V`'s instructions; must be inlined into a function enabling them.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn kernel<V: Lanes>(buf: &mut [u8], key: [u8; 4]) {
    let head = (buf.as_ptr().addr().wrapping_neg() & (V::WIDTH - 1)).min(buf.len());
    let (head_bytes, body) = buf.split_at_mut(head);
    mask_words(head_bytes, key);
    let key = rotate(key, head);
    // SAFETY: the caller guarantees the CPU feature.
    let k = unsafe { V::splat(key) };
    let mut blocks = body.chunks_exact_mut(4 * V::WIDTH);
    for block in &mut blocks {
        let p = block.as_mut_ptr();
        // SAFETY: `body` starts `WIDTH`-aligned and blocks are multiples of `WIDTH`, so each
        // `p + i * WIDTH` is aligned and inside the `4 * WIDTH` bytes of `block`.
        unsafe {
            V::xor_at(p, k);
            V::xor_at(p.add(V::WIDTH), k);
            V::xor_at(p.add(2 * V::WIDTH), k);
            V::xor_at(p.add(3 * V::WIDTH), k);
        }
    }
    let mut vectors = blocks.into_remainder().chunks_exact_mut(V::WIDTH);
    for v in &mut vectors {
        // SAFETY: still on a multiple of `WIDTH` from the aligned start of `body`, and `v`
        // holds exactly `WIDTH` bytes.
        unsafe { V::xor_at(v.as_mut_ptr(), k) };
    }
    // Whole vectors are multiples of 4 bytes, so the tail starts at the body's phase.
    mask_words(vectors.into_remainder(), key);
}
