//! Fast weighted sampling: Walker/Vose alias tables and a few closed-form
//! draws.
//!
//! The generator draws tens of words per post, so each draw must cost a
//! handful of nanoseconds: an alias table turns one random `u64` into an
//! index with one multiply, one compare and at most two memory reads,
//! whatever the distribution (Zipf over a vocabulary, heavy-tailed account
//! activity, topic shares).

use rand::RngCore;

/// A discrete distribution over `0..n`, sampled in O(1).
#[derive(Clone, Debug)]
pub(crate) struct Alias {
    /// Per column: the probability (scaled to `u32::MAX`) of keeping it,
    /// and the outcome to jump to otherwise. Kept side by side so a draw
    /// touches one cache line.
    table: Vec<(u32, u32)>,
}

impl Alias {
    /// Builds the table from non-negative weights (at least one positive).
    pub(crate) fn new(weights: &[f64]) -> Alias {
        let n = weights.len().max(1);
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = if total > 0.0 {
            weights.iter().map(|w| w * n as f64 / total).collect()
        } else {
            vec![1.0; n]
        };
        scaled.resize(n, 0.0);
        let mut keep = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for (i, &s) in scaled.iter().enumerate() {
            if s < 1.0 {
                small.push(i);
            } else {
                large.push(i);
            }
        }
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s] = (scaled[s] * u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left is 1 up to rounding: always keep.
        Alias {
            table: keep.into_iter().zip(alias).collect(),
        }
    }

    /// Maps one uniform `u64` to an outcome.
    #[inline]
    pub(crate) fn pick(&self, r: u64) -> usize {
        let n = self.table.len() as u64;
        let i = (((r >> 32) * n) >> 32) as usize;
        let (keep, alias) = self.table[i];
        if (r as u32) < keep {
            i
        } else {
            alias as usize
        }
    }

    #[inline]
    pub(crate) fn sample<R: RngCore>(&self, rng: &mut R) -> usize {
        self.pick(rng.next_u64())
    }
}

/// Zipf weights `1 / (rank + 1)^s` for `n` ranks.
pub(crate) fn zipf_weights(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|r| 1.0 / ((r + 1) as f64).powf(s)).collect()
}

/// A uniform float in `[0, 1)`.
#[inline]
pub(crate) fn unit<R: RngCore>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `true` with probability `p`.
#[inline]
pub(crate) fn chance<R: RngCore>(rng: &mut R, p: f64) -> bool {
    unit(rng) < p
}

/// A uniform integer in `0..n` (`n > 0`).
#[inline]
pub(crate) fn below<R: RngCore>(rng: &mut R, n: u64) -> u64 {
    (((rng.next_u64() >> 32) * n) >> 32).min(n.saturating_sub(1))
}

/// A uniform integer in `lo..=hi`.
#[inline]
pub(crate) fn between<R: RngCore>(rng: &mut R, lo: u64, hi: u64) -> u64 {
    lo + below(rng, hi - lo + 1)
}

/// A Pareto draw with minimum `min` and tail index `alpha`, capped at `cap`.
pub(crate) fn pareto<R: RngCore>(rng: &mut R, min: f64, alpha: f64, cap: f64) -> f64 {
    let u = 1.0 - unit(rng); // in (0, 1]
    (min / u.powf(1.0 / alpha)).min(cap)
}

/// One element of a non-empty slice, uniformly.
#[inline]
pub(crate) fn choose<'a, R: RngCore, T>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len() as u64) as usize]
}

/// One string of a non-empty list, uniformly.
#[inline]
pub(crate) fn pick<R: RngCore>(rng: &mut R, items: &[&'static str]) -> &'static str {
    items[below(rng, items.len() as u64) as usize]
}

/// SplitMix64: a stateless mixer for values that must be derivable without
/// replaying a random stream (handles, platforms of planted posts).
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn alias_follows_its_weights() {
        let a = Alias::new(&[1.0, 0.0, 3.0, 6.0]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[a.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[0] as f64 / 100_000.0 - 0.1).abs() < 0.01, "{counts:?}");
        assert!((counts[2] as f64 / 100_000.0 - 0.3).abs() < 0.01, "{counts:?}");
        assert!((counts[3] as f64 / 100_000.0 - 0.6).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn pareto_respects_min_and_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..10_000 {
            let x = pareto(&mut rng, 5.0, 1.2, 100.0);
            assert!((5.0..=100.0).contains(&x));
        }
    }
}
