//! The streaming validator against std, with messages cut at arbitrary points.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use ringcast_protocol::utf8::{Utf8Validator, validate};

/// Second bytes only matter by which interval they fall in, and these are the interval ends, so
/// trying them is enough to find a completion if any exists.
const PROBES: [u8; 6] = [0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF];

/// Reference fail-fast oracle, independent of the validator: can `bytes` be extended to valid
/// UTF-8 by at most three more bytes (a cut code point never needs more)?
fn has_completion(bytes: &[u8]) -> bool {
    let rest = match std::str::from_utf8(bytes) {
        Ok(_) => return true,
        // Everything before `valid_up_to` is complete, so only the rest can need completing.
        Err(e) => &bytes[e.valid_up_to()..],
    };
    let mut buf = Vec::with_capacity(rest.len() + 3);
    for a in PROBES {
        for b in PROBES {
            for c in PROBES {
                for ext in [&[a][..], &[a, b], &[a, b, c]] {
                    buf.clear();
                    buf.extend_from_slice(rest);
                    buf.extend_from_slice(ext);
                    if std::str::from_utf8(&buf).is_ok() {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// std's own view of a valid prefix: valid, or failing only because input ended.
fn std_prefix_ok(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// Feeds `bytes` cut at `cuts` and checks every step against the oracle.
fn check_stream(
    bytes: &[u8],
    cuts: &[usize],
    oracle: fn(&[u8]) -> bool,
) -> Result<(), TestCaseError> {
    let mut v = Utf8Validator::new();
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    let mut start = 0;
    for end in cuts.into_iter().chain(std::iter::once(bytes.len())) {
        let got = v.feed(&bytes[start..end]).is_ok();
        prop_assert_eq!(
            got,
            oracle(&bytes[..end]),
            "feed up to {} of {:02x?}",
            end,
            bytes
        );
        if !got {
            prop_assert!(v.feed(b"a").is_err(), "errors stick");
            prop_assert!(v.finish().is_err());
            return Ok(());
        }
        start = end;
    }
    let whole = std::str::from_utf8(bytes).is_ok();
    prop_assert_eq!(v.finish().is_ok(), whole, "finish of {:02x?}", bytes);
    prop_assert_eq!(validate(bytes).is_ok(), whole);
    Ok(())
}

/// A code point from one of the scripts a chat message is likely to carry.
fn text_char(r: u64) -> char {
    let ranges: [(u32, u32); 8] = [
        (0x20, 0x7E),
        (0x20, 0x7E),
        (0x20, 0x7E),
        (0xA0, 0x17F),
        (0x4E00, 0x9FFF),
        (0xAC00, 0xD7A3),
        (0x1F300, 0x1FAFF),
        (0x80, 0x10FFFF),
    ];
    let (lo, hi) = ranges[(r >> 61) as usize];
    let c = lo + ((r & 0xFFFF_FFFF) as u32) % (hi - lo + 1);
    char::from_u32(c).unwrap_or('\u{FFFD}')
}

/// Text from a seed rather than char by char: per-char strategies make long inputs slow to draw.
fn text(max_chars: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..max_chars, any::<u64>()).prop_map(|(n, mut seed)| {
        let mut s = String::with_capacity(n * 2);
        for _ in 0..n {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push(text_char(seed));
        }
        s.into_bytes()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), 0x80u8..0xC0, 0xC0u8..=0xFF];
    prop_oneof![
        (any::<prop::sample::Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        Mutation::Remove(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
}

/// Bytes with up to `n` cut points inside them.
fn with_cuts(
    bytes: impl Strategy<Value = Vec<u8>>,
    n: usize,
) -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    bytes.prop_flat_map(move |b| {
        let len = b.len();
        (Just(b), prop::collection::vec(0..=len, 0..=n))
    })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/utf8_prop.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn random_bytes((bytes, cuts) in with_cuts(prop::collection::vec(any::<u8>(), 0..64), 4)) {
        check_stream(&bytes, &cuts, has_completion)?;
    }

    #[test]
    fn valid_text((bytes, cuts) in with_cuts(text(300), 6)) {
        check_stream(&bytes, &cuts, has_completion)?;
    }

    #[test]
    fn mutated_text(
        (bytes, cuts) in with_cuts(
            (text(300), prop::collection::vec(mutation(), 1..4)).prop_map(|(mut b, ms)| {
                for m in &ms {
                    mutate(&mut b, m);
                }
                b
            }),
            6,
        )
    ) {
        check_stream(&bytes, &cuts, has_completion)?;
    }

    /// Long enough for simdutf8's vector loop, with cuts landing inside its blocks.
    #[test]
    fn long_mutated_text(
        (bytes, cuts) in with_cuts(
            (text(12_000), prop::collection::vec(mutation(), 0..2)).prop_map(|(mut b, ms)| {
                for m in &ms {
                    mutate(&mut b, m);
                }
                b
            }),
            8,
        )
    ) {
        check_stream(&bytes, &cuts, std_prefix_ok)?;
    }

    /// Long ASCII runs take the validator's own ASCII skip before simdutf8 sees the rest.
    #[test]
    fn ascii_runs_then_text(
        (bytes, cuts) in with_cuts(
            (0..700usize, text(80), prop::collection::vec(mutation(), 0..2)).prop_map(
                |(n, t, ms)| {
                    let mut b = b"ws".repeat(n / 2);
                    b.extend_from_slice(&t);
                    for m in &ms {
                        mutate(&mut b, m);
                    }
                    b
                },
            ),
            4,
        )
    ) {
        check_stream(&bytes, &cuts, has_completion)?;
    }

    #[test]
    fn oracles_agree(bytes in prop::collection::vec(any::<u8>(), 0..12)) {
        prop_assert_eq!(has_completion(&bytes), std_prefix_ok(&bytes));
    }
}

#[test]
fn every_sequence_of_up_to_two_bytes() {
    for a in 0..=255u8 {
        check_stream(&[a], &[], has_completion).unwrap();
        for b in 0..=255u8 {
            check_stream(&[a, b], &[], std_prefix_ok).unwrap();
            check_stream(&[a, b], &[1], std_prefix_ok).unwrap();
        }
    }
}

#[test]
fn three_and_four_byte_sequences_around_every_boundary() {
    // Leads from C0 up, later bytes across the continuation range and a little beyond it.
    let around = (0x70u8..=0xC8)
        .step_by(3)
        .chain([0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0]);
    let around: Vec<u8> = around.collect();
    for a in 0xC0..=0xFFu8 {
        for &b in &around {
            for &c in &around {
                for cuts in [&[][..], &[1], &[2], &[1, 2]] {
                    check_stream(&[a, b, c], cuts, std_prefix_ok).unwrap();
                }
                check_stream(&[a, b, c, 0x80], &[2], std_prefix_ok).unwrap();
                check_stream(&[b'x', a, b, c, 0xBF, b'y'], &[3], std_prefix_ok).unwrap();
            }
        }
    }
}
