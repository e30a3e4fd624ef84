//! Differential fuzzing of unmasking: `apply_mask` (the dispatching, possibly SIMD, path) against
//! `apply_mask_scalar`, at any key phase, any start alignment, and continued across a split.
//!
//! Input layout: 4 key bytes, a phase byte (`% 4`), an alignment offset byte (`% 32`), a split
//! byte (scaled to the payload), then the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_protocol::mask::{apply_mask, apply_mask_scalar};

fuzz_target!(|data: &[u8]| {
    let [k0, k1, k2, k3, phase, offset, split, payload @ ..] = data else {
        return;
    };
    let key = [*k0, *k1, *k2, *k3];
    let phase = usize::from(*phase % 4);
    // Shift the payload inside a larger buffer so the fast path sees every start alignment.
    let offset = usize::from(*offset % 32);
    let mut buf = vec![0u8; offset + payload.len()];
    buf[offset..].copy_from_slice(payload);
    let body = offset..buf.len();

    let mut expect = payload.to_vec();
    let expect_phase = apply_mask_scalar(&mut expect, key, phase);
    assert_eq!(expect_phase, (phase + payload.len()) % 4);

    // One call over the whole payload.
    let mut whole = buf.clone();
    let got_phase = apply_mask(&mut whole[body.clone()], key, phase);
    assert_eq!(got_phase, expect_phase, "returned phase");
    assert_eq!(&whole[body.clone()], &expect[..], "whole payload");
    assert!(
        whole[..offset].iter().all(|&b| b == 0),
        "wrote before the slice"
    );

    // Two calls, the second continuing at the phase the first returned.
    let cut = usize::from(*split) * payload.len() / 255;
    let mut parts = buf.clone();
    let (a, b) = parts[body.clone()].split_at_mut(cut);
    let mid = apply_mask(a, key, phase);
    let end = apply_mask(b, key, mid);
    assert_eq!(end, expect_phase, "phase after the split");
    assert_eq!(&parts[body.clone()], &expect[..], "split at {cut}");

    // Masking is an involution.
    apply_mask(&mut whole[body.clone()], key, phase);
    assert_eq!(&whole[body], payload, "masking twice is not the identity");
});
