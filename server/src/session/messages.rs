//! The frame loop of the JSON dialects (pub/sub, Pusher): decode what arrived, count each
//! complete message and hand it on, answer Pings, end the session on a Close or a protocol
//! error. Room mode has its own loop (it forwards frames, it does not read them).

use ringcast_protocol::deflate::Negotiated;
use ringcast_protocol::frame::{DecoderConfig, Event, MessageKind};
use ringcast_protocol::{CloseCode, Decoder};

use crate::config::Config;
use crate::session::sink::Sink;

/// The decoder every upgraded dialect uses: `--max-message-bytes`, masked frames, RSV1 only
/// when permessage-deflate was `negotiated` (docs/compression.md).
pub fn decoder(cfg: &Config, negotiated: Option<&Negotiated>) -> Decoder {
    let base = DecoderConfig {
        max_message_bytes: cfg.max_message_bytes,
        allow_rsv1: false,
        require_mask: true,
    };
    Decoder::new(negotiated.map_or(base, |n| n.decoder_config(base)))
}

/// Decodes `data` (unmasked in place) and calls `on_message` with every complete message,
/// until the data ends or the session closes.
pub fn feed(
    decoder: &mut Decoder,
    data: &mut [u8],
    sink: &mut Sink<'_>,
    mut on_message: impl FnMut(MessageKind, &[u8], &mut Sink<'_>),
) {
    let mut pos = 0;
    while pos < data.len() {
        let (n, event) = match decoder.decode(&mut data[pos..]) {
            Ok(found) => found,
            Err(e) => {
                sink.close(Some(CloseCode::from(&e)), e.to_string());
                return;
            }
        };
        pos += n;
        match event {
            None | Some(Event::Pong(_)) => {}
            Some(message @ Event::Message { .. }) => {
                // Counted, and inflated when it was compressed (1009/1007 close on failure).
                let Some((kind, payload)) = sink.received(message) else {
                    return;
                };
                on_message(kind, &payload, sink);
            }
            Some(Event::Ping(payload)) => sink.pong(payload),
            Some(Event::Close(frame)) => {
                sink.close(frame.code, String::new());
                return;
            }
        }
    }
}
