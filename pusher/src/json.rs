//! JSON helpers shared by the parsers and writers: string escaping (also of JSON text into a
//! string, Pusher's "double encoding"), decimal numbers, and one simd-json parse into a
//! borrowed DOM with reusable buffers.

use simd_json::prelude::*;
use simd_json::{BorrowedValue, Buffers};

// One JSON string writer and number writer for every dialect (`ringcast_pubsub::envelope`).
pub use ringcast_pubsub::envelope::{write_escaped, write_str, write_u64};

/// A reusable simd-json parser: a private copy of the input (simd-json unescapes in place)
/// and its buffers, grown to the largest input seen.
#[derive(Default)]
pub struct Dom {
    scratch: Vec<u8>,
    buffers: Buffers,
}

impl std::fmt::Debug for Dom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dom").finish_non_exhaustive()
    }
}

impl Dom {
    /// Parses `input` (never modified); `None` when it is not JSON.
    pub fn parse(&mut self, input: &[u8]) -> Option<BorrowedValue<'_>> {
        self.scratch.clear();
        self.scratch.extend_from_slice(input);
        simd_json::to_borrowed_value_with_buffers(&mut self.scratch, &mut self.buffers).ok()
    }
}

/// The JSON text of `value` (for a value passed on as JSON: a client event's object `data`,
/// a member's `user_info`).
#[must_use]
pub fn text(value: &BorrowedValue<'_>) -> String {
    value.encode()
}

/// A string, or an integer written in decimal (Pusher's SDKs accept numeric user ids).
#[must_use]
pub fn string_or_integer(value: &BorrowedValue<'_>) -> Option<String> {
    if let Some(s) = value.as_str() {
        return Some(s.to_owned());
    }
    if let Some(n) = value.as_u64() {
        return Some(n.to_string());
    }
    value.as_i64().map(|n| n.to_string())
}
