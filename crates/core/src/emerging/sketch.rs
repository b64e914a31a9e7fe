//! A count-min sketch of exponentially decayed counts, at two time scales
//! at once.
//!
//! The idea: every key (a hashed term, bigram, hashtag or domain) adds one
//! to `depth` cells, one per row, chosen by the key's hash; its estimate is
//! the smallest of those cells, which can only be too high (other keys
//! sharing a cell), never too low. Updates are *conservative* (a cell is
//! raised only as far as the key's new estimate), which keeps the
//! over-estimate small (Estan and Varghese, 2002).
//!
//! Each cell holds two counts, a short one (the "current window") and a
//! long one (the baseline), both decayed exponentially with their own time
//! constant. Decay uses *forward decay* (Cormode et al., 2009): an
//! occurrence at time `t` adds `exp((t - origin) / tau)` instead of 1, so
//! nothing has to be touched as time passes; the count as of `now` is the
//! stored value divided by `exp((now - origin) / tau)`. To keep the weights
//! finite, the origin moves forward every [`RESCALE_MS`] of event time and
//! every cell is multiplied down once.
//!
//! Memory is `depth × width × 16` bytes, fixed at construction.

/// How often (event time) the origin moves forward and the cells are
/// scaled down: 30 minutes, so a short weight never exceeds `e^(30/tau)`.
pub(crate) const RESCALE_MS: i64 = 30 * 60 * 1000;

/// Short and long components, in this order.
pub(crate) type Pair = [f64; 2];

/// The sketch; see the module docs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DecayedSketch {
    width_mask: usize,
    depth: usize,
    cells: Vec<Pair>,
    /// Time constants of the two components, in milliseconds.
    tau: Pair,
    /// The time at which a weight is exactly 1.
    origin: i64,
    /// Decayed totals of what was added (one unit per observation, for the
    /// post counts kept alongside).
    totals: Pair,
}

impl DecayedSketch {
    /// A sketch of `depth` rows of `2^width_log2` cells.
    pub(crate) fn new(width_log2: u32, depth: usize, tau_short_ms: f64, tau_long_ms: f64, origin: i64) -> Self {
        let width = 1usize << width_log2.clamp(4, 24);
        let depth = depth.clamp(1, 8);
        DecayedSketch {
            width_mask: width - 1,
            depth,
            cells: vec![[0.0; 2]; width * depth],
            tau: [tau_short_ms.max(1.0), tau_long_ms.max(1.0)],
            origin,
            totals: [0.0; 2],
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<Pair>()
    }

    /// The forward-decay weights of an occurrence at `t`.
    pub(crate) fn weights(&self, t: i64) -> Pair {
        let dt = t as f64 - self.origin as f64;
        [(dt / self.tau[0]).exp(), (dt / self.tau[1]).exp()]
    }

    /// Moves the origin to `t` when it is [`RESCALE_MS`] or more behind,
    /// scaling every stored value down accordingly. Returns the divisor
    /// applied to the short component (for values kept outside the sketch
    /// with the same weights), if it moved.
    pub(crate) fn maybe_rescale(&mut self, t: i64) -> Option<f64> {
        if t.saturating_sub(self.origin) < RESCALE_MS {
            return None;
        }
        let old = self.weights(t);
        let f = old.map(|w| 1.0 / w);
        for cell in &mut self.cells {
            for (v, f) in cell.iter_mut().zip(f) {
                // Flush what has decayed to nothing: no denormals, and a
                // long-idle cell is exactly empty again.
                *v = if *v * f < 1e-9 { 0.0 } else { *v * f };
            }
        }
        for (total, f) in self.totals.iter_mut().zip(f) {
            *total *= f;
        }
        self.origin = t;
        Some(old[0])
    }

    /// The cell index of `hash` in `row` (double hashing).
    #[inline]
    fn index(&self, hash: u64, row: usize) -> usize {
        let h1 = hash as u32 as usize;
        let h2 = ((hash >> 32) as usize) | 1;
        row * (self.width_mask + 1) + (h1.wrapping_add(row.wrapping_mul(h2)) & self.width_mask)
    }

    /// The stored (scaled) estimate of a key.
    #[inline]
    fn stored(&self, hash: u64) -> Pair {
        let mut est = [f64::INFINITY; 2];
        for row in 0..self.depth {
            let cell = self.cells[self.index(hash, row)];
            est[0] = est[0].min(cell[0]);
            est[1] = est[1].min(cell[1]);
        }
        est
    }

    /// Adds an occurrence with weights `w` (from [`Self::weights`]),
    /// conservatively; returns the key's new stored estimate (divide by
    /// the weights of `now` for counts as of `now`).
    #[inline]
    pub(crate) fn add(&mut self, hash: u64, w: Pair) -> Pair {
        let est = self.stored(hash);
        let new = [est[0] + w[0], est[1] + w[1]];
        for row in 0..self.depth {
            let i = self.index(hash, row);
            let cell = &mut self.cells[i];
            cell[0] = cell[0].max(new[0]);
            cell[1] = cell[1].max(new[1]);
        }
        new
    }

    /// Counts one observation (a post) in the totals.
    pub(crate) fn add_total(&mut self, w: Pair) {
        self.totals[0] += w[0];
        self.totals[1] += w[1];
    }

    /// A key's decayed counts as of `now` (short, long); an over-estimate.
    pub(crate) fn estimate(&self, hash: u64, now: i64) -> Pair {
        let s = self.stored(hash);
        let w = self.weights(now);
        [s[0] / w[0], s[1] / w[1]]
    }

    /// The decayed totals as of `now`.
    pub(crate) fn totals(&self, now: i64) -> Pair {
        let w = self.weights(now);
        [self.totals[0] / w[0], self.totals[1] / w[1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn counts_decay_with_their_own_time_constants() {
        let mut s = DecayedSketch::new(8, 4, 5.0 * MIN as f64, 60.0 * MIN as f64, 0);
        for _ in 0..10 {
            let w = s.weights(0);
            s.add(42, w);
        }
        let at0 = s.estimate(42, 0);
        assert!((at0[0] - 10.0).abs() < 1e-9 && (at0[1] - 10.0).abs() < 1e-9);
        // Five minutes later the short count is 10/e, the long one 10e^(-1/12).
        let later = s.estimate(42, 5 * MIN);
        assert!((later[0] - 10.0 / std::f64::consts::E).abs() < 1e-9, "{later:?}");
        assert!((later[1] - 10.0 * (-1.0f64 / 12.0).exp()).abs() < 1e-9, "{later:?}");
        assert_eq!(s.estimate(7, 0), [0.0, 0.0]);
    }

    #[test]
    fn rescaling_keeps_the_estimates() {
        let mut s = DecayedSketch::new(8, 4, 5.0 * MIN as f64, 60.0 * MIN as f64, 0);
        let w = s.weights(10 * MIN);
        s.add(9, w);
        s.add_total(w);
        let before = s.estimate(9, 40 * MIN);
        s.maybe_rescale(40 * MIN);
        let after = s.estimate(9, 40 * MIN);
        for c in 0..2 {
            assert!((before[c] - after[c]).abs() < 1e-12, "{before:?} {after:?}");
        }
        assert!((s.totals(40 * MIN)[1] - after[1]).abs() < 1e-12);
    }
}
