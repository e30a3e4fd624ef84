//! Frame decoding and encoding: RFC 6455 §5.7 examples and every violation listed in docs/limits.md#close-codes.

mod common;

use common::{Owned, decode_all, decode_split};
use ringcast_protocol::frame::{
    DecoderConfig, OpCode, encode_close, encode_frame, encode_masked_frame, shared_frame,
};
use ringcast_protocol::{CloseCode, ProtocolError};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn masked(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, op, fin, payload, KEY);
    out
}

fn unmasked_config() -> DecoderConfig {
    DecoderConfig {
        require_mask: false,
        ..DecoderConfig::default()
    }
}

#[test]
fn rfc_5_7_examples_decode() {
    let hello = b"Hello".to_vec();
    let cfg = unmasked_config();
    // Single-frame unmasked text.
    let (ev, err) = decode_split(cfg, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], &[]);
    assert_eq!((ev, err), (vec![Owned::Text(hello.clone())], None));
    // Single-frame masked text.
    let m = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(decode_all(&m), (vec![Owned::Text(hello.clone())], None));
    // Fragmented unmasked text "Hel" + "lo".
    let frag = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    assert_eq!(
        decode_split(cfg, &frag, &[]),
        (vec![Owned::Text(hello.clone())], None)
    );
    // Unmasked ping and masked pong.
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        decode_split(cfg, &ping, &[]),
        (vec![Owned::Ping(hello.clone())], None)
    );
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(decode_all(&pong), (vec![Owned::Pong(hello.clone())], None));
    // 256 bytes and 64 KiB binary in single unmasked frames.
    let mut b256 = vec![0x82, 0x7e, 0x01, 0x00];
    b256.extend(std::iter::repeat_n(7u8, 256));
    assert_eq!(
        decode_split(cfg, &b256, &[3, 100]),
        (vec![Owned::Binary(vec![7; 256])], None)
    );
    let mut b64k = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
    b64k.extend(std::iter::repeat_n(9u8, 65536));
    assert_eq!(
        decode_split(cfg, &b64k, &[5]),
        (vec![Owned::Binary(vec![9; 65536])], None)
    );
}

#[test]
fn rfc_5_7_examples_encode() {
    let mut out = Vec::new();
    encode_frame(&mut out, OpCode::Text, b"Hello");
    assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(
        masked(OpCode::Text, true, b"Hello"),
        [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    let mut first = Vec::new();
    encode_frame(&mut first, OpCode::Ping, b"Hello");
    assert_eq!(first, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(
        masked(OpCode::Pong, true, b"Hello"),
        [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    let mut b256 = Vec::new();
    encode_frame(&mut b256, OpCode::Binary, &[0u8; 256]);
    assert_eq!(&b256[..4], &[0x82, 0x7e, 0x01, 0x00]);
    assert_eq!(b256.len(), 260);
    let shared = shared_frame(OpCode::Binary, &[0u8; 65536]);
    assert_eq!(&shared[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(shared.len(), 65546);
    let mut close = Vec::new();
    encode_close(&mut close, CloseCode::GOING_AWAY, &"é".repeat(100));
    assert_eq!(close[0], 0x88);
    assert!(close[1] <= 125);
    assert!(std::str::from_utf8(&close[4..]).is_ok());
}

fn err_of(bytes: &[u8]) -> ProtocolError {
    decode_all(bytes).1.expect("expected a protocol error")
}

#[test]
fn violations_close_with_1002() {
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        (vec![0x81, 0x01, b'a'], ProtocolError::Unmasked),
        (vec![0xc1, 0x80, 0, 0, 0, 0], ProtocolError::ReservedBits),
        (vec![0xa1, 0x80, 0, 0, 0, 0], ProtocolError::ReservedBits),
        (vec![0x91, 0x80, 0, 0, 0, 0], ProtocolError::ReservedBits),
        (
            vec![0x83, 0x80, 0, 0, 0, 0],
            ProtocolError::UnknownOpcode(3),
        ),
        (
            vec![0x8b, 0x80, 0, 0, 0, 0],
            ProtocolError::UnknownOpcode(0xb),
        ),
        (vec![0x89, 0xfe, 0, 126], ProtocolError::ControlTooLong(126)),
        (
            vec![0x09, 0x80, 0, 0, 0, 0],
            ProtocolError::FragmentedControl,
        ),
        (
            vec![0x80, 0x80, 0, 0, 0, 0],
            ProtocolError::UnexpectedContinuation,
        ),
        (
            [
                masked(OpCode::Text, false, b"a"),
                masked(OpCode::Text, true, b"b"),
            ]
            .concat(),
            ProtocolError::ExpectedContinuation,
        ),
        (
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ProtocolError::LengthTopBit,
        ),
        (
            masked(OpCode::Close, true, &[3]),
            ProtocolError::CloseTooShort,
        ),
        (
            masked(OpCode::Close, true, &1005u16.to_be_bytes()),
            ProtocolError::InvalidCloseCode(1005),
        ),
        (
            masked(OpCode::Close, true, &999u16.to_be_bytes()),
            ProtocolError::InvalidCloseCode(999),
        ),
    ];
    for (bytes, want) in cases {
        let got = err_of(&bytes);
        assert_eq!(got, want, "{bytes:x?}");
        assert_eq!(CloseCode::from(&got), CloseCode::PROTOCOL);
    }
}

#[test]
fn invalid_utf8_closes_with_1007_fail_fast() {
    let bad = masked(OpCode::Text, true, &[b'a', 0xff]);
    assert_eq!(CloseCode::from(&err_of(&bad)), CloseCode::INVALID_PAYLOAD);
    let reason = masked(OpCode::Close, true, &[3, 232, 0xc0]);
    assert_eq!(err_of(&reason), ProtocolError::InvalidCloseReason);
    assert_eq!(
        CloseCode::from(&err_of(&reason)),
        CloseCode::INVALID_PAYLOAD
    );
    // The first fragment is already invalid: the error comes before the message ends, with no
    // continuation ever sent.
    let first = masked(OpCode::Text, false, &[0xce, 0xba, 0xf4, 0x90]);
    assert_eq!(err_of(&first), ProtocolError::InvalidUtf8);
    // Valid prefix split inside a code point across fragments is fine.
    let ok = [
        masked(OpCode::Text, false, &[0xe2, 0x82]),
        masked(OpCode::Continuation, true, &[0xac]),
    ]
    .concat();
    assert_eq!(decode_all(&ok), (vec![Owned::Text("€".into())], None));
    // Ends inside a code point.
    let cut = masked(OpCode::Text, true, &[0xe2, 0x82]);
    assert_eq!(err_of(&cut), ProtocolError::InvalidUtf8);
}

#[test]
fn too_big_is_1009_from_the_header_alone() {
    let cfg = DecoderConfig {
        max_message_bytes: 100,
        ..DecoderConfig::default()
    };
    // Only the header of a 1000-byte frame: no payload needed to fail.
    let head = [0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4];
    let (_, err) = decode_split(cfg, &head, &[]);
    assert_eq!(CloseCode::from(&err.unwrap()), CloseCode::TOO_BIG);
    // Fragments adding up past the limit.
    let frags = [
        masked(OpCode::Binary, false, &[0; 60]),
        masked(OpCode::Continuation, true, &[0; 60]),
    ]
    .concat();
    let (_, err) = decode_split(cfg, &frags, &[]);
    assert_eq!(
        err,
        Some(ProtocolError::MessageTooBig {
            size: 120,
            limit: 100
        })
    );
}

#[test]
fn control_frames_interleave_with_fragments() {
    let bytes = [
        masked(OpCode::Text, false, b"he"),
        masked(OpCode::Ping, true, b"p1"),
        masked(OpCode::Continuation, false, b"ll"),
        masked(OpCode::Pong, true, b""),
        masked(OpCode::Continuation, true, b"o"),
        masked(OpCode::Close, true, &[3, 232, b'o', b'k']),
    ]
    .concat();
    let want = vec![
        Owned::Ping(b"p1".to_vec()),
        Owned::Pong(vec![]),
        Owned::Text(b"hello".to_vec()),
        Owned::Close(Some(1000), "ok".into()),
    ];
    for cut in 0..bytes.len() {
        assert_eq!(
            decode_split(DecoderConfig::default(), &bytes, &[cut]),
            (want.clone(), None)
        );
    }
}

#[test]
fn byte_at_a_time_equals_all_at_once() {
    let bytes = [
        masked(OpCode::Binary, true, &[5; 300]),
        masked(OpCode::Text, true, "ünïcødé ✓".as_bytes()),
        masked(OpCode::Binary, false, &[1; 70000]),
        masked(OpCode::Continuation, true, &[2; 10]),
        masked(OpCode::Text, true, b""),
    ]
    .concat();
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    let one = decode_split(DecoderConfig::default(), &bytes, &[]);
    assert_eq!(one.1, None);
    assert_eq!(one.0.len(), 4);
    assert_eq!(decode_split(DecoderConfig::default(), &bytes, &cuts), one);
}

#[test]
fn rsv1_allowed_only_when_negotiated_and_only_on_first_frame() {
    let cfg = DecoderConfig {
        allow_rsv1: true,
        ..DecoderConfig::default()
    };
    let mut f = masked(OpCode::Text, true, &[0xff, 0xfe]);
    f[0] |= 0x40;
    let (ev, err) = decode_split(cfg, &f, &[]);
    assert_eq!(
        err, None,
        "compressed text is checked after inflating, not here"
    );
    assert_eq!(ev.len(), 1);
    let mut cont = [
        masked(OpCode::Binary, false, b"a"),
        masked(OpCode::Continuation, true, b"b"),
    ]
    .concat();
    cont[7] |= 0x40;
    assert_eq!(
        decode_split(cfg, &cont, &[]).1,
        Some(ProtocolError::ReservedBits)
    );
    let mut ping = masked(OpCode::Ping, true, b"");
    ping[0] |= 0x40;
    assert_eq!(
        decode_split(cfg, &ping, &[]).1,
        Some(ProtocolError::ReservedBits)
    );
}
