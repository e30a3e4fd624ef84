//! Inputs the fuzzers (protocol/fuzz) found, minimised. Each must decode the same whole and split.

mod common;

use common::{decode_all, decode_split};
use ringcast_protocol::ProtocolError;
use ringcast_protocol::frame::DecoderConfig;

/// fuzz/decoder: a header whose first two bytes break a sequence or masking rule and whose 64-bit
/// length has its top bit set. Whole, `Header::parse` reports the length first; split after the
/// second byte, `prefix_checks` reports the first-two-bytes error. Both are 1002, but which error
/// wins must not depend on how the bytes arrive.
#[test]
fn length_top_bit_error_does_not_depend_on_the_split() {
    // Unmasked binary frame, 64-bit length 2^63.
    let unmasked = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
    // Masked continuation with no message open, 64-bit length 2^63.
    let continuation = [0x00, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    for wire in [&unmasked[..], &continuation[..]] {
        let whole = decode_all(wire);
        for cut in 1..wire.len() {
            let split = decode_split(DecoderConfig::default(), wire, &[cut]);
            assert_eq!(whole, split, "{wire:02x?} split at {cut}");
        }
    }
    assert_eq!(decode_all(&unmasked).1, Some(ProtocolError::Unmasked));
}

/// fuzz/decoder with permessage-deflate negotiated: when only the first header byte has arrived,
/// `prefix_checks` skips the reserved-bit check whenever RSV1 is allowed, although RSV1 is only
/// legal on Text/Binary and RSV2/RSV3 never are; so a split right after that byte reports a
/// sequence or fragmentation error where the whole header reports `ReservedBits`.
#[test]
fn reserved_bits_error_does_not_depend_on_the_split() {
    let cfg = DecoderConfig {
        allow_rsv1: true,
        ..DecoderConfig::default()
    };
    // RSV1 on a continuation (no message open); RSV1 on a Close without FIN; RSV2 on Text.
    for wire in [
        [0x40, 0x80, 1, 2, 3, 4],
        [0x48, 0x80, 1, 2, 3, 4],
        [0xa1, 0x80, 1, 2, 3, 4],
    ] {
        let whole = decode_split(cfg, &wire, &[]);
        assert_eq!(whole.1, Some(ProtocolError::ReservedBits), "{wire:02x?}");
        for cut in 1..wire.len() {
            assert_eq!(
                whole,
                decode_split(cfg, &wire, &[cut]),
                "{wire:02x?} split at {cut}"
            );
        }
    }
}
