//! Every unmasking path against the byte-loop reference.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use ringcast_protocol::mask::{
    Level, apply_mask, apply_mask_scalar, apply_mask_with, apply_mask_word,
};

/// A payload somewhere inside a larger buffer, so its start takes every alignment.
#[derive(Debug, Clone)]
struct Case {
    data: Vec<u8>,
    offset: usize,
    key: [u8; 4],
    phase: usize,
    /// Sorted cut points inside the payload, for unmasking in pieces.
    cuts: Vec<usize>,
}

fn case(max_len: usize) -> impl Strategy<Value = Case> {
    (
        0..=max_len,
        0usize..64,
        any::<[u8; 4]>(),
        0usize..4,
        any::<u64>(),
    )
        .prop_flat_map(move |(len, offset, key, phase, seed)| {
            let cuts = proptest::collection::vec(0..=len, 0..=2);
            (
                Just(len),
                Just(offset),
                Just(key),
                Just(phase),
                Just(seed),
                cuts,
            )
        })
        .prop_map(|(len, offset, key, phase, seed, mut cuts)| {
            cuts.sort_unstable();
            Case {
                data: pseudo_random(len + offset, seed),
                offset,
                key,
                phase,
                cuts,
            }
        })
}

/// Cheap filler: generating 70 000 bytes through proptest per case would dominate the run.
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 56) as u8
        })
        .collect()
}

fn supported() -> Vec<Level> {
    Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

fn reference(c: &Case) -> (Vec<u8>, usize) {
    let mut buf = c.data.clone();
    let next = apply_mask_scalar(&mut buf[c.offset..], c.key, c.phase);
    (buf, next)
}

/// Unmasks the payload in pieces at `c.cuts`, carrying the returned phase along.
fn in_pieces(c: &Case, f: impl Fn(&mut [u8], [u8; 4], usize) -> usize) -> (Vec<u8>, usize) {
    let mut buf = c.data.clone();
    let payload = &mut buf[c.offset..];
    let mut phase = c.phase;
    let mut start = 0;
    for &cut in c.cuts.iter().chain(std::iter::once(&payload.len())) {
        phase = f(&mut payload[start..cut], c.key, phase);
        start = cut;
    }
    (buf, phase)
}

fn check_all(c: &Case) -> Result<(), TestCaseError> {
    let expected = reference(c);
    prop_assert_eq!(&in_pieces(c, apply_mask), &expected, "apply_mask");
    prop_assert_eq!(&in_pieces(c, apply_mask_word), &expected, "apply_mask_word");
    for level in supported() {
        let got = in_pieces(c, |b, k, p| apply_mask_with(level, b, k, p));
        prop_assert_eq!(&got, &expected, "{:?}", level);
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/mask_prop.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn long_payloads_match_scalar(c in case(70_000)) {
        check_all(&c)?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// Short payloads hit every head/tail combination far more often than long ones do.
    #[test]
    fn short_payloads_match_scalar(c in case(300)) {
        check_all(&c)?;
    }
}

#[test]
fn every_length_offset_and_phase_up_to_four_avx512_vectors() {
    let data = pseudo_random(330, 7);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    for offset in 0..64 {
        for len in 0..=260 {
            for phase in 0..4 {
                let c = Case {
                    data: data[..offset + len].to_vec(),
                    offset,
                    key,
                    phase,
                    cuts: vec![],
                };
                check_all(&c).unwrap();
            }
        }
    }
}

#[test]
fn masking_twice_restores_the_payload() {
    let orig = pseudo_random(5000, 1);
    let mut buf = orig.clone();
    let key = [1, 2, 3, 4];
    let p = apply_mask(&mut buf[3..], key, 2);
    assert_eq!(p, (2 + 4997) & 3);
    assert_ne!(buf, orig);
    apply_mask(&mut buf[3..], key, 2);
    assert_eq!(buf, orig);
}

#[test]
fn the_best_level_is_supported_and_reported() {
    let best = ringcast_protocol::mask::best();
    assert!(best.is_supported());
    eprintln!("supported: {:?}, best: {best:?}", supported());
}
