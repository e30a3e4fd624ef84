//! Query strings: `k=v&k=v`, percent-decoded, `+` as a space (form encoding, which the
//! Python SDK's `urlencode` writes; the Node SDK writes `%20`).

use std::borrow::Cow;

/// Splits `query` (without the `?`) into decoded `(key, value)` pairs, in order. A pair
/// without `=` has an empty value; empty pairs (`a=1&&b=2`) are skipped. `None` when a
/// decoded key or value is not UTF-8.
#[must_use]
pub fn parse(query: &str) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Some(out)
}

/// The first value of `key` in already-parsed pairs.
#[must_use]
pub fn get<'q>(pairs: &'q [(Cow<'_, str>, Cow<'_, str>)], key: &str) -> Option<&'q str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
}

/// Percent-decodes `text` (and `+` to a space); a `%` not followed by two hex digits is kept
/// as it is. `None` when the result is not UTF-8.
#[must_use]
pub fn decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(text));
    }
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%'
            && let (Some(&h), Some(&l)) = (raw.get(i + 1), raw.get(i + 2))
            && let (Some(h), Some(l)) = (hex_digit(h), hex_digit(l))
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
