//! Post-id de-duplication across runs and inputs.
//!
//! Decoders drop repeats they see within a stream; the store catches the
//! rest: the same post in two inputs, or an input read again under another
//! path. Ids are keyed hashes, so checking one against the index is a term
//! lookup — too slow for every post, fine for a few. A Bloom filter over
//! every stored id answers "certainly new" for almost all posts in a few
//! nanoseconds; only its "maybe" (a true repeat, or about 1% of new posts)
//! costs a lookup in the index or among the posts of the open commit.

use rustc_hash::FxHasher;
use std::hash::Hasher;

/// Bits per expected id: about 1% false positives with [`HASHES`] probes.
const BITS_PER_ID: u64 = 10;
const HASHES: u64 = 7;

/// A Bloom filter of post ids.
#[derive(Debug)]
pub struct IdFilter {
    bits: Vec<u64>,
    /// The number of ids this size was chosen for.
    capacity: u64,
    len: u64,
}

impl IdFilter {
    /// An empty filter sized for `capacity` ids.
    pub fn with_capacity(capacity: u64) -> IdFilter {
        let capacity = capacity.max(1 << 16);
        let words = (capacity * BITS_PER_ID).div_ceil(64) as usize;
        IdFilter {
            bits: vec![0; words],
            capacity,
            len: 0,
        }
    }

    /// Whether the filter holds more ids than it was sized for (its false
    /// positive rate then grows; the store rebuilds it larger).
    pub fn is_full(&self) -> bool {
        self.len > self.capacity
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, id: &[u8]) {
        let n = self.bits.len() as u64 * 64;
        for bit in probes(id, n) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    /// False: the id was never inserted. True: it may have been.
    pub fn may_contain(&self, id: &[u8]) -> bool {
        let n = self.bits.len() as u64 * 64;
        probes(id, n).all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

/// The filter's bit positions for `id` (double hashing).
fn probes(id: &[u8], n: u64) -> impl Iterator<Item = u64> {
    let mut h = FxHasher::default();
    h.write(id);
    let a = h.finish();
    let b = a.rotate_left(31).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..HASHES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forgets_and_rarely_imagines() {
        let mut f = IdFilter::with_capacity(100_000);
        for i in 0..100_000u32 {
            f.insert(format!("{i:032x}").as_bytes());
        }
        assert!((0..100_000u32).all(|i| f.may_contain(format!("{i:032x}").as_bytes())));
        let false_positives = (100_000..200_000u32)
            .filter(|i| f.may_contain(format!("{i:032x}").as_bytes()))
            .count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100,000");
        assert!(!f.is_full());
        f.insert(b"one more");
        assert!(f.is_full());
    }
}
