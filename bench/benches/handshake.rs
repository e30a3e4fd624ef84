//! Opening-handshake micro-benchmarks on the upgrade request a current Chrome sends.
//!
//! `parse_request` includes validation and the `Sec-WebSocket-Accept` computation (SHA-1 and
//! base64), which `accept_key` times alone; `parse_select_render` is the whole server side of a
//! handshake: parse, choose the subprotocol, render the 101 into a reused buffer.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringcast_protocol::handshake::{Request, accept_key, parse_request, render_accept};

const CHROME: &[u8] = b"GET /ws?room=lobby HTTP/1.1\r\n\
Host: localhost:9001\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://localhost:9001\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
\r\n";

const MAX_HEAD: usize = 8192;

fn handshake(c: &mut Criterion) {
    let Ok(Some((Request::Upgrade(up), n))) = parse_request(CHROME, MAX_HEAD) else {
        panic!("the Chrome request must parse as an upgrade");
    };
    assert_eq!(n, CHROME.len());
    assert_eq!(up.accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");

    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(CHROME), MAX_HEAD));
    });
    g.bench_function("accept_key", |b| {
        b.iter(|| accept_key(black_box(b"x3JJHMbDL1EzLkh9GBhXDw==")));
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function("parse_select_render", |b| {
        b.iter(|| {
            let Ok(Some((Request::Upgrade(up), _))) = parse_request(black_box(CHROME), MAX_HEAD)
            else {
                unreachable!("checked above");
            };
            let protocol = up
                .select_protocol(|p| p == "chat")
                .expect("chat is offered");
            out.clear();
            render_accept(&mut out, &up.accept, protocol);
            black_box(out.len())
        });
    });
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
