//! Decoder memory follows the bytes that arrived (docs/limits.md#messages): a header alone reserves nothing, a
//! partial message grows by doubling up to the limit, and a finished message leaves nothing behind.

use ringcast_protocol::frame::{Decoder, DecoderConfig, Event, OpCode, encode_masked_frame};

const KEY: [u8; 4] = [9, 8, 7, 6];

fn masked(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_masked_frame(&mut out, op, fin, payload, KEY);
    out
}

/// Feeds all of `wire` in one call sequence; returns the payload lengths of the messages seen.
fn feed(dec: &mut Decoder, wire: &[u8]) -> Vec<usize> {
    let mut buf = wire.to_vec();
    let mut pos = 0;
    let mut seen = Vec::new();
    while pos < buf.len() {
        let (n, ev) = dec.decode(&mut buf[pos..]).expect("valid frames");
        pos += n;
        if let Some(Event::Message { payload, .. }) = ev {
            seen.push(payload.len());
        }
    }
    seen
}

#[test]
fn a_finished_fragmented_message_leaves_no_buffer() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let part = vec![b'x'; 50_000];
    let mut wire = masked(OpCode::Binary, false, &part);
    for i in 0..3 {
        wire.extend(masked(OpCode::Continuation, i == 2, &part));
    }
    // Everything but the last fragment: the message is partial and its bytes are held.
    let last = masked(OpCode::Continuation, true, &part).len();
    assert!(feed(&mut dec, &wire[..wire.len() - last]).is_empty());
    let held = dec.pending_bytes();
    assert!((150_000..=2 * 150_000).contains(&held), "holds {held}");
    // The last fragment completes it; once the event is gone, nothing is held, with no further
    // input from the client.
    assert_eq!(feed(&mut dec, &wire[wire.len() - last..]), vec![200_000]);
    assert_eq!(dec.pending_bytes(), 0);
    assert!(dec.is_idle());
}

#[test]
fn a_message_split_across_reads_leaves_no_buffer() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let wire = masked(OpCode::Text, true, &[b'a'; 5000]);
    assert!(feed(&mut dec, &wire[..3000]).is_empty());
    assert!(dec.pending_bytes() > 0);
    assert_eq!(feed(&mut dec, &wire[3000..]), vec![5000]);
    assert_eq!(dec.pending_bytes(), 0);
}

#[test]
fn a_header_alone_reserves_nothing() {
    let mut dec = Decoder::new(DecoderConfig::default());
    // A final binary frame announcing 1 MiB (the default limit), then 10 payload bytes.
    let mut wire = vec![0x82, 0xff];
    wire.extend_from_slice(&(1u64 << 20).to_be_bytes());
    wire.extend_from_slice(&KEY);
    wire.extend_from_slice(&[0u8; 10]);
    assert!(feed(&mut dec, &wire).is_empty());
    let held = dec.pending_bytes();
    assert!(
        (10..=128).contains(&held),
        "a 1 MiB header and 10 bytes hold {held} bytes"
    );
    // The same for a 64 KiB - 1 frame (16-bit length).
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut wire = vec![0x82, 0xfe, 0xff, 0xff];
    wire.extend_from_slice(&KEY);
    wire.extend_from_slice(&[0u8; 10]);
    assert!(feed(&mut dec, &wire).is_empty());
    assert!(dec.pending_bytes() <= 128, "{}", dec.pending_bytes());
}

#[test]
fn split_header_and_control_bytes_are_counted_then_freed() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let ping = masked(OpCode::Ping, true, &[1; 100]);
    // One header byte, then the rest of the header and part of the payload.
    assert!(feed(&mut dec, &ping[..1]).is_empty());
    assert_eq!(dec.pending_bytes(), 1);
    assert!(feed(&mut dec, &ping[1..40]).is_empty());
    assert!(dec.pending_bytes() >= 34, "{}", dec.pending_bytes());
    let mut rest = ping[40..].to_vec();
    let len = rest.len();
    let (n, ev) = dec.decode(&mut rest).expect("valid ping");
    assert_eq!(n, len);
    assert_eq!(ev, Some(Event::Ping(&[1u8; 100][..])));
    assert_eq!(dec.pending_bytes(), 0);
    assert!(dec.is_idle());
}

#[test]
fn growth_is_amortized_and_capped_by_the_limit() {
    let limit = 100_000;
    let mut dec = Decoder::new(DecoderConfig {
        max_message_bytes: limit,
        ..DecoderConfig::default()
    });
    let mut wire = masked(OpCode::Binary, true, &vec![7u8; limit as usize]);
    let mut pos = 0;
    let mut capacities = Vec::new();
    while pos < wire.len() {
        let end = (pos + 1000).min(wire.len());
        let (n, ev) = dec.decode(&mut wire[pos..end]).expect("valid frame");
        pos += n;
        if let Some(Event::Message { payload, .. }) = ev {
            assert_eq!(payload.len(), limit as usize);
            assert!(payload.as_ref().iter().all(|&b| b == 7));
        } else {
            let held = dec.pending_bytes();
            assert!(
                held <= limit as usize,
                "holds {held} over the limit {limit}"
            );
            if capacities.last() != Some(&held) {
                capacities.push(held);
            }
        }
    }
    // Doubling from a small start: a handful of reallocations, not one per read.
    assert!(capacities.len() <= 16, "{capacities:?}");
    assert_eq!(dec.pending_bytes(), 0);
}
