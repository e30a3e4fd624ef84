//! UTF-8 validation throughput: std, simdutf8 one-shot and the streaming validator.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_protocol::utf8::{Utf8Validator, validate};

const LEN: usize = 64 * 1024;

/// Deterministic prose: words drawn from `words` by a fixed LCG, cut to at most [`LEN`] bytes on
/// a character boundary.
fn text(words: &[&str], sep: &str) -> Vec<u8> {
    let mut s = String::with_capacity(LEN + 64);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    while s.len() < LEN {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(words[(seed >> 33) as usize % words.len()]);
        s.push_str(if (seed >> 28) & 15 == 0 { ". " } else { sep });
    }
    let mut end = LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.into_bytes()
}

fn corpora() -> [(&'static str, Vec<u8>); 3] {
    let ascii = [
        "the",
        "server",
        "frame",
        "message",
        "payload",
        "close",
        "ping",
        "socket",
        "buffer",
        "stream",
        "of",
        "and",
        "with",
        "client",
        "handshake",
        "opcode",
    ];
    let latin = [
        "le", "café", "déjà", "où", "été", "garçon", "à", "Straße", "über", "schön", "Mädchen",
        "Größe", "naïve", "très", "fenêtre", "und", "der", "élève", "Bücher", "noël",
    ];
    let cjk = [
        "服务器",
        "消息",
        "数据",
        "连接",
        "协议",
        "网络",
        "字符",
        "验证",
        "日本語",
        "テキスト",
        "한국어",
        "문자열",
        "的",
        "是",
        "在",
        "帧",
    ];
    [
        ("ascii", text(&ascii, " ")),
        ("latin", text(&latin, " ")),
        ("cjk", text(&cjk, "，")),
    ]
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for (kind, bytes) in corpora() {
        assert!(std::str::from_utf8(&bytes).is_ok());
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("std", kind), &bytes, |b, bytes| {
            b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok())
        });
        // `validate` is a bare call of `simdutf8::basic::from_utf8`; this crate's manifest does
        // not depend on simdutf8 itself.
        group.bench_with_input(BenchmarkId::new("simdutf8", kind), &bytes, |b, bytes| {
            b.iter(|| validate(black_box(bytes)).is_ok())
        });
        group.bench_with_input(
            BenchmarkId::new("stream_1x64KiB", kind),
            &bytes,
            |b, bytes| {
                let mut v = Utf8Validator::new();
                b.iter(|| {
                    let ok = v.feed(black_box(bytes)).is_ok();
                    ok & v.finish().is_ok()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("stream_4KiB", kind), &bytes, |b, bytes| {
            let mut v = Utf8Validator::new();
            b.iter(|| {
                let mut ok = true;
                for chunk in black_box(bytes).chunks(4096) {
                    ok &= v.feed(chunk).is_ok();
                }
                ok & v.finish().is_ok()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, utf8);
criterion_main!(benches);
