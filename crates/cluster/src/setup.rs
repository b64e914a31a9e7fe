//! Connecting to the cluster and making sure its stream and buckets exist.
//!
//! [`Cluster::connect`] is idempotent and safe to run from many machines at
//! once: it creates what is missing and checks what exists. The partition
//! count P of a stream is recorded in the `tidewatch-config` bucket under
//! `partitions.<STREAM>` with a key-value `create`, which is atomic: the
//! first machine to connect fixes P, and any later one asking for another
//! P gets [`Error::PartitionMismatch`]. (A key rather than stream metadata,
//! because Debian's nats-server 2.9 has no stream metadata; not in the
//! leases bucket, whose entries expire.)
//!
//! The stream keeps posts on disk (file storage), with the configured
//! number of replicas and a duplicate window in which a message whose
//! `Nats-Msg-Id` was seen already is acknowledged but not stored again.

use crate::{nats, BoxError, Error, Result};
use crate::{
    CONFIG_BUCKET, DEFAULT_STREAM, FEEDS_BUCKET, KEYRING_BUCKET, LEASES_BUCKET, MAX_PARTITIONS, SUBJECT_FILTER,
};
use async_nats::jetstream::{self, kv, stream};
use std::time::Duration;

/// The partition count used when a stream is created without one.
pub const DEFAULT_PARTITIONS: u32 = 16;
/// How long the stream remembers message ids for de-duplication, by default.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long an unrenewed partition lease lives, by default.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long posts stay in the stream: the store's default retention (30 days).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// How to reach the cluster and what to create there.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The posts stream's name.
    pub stream: String,
    /// P. `None`: whatever the stream was created with, or
    /// [`DEFAULT_PARTITIONS`] when this call creates it.
    pub partitions: Option<u32>,
    /// Copies of the stream and buckets (1, or 3 on a 3-node cluster).
    pub replicas: usize,
    /// Re-publishing a post id within this window is de-duplicated.
    pub duplicate_window: Duration,
    /// Posts older than this leave the stream, as they leave a store after
    /// its retention (zero keeps them all). Applied to an existing stream
    /// too; `None` leaves an existing stream's as it is (workers, readers)
    /// and gives a new one [`DEFAULT_MAX_AGE`].
    pub max_age: Option<Duration>,
    /// A lease not renewed for this long expires (the leases bucket's max age;
    /// fixed when the bucket is created).
    pub lease_timeout: Duration,
}

impl ClusterConfig {
    /// The defaults for one server at `url`.
    pub fn new(url: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            url: url.into(),
            stream: DEFAULT_STREAM.to_string(),
            partitions: None,
            replicas: 1,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_age: None,
            lease_timeout: DEFAULT_LEASE_TIMEOUT,
        }
    }
}

/// A connection to the cluster with the stream and buckets in place.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    partitions: u32,
    feeds: kv::Store,
    keyring: kv::Store,
    leases: kv::Store,
    lease_timeout: Duration,
}

impl Cluster {
    /// Connects and ensures the stream and the buckets exist (see the module doc).
    pub async fn connect(cfg: &ClusterConfig) -> Result<Cluster> {
        if cfg.stream.is_empty()
            || !cfg
                .stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::InvalidStreamName(cfg.stream.clone()));
        }
        if let Some(p) = cfg.partitions {
            if p == 0 || p > MAX_PARTITIONS {
                return Err(Error::InvalidPartitions(p));
            }
        }
        let urls: Vec<&str> = cfg.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let client = async_nats::ConnectOptions::new()
            .name("tidewatch")
            .connect(urls.as_slice())
            .await
            .map_err(|e| Error::Connect {
                url: cfg.url.clone(),
                source: e.into(),
            })?;
        let js = jetstream::new(client.clone());
        let replicas = cfg.replicas.max(1);

        let config = ensure_bucket(&js, CONFIG_BUCKET, replicas, Duration::ZERO).await?;
        let partitions = ensure_partitions(&config, &cfg.stream, cfg.partitions).await?;
        ensure_stream(&js, cfg, replicas).await?;
        ensure_partials_stream(&js, &cfg.stream, replicas).await?;
        let feeds = ensure_bucket(&js, FEEDS_BUCKET, replicas, Duration::ZERO).await?;
        let keyring = ensure_bucket(&js, KEYRING_BUCKET, replicas, Duration::ZERO).await?;
        let leases = ensure_bucket(&js, LEASES_BUCKET, replicas, cfg.lease_timeout).await?;
        // The bucket's own max age rules, whoever created it.
        let lease_timeout = leases
            .status()
            .await
            .map_err(nats("reading the leases bucket"))?
            .max_age();
        Ok(Cluster {
            client,
            js,
            stream: cfg.stream.clone(),
            partitions,
            feeds,
            keyring,
            leases,
            lease_timeout,
        })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The posts stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    /// P, the stream's partition count.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn feeds_bucket(&self) -> &kv::Store {
        &self.feeds
    }

    pub fn keyring_bucket(&self) -> &kv::Store {
        &self.keyring
    }

    pub fn leases_bucket(&self) -> &kv::Store {
        &self.leases
    }

    /// How long an unrenewed lease lives.
    pub fn lease_timeout(&self) -> Duration {
        self.lease_timeout
    }

    /// Whether every partition's durable consumer exists and has had every
    /// message of its partition delivered and acknowledged, that is
    /// committed by the worker holding it.
    pub async fn consumed(&self) -> Result<bool> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(nats("reading the posts stream"))?;
        for p in 0..self.partitions {
            match stream.consumer_info(crate::consumer_name(p)).await {
                Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Messages in the posts stream, and per partition in order (asked of the
    /// server, so it counts what every publisher stored).
    pub async fn stream_counts(&self) -> Result<(u64, Vec<u64>)> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(nats("reading the posts stream"))?;
        let total = stream
            .info()
            .await
            .map_err(nats("reading the posts stream"))?
            .state
            .messages;
        let mut per = vec![0u64; self.partitions as usize];
        let mut info = stream
            .info_with_subjects(SUBJECT_FILTER)
            .await
            .map_err(nats("listing the stream's subjects"))?;
        use futures_util::TryStreamExt;
        while let Some((subject, n)) = info.try_next().await.map_err(nats("listing the stream's subjects"))? {
            let p = subject
                .rsplit('.')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|p| *p < per.len());
            if let Some(p) = p {
                per[p] = n as u64;
            }
        }
        Ok((total, per))
    }
}

/// Gets a bucket or creates it; a concurrent creator's bucket is fine.
async fn ensure_bucket(js: &jetstream::Context, name: &str, replicas: usize, max_age: Duration) -> Result<kv::Store> {
    if let Ok(kv) = js.get_key_value(name).await {
        return Ok(kv);
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: name.to_string(),
            history: 1,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await;
    match created {
        Ok(kv) => Ok(kv),
        // Someone else may have created it in between.
        Err(e) => js
            .get_key_value(name)
            .await
            .map_err(|_| nats(format!("creating bucket {name}"))(e)),
    }
}

/// Records or checks the stream's partition count (see the module doc).
async fn ensure_partitions(config: &kv::Store, stream: &str, requested: Option<u32>) -> Result<u32> {
    let key = format!("partitions.{stream}");
    let want = requested.unwrap_or(DEFAULT_PARTITIONS);
    let stored = match create_or_read(config, &key, want.to_string().into_bytes()).await {
        Ok(Created::Ours) => return Ok(want),
        Ok(Created::Theirs(v)) => v,
        Err(e) => return Err(nats(format!("writing {CONFIG_BUCKET}/{key}"))(e)),
    };
    let stored: u32 = std::str::from_utf8(&stored)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|p| (1..=MAX_PARTITIONS).contains(p))
        .ok_or_else(|| Error::Corrupt {
            bucket: CONFIG_BUCKET,
            key: key.clone(),
            reason: "not a partition count".into(),
        })?;
    match requested {
        Some(r) if r != stored => Err(Error::PartitionMismatch {
            stream: stream.to_string(),
            stored,
            requested: r,
        }),
        _ => Ok(stored),
    }
}

/// What [`create_or_read`] found.
pub(crate) enum Created {
    /// Our value is now the key's.
    Ours,
    /// The key already held this value.
    Theirs(Vec<u8>),
}

/// Creates `key` with `value` unless it exists, atomically; when it
/// exists, reads what it holds.
///
/// Retries a few times on other errors: a bucket another process has just
/// created may not take writes for a moment (the publish finds no
/// responder), and a key can vanish between the failed create and the read
/// (purged, or expired).
pub(crate) async fn create_or_read(kv: &kv::Store, key: &str, value: Vec<u8>) -> Result<Created, BoxError> {
    const ATTEMPTS: u32 = 6;
    let mut last: BoxError = "no attempt made".into();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
        }
        match kv.create(key, value.clone().into()).await {
            Ok(_) => return Ok(Created::Ours),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => match kv.get(key).await {
                Ok(Some(v)) => return Ok(Created::Theirs(v.to_vec())),
                Ok(None) => last = format!("{key} vanished while being read").into(),
                Err(e) => last = e.into(),
            },
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// How long the workers' partial windows stay in their stream: enough for
/// a merger started late to explain the alerts of the hours before.
pub const PARTIALS_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// The stream of the partial windows of the posts stream `stream`.
pub fn partials_stream(stream: &str) -> String {
    format!("{stream}_AGG")
}

/// The stream that keeps the workers' partial windows
/// (`tidewatch.agg.<p>`, see `crate::merge`) for [`PARTIALS_MAX_AGE`].
async fn ensure_partials_stream(js: &jetstream::Context, stream: &str, replicas: usize) -> Result<()> {
    let name = partials_stream(stream);
    if js.get_stream(&name).await.is_ok() {
        return Ok(());
    }
    let created = js
        .create_stream(stream::Config {
            name: name.clone(),
            description: Some("tidewatch: partial minute windows of each partition's shard".into()),
            subjects: vec![format!("{}.*", crate::merge::AGG_PREFIX)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: replicas,
            max_age: PARTIALS_MAX_AGE,
            ..Default::default()
        })
        .await;
    match created {
        Ok(_) => Ok(()),
        // Another process created it meanwhile.
        Err(e) => match js.get_stream(&name).await {
            Ok(_) => Ok(()),
            Err(_) => Err(nats("creating the partial windows stream")(e)),
        },
    }
}

async fn ensure_stream(js: &jetstream::Context, cfg: &ClusterConfig, replicas: usize) -> Result<()> {
    let check = |info: &stream::Info| {
        if info.config.subjects == [SUBJECT_FILTER] {
            Ok(())
        } else {
            Err(Error::StreamSubjects {
                stream: cfg.stream.clone(),
                found: info.config.subjects.clone(),
            })
        }
    };
    if let Ok(mut s) = js.get_stream(&cfg.stream).await {
        let info = s.info().await.map_err(nats("reading the posts stream"))?;
        check(info)?;
        if let Some(max_age) = cfg.max_age.filter(|m| *m != info.config.max_age) {
            // The retention is a privacy setting: the newest one applies.
            let mut config = info.config.clone();
            config.max_age = max_age;
            js.update_stream(config)
                .await
                .map_err(nats("setting the posts stream's max age"))?;
        }
        return Ok(());
    }
    let created = js
        .create_stream(stream::Config {
            name: cfg.stream.clone(),
            description: Some("tidewatch: pseudonymised posts, one subject per partition".into()),
            subjects: vec![SUBJECT_FILTER.to_string()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: replicas,
            duplicate_window: cfg.duplicate_window,
            max_age: cfg.max_age.unwrap_or(DEFAULT_MAX_AGE),
            ..Default::default()
        })
        .await;
    match created {
        Ok(mut s) => check(s.info().await.map_err(nats("reading the posts stream"))?),
        Err(e) => match js.get_stream(&cfg.stream).await {
            Ok(mut s) => check(s.info().await.map_err(nats("reading the posts stream"))?),
            Err(_) => Err(nats("creating the posts stream")(e)),
        },
    }
}
