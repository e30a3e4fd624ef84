//! The decoder's events do not depend on how the input is split.

mod common;

use common::decode_split;
use proptest::prelude::*;
use ringcast_protocol::frame::{DecoderConfig, OpCode, encode_masked_frame};

fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    let op = prop_oneof![
        Just((OpCode::Text, true)),
        Just((OpCode::Binary, true)),
        Just((OpCode::Text, false)),
        Just((OpCode::Binary, false)),
        Just((OpCode::Continuation, false)),
        Just((OpCode::Continuation, true)),
        Just((OpCode::Ping, true)),
        Just((OpCode::Pong, true)),
    ];
    (
        op,
        prop::collection::vec(any::<u8>(), 0..300),
        any::<[u8; 4]>(),
        any::<bool>(),
    )
        .prop_map(|((op, fin), mut payload, key, ascii)| {
            if op.is_control() {
                payload.truncate(125);
            }
            if ascii {
                payload.iter_mut().for_each(|b| *b &= 0x7f);
            }
            let mut out = Vec::new();
            encode_masked_frame(&mut out, op, fin, &payload, key);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn any_split_gives_the_same_events(
        frames in prop::collection::vec(frame_strategy(), 1..8),
        mut cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        garbage in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = frames.concat();
        bytes.extend_from_slice(&garbage);
        let mut offsets: Vec<usize> = cuts.drain(..).map(|i| i.index(bytes.len() + 1)).collect();
        offsets.sort_unstable();
        let cfg = DecoderConfig { max_message_bytes: 1000, ..DecoderConfig::default() };
        let whole = decode_split(cfg, &bytes, &[]);
        let split = decode_split(cfg, &bytes, &offsets);
        prop_assert_eq!(&whole, &split);
        let every: Vec<usize> = (1..bytes.len()).collect();
        prop_assert_eq!(whole, decode_split(cfg, &bytes, &every));
    }
}
