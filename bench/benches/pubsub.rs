//! Pub/sub JSON codec micro-benchmarks (docs/pubsub.md, bench/README.md).
//!
//! `parse/*`: one publish command of about 100 B and 1.5 KB, parsed by our reused simd-json
//! [`Parser`] and, side by side, by serde_json into a borrowed struct (`&str` op, `Cow` topic,
//! `&RawValue` id and data: the cheapest fair serde_json equivalent). Both yield the topic and the
//! raw text of id and data. `envelope/*`: the `message` envelope for 64 B of data into a reused
//! `Vec`.

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringcast_pubsub::command::{Command, Parser};
use ringcast_pubsub::envelope;
use serde_json::value::RawValue;

/// What serde_json must extract to match our parser.
#[derive(serde::Deserialize)]
struct SerdeCmd<'a> {
    op: &'a str,
    #[serde(borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// A publish of exactly `len` bytes: a chat message whose text pads it out.
fn publish(len: usize) -> Vec<u8> {
    let make = |pad: usize| {
        format!(
            r#"{{"op":"publish","topic":"chat","id":17,"data":{{"user":"ann","tags":[1,2],"text":"{}"}}}}"#,
            "hello there ".repeat(pad / 12 + 1)[..pad].to_owned()
        )
    };
    let base = make(0).len();
    let msg = make(len - base).into_bytes();
    assert_eq!(msg.len(), len);
    msg
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (label, len) in [("publish-100B", 100), ("publish-1500B", 1500)] {
        let msg = publish(len);
        group.throughput(Throughput::Bytes(len as u64));
        let mut parser = Parser::new();
        group.bench_function(format!("simd-json/{label}"), |b| {
            b.iter(|| match parser.parse(black_box(&msg)) {
                Ok(Command::Publish { topic, id, data }) => {
                    black_box((topic.len(), id.map(str::len), data.len()))
                }
                _ => unreachable!("the bench message is a publish"),
            })
        });
        // Lower bound of any simd-json path: copy + `fill_tape` with reused buffers, no field
        // extraction.
        let mut buffers = simd_json::Buffers::new(2048);
        let mut copy = Vec::with_capacity(2048);
        let mut tape = simd_json::Tape(Vec::with_capacity(512));
        group.bench_function(format!("simd-json-tape-only/{label}"), |b| {
            b.iter(|| {
                copy.clear();
                copy.extend_from_slice(black_box(&msg));
                let mut t: simd_json::Tape<'_> =
                    std::mem::replace(&mut tape, simd_json::Tape(Vec::new())).reset();
                simd_json::fill_tape(&mut copy, &mut buffers, &mut t).expect("valid");
                let n = t.0.len();
                tape = t.reset();
                black_box(n)
            })
        });
        group.bench_function(format!("serde_json/{label}"), |b| {
            b.iter(|| {
                let cmd: SerdeCmd<'_> =
                    serde_json::from_slice(black_box(&msg)).expect("the bench message is valid");
                black_box((
                    cmd.op.len(),
                    cmd.topic.map(|t| t.len()),
                    cmd.id.map(|i| i.get().len()),
                    cmd.data.map(|d| d.get().len()),
                ))
            })
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    let data = format!(r#"{{"user":"ann","text":"{}"}}"#, "x".repeat(64 - 24));
    assert_eq!(data.len(), 64);
    let mut out = Vec::with_capacity(256);
    group.throughput(Throughput::Bytes(64));
    group.bench_function("message-64B", |b| {
        b.iter(|| {
            out.clear();
            envelope::message(
                &mut out,
                black_box("chat"),
                black_box(data.as_bytes()),
                Some(42),
            );
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
