//! Decoding small whole frames allocates nothing (a counting global allocator proves it).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;
use ringcast_protocol::frame::{Decoder, DecoderConfig, Event, OpCode, encode_masked_frame};

#[test]
fn decoding_32_byte_frames_does_not_allocate() {
    let mut wire = Vec::new();
    for i in 0..10_000u32 {
        let payload = format!("message number {i:>10} ok");
        let payload = &payload.as_bytes()[..26];
        encode_masked_frame(&mut wire, OpCode::Text, true, payload, i.to_le_bytes());
    }
    let mut dec = Decoder::new(DecoderConfig::default());
    let before = allocs();
    let mut pos = 0;
    let mut messages = 0;
    while pos < wire.len() {
        let (n, ev) = dec.decode(&mut wire[pos..]).expect("valid frames");
        pos += n;
        if let Some(Event::Message { payload, .. }) = ev {
            assert_eq!(&payload[..15], b"message number ");
            messages += 1;
        }
    }
    let after = allocs();
    assert_eq!(messages, 10_000);
    assert_eq!(after - before, 0, "the whole-frame path allocated");
}
