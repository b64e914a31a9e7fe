//! Narratives in a run: the texts many posts repeat, kept up to date as the
//! stream goes by.
//!
//! A [`NarrativeWatch`] holds the streaming near-duplicate clusterer of
//! `tidewatch_core::narrative`. A run's sink hands it every matched post in
//! input order; the post joins (or founds) a narrative by its text, or, for
//! a repost, the narrative of the post it reposts, and the narrative
//! tallies the feeds the post matched. The watch decides what is reported,
//! stored and announced as growing.
//!
//! A narrative is *reported* once, the first time it holds at least
//! `min_accounts` distinct accounts and either `min_posts` posts or a
//! growth score of `min_growth` (its last 10 minutes against the hour
//! before): that is when a live run prints it. Narratives of at least
//! `store_min_posts` posts are written to the store's `narratives` table
//! as they change ([`NarrativeWatch::take_pending`]), one row each in its
//! latest state.
//!
//! A narrative *grows fast* when, besides `min_accounts` distinct accounts
//! and `min_written` posts carrying its text, it had at least `min_burst`
//! posts in its last 10 minutes and a growth score of at least
//! `min_growth` (those 10 minutes' rate over the previous hour's, see
//! [`Narrative::growth`]): a burst after a quiet hour, not a steady text
//! (posted at a constant rate it scores about 1) and not a small one.
//! Each narrative grows fast once per life; the watch queues it for
//! [`NarrativeWatch::take_grown`], and the run turns it into an emerging
//! topic ([`crate::topics::TopicWatch::narrative`]) and an alert
//! ([`crate::alerts::SpikeAlerts::narrative`]). The score is read from the
//! narrative's summary, which costs a few allocations, so it is looked at
//! only when a narrative of at least `min_burst` posts gains one (every
//! 8th once it has 64): per narrative change, not per post.
//!
//! In a run, the workers can make each post's sketch (the pure part of
//! clustering) and hand it to [`NarrativeWatch::post_sketched`]; a sink
//! asks for them through [`crate::run::RunSink::narrative_sketches`] with
//! [`NarrativeWatch::sketch_config`].
//!
//! Privacy: a narrative's record holds counts of distinct accounts, never
//! pseudonyms; its representative text is a member's redacted text.

use crate::run::MatchedPost;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use tidewatch_core::narrative::{
    Narrative, NarrativeConfig, NarrativeId, NarrativeSketch, NarrativeUpdate, Narratives, Rank,
};
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::Timestamp;
use tidewatch_store::db::{Db, NarrativeRow};
use tidewatch_store::StoreError;

/// Narratives examined by [`NarrativeWatch::finish`].
const FINISH_TOP: usize = 1_000;
/// Event-time minutes between two sweeps of expired reported narratives.
const SWEEP_MINUTES: i64 = 10;

/// Characters of the representative text in a one-line summary.
const SUMMARY_CHARS: usize = 100;

/// When a narrative is reported and stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchConfig {
    pub narratives: NarrativeConfig,
    /// Fewest distinct accounts for a narrative to be reported (default 5).
    pub min_accounts: u64,
    /// Posts that make a narrative reportable (default 20).
    pub min_posts: u64,
    /// Growth score that makes a narrative reportable before it has
    /// `min_posts` posts (default 8: a burst of 7 or more posts in ten
    /// minutes after a quiet hour).
    pub min_growth: f64,
    /// Fewest posts that carry the text themselves, not as reposts, for a
    /// narrative to be reported (default 5): one post reposted many times
    /// is a popular post, not a text many accounts repeat. (It is still
    /// stored and listed by size.)
    pub min_written: u64,
    /// Fewest posts for a narrative to be written to the store (default 5).
    pub store_min_posts: u64,
    /// Fewest posts in its last 10 minutes for a narrative to grow fast
    /// (default 10; see the module docs).
    pub min_burst: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            narratives: NarrativeConfig::default(),
            min_accounts: 5,
            min_posts: 20,
            min_growth: 8.0,
            min_written: 5,
            store_min_posts: 5,
            min_burst: 10,
        }
    }
}

/// A narrative as reported and recorded: the core's summary plus the
/// feeds its posts matched. Counts only, never pseudonyms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NarrativeRecord {
    /// 16 hex digits (the hash of its founding post's id).
    pub id: String,
    /// Posts counted into it (near-duplicates and reposts).
    pub posts: u64,
    pub reposts: u64,
    /// Distinct accounts: exact up to 128, then estimated (`accounts_exact`).
    pub accounts: u64,
    pub accounts_exact: bool,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Most frequent language tags with their post counts.
    pub languages: Vec<(String, u64)>,
    /// Most frequent link domains with their post counts.
    pub domains: Vec<(String, u64)>,
    /// A member's redacted text.
    pub representative: String,
    /// Posts in the last 10 minutes, in the hour before, and the growth
    /// score from them (1 is steady). Stored rows count them up to the
    /// narrative's last post; reports made as posts arrive, up to the
    /// newest post seen.
    pub recent_10m: u64,
    pub previous_60m: u64,
    pub growth: f64,
    /// Feeds its posts matched (feed id, posts), most posts first.
    pub feeds: Vec<(u32, u64)>,
}

impl NarrativeRecord {
    fn new(n: &Narrative) -> NarrativeRecord {
        NarrativeRecord {
            id: n.id.to_string(),
            posts: n.size,
            reposts: n.reposts,
            accounts: n.distinct_accounts,
            accounts_exact: n.accounts_exact,
            first_seen: n.first_seen,
            last_seen: n.last_seen,
            languages: n.languages.clone(),
            domains: n.domains.clone(),
            representative: n.representative.clone(),
            recent_10m: n.recent_10m,
            previous_60m: n.previous_60m,
            growth: n.growth,
            feeds: n.feeds.clone(),
        }
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let text: String = self.representative.chars().take(SUMMARY_CHARS).collect();
        let more = if self.representative.chars().count() > SUMMARY_CHARS {
            "…"
        } else {
            ""
        };
        format!(
            "NARRATIVE {}: {} posts ({} reposts) from {}{} accounts since {}, growth {:.1}: \"{text}{more}\"",
            self.id,
            self.posts,
            self.reposts,
            if self.accounts_exact { "" } else { "~" },
            self.accounts,
            self.first_seen,
            self.growth
        )
    }

    /// The row the store keeps.
    pub fn to_row(&self) -> NarrativeRow {
        NarrativeRow {
            id: self.id.clone(),
            first_seen_ms: self.first_seen.0,
            last_seen_ms: self.last_seen.0,
            posts: i64::try_from(self.posts).unwrap_or(i64::MAX),
            accounts: i64::try_from(self.accounts).unwrap_or(i64::MAX),
            growth: self.growth,
            representative: self.representative.clone(),
            record: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// The narrative clusterer of a run, and what it reported; see the module
/// docs. It serialises to its state (see [`crate::state`]).
#[derive(Serialize, Deserialize)]
pub struct NarrativeWatch {
    cfg: WatchConfig,
    narratives: Narratives,
    #[serde(skip)]
    tokens: TokenizedText,
    /// The minute (unix minutes) of the last sweep.
    swept: Option<i64>,
    /// Every narrative id reported (by this run or, from the store, an
    /// earlier one), with the event time it was last known active;
    /// forgotten once the narrative has expired from the clusterer and that
    /// time is older than the window (it cannot come back then).
    reported: HashMap<u64, i64>,
    /// Narratives changed since the last [`Self::take_pending`] that are
    /// large enough to store.
    dirty: BTreeSet<u64>,
    /// What the clusterer did with the last post observed.
    #[serde(skip)]
    last: Option<NarrativeUpdate>,
    /// Every narrative id that grew fast, like `reported`.
    grown: HashMap<u64, i64>,
    /// Narratives that grew fast since the last [`Self::take_grown`]
    /// (not saved: a run takes them before it saves).
    #[serde(skip)]
    grown_pending: Vec<NarrativeRecord>,
}

impl NarrativeWatch {
    /// A watch that knows no narrative yet.
    pub fn new(cfg: WatchConfig) -> Result<NarrativeWatch, tidewatch_core::narrative::ConfigError> {
        Ok(NarrativeWatch {
            narratives: Narratives::new(cfg.narratives.clone())?,
            cfg,
            tokens: TokenizedText::new(),
            swept: None,
            reported: HashMap::new(),
            dirty: BTreeSet::new(),
            last: None,
            grown: HashMap::new(),
            grown_pending: Vec::new(),
        })
    }

    /// A watch that remembers the narratives the store's `narratives` table
    /// reported, so a restarted run does not report them again (a narrative
    /// id is the hash of its founding post's id, so it is the same across
    /// runs).
    pub fn open(cfg: WatchConfig, db: &Db) -> Result<NarrativeWatch, StoreError> {
        let mut watch = NarrativeWatch::new(cfg).map_err(|e| StoreError::Invalid(e.to_string()))?;
        for row in db.narratives(None, usize::MAX)? {
            let reportable = row.accounts >= watch.cfg.min_accounts as i64 && row.posts >= watch.cfg.min_posts as i64;
            if let (true, Ok(id)) = (reportable, u64::from_str_radix(&row.id, 16)) {
                watch.reported.insert(id, row.last_seen_ms);
            }
        }
        Ok(watch)
    }

    /// The clusterer, for its figures (memory, counters).
    pub fn narratives(&self) -> &Narratives {
        &self.narratives
    }

    /// The narrative the last post given to [`Self::post`] joined or
    /// founded (`None` for a short text that is not a repost): what the
    /// store's index records as the post's `cluster`.
    pub fn last_narrative(&self) -> Option<NarrativeId> {
        self.last.map(|u| u.narrative)
    }

    /// What the clusterer did with the last post given to [`Self::post`]
    /// (its narrative, whether it joined by repost): what the coordination
    /// network's co-post edges key on, so it need not cluster again.
    pub fn last_update(&self) -> Option<NarrativeUpdate> {
        self.last
    }

    pub fn config(&self) -> &WatchConfig {
        &self.cfg
    }

    /// The clusterer's settings: what a run's workers need to make the
    /// sketches [`Self::post_sketched`] takes (see
    /// [`crate::run::RunSink::narrative_sketches`]).
    pub fn sketch_config(&self) -> &NarrativeConfig {
        self.narratives.config()
    }

    /// Feeds one post (in input order); returns the narratives reported for
    /// the first time because of it (usually none).
    pub fn post(&mut self, m: &MatchedPost) -> Vec<NarrativeRecord> {
        self.post_sketched(m, None)
    }

    /// Starts loading what [`Self::post_sketched`] with `sketch` will
    /// read first (see [`Narratives::prefetch`]).
    pub fn prefetch(&self, sketch: &NarrativeSketch) {
        self.narratives.prefetch(sketch);
    }

    /// [`Self::post`] with the post's sketch when a run's worker made it
    /// (with `None` the watch tokenises and sketches the text itself).
    pub fn post_sketched(&mut self, m: &MatchedPost, sketch: Option<&NarrativeSketch>) -> Vec<NarrativeRecord> {
        let text = &m.post.text;
        let update = match sketch {
            Some(sketch) => self
                .narratives
                .observe_sketched(&m.post, sketch, &m.feeds, || text.clone()),
            None => {
                tokenize(text, &mut self.tokens);
                self.narratives
                    .observe(&m.post, &self.tokens, &m.feeds, || text.clone())
            }
        };
        self.last = update;
        let Some(u) = update else {
            return Vec::new();
        };
        let t = m.post.created_at.map_or(0, |t| t.0);
        self.sweep(t);
        if u.size >= self.cfg.store_min_posts {
            self.dirty.insert(u.narrative.0);
        }
        // A summary costs a few allocations: look only while the narrative
        // may newly qualify, and then every 16th post (8th for growth).
        let due = u.size >= self.cfg.min_accounts.max(2)
            && (u.size < 64 || u.size % 16 == 0)
            && !self.reported.contains_key(&u.narrative.0);
        let growth_due = u.size >= self.cfg.min_burst.max(2)
            && (u.size < 64 || u.size % 8 == 0)
            && !self.grown.contains_key(&u.narrative.0);
        if !due && !growth_due {
            return Vec::new();
        }
        let Some(n) = self.narratives.get(u.narrative) else {
            return Vec::new();
        };
        let mut new = Vec::new();
        if growth_due && self.grows_fast(&n) {
            self.grown.insert(u.narrative.0, t);
            self.grown_pending.push(NarrativeRecord::new(&n));
        }
        if due && self.qualifies(&n) {
            self.reported.insert(u.narrative.0, t);
            new.push(NarrativeRecord::new(&n));
        }
        new
    }

    /// Whether a narrative grows fast (see the module docs).
    fn grows_fast(&self, n: &Narrative) -> bool {
        n.recent_10m >= self.cfg.min_burst
            && n.growth >= self.cfg.min_growth
            && n.distinct_accounts >= self.cfg.min_accounts
            && n.size.saturating_sub(n.reposts) >= self.cfg.min_written
    }

    /// The narratives that grew fast since the last call (usually none),
    /// each once per life.
    pub fn take_grown(&mut self) -> Vec<NarrativeRecord> {
        std::mem::take(&mut self.grown_pending)
    }

    /// The narrative's record if it qualifies to be reported.
    fn reportable(&self, id: NarrativeId) -> Option<NarrativeRecord> {
        let n = self.narratives.get(id)?;
        self.qualifies(&n).then(|| NarrativeRecord::new(&n))
    }

    /// Whether a narrative qualifies to be reported.
    fn qualifies(&self, n: &Narrative) -> bool {
        let big = n.size >= self.cfg.min_posts || n.growth >= self.cfg.min_growth;
        let written = n.size.saturating_sub(n.reposts) >= self.cfg.min_written;
        n.distinct_accounts >= self.cfg.min_accounts && big && written
    }

    /// Judges the narratives as they stand at the end of a run: returns
    /// those reported for the first time, like [`Self::post`].
    pub fn finish(&mut self) -> Vec<NarrativeRecord> {
        let mut new = Vec::new();
        for n in self.narratives.top(FINISH_TOP, Rank::Size) {
            if n.size < self.cfg.min_accounts || self.reported.contains_key(&n.id.0) {
                continue;
            }
            if let Some(rec) = self.reportable(n.id) {
                self.reported.insert(n.id.0, n.last_seen.0);
                new.push(rec);
            }
        }
        new
    }

    /// The narratives changed since the last call that hold at least
    /// `store_min_posts` posts, as rows for the store. A row's activity is
    /// as of the narrative's last post: taken after any batch, by any run
    /// (one stopped and resumed too), the row is the same.
    pub fn take_pending(&mut self) -> Vec<NarrativeRow> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|id| {
                let n = self.narratives.get_at_last_post(NarrativeId(id))?;
                Some(NarrativeRecord::new(&n).to_row())
            })
            .collect()
    }

    /// The largest live narratives (at least two posts), most posts first.
    pub fn top(&self, k: usize) -> Vec<NarrativeRecord> {
        self.narratives
            .top(k, Rank::Size)
            .iter()
            .map(NarrativeRecord::new)
            .collect()
    }

    /// Once per few minutes of event time, forgets reported narratives
    /// that expired, so memory stays flat over any stream.
    fn sweep(&mut self, t: i64) {
        let minute = t.div_euclid(Timestamp::MINUTE);
        // Each sweep scans every reported narrative: once per few minutes
        // of event time keeps memory bounded at a small share of the cost
        // (a replay runs through many minutes a second).
        if self.swept.is_some_and(|m| minute < m + SWEEP_MINUTES) {
            return;
        }
        self.swept = Some(minute);
        let cutoff = t.saturating_sub(self.cfg.narratives.window_ms);
        // A live narrative is kept whatever its recorded time.
        let narratives = &self.narratives;
        self.reported
            .retain(|id, last| *last >= cutoff || narratives.contains(NarrativeId(*id)));
        self.grown
            .retain(|id, last| *last >= cutoff || narratives.contains(NarrativeId(*id)));
    }
}

/// At most `limit` narratives recorded in the store, most distinct
/// accounts first; with `since`, only those last seen at or after it. A row
/// that cannot be read is skipped.
pub fn current_narratives(db: &Db, since: Option<Timestamp>, limit: usize) -> Result<Vec<NarrativeRecord>, StoreError> {
    Ok(db
        .narratives(since.map(|t| t.0), limit)?
        .into_iter()
        .filter_map(|row| {
            let mut rec: NarrativeRecord = serde_json::from_str(&row.record).ok()?;
            // The table's first sighting is the earliest of every run's.
            rec.first_seen = Timestamp(row.first_seen_ms);
            Some(rec)
        })
        .collect())
}

#[cfg(test)]
#[path = "narratives_growth_tests.rs"]
mod growth_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::Post;
    use tidewatch_store::db::CommitDelta;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_772_409_600_000;
    const MESSAGE: &str =
        "The harbour bridge will close for a whole month from Monday, share before they hide it #bridgewatch";

    fn matched(id: &str, author: &str, t: i64, text: &str, repost_of: Option<&str>, feeds: &[u32]) -> MatchedPost {
        MatchedPost {
            post: Post {
                id: id.into(),
                platform: "bluesky".into(),
                created_at: Some(Timestamp(t)),
                author: Some(author.into()),
                text: text.into(),
                lang: Some("en".into()),
                repost_of: repost_of.map(Into::into),
                ..Default::default()
            },
            feeds: feeds.to_vec(),
            version: 0,
            terms: String::new(),
        }
    }

    fn config() -> WatchConfig {
        WatchConfig {
            min_accounts: 5,
            min_posts: 8,
            min_growth: f64::INFINITY,
            store_min_posts: 3,
            ..WatchConfig::default()
        }
    }

    /// Six accounts post the message (with a mention, redacted as the run
    /// does, an emoji, case), three
    /// more repost the first copy; one unrelated post.
    fn campaign() -> Vec<MatchedPost> {
        let variants = [
            MESSAGE.to_string(),
            format!("@user {MESSAGE}"),
            format!("{MESSAGE} 😡"),
            MESSAGE.to_uppercase(),
            MESSAGE.to_string(),
            format!("{MESSAGE}!!"),
        ];
        let mut posts: Vec<MatchedPost> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let feeds: &[u32] = if i % 2 == 0 { &[7] } else { &[7, 9] };
                matched(
                    &format!("p{i}"),
                    &format!("acct_{i}_example"),
                    T0 + i as i64 * MIN,
                    v,
                    None,
                    feeds,
                )
            })
            .collect();
        for k in 0..3 {
            posts.push(matched(
                &format!("r{k}"),
                &format!("reposter_{k}_example"),
                T0 + (6 + k) * MIN,
                "",
                Some("p0"),
                &[],
            ));
        }
        posts.push(matched(
            "x",
            "acct_0_example",
            T0 + 10 * MIN,
            "Tomatoes in the community garden are finally ripe this week, come and pick some",
            None,
            &[9],
        ));
        posts
    }

    #[test]
    fn one_post_reposted_by_many_accounts_is_kept_but_not_reported() {
        let mut watch = NarrativeWatch::new(config()).unwrap();
        let mut reported = Vec::new();
        reported.extend(watch.post(&matched("p0", "acct_0_example", T0, MESSAGE, None, &[])));
        for k in 0..30 {
            let post = matched(
                &format!("r{k}"),
                &format!("fan_{k}_example"),
                T0 + k * MIN / 4,
                "",
                Some("p0"),
                &[],
            );
            reported.extend(watch.post(&post));
        }
        reported.extend(watch.finish());
        assert!(reported.is_empty(), "{reported:?}");
        // Still a narrative of 31 posts, stored and listed.
        let top = watch.top(1);
        assert_eq!((top[0].posts, top[0].reposts), (31, 30));
        assert_eq!(watch.take_pending().len(), 1);
    }

    #[test]
    fn near_duplicates_and_reposts_form_one_narrative_reported_once() {
        let mut watch = NarrativeWatch::new(config()).unwrap();
        let mut reported = Vec::new();
        let mut ids = Vec::new();
        for m in campaign() {
            reported.extend(watch.post(&m));
            ids.push(watch.last_narrative());
        }
        reported.extend(watch.finish());
        // The six copies and the three reposts share one narrative; the
        // unrelated post founds its own.
        let first = ids[0].expect("long enough");
        assert!(ids[..9].iter().all(|id| *id == Some(first)), "{ids:?}");
        assert_ne!(ids[9], Some(first));
        // Reported when it reached 8 posts (the second repost), once.
        assert_eq!(reported.len(), 1);
        let r = &reported[0];
        assert_eq!(r.id, first.to_string());
        assert_eq!((r.posts, r.reposts, r.accounts), (8, 2, 8));
        assert!(r.accounts_exact);
        assert_eq!(r.languages, vec![("en".to_string(), 8)]);
        assert_eq!(r.first_seen, Timestamp(T0));
        assert_eq!(r.last_seen, Timestamp(T0 + 7 * MIN));
        // The representative is the post that made it a narrative of two.
        assert_eq!(r.representative, format!("@user {MESSAGE}"));
        // Feed 7 on all six copies, feed 9 on three; reposts matched none.
        assert_eq!(r.feeds, vec![(7, 6), (9, 3)]);
        assert!(r
            .summary()
            .starts_with(&format!("NARRATIVE {first}: 8 posts (2 reposts) from 8 accounts")));
        // The latest state has all nine posts.
        let top = watch.top(5);
        assert_eq!(top.len(), 1);
        assert_eq!((top[0].posts, top[0].reposts, top[0].accounts), (9, 3, 9));
    }

    #[test]
    fn feed_tallies_live_and_die_with_their_narratives() {
        // Room for 50 narratives: hundreds of one-off posts come and go
        // before the campaign, which still tallies its feeds (a separate
        // table of tallies once filled with dead narratives' and stopped
        // tallying new ones).
        let mut cfg = config();
        cfg.narratives.max_narratives = 50;
        let mut watch = NarrativeWatch::new(cfg).unwrap();
        for i in 0..300 {
            let text = format!("w{i}a w{i}b w{i}c w{i}d w{i}e w{i}f");
            watch.post(&matched(
                &format!("x{i}"),
                "acct_x_example",
                T0 - 10 * MIN,
                &text,
                None,
                &[1, 2],
            ));
        }
        assert!(watch.narratives().stats().evicted_narratives >= 250);
        let mut reported = Vec::new();
        for m in campaign() {
            reported.extend(watch.post(&m));
        }
        assert_eq!(reported.len(), 1);
        assert_eq!(reported[0].feeds, vec![(7, 6), (9, 3)]);
    }

    #[test]
    fn reported_ids_are_forgotten_once_their_narrative_expired() {
        let mut cfg = config();
        cfg.narratives.window_ms = 60 * MIN;
        let mut watch = NarrativeWatch::new(cfg).unwrap();
        let mut reported = Vec::new();
        for m in campaign() {
            reported.extend(watch.post(&m));
        }
        assert_eq!((reported.len(), watch.reported.len()), (1, 1));
        // Stored; two hours on, the narrative has expired: its id is
        // forgotten.
        assert_eq!(watch.take_pending().len(), 1);
        watch.post(&matched("later", "acct_9_example", T0 + 130 * MIN, MESSAGE, None, &[3]));
        assert!(watch
            .narratives()
            .get(NarrativeId(u64::from_str_radix(&reported[0].id, 16).unwrap()))
            .is_none());
        assert!(watch.reported.is_empty());
    }

    #[test]
    fn records_round_trip_through_the_store_without_pseudonyms() {
        let mut watch = NarrativeWatch::new(config()).unwrap();
        let mut rows = Vec::new();
        for (i, m) in campaign().iter().enumerate() {
            watch.post(m);
            if i == 4 {
                rows.extend(watch.take_pending());
            }
        }
        rows.extend(watch.take_pending());
        // Stored from 3 posts on: once at 5 posts, once at 9.
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].posts, rows[1].posts), (5, 9));
        for row in &rows {
            assert!(!row.record.contains("_example"), "{}", row.record);
        }

        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        // Written in two commits, the newer last; then an older state again
        // (a replay that is behind) does not overwrite it.
        for (seq, row) in [rows[0].clone(), rows[1].clone(), rows[0].clone()]
            .into_iter()
            .enumerate()
        {
            let delta = CommitDelta {
                narratives: vec![row],
                ..Default::default()
            };
            db.commit(seq as u64 + 1, &delta).unwrap();
        }
        let stored = current_narratives(&db, None, 10).unwrap();
        // The row's activity is as of the narrative's last post (all 9
        // posts within 10 minutes of it), the live report's as of the
        // newest post seen; the rest is the same.
        let mut live = watch.top(1);
        assert_eq!((live[0].recent_10m, live[0].previous_60m), (4, 5));
        assert_eq!(
            (stored[0].recent_10m, stored[0].previous_60m, stored[0].growth),
            (9, 0, 10.0)
        );
        (live[0].recent_10m, live[0].previous_60m, live[0].growth) = (9, 0, 10.0);
        assert_eq!(stored, live);
        assert_eq!(stored[0].posts, 9);
        assert!(current_narratives(&db, Some(Timestamp(T0 + 9 * MIN)), 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            current_narratives(&db, Some(Timestamp(T0 + 8 * MIN)), 10)
                .unwrap()
                .len(),
            1
        );
        assert!(current_narratives(&db, None, 0).unwrap().is_empty());

        // A restarted watch does not report it again.
        let mut again = NarrativeWatch::open(config(), &db).unwrap();
        let mut reported = Vec::new();
        for m in campaign() {
            reported.extend(again.post(&m));
        }
        reported.extend(again.finish());
        assert!(reported.is_empty(), "{reported:?}");
    }
}
