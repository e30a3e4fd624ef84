//! Differential fuzzing of UTF-8 validation: the streaming validator fed in arbitrary chunks, and
//! the one-shot `validate`, against `std::str::from_utf8`; the streaming validator must also fail
//! exactly when the bytes seen so far stop being a prefix of valid UTF-8.
//!
//! Input layout: byte 0 is `k`, the number of cuts (`k % 9`); the next `k` bytes are cut offsets
//! (scaled to the text); the rest is the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_protocol::utf8::{Utf8Validator, validate};

/// Whether `bytes` can still be extended into valid UTF-8.
fn is_valid_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fuzz_target!(|data: &[u8]| {
    let [k, rest @ ..] = data else {
        return;
    };
    let k = usize::from(*k % 9).min(rest.len());
    let (cut_bytes, text) = rest.split_at(k);
    let mut cuts: Vec<usize> = cut_bytes
        .iter()
        .map(|&c| usize::from(c) * text.len() / 255)
        .collect();
    cuts.push(text.len());
    cuts.sort_unstable();

    let expect = std::str::from_utf8(text).is_ok();
    assert_eq!(validate(text).is_ok(), expect, "validate");

    let mut v = Utf8Validator::new();
    let mut start = 0;
    let mut streamed = true;
    for &end in &cuts {
        let ok = v.feed(&text[start..end]).is_ok();
        assert_eq!(
            ok,
            is_valid_prefix(&text[..end]),
            "feed up to {end} (chunks end at {cuts:?})"
        );
        if !ok {
            streamed = false;
            break;
        }
        start = end;
    }
    if streamed {
        streamed = v.finish().is_ok();
    }
    assert_eq!(
        streamed, expect,
        "streaming verdict, chunks end at {cuts:?}"
    );

    // After finish (or a reset) the validator starts afresh.
    v.reset();
    assert!(
        v.feed(b"ok").is_ok() && v.finish().is_ok(),
        "reset did not clear state"
    );
});
