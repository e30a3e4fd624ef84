//! Frame codec micro-benchmarks.
//!
//! Decoding: 10,000 masked text frames laid back to back in one buffer (fewer for the 16 KiB
//! variant, so the buffer stays a few MiB), decoded by one `Decoder` the way the server drives it
//! over a receive buffer. Each reported element is one frame and includes header parsing,
//! unmasking in place, UTF-8 validation of the text and building the event. Because decoding
//! unmasks in place, every iteration first restores the pristine masked wire into a scratch
//! buffer; that copy is *not* timed in `decode/*` (it runs before the clock starts, so the
//! decoder then reads a cache-warm buffer), and `copy/*` times the copy alone for reference.
//!
//! Encoding: `encode_frame` into a reused `Vec` (no allocation once it has grown) and
//! `shared_frame` (one `Arc<[u8]>` allocation per frame), for 64 B and 16 KiB payloads.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_protocol::frame::{
    Decoder, DecoderConfig, Event, OpCode, encode_frame, encode_masked_frame, shared_frame,
};

/// (label, payload bytes, frames in the buffer).
const DECODE_CASES: [(&str, usize, usize); 3] = [
    ("32B-frame", 26, 10_000),
    ("125B-payload", 125, 10_000),
    ("16KiB-payload", 16 * 1024, 256),
];

/// `count` masked text frames of `payload_len` printable ASCII bytes, with varying keys.
fn masked_wire(payload_len: usize, count: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| b' ' + (i % 95) as u8).collect();
    let mut wire = Vec::with_capacity(count * (payload_len + 14));
    for i in 0..count {
        let key = (i as u32).wrapping_mul(0x9e37_79b9).to_le_bytes();
        encode_masked_frame(&mut wire, OpCode::Text, true, &payload, key);
    }
    wire
}

/// Decodes every frame in `buf`; returns the number of messages and payload bytes seen.
fn decode_all(dec: &mut Decoder, buf: &mut [u8]) -> (usize, usize) {
    let mut pos = 0;
    let (mut messages, mut bytes) = (0, 0);
    while pos < buf.len() {
        let (used, event) = dec.decode(&mut buf[pos..]).expect("valid wire");
        if let Some(Event::Message { payload, .. }) = event {
            messages += 1;
            bytes += black_box(payload).len();
        }
        pos += used;
    }
    (messages, bytes)
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (label, payload_len, count) in DECODE_CASES {
        let wire = masked_wire(payload_len, count);
        let mut scratch = wire.clone();
        let mut dec = Decoder::new(DecoderConfig::default());
        assert_eq!(
            decode_all(&mut dec, &mut scratch),
            (count, count * payload_len)
        );
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    scratch.copy_from_slice(&wire);
                    let start = Instant::now();
                    black_box(decode_all(&mut dec, black_box(&mut scratch)));
                    total += start.elapsed();
                }
                total
            });
        });
    }
    g.finish();

    // The untimed restore of the wire above, timed on its own.
    let mut g = c.benchmark_group("copy");
    for (label, payload_len, count) in DECODE_CASES {
        let wire = masked_wire(payload_len, count);
        let mut scratch = vec![0u8; wire.len()];
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| scratch.copy_from_slice(black_box(&wire)));
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (label, len) in [("64B", 64usize), ("16KiB", 16 * 1024)] {
        let payload = vec![b'x'; len];
        g.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(len + 16);
        g.bench_function(BenchmarkId::new("encode_frame", label), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, OpCode::Text, black_box(&payload));
                black_box(out.len())
            });
        });
        g.bench_function(BenchmarkId::new("shared_frame", label), |b| {
            b.iter(|| shared_frame(OpCode::Text, black_box(&payload)));
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
