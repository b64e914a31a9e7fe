//! One partition of a NATS JetStream stream as a live source: the way a
//! `tidewatch worker` reads the posts `tidewatch publish` wrote.
//!
//! The idea: the source's cursor is the message's **stream sequence**, so
//! the pipeline's checkpoint of this source says exactly how far the
//! shard's store has committed the partition. Whoever reads the partition
//! next starts right after that checkpoint:
//!
//! - At start the durable consumer (`config.consumer`) is deleted and
//!   created again, as a pull consumer filtered to the partition's subject
//!   and starting at sequence `from + 1` (every message when `from` is
//!   `None`). Recreating it rather than reusing it makes the consumer start
//!   at *this* shard's checkpoint, whatever the previous lease holder had
//!   acknowledged.
//! - Each message becomes one [`Received`] record in the canonical format
//!   (a `Post::write_json` line or a `{"delete": ...}`), with its stream
//!   sequence as cursor, sent in stream order into the bounded channel
//!   (back-pressure: a slow pipeline slows the pulling).
//! - **Acknowledgements follow commits.** The consumer acknowledges with
//!   `AckPolicy::All`: acknowledging sequence N acknowledges everything
//!   before it. Every ~100 ms the source asks the commit watch for the
//!   newest committed cursor C and acknowledges the newest message it sent
//!   whose sequence is ≤ C. An acknowledged message is therefore in the
//!   store. Messages sent but not committed are redelivered (after
//!   `ack_wait`) or read again by the next owner; the store's
//!   de-duplication by post id makes that harmless. Without a commit watch
//!   whatever reached the channel is acknowledged.
//! - **No holes.** A pull consumer can lose deliveries in flight (a
//!   reconnect, a pull request abandoned on a failed server) and then
//!   deliver later messages first, the lost ones only after `ack_wait`.
//!   Every delivery of a consumer has a delivery sequence that grows by one;
//!   when one is skipped (or the consumer is gone) the source recreates the
//!   consumer right after the last sequence it sent. A pull that merely
//!   failed (a missed heartbeat: its server died) is sent again to the same
//!   consumer. Redeliveries of sequences already sent are dropped. (A
//!   recreated consumer counts everything before its start as acknowledged;
//!   nothing relies on that, as every owner recreates it at its own
//!   checkpoint.)
//! - Messages the stream dropped (its `max_age` or size limits) before this
//!   source read them are reported as a [`Gap`]: when the first message
//!   after a (re)start skips sequences and the stream's first sequence is
//!   past the position, the missing sequences are gone. (Some of them may
//!   have belonged to other partitions: the stream cannot say any more.)
//! - **Bounded reads** (`until`): from the start position up to a given
//!   stream sequence, through a consumer of their own that is deleted at
//!   the end, then the source ends. A detection run that goes on from a
//!   checkpoint reads again this way what its store committed after it.
//! - Connection loss is async-nats's business (it reconnects forever);
//!   disconnects and reconnects are counted in [`SourceHealth`].
//!
//! The stream is read on the source's own thread, with a current-thread
//! tokio runtime, like every source.

use crate::push::CommittedCursor;
use crate::thread::SourceThread;
use crate::{Gap, Received, SourceHealth, SourceMessage};
use async_nats::jetstream::consumer::pull::{self, MessagesErrorKind, Stream as Messages};
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::response::Response;
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind, Stream};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{Client, ConnectOptions, Event, Subject};
use crossbeam_channel::{Sender, TrySendError};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tidewatch_ingest::format::Format;
use tokio::sync::watch;

#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

/// Messages asked for per pull request, by default.
pub const DEFAULT_FETCH_BATCH: usize = 1024;
/// How long the server waits for an acknowledgement before it delivers a
/// message again, by default.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(60);

/// How often committed messages are acknowledged.
const ACK_EVERY: Duration = Duration::from_millis(100);
/// Unacknowledged messages the server lets the consumer have. Commits come
/// every few seconds or hundreds of thousands of posts: the limit must not
/// stall the pulling before a commit is due.
const MAX_ACK_PENDING: i64 = 1_000_000;
/// How long one pull request waits on the server.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// The server's idle heartbeat for a waiting pull request; two missed ones
/// mean the request was lost (a failed server) and the consumer is
/// recreated.
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);
/// How long asking whether the consumer exists, or recreating it, may
/// take before it is tried again. Short: after a server failure the
/// consumer's leader is re-elected within seconds, and a question sent to
/// the dead leader is never answered (the client's own timeout is 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the last acknowledgement at stop waits for the server's answer.
const FINAL_ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// The payload of an acknowledgement.
const ACK: &[u8] = b"+ACK";

/// How a NATS partition source reads its partition.
#[derive(Clone, Debug)]
pub struct NatsPartitionConfig {
    /// The source's name (its checkpoint key is `source:<name>`), e.g. `nats-p3`.
    pub name: String,
    /// NATS server URL(s); a comma-separated list for a cluster.
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The partition's subject, e.g. `tidewatch.posts.3`.
    pub subject: String,
    /// The durable consumer's name, e.g. `tidewatch-p3`.
    pub consumer: String,
    /// Messages asked for per pull request.
    pub fetch_batch: usize,
    /// Redelivery delay of an unacknowledged message.
    pub ack_wait: Duration,
    /// Read only up to this stream sequence, then end (a bounded read:
    /// what a run reads again for its detectors after a checkpoint); the
    /// consumer is deleted at the end. `None`: read until stopped.
    pub until: Option<u64>,
}

impl NatsPartitionConfig {
    /// A config with the default batch and acknowledgement wait.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        stream: impl Into<String>,
        subject: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        NatsPartitionConfig {
            name: name.into(),
            url: url.into(),
            stream: stream.into(),
            subject: subject.into(),
            consumer: consumer.into(),
            fetch_batch: DEFAULT_FETCH_BATCH,
            ack_wait: DEFAULT_ACK_WAIT,
            until: None,
        }
    }
}

/// A boxed error from the NATS client (its operations have many error types).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a NATS partition source could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("nats source {name:?}: cannot connect to {url}: {source}")]
    Connect {
        name: String,
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("nats source {name:?}: {what}: {source}")]
    JetStream {
        name: String,
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("nats source: could not start its runtime or thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// The running source; [`NatsHandle::stop`] (or dropping it) ends it.
pub struct NatsHandle {
    thread: SourceThread,
}

impl NatsHandle {
    /// Stops pulling, acknowledges what the store has committed, and waits
    /// for the source's thread to end.
    pub fn stop(self) {
        self.thread.stop();
    }

    /// True once the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Connects, recreates the consumer at `from + 1` (see the module doc) and
/// starts reading on a thread of its own. `from` is the last stream
/// sequence the shard has committed; `committed` tells the newest committed
/// cursor, so that only committed messages are acknowledged.
pub fn start(
    config: NatsPartitionConfig,
    from: Option<u64>,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    committed: Option<CommittedCursor>,
) -> Result<NatsHandle, NatsError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let name = config.name.clone();
    let (mut reader, consumer) = runtime.block_on(Reader::open(config, from, tx, health, committed))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name(format!("nats-{name}"))
        .spawn(move || runtime.block_on(reader.run(consumer, stop_rx)))?;
    Ok(NatsHandle {
        thread: SourceThread::new(stop_tx, thread),
    })
}

/// What the reader does next.
enum Next {
    Read(PullConsumer),
    /// Make sure the consumer still exists, then read it again.
    Check(PullConsumer),
    Recreate,
}

/// How a pull ended.
enum After {
    Stop,
    Check,
    Recreate,
}

/// What reading one message leads to.
enum Flow {
    Go,
    /// Recreate the consumer after the last sequence sent.
    Reset,
    Stop,
}

/// The source's state on its thread.
struct Reader {
    config: NatsPartitionConfig,
    client: Client,
    js: jetstream::Context,
    stream: Stream,
    tx: Sender<SourceMessage>,
    health: Arc<SourceHealth>,
    committed: Option<CommittedCursor>,
    /// The newest stream sequence sent into the channel, or the checkpoint
    /// started from (0: nothing yet).
    position: u64,
    /// Messages sent and not yet acknowledged, oldest first: their stream
    /// sequence and the subject an acknowledgement goes to.
    unacked: VecDeque<(u64, Subject)>,
    /// The delivery sequence the consumer's next message must have.
    next_delivery: u64,
    /// Whether the next new message is the first since the consumer was
    /// (re)created, when expired messages are looked for.
    check_gap: bool,
    last_ack: Instant,
    /// The last acknowledgement sent without waiting for the server's
    /// answer; confirmed at stop.
    unconfirmed: Option<(u64, Subject)>,
}

impl Reader {
    async fn open(
        config: NatsPartitionConfig,
        from: Option<u64>,
        tx: Sender<SourceMessage>,
        health: Arc<SourceHealth>,
        committed: Option<CommittedCursor>,
    ) -> Result<(Reader, PullConsumer), NatsError> {
        let urls: Vec<&str> = config.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let events = health.clone();
        let connected_before = Arc::new(AtomicBool::new(false));
        let client = ConnectOptions::new()
            .name(format!("tidewatch-{}", config.name))
            .event_callback(move |event| {
                let health = events.clone();
                let connected_before = connected_before.clone();
                async move { connection_event(&health, &connected_before, event) }
            })
            .connect(urls.as_slice())
            .await
            .map_err(|e| NatsError::Connect {
                name: config.name.clone(),
                url: config.url.clone(),
                source: e.into(),
            })?;
        health.set_connected(true);
        let js = jetstream::new(client.clone());
        let stream = js.get_stream(&config.stream).await.map_err(|e| NatsError::JetStream {
            name: config.name.clone(),
            what: format!("cannot open stream {}", config.stream),
            source: e.into(),
        })?;
        let mut reader = Reader {
            config,
            client,
            js,
            stream,
            tx,
            health,
            committed,
            position: from.unwrap_or(0),
            unacked: VecDeque::new(),
            next_delivery: 1,
            check_gap: true,
            last_ack: Instant::now(),
            unconfirmed: None,
        };
        let consumer = reader.recreate().await.map_err(|source| NatsError::JetStream {
            name: reader.config.name.clone(),
            what: format!("cannot create consumer {}", reader.config.consumer),
            source,
        })?;
        Ok((reader, consumer))
    }

    /// Deletes the durable consumer if it exists and creates it again,
    /// starting right after `position`.
    async fn recreate(&mut self) -> Result<PullConsumer, BoxError> {
        match self.stream.delete_consumer(&self.config.consumer).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        // The old consumer's acknowledgement subjects died with it.
        self.unacked.clear();
        self.unconfirmed = None;
        self.next_delivery = 1;
        self.check_gap = true;
        let deliver_policy = match self.position {
            0 => DeliverPolicy::All,
            p => DeliverPolicy::ByStartSequence {
                start_sequence: p.saturating_add(1),
            },
        };
        let consumer = self
            .stream
            .create_consumer(pull::Config {
                durable_name: Some(self.config.consumer.clone()),
                description: Some(format!("tidewatch source {}", self.config.name)),
                filter_subject: self.config.subject.clone(),
                deliver_policy,
                ack_policy: AckPolicy::All,
                ack_wait: self.config.ack_wait,
                max_ack_pending: MAX_ACK_PENDING,
                ..Default::default()
            })
            .await?;
        Ok(consumer)
    }

    /// Reads until stopped. A failed pull (a missed heartbeat, a server
    /// gone) is retried on the same consumer once the consumer is known to
    /// still exist: that needs only the consumer's own leader, which a
    /// cluster re-elects quickly. The consumer is recreated only when it is
    /// gone or lost deliveries (see [`Reader::take`]).
    async fn run(&mut self, consumer: PullConsumer, stop: watch::Receiver<bool>) {
        let mut next = Next::Read(consumer);
        let mut backoff = Backoff::default();
        while !*stop.borrow() && !self.read_through() {
            next = match next {
                Next::Read(consumer) => match self.read(&consumer, &stop, &mut backoff).await {
                    After::Stop => break,
                    After::Check => Next::Check(consumer),
                    After::Recreate => Next::Recreate,
                },
                Next::Check(consumer) => match self.consumer_exists().await {
                    Ok(true) => Next::Read(consumer),
                    Ok(false) => {
                        self.health.error(format!(
                            "consumer {} is gone; recreating it after stream sequence {}",
                            self.config.consumer, self.position
                        ));
                        Next::Recreate
                    }
                    Err(e) => {
                        self.health
                            .error(format!("asking for consumer {}: {e}", self.config.consumer));
                        Next::Check(consumer)
                    }
                },
                Next::Recreate => match tokio::time::timeout(REQUEST_TIMEOUT, self.recreate()).await {
                    Ok(Ok(consumer)) => Next::Read(consumer),
                    Err(_) => {
                        self.health
                            .error(format!("recreating consumer {}: no answer", self.config.consumer));
                        Next::Recreate
                    }
                    Ok(Err(e)) => {
                        self.health
                            .error(format!("recreating consumer {}: {e}", self.config.consumer));
                        Next::Recreate
                    }
                },
            };
            if !matches!(next, Next::Read(_)) && pause(backoff.next(), &stop).await {
                break;
            }
        }
        self.acknowledge(true).await;
        if self.config.until.is_some() {
            // A bounded read's consumer is of no use to anyone after it.
            if let Err(e) = self.stream.delete_consumer(&self.config.consumer).await {
                if !is_not_found(&e) {
                    self.health
                        .error(format!("deleting consumer {}: {e}", self.config.consumer));
                }
            }
        }
        self.health.set_connected(false);
    }

    /// Whether a bounded read has sent everything up to its end.
    fn read_through(&self) -> bool {
        self.config.until.is_some_and(|until| self.position >= until)
    }

    /// Pulls from `consumer` and sends what comes, acknowledging on time,
    /// until stopped or the pull fails.
    async fn read(&mut self, consumer: &PullConsumer, stop: &watch::Receiver<bool>, backoff: &mut Backoff) -> After {
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.config.fetch_batch.max(1))
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await;
        let mut messages: Messages = match messages {
            Ok(m) => m,
            Err(e) => {
                self.health
                    .error(format!("pulling from consumer {}: {e}", self.config.consumer));
                return After::Check;
            }
        };
        let mut tick = tokio::time::interval(ACK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop_wait = stop.clone();
        loop {
            tokio::select! {
                biased;
                _ = stop_wait.wait_for(|s| *s) => return After::Stop,
                _ = tick.tick() => self.acknowledge(false).await,
                next = messages.next() => match next {
                    Some(Ok(message)) => match self.take(message, stop).await {
                        Flow::Go => backoff.reset(),
                        Flow::Reset => return After::Recreate,
                        Flow::Stop => return After::Stop,
                    },
                    Some(Err(e)) => {
                        self.health.error(format!("reading consumer {}: {e}", self.config.consumer));
                        return match e.kind() {
                            MessagesErrorKind::ConsumerDeleted => After::Recreate,
                            _ => After::Check,
                        };
                    }
                    None => {
                        self.health.error(format!("consumer {}: the pull ended", self.config.consumer));
                        return After::Check;
                    }
                },
            }
        }
    }

    /// Whether the durable consumer exists (asked of its leader).
    async fn consumer_exists(&self) -> Result<bool, BoxError> {
        let subject = format!("CONSUMER.INFO.{}.{}", self.config.stream, self.config.consumer);
        let empty = serde_json::json!({});
        let request = self.js.request(subject, &empty);
        let response: Response<consumer::Info> = tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| "no answer")??;
        match response {
            Response::Ok(_) => Ok(true),
            Response::Err { error } if error.error_code() == ErrorCode::CONSUMER_NOT_FOUND => Ok(false),
            Response::Err { error } => Err(error.into()),
        }
    }

    /// Sends one message on (see the module doc).
    async fn take(&mut self, message: jetstream::Message, stop: &watch::Receiver<bool>) -> Flow {
        let (sequence, delivery, published_ms) = match message.info() {
            Ok(info) => (
                info.stream_sequence,
                info.consumer_sequence,
                (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
            ),
            Err(e) => {
                self.health.malformed();
                self.health.error(format!("a message without JetStream metadata: {e}"));
                return Flow::Go;
            }
        };
        let Some(reply) = message.message.reply.clone() else {
            // `info` read the metadata from the reply subject, so it is there.
            return Flow::Go;
        };
        if delivery != self.next_delivery {
            self.health.error(format!(
                "consumer {} skipped deliveries {} to {}: recreating it after stream sequence {}",
                self.config.consumer,
                self.next_delivery,
                delivery.saturating_sub(1),
                self.position
            ));
            return Flow::Reset;
        }
        self.next_delivery = delivery.saturating_add(1);
        if sequence <= self.position {
            // Redelivered after `ack_wait`: already sent. Its subject is the
            // current one for acknowledging that sequence.
            if let Ok(i) = self.unacked.binary_search_by_key(&sequence, |(s, _)| *s) {
                self.unacked[i].1 = reply;
            }
            return Flow::Go;
        }
        if self.check_gap {
            self.check_gap = false;
            if sequence > self.position.saturating_add(1) {
                if let Some(gap) = self.expired(sequence).await {
                    eprintln!("nats source {}: gap: {}", self.config.name, gap.what);
                    self.health.gap(gap.clone());
                    if !self.send(SourceMessage::Gap(gap), stop).await {
                        return Flow::Stop;
                    }
                }
            }
        }
        let record = Received {
            source: self.config.name.clone(),
            format: Format::Canonical,
            bytes: message.message.payload.to_vec(),
            cursor: Some(sequence),
        };
        if !self.send(SourceMessage::Record(record), stop).await {
            return Flow::Stop;
        }
        self.health.event(Some(published_ms));
        self.position = sequence;
        self.unacked.push_back((sequence, reply));
        if self.committed.is_none() && self.unacked.len() >= self.config.fetch_batch {
            self.acknowledge(false).await;
        }
        if self.read_through() {
            return Flow::Stop;
        }
        Flow::Go
    }

    /// The sequences after `position` the stream no longer holds, when the
    /// first message read after it is `first_read`.
    async fn expired(&self, first_read: u64) -> Option<Gap> {
        let first_kept = match self.stream.get_info().await {
            Ok(info) => info.state.first_sequence,
            Err(e) => {
                self.health.error(format!(
                    "reading stream {} to look for expired messages: {e}",
                    self.config.stream
                ));
                return None;
            }
        };
        let from = self.position.saturating_add(1);
        if first_kept <= from {
            return None;
        }
        let to = first_kept.min(first_read) - 1;
        Some(Gap {
            source: self.config.name.clone(),
            detected_at: now_ms(),
            from: Some(from),
            to: Some(to),
            what: format!(
                "stream sequences {from} to {to} of {} expired before they were read \
                 (some may have belonged to other partitions)",
                self.config.stream
            ),
        })
    }

    /// Sends into the pipeline, waiting (and acknowledging on time) while
    /// the channel is full. False when the source stops or nobody listens.
    async fn send(&mut self, message: SourceMessage, stop: &watch::Receiver<bool>) -> bool {
        let mut message = message;
        loop {
            match self.tx.try_send(message) {
                Ok(()) => return true,
                Err(TrySendError::Full(m)) => {
                    if *stop.borrow() {
                        return false;
                    }
                    message = m;
                    if self.last_ack.elapsed() >= ACK_EVERY {
                        self.acknowledge(false).await;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }

    /// Acknowledges the newest sent message the store has committed (all
    /// before it with it). `confirm` waits for the server's answer (at stop,
    /// so that the acknowledgement is recorded when `stop` returns).
    async fn acknowledge(&mut self, confirm: bool) {
        self.last_ack = Instant::now();
        let upto = match &self.committed {
            Some(committed) => match committed() {
                Some(c) => c,
                None => return,
            },
            None => self.position,
        };
        let mut newest = None;
        while self.unacked.front().is_some_and(|(s, _)| *s <= upto) {
            newest = self.unacked.pop_front();
        }
        let (sequence, subject) = match newest {
            Some(n) => n,
            // Nothing new: at stop, the last acknowledgement is sent again
            // and waited for, so that the server has recorded it.
            None if confirm => match self.unconfirmed.take() {
                Some(n) => n,
                None => return,
            },
            None => return,
        };
        self.unconfirmed = (!confirm).then(|| (sequence, subject.clone()));
        let result: Result<(), BoxError> = if confirm {
            match tokio::time::timeout(FINAL_ACK_TIMEOUT, self.client.request(subject, ACK.into())).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err("no answer from the server".into()),
            }
        } else {
            self.client.publish(subject, ACK.into()).await.map_err(Into::into)
        };
        if let Err(e) = result {
            self.health
                .error(format!("acknowledging up to stream sequence {sequence}: {e}"));
        }
    }
}

/// Whether deleting a consumer failed because there was none.
fn is_not_found(e: &ConsumerError) -> bool {
    matches!(e.kind(), ConsumerErrorKind::JetStream(j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND)
}

/// Keeps the connection's state in the source's health.
fn connection_event(health: &SourceHealth, connected_before: &AtomicBool, event: Event) {
    match event {
        Event::Connected => {
            health.set_connected(true);
            if connected_before.swap(true, Ordering::Relaxed) {
                health.reconnected();
            }
        }
        Event::Disconnected => {
            health.set_connected(false);
            health.error("disconnected from the NATS server; reconnecting");
        }
        Event::ServerError(e) => health.error(format!("NATS server: {e}")),
        Event::ClientError(e) => health.error(format!("NATS client: {e}")),
        Event::SlowConsumer(_) => health.error("NATS: the client did not keep up with its messages"),
        Event::LameDuckMode | Event::Draining | Event::Closed => {}
    }
}

/// Waits `delay`; true when the source was stopped meanwhile.
async fn pause(delay: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut waiter = stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        _ = waiter.wait_for(|s| *s) => true,
    }
}

/// The delay before recreating a consumer: short at first, growing while
/// recreating keeps failing, short again once messages flow.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let delay = Duration::from_millis(50u64 << self.failures.min(7));
        self.failures = self.failures.saturating_add(1);
        delay
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
