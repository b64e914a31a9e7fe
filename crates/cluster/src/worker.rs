//! `tidewatch worker`: leases partitions of the posts stream and keeps each
//! one's shard (the store a single-node run would make of that partition).
//!
//! **A shard per partition.** Partition p's posts go to their own store in
//! [`crate::shard_dir`]`(data, p)`, written by an ordinary engine pipeline
//! (enrich → match → windows → store) whose only input is a live source
//! reading `tidewatch.posts.<p>` through the durable consumer of p. A
//! partition is the unit that moves between workers, so its results never
//! have to be split or merged inside a store: a worker that takes p over
//! opens p's directory and goes on from its checkpoint. Workers on one
//! machine share a data directory, and shards move between them as they
//! are; a worker on another machine without p's directory rebuilds it
//! from the stream (which keeps posts for the retention).
//!
//! **Exactly-once effect.** The shard's checkpoint is the stream sequence
//! of the last post it committed, stored in the same commit as the posts.
//! The consumer is recreated at that checkpoint whenever a worker opens
//! the shard, and a message is acknowledged only after the commit that
//! covers it. A worker killed between its commit and its acknowledgement
//! leaves messages that are delivered again; the store drops them by post
//! id. Two workers never write one shard: a partition's lease is held by
//! one worker at a time, and the index's writer lock refuses a second
//! writer besides.
//!
//! **Leases and balance.** Every third of the lease timeout the worker
//! renews its leases and its presence key, counts the live workers and
//! holds its fair share of the P partitions (P over the workers, rounded
//! up): it claims free partitions below it and, above it, stops a shard,
//! commits it and gives the partition back. A shard whose lease is lost
//! stops at once (its last batch is still committed: the checkpoint is
//! where the next owner starts).
//!
//! **Feeds** come from the cluster's key-value bucket ([`crate::feeds`]);
//! every new version is swapped into every shard's live feeds while the
//! posts flow (one version per batch, as in a single-node run).
//!
//! Posts arrive pseudonymised and redacted by `tidewatch publish`: the
//! pipeline is told so ([`RunConfig::pseudonymised`]) and never hashes an
//! id again; the worker keeps no keyring.

use crate::feeds::{FeedsVersion, FeedsWatch};
use crate::lease::Leases;
use crate::merge::{agg_subject, PartialWindow, PartialWindows};
use crate::setup::{Cluster, ClusterConfig};
use crate::view::ShardResponder;
use crate::{consumer_name, shard_dir, subject, Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::window::{Resolution, WindowConfig, WindowView};
use tidewatch_core::{Deletion, Timestamp};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::{DecodeOptions, Position};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::persist::{open_for_run, CommitPolicy, Persister};
use tidewatch_engine::run::{run_inputs, Inputs, MatchedPost, RunConfig, RunProgress, RunSink, SinkError};
use tidewatch_engine::sources::{checkpoint_name, LiveOptions, LiveSources, SourceSpec};
use tidewatch_sources::nats::NatsPartitionConfig;

/// How a worker runs, besides the cluster it joins.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Where the shards live (one directory per partition).
    pub data: PathBuf,
    /// Unique per worker process.
    pub worker_id: String,
    /// Processing threads of each shard's pipeline.
    pub threads: usize,
    /// How often shards commit (and so acknowledge).
    pub commit: CommitPolicy,
    /// Posts older than this many days leave a shard's index (0: kept).
    pub retention_days: u32,
    /// Hold at most this many partitions (`None`: the fair share).
    pub max_partitions: Option<usize>,
}

/// What a worker is doing, shared with whoever reports it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkerStatus {
    pub worker_id: String,
    /// Partitions held now, with what each shard has done in this process.
    pub shards: BTreeMap<u32, ShardStatus>,
    /// The feed set's revision applied to every shard (0: none yet).
    pub feeds_revision: u64,
    /// Live workers seen at the last renewal.
    pub workers: usize,
}

/// One shard's progress in this process.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShardStatus {
    pub posts: u64,
    pub matched: u64,
    /// The stream sequence of the last committed post.
    pub committed_sequence: Option<u64>,
}

/// A running worker (see the module doc); [`Worker::stop`] ends it.
pub struct Worker {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<WorkerStatus>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Worker {
    /// Connects and starts the worker on its own threads. Fails when the
    /// cluster cannot be reached.
    pub fn start(cluster: ClusterConfig, opts: WorkerOptions) -> Result<Worker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let connected = runtime.block_on(Cluster::connect(&cluster))?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(WorkerStatus {
            worker_id: opts.worker_id.clone(),
            ..Default::default()
        }));
        let (s, st) = (stop.clone(), status.clone());
        let thread = std::thread::Builder::new()
            .name(format!("worker {}", opts.worker_id))
            .spawn(move || runtime.block_on(work(connected, cluster.url, opts, s, st)))?;
        Ok(Worker {
            stop,
            status,
            thread: Some(thread),
        })
    }

    /// What the worker is doing now.
    pub fn status(&self) -> WorkerStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True once the worker ended by itself (an error; see [`Worker::stop`]).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops every shard (each commits what it has), gives the partitions
    /// back and returns how the worker ended.
    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Io(std::io::Error::other("the worker thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the workers have consumed and committed everything in the
/// stream ([`Cluster::consumed`]); false after `timeout`. For benchmarks
/// and tests.
pub fn wait_consumed(cfg: &ClusterConfig, timeout: Duration) -> Result<bool> {
    crate::publish::runtime()?.block_on(async {
        let cluster = Cluster::connect(cfg).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cluster.consumed().await? {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// The worker's loop: leases, balance, feeds (see the module doc).
async fn work(
    cluster: Cluster,
    url: String,
    opts: WorkerOptions,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<WorkerStatus>>,
) -> Result<()> {
    let mut leases = Leases::new(&cluster, opts.worker_id.clone());
    let mut feeds = FeedsWatch::start(&cluster).await?;
    // The newest feed set, also read by shards as they open.
    let current = Arc::new(Mutex::new(FeedsVersion {
        defs: Vec::new(),
        revision: 0,
    }));
    let mut shards: BTreeMap<u32, Shard> = BTreeMap::new();
    let mut outcome = Ok(());
    let tick = leases.renew_interval();
    let mut next_tick = tokio::time::Instant::now();
    let mut renewed = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            change = feeds.next() => match change {
                Some(Ok(version)) => {
                    let revision = version.revision;
                    *lock(&current) = version;
                    for shard in shards.values() {
                        shard.apply(&current);
                    }
                    lock(&status).feeds_revision = revision;
                }
                Some(Err(e)) => eprintln!("worker {}: feeds not applied: {e}", opts.worker_id),
                None => {
                    outcome = Err(Error::Io(std::io::Error::other("the feeds watch ended")));
                    break;
                }
            },
            _ = tokio::time::sleep_until(next_tick) => {
                next_tick += tick;
                let timeout = leases.timeout();
                let round = balance(&mut leases, &mut shards, &cluster, &url, &opts, &current, &status);
                match reporting_hangs(round, timeout, &opts.worker_id).await {
                    Ok(()) => renewed = tokio::time::Instant::now(),
                    // NATS unreachable for a moment (a node restarting, a
                    // leader election): the next round tries again. Past
                    // the lease timeout the leases may be someone else's:
                    // stop writing.
                    Err(e) => {
                        eprintln!("worker {}: {e:#}", opts.worker_id);
                        if renewed.elapsed() >= leases.timeout() && !shards.is_empty() {
                            eprintln!("worker {}: leases not renewed in time; stopping every shard", opts.worker_id);
                            for (_, shard) in std::mem::take(&mut shards) {
                                shard.finish().await.ok();
                            }
                            leases.forget();
                        }
                    }
                }
            }
            // The stop flag is polled: it is set from other threads.
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        // A shard that ended by itself (its store failed) gives its
        // partition back for another worker to try.
        let failed: Vec<u32> = shards.iter().filter(|(_, s)| s.ended()).map(|(p, _)| *p).collect();
        for p in failed {
            if let Some(shard) = shards.remove(&p) {
                if let Err(e) = shard.finish().await {
                    eprintln!("worker {}: partition {p}: {e}", opts.worker_id);
                }
                if let Err(e) = leases.release_one(p).await {
                    eprintln!("worker {}: {e:#}", opts.worker_id);
                }
            }
        }
        update_status(&status, &shards, &leases);
    }
    for (p, shard) in std::mem::take(&mut shards) {
        if let Err(e) = shard.finish().await {
            eprintln!("worker {}: partition {p}: {e}", opts.worker_id);
        }
    }
    // Giving back is a courtesy: unreleased leases expire by themselves.
    if let Err(e) = leases.release().await {
        eprintln!("worker {}: {e:#}", opts.worker_id);
    }
    leases.withdraw().await.ok();
    update_status(&status, &shards, &leases);
    outcome
}

/// Awaits a lease round; one that hangs on NATS is reported every
/// `every`, not cancelled (cancelling could drop a shard half started).
async fn reporting_hangs<T>(round: impl std::future::Future<Output = T>, every: Duration, worker: &str) -> T {
    tokio::pin!(round);
    loop {
        match tokio::time::timeout(every, &mut round).await {
            Ok(outcome) => return outcome,
            Err(_) => eprintln!("worker {worker}: a lease round has waited on NATS for over {every:?}"),
        }
    }
}

/// One renewal: keep the leases, hold the fair share, start and stop shards.
async fn balance(
    leases: &mut Leases,
    shards: &mut BTreeMap<u32, Shard>,
    cluster: &Cluster,
    url: &str,
    opts: &WorkerOptions,
    feeds: &Arc<Mutex<FeedsVersion>>,
    status: &Arc<Mutex<WorkerStatus>>,
) -> Result<()> {
    for p in leases.renew().await? {
        // Lost (expired, or taken): stop writing at once.
        if let Some(shard) = shards.remove(&p) {
            eprintln!("worker {}: lost the lease on partition {p}", opts.worker_id);
            shard.finish().await.ok();
        }
    }
    leases.announce().await?;
    let workers = leases.live_workers().await?;
    lock(status).workers = workers;
    let mut share = leases.fair_share(workers);
    if let Some(max) = opts.max_partitions {
        share = share.min(max);
    }
    let held = leases.held();
    if held.len() > share {
        let extra = held.len() - share;
        // Give back the highest-numbered ones; each is committed first.
        for p in held.into_iter().rev().take(extra) {
            if let Some(shard) = shards.remove(&p) {
                shard.finish().await?;
            }
            leases.release_one(p).await?;
        }
    }
    leases.claim_free(share).await?;
    for p in leases.held() {
        if let std::collections::btree_map::Entry::Vacant(slot) = shards.entry(p) {
            let mut shard = Shard::start(p, cluster, url, opts, feeds.clone())?;
            // The lease holder answers searches of the partition's shard.
            let dir = shard_dir(&opts.data, p);
            shard.responder = Some(ShardResponder::start(cluster.client().clone(), p, dir).await?);
            slot.insert(shard);
        }
    }
    Ok(())
}

fn update_status(status: &Arc<Mutex<WorkerStatus>>, shards: &BTreeMap<u32, Shard>, leases: &Leases) {
    let mut s = lock(status);
    s.shards = leases
        .held()
        .into_iter()
        .map(|p| (p, shards.get(&p).map(Shard::status).unwrap_or_default()))
        .collect();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A shard pipeline's feeds once its store is open, and the feed-set
/// revision they were last set from.
type LiveSlot = Arc<Mutex<Option<(Arc<LiveFeeds>, u64)>>>;

/// One partition's pipeline, running on its own threads, and the
/// responder that answers searches of its store.
struct Shard {
    partition: u32,
    stop: Arc<AtomicBool>,
    live: LiveSlot,
    responder: Option<ShardResponder>,
    progress: Arc<ShardProgress>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

#[derive(Default)]
struct ShardProgress {
    posts: AtomicU64,
    matched: AtomicU64,
    /// The last committed stream sequence + 1 (0: none yet).
    committed: AtomicU64,
    /// Where the shard's thread is ([`PHASES`]), for a stop that hangs.
    phase: AtomicUsize,
}

/// What a shard's thread does, in order (indexes of [`ShardProgress::phase`]).
const PHASES: [&str; 7] = [
    "opening its store",
    "connecting to its partition",
    "processing posts",
    "closing its partition's consumer",
    "committing",
    "waiting for its partial windows' acknowledgements",
    "ended",
];

impl ShardProgress {
    fn enter(&self, phase: usize) {
        self.phase.store(phase, Ordering::Relaxed);
    }
}

/// How often a worker says that a shard it stops has not ended yet.
const STOP_REPORT_EVERY: Duration = Duration::from_secs(5);

impl Shard {
    fn start(
        p: u32,
        cluster: &Cluster,
        url: &str,
        opts: &WorkerOptions,
        feeds: Arc<Mutex<FeedsVersion>>,
    ) -> Result<Shard> {
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(None));
        let progress = Arc::new(ShardProgress::default());
        let source = NatsPartitionConfig::new(
            format!("nats-p{p}"),
            url.to_string(),
            cluster.stream_name().to_string(),
            subject(p),
            consumer_name(p),
        );
        let job = ShardJob {
            partition: p,
            client: cluster.client().clone(),
            runtime: tokio::runtime::Handle::current(),
            dir: shard_dir(&opts.data, p),
            source,
            feeds,
            threads: opts.threads.max(1),
            commit: opts.commit,
            retention_days: opts.retention_days,
        };
        let (s, l, pr) = (stop.clone(), live.clone(), progress.clone());
        let thread = std::thread::Builder::new()
            .name(format!("partition {p}"))
            .spawn(move || job.run(s, l, pr).map_err(|e| format!("{e:#}")))?;
        Ok(Shard {
            partition: p,
            stop,
            live,
            responder: None,
            progress,
            thread: Some(thread),
        })
    }

    /// Swaps a new feed set in. A shard still opening its store takes the
    /// newest set itself once open.
    fn apply(&self, feeds: &Arc<Mutex<FeedsVersion>>) {
        swap_feeds(&self.live, feeds);
    }

    fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    fn status(&self) -> ShardStatus {
        let committed = self.progress.committed.load(Ordering::Relaxed);
        ShardStatus {
            posts: self.progress.posts.load(Ordering::Relaxed),
            matched: self.progress.matched.load(Ordering::Relaxed),
            committed_sequence: committed.checked_sub(1),
        }
    }

    /// Stops the pipeline, which commits what it processed, and waits.
    async fn finish(mut self) -> Result<()> {
        if let Some(responder) = self.responder.take() {
            responder.stop().await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let mut joining = tokio::task::spawn_blocking(move || thread.join());
        let started = tokio::time::Instant::now();
        let joined = loop {
            match tokio::time::timeout(STOP_REPORT_EVERY, &mut joining).await {
                Ok(joined) => break joined.map_err(|e| Error::Io(std::io::Error::other(e)))?,
                // A stop that hangs says where, instead of holding the
                // partition in silence.
                Err(_) => eprintln!(
                    "partition {}: still stopping after {} s, {}",
                    self.partition,
                    started.elapsed().as_secs(),
                    PHASES[self.progress.phase.load(Ordering::Relaxed).min(PHASES.len() - 1)]
                ),
            }
        };
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Io(std::io::Error::other(e))),
            Err(_) => Err(Error::Io(std::io::Error::other("a shard's pipeline panicked"))),
        }
    }
}

/// What a shard's thread needs.
struct ShardJob {
    partition: u32,
    /// Where partial windows are published (see `crate::merge`).
    client: async_nats::Client,
    runtime: tokio::runtime::Handle,
    dir: PathBuf,
    source: NatsPartitionConfig,
    feeds: Arc<Mutex<FeedsVersion>>,
    threads: usize,
    commit: CommitPolicy,
    retention_days: u32,
}

impl ShardJob {
    fn run(
        self,
        stop: Arc<AtomicBool>,
        live_slot: LiveSlot,
        progress: Arc<ShardProgress>,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let data = DataDir::open(&self.dir)?;
        // Never used on posts (they arrive pseudonymised); the live decode
        // stage wants one to expire.
        let keyring = Arc::new(Keyring::new(PseudonymConfig::default()));
        let checkpoint = checkpoint_name(&self.source.name);
        let (defs, revision) = {
            let f = lock(&self.feeds);
            (f.defs.clone(), f.revision)
        };
        progress.enter(0);
        let opened = open_for_run(
            &data,
            vec![Some(checkpoint.clone())],
            &defs,
            &keyring,
            self.retention_days,
            self.commit,
        )?;
        let live = opened.live.clone();
        *lock(&live_slot) = Some((live.clone(), revision));
        // A set written while the store was opening.
        swap_feeds(&live_slot, &self.feeds);
        let persist = opened.persister.keys_kept_elsewhere();
        let watch = persist.commit_watch();
        progress.enter(1);
        let mut sources = LiveSources::start(
            vec![SourceSpec::Nats(self.source)],
            0,
            &opened.resume,
            LiveOptions::default(),
            stop,
            Some(watch.clone()),
        )?;
        let cfg = RunConfig {
            decode: DecodeOptions {
                resume: opened.resume,
                ..Default::default()
            },
            threads: self.threads,
            keyring,
            enriched_upstream: true,
            public_accounts: Arc::new(PublicAccounts::default()),
            undated_time: Timestamp(now_ms()),
            window: WindowConfig::default(),
        };
        let mut sink = ShardSink {
            persist,
            progress: progress.clone(),
            checkpoint,
            live: live.clone(),
            partition: self.partition,
            windows: Vec::new(),
            watermark: None,
            sent_watermark: None,
            publisher: PartialsPublisher::start(self.client, &self.runtime, self.partition),
        };
        progress.enter(2);
        let ran = run_inputs(
            Inputs::Live {
                files: &[],
                sources: &mut sources,
            },
            &cfg,
            &live,
            &mut sink,
            &mut |r| eprintln!("{r}"),
        );
        progress.enter(3);
        drop(sources);
        // What was processed is committed, whatever stopped the run.
        progress.enter(4);
        let committed = sink.persist.commit();
        sink.published();
        sink.send_partials();
        // The store closes first: a worker taking the partition over on
        // this machine must not wait for the acknowledgements.
        let ShardSink {
            persist, mut publisher, ..
        } = sink;
        drop(persist);
        progress.enter(5);
        publisher.finish(&self.runtime);
        progress.enter(6);
        ran?;
        committed?;
        Ok(())
    }
}

/// Sets a shard's feeds to the newest set, unless they are from it already.
fn swap_feeds(slot: &LiveSlot, feeds: &Mutex<FeedsVersion>) {
    let newest = lock(feeds);
    if let Some((live, applied)) = lock(slot).as_mut() {
        if *applied != newest.revision {
            match live.replace_all(&newest.defs) {
                Ok(_) => *applied = newest.revision,
                Err(e) => eprintln!("feeds revision {} not applied: {e}", newest.revision),
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A shard's sink: the store, and the shard's closed minute windows for
/// the cluster's merger. Detection over the whole stream needs every
/// partition's counts and is not a shard's to do.
struct ShardSink {
    persist: Persister,
    progress: Arc<ShardProgress>,
    checkpoint: String,
    live: Arc<LiveFeeds>,
    partition: u32,
    /// Closed minute windows not yet published.
    windows: Vec<PartialWindow>,
    /// The run's watermark (ms) after the last batch, and the one last
    /// sent with partial windows.
    watermark: Option<i64>,
    sent_watermark: Option<i64>,
    publisher: PartialsPublisher,
}

/// Partial windows per message: well under NATS's default 1 MB payload
/// with full sketches.
const PARTIALS_PER_MESSAGE: usize = 64;

impl ShardSink {
    /// Hands the windows closed since the last call to the publisher, the
    /// last message carrying the watermark they are complete up to (sent
    /// even without windows when the watermark moved: the merger waits for
    /// every partition's).
    fn send_partials(&mut self) {
        if self.windows.is_empty() && self.watermark == self.sent_watermark {
            return;
        }
        let windows = std::mem::take(&mut self.windows);
        let mut chunks: Vec<&[PartialWindow]> = windows.chunks(PARTIALS_PER_MESSAGE).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let msg = PartialWindows {
                partition: self.partition,
                windows: chunk.to_vec(),
                watermark: if i == last { self.watermark } else { None },
            };
            match serde_json::to_vec(&msg) {
                Ok(body) => self.publisher.send(body),
                Err(e) => eprintln!("partial windows of partition {} not sent: {e}", self.partition),
            }
        }
        self.sent_watermark = self.watermark;
    }

    fn published(&self) {
        if let Some(seq) = self.persist.commit_watch().committed(&self.checkpoint) {
            self.progress.committed.store(seq + 1, Ordering::Relaxed);
        }
    }
}

impl RunSink for ShardSink {
    fn post(&mut self, post: &MatchedPost) {
        self.progress.posts.fetch_add(1, Ordering::Relaxed);
        self.progress
            .matched
            .fetch_add(!post.feeds.is_empty() as u64, Ordering::Relaxed);
        self.persist.post(post, None);
    }

    fn deletion(&mut self, deletion: &Deletion) {
        self.persist.deletion(deletion);
    }

    fn window(&mut self, window: &WindowView<'_>) {
        if window.resolution() != Resolution::Minute {
            return;
        }
        let current = self.live.current();
        let Some(name) = current.set.name_of(window.feed()) else {
            return;
        };
        self.windows.push(PartialWindow {
            feed: name.to_string(),
            start: window.start().0,
            stats: window.to_closed().stats,
        });
    }

    fn progress(&mut self, progress: &RunProgress) {
        self.watermark = progress.watermark.map(|t| t.0);
    }

    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> std::result::Result<(), SinkError> {
        let commits = self.persist.totals().seq;
        let r = self.persist.batch_end(at, finished);
        self.published();
        // Windows leave once the posts in them are committed: after a
        // crash the next owner counts only posts after the checkpoint, so
        // a window is never counted twice (one open at the crash loses the
        // posts before it instead).
        if self.persist.totals().seq != commits {
            self.send_partials();
        }
        r
    }
}

/// How long a stopping shard waits for its last partial windows to be
/// acknowledged.
const PARTIALS_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes one shard's partial windows to the partials stream in the
/// order they were handed over, each acknowledged by JetStream before the
/// next is sent and retried until it is (a NATS node may be down or a
/// stream leader being elected). The order matters: a message's watermark
/// tells the merger that every window before it has arrived. A retried
/// message keeps its id (a hash of its content), so the stream stores it
/// once.
struct PartialsPublisher {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PartialsPublisher {
    fn start(client: async_nats::Client, runtime: &tokio::runtime::Handle, partition: u32) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let js = async_nats::jetstream::new(client);
        let subject = agg_subject(partition);
        let task = runtime.spawn(async move {
            while let Some(body) = rx.recv().await {
                let id = blake3::hash(&body).to_hex();
                let mut backoff = Duration::from_millis(50);
                loop {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                    let sent = match js
                        .publish_with_headers(subject.clone(), headers, body.clone().into())
                        .await
                    {
                        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match sent {
                        Ok(()) => break,
                        Err(e) => {
                            eprintln!("partial windows of partition {partition}: {e}; retrying");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                        }
                    }
                }
            }
        });
        PartialsPublisher {
            tx: Some(tx),
            task: Some(task),
        }
    }

    fn send(&self, body: Vec<u8>) {
        if let Some(tx) = &self.tx {
            // The task ends only after `finish`.
            let _ = tx.send(body);
        }
    }

    /// Waits (on a thread outside the runtime) until every message handed
    /// over is acknowledged, or [`PARTIALS_FLUSH_TIMEOUT`]: what is left
    /// then only makes an explanation poorer, never a count wrong.
    fn finish(&mut self, runtime: &tokio::runtime::Handle) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if runtime
                .block_on(async { tokio::time::timeout(PARTIALS_FLUSH_TIMEOUT, task).await })
                .is_err()
            {
                abort.abort();
                eprintln!("partial windows not all acknowledged in {PARTIALS_FLUSH_TIMEOUT:?}; left");
            }
        }
    }
}

impl Drop for PartialsPublisher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
