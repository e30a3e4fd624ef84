//! Decodes 10,000 masked 32-byte text frames 100 times: a fixed workload for
//! `valgrind --tool=callgrind`, whose instruction counts do not depend on machine load.

use ringcast_protocol::frame::{Decoder, DecoderConfig, Event, OpCode, encode_masked_frame};

fn main() {
    let mut wire = Vec::new();
    for i in 0..10_000u32 {
        let payload = format!("chat message {i:>13}");
        encode_masked_frame(
            &mut wire,
            OpCode::Text,
            true,
            &payload.as_bytes()[..26],
            i.to_le_bytes(),
        );
    }
    let mut scratch = wire.clone();
    let mut total = 0usize;
    for _ in 0..100 {
        scratch.copy_from_slice(&wire);
        let mut dec = Decoder::new(DecoderConfig::default());
        let mut pos = 0;
        while pos < scratch.len() {
            let (n, ev) = dec.decode(&mut scratch[pos..]).expect("valid frames");
            pos += n;
            if let Some(Event::Message { payload, .. }) = ev {
                total += payload.len();
            }
        }
    }
    println!("{total} payload bytes decoded");
}
