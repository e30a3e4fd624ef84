//! JSON helpers shared by the parsers and writers: string escaping (also of JSON text into a
//! string, Pusher's "double encoding"), decimal numbers, and one simd-json parse into a
//! borrowed DOM with reusable buffers.

use simd_json::prelude::*;
use simd_json::{BorrowedValue, Buffers};

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_escaped(out, s.as_bytes());
}

/// Appends `bytes` (UTF-8 text) as a JSON string literal: quotes, backslash and control
/// characters escaped (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`); everything else, non-ASCII
/// included, verbatim. Writing JSON text this way is Pusher's double encoding: the `data`
/// field is a string whose content is JSON.
pub fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(esc);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Appends `n` in decimal.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

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
