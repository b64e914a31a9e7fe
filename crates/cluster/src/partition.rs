//! Which partition a post belongs to.
//!
//! `partition(id, P)` takes the BLAKE3 hash of the pseudonymous post id's
//! UTF-8 bytes, reads its first 8 bytes as a little-endian `u64` and
//! returns that modulo P. The id is already a keyed hash, but hashing it
//! again makes the mapping independent of the id's format (any string
//! spreads evenly) and is the same on every machine and every version.
//! Changing this function would move posts between partitions of an
//! existing stream: never change it.
//!
//! A deletion goes to the partition of the post it deletes, so the worker
//! that stored the post sees its deletion.

/// The partition (0..`partitions`) of the post with pseudonymous id `id`.
/// `partitions` of 0 is treated as 1.
pub fn partition(id: &str, partitions: u32) -> u32 {
    let hash = blake3::hash(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(first) % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_never_change() {
        // Pinned: a change here would reshuffle every existing stream.
        let ids = ["0123456789abcdef0123456789abcdef", "a", ""];
        let got: Vec<u32> = ids.iter().map(|id| partition(id, 16)).collect();
        let expected: Vec<u32> = ids
            .iter()
            .map(|id| {
                let h = blake3::hash(id.as_bytes());
                (u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap()) % 16) as u32
            })
            .collect();
        assert_eq!(got, expected);
        assert_eq!(partition("anything", 1), 0);
        assert_eq!(partition("anything", 0), 0);
    }

    #[test]
    fn roughly_uniform_over_pseudonymous_ids() {
        // 32 000 ids of the pseudonymiser's shape over 16 partitions: each
        // should get 2 000; allow ±10% (about 4.5 standard deviations).
        let p = 16u32;
        let mut counts = vec![0u32; p as usize];
        for i in 0..32_000u32 {
            let id = blake3::hash(&i.to_le_bytes()).to_hex()[..32].to_string();
            counts[partition(&id, p) as usize] += 1;
        }
        for (i, c) in counts.iter().enumerate() {
            assert!((1800..=2200).contains(c), "partition {i} got {c}: {counts:?}");
        }
    }

    proptest! {
        #[test]
        fn in_range_and_stable(id in ".{0,40}", p in 1u32..5000) {
            let a = partition(&id, p);
            prop_assert!(a < p);
            prop_assert_eq!(a, partition(&id.clone(), p));
        }

        #[test]
        fn sequential_ids_spread(start in 0u64..1_000_000, p in 2u32..9) {
            // 400 consecutive numeric ids hit every one of at most 8 partitions.
            let mut seen = vec![false; p as usize];
            for i in start..start + 400 {
                seen[partition(&i.to_string(), p) as usize] = true;
            }
            prop_assert!(seen.iter().all(|s| *s));
        }
    }
}
