//! The two gaps in simd-json that `super::command` closes (issue 21 row 12; the command
//! module's doc says how): numbers no `u64`/`i64`/finite `f64` holds, neutralized for a
//! second parse, and lone surrogate escapes, which simd-json decodes as U+0000.

/// Finds every valid JSON number among the scalars that no `u64`/`i64`/finite `f64` holds (what
/// simd-json refuses as `InvalidNumber`), copies `input` into `retry` with each one overwritten by
/// `0` and spaces (same length), and records their offsets in `huge`. False when there is none, so
/// the error stands.
pub(crate) fn neutralize_huge_numbers(
    input: &[u8],
    structurals: &[u32],
    retry: &mut Vec<u8>,
    huge: &mut Vec<u32>,
) -> bool {
    huge.clear();
    retry.clear();
    retry.extend_from_slice(input);
    for &p in structurals {
        let start = p as usize;
        if !matches!(input.get(start), Some(b'-' | b'0'..=b'9')) {
            continue;
        }
        let len = input[start..]
            .iter()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        let token = &input[start..start + len];
        if out_of_range_number(token) {
            huge.push(p);
            retry[start] = b'0';
            retry[start + 1..start + len].fill(b' ');
        }
    }
    !huge.is_empty()
}

/// True for a token that is a valid JSON number (RFC 8259 §6) out of simd-json's range: an integer
/// beyond `i64::MIN..=u64::MAX`, or a number whose `f64` is infinite.
fn out_of_range_number(token: &[u8]) -> bool {
    let digits = |i: usize| {
        token[i.min(token.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(token.first() == Some(&b'-'));
    let int = digits(i);
    if int == 0 || (int > 1 && token[i] == b'0') {
        return false;
    }
    i += int;
    let mut integer = true;
    if token.get(i) == Some(&b'.') {
        let frac = digits(i + 1);
        if frac == 0 {
            return false;
        }
        i += 1 + frac;
        integer = false;
    }
    if matches!(token.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(token.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
        integer = false;
    }
    if i != token.len() {
        return false;
    }
    // SAFETY: every byte of `token` is an ASCII digit, sign, '.', 'e' or 'E' (checked above).
    let text = unsafe { std::str::from_utf8_unchecked(token) };
    if integer {
        text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
    } else {
        text.parse::<f64>().is_ok_and(f64::is_infinite)
    }
}

/// True when the raw JSON text of a string holds a `\uD800`-`\uDFFF` escape that is not a high
/// surrogate directly followed by a low one.
pub(crate) fn has_lone_surrogate(raw: &str) -> bool {
    let b = raw.as_bytes();
    let hex = |at: usize| -> Option<u32> {
        let h = b.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            i += 2; // `\\`, `\"`, `\n`...: the escaped byte is never the start of an escape
            continue;
        }
        let Some(cp) = hex(i + 2) else {
            return true; // simd-json refuses bad hex first; refuse it here too
        };
        i += 6;
        match cp {
            0xD800..=0xDBFF => {
                let paired = b.get(i) == Some(&b'\\')
                    && b.get(i + 1) == Some(&b'u')
                    && hex(i + 2).is_some_and(|lo| (0xDC00..=0xDFFF).contains(&lo));
                if !paired {
                    return true;
                }
                i += 6;
            }
            0xDC00..=0xDFFF => return true,
            _ => {}
        }
    }
    false
}
