//! What the server's tests share: a data directory made the way `tidewatch
//! run` makes one (decode → enrich → match → windows → alerts, topics →
//! store), over posts a test wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidewatch_core::emerging::EmergingConfig;
use tidewatch_core::pseudonym::PseudonymConfig;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::spike::SpikeConfig;
use tidewatch_core::window::{WindowConfig, WindowView};
use tidewatch_core::{Deletion, Timestamp};
use tidewatch_engine::alerts::{AlertLog, SpikeAlerts};
use tidewatch_engine::datadir::DataDir;
use tidewatch_engine::decode::{DecodeOptions, Position};
use tidewatch_engine::feeds::{parse_feeds, FeedSet};
use tidewatch_engine::live::LiveFeeds;
use tidewatch_engine::persist::{CommitPolicy, Persister};
use tidewatch_engine::run::{MatchedPost, RunConfig, RunSink, SinkError};
use tidewatch_engine::topics::TopicWatch;
use tidewatch_store::{Store, StoreConfig};

/// The sink `tidewatch run` uses, minus the terminal: store, alerts, topics.
struct Sink {
    persist: Persister,
    alerts: SpikeAlerts,
    topics: TopicWatch,
    live: Arc<LiveFeeds>,
}

impl RunSink for Sink {
    fn post(&mut self, post: &MatchedPost) {
        self.persist.post(post, None);
        self.topics.post(post);
    }
    fn deletion(&mut self, d: &Deletion) {
        self.persist.deletion(d);
    }
    fn window(&mut self, w: &WindowView<'_>) {
        let live = &self.live;
        self.alerts
            .window(w, |id| live.current().set.name_of(id).unwrap_or("?").to_string());
        self.persist.alerts(self.alerts.take_pending());
    }
    fn batch_end(&mut self, at: &Position, finished: &[Position]) -> Result<(), SinkError> {
        self.persist.topics(self.topics.take_pending());
        self.persist.batch_end(at, finished)
    }
}

/// Runs the pipeline over the canonical posts in `posts` with the feeds
/// file `feeds_toml` (written to `dir/feeds.toml`) into the data directory
/// `dir/data`, committed; returns the data directory.
pub fn run_pipeline(dir: &Path, posts: &Path, feeds_toml: &str) -> PathBuf {
    std::fs::write(dir.join("feeds.toml"), feeds_toml).unwrap();
    let defs = parse_feeds(feeds_toml, "feeds.toml").unwrap();
    let data = DataDir::open(&dir.join("data")).unwrap();
    let keyring = Arc::new(data.load_keyring(PseudonymConfig::default()).unwrap());
    let (store, _) = Store::open(data.path(), StoreConfig::default()).unwrap();
    let live = Arc::new(LiveFeeds::from_set(FeedSet::new(&defs).unwrap()));
    let persist = Persister::new(
        store,
        &[posts.to_path_buf()],
        live.clone(),
        data.clone(),
        keyring.clone(),
        CommitPolicy::default(),
    )
    .unwrap();
    let alerts = SpikeAlerts::new(SpikeConfig::default(), AlertLog::open(persist.store().db()).unwrap());
    let topics = TopicWatch::open(EmergingConfig::default(), persist.store().db()).unwrap();
    let mut sink = Sink {
        persist,
        alerts,
        topics,
        live: live.clone(),
    };
    let cfg = RunConfig {
        decode: DecodeOptions::default(),
        threads: 2,
        keyring,
        enriched_upstream: false,
        public_accounts: Arc::new(PublicAccounts::default()),
        undated_time: Timestamp(0),
        window: WindowConfig::default(),
    };
    tidewatch_engine::run::run(&[posts.to_path_buf()], &cfg, &live, &mut sink, &mut |_| {}).unwrap();
    sink.topics.finish();
    sink.persist.topics(sink.topics.take_pending());
    sink.persist.commit().unwrap();
    dir.join("data")
}
