//! Differential fuzzing of the incremental frame decoder: decoding the input in one buffer, split
//! at fuzzer-chosen offsets, and split at every byte must give the same events and the same error.
//!
//! Input layout (so seeds stay plain wire bytes behind a 2-byte prefix):
//! - byte 0: the decoder configuration (see [`config`]);
//! - byte 1: `k`, the number of cuts (`k % 9`);
//! - the next `2 * k` bytes: big-endian `u16` cut offsets, taken modulo `wire.len() + 1`;
//! - the rest: the wire bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_protocol::frame::{Decoder, DecoderConfig, Event, MessageKind};
use ringcast_protocol::{CloseCode, ProtocolError};

/// An owned copy of an event, so events from different splits can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Message(MessageKind, bool, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

fn own(e: Event<'_>, cfg: &DecoderConfig) -> Owned {
    match e {
        Event::Message {
            kind,
            payload,
            compressed,
        } => {
            assert!(
                payload.len() as u64 <= cfg.max_message_bytes,
                "message of {} bytes over the limit {}",
                payload.len(),
                cfg.max_message_bytes
            );
            assert!(
                compressed <= cfg.allow_rsv1,
                "RSV1 accepted without permessage-deflate"
            );
            if kind == MessageKind::Text && !compressed {
                assert!(
                    std::str::from_utf8(&payload).is_ok(),
                    "text message is not UTF-8"
                );
            }
            Owned::Message(kind, compressed, payload.to_vec())
        }
        Event::Ping(p) => {
            assert!(p.len() <= 125, "ping payload of {} bytes", p.len());
            Owned::Ping(p.to_vec())
        }
        Event::Pong(p) => {
            assert!(p.len() <= 125, "pong payload of {} bytes", p.len());
            Owned::Pong(p.to_vec())
        }
        Event::Close(c) => {
            if let Some(code) = c.code {
                assert!(code.is_sendable(), "close code {} accepted", code.0);
            } else {
                assert!(c.reason.is_empty());
            }
            Owned::Close(c.code.map(|c: CloseCode| c.0), c.reason.to_string())
        }
    }
}

type Outcome = (Vec<Owned>, Option<ProtocolError>);

/// Feeds `input` in chunks ending at `cuts` (sorted offsets), collecting events until the first
/// error, and checks the `decode` contract on every call.
fn decode_split(cfg: DecoderConfig, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut dec = Decoder::new(cfg);
    let mut events = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        if end < start || end > input.len() {
            continue;
        }
        let mut chunk = input[start..end].to_vec();
        let mut pos = 0;
        loop {
            let rest = chunk.len() - pos;
            match dec.decode(&mut chunk[pos..]) {
                Ok((n, ev)) => {
                    assert!(n <= rest, "consumed {n} of {rest} bytes");
                    let made_event = ev.is_some();
                    if let Some(ev) = ev {
                        events.push(own(ev, &cfg));
                    }
                    pos += n;
                    if pos == chunk.len() {
                        break;
                    }
                    assert!(n > 0 || made_event, "decoder made no progress");
                }
                Err(e) => {
                    // Every error maps to a close code the server may send.
                    assert!(CloseCode::from(&e).is_sendable());
                    return (events, Some(e));
                }
            }
        }
        start = end;
    }
    (events, None)
}

/// The configurations exercised: the server default, a small message limit, permessage-deflate
/// negotiated, and a client-side decoder (unmasked frames allowed).
fn config(sel: u8) -> DecoderConfig {
    let base = DecoderConfig::default();
    match sel % 4 {
        0 => base,
        1 => DecoderConfig {
            max_message_bytes: 64,
            ..base
        },
        2 => DecoderConfig {
            allow_rsv1: true,
            max_message_bytes: 300,
            ..base
        },
        _ => DecoderConfig {
            require_mask: false,
            max_message_bytes: 1000,
            ..base
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, k, rest @ ..] = data else {
        return;
    };
    let k = usize::from(*k % 9).min(rest.len() / 2);
    let (cut_bytes, wire) = rest.split_at(2 * k);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) % (wire.len() + 1))
        .collect();
    cuts.sort_unstable();
    let cfg = config(*sel);

    let whole = decode_split(cfg, wire, &[]);
    let split = decode_split(cfg, wire, &cuts);
    assert_eq!(whole, split, "split at {cuts:?} differs from whole");
    let every: Vec<usize> = (1..wire.len()).collect();
    let bytewise = decode_split(cfg, wire, &every);
    assert_eq!(whole, bytewise, "byte-at-a-time differs from whole");
});
