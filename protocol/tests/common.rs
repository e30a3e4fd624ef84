//! Helpers shared by the protocol tests.
#![allow(dead_code, missing_docs)]

use ringcast_protocol::frame::{Decoder, DecoderConfig, Event, MessageKind};
use ringcast_protocol::{CloseCode, ProtocolError};

/// An owned copy of an event, so events from different splits can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

pub fn own(e: Event<'_>) -> Owned {
    match e {
        Event::Message {
            kind: MessageKind::Text,
            payload,
            ..
        } => Owned::Text(payload.to_vec()),
        Event::Message { payload, .. } => Owned::Binary(payload.to_vec()),
        Event::Ping(p) => Owned::Ping(p.to_vec()),
        Event::Pong(p) => Owned::Pong(p.to_vec()),
        Event::Close(c) => Owned::Close(c.code.map(|c: CloseCode| c.0), c.reason.to_string()),
    }
}

/// Feeds `input` split at `cuts` (sorted offsets) and collects events until the first error.
pub fn decode_split(
    cfg: DecoderConfig,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<Owned>, Option<ProtocolError>) {
    let mut dec = Decoder::new(cfg);
    let mut events = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
    bounds.push(input.len());
    let mut start = 0;
    for end in bounds {
        if end < start {
            continue;
        }
        let mut chunk = input[start..end].to_vec();
        let mut pos = 0;
        loop {
            match dec.decode(&mut chunk[pos..]) {
                Ok((n, ev)) => {
                    pos += n;
                    if let Some(ev) = ev {
                        events.push(own(ev));
                    }
                    if pos == chunk.len() {
                        break;
                    }
                    assert!(n > 0, "decoder made no progress");
                }
                Err(e) => return (events, Some(e)),
            }
        }
        start = end;
    }
    (events, None)
}

pub fn decode_all(input: &[u8]) -> (Vec<Owned>, Option<ProtocolError>) {
    decode_split(DecoderConfig::default(), input, &[])
}
