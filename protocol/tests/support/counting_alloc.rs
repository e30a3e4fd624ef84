//! A counting global allocator for the no-allocation tests (protocol and pubsub include this
//! file with `#[path]`): it forwards every call to the system allocator and counts, per thread,
//! each allocation and reallocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

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
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and reallocations made by this thread so far.
pub fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

/// The zero counts the including tests assert mean something only if the counter counts.
#[test]
fn the_counter_sees_allocations_and_reallocations() {
    let before = allocs();
    let mut v: Vec<u8> = std::hint::black_box(Vec::with_capacity(1));
    assert_eq!(allocs() - before, 1);
    v.reserve(4096);
    assert_eq!(allocs() - before, 2);
    drop(std::hint::black_box(v));
}
