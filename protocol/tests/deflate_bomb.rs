//! A compressed bomb costs bounded memory and time: inflating stops as soon as the output
//! crosses the message limit (docs/limits.md#messages), whatever the message would inflate to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use ringcast_protocol::deflate::{Compressor, Inflater};
use ringcast_protocol::frame::MessageKind;
use ringcast_protocol::{CloseCode, ProtocolError};

/// Counts live heap bytes and their peak on this thread (the harness's threads are not
/// counted).
struct Peak;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(n: usize) {
    LIVE.with(|l| {
        let now = l.get() + n;
        l.set(now);
        PEAK.with(|p| p.set(p.get().max(now)));
    });
}

fn shrank(n: usize) {
    LIVE.with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        shrank(l.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(l.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// Peak bytes allocated on this thread while `f` runs, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

fn bomb(inflated: usize) -> Vec<u8> {
    let mut z = Vec::new();
    Compressor::new(9, 15).compress(&vec![0u8; inflated], &mut z);
    z
}

#[test]
fn a_zip_bomb_is_refused_at_the_cap_with_bounded_memory() {
    // 10 MB of zeros is about 10 KB compressed (deflate's best ratio is ~1032:1).
    let z = bomb(10_000_000);
    assert!(z.len() < 11_000, "{} bytes", z.len());
    let limit: u64 = 1 << 20;
    let mut inflater = Inflater::new();
    // Warm up: zlib allocates its window on first use, once per worker.
    inflater
        .inflate(&z[..100], MessageKind::Binary, 1000, &mut Vec::new())
        .ok();
    let start = Instant::now();
    let (result, peak) = peak_during(|| {
        let mut out = Vec::new();
        let r = inflater.inflate(&z, MessageKind::Binary, limit, &mut out);
        (r, out.capacity())
    });
    let elapsed = start.elapsed();
    let (r, capacity) = result;
    let err = r.unwrap_err();
    assert_eq!(
        err,
        ProtocolError::MessageTooBig {
            size: limit + 1,
            limit
        }
    );
    assert_eq!(CloseCode::from(&err), CloseCode::TOO_BIG);
    assert!(capacity as u64 <= limit + 1, "output capacity {capacity}");
    // The output's doublings (a reallocation holds old and new for a moment) and nothing of
    // the 10 MB.
    assert!(peak as u64 <= 2 * limit + 64 * 1024, "peak {peak} bytes");
    // It stopped at ~1 MiB instead of inflating 10 MB (generous bound for a slow CI machine).
    assert!(elapsed.as_millis() < 500, "{elapsed:?}");
    eprintln!(
        "bomb: {} bytes compressed, refused at {limit} bytes; peak {peak} bytes, {elapsed:?}",
        z.len()
    );
}

#[test]
fn a_bomb_as_text_is_refused_the_same_way() {
    let z = bomb(10_000_000);
    let mut out = Vec::new();
    let err = Inflater::new()
        .inflate(&z, MessageKind::Text, 64 * 1024, &mut out)
        .unwrap_err();
    assert!(matches!(err, ProtocolError::MessageTooBig { .. }));
    assert!(out.capacity() <= 64 * 1024 + 1);
}

#[test]
fn the_inflater_holds_no_message_between_messages() {
    let mut inflater = Inflater::new();
    let z = bomb(100_000);
    let (_, first) = peak_during(|| {
        let mut out = Vec::new();
        inflater
            .inflate(&z, MessageKind::Binary, 1 << 20, &mut out)
            .unwrap();
    });
    // The output belongs to the caller; the inflater's own state (window, tables) is allocated
    // once: a second message allocates only its output.
    let live_before = LIVE.with(Cell::get);
    let mut out = Vec::new();
    inflater
        .inflate(&z, MessageKind::Binary, 1 << 20, &mut out)
        .unwrap();
    assert_eq!(out.len(), 100_000);
    let held = LIVE.with(Cell::get) - live_before - out.capacity();
    assert_eq!(
        held, 0,
        "the inflater grew by {held} bytes (first message peak {first})"
    );
}

#[test]
fn per_worker_state_is_small_and_per_connection_state_is_none() {
    // What a worker pays once: the inflater (its 32 KiB window included, after a first
    // message) and a compressor per window size in use. A connection that negotiated deflate
    // pays nothing more than the `Negotiated` it keeps (two bytes).
    let (mut inflater, inflater_new) = peak_during(Inflater::new);
    let mut z = Vec::new();
    Compressor::new(1, 15).compress(&vec![b'a'; 100_000], &mut z);
    let mut out = Vec::with_capacity(200_000);
    let before = LIVE.with(Cell::get);
    inflater
        .inflate(&z, MessageKind::Binary, 1 << 20, &mut out)
        .unwrap();
    assert_eq!(out.capacity(), 200_000);
    let window = LIVE.with(Cell::get) - before;
    let (_compressor, compressor_15) = peak_during(|| Compressor::new(1, 15));
    let (_small, compressor_9) = peak_during(|| Compressor::new(1, 9));
    eprintln!(
        "inflater {inflater_new} B + {window} B on first use; compressor at level 1: 15 bits {compressor_15} B, 9 bits {compressor_9} B; Negotiated {} B",
        std::mem::size_of::<ringcast_protocol::deflate::Negotiated>()
    );
    assert!(inflater_new + window <= 64 * 1024);
    assert!(compressor_15 <= 400 * 1024);
    assert!(std::mem::size_of::<ringcast_protocol::deflate::Negotiated>() <= 2);
}
