//! Decoding small whole frames allocates nothing (a counting global allocator proves it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ringcast_protocol::frame::{Decoder, DecoderConfig, Event, OpCode, encode_masked_frame};

struct Counting;
thread_local! {
    // Per thread, so the test harness's own threads cannot disturb the count.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_32_byte_frames_does_not_allocate() {
    let mut wire = Vec::new();
    for i in 0..10_000u32 {
        let payload = format!("message number {i:>10} ok");
        let payload = &payload.as_bytes()[..26];
        encode_masked_frame(&mut wire, OpCode::Text, true, payload, i.to_le_bytes());
    }
    let mut dec = Decoder::new(DecoderConfig::default());
    let before = ALLOCS.with(Cell::get);
    let mut pos = 0;
    let mut messages = 0;
    while pos < wire.len() {
        let (n, ev) = dec.decode(&mut wire[pos..]).expect("valid frames");
        pos += n;
        if let Some(Event::Message { payload, .. }) = ev {
            assert_eq!(&payload[..15], b"message number ");
            messages += 1;
        }
    }
    let after = ALLOCS.with(Cell::get);
    assert_eq!(messages, 10_000);
    assert_eq!(after - before, 0, "the whole-frame path allocated");
}
