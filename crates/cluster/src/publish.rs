//! `tidewatch publish`: inputs → decoded, pseudonymised, enriched and
//! redacted posts → the partitioned JetStream stream.
//!
//! A thread decodes the inputs with the engine's decode stage (every
//! format tidewatch reads; bad records become rejects and the rest goes
//! on). The async side makes sure the cluster's [`SharedKeyring`] holds
//! the keys of each batch, then runs every event through the same
//! [`Enricher`] a single-node run uses: pseudonyms, entities, language,
//! sentiment, then redaction. Matching, windows and storage happen in the
//! workers. Every event becomes one canonical JSON message
//! ([`tidewatch_core::Post::write_json`], or a deletion's
//! `{"delete": ...}`, without the trailing newline) on
//! `tidewatch.posts.<partition>` with the header `Nats-Msg-Id`:
//!
//! - a post's message id is its pseudonymous id, so publishing the same
//!   input twice (within the stream's duplicate window) stores nothing
//!   new: the stream acknowledges the copy as a duplicate;
//! - a deletion's is `delete-<id>` (it must not collide with its post's),
//!   and it goes to the partition of the post it deletes.
//!
//! Why enrich and redact here, not in the workers: the stream is a store
//! on the disks of every NATS node, and raw handles never reach a disk.
//! So `@handle` in a text becomes `@user` (unless the account is on the
//! public-accounts list), e-mail addresses and phone numbers are masked
//! and links lose their query strings before publishing. Language and
//! sentiment must come from the raw text, as in a single-node run (a
//! masked text can score differently), so they are found here too, and a
//! worker matches the posts as they come ([`Enricher::enriched_upstream`]).
//! A consequence for workers: a feed term `@handle` only matches public
//! accounts.
//!
//! Publishing is asynchronous with at most `max_pending` unacknowledged
//! messages; an acknowledgement that fails or times out stops the run with
//! an error (the input may then be published again: duplicates are dropped).

use crate::keyring::SharedKeyring;
use crate::setup::{Cluster, ClusterConfig};
use crate::{nats, partition, subject, Error, Result};
use async_nats::jetstream;
use async_nats::jetstream::context::PublishAckFuture;
use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tidewatch_core::enrich::Enricher;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::{Event, Timestamp};
use tidewatch_engine::decode::{decode_inputs, DecodeOptions, FileReport, Reject};

/// How to publish, besides where.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    pub decode: DecodeOptions,
    /// The pseudonymisation config; `None` takes the cluster's.
    pub pseudonym: Option<PseudonymConfig>,
    /// Chooses the pseudonym epoch of posts without a timestamp.
    pub undated_time: Timestamp,
    /// The most messages awaiting their acknowledgement at once.
    pub max_pending: usize,
    /// Accounts whose `@mentions` stay visible in texts.
    pub public_accounts: Arc<PublicAccounts>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            decode: DecodeOptions::default(),
            pseudonym: None,
            undated_time: Timestamp(0),
            max_pending: 4096,
            public_accounts: Arc::default(),
        }
    }
}

/// What a publish run did (printed as JSON by `tidewatch publish`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PublishSummary {
    pub stream: String,
    pub partitions: u32,
    /// Messages the stream stored (posts and deletions).
    pub published: u64,
    pub posts: u64,
    pub deletions: u64,
    /// Messages the stream had already (same message id): not stored again.
    pub duplicates: u64,
    /// Records that could not be decoded.
    pub rejected: u64,
    /// Messages stored per partition, in partition order.
    pub per_partition: Vec<u64>,
    #[serde(skip)]
    pub files: Vec<FileReport>,
    pub seconds: f64,
    /// Events (posts and deletions, stored or duplicate) per second.
    pub events_per_second: f64,
}

/// What the decode thread hands to the publisher.
enum Decoded {
    Events(Vec<Event>),
    Reject(Reject),
}

/// An event on its way: where it went and its acknowledgement.
struct Pending {
    partition: u32,
    is_post: bool,
    ack: PublishAckFuture,
}

/// Connects, then publishes `paths` (see the module doc), calling
/// `on_reject` for every bad record. Runs its own async runtime: call it
/// from synchronous code.
pub fn run_blocking(
    cfg: &ClusterConfig,
    paths: &[PathBuf],
    opts: &PublishOptions,
    on_reject: &mut dyn FnMut(&Reject),
) -> Result<PublishSummary> {
    let rt = runtime()?;
    rt.block_on(async {
        let cluster = settling(|| Cluster::connect(cfg)).await?;
        publish_inputs(&cluster, paths, opts, on_reject).await
    })
}

/// How long a publisher waits for a cluster that is electing leaders (a
/// node restarting) before it gives up on starting.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `start` again, once a second, while a NATS operation fails and
/// [`SETTLE`] has not passed: right after a node of a cluster dies, its
/// streams and buckets answer nothing until new leaders are elected.
/// Only for steps that change nothing when they fail (connecting, opening
/// the keyring).
async fn settling<T, F, Fut>(mut start: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        match start().await {
            Err(Error::Nats { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// The runtime the blocking entry points run on (decoding has a thread of
/// its own).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// `tidewatch bench publish`: on a runtime of its own, runs the pipeline
/// over `paths` twice, first writing its messages to the file `out` (the
/// baseline: decode, pseudonymise, redact, serialise), then publishing
/// them; returns both summaries, in that order.
pub fn compare_with_file_blocking(
    cfg: &ClusterConfig,
    paths: &[PathBuf],
    opts: &PublishOptions,
    out: &std::path::Path,
) -> Result<(PublishSummary, PublishSummary)> {
    let rt = runtime()?;
    rt.block_on(async {
        let cluster = Cluster::connect(cfg).await?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
        let written = write_inputs(&cluster, paths, opts, &mut file, &mut |_| {}).await?;
        file.flush()?;
        drop(file);
        let published = publish_inputs(&cluster, paths, opts, &mut |_| {}).await?;
        Ok((written, published))
    })
}

/// Publishes `paths` to the cluster's stream (see the module doc).
pub async fn publish_inputs(
    cluster: &Cluster,
    paths: &[PathBuf],
    opts: &PublishOptions,
    on_reject: &mut dyn FnMut(&Reject),
) -> Result<PublishSummary> {
    let max_pending = opts.max_pending.max(1);
    let mut sink = Sink::Stream {
        js: cluster.jetstream(),
        subjects: (0..cluster.partitions()).map(|p| subject(p).into()).collect(),
        pending: VecDeque::with_capacity(max_pending),
        max_pending,
    };
    pipeline(cluster, paths, opts, &mut sink, on_reject).await
}

/// The same pipeline as [`publish_inputs`] (same keyring, same messages),
/// with each message written to `out` as a line instead of published: the
/// in-process baseline that the publish rate is compared with.
pub async fn write_inputs(
    cluster: &Cluster,
    paths: &[PathBuf],
    opts: &PublishOptions,
    out: &mut (dyn Write + Send),
    on_reject: &mut dyn FnMut(&Reject),
) -> Result<PublishSummary> {
    pipeline(cluster, paths, opts, &mut Sink::Writer(out), on_reject).await
}

async fn pipeline(
    cluster: &Cluster,
    paths: &[PathBuf],
    opts: &PublishOptions,
    sink: &mut Sink<'_>,
    on_reject: &mut dyn FnMut(&Reject),
) -> Result<PublishSummary> {
    let start = Instant::now();
    let partitions = cluster.partitions();
    let mut keyring =
        settling(|| SharedKeyring::open(cluster.keyring_bucket(), opts.pseudonym, opts.undated_time)).await?;
    let enricher_on =
        |keys: &Arc<Keyring>| Enricher::new(keys.clone(), opts.public_accounts.clone(), opts.undated_time);
    let mut enricher = enricher_on(keyring.keys());
    let mut summary = PublishSummary {
        stream: cluster.stream_name().to_string(),
        partitions,
        per_partition: vec![0; partitions as usize],
        ..Default::default()
    };

    // Decoding reads files and blocks: it gets its own thread, a few batches ahead.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Decoded>(8);
    let decode_paths = paths.to_vec();
    let decode_opts = opts.decode.clone();
    let decoder = std::thread::spawn(move || {
        let reject_tx = tx.clone();
        decode_inputs(
            &decode_paths,
            &decode_opts,
            // A closed channel means the publisher stopped (an error): stop too.
            &mut |batch| tx.blocking_send(Decoded::Events(batch.events)).is_ok(),
            &mut |r| {
                let _ = reject_tx.blocking_send(Decoded::Reject(r.clone()));
            },
        )
    });

    let mut buf = Vec::with_capacity(1024);
    let mut outcome = Ok(());
    'batches: while let Some(msg) = rx.recv().await {
        let mut events = match msg {
            Decoded::Reject(r) => {
                summary.rejected += 1;
                on_reject(&r);
                continue;
            }
            Decoded::Events(events) => events,
        };
        if let Err(e) = keyring.prepare(&events).await {
            outcome = Err(e);
            break;
        }
        if !Arc::ptr_eq(enricher.keys(), keyring.keys()) {
            enricher = enricher_on(keyring.keys());
        }
        for ev in &mut events {
            buf.clear();
            enricher.finish(ev);
            let (p, msg_id, is_post) = match ev {
                Event::Post(post) => {
                    post.write_json(&mut buf);
                    (partition(&post.id, partitions), post.id.clone(), true)
                }
                Event::Delete(d) => {
                    d.write_json(&mut buf);
                    (partition(&d.id, partitions), format!("delete-{}", d.id), false)
                }
            };
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if let Err(e) = sink.send(p, is_post, &msg_id, &buf, &mut summary).await {
                outcome = Err(e);
                break 'batches;
            }
        }
    }
    // Stop the decoder (it sees the closed channel) before waiting for it.
    drop(rx);
    let files = decoder.join().unwrap_or_default();
    outcome?;
    sink.finish(&mut summary).await?;
    summary.files = files;
    summary.seconds = start.elapsed().as_secs_f64();
    let events = summary.published + summary.duplicates;
    summary.events_per_second = events as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

/// Where the messages go.
enum Sink<'a> {
    /// Published, with at most `max_pending` acknowledgements outstanding.
    Stream {
        js: &'a jetstream::Context,
        subjects: Vec<async_nats::Subject>,
        pending: VecDeque<Pending>,
        max_pending: usize,
    },
    /// Written as lines (the benchmark baseline).
    Writer(&'a mut (dyn Write + Send)),
}

impl Sink<'_> {
    async fn send(
        &mut self,
        p: u32,
        is_post: bool,
        msg_id: &str,
        payload: &[u8],
        summary: &mut PublishSummary,
    ) -> Result<()> {
        match self {
            Sink::Stream {
                js,
                subjects,
                pending,
                max_pending,
            } => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
                let ack = js
                    .publish_with_headers(subjects[p as usize].clone(), headers, payload.to_vec().into())
                    .await
                    .map_err(nats("publishing"))?;
                pending.push_back(Pending {
                    partition: p,
                    is_post,
                    ack,
                });
                if pending.len() >= *max_pending {
                    if let Some(oldest) = pending.pop_front() {
                        settle(oldest, summary).await?;
                    }
                }
            }
            Sink::Writer(out) => {
                out.write_all(payload)?;
                out.write_all(b"\n")?;
                summary.published += 1;
                summary.per_partition[p as usize] += 1;
                count_event(is_post, summary);
            }
        }
        Ok(())
    }

    /// Waits for every outstanding acknowledgement (or flushes the writer).
    async fn finish(&mut self, summary: &mut PublishSummary) -> Result<()> {
        match self {
            Sink::Stream { pending, .. } => {
                while let Some(p) = pending.pop_front() {
                    settle(p, summary).await?;
                }
            }
            Sink::Writer(out) => out.flush()?,
        }
        Ok(())
    }
}

/// Waits for one acknowledgement and counts it.
async fn settle(p: Pending, summary: &mut PublishSummary) -> Result<()> {
    let ack = p.ack.await.map_err(|e| Error::Ack(e.into()))?;
    if ack.duplicate {
        summary.duplicates += 1;
    } else {
        summary.published += 1;
        summary.per_partition[p.partition as usize] += 1;
    }
    count_event(p.is_post, summary);
    Ok(())
}

fn count_event(is_post: bool, summary: &mut PublishSummary) {
    if is_post {
        summary.posts += 1;
    } else {
        summary.deletions += 1;
    }
}
