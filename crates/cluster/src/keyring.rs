//! The pseudonymisation keyring, shared by every publisher through the
//! `tidewatch-keyring` key-value bucket.
//!
//! Pseudonyms are keyed hashes ([`tidewatch_core::pseudonym`]): two
//! publishers make the same pseudonym for the same account only if they
//! hold the same keys. So the keys live in the cluster:
//!
//! - `base` holds the pseudonymisation config (epoch length, linkage
//!   window) and the long-lived id key, as a [`KeyringState`] without epoch
//!   keys;
//! - `epoch.<n>` holds the key of epoch n (64 hex digits);
//! - `deleted_below` holds the epoch below which every key was deleted.
//!
//! Every key is made by whichever publisher needs it first, with the
//! bucket's `create`, which is atomic: when two race, one wins and the
//! other reads the winner's key. Nobody ever overwrites a key.
//!
//! When the newest event time a publisher has seen (its watermark) passes
//! an epoch's end by more than the linkage window, the publisher raises
//! `deleted_below` (compare-and-set, never lowered) and purges every older
//! `epoch.<n>` from the bucket, so the key is gone on every machine's
//! disk. A publisher that later needs such an epoch (a late post) reads
//! `deleted_below` first and uses a throw-away key instead, exactly as a
//! single-node keyring does. Because a slow publisher could re-create a
//! key just after it was purged, a publisher re-reads `deleted_below`
//! after creating a key and purges its own key again if it lost that race.
//!
//! Each publisher keeps the keys it fetched in memory only (never on its
//! disk) and pseudonymises through an ordinary [`Keyring`], rebuilt when
//! it learns a key; it only ever pseudonymises posts whose epoch key it
//! has fetched, so it never invents a key of its own for a live epoch. It
//! watches `deleted_below`, so a key another publisher expired leaves its
//! memory too (before its next batch once the watch has delivered, within
//! milliseconds on a healthy cluster).
//! Anyone who can read the bucket can read the keys: protect it with NATS
//! permissions like any secret.

use crate::setup::{create_or_read, Created};
use crate::{nats, within, Error, Result, KEYRING_BUCKET};
use async_nats::jetstream::kv;
use futures_util::TryStreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tidewatch_core::pseudonym::{Key, Keyring, KeyringState, PseudonymConfig, Pseudonymiser};
use tidewatch_core::{Event, Timestamp};

/// How long listing the keyring's keys may take before it counts as failed.
const KEY_LISTING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const BASE: &str = "base";
const DELETED_BELOW: &str = "deleted_below";
const EPOCH_PREFIX: &str = "epoch.";
/// How often a contended compare-and-set is retried before giving up.
const CAS_ATTEMPTS: usize = 20;

/// One publisher's view of the cluster's keyring (see the module doc).
pub struct SharedKeyring {
    kv: kv::Store,
    config: PseudonymConfig,
    id_key: Key,
    /// The epoch keys fetched so far.
    epoch_keys: BTreeMap<i64, Key>,
    /// Every epoch below this one has no key (as far as this publisher knows).
    deleted_below: i64,
    undated_time: Timestamp,
    /// Rebuilt from the fields above whenever they change.
    keys: Arc<Keyring>,
    pseudonymiser: Pseudonymiser,
    /// The cluster's `deleted_below` as last seen by a watch of that key, so
    /// keys another publisher expired leave this one's memory too.
    watched_below: Arc<AtomicI64>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for SharedKeyring {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl SharedKeyring {
    /// Joins the cluster's keyring, creating its base when this is the
    /// first publisher. `config` must match the cluster's when given;
    /// `None` takes the cluster's (or the default, when creating).
    /// `undated_time` chooses the epoch of posts without a timestamp.
    pub async fn open(
        kv: &kv::Store,
        config: Option<PseudonymConfig>,
        undated_time: Timestamp,
    ) -> Result<SharedKeyring> {
        let fresh = Keyring::new(config.unwrap_or_default()).snapshot();
        let base_json = serde_json::to_vec(&fresh).map_err(|e| corrupt(BASE, e))?;
        let base = match create_or_read(kv, BASE, base_json)
            .await
            .map_err(nats("creating the keyring"))?
        {
            Created::Ours => fresh,
            Created::Theirs(bytes) => serde_json::from_slice::<KeyringState>(&bytes).map_err(|e| corrupt(BASE, e))?,
        };
        if let Some(c) = config {
            if c != base.config {
                return Err(Error::KeyringConfig {
                    stored_epoch_ms: base.config.epoch_ms,
                    stored_window_ms: base.config.linkage_window_ms,
                    epoch_ms: c.epoch_ms,
                    window_ms: c.linkage_window_ms,
                });
            }
        }
        let config = base.config;
        let id_key = base.id_key;
        // Watch before reading, so no change falls between the two.
        let mut watch = kv.watch(DELETED_BELOW).await.map_err(nats("watching the keyring"))?;
        let watched_below = Arc::new(AtomicI64::new(i64::MIN));
        let seen = watched_below.clone();
        let watcher = tokio::spawn(async move {
            // The watch ends when the connection closes; then nothing more is learnt.
            while let Ok(Some(entry)) = watch.try_next().await {
                let below = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok());
                if let Some(b) = below {
                    seen.fetch_max(b, Ordering::AcqRel);
                }
            }
        });
        let mut ring = SharedKeyring {
            kv: kv.clone(),
            config,
            id_key,
            epoch_keys: BTreeMap::new(),
            deleted_below: i64::MIN,
            undated_time,
            keys: Arc::new(Keyring::new(config)),
            pseudonymiser: Pseudonymiser::new(Arc::new(Keyring::new(config)), undated_time),
            watched_below,
            watcher,
        };
        ring.deleted_below = ring.read_deleted_below().await?.0;
        ring.rebuild();
        Ok(ring)
    }

    /// The cluster's pseudonymisation config.
    pub fn config(&self) -> PseudonymConfig {
        self.config
    }

    /// The epochs whose keys this publisher holds.
    pub fn epochs(&self) -> Vec<i64> {
        self.epoch_keys.keys().copied().collect()
    }

    /// The keys as this publisher holds them now: a new keyring each time
    /// they change ([`SharedKeyring::prepare`]), so an [`Enricher`] built on
    /// them pseudonymises exactly as [`SharedKeyring::pseudonymise`] does.
    ///
    /// [`Enricher`]: tidewatch_core::enrich::Enricher
    pub fn keys(&self) -> &Arc<Keyring> {
        &self.keys
    }

    /// Pseudonymises a batch in place, as the single-node pipeline does:
    /// [`SharedKeyring::prepare`], then replaces authors, ids and
    /// reply/repost targets and drops permalinks.
    pub async fn pseudonymise(&mut self, events: &mut [Event]) -> Result<()> {
        self.prepare(events).await?;
        for ev in events.iter_mut() {
            match ev {
                Event::Post(p) => self.pseudonymiser.apply(p),
                Event::Delete(d) => self.pseudonymiser.apply_deletion(d),
            }
        }
        Ok(())
    }

    /// Readies [`SharedKeyring::keys`] for a batch: first deletes keys the
    /// batch's newest event time has expired, then fetches or creates the
    /// key of every epoch the batch needs.
    pub async fn prepare(&mut self, events: &[Event]) -> Result<()> {
        let watched = self.watched_below.load(Ordering::Acquire);
        if watched > self.deleted_below {
            self.forget_below(watched);
        }
        let newest = events
            .iter()
            .filter_map(|e| match e {
                Event::Post(p) => p.created_at,
                Event::Delete(_) => None,
            })
            .max();
        if let Some(t) = newest {
            self.expire(t).await?;
        }
        let epochs: std::collections::BTreeSet<i64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Post(p) if p.author.is_some() => Some(self.epoch_of(p.created_at)),
                _ => None,
            })
            .collect();
        let mut changed = false;
        for e in epochs {
            changed |= self.ensure_epoch(e).await?;
        }
        if changed {
            self.rebuild();
        }
        Ok(())
    }

    /// Deletes, cluster-wide, the key of every epoch that ended more than
    /// the linkage window before `watermark`. Returns the epochs whose keys
    /// this call purged from the bucket.
    pub async fn expire(&mut self, watermark: Timestamp) -> Result<Vec<i64>> {
        let cutoff = (watermark.0.saturating_sub(self.config.linkage_window_ms)).div_euclid(self.config.epoch_ms);
        if cutoff <= self.deleted_below {
            return Ok(Vec::new());
        }
        self.raise_deleted_below(cutoff).await?;
        let mut purged = Vec::new();
        // With a deadline (see crate::within): past it, the batch fails
        // like on any NATS error instead of the publisher waiting for ever.
        const OP: &str = "listing the keyring";
        let old = within(KEY_LISTING_TIMEOUT, OP, async {
            let mut keys = self.kv.keys().await.map_err(nats(OP))?;
            let mut old = Vec::new();
            while let Some(key) = keys.try_next().await.map_err(nats(OP))? {
                if let Some(e) = epoch_of_key(&key).filter(|e| *e < cutoff) {
                    old.push((e, key));
                }
            }
            Ok(old)
        })
        .await?;
        for (e, key) in old {
            self.kv
                .purge(&key)
                .await
                .map_err(nats(format!("deleting keyring key {key}")))?;
            purged.push(e);
        }
        self.forget_below(cutoff);
        Ok(purged)
    }

    /// The epoch a post with this timestamp belongs to (as the pseudonymiser computes it).
    fn epoch_of(&self, created_at: Option<Timestamp>) -> i64 {
        created_at
            .unwrap_or(self.undated_time)
            .0
            .div_euclid(self.config.epoch_ms)
    }

    /// Makes sure this publisher holds epoch `e`'s key, unless the epoch was
    /// deleted. Returns whether anything changed.
    async fn ensure_epoch(&mut self, e: i64) -> Result<bool> {
        if e < self.deleted_below || self.epoch_keys.contains_key(&e) {
            return Ok(false);
        }
        // Another publisher may have deleted it since we last looked.
        let (below, _) = self.read_deleted_below().await?;
        if e < below {
            self.forget_below(below);
            return Ok(true);
        }
        let name = format!("{EPOCH_PREFIX}{e}");
        let key: Key = rand::random();
        let hex = blake3::Hash::from_bytes(key).to_hex().to_string();
        let created = create_or_read(&self.kv, &name, hex.into_bytes())
            .await
            .map_err(nats(format!("creating keyring key {name}")))?;
        match created {
            // Lost the race (or someone made it long ago): use theirs.
            Created::Theirs(bytes) => {
                self.epoch_keys.insert(e, parse_key(&name, &bytes)?);
            }
            Created::Ours => {
                // Did an expiry pass this epoch while we created it? Then
                // our key must not survive.
                let (below, _) = self.read_deleted_below().await?;
                if e < below {
                    self.kv
                        .purge(&name)
                        .await
                        .map_err(nats(format!("deleting keyring key {name}")))?;
                    self.forget_below(below);
                } else {
                    self.epoch_keys.insert(e, key);
                }
            }
        }
        Ok(true)
    }

    /// The cluster's `deleted_below` and its revision (0 when not set).
    async fn read_deleted_below(&self) -> Result<(i64, u64)> {
        let entry = self
            .kv
            .entry(DELETED_BELOW)
            .await
            .map_err(nats("reading the keyring"))?;
        match entry {
            Some(en) if en.operation == kv::Operation::Put => {
                let v = std::str::from_utf8(&en.value)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .ok_or_else(|| corrupt(DELETED_BELOW, "not an epoch number"))?;
                Ok((v, en.revision))
            }
            Some(en) => Ok((i64::MIN, en.revision)),
            None => Ok((i64::MIN, 0)),
        }
    }

    /// Raises the cluster's `deleted_below` to at least `cutoff` (never lowers it).
    async fn raise_deleted_below(&self, cutoff: i64) -> Result<()> {
        for _ in 0..CAS_ATTEMPTS {
            let (current, revision) = self.read_deleted_below().await?;
            if current >= cutoff {
                return Ok(());
            }
            let value = cutoff.to_string().into_bytes().into();
            let written = if revision == 0 {
                self.kv.create(DELETED_BELOW, value).await.map(drop).map_err(|e| {
                    (
                        e.kind() == kv::CreateErrorKind::AlreadyExists,
                        nats("writing the keyring")(e),
                    )
                })
            } else {
                self.kv
                    .update(DELETED_BELOW, value, revision)
                    .await
                    .map(drop)
                    // A wrong last revision means someone else wrote: read again.
                    .map_err(|e| {
                        (
                            e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                            nats("writing the keyring")(e),
                        )
                    })
            };
            match written {
                Ok(()) => return Ok(()),
                Err((true, _)) => continue,
                Err((false, e)) => return Err(e),
            }
        }
        Err(Error::Nats {
            op: "writing the keyring's deleted_below".into(),
            source: "too many concurrent changes".into(),
        })
    }

    /// Drops the local keys below `below` and rebuilds the pseudonymiser.
    fn forget_below(&mut self, below: i64) {
        self.deleted_below = self.deleted_below.max(below);
        self.epoch_keys = self.epoch_keys.split_off(&self.deleted_below);
        self.rebuild();
    }

    fn rebuild(&mut self) {
        let state = KeyringState {
            config: self.config,
            id_key: self.id_key,
            epoch_keys: self.epoch_keys.clone(),
            deleted_below: self.deleted_below,
        };
        self.keys = Arc::new(Keyring::from_state(state));
        self.pseudonymiser = Pseudonymiser::new(self.keys.clone(), self.undated_time);
    }
}

/// `epoch.<n>` → n.
fn epoch_of_key(key: &str) -> Option<i64> {
    key.strip_prefix(EPOCH_PREFIX)?.parse().ok()
}

fn parse_key(name: &str, bytes: &[u8]) -> Result<Key> {
    let hex = std::str::from_utf8(bytes).map_err(|e| corrupt(name, e))?;
    blake3::Hash::from_hex(hex.trim())
        .map(|h| *h.as_bytes())
        .map_err(|e| corrupt(name, e))
}

fn corrupt(key: &str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        bucket: KEYRING_BUCKET,
        key: key.to_string(),
        reason: reason.to_string(),
    }
}
