//! A small xorshift generator for handshake keys and masking keys. Not cryptographic; a load
//! generator needs unpredictable-enough nonces, not secrets.

use std::hash::{BuildHasher, Hasher};

/// xorshift64* state, seeded from the standard library's per-process random hasher keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from OS randomness (through `RandomState`) mixed with `salt`.
    pub fn new(salt: u64) -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        Self(h.finish() | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Four random bytes (a masking key).
    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    /// Sixteen random bytes (a handshake nonce).
    pub fn key(&mut self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        k[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        k
    }
}
