//! Pseudonymisation: the first thing that happens to a post.
//!
//! tidewatch watches topics, not people, so a raw account handle must never
//! reach a disk, a log or an API. Before any other stage sees a post:
//!
//! - its **author** becomes a keyed hash of `platform:handle` under the key of
//!   the post's *epoch* (event time divided into periods of, by default,
//!   24 h). Within an epoch, one account has one pseudonym, so campaigns can
//!   be seen; across epochs the pseudonyms are unrelated;
//! - its **id**, `reply_to` and `repost_of` become keyed hashes of
//!   `platform:id` under one long-lived *id key*, stable so that duplicates
//!   and deletions can be matched;
//! - its **permalink** (`url`) is dropped.
//!
//! Epoch keys older than the *linkage window* (default 7 days behind the
//! newest event time seen) are deleted from the [`Keyring`]: once a key is
//! gone, nobody, including the operator, can recompute or link the
//! pseudonyms made under it. A late post from such an epoch gets a
//! pseudonym under a throw-away key that is never stored.
//!
//! The hash is BLAKE3 in keyed mode, a keyed pseudo-random function with the
//! same role as HMAC-SHA256 and several times faster on short inputs.

use crate::post::{Deletion, Post};
use crate::time::Timestamp;
use rand::{rngs::StdRng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How long an epoch lasts and how long its key is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PseudonymConfig {
    /// Length of one pseudonym epoch in milliseconds (default 24 h).
    pub epoch_ms: i64,
    /// How long after an epoch ends its key is kept (default 7 days).
    pub linkage_window_ms: i64,
}

impl Default for PseudonymConfig {
    fn default() -> Self {
        PseudonymConfig {
            epoch_ms: Timestamp::DAY,
            linkage_window_ms: 7 * Timestamp::DAY,
        }
    }
}

/// A 256-bit key.
pub type Key = [u8; 32];

/// What the keyring stores: the id key and the live epoch keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyringState {
    pub config: PseudonymConfig,
    #[serde(with = "hex_key")]
    pub id_key: Key,
    /// Epoch number → key, for epochs whose key has not been deleted.
    #[serde(with = "hex_epoch_keys")]
    pub epoch_keys: BTreeMap<i64, Key>,
    /// Every epoch below this one has had its key deleted.
    pub deleted_below: i64,
}

/// The keys of one data directory, shared by every enrichment thread.
///
/// Keys are created on first use from the operating system's random source
/// (or from a seed, for reproducible tests). The engine persists
/// [`Keyring::snapshot`] whenever [`Keyring::generation`] changes.
pub struct Keyring {
    state: Mutex<KeyringInner>,
    generation: AtomicU64,
}

struct KeyringInner {
    state: KeyringState,
    rng: StdRng,
    /// Throw-away keys for late posts of deleted epochs. Never persisted.
    ephemeral: BTreeMap<i64, Key>,
    /// Epochs deleted since the last [`Keyring::take_deleted`], so the
    /// store can record when each key went (bounded; a day adds one).
    deleted_log: Vec<i64>,
}

impl Keyring {
    /// A new keyring with fresh random keys.
    pub fn new(config: PseudonymConfig) -> Keyring {
        Keyring::from_rng(config, StdRng::from_entropy())
    }

    /// A keyring whose keys derive from `seed`: for tests only, never for
    /// real data (anyone who knows the seed can recompute pseudonyms).
    pub fn from_seed(config: PseudonymConfig, seed: u64) -> Keyring {
        Keyring::from_rng(config, StdRng::seed_from_u64(seed))
    }

    fn from_rng(config: PseudonymConfig, mut rng: StdRng) -> Keyring {
        let mut id_key = [0u8; 32];
        rng.fill_bytes(&mut id_key);
        let state = KeyringState {
            config,
            id_key,
            epoch_keys: BTreeMap::new(),
            deleted_below: i64::MIN,
        };
        Keyring::restore(state, rng)
    }

    /// A keyring continuing from a stored state.
    pub fn from_state(state: KeyringState) -> Keyring {
        Keyring::restore(state, StdRng::from_entropy())
    }

    fn restore(state: KeyringState, rng: StdRng) -> Keyring {
        Keyring {
            state: Mutex::new(KeyringInner {
                state,
                rng,
                ephemeral: BTreeMap::new(),
                deleted_log: Vec::new(),
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// Changes whenever a key is created or deleted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A copy of what must be persisted.
    pub fn snapshot(&self) -> KeyringState {
        self.lock().state.clone()
    }

    pub fn config(&self) -> PseudonymConfig {
        self.lock().state.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyringInner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn id_key(&self) -> Key {
        self.lock().state.id_key
    }

    /// The key of `epoch`, created if needed.
    fn epoch_key(&self, epoch: i64) -> Key {
        let mut inner = self.lock();
        if let Some(k) = inner.state.epoch_keys.get(&epoch) {
            return *k;
        }
        let mut key = [0u8; 32];
        inner.rng.fill_bytes(&mut key);
        if epoch < inner.state.deleted_below {
            // Bound the throw-away keys so a stream of late posts cannot grow them.
            if inner.ephemeral.len() >= 64 {
                inner.ephemeral.clear();
            }
            return *inner.ephemeral.entry(epoch).or_insert(key);
        }
        inner.state.epoch_keys.insert(epoch, key);
        drop(inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        key
    }

    /// The epochs whose keys [`Keyring::expire`] deleted since the last call.
    pub fn take_deleted(&self) -> Vec<i64> {
        std::mem::take(&mut self.lock().deleted_log)
    }

    /// Deletes the keys of every epoch that ended more than the linkage
    /// window before `watermark`. Returns the epochs deleted.
    pub fn expire(&self, watermark: Timestamp) -> Vec<i64> {
        let mut inner = self.lock();
        let cfg = inner.state.config;
        // Epoch e ends at (e + 1) * epoch_ms; it is deleted once that end is
        // more than the linkage window behind the watermark.
        let cutoff = (watermark.0 - cfg.linkage_window_ms).div_euclid(cfg.epoch_ms);
        let keep = inner.state.epoch_keys.split_off(&cutoff);
        let deleted: Vec<i64> = std::mem::replace(&mut inner.state.epoch_keys, keep)
            .into_keys()
            .collect();
        if inner.deleted_log.len() < 100_000 {
            inner.deleted_log.extend_from_slice(&deleted);
        }
        let moved = cutoff > inner.state.deleted_below;
        if moved {
            inner.state.deleted_below = cutoff;
        }
        drop(inner);
        if !deleted.is_empty() || moved {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        deleted
    }
}

/// Replaces a post's identifying fields with keyed hashes. One per thread;
/// it caches keys and notices when the keyring changes.
pub struct Pseudonymiser {
    keyring: Arc<Keyring>,
    generation: u64,
    id_key: Key,
    epoch_ms: i64,
    /// The most recently used epoch keys (a post stream is mostly one epoch).
    cache: Vec<(i64, Key)>,
    /// Epoch to use for posts without a timestamp.
    undated_epoch_time: Timestamp,
    buf: String,
}

impl Pseudonymiser {
    /// `undated_time` is the time used to choose the epoch of posts that
    /// carry no `created_at` (usually the wall-clock time at start).
    pub fn new(keyring: Arc<Keyring>, undated_time: Timestamp) -> Pseudonymiser {
        let id_key = keyring.id_key();
        let epoch_ms = keyring.config().epoch_ms;
        let generation = keyring.generation();
        Pseudonymiser {
            keyring,
            generation,
            id_key,
            epoch_ms,
            cache: Vec::new(),
            undated_epoch_time: undated_time,
            buf: String::new(),
        }
    }

    /// The keyring it hashes with.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    fn key_for(&mut self, epoch: i64) -> Key {
        let g = self.keyring.generation();
        if g != self.generation {
            self.cache.clear();
            self.generation = g;
        }
        if let Some((_, k)) = self.cache.iter().find(|(e, _)| *e == epoch) {
            return *k;
        }
        let k = self.keyring.epoch_key(epoch);
        // Creating the key bumped the generation; don't clear on our own change.
        self.generation = self.keyring.generation();
        if self.cache.len() >= 4 {
            self.cache.remove(0);
        }
        self.cache.push((epoch, k));
        k
    }

    /// The epoch a post belongs to.
    pub fn epoch_of(&self, created_at: Option<Timestamp>) -> i64 {
        created_at
            .unwrap_or(self.undated_epoch_time)
            .0
            .div_euclid(self.epoch_ms)
    }

    /// The pseudonym of account `handle` on `platform` in `epoch`:
    /// `u<epoch>-<20 hex digits>`. Handles are compared case-insensitively.
    pub fn account(&mut self, platform: &str, handle: &str, epoch: i64) -> String {
        let hash = self.account_hash(platform, handle, epoch);
        let mut out = String::with_capacity(32);
        write_account(&mut out, epoch, &hash);
        out
    }

    fn account_hash(&mut self, platform: &str, handle: &str, epoch: i64) -> blake3::Hash {
        let key = self.key_for(epoch);
        self.buf.clear();
        self.buf.push_str(platform);
        self.buf.push(':');
        let h = handle.trim_start_matches('@');
        if h.is_ascii() {
            self.buf.extend(h.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            self.buf.extend(h.chars().flat_map(char::to_lowercase));
        }
        blake3::keyed_hash(&key, self.buf.as_bytes())
    }

    /// The keyed hash of a post id: 32 hex digits.
    pub fn post_id(&mut self, platform: &str, id: &str) -> String {
        let hash = self.post_id_hash(platform, id);
        let mut out = String::with_capacity(32);
        push_hex(&mut out, &hash.as_bytes()[..16]);
        out
    }

    fn post_id_hash(&mut self, platform: &str, id: &str) -> blake3::Hash {
        self.buf.clear();
        self.buf.push_str(platform);
        self.buf.push(':');
        self.buf.push_str(id);
        blake3::keyed_hash(&self.id_key, self.buf.as_bytes())
    }

    /// Pseudonymises a post in place: author, id, reply_to, repost_of; drops
    /// the permalink. Call exactly once per post.
    ///
    /// The pseudonyms overwrite the fields' own buffers: a post's strings
    /// were allocated by the decoding thread, and replacing them would free
    /// each one across threads and allocate anew.
    pub fn apply(&mut self, post: &mut Post) {
        let epoch = self.epoch_of(post.created_at);
        if let Some(a) = post.author.as_mut() {
            let hash = self.account_hash(&post.platform, a, epoch);
            a.clear();
            write_account(a, epoch, &hash);
        }
        for field in [Some(&mut post.id), post.reply_to.as_mut(), post.repost_of.as_mut()]
            .into_iter()
            .flatten()
        {
            let hash = self.post_id_hash(&post.platform, field);
            field.clear();
            push_hex(field, &hash.as_bytes()[..16]);
        }
        post.url = None;
    }

    /// Pseudonymises a deletion notice so it names the stored post.
    pub fn apply_deletion(&mut self, d: &mut Deletion) {
        d.id = self.post_id(&d.platform, &d.id);
    }
}

/// Appends an account pseudonym, `u<epoch>-<20 hex digits>`, to `out`.
fn write_account(out: &mut String, epoch: i64, hash: &blake3::Hash) {
    out.push('u');
    push_decimal(out, epoch);
    out.push('-');
    push_hex(out, &hash.as_bytes()[..10]);
}

/// Appends `n` in decimal: `write!` would do, at several times the cost on
/// a path taken for every post.
fn push_decimal(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut rest = n.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn parse_hex_key(s: &str) -> Option<Key> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        k[i] = (hi * 16 + lo) as u8;
    }
    Some(k)
}

mod hex_key {
    use super::*;
    pub fn serialize<S: serde::Serializer>(k: &Key, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::new();
        push_hex(&mut out, k);
        s.serialize_str(&out)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex_key(&s).ok_or_else(|| serde::de::Error::custom("a key is 64 hex digits"))
    }
}

mod hex_epoch_keys {
    use super::*;
    pub fn serialize<S: serde::Serializer>(m: &BTreeMap<i64, Key>, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(m.len()))?;
        for (e, k) in m {
            let mut hex = String::new();
            push_hex(&mut hex, k);
            map.serialize_entry(&e.to_string(), &hex)?;
        }
        map.end()
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, Key>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(e, k)| {
                let e = e
                    .parse()
                    .map_err(|_| serde::de::Error::custom("an epoch is an integer"))?;
                let k = parse_hex_key(&k).ok_or_else(|| serde::de::Error::custom("a key is 64 hex digits"))?;
                Ok((e, k))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

    fn pseudonymiser(seed: u64) -> (Arc<Keyring>, Pseudonymiser) {
        let ring = Arc::new(Keyring::from_seed(PseudonymConfig::default(), seed));
        let p = Pseudonymiser::new(ring.clone(), T0);
        (ring, p)
    }

    fn post(author: &str, at: Timestamp) -> Post {
        Post {
            id: "123".into(),
            platform: "twitter".into(),
            created_at: Some(at),
            author: Some(author.into()),
            reply_to: Some("77".into()),
            repost_of: Some("88".into()),
            url: Some("https://twitter.com/alice_example/status/123".into()),
            text: "hello".into(),
            ..Default::default()
        }
    }

    #[test]
    fn replaces_every_identifying_field() {
        let (_, mut ps) = pseudonymiser(1);
        let mut p = post("alice_example", T0);
        ps.apply(&mut p);
        let a = p.author.clone().unwrap();
        assert!(a.starts_with(&format!("u{}-", T0.0 / Timestamp::DAY)), "{a}");
        assert_eq!(a.len(), "u20454-".len() + 20);
        assert!(!a.contains("alice"));
        assert_eq!(p.id.len(), 32);
        assert_ne!(p.id, "123");
        assert_eq!(p.url, None);
        assert_eq!(p.reply_to.as_ref().unwrap().len(), 32);
        // An id hashes the same wherever it appears: a reply's target equals
        // that post's own hashed id.
        assert_eq!(p.reply_to.unwrap(), ps.post_id("twitter", "77"));
    }

    #[test]
    fn same_account_same_epoch_links_other_epochs_do_not() {
        let (_, mut ps) = pseudonymiser(1);
        let a1 = ps.account("twitter", "Alice_Example", 5);
        let a2 = ps.account("twitter", "alice_example", 5);
        let a3 = ps.account("twitter", "alice_example", 6);
        let b = ps.account("bluesky", "alice_example", 5);
        assert_eq!(a1, a2, "handles are case-insensitive within an epoch");
        assert_ne!(a1[3..], a3[3..]);
        assert_ne!(a1, b, "platform is part of the account");
    }

    #[test]
    fn different_keyrings_give_unrelated_pseudonyms() {
        let (_, mut p1) = pseudonymiser(1);
        let (_, mut p2) = pseudonymiser(2);
        assert_ne!(p1.account("x", "a", 1), p2.account("x", "a", 1));
        assert_ne!(p1.post_id("x", "1"), p2.post_id("x", "1"));
    }

    #[test]
    fn expired_keys_are_deleted_and_late_posts_unlinkable() {
        let (ring, mut ps) = pseudonymiser(3);
        let day = Timestamp::DAY;
        let before = ps.account("x", "a", 0);
        assert!(ring.snapshot().epoch_keys.contains_key(&0));
        // Watermark at day 8.5: epoch 0 ended at day 1, 7.5 days ago → deleted.
        let deleted = ring.expire(Timestamp(8 * day + day / 2));
        assert_eq!(deleted, vec![0]);
        assert!(ring.snapshot().epoch_keys.is_empty());
        assert_eq!(ring.snapshot().deleted_below, 1);
        // A late post of epoch 0 gets a pseudonym that does not link to the old one,
        // and the throw-away key is never persisted.
        let after = ps.account("x", "a", 0);
        assert_ne!(before, after);
        assert!(!ring.snapshot().epoch_keys.contains_key(&0));
        // Epoch 1 ended at day 2, 6.5 days ago: kept.
        ps.account("x", "a", 1);
        assert!(ring.snapshot().epoch_keys.contains_key(&1));
    }

    #[test]
    fn keyring_state_round_trips_through_json() {
        let (ring, mut ps) = pseudonymiser(4);
        let a = ps.account("x", "a", 9);
        let json = serde_json::to_string(&ring.snapshot()).unwrap();
        let restored = Arc::new(Keyring::from_state(serde_json::from_str(&json).unwrap()));
        let mut ps2 = Pseudonymiser::new(restored, T0);
        assert_eq!(ps2.account("x", "a", 9), a);
        assert_eq!(ps2.post_id("x", "5"), ps.post_id("x", "5"));
    }

    proptest! {
        #[test]
        fn pseudonyms_never_contain_the_handle(handle in "[a-zA-Z0-9_]{4,15}", epoch in -5i64..100_000) {
            let (_, mut ps) = pseudonymiser(9);
            let a = ps.account("twitter", &handle, epoch);
            prop_assert!(!a.to_lowercase().contains(&handle.to_lowercase()) || handle.len() < 6);
            prop_assert_eq!(a.clone(), ps.account("twitter", &handle.to_uppercase(), epoch));
        }

        #[test]
        fn decimal_matches_the_formatter(n in any::<i64>()) {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            prop_assert_eq!(out, format!("x{n}"));
        }

        /// Pseudonymising in place gives what the allocating functions give.
        #[test]
        fn apply_equals_the_field_functions(author in "@?[a-zA-Z0-9_]{1,30}", id in "[0-9]{1,25}", reply in proptest::option::of("[0-9]{1,20}")) {
            let (_, mut ps) = pseudonymiser(3);
            let mut p = post(&author, T0);
            p.id = id.clone();
            p.reply_to = reply.clone();
            ps.apply(&mut p);
            let epoch = ps.epoch_of(Some(T0));
            prop_assert_eq!(p.author, Some(ps.account("twitter", &author, epoch)));
            prop_assert_eq!(p.id, ps.post_id("twitter", &id));
            prop_assert_eq!(p.reply_to, reply.map(|r| ps.post_id("twitter", &r)));
            prop_assert_eq!(p.url, None);
        }
    }
}
