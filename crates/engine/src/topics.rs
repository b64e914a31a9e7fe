//! Emerging topics in a run: what the whole stream starts talking about,
//! with no feed asking for it.
//!
//! A [`TopicWatch`] holds the stream-wide detector of
//! `tidewatch_core::emerging`. A run's sink hands it every matched post in
//! input order; each time the newest event time enters a new minute, the
//! minute that just closed is judged: the detector's top topics are taken,
//! and each becomes a [`TopicRecord`] (its terms, score, post estimates and
//! a suggested detection feed). A topic is *new* the first time its id is
//! recorded, by this run or an earlier one on the same store: that is when
//! a live run prints it. Later sightings update the record (last seen,
//! score, terms) and, when its leading terms change, its suggested feed.
//!
//! A topic's id is the hash of its founding key, so when that key fades
//! while the rest of the topic goes on, the rest is listed under a new id;
//! and a burst of posts on one subject may first surface as several
//! single-key topics. A new id that shares a leading key or a suggested-feed
//! key with a topic listed within the last hour is recorded as a
//! *continuation* of it ([`TopicRecord::continues`]) and not announced
//! again.
//!
//! Records wait in the watch until the sink takes them for the next store
//! commit ([`TopicWatch::take_pending`]); a topic listed in many minutes
//! between two commits is written once, in its latest state.
//!
//! A narrative that grows fast (see [`crate::narratives`]) is listed too,
//! as a topic of kind `narrative` ([`TopicWatch::narrative`]): its id is
//! the narrative's, its suggested feed the AND of the rarest words its
//! copies share (`tidewatch_core::emerging::narrative`), and its stored
//! record is a [`TopicEntry`]: the [`TopicRecord`] fields every reader
//! knows, plus `kind` and `narrative` (so `tidewatch feeds add
//! --from-topic ID` adopts its feed unchanged). It is recorded once, when
//! it starts growing fast.
//!
//! Terms come from the redacted text (see [`MatchedPost::terms`]) and the
//! post's hashtags and link domains: a topic is an aggregate statement about
//! words, never about an account.

use crate::narratives::NarrativeRecord;
use crate::run::MatchedPost;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use tidewatch_core::emerging::{EmergingConfig, EmergingTopics, SuggestedFeed, Topic, TopicTerm};
use tidewatch_core::Timestamp;
use tidewatch_store::db::{Db, TopicRow};
use tidewatch_store::StoreError;

/// Topics taken from the detector at each minute.
pub const TOP_K: usize = 10;
/// Leading terms compared to decide whether a topic's content changed.
const LEADING_TERMS: usize = 5;
/// Event time between two suggestions for the same topic: a suggestion
/// looks at every tracked key, so it is not redone each minute.
const RESUGGEST_MS: i64 = 10 * Timestamp::MINUTE;
/// How long a topic's record is kept in memory after it was last listed
/// (to update it if it comes back).
const KEEP_MS: i64 = Timestamp::HOUR;
/// Terms shown in a one-line summary.
const SUMMARY_TERMS: usize = 6;

/// An emerging topic as recorded in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Stable id: 16 hex digits (the hash of the topic's founding key).
    pub id: String,
    /// When its founding key started emerging (event time).
    pub first_seen: Timestamp,
    /// The end of the last minute in which it was listed.
    pub last_seen: Timestamp,
    /// Sum of its keys' scores, as last listed.
    pub score: f64,
    /// Estimated posts in the detector's current window, as last listed.
    pub posts: f64,
    /// Estimated posts since it was first seen, as last listed.
    pub posts_since_first_seen: f64,
    /// Its keys, highest score first.
    pub terms: Vec<TopicTerm>,
    /// A detection feed that captures its posts, when one was found.
    pub suggested: Option<SuggestedFeed>,
    /// The id of the earlier topic this one continues (it shares one of its
    /// leading keys with it), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<String>,
}

impl TopicRecord {
    fn new(topic: &Topic, now: Timestamp, suggested: Option<SuggestedFeed>) -> TopicRecord {
        TopicRecord {
            id: topic.id.to_string(),
            first_seen: topic.first_seen,
            last_seen: now,
            score: topic.score,
            posts: topic.posts,
            posts_since_first_seen: topic.posts_since_first_seen,
            terms: topic.terms.clone(),
            suggested,
            continues: None,
        }
    }

    /// Its keys in query form (`quorvex`, `#quorvex`, `"quorvex virus"`,
    /// `domain:quorvex.example`), comma-separated.
    pub fn terms_text(&self, max: usize) -> String {
        let forms: Vec<String> = self.terms.iter().take(max).map(TopicTerm::query_form).collect();
        forms.join(", ")
    }

    /// The suggested query, if any.
    pub fn suggested_query(&self) -> Option<&str> {
        self.suggested.as_ref().map(|s| s.query.as_str())
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let feed = match &self.suggested {
            Some(s) => format!(
                "suggested feed: {} (est. precision {:.2})",
                s.query, s.estimated_precision
            ),
            None => "no suggested feed yet".to_string(),
        };
        format!(
            "TOPIC {}: {} — emerging since {}, ~{:.0} posts; {feed}",
            self.id,
            self.terms_text(SUMMARY_TERMS),
            self.first_seen,
            self.posts_since_first_seen
        )
    }

    /// The row the store keeps.
    pub fn to_row(&self) -> TopicRow {
        TopicRow {
            id: self.id.clone(),
            first_seen_ms: self.first_seen.0,
            last_seen_ms: self.last_seen.0,
            score: self.score,
            terms: self.terms_text(usize::MAX),
            suggested_query: self.suggested_query().map(str::to_owned),
            record: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// What kind of topic a record is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicKind {
    /// Co-occurring emerging terms (records written without a kind).
    #[default]
    Terms,
    /// A fast-growing narrative.
    Narrative,
}

/// What a topic of kind narrative says about its narrative: counts only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NarrativeTopic {
    /// The narrative's id (16 hex digits).
    pub id: String,
    /// A member's redacted text.
    pub representative: String,
    /// Posts, of which reposts, and distinct accounts when it started
    /// growing fast.
    pub posts: u64,
    pub reposts: u64,
    pub accounts: u64,
    pub accounts_exact: bool,
    /// Posts in its last 10 minutes and in the hour before, and the growth
    /// score from them.
    pub recent_10m: u64,
    pub previous_60m: u64,
    pub growth: f64,
}

/// A topic as stored: a [`TopicRecord`] with its kind, and for a narrative
/// what it says about it. Records of term topics written before kinds
/// existed read as kind `terms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicEntry {
    #[serde(flatten)]
    pub record: TopicRecord,
    #[serde(default)]
    pub kind: TopicKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<NarrativeTopic>,
}

impl TopicEntry {
    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let Some(n) = &self.narrative else {
            return self.record.summary();
        };
        let feed = match &self.record.suggested {
            Some(s) => format!(
                "suggested feed: {} (est. precision {:.2})",
                s.query, s.estimated_precision
            ),
            None => "no suggested feed".to_string(),
        };
        let text: String = n.representative.chars().take(80).collect();
        format!(
            "TOPIC {} (narrative): {} posts from {}{} accounts since {}, growth {:.1}: \"{text}\"; {feed}",
            self.record.id,
            n.posts,
            if n.accounts_exact { "" } else { "~" },
            n.accounts,
            self.record.first_seen,
            n.growth
        )
    }

    /// The row the store keeps.
    pub fn to_row(&self) -> TopicRow {
        let mut row = self.record.to_row();
        row.record = serde_json::to_string(self).unwrap_or_default();
        row
    }
}

/// Records are written for JSON (optional fields left out, times as
/// text), which a saved state's compact encoding cannot read back: there
/// they are kept as their JSON.
mod as_json {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&json)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let json = String::deserialize(d)?;
        serde_json::from_str(&json).map_err(serde::de::Error::custom)
    }
}

/// A topic's record in memory, with what decides when to suggest again.
#[derive(Serialize, Deserialize)]
struct Live {
    record: TopicRecord,
    /// Its leading terms when the feed was last suggested, sorted.
    leading: Vec<String>,
    suggested_at: Timestamp,
}

fn leading_terms(terms: &[TopicTerm]) -> Vec<String> {
    let mut v: Vec<String> = terms.iter().take(LEADING_TERMS).map(TopicTerm::query_form).collect();
    v.sort();
    v
}

/// The emerging-topic detector of a run, and the records it produced; see
/// the module docs. It serialises to its state (see [`crate::state`]).
#[derive(Serialize, Deserialize)]
pub struct TopicWatch {
    detector: EmergingTopics,
    /// The minute (unix minutes) of the newest event time seen.
    minute: Option<i64>,
    /// Every topic id ever recorded (by this run or, from the store, an
    /// earlier one): a topic is announced once.
    known: HashSet<String>,
    /// Topics listed within [`KEEP_MS`], by id.
    #[serde(with = "as_json")]
    live: HashMap<String, Live>,
    /// Ids whose record changed since the last [`Self::take_pending`].
    dirty: BTreeSet<String>,
    /// Narrative topics recorded since the last [`Self::take_pending`]
    /// (not saved: a run takes them before it saves).
    #[serde(skip)]
    narratives: Vec<TopicEntry>,
}

impl TopicWatch {
    /// A watch that knows no topic yet.
    pub fn new(config: EmergingConfig) -> TopicWatch {
        TopicWatch {
            detector: EmergingTopics::new(config),
            minute: None,
            known: HashSet::new(),
            live: HashMap::new(),
            dirty: BTreeSet::new(),
            narratives: Vec::new(),
        }
    }

    /// A watch that remembers the topics the store's `topics` table holds,
    /// so a restarted run does not announce them again.
    pub fn open(config: EmergingConfig, db: &Db) -> Result<TopicWatch, StoreError> {
        let mut watch = TopicWatch::new(config);
        watch.known = db.topics(None)?.into_iter().map(|r| r.id).collect();
        Ok(watch)
    }

    /// The detector, for its figures (memory, clock).
    pub fn detector(&self) -> &EmergingTopics {
        &self.detector
    }

    /// Feeds one post (in input order). When the post's event time enters a
    /// new minute, the minute before is judged first; returns the topics
    /// seen for the first time then (usually none; continuations of earlier
    /// topics are recorded, not returned).
    pub fn post(&mut self, m: &MatchedPost) -> Vec<TopicRecord> {
        let mut new = Vec::new();
        if let Some(t) = m.post.created_at {
            let minute = t.0.div_euclid(Timestamp::MINUTE);
            match self.minute {
                Some(prev) if minute > prev => {
                    new = self.judge(Timestamp(minute.saturating_mul(Timestamp::MINUTE)));
                    self.minute = Some(minute);
                }
                None => self.minute = Some(minute),
                Some(_) => {}
            }
        }
        // `terms` is a space-separated list; the detector wants an iterator
        // of words, so they are borrowed from the post itself.
        self.detector
            .observe_terms(&m.post, m.terms.split(' ').filter(|t| !t.is_empty()));
        new
    }

    /// Lists a narrative that grew fast (see [`crate::narratives`]) as a
    /// topic of kind narrative, with a suggested feed from its
    /// representative text; returns it if it is new (not recorded before,
    /// by this run or an earlier one on the same store).
    pub fn narrative(&mut self, n: &NarrativeRecord) -> Option<TopicEntry> {
        if !self.known.insert(n.id.clone()) {
            return None;
        }
        // Posts carrying the text in about the last hour: what the
        // detector's counts of its shared words should reach.
        let recent = (n.recent_10m + n.previous_60m) as f64;
        let written = n.posts.saturating_sub(n.reposts) as f64 / n.posts.max(1) as f64;
        let feed = self
            .detector
            .suggest_narrative_feed(&n.representative, recent * written);
        let (terms, suggested) = match feed {
            Some(f) => (f.terms, Some(f.feed)),
            None => (Vec::new(), None),
        };
        let entry = TopicEntry {
            record: TopicRecord {
                id: n.id.clone(),
                first_seen: n.first_seen,
                last_seen: n.last_seen,
                score: n.growth,
                posts: n.recent_10m as f64,
                posts_since_first_seen: n.posts as f64,
                terms,
                suggested,
                continues: None,
            },
            kind: TopicKind::Narrative,
            narrative: Some(NarrativeTopic {
                id: n.id.clone(),
                representative: n.representative.clone(),
                posts: n.posts,
                reposts: n.reposts,
                accounts: n.accounts,
                accounts_exact: n.accounts_exact,
                recent_10m: n.recent_10m,
                previous_60m: n.previous_60m,
                growth: n.growth,
            }),
        };
        self.narratives.push(entry.clone());
        Some(entry)
    }

    /// Judges the stream as it stands (at the end of a run): returns the
    /// topics seen for the first time, like [`Self::post`].
    pub fn finish(&mut self) -> Vec<TopicRecord> {
        match self.detector.clock() {
            Some(now) => self.judge(now),
            None => Vec::new(),
        }
    }

    /// Takes the top topics at `now`, updates their records, returns the
    /// new ones.
    fn judge(&mut self, now: Timestamp) -> Vec<TopicRecord> {
        let mut new = Vec::new();
        for topic in self.detector.top(now, TOP_K) {
            let id = topic.id.to_string();
            let leading = leading_terms(&topic.terms);
            match self.live.get_mut(&id) {
                Some(live) => {
                    let r = &mut live.record;
                    r.last_seen = now;
                    r.score = topic.score;
                    r.posts = topic.posts;
                    r.posts_since_first_seen = topic.posts_since_first_seen;
                    r.first_seen = r.first_seen.min(topic.first_seen);
                    r.terms = topic.terms.clone();
                    let due = now.0.saturating_sub(live.suggested_at.0) >= RESUGGEST_MS;
                    if r.suggested.is_none() || (due && leading != live.leading) {
                        if let Some(s) = self.detector.suggest_feed(&topic, now) {
                            r.suggested = Some(s);
                        }
                        live.leading = leading;
                        live.suggested_at = now;
                    }
                }
                None => {
                    let mut record = TopicRecord::new(&topic, now, self.detector.suggest_feed(&topic, now));
                    record.continues = self.continued(&record);
                    if self.known.insert(id.clone()) && record.continues.is_none() {
                        new.push(record.clone());
                    }
                    self.live.insert(
                        id.clone(),
                        Live {
                            record,
                            leading,
                            suggested_at: now,
                        },
                    );
                }
            }
            self.dirty.insert(id);
        }
        // Forget the records of topics gone for a while (those waiting to
        // be written stay until they are taken).
        let dirty = &self.dirty;
        self.live
            .retain(|id, l| now.0.saturating_sub(l.record.last_seen.0) < KEEP_MS || dirty.contains(id));
        new
    }

    /// The topic listed within the last hour that `record` goes on with:
    /// one of `record`'s leading keys or suggested-feed keys is a key or a
    /// suggested-feed key of it (the one sharing the most keys; ties: the
    /// older). Suggested-feed keys are precise ones (see
    /// `tidewatch_core::emerging::feed`), so sharing one means sharing posts.
    fn continued(&self, record: &TopicRecord) -> Option<String> {
        let feed_terms = |r: &TopicRecord| {
            r.suggested
                .iter()
                .flat_map(|f| f.terms.clone())
                .collect::<Vec<String>>()
        };
        let mut mine: Vec<String> = record
            .terms
            .iter()
            .take(LEADING_TERMS)
            .map(TopicTerm::query_form)
            .collect();
        mine.extend(feed_terms(record));
        self.live
            .values()
            .filter(|l| l.record.id != record.id)
            .filter_map(|l| {
                let mut theirs: HashSet<String> = l.record.terms.iter().map(TopicTerm::query_form).collect();
                theirs.extend(feed_terms(&l.record));
                let shared = mine.iter().filter(|k| theirs.contains(*k)).count();
                (shared > 0).then_some((shared, std::cmp::Reverse(l.record.first_seen), &l.record.id))
            })
            .max()
            .map(|(_, _, id)| id.clone())
    }

    /// The records changed since the last call, as rows for the store.
    pub fn take_pending(&mut self) -> Vec<TopicRow> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut rows: Vec<TopicRow> = dirty
            .iter()
            .filter_map(|id| self.live.get(id))
            .map(|l| l.record.to_row())
            .collect();
        rows.extend(self.narratives.drain(..).map(|e| e.to_row()));
        rows
    }
}

/// The topics recorded in the store, in order of first sighting; with
/// `since`, only those last seen at or after it. A row that cannot be read
/// is skipped.
pub fn current_topics(db: &Db, since: Option<Timestamp>) -> Result<Vec<TopicRecord>, StoreError> {
    Ok(db
        .topics(since.map(|t| t.0))?
        .into_iter()
        .filter_map(|row| {
            let mut rec: TopicRecord = serde_json::from_str(&row.record).ok()?;
            // The table's columns are authoritative (the first sighting is
            // the earliest of every run's).
            rec.first_seen = Timestamp(row.first_seen_ms);
            rec.last_seen = Timestamp(row.last_seen_ms);
            Some(rec)
        })
        .collect())
}

/// [`current_topics`] with each topic's kind and, for a narrative, what it
/// says about it.
pub fn current_topic_entries(db: &Db, since: Option<Timestamp>) -> Result<Vec<TopicEntry>, StoreError> {
    Ok(db
        .topics(since.map(|t| t.0))?
        .into_iter()
        .filter_map(|row| {
            let mut e: TopicEntry = serde_json::from_str(&row.record).ok()?;
            e.record.first_seen = Timestamp(row.first_seen_ms);
            e.record.last_seen = Timestamp(row.last_seen_ms);
            Some(e)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::testing::matched;
    use tidewatch_core::query::Query;
    use tidewatch_core::text::TokenizedText;
    use tidewatch_gen::{EventKind, GenConfig, Generator};
    use tidewatch_store::db::CommitDelta;

    #[test]
    fn a_planted_emerging_topic_is_recorded_once_with_a_feed_that_parses() {
        let gen = Generator::new(&GenConfig {
            posts: 300_000,
            days: 1,
            seed: 7,
            ..GenConfig::default()
        });
        let truth = gen.truth();
        // Each planted topic by its invented keys: the first word of its
        // name term, its hashtag, its link domain.
        let planted: Vec<Vec<String>> = truth
            .events
            .iter()
            .filter(|e| e.kind == EventKind::EmergingTopic)
            .map(|e| {
                let mut keys: Vec<String> = e
                    .terms
                    .iter()
                    .take(1)
                    .flat_map(|t| t.split(' ').next())
                    .map(str::to_owned)
                    .collect();
                keys.extend(e.hashtags.iter().cloned());
                keys.extend(e.domains.iter().cloned());
                keys
            })
            .collect();
        assert!(!planted.is_empty(), "the day has a planted emerging topic");

        let mut watch = TopicWatch::new(EmergingConfig::default());
        let mut tokens = TokenizedText::new();
        let mut announced: Vec<TopicRecord> = Vec::new();
        let mut rows: Vec<TopicRow> = Vec::new();
        for (i, post) in gen.enumerate() {
            announced.extend(watch.post(&matched(post, &mut tokens)));
            if i % 5_000 == 0 {
                rows.extend(watch.take_pending());
            }
        }
        announced.extend(watch.finish());
        rows.extend(watch.take_pending());

        let ids: HashSet<&str> = announced.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), announced.len(), "each topic is announced once");
        let is = |r: &TopicRecord, keys: &[String]| r.terms.iter().any(|t| keys.contains(&t.text));
        for keys in &planted {
            let rec = announced
                .iter()
                .find(|r| is(r, keys))
                .unwrap_or_else(|| panic!("planted topic {keys:?} not announced"));
            let feed = rec.suggested.as_ref().expect("a suggested feed");
            Query::parse(&feed.query).expect("the suggested query parses");
            assert!(
                keys.iter().any(|k| feed.query.contains(k.as_str())),
                "{} for {keys:?}",
                feed.query
            );
            assert!(rec.summary().starts_with(&format!("TOPIC {}: ", rec.id)));
        }

        // The rows go to the store and come back as the latest records.
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        db.commit(
            1,
            &CommitDelta {
                topics: rows,
                ..Default::default()
            },
        )
        .unwrap();
        let stored = current_topics(&db, None).unwrap();
        let recorded: HashSet<&str> = stored.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(recorded.len(), stored.len(), "one row per topic");
        assert!(ids.is_subset(&recorded), "every announced topic is stored");
        // The others go on with a topic recorded before them.
        for r in stored.iter().filter(|r| !ids.contains(r.id.as_str())) {
            let earlier = r.continues.as_deref().expect("not announced: a continuation");
            assert!(recorded.contains(earlier), "{} continues {earlier}", r.id);
        }
        for keys in &planted {
            assert!(stored.iter().any(|r| is(r, keys)), "{keys:?} stored");
        }
        // A restarted watch knows them: nothing is announced again.
        let reopened = TopicWatch::open(EmergingConfig::default(), &db).unwrap();
        assert!(recorded.iter().all(|id| reopened.known.contains(*id)));
    }
}
