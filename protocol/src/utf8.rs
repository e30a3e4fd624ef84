//! Streaming UTF-8 validation of text messages split anywhere.
//!
//! RFC 6455 §8.1 wants an endpoint to fail the connection as soon as text stops being valid
//! UTF-8, even mid-message. Each chunk goes to simdutf8 in one call up to the last code point
//! boundary; only a code point cut by the chunk's end (at most 3 bytes) is carried over, checked
//! byte by byte on arrival, so an impossible prefix such as `F4 90` fails right away.

use thiserror::Error;

/// The bytes seen so far can no longer be the start of valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid UTF-8 in text payload")]
pub struct Utf8Error;

/// Validates a text message chunk by chunk, carrying an incomplete code point across chunks.
///
/// After an error every further `feed` fails too, until `finish` or `reset` starts a new message.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// Bytes of a code point cut by the end of the last chunk, lead byte first.
    partial: [u8; 4],
    partial_len: u8,
    failed: bool,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any carried bytes and any error so the validator can start a new message.
    pub fn reset(&mut self) {
        self.partial_len = 0;
        self.failed = false;
    }

    /// Feeds the next chunk; fails as soon as the bytes seen cannot be a prefix of valid UTF-8.
    #[inline]
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Utf8Error> {
        if self.failed {
            return Err(Utf8Error);
        }
        let result = self.feed_inner(chunk);
        self.failed = result.is_err();
        result
    }

    fn feed_inner(&mut self, mut chunk: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len != 0 {
            chunk = match self.continue_partial(chunk)? {
                Some(rest) => rest,
                None => return Ok(()),
            };
        }
        // simdutf8 has a fixed cost per call that shows on short ASCII chunks; an ASCII prefix
        // ends on a code point boundary and needs no further checking.
        chunk = &chunk[ascii_prefix_len(chunk)..];
        if chunk.is_empty() {
            return Ok(());
        }
        let split = cut_code_point_start(chunk);
        let (whole, cut) = chunk.split_at(split);
        // `whole` starts and ends on code point boundaries, so it must be complete UTF-8.
        simdutf8::basic::from_utf8(whole).map_err(|_| Utf8Error)?;
        if !cut.is_empty() {
            if !is_open_prefix(cut) {
                return Err(Utf8Error);
            }
            self.partial[..cut.len()].copy_from_slice(cut);
            self.partial_len = cut.len() as u8;
        }
        Ok(())
    }

    /// Adds the start of `chunk` to the carried code point; returns the rest of `chunk` once the
    /// code point is complete, `None` if `chunk` ran out first.
    fn continue_partial<'a>(&mut self, chunk: &'a [u8]) -> Result<Option<&'a [u8]>, Utf8Error> {
        let have = usize::from(self.partial_len);
        let lead = self.partial[0];
        let need = sequence_len(lead) - have;
        let take = need.min(chunk.len());
        for (pos, &b) in (have..).zip(&chunk[..take]) {
            let ok = if pos == 1 {
                second_byte_ok(lead, b)
            } else {
                is_continuation(b)
            };
            if !ok {
                return Err(Utf8Error);
            }
            self.partial[pos] = b;
        }
        if take < need {
            self.partial_len = (have + take) as u8;
            return Ok(None);
        }
        self.partial_len = 0;
        Ok(Some(&chunk[take..]))
    }

    /// Ends the message: fails if it stopped inside a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let bad = self.failed || self.partial_len != 0;
        self.reset();
        if bad { Err(Utf8Error) } else { Ok(()) }
    }
}

/// Validates a complete buffer (close reasons, unfragmented text).
pub fn validate(bytes: &[u8]) -> Result<(), Utf8Error> {
    simdutf8::basic::from_utf8(bytes)
        .map(|_| ())
        .map_err(|_| Utf8Error)
}

/// Length of a prefix of `bytes` that is all ASCII, counted in whole 64-byte blocks (a fast
/// under-estimate: the rest is left to simdutf8).
#[inline]
fn ascii_prefix_len(bytes: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() >= 128 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { ascii_prefix_len_avx2(bytes) };
    }
    ascii_prefix_len_64(bytes)
}

/// Twice the width of the baseline loop: at the baseline width, ASCII scanning alone fell short
/// of simdutf8's own AVX2 pace.
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ascii_prefix_len_avx2(bytes: &[u8]) -> usize {
    use std::arch::x86_64::*;
    let mut len = 0;
    for block in bytes.chunks_exact(128) {
        let p = block.as_ptr().cast::<__m256i>();
        // SAFETY: AVX2 is enabled here; the four unaligned 32-byte loads stay inside `block`.
        let high = unsafe {
            let any = _mm256_or_si256(
                _mm256_or_si256(_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))),
                _mm256_or_si256(_mm256_loadu_si256(p.add(2)), _mm256_loadu_si256(p.add(3))),
            );
            _mm256_movemask_epi8(any)
        };
        if high != 0 {
            return len;
        }
        len += 128;
    }
    len + ascii_prefix_len_64(&bytes[len..])
}

#[inline(always)]
fn ascii_prefix_len_64(bytes: &[u8]) -> usize {
    let mut blocks = bytes.chunks_exact(64);
    let mut len = 0;
    for block in &mut blocks {
        if !block_is_ascii(block.try_into().expect("64 bytes")) {
            return len;
        }
        len += 64;
    }
    if blocks.remainder().is_ascii() {
        bytes.len()
    } else {
        len
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block_is_ascii(block: &[u8; 64]) -> bool {
    use std::arch::x86_64::*;
    let p = block.as_ptr().cast::<__m128i>();
    // SAFETY: SSE2 is part of the x86_64 baseline; the four unaligned 16-byte loads stay inside
    // the 64-byte array.
    unsafe {
        let any = _mm_or_si128(
            _mm_or_si128(_mm_loadu_si128(p), _mm_loadu_si128(p.add(1))),
            _mm_or_si128(_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3))),
        );
        _mm_movemask_epi8(any) == 0
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn block_is_ascii(block: &[u8; 64]) -> bool {
    let mut any = 0u64;
    for word in block.chunks_exact(8) {
        any |= u64::from_ne_bytes(word.try_into().expect("8 bytes"));
    }
    any & 0x8080_8080_8080_8080 == 0
}

/// Bytes in the sequence `lead` starts, 0 if it cannot start one (continuation bytes,
/// the overlong leads C0/C1 and F5..FF beyond U+10FFFF).
#[inline(always)]
fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

#[inline(always)]
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// The second byte is where overlongs (E0, F0), surrogates (ED) and code points past U+10FFFF
/// (F4) become visible; later bytes only need to be continuation bytes.
#[inline(always)]
fn second_byte_ok(lead: u8, b: u8) -> bool {
    let range = match lead {
        0xE0 => 0xA0..=0xBF,
        0xED => 0x80..=0x9F,
        0xF0 => 0x90..=0xBF,
        0xF4 => 0x80..=0x8F,
        _ => 0x80..=0xBF,
    };
    range.contains(&b)
}

/// Where a code point cut off by the end of `chunk` starts, or `chunk.len()` if none is. Only
/// looks at the last 3 bytes: a lead further back either completes its sequence inside the
/// chunk or is followed by too many continuation bytes, which simdutf8 then reports.
#[inline(always)]
fn cut_code_point_start(chunk: &[u8]) -> usize {
    let len = chunk.len();
    for back in 1..=len.min(3) {
        let b = chunk[len - back];
        if !is_continuation(b) {
            // Invalid leads have length 0 and stay with the part simdutf8 rejects.
            return if sequence_len(b) > back {
                len - back
            } else {
                len
            };
        }
    }
    len
}

/// Whether `bytes` (a lead whose sequence is longer than `bytes`, then continuation bytes) can
/// still be completed into a valid code point.
#[inline(always)]
fn is_open_prefix(bytes: &[u8]) -> bool {
    match *bytes {
        [_] => true,
        [lead, second] => second_byte_ok(lead, second),
        [lead, second, third] => second_byte_ok(lead, second) && is_continuation(third),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_bytewise(bytes: &[u8]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        for b in bytes {
            v.feed(std::slice::from_ref(b))?;
        }
        Ok(())
    }

    #[test]
    fn impossible_prefixes_fail_in_feed() {
        for bad in [
            &[0xF4, 0x90][..],
            &[0xE0, 0x80],
            &[0xED, 0xA0],
            &[0xF0, 0x80],
            &[0xC0],
            &[0xC1],
            &[0xF5],
            &[0xFF],
            &[0x80],
            &[0xE2, 0x82, 0x41],
            &[b'a', 0xE2, 0x28],
        ] {
            assert_eq!(Utf8Validator::new().feed(bad), Err(Utf8Error), "{bad:02x?}");
            assert_eq!(
                feed_bytewise(bad),
                Err(Utf8Error),
                "{bad:02x?} byte by byte"
            );
        }
    }

    #[test]
    fn open_prefixes_pass_feed_and_fail_finish() {
        for open in [
            &[0xE2, 0x82][..],
            &[0xF0, 0x9F, 0x98],
            &[b'x', 0xC3],
            &[0xF4, 0x8F],
        ] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(open), Ok(()), "{open:02x?}");
            assert_eq!(v.finish(), Err(Utf8Error), "{open:02x?}");
            assert_eq!(v.feed(b"ok"), Ok(()), "finish resets");
        }
    }

    #[test]
    fn errors_are_sticky_until_reset() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xC0]).is_err());
        assert!(v.feed(b"fine").is_err());
        v.reset();
        assert_eq!(v.feed(b"fine"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn euro_sign_split_three_ways() {
        let mut v = Utf8Validator::new();
        for part in [&[0xE2][..], &[0x82], &[0xAC]] {
            assert_eq!(v.feed(part), Ok(()));
        }
        assert_eq!(v.finish(), Ok(()));
    }
}
