//! permessage-deflate, compress once: one chat-like JSON message (~200 B to 4 KB) compressed by a
//! worker's `Deflater` into the shared RSV1 frame, at level 1 against 6. Throughput is input
//! bytes; the compressed size of each message is printed once so ratio and CPU can be read
//! together: `cargo bench -p ringcast-bench --bench deflate`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_protocol::deflate::{CompressConfig, Deflater, Inflater};
use ringcast_protocol::frame::{MessageKind, OpCode};

/// A JSON array of chat messages, cut to about `len` bytes at a message boundary.
fn chat(len: usize) -> Vec<u8> {
    let users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let words = [
        "hey", "anyone", "seen", "the", "new", "build", "works", "for", "me", "lunch", "at",
        "noon", "deploy", "is", "green", "thanks", "ok", "ship", "it", "tomorrow",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut out = String::from("[");
    let mut id = 180_000_000u64;
    loop {
        let n = 3 + next() % 9;
        let text: Vec<&str> = (0..n).map(|_| words[next() % words.len()]).collect();
        let msg = format!(
            r#"{{"type":"message","room":"general","id":{id},"ts":17{:08},"user":{{"id":{},"name":"{}"}},"text":"{}"}}"#,
            next() % 100_000_000,
            next() % 10_000,
            users[next() % users.len()],
            text.join(" ")
        );
        id += 1 + (next() % 5) as u64;
        if out.len() + msg.len() + 1 > len && out.len() > 1 {
            break;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&msg);
    }
    out.push(']');
    out.into_bytes()
}

fn deflate(c: &mut Criterion) {
    let mut g = c.benchmark_group("deflate_once");
    for size in [256usize, 400, 600, 1024, 4096] {
        let msg = chat(size);
        g.throughput(Throughput::Bytes(msg.len() as u64));
        for level in [1u32, 6] {
            let mut d = Deflater::new(CompressConfig { level, min_size: 0 });
            let z = d.compress(15, &msg).expect("chat JSON compresses");
            eprintln!(
                "deflate_once level {level}: {} B -> {} B ({:.2}x)",
                msg.len(),
                z.len(),
                msg.len() as f64 / z.len() as f64
            );
            g.bench_with_input(
                BenchmarkId::new(format!("level{level}"), msg.len()),
                &msg,
                |b, msg| b.iter(|| d.compressed_frame(15, OpCode::Text, black_box(msg))),
            );
        }
    }
    g.finish();

    let mut g = c.benchmark_group("inflate");
    let mut inflater = Inflater::new();
    let mut out = Vec::with_capacity(8192);
    for size in [256usize, 400, 600, 1024, 4096] {
        let msg = chat(size);
        let z = Deflater::new(CompressConfig {
            level: 1,
            min_size: 0,
        })
        .compress(15, &msg)
        .expect("chat JSON compresses");
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(msg.len()), &z, |b, z| {
            b.iter(|| {
                out.clear();
                inflater
                    .inflate(black_box(z), MessageKind::Text, 1 << 20, &mut out)
                    .unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, deflate);
criterion_main!(benches);
