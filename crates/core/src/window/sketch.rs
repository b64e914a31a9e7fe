//! Heavy hitters in bounded memory: a Misra–Gries summary.
//!
//! The idea: keep at most `capacity` counters. A key that already has a
//! counter increments it; a new key takes a free counter; when all counters
//! are taken, every counter (and the newcomer) is decremented instead, and
//! counters that reach zero are freed. Each such decrement removes
//! `capacity + 1` units of mass from the stream, so it can happen at most
//! `total / (capacity + 1)` times. Hence, for every key `x` with true
//! frequency `f(x)`:
//!
//! ```text
//! f(x) - deficit <= count(x) <= f(x),      deficit <= total / (capacity + 1)
//! ```
//!
//! where `count(x)` is 0 for a key without a counter and `deficit` (see
//! [`HeavyHitters::error_bound`]) is the summed size of the decrements. Any
//! key seen more than `total / (capacity + 1)` times therefore always holds a
//! counter. While fewer than `capacity + 1` distinct keys were seen, counts
//! are exact (`deficit == 0`).
//!
//! Summaries are **mergeable** (Agarwal et al., "Mergeable summaries", 2012):
//! [`HeavyHitters::merge`] adds the counters of both sides, then, if more than
//! `capacity` remain, subtracts the `(capacity + 1)`-th largest count `C`
//! from all of them and adds `C` to the deficit. That step also removes at
//! least `(capacity + 1) * C` units of mass, so the bound above holds for the
//! merged summary against the concatenated stream, whatever the merge order
//! (with `capacity` the smaller of the two sides' capacities).
//!
//! Determinism: the summary is a pair of vectors in first-insertion order (no
//! hash map); decrements do not depend on tie-breaking; [`HeavyHitters::top`]
//! orders by count descending, then key ascending.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;

/// A Misra–Gries heavy-hitters summary over keys `K` (e.g. `String`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "HeavyHittersRepr<K>",
    into = "HeavyHittersRepr<K>",
    bound(serialize = "K: Clone + Serialize", deserialize = "K: Deserialize<'de> + Eq")
)]
pub struct HeavyHitters<K> {
    capacity: usize,
    // Structure of arrays: the lookup scans `keys` only, which is compact.
    keys: Vec<K>,
    counts: Vec<u64>,
    total: u64,
    deficit: u64,
}

/// The index of the first key satisfying `eq`. Compares eight keys at a
/// time without early exit inside a block, which lets the compiler use SIMD
/// for small integer keys (the interned ids of open windows).
#[inline]
fn find<K>(keys: &[K], eq: impl Fn(&K) -> bool) -> Option<usize> {
    let mut chunks = keys.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        // An OR over the block (no positions) is what vectorises; the
        // position is looked for only in the one block that has the key.
        let any = chunk.iter().fold(false, |any, k| any | eq(k));
        if any {
            return chunk.iter().position(&eq).map(|i| base + i);
        }
        base += 8;
    }
    chunks.remainder().iter().position(eq).map(|i| base + i)
}

/// Lower and upper bounds on a key's true frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub lower: u64,
    pub upper: u64,
}

impl<K: Clone + Eq> HeavyHitters<K> {
    /// An empty summary with `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> Self {
        HeavyHitters {
            capacity: capacity.max(1),
            keys: Vec::new(),
            counts: Vec::new(),
            total: 0,
            deficit: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of keys currently holding a counter.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Total weight added (the stream length for unit inserts).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The most any stored count can be below the true frequency (and the
    /// most a key without a counter can have been seen). Always
    /// `<= total / (capacity + 1)`.
    pub fn error_bound(&self) -> u64 {
        self.deficit
    }

    /// Adds one occurrence of `key`.
    pub fn insert<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Eq + ?Sized,
    {
        self.add(key, 1);
    }

    /// Adds `weight` occurrences of `key` (weighted Misra–Gries).
    pub fn add<Q>(&mut self, key: &Q, weight: u64)
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Eq + ?Sized,
    {
        let found = find(&self.keys, |k| k.borrow() == key);
        self.add_at(found, key, weight);
    }

    /// [`add`](Self::add) with the key's position already looked up.
    /// Always inlined, so that [`HeavyHitters::add_ids`]'s AVX-512 copy
    /// vectorises its loops with that instruction set.
    #[inline(always)]
    fn add_at<Q>(&mut self, found: Option<usize>, key: &Q, weight: u64)
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Eq + ?Sized,
    {
        if weight == 0 {
            return;
        }
        self.total = self.total.saturating_add(weight);
        if let Some(i) = found {
            self.counts[i] = self.counts[i].saturating_add(weight);
            return;
        }
        if self.keys.len() < self.capacity {
            self.keys.push(key.to_owned());
            self.counts.push(weight);
            return;
        }
        // Full: decrement everyone, the newcomer included, by as much as
        // frees the smallest counter (or uses up the newcomer's weight).
        let min = self.counts.iter().copied().min().unwrap_or(0);
        let d = min.min(weight);
        self.subtract(d);
        let rest = weight - d;
        if rest > 0 && self.keys.len() < self.capacity {
            self.keys.push(key.to_owned());
            self.counts.push(rest);
        }
    }

    /// Bounds on the true frequency of `key` in the stream summarised.
    pub fn estimate<Q>(&self, key: &Q) -> Estimate
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let lower = self
            .keys
            .iter()
            .position(|k| k.borrow() == key)
            .map_or(0, |i| self.counts[i]);
        Estimate {
            lower,
            upper: lower.saturating_add(self.deficit),
        }
    }

    /// Adds `other`'s stream into this summary (see the module docs for the
    /// bound). Keeps this summary's capacity.
    pub fn merge(&mut self, other: &Self) {
        self.merge_with(other, |keys, k| find(keys, |x| x == k));
    }

    /// [`merge`](Self::merge) with `lookup(keys, key)` finding `key`'s
    /// position among this summary's keys (those already there and those
    /// the merge appends): a caller with cheaply hashable keys passes an
    /// index instead of a scan.
    fn merge_with(&mut self, other: &Self, mut lookup: impl FnMut(&[K], &K) -> Option<usize>) {
        self.total = self.total.saturating_add(other.total);
        self.deficit = self.deficit.saturating_add(other.deficit);
        for (k, &c) in other.keys.iter().zip(&other.counts) {
            match lookup(&self.keys, k) {
                Some(i) => self.counts[i] = self.counts[i].saturating_add(c),
                None => {
                    self.keys.push(k.clone());
                    self.counts.push(c);
                }
            }
        }
        self.reduce_to_capacity();
    }

    /// After a merge: back to `capacity` counters, by subtracting the
    /// `(capacity + 1)`-th largest count from all of them.
    fn reduce_to_capacity(&mut self) {
        if self.keys.len() > self.capacity {
            // The (capacity + 1)-th largest count, in linear time; on the
            // stack for the usual small sizes.
            let mut stack = [0u64; 256];
            let mut heap = Vec::new();
            let counts: &mut [u64] = if self.counts.len() <= stack.len() {
                let buf = &mut stack[..self.counts.len()];
                buf.copy_from_slice(&self.counts);
                buf
            } else {
                heap.extend_from_slice(&self.counts);
                &mut heap
            };
            let (_, &mut c, _) = counts.select_nth_unstable_by(self.capacity, |a, b| b.cmp(a));
            self.subtract(c);
        }
    }

    /// Subtracts `d` from every counter (and records it in the deficit),
    /// dropping counters that reach zero; order of survivors is kept.
    #[inline(always)]
    fn subtract(&mut self, d: u64) {
        if d == 0 {
            return;
        }
        self.deficit = self.deficit.saturating_add(d);
        // Subtract everywhere first (a simple loop the compiler vectorises),
        // then compact from the first freed counter on, if any.
        for c in &mut self.counts {
            *c = c.saturating_sub(d);
        }
        let Some(first) = self.counts.iter().position(|&c| c == 0) else {
            return;
        };
        let mut w = first;
        for r in first + 1..self.keys.len() {
            let c = self.counts[r];
            if c > 0 {
                self.keys.swap(w, r);
                self.counts[w] = c;
                w += 1;
            }
        }
        self.keys.truncate(w);
        self.counts.truncate(w);
    }

    /// All stored keys with their counts (lower bounds), in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, u64)> {
        self.keys.iter().zip(self.counts.iter().copied())
    }

    /// The same summary with every key transformed (e.g. ids to strings).
    /// `f` must be injective on the stored keys.
    pub fn map_keys<K2, F: FnMut(&K) -> K2>(&self, f: F) -> HeavyHitters<K2> {
        HeavyHitters {
            capacity: self.capacity,
            keys: self.keys.iter().map(f).collect(),
            counts: self.counts.clone(),
            total: self.total,
            deficit: self.deficit,
        }
    }

    /// Rewrites keys in place (used when interned ids are renumbered).
    pub(crate) fn remap_keys(&mut self, mut f: impl FnMut(&K) -> K) {
        for k in &mut self.keys {
            *k = f(k);
        }
    }

    /// Starts loading the stored keys and counts into the cache, ahead of
    /// an [`add`](Self::add) (a hint only).
    pub(crate) fn prefetch(&self) {
        crate::prefetch::prefetch_slice(&self.keys);
        crate::prefetch::prefetch_slice(&self.counts);
    }

    /// Empties the summary, keeping its allocations for reuse.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.counts.clear();
        self.total = 0;
        self.deficit = 0;
    }
}

/// The index of `key` in `keys`: [`find`] for interned ids, the hottest
/// call of the windows. On x86-64 it compares four ids per SSE2
/// instruction (SSE2 is part of the architecture) and reads the result as a
/// bit mask; the compiler does not vectorise the portable loop by itself.
#[inline]
fn find_id(keys: &[u32], key: u32) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_ps, _mm_set1_epi32,
        };
        let mut blocks = keys.chunks_exact(4);
        let mut base = 0;
        // SAFETY: SSE and SSE2 are part of every x86-64 CPU; each `block`
        // is four initialised `u32`s (16 bytes), which is exactly what the
        // unaligned load reads.
        unsafe {
            let needle = _mm_set1_epi32(key as i32);
            for block in &mut blocks {
                let ids = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                let mask = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(ids, needle)));
                if mask != 0 {
                    return Some(base + mask.trailing_zeros() as usize);
                }
                base += 4;
            }
        }
        blocks.remainder().iter().position(|k| *k == key).map(|i| base + i)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        keys.iter().position(|k| *k == key)
    }
}

/// [`find_id`] sixteen ids per compare, for CPUs with AVX-512 F. The last
/// block is read with a masked load, so a tail needs no scalar loop and
/// lanes past the end are never touched.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn find_id_avx512(keys: &[u32], key: u32) -> Option<usize> {
    use std::arch::x86_64::{_mm512_mask_cmpeq_epi32_mask, _mm512_maskz_loadu_epi32, _mm512_set1_epi32};
    let needle = _mm512_set1_epi32(key as i32);
    let mut base = 0;
    while base < keys.len() {
        let left = keys.len() - base;
        let lanes: u16 = if left >= 16 { u16::MAX } else { (1 << left) - 1 };
        // SAFETY: the mask selects only lanes `base..keys.len()`, which are
        // initialised `u32`s of `keys`; a masked load does not read (or
        // fault on) the lanes it leaves out.
        let ids = unsafe { _mm512_maskz_loadu_epi32(lanes, keys.as_ptr().add(base).cast()) };
        let hit = _mm512_mask_cmpeq_epi32_mask(lanes, ids, needle);
        if hit != 0 {
            return Some(base + hit.trailing_zeros() as usize);
        }
        base += 16;
    }
    None
}

impl HeavyHitters<u32> {
    /// [`add`](Self::add) for interned ids (the same result, faster).
    #[inline]
    pub fn add_id(&mut self, key: u32, weight: u64) {
        let found = find_id(&self.keys, key);
        self.add_at(found, &key, weight);
    }

    /// [`add_id`](Self::add_id) for each of `keys` in turn, all with the
    /// same weight: how a window adds one post's terms.
    ///
    /// Where the CPU has AVX-512 F, the whole loop (lookups, the minimum
    /// and the decrement of a full summary) runs in a second compilation
    /// that uses it, chosen at run time; one call per post and sketch
    /// keeps the cost of that choice off the per-key path. Same result
    /// either way (a proptest checks it).
    pub fn add_ids(&mut self, keys: &[u32], weight: u64) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has just been found to support AVX-512 F,
            // all that the function is compiled for.
            unsafe { self.add_ids_avx512(keys, weight) };
            return;
        }
        for &k in keys {
            self.add_id(k, weight);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn add_ids_avx512(&mut self, keys: &[u32], weight: u64) {
        for &k in keys {
            let found = find_id_avx512(&self.keys, k);
            self.add_at(found, &k, weight);
        }
    }

    /// [`merge`](Self::merge) for interned ids, in time linear in the two
    /// sizes: this side's keys go into a small open-addressing table (on
    /// the stack) and each of `other`'s keys is looked up there instead of
    /// by a scan. The result is exactly that of `merge` (same counts, same
    /// key order). Summaries too large for the table use `merge`.
    pub fn merge_ids(&mut self, other: &Self) {
        const SLOTS: usize = 512;
        let need = (self.keys.len() + other.keys.len()).next_power_of_two() * 2;
        if need > SLOTS {
            self.merge(other);
            return;
        }
        let bits = need.trailing_zeros();
        let mask = need - 1;
        // The slot's key position + 1 (0 = free).
        let mut table = [0u16; SLOTS];
        let home = |k: u32| (k.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize & mask;
        let place = |table: &mut [u16; SLOTS], keys: &[u32], k: u32, pos: usize| {
            let mut s = home(k);
            while table[s] != 0 && keys[table[s] as usize - 1] != k {
                s = (s + 1) & mask;
            }
            table[s] = pos as u16 + 1;
        };
        for (i, &k) in self.keys.iter().enumerate() {
            place(&mut table, &self.keys, k, i);
        }
        let mut appended = self.keys.len();
        self.merge_with(other, |keys, k| {
            let mut s = home(*k);
            loop {
                match table[s] {
                    0 => {
                        // Not there: the merge appends it at `appended`.
                        table[s] = appended as u16 + 1;
                        appended += 1;
                        return None;
                    }
                    p if keys[p as usize - 1] == *k => return Some(p as usize - 1),
                    _ => s = (s + 1) & mask,
                }
            }
        });
    }
}

impl<K: Clone + Eq + Ord> HeavyHitters<K> {
    /// The `k` keys with the highest counts, count descending then key
    /// ascending.
    pub fn top(&self, k: usize) -> Vec<(K, u64)> {
        let mut all: Vec<(K, u64)> = self.iter().map(|(key, c)| (key.clone(), c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

/// The serialised form: `{"capacity", "total", "error_bound", "entries": [[key, count], ...]}`.
#[derive(Serialize, Deserialize)]
struct HeavyHittersRepr<K> {
    capacity: usize,
    total: u64,
    error_bound: u64,
    entries: Vec<(K, u64)>,
}

impl<K: Clone> From<HeavyHitters<K>> for HeavyHittersRepr<K> {
    fn from(h: HeavyHitters<K>) -> Self {
        HeavyHittersRepr {
            capacity: h.capacity,
            total: h.total,
            error_bound: h.deficit,
            entries: h.keys.into_iter().zip(h.counts).collect(),
        }
    }
}

/// A serialised summary that breaks the summary's invariants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSummary {
    #[error("capacity must be at least 1")]
    ZeroCapacity,
    #[error("{entries} entries exceed capacity {capacity}")]
    TooManyEntries { entries: usize, capacity: usize },
    #[error("an entry has count 0 or a key appears twice")]
    BadEntry,
}

impl<K: Eq> TryFrom<HeavyHittersRepr<K>> for HeavyHitters<K> {
    type Error = BadSummary;

    fn try_from(r: HeavyHittersRepr<K>) -> Result<Self, BadSummary> {
        if r.capacity == 0 {
            return Err(BadSummary::ZeroCapacity);
        }
        if r.entries.len() > r.capacity {
            return Err(BadSummary::TooManyEntries {
                entries: r.entries.len(),
                capacity: r.capacity,
            });
        }
        let mut keys: Vec<K> = Vec::with_capacity(r.entries.len());
        let mut counts = Vec::with_capacity(r.entries.len());
        for (k, c) in r.entries {
            if c == 0 || keys.contains(&k) {
                return Err(BadSummary::BadEntry);
            }
            keys.push(k);
            counts.push(c);
        }
        Ok(HeavyHitters {
            capacity: r.capacity,
            keys,
            counts,
            total: r.total,
            deficit: r.error_bound,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn exact(stream: &[u8]) -> BTreeMap<u8, u64> {
        let mut m = BTreeMap::new();
        for &x in stream {
            *m.entry(x).or_insert(0) += 1;
        }
        m
    }

    fn summarise(stream: &[u8], cap: usize) -> HeavyHitters<String> {
        let mut h = HeavyHitters::new(cap);
        for x in stream {
            h.insert(format!("k{x}").as_str());
        }
        h
    }

    /// Every key's stored count lies within [f - error_bound, f] and the
    /// error bound is at most total / (capacity + 1).
    fn check_bounds(h: &HeavyHitters<String>, stream: &[u8], cap: usize) {
        let n = stream.len() as u64;
        assert_eq!(h.total(), n);
        assert!(h.error_bound() <= n / (cap as u64 + 1));
        assert!(h.len() <= cap);
        for (x, f) in exact(stream) {
            let e = h.estimate(format!("k{x}").as_str());
            assert!(e.lower <= f && f <= e.upper, "{x}: {e:?} vs {f}");
            if f > n / (cap as u64 + 1) {
                assert!(e.lower > 0, "heavy hitter k{x} ({f} of {n}) lost");
            }
        }
    }

    #[test]
    fn exact_while_under_capacity() {
        let mut h = HeavyHitters::<String>::new(3);
        for k in ["flood", "storm", "flood", "quake", "flood", "storm"] {
            h.insert(k);
        }
        assert_eq!(h.error_bound(), 0);
        assert_eq!(h.top(2), vec![("flood".to_string(), 3), ("storm".to_string(), 2)]);
    }

    #[test]
    fn full_summary_decrements_everyone() {
        let mut h = HeavyHitters::<String>::new(2);
        for k in ["a", "a", "a", "b", "c", "d"] {
            h.insert(k);
        }
        // a:3 b:1, then c decrements both (a:2, b freed), d takes b's place.
        assert_eq!(h.top(5), vec![("a".to_string(), 2), ("d".to_string(), 1)]);
        assert_eq!(h.error_bound(), 1);
        assert_eq!(h.estimate("a"), Estimate { lower: 2, upper: 3 });
        assert_eq!(h.estimate("c"), Estimate { lower: 0, upper: 1 });
    }

    #[test]
    fn ties_broken_by_key() {
        let mut h = HeavyHitters::<String>::new(8);
        for k in ["zeta", "alpha", "mid", "alpha", "zeta", "mid"] {
            h.insert(k);
        }
        let keys: Vec<String> = h.top(3).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["alpha", "mid", "zeta"]);
    }

    #[test]
    fn merge_reduces_to_capacity() {
        let mut a = HeavyHitters::<String>::new(2);
        a.add("x", 5);
        a.add("y", 3);
        let mut b = HeavyHitters::<String>::new(2);
        b.add("z", 4);
        b.add("y", 1);
        a.merge(&b);
        // x:5 y:4 z:4 -> third largest is 4; x:1 survives.
        assert_eq!(a.top(5), vec![("x".to_string(), 1)]);
        assert_eq!(a.error_bound(), 4);
        assert_eq!(a.total(), 13);
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let h = summarise(&[1, 2, 2, 3, 3, 3], 2);
        let json = serde_json::to_string(&h).unwrap();
        let back: HeavyHitters<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        let bad = r#"{"capacity":1,"total":2,"error_bound":0,"entries":[["a",1],["b",1]]}"#;
        assert!(serde_json::from_str::<HeavyHitters<String>>(bad).is_err());
    }

    proptest! {
        #[test]
        fn bounds_hold_for_one_stream(
            stream in proptest::collection::vec(0u8..40, 0..400),
            cap in 1usize..12,
        ) {
            let h = summarise(&stream, cap);
            check_bounds(&h, &stream, cap);
        }

        #[test]
        fn skewed_heavy_hitters_kept(
            noise in proptest::collection::vec(0u8..200, 0..300),
            heavy in 200u8..=255,
            cap in 4usize..16,
        ) {
            // Interleave a key so that it exceeds total / (cap + 1).
            let mut stream = Vec::new();
            for (i, x) in noise.iter().enumerate() {
                stream.push(*x);
                if i % 3 == 0 {
                    stream.push(heavy);
                }
            }
            let h = summarise(&stream, cap);
            check_bounds(&h, &stream, cap);
        }

        #[test]
        fn merged_bounds_hold(
            parts in proptest::collection::vec(
                proptest::collection::vec(0u8..30, 0..120), 1..6),
            cap in 1usize..10,
        ) {
            let mut merged = HeavyHitters::<String>::new(cap);
            let mut all = Vec::new();
            for p in &parts {
                merged.merge(&summarise(p, cap));
                all.extend_from_slice(p);
            }
            check_bounds(&merged, &all, cap);
        }

        #[test]
        fn add_id_equals_add(
            items in proptest::collection::vec((0u32..120, 0u64..6), 0..400),
            cap in 1usize..70,
        ) {
            let mut plain = HeavyHitters::<u32>::new(cap);
            let mut fast = HeavyHitters::<u32>::new(cap);
            for (k, w) in &items {
                plain.add(k, *w);
                fast.add_id(*k, *w);
            }
            prop_assert_eq!(fast, plain);
        }

        #[test]
        fn add_ids_equals_add(
            posts in proptest::collection::vec(
                (proptest::collection::vec(0u32..120, 0..12), 1u64..40), 0..60),
            cap in 1usize..70,
        ) {
            // Runs the AVX-512 copy where the CPU has it, this machine's
            // included, against the portable generic path.
            let mut plain = HeavyHitters::<u32>::new(cap);
            let mut batched = HeavyHitters::<u32>::new(cap);
            for (keys, w) in &posts {
                for k in keys {
                    plain.add(k, *w);
                }
                batched.add_ids(keys, *w);
            }
            prop_assert_eq!(batched, plain);
        }

        #[test]
        fn merge_ids_equals_merge(
            a in proptest::collection::vec((0u32..90, 1u64..6), 0..200),
            b in proptest::collection::vec((0u32..90, 1u64..6), 0..200),
            cap_a in 1usize..70,
            cap_b in 1usize..70,
        ) {
            let build = |items: &[(u32, u64)], cap: usize| {
                let mut h = HeavyHitters::<u32>::new(cap);
                for (k, w) in items {
                    h.add(k, *w);
                }
                h
            };
            let (x, y) = (build(&a, cap_a), build(&b, cap_b));
            let mut plain = x.clone();
            plain.merge(&y);
            let mut hashed = x;
            hashed.merge_ids(&y);
            prop_assert_eq!(hashed, plain);
        }

        #[test]
        fn deterministic(stream in proptest::collection::vec(0u8..50, 0..300), cap in 1usize..10) {
            let a = summarise(&stream, cap);
            let b = summarise(&stream, cap);
            prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
            prop_assert_eq!(a.top(cap), b.top(cap));
        }
    }
}
