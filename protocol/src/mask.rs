//! Unmasking of client payloads (RFC 6455 §5.3).
//!
//! The key repeats every four bytes, so every kernel receives the key already rotated to the
//! payload's phase and treats its buffer as starting at phase 0; the phase handed back to the
//! caller is plain arithmetic on the length. Vector kernels cover the unaligned head and tail
//! with overlapping unaligned vectors and run on aligned vectors in between: a misaligned vector
//! store that straddles two cache lines costs more than the one extra load and store.

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
        small(buf, key);
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
            Level::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
            }
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    #[inline(always)]
    fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            1 => Level::Scalar,
            2 => Level::Word,
            3 => Level::Sse2,
            4 => Level::Avx2,
            5 => Level::Avx512,
            6 => Level::Neon,
            _ => return None,
        })
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
#[inline]
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
        // SAFETY: the caller guarantees AVX-512F and AVX2 are available.
        Level::Avx512 => unsafe { x86::avx512(buf, key) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the caller guarantees NEON is available.
        Level::Neon => unsafe { neon::neon(buf, key) },
        _ => mask_words(buf, key),
    }
}

/// Payloads below [`SMALL`]: SSE2 is always there on x86_64, so no dispatch is needed.
#[inline(always)]
fn small(buf: &mut [u8], key: [u8; 4]) {
    #[cfg(target_arch = "x86_64")]
    x86::sse2(buf, key);
    #[cfg(not(target_arch = "x86_64"))]
    if buf.len() < 16 {
        mask_tiny(buf, key);
    } else {
        mask_words(buf, key);
    }
}

/// `key` as seen by a payload that starts `by` bytes later.
#[inline(always)]
fn rotate(key: [u8; 4], by: usize) -> [u8; 4] {
    // Little-endian view: byte `b` moves to the lowest position, whatever the host order.
    let bits = (by & 3) as u32 * 8;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
}

/// Word loop from phase 0.
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

/// Below 16 bytes: two overlapping words cover the buffer, both computed from the original bytes
/// before either is stored, so the overlap is masked once.
#[inline(always)]
fn mask_tiny(buf: &mut [u8], key: [u8; 4]) {
    debug_assert!(buf.len() < 16);
    let len = buf.len();
    // A word starting at `len - n` sees the key rotated by `len & 3` for n a multiple of 4.
    let tail_key = rotate(key, len);
    if len >= 8 {
        let k = |k: [u8; 4]| u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
        let word = |b: &[u8]| u64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
        let first = word(buf) ^ k(key);
        let last = word(&buf[len - 8..]) ^ k(tail_key);
        buf[len - 8..].copy_from_slice(&last.to_ne_bytes());
        buf[..8].copy_from_slice(&first.to_ne_bytes());
    } else if len >= 4 {
        let word = |b: &[u8]| u32::from_ne_bytes(b[..4].try_into().expect("4 bytes"));
        let first = word(buf) ^ u32::from_ne_bytes(key);
        let last = word(&buf[len - 4..]) ^ u32::from_ne_bytes(tail_key);
        buf[len - 4..].copy_from_slice(&last.to_ne_bytes());
        buf[..4].copy_from_slice(&first.to_ne_bytes());
    } else {
        for (b, k) in buf.iter_mut().zip(key) {
            *b ^= k;
        }
    }
}

/// One vector width's worth of the operations a kernel needs. Every method requires that the
/// CPU supports the instructions behind the implementing type.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
trait Lanes: Copy {
    /// Bytes per vector, a power of two and a multiple of 4.
    const WIDTH: usize;

    /// The key repeated across a vector.
    ///
    /// # Safety
    /// The CPU supports this type's instructions.
    unsafe fn splat(key: [u8; 4]) -> Self;

    /// XOR of two vectors.
    ///
    /// # Safety
    /// As for `splat`.
    unsafe fn xor(self, other: Self) -> Self;

    /// Loads `WIDTH` bytes at `p`, any alignment.
    ///
    /// # Safety
    /// As for `splat`; `p` is valid for reads of `WIDTH` bytes.
    unsafe fn load(p: *const u8) -> Self;

    /// Stores `WIDTH` bytes at `p`, any alignment.
    ///
    /// # Safety
    /// As for `splat`; `p` is valid for writes of `WIDTH` bytes.
    unsafe fn store(p: *mut u8, v: Self);

    /// XORs the `WIDTH` bytes at `p` with `k` in place.
    ///
    /// # Safety
    /// As for `splat`; `p` is aligned to `WIDTH` and valid for reads and writes of `WIDTH` bytes.
    unsafe fn xor_aligned(p: *mut u8, k: Self);

    /// Masks a buffer shorter than `WIDTH` from phase 0.
    ///
    /// # Safety
    /// As for `splat`.
    unsafe fn short(buf: &mut [u8], key: [u8; 4]);
}

/// The kernel shape shared by every vector width: the first and last vectors are loaded
/// unaligned from the original bytes up front and stored last, so they may overlap the aligned
/// body in between without masking any byte twice; that leaves no scalar head or tail.
///
/// # Safety
/// The CPU supports `V`'s instructions; must be inlined into a function enabling them.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn kernel<V: Lanes>(buf: &mut [u8], key: [u8; 4]) {
    let len = buf.len();
    let w = V::WIDTH;
    if len < w {
        // SAFETY: the caller guarantees the CPU feature.
        return unsafe { V::short(buf, key) };
    }
    let p = buf.as_mut_ptr();
    let head = p.addr().wrapping_neg() & (w - 1);
    // SAFETY: the caller guarantees the CPU feature; `len >= w`, so both `[0, w)` and
    // `[len - w, len)` lie inside `buf`.
    let (first, last, body_key) = unsafe {
        let first = V::load(p).xor(V::splat(key));
        // `len - w` is `len & 3` past a key boundary because `w` is a multiple of 4.
        let last = V::load(p.add(len - w)).xor(V::splat(rotate(key, len)));
        (first, last, V::splat(rotate(key, head)))
    };
    let mut at = head;
    while at + 4 * w <= len {
        // SAFETY: `p + at` is `w`-aligned (`at` is `head` plus multiples of `w`) and the four
        // vectors end at or before `len`.
        unsafe {
            V::xor_aligned(p.add(at), body_key);
            V::xor_aligned(p.add(at + w), body_key);
            V::xor_aligned(p.add(at + 2 * w), body_key);
            V::xor_aligned(p.add(at + 3 * w), body_key);
        }
        at += 4 * w;
    }
    while at + w <= len {
        // SAFETY: as above, for one vector.
        unsafe { V::xor_aligned(p.add(at), body_key) };
        at += w;
    }
    // The body covers `[head, at)` with `head < w` and `at > len - w`, so these two complete
    // the buffer; they were computed from the unmasked bytes, so overlaps get the same values.
    // SAFETY: both ranges were shown in bounds above.
    unsafe {
        V::store(p.add(len - w), last);
        V::store(p, first);
    }
}
