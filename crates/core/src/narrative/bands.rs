//! The LSH band table: which narrative each recent band key belongs to.
//!
//! Every clusterable post looks up its 16 band keys here and then writes
//! them back, so this table sees two accesses per band per post, and under
//! its cap one eviction per band too. A hash map with a time-ordered queue
//! paid for each of those with a cache miss (the entry, the queue's front
//! entry, and the narrative that decides whether it is spared). This table
//! is set-associative instead: a key can live only in one set of [`WAYS`]
//! entries, found from the key's bits, so a lookup reads one small block,
//! the write that follows finds it still in the cache, and the entry it
//! replaces is chosen within that block:
//!
//! 1. a free entry;
//! 2. else an expired one (last refreshed before the window's cutoff);
//! 3. else the least recently refreshed entry not marked *kept*;
//! 4. else the least recently refreshed entry.
//!
//! An entry is *kept* when the post that wrote it belonged to a narrative
//! of several posts: as with the queue's sparing before, the bands of a
//! narrative that pauses while one-off posts go by outlive theirs, so its
//! next copy still finds it. Eviction is least-recently-refreshed within
//! a set rather than over the whole table, which is the usual price of a
//! set-associative cache and the reason the cap is counted in entries.
//!
//! Expiry is lazy: an expired entry is one that a lookup's caller ignores
//! ([`BandTable::get`] returns its time) and that the next write into its
//! set reuses first; it is counted as expired then. When every entry has
//! expired at once (the stream paused for a whole window), the table is
//! emptied.

use serde::{Deserialize, Serialize};

/// Entries per set. Four keys are 32 bytes; a set with its narratives and
/// times fills two cache lines.
pub(super) const WAYS: usize = 4;

/// One set: `WAYS` entries, stored column-wise so the key compare reads
/// only the keys. Aligned to a cache line, a set spans exactly two, so a
/// lookup touches two lines (not three when a set straddles) and a
/// prefetch asks for exactly those.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
#[repr(C, align(64))]
struct Set {
    keys: [u64; WAYS],
    clusters: [u64; WAYS],
    last: [i64; WAYS],
    /// Bit `w`: entry `w` is in use.
    used: u8,
    /// Bit `w`: entry `w` belongs to a narrative of several posts.
    kept: u8,
}

/// Where a band key points: its narrative and when it was last refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Band {
    pub cluster: u64,
    pub last: i64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct BandTable {
    /// Allocated at the first write: a clusterer that never sees a long
    /// text holds nothing.
    sets: Vec<Set>,
    /// Sets in the table: the cap divided by [`WAYS`] (at least one).
    set_count: usize,
    /// Entries used per set: [`WAYS`], or the cap when it is smaller.
    ways: usize,
    len: usize,
    /// The newest refresh time written.
    newest: i64,
    pub expired: u64,
    pub evicted: u64,
    /// How old the entries the cap evicted were, a running mean weighting
    /// the last thousand or so evictions most (see [`Self::evicted_age_ms`]).
    evicted_age: f64,
}

impl BandTable {
    /// A table of at most `cap` entries.
    pub fn new(cap: usize) -> BandTable {
        BandTable {
            sets: Vec::new(),
            set_count: (cap / WAYS).max(1),
            ways: cap.clamp(1, WAYS),
            len: 0,
            newest: i64::MIN,
            expired: 0,
            evicted: 0,
            evicted_age: 0.0,
        }
    }

    /// How long entries have lately lasted before the cap evicted them
    /// (0 before any eviction). Under a steady inflow of new texts this is
    /// the table's reach: a near-duplicate of a one-post narrative older
    /// than this is no longer found, whatever the window.
    pub fn evicted_age_ms(&self) -> i64 {
        self.evicted_age.round() as i64
    }

    /// Entries in use (expired ones included until they are reused).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The set of `key`: the high bits of the product, which maps a
    /// uniform 64-bit key uniformly onto any number of sets (band keys are
    /// hashes already).
    fn set_of(&self, key: u64) -> usize {
        ((u128::from(key) * self.set_count as u128) >> 64) as usize
    }

    /// The narrative `key` points to, with its last refresh time (which
    /// the caller compares with its window).
    pub fn get(&self, key: u64) -> Option<Band> {
        let set = self.sets.get(self.set_of(key))?;
        let w = (0..self.ways).find(|&w| set.used & (1 << w) != 0 && set.keys[w] == key)?;
        Some(Band {
            cluster: set.clusters[w],
            last: set.last[w],
        })
    }

    /// Starts loading the set of `key` into the cache, ahead of a
    /// [`get`](Self::get) and [`upsert`](Self::upsert) of it (a hint only).
    pub fn prefetch(&self, key: u64) {
        if let Some(set) = self.sets.get(self.set_of(key)) {
            crate::prefetch::prefetch_value(set);
        }
    }

    /// Points `key` at `cluster` as of `t` (keeping a later time already
    /// there); `kept` marks it as a band of a narrative of several posts.
    /// Entries refreshed before `cutoff` count as expired.
    pub fn upsert(&mut self, key: u64, cluster: u64, t: i64, kept: bool, cutoff: i64) {
        if self.sets.is_empty() {
            // Zeroed memory: the pages are touched only as sets fill.
            self.sets = vec![Set::default(); self.set_count];
        }
        self.newest = self.newest.max(t);
        let (s, ways) = (self.set_of(key), self.ways);
        let set = &mut self.sets[s];
        let kept_bit = u8::from(kept);
        if let Some(w) = (0..ways).find(|&w| set.used & (1 << w) != 0 && set.keys[w] == key) {
            // The same band seen again: it now leads to the newer post's
            // narrative, kept if either write said so for that narrative.
            let same = set.clusters[w] == cluster;
            let was_kept = set.kept & (1 << w) != 0;
            set.clusters[w] = cluster;
            set.last[w] = set.last[w].max(t);
            let keep = kept || (same && was_kept);
            set.kept = (set.kept & !(1 << w)) | (u8::from(keep) << w);
            return;
        }
        let free = (0..ways).find(|&w| set.used & (1 << w) == 0);
        let w = match free {
            Some(w) => {
                self.len += 1;
                w
            }
            None => {
                let oldest =
                    |pick: &dyn Fn(usize) -> bool| (0..ways).filter(|&w| pick(w)).min_by_key(|&w| (set.last[w], w));
                let stale = oldest(&|w| set.last[w] < cutoff);
                match stale {
                    Some(w) => {
                        self.expired += 1;
                        w
                    }
                    None => {
                        self.evicted += 1;
                        let w = oldest(&|w| set.kept & (1 << w) == 0)
                            .or_else(|| oldest(&|_| true))
                            .unwrap_or(0);
                        let age = t.saturating_sub(set.last[w]) as f64;
                        self.evicted_age = if self.evicted == 1 {
                            age
                        } else {
                            self.evicted_age + (age - self.evicted_age) / 1024.0
                        };
                        w
                    }
                }
            }
        };
        set.keys[w] = key;
        set.clusters[w] = cluster;
        set.last[w] = t;
        set.used |= 1 << w;
        set.kept = (set.kept & !(1 << w)) | (kept_bit << w);
    }

    /// Drops every entry when all were refreshed before `cutoff`; single
    /// expired entries wait for their set's next write (see the module
    /// docs).
    pub fn expire(&mut self, cutoff: i64) {
        if self.len > 0 && self.newest < cutoff {
            self.expired += self.len as u64;
            self.len = 0;
            self.sets = Vec::new();
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.sets.capacity() * std::mem::size_of::<Set>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys that all fall into set 0 of a table of `sets` sets.
    fn same_set_keys(table: &BandTable, n: usize) -> Vec<u64> {
        (0u64..)
            .map(crate::narrative::minhash::splitmix)
            .filter(|&k| table.set_of(k) == 0)
            .take(n)
            .collect()
    }

    #[test]
    fn finds_what_was_written_and_refreshes_it() {
        let mut t = BandTable::new(64);
        assert_eq!(t.get(7), None);
        t.upsert(7, 1, 100, false, 0);
        assert_eq!(t.get(7), Some(Band { cluster: 1, last: 100 }));
        // A later write moves the band to another narrative; an earlier
        // time does not move its clock back.
        t.upsert(7, 2, 90, false, 0);
        assert_eq!(t.get(7), Some(Band { cluster: 2, last: 100 }));
        assert_eq!((t.len(), t.evicted, t.expired), (1, 0, 0));
    }

    #[test]
    fn a_full_set_replaces_expired_then_unkept_then_oldest() {
        let mut t = BandTable::new(WAYS * 8);
        let k = same_set_keys(&t, 8);
        // Fill set 0: one old entry, the rest newer, the first two kept.
        t.upsert(k[0], 10, 10, true, 0);
        t.upsert(k[1], 11, 50, true, 0);
        t.upsert(k[2], 12, 40, false, 0);
        t.upsert(k[3], 13, 30, false, 0);
        // With the window starting at 20, k[0] has expired: it goes first,
        // kept or not.
        t.upsert(k[4], 14, 60, false, 20);
        assert_eq!(t.get(k[0]), None);
        assert_eq!((t.expired, t.evicted), (1, 0));
        // Nothing expired: the oldest entry not kept goes (k[3] at 30).
        t.upsert(k[5], 15, 70, false, 20);
        assert_eq!(t.get(k[3]), None);
        assert!(t.get(k[1]).is_some() && t.get(k[2]).is_some());
        assert_eq!((t.expired, t.evicted), (1, 1));
        // Make every entry kept: then the oldest of all goes (k[2] at 40).
        for &key in &[k[2], k[4], k[5]] {
            let b = t.get(key).unwrap();
            t.upsert(key, b.cluster, b.last, true, 20);
        }
        t.upsert(k[6], 16, 80, false, 20);
        assert_eq!(t.get(k[2]), None);
        assert!(t.get(k[1]).is_some() && t.get(k[4]).is_some() && t.get(k[5]).is_some());
        assert_eq!(t.len(), WAYS);
    }

    #[test]
    fn the_age_of_evicted_entries_is_a_running_mean() {
        let mut t = BandTable::new(WAYS);
        let k = same_set_keys(&t, WAYS + 2);
        assert_eq!(t.evicted_age_ms(), 0);
        for &key in &k[..WAYS] {
            t.upsert(key, 1, 0, false, 0);
        }
        // The first eviction sets the mean; later ones move it by 1/1024 of
        // their difference: 1000 + (3024 - 1000) / 1024 = 1001.98.
        t.upsert(k[WAYS], 2, 1000, false, 0);
        assert_eq!(t.evicted_age_ms(), 1000);
        t.upsert(k[WAYS + 1], 3, 3024, false, 0);
        assert_eq!((t.evicted, t.evicted_age_ms()), (2, 1002));
    }

    #[test]
    fn moving_a_band_to_another_narrative_drops_its_kept_mark() {
        let mut t = BandTable::new(WAYS);
        let k = same_set_keys(&t, 5);
        t.upsert(k[0], 1, 10, true, 0);
        // k[0] now leads to narrative 2, a one-off: no longer kept.
        t.upsert(k[0], 2, 11, false, 0);
        for (i, &key) in k[1..4].iter().enumerate() {
            t.upsert(key, 10 + i as u64, 20 + i as i64, true, 0);
        }
        t.upsert(k[4], 99, 30, false, 0);
        assert_eq!(t.get(k[0]), None, "the only entry not kept is the one replaced");
    }

    #[test]
    fn expiring_everything_empties_the_table() {
        let mut t = BandTable::new(64);
        for k in 0..20u64 {
            t.upsert(crate::narrative::minhash::splitmix(k), k, 100 + k as i64, false, 0);
        }
        let n = t.len();
        t.expire(119);
        assert_eq!(t.len(), n, "one entry (at 119) is still in the window");
        t.expire(120);
        assert_eq!((t.len(), t.expired, t.bytes()), (0, n as u64, 0));
    }

    proptest! {
        /// Against a plain map of every key ever written: whatever the
        /// table still finds, it finds with the map's narrative and time,
        /// and it never holds more than its cap.
        #[test]
        fn agrees_with_a_map_on_what_it_keeps(
            writes in proptest::collection::vec((0u64..300, 0u64..20, 0i64..1000, any::<bool>()), 0..400),
            cap in 1usize..64,
        ) {
            let mut t = BandTable::new(cap);
            let mut all = std::collections::HashMap::new();
            let mut inserted = 0u64;
            for &(k, c, time, kept) in &writes {
                let key = crate::narrative::minhash::splitmix(k);
                if t.get(key).is_none() {
                    inserted += 1;
                    // A key written again after its eviction starts over.
                    all.remove(&key);
                }
                t.upsert(key, c, time, kept, 0);
                let e = all.entry(key).or_insert((c, time));
                *e = (c, e.1.max(time));
                prop_assert!(t.len() <= cap);
                prop_assert_eq!(t.get(key), Some(Band { cluster: c, last: e.1 }));
            }
            for (&key, &(c, last)) in &all {
                if let Some(b) = t.get(key) {
                    prop_assert_eq!(b, Band { cluster: c, last });
                }
            }
            prop_assert_eq!(t.len() as u64 + t.evicted, inserted);
        }
    }
}
