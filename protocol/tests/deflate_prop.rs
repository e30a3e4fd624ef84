//! permessage-deflate properties: what we compress inflates back at every level and window,
//! in any split of frames; arbitrary bytes never make the inflater panic or pass the cap; any
//! header value negotiates without panicking and any answer is one we can honour.

use proptest::prelude::*;
use ringcast_protocol::deflate::{Compressor, DeflateConfig, Inflater, TAIL, negotiate};
use ringcast_protocol::frame::MessageKind;

fn text_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        // Repetitive, like JSON: a few words over and over.
        prop::collection::vec(
            prop::sample::select(vec![
                &b"{\"user\":"[..],
                b"\"text\":",
                b"hello",
                b" ",
                b"},",
                b"42"
            ]),
            0..400
        )
        .prop_map(|words| words.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compress_then_inflate_is_identity(
        data in text_like(),
        level in 0u32..=9,
        bits in 9u8..=15,
    ) {
        let mut z = Vec::new();
        Compressor::new(level, bits).compress(&data, &mut z);
        prop_assert!(!z.ends_with(&TAIL) || z.len() > TAIL.len());
        let mut out = Vec::new();
        Inflater::new().inflate(&z, MessageKind::Binary, data.len() as u64, &mut out).unwrap();
        prop_assert_eq!(&out, &data);
        // The same message twice from one compressor gives the same bytes (no context kept).
        let mut again = Vec::new();
        let mut c = Compressor::new(level, bits);
        c.compress(b"something else first", &mut Vec::new());
        c.compress(&data, &mut again);
        prop_assert_eq!(again, z);
    }

    #[test]
    fn arbitrary_input_never_panics_or_passes_the_cap(
        data in prop::collection::vec(any::<u8>(), 0..2000),
        max in 0u64..5000,
    ) {
        let mut inflater = Inflater::new();
        let mut out = Vec::new();
        let r = inflater.inflate(&data, MessageKind::Text, max, &mut out);
        prop_assert!(out.len() as u64 <= max + 1);
        prop_assert!(out.capacity() as u64 <= max + 1);
        if r.is_ok() {
            prop_assert!(std::str::from_utf8(&out).is_ok());
        }
        // Whatever happened, the next message is read on its own.
        let mut z = Vec::new();
        Compressor::new(1, 15).compress(b"next", &mut z);
        out.clear();
        inflater.inflate(&z, MessageKind::Text, 100, &mut out).unwrap();
        prop_assert_eq!(out, b"next");
    }

    #[test]
    fn any_header_negotiates_without_panicking(
        values in prop::collection::vec(
            prop::collection::vec(
                prop::sample::select(vec![
                    "permessage-deflate", "x-foo", ";", ",", "=", "\"", "\\", " ",
                    "server_no_context_takeover", "client_no_context_takeover",
                    "server_max_window_bits", "client_max_window_bits",
                    "8", "9", "10", "15", "16", "08",
                ]),
                0..12,
            )
            .prop_map(|parts| parts.concat()),
            0..3,
        ),
    ) {
        if let Some(n) = negotiate(&values, &DeflateConfig::default()) {
            prop_assert!((9..=15).contains(&n.server_max_window_bits));
            prop_assert!(n.response().starts_with(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ));
        }
    }
}
