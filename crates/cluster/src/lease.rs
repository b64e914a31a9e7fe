//! Partition leases: which worker consumes which partition.
//!
//! A worker claims partition n by creating the key `p.<n>` in the
//! `tidewatch-leases` bucket with its worker id as the value. `create` is
//! atomic, so two workers never both hold a partition. The holder renews
//! by `update` with the revision it last wrote (compare-and-set): the
//! update fails if anyone else wrote the key since, or if the key expired,
//! and that failure is how a worker learns it lost the lease.
//!
//! **Expiry: the bucket's max age, not a timestamp in the value.** The
//! bucket is created with `max_age` = the lease timeout, so the server
//! drops a lease message that many seconds after it was written; every
//! renewal writes a fresh message. A lease not renewed within the timeout
//! simply disappears and the next worker's `create` succeeds. The
//! alternative, an expiry time in the value that others compare with
//! their clock before a CAS delete, would make correctness depend on the
//! workers' clocks agreeing; with max age only the server's clock counts
//! (in a cluster, the stream leader's), and no worker has to clean up
//! after a dead one. The price: the timeout is a property of the bucket,
//! fixed when it is created ([`crate::ClusterConfig::lease_timeout`]).
//!
//! A worker must renew well within the timeout ([`Leases::renew_interval`]
//! is a third of it) and must stop consuming a partition as soon as
//! [`Leases::renew`] reports it lost. Another worker takes a dead worker's
//! partitions over at most one of its claim intervals after they expire.

use crate::setup::Cluster;
use crate::{nats, within, Result};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// The lease key of partition `p`.
pub fn lease_key(p: u32) -> String {
    format!("p.{p}")
}

/// The presence key of a worker: `w.<id>`, renewed with its leases, so
/// that workers can count each other and share the partitions fairly.
pub fn presence_key(worker: &str) -> String {
    // Key-value keys allow letters, digits, `-`, `_`, `=`, `/` and `.`.
    let id: String = worker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("w.{id}")
}

/// One worker's leases (see the module doc).
pub struct Leases {
    kv: kv::Store,
    worker: String,
    partitions: u32,
    timeout: Duration,
    /// Held partitions → the revision of our last write.
    held: BTreeMap<u32, u64>,
}

impl Leases {
    /// The leases of worker `worker_id` (unique per worker process, e.g.
    /// host and process id) over the cluster's partitions; holds nothing yet.
    pub fn new(cluster: &Cluster, worker_id: impl Into<String>) -> Leases {
        Leases {
            kv: cluster.leases_bucket().clone(),
            worker: worker_id.into(),
            partitions: cluster.partitions(),
            timeout: cluster.lease_timeout(),
            held: BTreeMap::new(),
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker
    }

    /// How long an unrenewed lease lives.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How often to call [`Leases::renew`] (and [`Leases::claim_free`] to
    /// pick up partitions of dead workers): a third of the timeout.
    pub fn renew_interval(&self) -> Duration {
        self.timeout / 3
    }

    /// The partitions held, in order.
    pub fn held(&self) -> Vec<u32> {
        self.held.keys().copied().collect()
    }

    /// Claims free partitions until this worker holds `max` (or none is
    /// free). Returns the partitions newly claimed.
    ///
    /// Workers start looking at different partitions (an offset from a hash
    /// of the worker id), so that several starting at once rarely contend.
    pub async fn claim_free(&mut self, max: usize) -> Result<Vec<u32>> {
        let mut claimed = Vec::new();
        let start = crate::partition(&self.worker, self.partitions);
        for i in 0..self.partitions {
            if self.held.len() >= max {
                break;
            }
            let p = (start + i) % self.partitions;
            if self.held.contains_key(&p) {
                continue;
            }
            match self
                .kv
                .create(lease_key(p), self.worker.clone().into_bytes().into())
                .await
            {
                Ok(revision) => {
                    self.held.insert(p, revision);
                    claimed.push(p);
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(nats(format!("claiming partition {p}"))(e)),
            }
        }
        Ok(claimed)
    }

    /// Renews every held lease. Returns the partitions lost (taken over by
    /// another worker, or expired): stop consuming them at once.
    pub async fn renew(&mut self) -> Result<Vec<u32>> {
        let mut lost = Vec::new();
        let held: Vec<(u32, u64)> = self.held.iter().map(|(p, r)| (*p, *r)).collect();
        for (p, revision) in held {
            let written = self
                .kv
                .update(lease_key(p), self.worker.clone().into_bytes().into(), revision)
                .await;
            match written {
                Ok(r) => {
                    self.held.insert(p, r);
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    self.held.remove(&p);
                    lost.push(p);
                }
                Err(e) => return Err(nats(format!("renewing partition {p}"))(e)),
            }
        }
        Ok(lost)
    }

    /// Says this worker is alive (a presence key that expires like a lease).
    pub async fn announce(&self) -> Result<()> {
        self.kv
            .put(presence_key(&self.worker), self.worker.clone().into_bytes().into())
            .await
            .map_err(nats("announcing the worker"))?;
        Ok(())
    }

    /// The workers alive now (their presence keys), this one included.
    ///
    /// The listing has a deadline, a renewal interval ([`crate::within`]):
    /// without it, a leader election once left a worker waiting here for
    /// ever, no longer renewing while its shards kept their index locks.
    pub async fn live_workers(&self) -> Result<usize> {
        const OP: &str = "listing the workers";
        within(self.renew_interval(), OP, async {
            let mut keys = self.kv.keys().await.map_err(nats(OP))?;
            let mut n = 0;
            while let Some(key) = keys.next().await {
                n += key.map_err(nats(OP))?.starts_with("w.") as usize;
            }
            Ok(n)
        })
        .await
    }

    /// The partitions a fair worker holds: P spread over the live workers,
    /// rounded up (so every partition has room somewhere).
    pub fn fair_share(&self, workers: usize) -> usize {
        (self.partitions as usize).div_ceil(workers.max(1))
    }

    /// Gives partition `p` back (when it is still ours), for another worker
    /// to claim at once. Stop consuming it first.
    pub async fn release_one(&mut self, p: u32) -> Result<()> {
        let Some(revision) = self.held.remove(&p) else {
            return Ok(());
        };
        match self.kv.delete_expect_revision(lease_key(p), Some(revision)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(nats(format!("releasing partition {p}"))(e)),
        }
    }

    /// Forgets every held lease without touching the bucket (renewals
    /// failed for longer than the timeout: the leases are gone or soon
    /// will be).
    pub fn forget(&mut self) {
        self.held.clear();
    }

    /// Removes this worker's presence key (it is stopping).
    pub async fn withdraw(&self) -> Result<()> {
        self.kv
            .delete(presence_key(&self.worker))
            .await
            .map_err(nats("withdrawing the worker"))
    }

    /// Gives every held partition back (only where the lease is still ours),
    /// so another worker can claim it without waiting for the timeout.
    pub async fn release(&mut self) -> Result<()> {
        for p in self.held() {
            // Already someone else's or expired: nothing to give back.
            self.release_one(p).await?;
        }
        Ok(())
    }
}
