//! A string → id dictionary built for one job: looking up every token of a
//! post, and every prefix of it that some wildcard starts with, in one pass
//! over the token's bytes.
//!
//! The idea: the hash is FNV-1a, computed byte by byte, so the hash of a
//! token's first `L` bytes is simply the running state after `L` bytes.
//! Hashing a token once therefore yields the hashes of all its prefixes for
//! free, and only the prefix lengths that actually occur in the prefix
//! table are probed. The table itself is open addressing with linear
//! probing over `(hash, id)` slots; a hit is confirmed by comparing bytes
//! with the key stored in one shared arena (no allocation per key).

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The running FNV-1a state, starting value.
#[inline]
pub fn hash_start() -> u64 {
    FNV_OFFSET
}

/// Feeds one byte into a running FNV-1a state.
#[inline]
pub fn hash_step(h: u64, byte: u8) -> u64 {
    (h ^ byte as u64).wrapping_mul(FNV_PRIME)
}

/// The FNV-1a hash of a whole byte string.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash_start(), |h, &b| hash_step(h, b))
}

/// Spreads FNV's weak low bits before they pick a slot.
#[inline]
fn mix(h: u64) -> u64 {
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The high half of the key's hash; 0 marks an empty slot (a real 0 is
    /// stored as 1). Eight-byte slots keep the table small enough to stay
    /// in cache.
    tag: u32,
    id: u32,
}

/// The slot tag of a hash.
#[inline]
fn tag(h: u64) -> u32 {
    ((h >> 32) as u32).max(1)
}

/// An immutable-after-build map from byte strings to dense ids `0..len`.
#[derive(Clone, Debug, Default)]
pub struct StrTable {
    slots: Vec<Slot>,
    mask: usize,
    /// Keys back to back; key `id` is `arena[ends[id-1]..ends[id]]`.
    arena: Vec<u8>,
    ends: Vec<u32>,
}

impl StrTable {
    pub fn new() -> StrTable {
        let mut t = StrTable::default();
        t.grow(16);
        t
    }

    fn grow(&mut self, capacity: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![Slot::default(); capacity];
        self.mask = capacity - 1;
        for slot in old.into_iter().filter(|s| s.tag != 0) {
            let h = hash_bytes(self.key(slot.id));
            let mut i = mix(h) as usize & self.mask;
            while self.slots[i].tag != 0 {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = slot;
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The key with this id.
    pub fn key(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] as usize };
        &self.arena[start..self.ends[id] as usize]
    }

    /// The id of `key`, inserting it if new.
    pub fn intern(&mut self, key: &[u8]) -> u32 {
        let h = hash_bytes(key);
        if let Some(id) = self.get_hashed(h, key) {
            return id;
        }
        if (self.ends.len() + 1) * 2 > self.slots.len() {
            self.grow(self.slots.len() * 2);
        }
        let id = self.ends.len() as u32;
        self.arena.extend_from_slice(key);
        self.ends.push(self.arena.len() as u32);
        let mut i = mix(h) as usize & self.mask;
        while self.slots[i].tag != 0 {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot { tag: tag(h), id };
        id
    }

    /// The id of a key whose FNV-1a hash is `h`.
    #[inline]
    pub fn get_hashed(&self, h: u64, key: &[u8]) -> Option<u32> {
        let t = tag(h);
        let mut i = mix(h) as usize & self.mask;
        loop {
            let slot = self.slots[i];
            if slot.tag == 0 {
                return None;
            }
            if slot.tag == t && self.key(slot.id) == key {
                return Some(slot.id);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[cfg(test)]
    pub fn get(&self, key: &[u8]) -> Option<u32> {
        self.get_hashed(hash_bytes(key), key)
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>() + self.arena.capacity() + self.ends.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_finds_keys_across_growth() {
        let mut t = StrTable::new();
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.intern(k.as_bytes()), i as u32);
        }
        assert_eq!(t.intern(b"k7"), 7);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k.as_bytes()), Some(i as u32));
            assert_eq!(t.key(i as u32), k.as_bytes());
        }
        assert_eq!(t.get(b"absent"), None);
        assert_eq!(t.get(b""), None);
        assert_eq!(t.len(), 1000);
    }

    #[test]
    fn running_hash_equals_prefix_hash() {
        let word = "climate".as_bytes();
        let mut h = hash_start();
        for (i, &b) in word.iter().enumerate() {
            h = hash_step(h, b);
            assert_eq!(h, hash_bytes(&word[..=i]));
        }
    }
}
