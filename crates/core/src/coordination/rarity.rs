//! Which hashtags are rare: a count-min sketch of hashtag uses whose counts
//! decay exponentially with event time.
//!
//! The idea: a perennial tag (`#news`) is used by thousands of unrelated
//! accounts every hour, so two accounts sharing it within a minute says
//! nothing; a campaign's own tags are used by few. A tag is rare while its
//! decayed count (uses, each weighing `2^(-age / half_life)`) stays below a
//! threshold. Count-min never under-counts, so a frequent tag is never
//! taken for a rare one; a rare tag may, with small probability, look
//! frequent through collisions (it then simply does not form a co-hashtag
//! key).
//!
//! Decay is lazy: a counter stores `count × 2^((t − origin) / half_life)`,
//! so adding at time `t` adds `2^((t − origin) / half_life)` and reading
//! divides by it. When that factor grows large, every counter is rescaled
//! and the origin moves, keeping the numbers finite.

/// Rows of the sketch (independent hashes).
const DEPTH: usize = 4;
/// Counters per row (a power of two).
const WIDTH: usize = 1 << 14;
/// Rescale when the scale factor passes this (2^40).
const RESCALE_AT: f64 = 1.0995e12;

/// A decayed count-min sketch of hashtag uses.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TagRarity {
    counters: Vec<f64>,
    half_life_ms: f64,
    origin: i64,
}

impl TagRarity {
    pub(crate) fn new(half_life_ms: i64) -> TagRarity {
        TagRarity {
            counters: vec![0.0; DEPTH * WIDTH],
            half_life_ms: half_life_ms.max(1) as f64,
            origin: 0,
        }
    }

    /// `2^((t − origin) / half_life)`; rescales first if it got too large.
    fn scale(&mut self, t: i64) -> f64 {
        let s = ((t - self.origin) as f64 / self.half_life_ms).exp2();
        if s > RESCALE_AT {
            for c in &mut self.counters {
                *c /= s;
            }
            self.origin = t;
            return 1.0;
        }
        s
    }

    fn slots(hash: u64) -> [usize; DEPTH] {
        // Double hashing: row i uses h1 + i·h2 (Kirsch–Mitzenmacher).
        let h1 = hash as u32 as usize;
        let h2 = ((hash >> 32) as u32 as usize) | 1;
        let mut out = [0; DEPTH];
        for (i, o) in out.iter_mut().enumerate() {
            *o = i * WIDTH + (h1.wrapping_add(i.wrapping_mul(h2)) & (WIDTH - 1));
        }
        out
    }

    /// The decayed count of `hash` at time `t`.
    pub(crate) fn estimate(&mut self, hash: u64, t: i64) -> f64 {
        let s = self.scale(t);
        let min = Self::slots(hash)
            .iter()
            .map(|&i| self.counters[i])
            .fold(f64::INFINITY, f64::min);
        min / s
    }

    /// Counts one use of `hash` at time `t`.
    pub(crate) fn add(&mut self, hash: u64, t: i64) {
        let s = self.scale(t);
        for i in Self::slots(hash) {
            self.counters[i] += s;
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.counters.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_decay_by_half_each_half_life() {
        let mut r = TagRarity::new(1000);
        for _ in 0..8 {
            r.add(42, 0);
        }
        assert!((r.estimate(42, 0) - 8.0).abs() < 1e-9);
        assert!((r.estimate(42, 1000) - 4.0).abs() < 1e-9);
        assert!((r.estimate(42, 3000) - 1.0).abs() < 1e-9);
        assert_eq!(r.estimate(7, 3000), 0.0);
    }

    #[test]
    fn rescaling_keeps_counts() {
        let mut r = TagRarity::new(1);
        r.add(5, 0);
        // 50 half-lives later the factor passed 2^40: counters were rescaled.
        r.add(5, 50);
        let e = r.estimate(5, 50);
        assert!((e - 1.0).abs() < 1e-6, "{e}");
    }
}
