//! MinHash signatures and LSH band keys.
//!
//! The idea: the chance that two sets have the same minimum under a random
//! permutation of hashes equals their Jaccard similarity, so the share of
//! equal minima over [`HASHES`] permutations estimates it. Each shingle is
//! hashed once to 64 bits; the permutations are the cheap bijections
//! `h ↦ a_i·h + b_i (mod 2⁶⁴)` with odd `a_i`, whose high bits depend on
//! every bit of `h`. Only the top 16 bits of each minimum are kept (b-bit
//! MinHash): two unrelated minima then agree by chance with probability
//! 2⁻¹⁶, which [`estimate`] corrects for, and a signature is 128 bytes.
//!
//! LSH banding splits the signature into bands of consecutive rows; two
//! posts whose signatures agree on every row of at least one band become
//! candidates. With 16 bands of 4 rows, a pair at Jaccard 0.6 is a
//! candidate with probability 0.89, at 0.7 with 0.987, at 0.3 with 0.12.

/// Number of hash functions (rows) in a signature.
pub const HASHES: usize = 64;

/// A MinHash signature: the top 16 bits of each of [`HASHES`] minima.
pub type Signature = [u16; HASHES];

/// splitmix64: a fast, well-mixed step used for constants and finalising.
pub(crate) const fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The permutation coefficients, fixed at compile time so that signatures
/// are comparable across runs and processes.
const fn coefficients() -> ([u64; HASHES], [u64; HASHES]) {
    let mut a = [0u64; HASHES];
    let mut b = [0u64; HASHES];
    let mut i = 0;
    while i < HASHES {
        a[i] = splitmix(0x7469_6465_0000 + 2 * i as u64) | 1;
        b[i] = splitmix(0x7761_7463_0000 + 2 * i as u64 + 1);
        i += 1;
    }
    (a, b)
}

const COEFFS: ([u64; HASHES], [u64; HASHES]) = coefficients();

/// Hashes bytes to 64 bits (a multiply-rotate over 8-byte words, then
/// [`splitmix`]); `seed` separates kinds of input.
pub(crate) fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x9FB2_1C65_1E98_DF25;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(buf)).wrapping_mul(K).rotate_left(29);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(buf)).wrapping_mul(K).rotate_left(29);
    }
    splitmix(h)
}

/// The signature of a set of shingle hashes (duplicates do not matter).
/// An empty set gives all-`u16::MAX` rows.
///
/// This is the costliest step of sketching a post (64 multiplications per
/// shingle). x86-64 before AVX-512 has no vector 64-bit multiply, so where
/// the CPU has AVX-512 DQ the same loop is compiled a second time with it
/// enabled and chosen at run time: eight rows per instruction, the very
/// same result.
pub fn signature(shingles: &[u64]) -> Signature {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU has just been found to support AVX-512 F and DQ
        // (DQ implies F), all that the function is compiled for.
        return unsafe { signature_avx512(shingles) };
    }
    signature_portable(shingles)
}

/// [`signature`] for CPUs with AVX-512 DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn signature_avx512(shingles: &[u64]) -> Signature {
    signature_portable(shingles)
}

/// [`signature`] on any CPU; inlined into [`signature_avx512`] so that it
/// is vectorised with that function's features.
#[inline(always)]
fn signature_portable(shingles: &[u64]) -> Signature {
    let (a, b) = (&COEFFS.0, &COEFFS.1);
    let mut mins = [u64::MAX; HASHES];
    for &s in shingles {
        for i in 0..HASHES {
            let v = a[i].wrapping_mul(s).wrapping_add(b[i]);
            mins[i] = mins[i].min(v);
        }
    }
    mins.map(|m| (m >> 48) as u16)
}

/// The estimated Jaccard similarity of the sets behind two signatures,
/// corrected for the 2⁻¹⁶ chance of equal 16-bit rows; in `[0, 1]`.
pub fn estimate(x: &Signature, y: &Signature) -> f64 {
    let equal = x.iter().zip(y.iter()).filter(|(a, b)| a == b).count();
    let share = equal as f64 / HASHES as f64;
    let chance = 1.0 / 65_536.0;
    ((share - chance) / (1.0 - chance)).clamp(0.0, 1.0)
}

/// Hashes kept in a founder sketch (see [`sketch_jaccard`]).
pub const SKETCH: usize = 128;

/// The founder sketch of a shingle set: the [`SKETCH`] smallest of its
/// hashes cut to 32 bits, sorted and distinct. Tweets have fewer shingles,
/// so for them the sketch is the whole set.
pub fn sketch(shingles: &[u64], out: &mut Vec<u32>) {
    out.clear();
    out.extend(shingles.iter().map(|&h| (h >> 32) as u32));
    out.sort_unstable();
    out.dedup();
    out.truncate(SKETCH);
}

/// The Jaccard similarity of two sets from their sketches: exact when
/// both sets have at most [`SKETCH`] elements, otherwise the bottom-k
/// estimate (the share of the union's smallest hashes that both hold).
pub fn sketch_jaccard(a: &[u32], b: &[u32]) -> f64 {
    let limit = comparable_up_to(a, b);
    // Sketches are sorted: what is within the limit is a prefix.
    let a = &a[..a.partition_point(|&x| x <= limit)];
    let b = &b[..b.partition_point(|&y| y <= limit)];
    let both = common(a, b);
    let union = a.len() + b.len() - both;
    if union == 0 {
        0.0
    } else {
        both as f64 / union as f64
    }
}

/// The largest hash two sketches are compared up to. A full sketch stands
/// for a larger set: beyond its largest hash the set is unknown, so the
/// comparison stops there.
fn comparable_up_to(a: &[u32], b: &[u32]) -> u32 {
    [a, b]
        .iter()
        .filter(|s| s.len() >= SKETCH)
        .filter_map(|s| s.last().copied())
        .min()
        .unwrap_or(u32::MAX)
}

/// How many values two sorted slices share (each pair of equal values
/// once). A merge that advances by comparison results instead of
/// branching on them: which side is smaller is a coin toss the branch
/// predictor loses half the time.
fn common(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        both += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    both
}

/// The LSH key of each band of `sig`: the band's rows and its index,
/// hashed to 64 bits. `rows` divides [`HASHES`].
pub fn band_keys(sig: &Signature, rows: usize, out: &mut Vec<u64>) {
    out.clear();
    // One allocation of the exact size for a fresh sketch's keys.
    out.reserve_exact(sig.len().div_ceil(rows.max(1)));
    for (band, chunk) in sig.chunks(rows.max(1)).enumerate() {
        let mut h = splitmix(band as u64 + 1);
        for &r in chunk {
            h = splitmix(h ^ u64::from(r));
        }
        out.push(h);
    }
}

/// Exact Jaccard similarity of two sorted, deduplicated sets (the truth
/// the estimates are checked against).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(range: std::ops::Range<u64>) -> Vec<u64> {
        range.map(|i| hash_bytes(&i.to_le_bytes(), 1)).collect()
    }

    #[test]
    fn identical_sets_estimate_one_and_disjoint_sets_near_zero() {
        let a = signature(&set(0..40));
        assert_eq!(estimate(&a, &a), 1.0);
        let b = signature(&set(1000..1040));
        assert!(estimate(&a, &b) < 0.1, "{}", estimate(&a, &b));
    }

    #[test]
    fn estimates_track_exact_jaccard_on_average() {
        // Sets of 30 with overlaps giving Jaccard 0.2 .. 0.9; the mean
        // estimate over 200 independent pairs stays within 0.03 of the truth.
        for shared in [10u64, 20, 25, 28] {
            let exact = shared as f64 / (60 - shared) as f64;
            let mut sum = 0.0;
            for trial in 0..200u64 {
                let base = trial * 10_000;
                let x = set(base..base + 30);
                let y = set(base + 30 - shared..base + 60 - shared);
                sum += estimate(&signature(&x), &signature(&y));
            }
            let mean = sum / 200.0;
            assert!(
                (mean - exact).abs() < 0.03,
                "shared {shared}: exact {exact} mean {mean}"
            );
        }
    }

    #[test]
    fn sketches_give_exact_jaccard_for_small_sets_and_estimates_for_large() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        sketch(&set(0..10), &mut a);
        sketch(&set(5..15), &mut b);
        assert_eq!(sketch_jaccard(&a, &b), 5.0 / 15.0);
        assert_eq!(sketch_jaccard(&a, &a), 1.0);
        assert_eq!(sketch_jaccard(&a, &[]), 0.0);
        // 1000-element sets sharing 600: Jaccard 600/1400.
        sketch(&set(0..1000), &mut a);
        sketch(&set(400..1400), &mut b);
        assert_eq!(a.len(), SKETCH);
        let est = sketch_jaccard(&a, &b);
        assert!((est - 600.0 / 1400.0).abs() < 0.12, "{est}");
    }

    /// [`sketch_jaccard`] as a plain set computation: the values up to the
    /// limit, intersected and united.
    fn reference_jaccard(a: &[u32], b: &[u32]) -> f64 {
        use std::collections::BTreeSet;
        let limit = comparable_up_to(a, b);
        let x: BTreeSet<u32> = a.iter().copied().filter(|&v| v <= limit).collect();
        let y: BTreeSet<u32> = b.iter().copied().filter(|&v| v <= limit).collect();
        let union = x.union(&y).count();
        if union == 0 {
            0.0
        } else {
            x.intersection(&y).count() as f64 / union as f64
        }
    }

    proptest::proptest! {
        /// Sketches of random sets (small ones exact, large ones cut at
        /// the limit), overlapping by chance or by construction.
        #[test]
        fn sketch_jaccard_is_the_set_computation(
            a in proptest::collection::btree_set(0u32..400, 0..300),
            b in proptest::collection::btree_set(0u32..400, 0..300),
            full_a in proptest::prelude::any::<bool>(),
        ) {
            let mut a: Vec<u32> = a.into_iter().collect();
            let b: Vec<u32> = b.into_iter().collect();
            if !full_a {
                a.truncate(SKETCH - 1);
            }
            proptest::prop_assert_eq!(sketch_jaccard(&a, &b), reference_jaccard(&a, &b));
            proptest::prop_assert_eq!(sketch_jaccard(&b, &a), reference_jaccard(&a, &b));
        }

        /// The signature chosen at run time (AVX-512 where the CPU has it)
        /// is the portable loop's, row for row.
        #[test]
        fn the_dispatched_signature_is_the_portable_one(
            shingles in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..300)
        ) {
            proptest::prop_assert_eq!(signature(&shingles), signature_portable(&shingles));
        }
    }

    #[test]
    fn band_keys_are_equal_exactly_for_equal_bands() {
        let a = signature(&set(0..20));
        let mut b = a;
        b[0] ^= 1; // changes band 0 only
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        band_keys(&a, 4, &mut ka);
        band_keys(&b, 4, &mut kb);
        assert_eq!(ka.len(), 16);
        assert_ne!(ka[0], kb[0]);
        assert_eq!(ka[1..], kb[1..]);
        // The same rows in different bands give different keys.
        let flat = [7u16; HASHES];
        band_keys(&flat, 4, &mut ka);
        assert_ne!(ka[0], ka[1]);
    }
}
