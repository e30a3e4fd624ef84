//! permessage-deflate (RFC 7692): negotiation, RSV1 in the decoder, inflating with a cap, and
//! compressing once, checked against miniz_oxide (an independent deflate implementation).

mod common;

use common::{Owned, decode_split};
use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::{MZFlush, MZStatus};
use ringcast_protocol::deflate::{
    CompressConfig, Compressor, Decline, DeflateConfig, Deflater, Inflater, Negotiated, Offer,
    TAIL, accept, negotiate, offers,
};
use ringcast_protocol::frame::{
    Decoder, DecoderConfig, Event, MessageKind, OpCode, encode_compressed_frame,
    encode_masked_frame,
};
use ringcast_protocol::handshake::{
    Request, parse_request, render_accept, render_accept_with_extensions,
};
use ringcast_protocol::{CloseCode, ProtocolError};

fn masked(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, op, fin, payload, [0x37, 0xfa, 0x21, 0x3d]);
    out
}

const BASE: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

fn answer(values: &[&str]) -> Option<&'static str> {
    negotiate(values, &DeflateConfig::default()).map(|n| n.response())
}

fn with_bits(bits: u8) -> String {
    format!("{BASE}; server_max_window_bits={bits}")
}

// ---------------------------------------------------------------------------------------------
// Negotiation

#[test]
fn negotiation_rfc7692_examples() {
    // §5.2 / §7.1: the offers a browser sends, and the RFC's examples of several offers.
    let cases: &[(&[&str], Option<String>)] = &[
        (&["permessage-deflate"], Some(BASE.into())),
        (
            &["permessage-deflate; client_max_window_bits"],
            Some(BASE.into()),
        ),
        (
            &["permessage-deflate; server_no_context_takeover"],
            Some(BASE.into()),
        ),
        (
            &["permessage-deflate; client_no_context_takeover"],
            Some(BASE.into()),
        ),
        (
            &["permessage-deflate; server_max_window_bits=10"],
            Some(with_bits(10)),
        ),
        (
            &["permessage-deflate; server_max_window_bits=15"],
            Some(with_bits(15)),
        ),
        // §5.2: the first offer is preferred; the second is the fallback.
        (
            &[
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits",
            ],
            Some(with_bits(10)),
        ),
        (
            &["permessage-deflate; client_max_window_bits=10"],
            Some(BASE.into()),
        ),
        (
            &["permessage-deflate; client_max_window_bits=8"],
            Some(BASE.into()),
        ),
        (
            &[
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9",
            ],
            Some(with_bits(9)),
        ),
        // A quoted-string value whose content is a token (RFC 6455 §9.1).
        (
            &["permessage-deflate; server_max_window_bits=\"12\""],
            Some(with_bits(12)),
        ),
        // Names are matched without regard to case; whitespace around separators is fine.
        (
            &["Permessage-Deflate ;Server_Max_Window_Bits = 11 "],
            Some(with_bits(11)),
        ),
        // Other extensions are skipped, in the same value or another header line.
        (
            &["x-webkit-deflate-frame, permessage-deflate"],
            Some(BASE.into()),
        ),
        (&["foo; bar=1", "permessage-deflate"], Some(BASE.into())),
        (&[", ,permessage-deflate,"], Some(BASE.into())),
    ];
    for (values, want) in cases {
        assert_eq!(
            answer(values).map(str::to_string),
            want.clone(),
            "{values:?}"
        );
    }
}

#[test]
fn negotiation_declines_malformed_offers_without_failing() {
    let declined: &[&str] = &[
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=0x0f",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; ; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate x",
    ];
    for v in declined {
        assert_eq!(answer(&[v]), None, "{v:?}");
    }
    // A declined offer falls through to the next one.
    assert_eq!(
        answer(&["permessage-deflate; server_max_window_bits=8, permessage-deflate"]),
        Some(BASE)
    );
    assert_eq!(
        answer(&[
            "permessage-deflate; bogus",
            "permessage-deflate; server_max_window_bits=13"
        ]),
        Some(with_bits(13)).as_deref()
    );
}

#[test]
fn negotiation_reasons() {
    let parsed: Vec<_> = offers(&[
        "permessage-deflate; a, permessage-deflate; server_no_context_takeover; server_no_context_takeover, \
         permessage-deflate; client_max_window_bits=99, permessage-deflate; server_max_window_bits=8, \
         permessage-deflate; client_max_window_bits; server_no_context_takeover, other, =x",
    ])
    .collect();
    assert_eq!(
        parsed,
        vec![
            Err(Decline::UnknownParameter("a".into())),
            Err(Decline::Duplicate("server_no_context_takeover")),
            Err(Decline::InvalidValue("client_max_window_bits")),
            Ok(Offer {
                server_max_window_bits: Some(8),
                ..Offer::default()
            }),
            Ok(Offer {
                server_no_context_takeover: true,
                client_max_window_bits: Some(None),
                ..Offer::default()
            }),
            Err(Decline::Syntax),
        ]
    );
    let eight = Offer {
        server_max_window_bits: Some(8),
        ..Offer::default()
    };
    assert!(matches!(
        accept(&eight, &DeflateConfig::default()),
        Err(Decline::Unsupported(_))
    ));
}

#[test]
fn negotiation_with_a_smaller_window_of_our_own() {
    let cfg = DeflateConfig {
        max_window_bits: 10,
    };
    let n = |v: &str| negotiate(&[v], &cfg).unwrap();
    // We may name server_max_window_bits although the client did not (§7.1.2.1).
    assert_eq!(n("permessage-deflate").server_max_window_bits, 10);
    assert_eq!(n("permessage-deflate").response(), with_bits(10));
    // Never more than the client asked, never more than ours.
    assert_eq!(
        n("permessage-deflate; server_max_window_bits=12").response(),
        with_bits(10)
    );
    assert_eq!(
        n("permessage-deflate; server_max_window_bits=9").response(),
        with_bits(9)
    );
    // Out-of-range settings are clamped to what zlib does.
    let tiny = DeflateConfig { max_window_bits: 3 };
    assert_eq!(
        negotiate(&["permessage-deflate"], &tiny)
            .unwrap()
            .server_max_window_bits,
        9
    );
}

#[test]
fn every_answer_is_itself_a_valid_offer_naming_what_was_agreed() {
    for bits in 8..=15u8 {
        let offer = format!("permessage-deflate; server_max_window_bits={bits}");
        let Some(n) = negotiate(&[offer.as_str()], &DeflateConfig::default()) else {
            assert_eq!(bits, 8);
            continue;
        };
        assert_eq!(n.server_max_window_bits, bits);
        let back: Vec<_> = offers(&[n.response()]).collect();
        assert_eq!(
            back,
            vec![Ok(Offer {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(bits),
                client_max_window_bits: None,
            })]
        );
    }
}

const CHROME: &str = "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

#[test]
fn handshake_hook_is_optional() {
    let Ok(Some((Request::Upgrade(up), _))) = parse_request(CHROME.as_bytes(), 8192) else {
        panic!("a valid upgrade");
    };
    let n = up
        .negotiate_deflate(&DeflateConfig::default())
        .expect("Chrome's offer is accepted");
    let mut with = Vec::new();
    render_accept_with_extensions(&mut with, &up.accept, Some("chat"), Some(n.response()));
    let with = String::from_utf8(with).unwrap();
    assert!(
        with.contains(&format!("\r\nSec-WebSocket-Extensions: {BASE}\r\n")),
        "{with}"
    );
    assert!(with.ends_with("\r\n\r\n"));
    // Without the hook the answer is byte for byte what it was: no extension.
    let mut plain = Vec::new();
    render_accept(&mut plain, &up.accept, Some("chat"));
    let mut none = Vec::new();
    render_accept_with_extensions(&mut none, &up.accept, Some("chat"), None);
    assert_eq!(plain, none);
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    // The negotiated decoder allows RSV1, the default one does not.
    let cfg = n.decoder_config(DecoderConfig::default());
    assert!(cfg.allow_rsv1);
    assert!(!DecoderConfig::default().allow_rsv1);
    assert_eq!(
        cfg.max_message_bytes,
        DecoderConfig::default().max_message_bytes
    );
}

// ---------------------------------------------------------------------------------------------
// RSV1 in the decoder

fn rsv1(mut frame: Vec<u8>) -> Vec<u8> {
    frame[0] |= 0x40;
    frame
}

fn negotiated() -> DecoderConfig {
    Negotiated::decoder_config(
        &negotiate(&["permessage-deflate"], &DeflateConfig::default()).unwrap(),
        DecoderConfig::default(),
    )
}

/// Decodes `wire` in one piece and returns (kind, payload, compressed) of each message.
fn messages(
    cfg: DecoderConfig,
    wire: &[u8],
) -> Result<Vec<(MessageKind, Vec<u8>, bool)>, ProtocolError> {
    let mut dec = Decoder::new(cfg);
    let mut buf = wire.to_vec();
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let (n, ev) = dec.decode(&mut buf[pos..])?;
        pos += n;
        if let Some(Event::Message {
            kind,
            payload,
            compressed,
        }) = ev
        {
            out.push((kind, payload.to_vec(), compressed));
        }
    }
    Ok(out)
}

#[test]
fn rsv1_is_a_protocol_error_unless_negotiated() {
    for op in [OpCode::Text, OpCode::Binary] {
        let f = rsv1(masked(op, true, b"\xf2\x48\xcd\xc9\xc9\x07\x00"));
        let err = messages(DecoderConfig::default(), &f).unwrap_err();
        assert_eq!(err, ProtocolError::ReservedBits);
        assert_eq!(CloseCode::from(&err), CloseCode::PROTOCOL);
        // Whatever the split.
        for cut in 1..f.len() {
            assert_eq!(
                decode_split(DecoderConfig::default(), &f, &[cut]).1,
                Some(ProtocolError::ReservedBits)
            );
        }
    }
}

#[test]
fn rsv1_on_the_first_frame_marks_the_message_compressed() {
    let cfg = negotiated();
    // Whole, fragmented (RSV1 on the first frame only), and plain messages on the same
    // connection: RSV1 is per message.
    let wire = [
        rsv1(masked(OpCode::Text, true, b"\xf2\x48\xcd\xc9\xc9\x07\x00")),
        rsv1(masked(OpCode::Text, false, b"\xf2\x48\xcd")),
        masked(OpCode::Continuation, true, b"\xc9\xc9\x07\x00"),
        masked(OpCode::Text, true, b"Hello"),
        rsv1(masked(OpCode::Binary, true, &[0xff; 300])),
    ]
    .concat();
    let got = messages(cfg, &wire).unwrap();
    let flags: Vec<_> = got.iter().map(|m| (m.0, m.2)).collect();
    assert_eq!(
        flags,
        vec![
            (MessageKind::Text, true),
            (MessageKind::Text, true),
            (MessageKind::Text, false),
            (MessageKind::Binary, true),
        ]
    );
    // Invalid UTF-8 in a compressed text message is not an error before inflating.
    assert_eq!(got[3].1, vec![0xff; 300]);
    // Any split gives the same events.
    let whole = decode_split(cfg, &wire, &[]);
    assert_eq!(whole.1, None);
    for cut in 1..wire.len() {
        assert_eq!(decode_split(cfg, &wire, &[cut]), whole, "cut at {cut}");
    }
    // And inflating them gives "Hello" back.
    let mut inflater = Inflater::new();
    for (kind, payload, compressed) in &got[..2] {
        assert!(compressed);
        let mut out = Vec::new();
        inflater.inflate(payload, *kind, 1 << 20, &mut out).unwrap();
        assert_eq!(out, b"Hello");
    }
}

#[test]
fn rsv1_on_continuation_and_control_frames_is_a_protocol_error() {
    let cfg = negotiated();
    let bad: Vec<Vec<u8>> = vec![
        [
            rsv1(masked(OpCode::Text, false, b"\xf2\x48")),
            rsv1(masked(OpCode::Continuation, true, b"\xcd")),
        ]
        .concat(),
        [
            masked(OpCode::Binary, false, b"ab"),
            rsv1(masked(OpCode::Continuation, true, b"c")),
        ]
        .concat(),
        rsv1(masked(OpCode::Ping, true, b"")),
        rsv1(masked(OpCode::Pong, true, b"x")),
        rsv1(masked(OpCode::Close, true, &1000u16.to_be_bytes())),
        // A ping inside a compressed fragmented message.
        [
            rsv1(masked(OpCode::Text, false, b"\xf2")),
            rsv1(masked(OpCode::Ping, true, b"")),
        ]
        .concat(),
    ];
    for wire in &bad {
        let whole = decode_split(cfg, wire, &[]);
        assert_eq!(whole.1, Some(ProtocolError::ReservedBits), "{wire:02x?}");
        assert_eq!(CloseCode::from(&ProtocolError::ReservedBits).0, 1002);
        for cut in 1..wire.len() {
            assert_eq!(decode_split(cfg, wire, &[cut]).1, whole.1, "cut at {cut}");
        }
    }
    // RSV2 and RSV3 stay errors even with deflate negotiated.
    for bit in [0x20u8, 0x10] {
        let mut f = masked(OpCode::Text, true, b"x");
        f[0] |= bit;
        assert_eq!(
            decode_split(cfg, &f, &[]).1,
            Some(ProtocolError::ReservedBits)
        );
    }
    // A ping without RSV1 inside a compressed message is fine.
    let ok = [
        rsv1(masked(OpCode::Text, false, b"\xf2\x48\xcd")),
        masked(OpCode::Ping, true, b"p"),
        masked(OpCode::Continuation, true, b"\xc9\xc9\x07\x00"),
    ]
    .concat();
    let (events, err) = decode_split(cfg, &ok, &[]);
    assert_eq!(err, None);
    assert_eq!(events[0], Owned::Ping(b"p".to_vec()));
}

// ---------------------------------------------------------------------------------------------
// Inflating

fn inflate(payload: &[u8], kind: MessageKind, max: u64) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    Inflater::new()
        .inflate(payload, kind, max, &mut out)
        .map(|()| out)
}

#[test]
fn inflate_rfc7692_examples() {
    let hello = Ok(b"Hello".to_vec());
    // §7.2.3.1: a compressed "Hello".
    assert_eq!(
        inflate(b"\xf2\x48\xcd\xc9\xc9\x07\x00", MessageKind::Text, 100),
        hello
    );
    // §7.2.3.3: a stored (uncompressed) block.
    assert_eq!(
        inflate(
            b"\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00",
            MessageKind::Text,
            100
        ),
        hello
    );
    // §7.2.3.4: BFINAL set on the block.
    assert_eq!(
        inflate(b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00", MessageKind::Text, 100),
        hello
    );
    // §7.2.3.5: two blocks in one message.
    assert_eq!(
        inflate(
            b"\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00",
            MessageKind::Text,
            100
        ),
        hello
    );
    // §7.2.3.6: an empty message, as an empty payload or a single 0x00.
    assert_eq!(inflate(b"", MessageKind::Text, 100), Ok(vec![]));
    assert_eq!(inflate(b"\x00", MessageKind::Text, 100), Ok(vec![]));
    // §7.2.3.2: the second "Hello" of a connection with context takeover refers to the first;
    // we asked for client_no_context_takeover, so it is invalid data (1007).
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    inflater
        .inflate(
            b"\xf2\x48\xcd\xc9\xc9\x07\x00",
            MessageKind::Text,
            100,
            &mut out,
        )
        .unwrap();
    let err = inflater
        .inflate(
            b"\xf2\x00\x11\x00\x00",
            MessageKind::Text,
            100,
            &mut Vec::new(),
        )
        .unwrap_err();
    assert_eq!(err, ProtocolError::InvalidDeflate);
    assert_eq!(CloseCode::from(&err), CloseCode::INVALID_PAYLOAD);
    // The inflater was reset: the next message is read on its own.
    out.clear();
    inflater
        .inflate(
            b"\xf2\x48\xcd\xc9\xc9\x07\x00",
            MessageKind::Text,
            100,
            &mut out,
        )
        .unwrap();
    assert_eq!(out, b"Hello");
}

#[test]
fn inflate_rejects_garbage_and_bad_utf8() {
    // Block type 11 is reserved.
    assert_eq!(
        inflate(b"\xff\xff\xff", MessageKind::Binary, 100),
        Err(ProtocolError::InvalidDeflate)
    );
    // Stored block whose length and its complement disagree.
    assert_eq!(
        inflate(b"\x00\x05\x00\x00\x00Hello", MessageKind::Binary, 100),
        Err(ProtocolError::InvalidDeflate)
    );
    // Valid deflate of bytes that are not UTF-8: fine as binary, 1007 as text.
    let bad_text = compress_reference_sync(&[b'a', 0xff, b'b'], 6);
    assert_eq!(
        inflate(&bad_text, MessageKind::Binary, 100),
        Ok(vec![b'a', 0xff, b'b'])
    );
    let err = inflate(&bad_text, MessageKind::Text, 100).unwrap_err();
    assert_eq!(err, ProtocolError::InvalidUtf8);
    assert_eq!(CloseCode::from(&err), CloseCode::INVALID_PAYLOAD);
    // A code point cut at the end of the message.
    let cut = compress_reference_sync("é".as_bytes().split_last().unwrap().1, 6);
    assert_eq!(
        inflate(&cut, MessageKind::Text, 100),
        Err(ProtocolError::InvalidUtf8)
    );
}

#[test]
fn inflate_cap_is_exact() {
    let data = vec![b'x'; 10_000];
    let z = compress_reference_sync(&data, 6);
    assert_eq!(inflate(&z, MessageKind::Text, 10_000).unwrap(), data);
    let err = inflate(&z, MessageKind::Text, 9_999).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::MessageTooBig {
            size: 10_000,
            limit: 9_999
        }
    );
    assert_eq!(CloseCode::from(&err), CloseCode::TOO_BIG);
    assert!(inflate(&z, MessageKind::Text, 0).is_err());
    assert_eq!(inflate(b"", MessageKind::Text, 0), Ok(vec![]));
}

#[test]
fn inflate_appends_and_caps_what_it_appends() {
    let z = compress_reference_sync(b"world", 6);
    let mut out = b"hello ".to_vec();
    Inflater::new()
        .inflate(&z, MessageKind::Text, 5, &mut out)
        .unwrap();
    assert_eq!(out, b"hello world");
}

// ---------------------------------------------------------------------------------------------
// Compressing, against the reference

/// Raw deflate with a sync flush and the tail removed, by miniz_oxide: what another client's
/// deflate sends.
pub fn compress_reference_sync(data: &[u8], level: i32) -> Vec<u8> {
    let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(level, -15, 0));
    let mut out = vec![0u8; data.len() + data.len() / 100 + 1024];
    let mut written = 0;
    let mut input = data;
    loop {
        let r = miniz_oxide::deflate::stream::deflate(
            &mut c,
            input,
            &mut out[written..],
            MZFlush::Sync,
        );
        let status = r.status.expect("miniz deflate");
        input = &input[r.bytes_consumed..];
        written += r.bytes_written;
        if input.is_empty() && written < out.len() {
            assert!(matches!(status, MZStatus::Ok));
            break;
        }
        out.resize(out.len() * 2, 0);
    }
    out.truncate(written);
    assert!(out.ends_with(&TAIL), "{out:02x?}");
    out.truncate(written - 4);
    out
}

/// Inflates a permessage-deflate payload with miniz_oxide: the tail, then a final empty block so
/// the whole-buffer API sees an end.
pub fn inflate_reference(payload: &[u8]) -> Vec<u8> {
    let stream = [payload, &TAIL, &[0x03, 0x00]].concat();
    miniz_oxide::inflate::decompress_to_vec(&stream).expect("reference inflate")
}

fn chat_json(n: usize) -> Vec<u8> {
    let mut s = String::from("[");
    for i in 0..n {
        s.push_str(&format!(
            r#"{{"type":"message","room":"lobby","user":"user{}","id":{},"text":"hello everyone, message number {} here"}},"#,
            i % 7,
            1000 + i,
            i
        ));
    }
    s.push(']');
    s.into_bytes()
}

#[test]
fn compress_round_trips_through_the_reference_and_ours() {
    let samples: Vec<Vec<u8>> = vec![
        vec![],
        b"Hello".to_vec(),
        chat_json(1),
        chat_json(30),
        noise(70_000, 3),
        vec![0; 100_000],
    ];
    let mut inflater = Inflater::new();
    for level in [0, 1, 6, 9] {
        for bits in 9..=15 {
            let mut c = Compressor::new(level, bits);
            assert_eq!(c.window_bits(), bits);
            for data in &samples {
                let mut z = Vec::new();
                c.compress(data, &mut z);
                assert_eq!(&inflate_reference(&z), data, "level {level} bits {bits}");
                let mut back = Vec::new();
                inflater
                    .inflate(&z, MessageKind::Binary, data.len() as u64, &mut back)
                    .unwrap();
                assert_eq!(&back, data);
            }
        }
    }
    // The RFC's own example is what zlib makes of "Hello".
    let mut z = Vec::new();
    Compressor::new(6, 15).compress(b"Hello", &mut z);
    assert_eq!(z, b"\xf2\x48\xcd\xc9\xc9\x07\x00");
}

#[test]
fn reference_deflate_inflates_with_ours() {
    let mut inflater = Inflater::new();
    for data in [chat_json(1), chat_json(50), vec![7; 5000]] {
        for level in [1, 6, 10] {
            let z = compress_reference_sync(&data, level);
            let mut out = Vec::new();
            inflater
                .inflate(&z, MessageKind::Text, 1 << 20, &mut out)
                .unwrap();
            assert_eq!(out, data);
            // A sender that finished the stream (BFINAL) instead of sync-flushing it.
            let fin = miniz_oxide::deflate::compress_to_vec(&data, level as u8);
            out.clear();
            inflater
                .inflate(&fin, MessageKind::Text, 1 << 20, &mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }
}

#[test]
fn a_small_window_never_reaches_further_back_than_it_said() {
    // Noise repeated 600 bytes later: a 15-bit window uses the repeat and halves the size, a
    // 9-bit one (512 bytes; zlib reaches at most 250 back with it) must not. (An inflater set
    // to 9 bits is no check here: zlib-rs reads the 600-byte distance all the same.)
    let mut data = noise(600, 1);
    data.extend_from_within(..600);
    let (mut small, mut large) = (Vec::new(), Vec::new());
    Compressor::new(9, 9).compress(&data, &mut small);
    Compressor::new(9, 15).compress(&data, &mut large);
    assert!(small.len() > 1150, "{} bytes with 9 bits", small.len());
    assert!(large.len() < 700, "{} bytes with 15 bits", large.len());
    assert_eq!(inflate_reference(&small), data);
    assert_eq!(inflate_reference(&large), data);
    // Repeats within reach of the small window are still found.
    let mut near = noise(200, 4);
    near.extend_from_within(..200);
    let mut z = Vec::new();
    Compressor::new(9, 9).compress(&near, &mut z);
    assert!(z.len() < 260, "{}", z.len());
}

/// Incompressible bytes (xorshift64).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[test]
fn deflater_compresses_once_per_form_and_skips_what_does_not_pay() {
    let mut d = Deflater::new(CompressConfig::default());
    assert_eq!(d.config().level, 1);
    // Below min_size: sent as it is.
    assert!(!d.worth_compressing(255));
    assert_eq!(d.compress(15, &chat_json(3)[..255]), None);
    // Incompressible: sent as it is.
    assert_eq!(d.compress(15, &noise(4000, 2)), None);
    // Chat JSON: one frame with RSV1, shared by every receiver of that form.
    let msg = chat_json(10);
    let frame = d.compressed_frame(15, OpCode::Text, &msg).unwrap();
    assert_eq!(frame[0], 0xc1, "FIN + RSV1 + text");
    let mut unicast = Vec::new();
    encode_compressed_frame(&mut unicast, OpCode::Text, &d.compress(15, &msg).unwrap());
    assert_eq!(
        &frame[..],
        &unicast[..],
        "the same bytes every time: no context carried over"
    );
    assert!(
        frame.len() < msg.len() / 2,
        "{} of {}",
        frame.len(),
        msg.len()
    );
    // A client decoding that frame (unmasked: decode as a client would) gets the message back.
    let mut dec = Decoder::new(DecoderConfig {
        require_mask: false,
        ..negotiated()
    });
    let mut wire = frame.to_vec();
    let (_, ev) = dec.decode(&mut wire).unwrap();
    let Some(Event::Message {
        kind,
        payload,
        compressed: true,
    }) = ev
    else {
        panic!("a compressed message");
    };
    let mut out = Vec::new();
    Inflater::new()
        .inflate(&payload, kind, 1 << 20, &mut out)
        .unwrap();
    assert_eq!(out, msg);
    // Out-of-range window bits are clamped to what zlib can do.
    assert_eq!(d.compressor(8).window_bits(), 9);
    assert_eq!(d.compressor(99).window_bits(), 15);
}
