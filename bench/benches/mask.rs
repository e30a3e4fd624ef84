//! Unmasking throughput: byte loop, word loop and the dispatched SIMD kernel.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_protocol::mask::{apply_mask, apply_mask_scalar, apply_mask_word};

const SIZES: [(usize, &str); 5] = [
    (16, "16B"),
    (125, "125B"),
    (1024, "1KiB"),
    (64 * 1024, "64KiB"),
    (1024 * 1024, "1MiB"),
];

fn mask(c: &mut Criterion) {
    type Unmask = fn(&mut [u8], [u8; 4], usize) -> usize;
    let impls: [(&str, Unmask); 3] = [
        ("byte_loop", apply_mask_scalar),
        ("word_loop", apply_mask_word),
        ("ringcast", apply_mask),
    ];
    let key = [0x8d, 0x21, 0x5e, 0xf3];
    let mut group = c.benchmark_group("mask");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        // One byte past an allocation start, as a payload after a frame header usually is.
        let mut storage = vec![0x5au8; size + 1];
        for (name, f) in impls {
            group.bench_with_input(BenchmarkId::new(name, label), &size, |b, _| {
                b.iter(|| f(black_box(&mut storage[1..]), black_box(key), black_box(1)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
