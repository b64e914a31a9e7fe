//! Scoring detectors against known truth: what `tidewatch eval spikes`
//! reports.
//!
//! The idea: the pipeline runs as it would live and its outputs (spike
//! alerts, the emerging-topic ranking of each minute) are compared here
//! with what is known to be in the data, either planted by the generator
//! (its truth file) or labelled by people (a first on-topic post per
//! crisis). Nothing here runs a detector; it only compares.
//!
//! ## Spikes against planted bursts
//!
//! An *opened* alert detects a planted burst when the alert's feed is named
//! like the burst's topic and the alert's onset falls within the burst's
//! span `[start, end)` widened by [`MATCH_SLACK_MS`] on each side (a
//! spike's onset is a whole minute and may precede the first planted post
//! by a little). Per burst, the first such alert counts; further ones are
//! *duplicates* (matched, but not new detections). An alert that detects no
//! burst is either explained by a planted *campaign* (a copy-paste,
//! co-link or repost-ring wave of the same topic, its onset within a wave
//! widened the same way: those waves are real volume spikes in the topic's
//! feed, just not planted bursts) or *unmatched* (a false alarm).
//!
//! - recall = bursts detected / bursts planted;
//! - precision = matched alerts / (opened alerts − campaign alerts);
//!   duplicates count as matched (they are about a real burst);
//!   `precision_all` counts campaign alerts as false alarms too;
//! - **onset delay** (event-time minutes) = the end of the minute whose
//!   closing raised the alert (`detected_at + 1 min`: the earliest event
//!   time at which the alert can exist) minus the burst's planted start.
//!   A live run emits it once its window closes, which also waits for the
//!   allowed lateness; that wait is a setting, not the detector's delay, and
//!   is not included. The onset error (detected onset minute minus the
//!   planted start's minute) is reported too.
//!
//! ## Emerging topics against planted topics
//!
//! A planted emerging topic is known by its invented keys: the first word
//! of its name, its hashtag and its link domain. A listed topic *is* it
//! when one of the listed topic's keys is one of those (a bigram counts
//! when one of its words is). [`EmergingTracker`] is shown the ranking at
//! the end of every minute and remembers, per planted topic, the first
//! minute within its span at which it is listed, and at which rank.
//!
//! ## Labelled crises
//!
//! [`score_labelled`] takes each group's first positive post (for CrisisLex:
//! the first on-topic tweet of a crisis) and the first alert of the feed
//! named after the group whose onset falls within the group's span of
//! posts; its delay is measured as above.

use crate::alerts::AlertRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use tidewatch_core::emerging::{KeyKind, SuggestedFeed, Topic};
use tidewatch_core::Timestamp;

/// How far outside a burst's span an alert's onset may fall and still
/// detect it.
pub const MATCH_SLACK_MS: i64 = 5 * Timestamp::MINUTE;

/// Why a truth file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("not a generator truth file: {0}")]
    Truth(#[from] serde_json::Error),
}

/// A background topic of the generated stream and the feed that finds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthTopic {
    pub name: String,
    pub query: String,
}

/// A planted burst: the topic's volume multiplies over `[start, end)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlantedBurst {
    pub id: String,
    pub topic: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A planted coordinated campaign: the dedicated accounts post in short
/// waves, on a background topic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlantedCampaign {
    pub id: String,
    /// `copy_paste`, `co_link`, `repost_ring`.
    pub kind: String,
    pub topic: String,
    /// Its waves `[start, end)`.
    pub waves: Vec<(Timestamp, Timestamp)>,
}

/// A planted emerging topic.
#[derive(Clone, Debug, PartialEq)]
pub struct PlantedEmerging {
    pub id: String,
    /// The topic's invented name.
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// What identifies it among listed topics: the first word of its name
    /// term, its hashtag, its link domain (as the detector writes keys:
    /// folded, tags without `#`).
    pub keys: Vec<String>,
    /// Ids of its posts.
    pub post_ids: HashSet<String>,
}

impl PlantedEmerging {
    /// Whether a listed topic is this one.
    pub fn is(&self, topic: &Topic) -> bool {
        topic.terms.iter().any(|t| match t.kind {
            KeyKind::Bigram => t.text.split(' ').any(|w| self.keys.iter().any(|k| k == w)),
            _ => self.keys.contains(&t.text),
        })
    }
}

/// What `eval spikes` needs of a generator truth file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlantedTruth {
    pub topics: Vec<TruthTopic>,
    pub bursts: Vec<PlantedBurst>,
    pub campaigns: Vec<PlantedCampaign>,
    pub emerging: Vec<PlantedEmerging>,
}

/// The fields of a truth file's event read here (the file has more).
#[derive(Deserialize)]
struct TruthEvent {
    id: String,
    kind: String,
    start: Timestamp,
    end: Timestamp,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    terms: Vec<String>,
    #[serde(default)]
    hashtags: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    post_ids: Vec<String>,
    #[serde(default)]
    windows: Vec<TruthWindow>,
}

#[derive(Deserialize)]
struct TruthWindow {
    start: Timestamp,
    end: Timestamp,
}

#[derive(Deserialize)]
struct TruthFile {
    topics: Vec<TruthTopic>,
    events: Vec<TruthEvent>,
}

impl PlantedTruth {
    /// Reads the JSON that `tidewatch gen --truth` writes (the generator's
    /// `Truth`); events other than bursts and emerging topics are ignored.
    pub fn from_json(bytes: &[u8]) -> Result<PlantedTruth, EvalError> {
        let file: TruthFile = serde_json::from_slice(bytes)?;
        let mut truth = PlantedTruth {
            topics: file.topics,
            ..Default::default()
        };
        for e in file.events {
            match e.kind.as_str() {
                "burst" => truth.bursts.push(PlantedBurst {
                    id: e.id,
                    topic: e.topic.unwrap_or_default(),
                    start: e.start,
                    end: e.end,
                }),
                "emerging_topic" => {
                    let mut keys: Vec<String> = e
                        .terms
                        .first()
                        .and_then(|t| t.split(' ').next())
                        .map(|w| vec![w.to_lowercase()])
                        .unwrap_or_default();
                    keys.extend(e.hashtags.iter().map(|h| h.trim_start_matches('#').to_lowercase()));
                    keys.extend(e.domains.iter().map(|d| d.to_lowercase()));
                    truth.emerging.push(PlantedEmerging {
                        id: e.id,
                        name: e.topic.unwrap_or_default(),
                        start: e.start,
                        end: e.end,
                        keys,
                        post_ids: e.post_ids.into_iter().collect(),
                    });
                }
                "copy_paste" | "co_link" | "repost_ring" => {
                    let mut waves: Vec<(Timestamp, Timestamp)> = e.windows.iter().map(|w| (w.start, w.end)).collect();
                    if waves.is_empty() {
                        waves.push((e.start, e.end));
                    }
                    truth.campaigns.push(PlantedCampaign {
                        id: e.id,
                        kind: e.kind,
                        topic: e.topic.unwrap_or_default(),
                        waves,
                    });
                }
                _ => {}
            }
        }
        Ok(truth)
    }
}

/// An opened alert, as scored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObservedAlert {
    pub id: String,
    pub feed: String,
    pub onset: Timestamp,
    /// Start of the minute whose closing raised it.
    pub detected_at: Timestamp,
    pub peak_count: u64,
    pub magnitude: f64,
}

impl ObservedAlert {
    /// The event time at which the alert exists: the end of the minute
    /// that raised it.
    pub fn raised_at(&self) -> Timestamp {
        Timestamp(self.detected_at.0.saturating_add(Timestamp::MINUTE))
    }
}

impl From<&AlertRecord> for ObservedAlert {
    fn from(r: &AlertRecord) -> ObservedAlert {
        ObservedAlert {
            id: r.id.clone(),
            feed: r.feed_name.clone(),
            onset: r.spike.onset,
            detected_at: r.spike.detected_at,
            peak_count: r.spike.peak_count,
            magnitude: r.spike.magnitude,
        }
    }
}

/// Minutes between two instants.
fn minutes(from: Timestamp, to: Timestamp) -> f64 {
    (to.0 - from.0) as f64 / Timestamp::MINUTE as f64
}

/// How one planted burst was detected.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BurstOutcome {
    #[serde(flatten)]
    pub burst: PlantedBurst,
    /// The first alert that detected it.
    pub alert: Option<String>,
    /// Onset delay in minutes (see the module docs).
    pub delay_minutes: Option<f64>,
    /// Detected onset minute minus the planted start's minute.
    pub onset_error_minutes: Option<i64>,
}

/// Spike detection scored against planted bursts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpikeScore {
    pub bursts: usize,
    pub detected: usize,
    /// Opened alerts in all.
    pub alerts: usize,
    pub matched_alerts: usize,
    /// Matched alerts on a burst that an earlier alert already detected.
    pub duplicates: usize,
    /// Alerts on a planted campaign's wave, not on a burst.
    pub campaign_alerts: Vec<CampaignAlert>,
    pub precision: f64,
    /// Precision with campaign alerts counted as false alarms.
    pub precision_all: f64,
    pub recall: f64,
    pub median_delay_minutes: Option<f64>,
    pub max_delay_minutes: Option<f64>,
    pub per_burst: Vec<BurstOutcome>,
    /// Alerts that detect no burst.
    pub unmatched: Vec<ObservedAlert>,
}

/// An alert explained by a planted campaign's wave.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignAlert {
    pub campaign: String,
    #[serde(flatten)]
    pub alert: ObservedAlert,
}

/// Whether `t` is within `[start, end)` widened by [`MATCH_SLACK_MS`].
fn near(t: Timestamp, start: Timestamp, end: Timestamp) -> bool {
    t.0 >= start.0.saturating_sub(MATCH_SLACK_MS) && t.0 < end.0.saturating_add(MATCH_SLACK_MS)
}

/// The median of a list of numbers (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Scores opened alerts (in any order) against planted bursts and
/// campaigns; see the module docs for the rules.
pub fn score_spikes(bursts: &[PlantedBurst], campaigns: &[PlantedCampaign], alerts: &[ObservedAlert]) -> SpikeScore {
    let mut sorted: Vec<&ObservedAlert> = alerts.iter().collect();
    sorted.sort_by_key(|a| (a.detected_at, a.onset, a.feed.clone()));
    let mut per_burst: Vec<BurstOutcome> = bursts
        .iter()
        .map(|b| BurstOutcome {
            burst: b.clone(),
            alert: None,
            delay_minutes: None,
            onset_error_minutes: None,
        })
        .collect();
    let (mut matched, mut duplicates) = (0, 0);
    let mut unmatched = Vec::new();
    let mut campaign_alerts = Vec::new();
    for a in sorted {
        let hit = bursts
            .iter()
            .position(|b| b.topic == a.feed && near(a.onset, b.start, b.end));
        let Some(i) = hit else {
            let campaign = campaigns
                .iter()
                .find(|c| c.topic == a.feed && c.waves.iter().any(|(s, e)| near(a.onset, *s, *e)));
            match campaign {
                Some(c) => campaign_alerts.push(CampaignAlert {
                    campaign: c.id.clone(),
                    alert: a.clone(),
                }),
                None => unmatched.push(a.clone()),
            }
            continue;
        };
        matched += 1;
        let out = &mut per_burst[i];
        if out.alert.is_some() {
            duplicates += 1;
            continue;
        }
        out.alert = Some(a.id.clone());
        out.delay_minutes = Some(minutes(out.burst.start, a.raised_at()));
        out.onset_error_minutes =
            Some(a.onset.0.div_euclid(Timestamp::MINUTE) - out.burst.start.0.div_euclid(Timestamp::MINUTE));
    }
    let delays: Vec<f64> = per_burst.iter().filter_map(|o| o.delay_minutes).collect();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    SpikeScore {
        bursts: bursts.len(),
        detected: delays.len(),
        alerts: alerts.len(),
        matched_alerts: matched,
        duplicates,
        precision: ratio(matched, alerts.len() - campaign_alerts.len()),
        precision_all: ratio(matched, alerts.len()),
        campaign_alerts,
        recall: ratio(delays.len(), bursts.len()),
        median_delay_minutes: median(&delays),
        max_delay_minutes: delays.iter().copied().reduce(f64::max),
        per_burst,
        unmatched,
    }
}

/// When and how a planted emerging topic was first listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmergingSighting {
    /// The end of the minute at which it was listed.
    pub at: Timestamp,
    /// 1 for the top topic.
    pub rank: usize,
    pub minutes_after_start: f64,
    /// The listed topic's id and keys, in query form.
    pub topic_id: String,
    pub terms: Vec<String>,
}

/// Counts of a feed against known topic posts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FeedCounts {
    pub matched: u64,
    pub true_positives: u64,
    pub positives: u64,
}

impl FeedCounts {
    pub fn add(&mut self, matched: bool, positive: bool) {
        self.matched += matched as u64;
        self.true_positives += (matched && positive) as u64;
        self.positives += positive as u64;
    }

    /// True positives over matched (0 when nothing matched).
    pub fn precision(&self) -> f64 {
        if self.matched == 0 {
            0.0
        } else {
            self.true_positives as f64 / self.matched as f64
        }
    }

    /// True positives over positives (0 without positives).
    pub fn recall(&self) -> f64 {
        if self.positives == 0 {
            0.0
        } else {
            self.true_positives as f64 / self.positives as f64
        }
    }
}

/// One planted emerging topic and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct EmergingOutcome {
    pub planted: PlantedEmerging,
    pub sighting: Option<EmergingSighting>,
    /// The feed suggested for the listed topic when it was first listed.
    pub suggested: Option<SuggestedFeed>,
    /// That feed's figures over the planted span (filled by the caller).
    pub feed: Option<FeedCounts>,
}

/// Follows the per-minute ranking of emerging topics and notes when each
/// planted one first appears (see the module docs).
pub struct EmergingTracker {
    outcomes: Vec<EmergingOutcome>,
}

impl EmergingTracker {
    pub fn new(planted: Vec<PlantedEmerging>) -> EmergingTracker {
        EmergingTracker {
            outcomes: planted
                .into_iter()
                .map(|planted| EmergingOutcome {
                    planted,
                    sighting: None,
                    suggested: None,
                    feed: None,
                })
                .collect(),
        }
    }

    /// The ranking at `now` (a minute's end), best first. Returns, for each
    /// planted topic seen here for the first time, its index and the listed
    /// topic, so the caller can ask the detector for a feed
    /// ([`Self::set_suggested`]).
    pub fn observe(&mut self, now: Timestamp, top: &[Topic]) -> Vec<(usize, Topic)> {
        let mut first = Vec::new();
        for (i, o) in self.outcomes.iter_mut().enumerate() {
            let p = &o.planted;
            if o.sighting.is_some() || now.0 <= p.start.0 || now.0 > p.end.0 {
                continue;
            }
            let Some(rank) = top.iter().position(|t| p.is(t)) else {
                continue;
            };
            let topic = &top[rank];
            o.sighting = Some(EmergingSighting {
                at: now,
                rank: rank + 1,
                minutes_after_start: minutes(p.start, now),
                topic_id: topic.id.to_string(),
                terms: topic.terms.iter().map(|t| t.query_form()).collect(),
            });
            first.push((i, topic.clone()));
        }
        first
    }

    pub fn set_suggested(&mut self, index: usize, feed: Option<SuggestedFeed>) {
        if let Some(o) = self.outcomes.get_mut(index) {
            o.suggested = feed;
        }
    }

    pub fn into_outcomes(self) -> Vec<EmergingOutcome> {
        self.outcomes
    }
}

/// What is known of one labelled group (a crisis) in the data.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupTruth {
    pub posts: u64,
    pub positives: u64,
    pub first_post: Option<Timestamp>,
    pub last_post: Option<Timestamp>,
    pub first_positive: Option<Timestamp>,
}

impl GroupTruth {
    /// Counts one post of the group.
    pub fn add(&mut self, at: Option<Timestamp>, positive: bool) {
        self.posts += 1;
        self.positives += positive as u64;
        if let Some(t) = at {
            self.first_post = Some(self.first_post.map_or(t, |f| f.min(t)));
            self.last_post = Some(self.last_post.map_or(t, |l| l.max(t)));
            if positive {
                self.first_positive = Some(self.first_positive.map_or(t, |f| f.min(t)));
            }
        }
    }
}

/// A group's first positive post against its feed's first alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupOutcome {
    pub group: String,
    #[serde(flatten)]
    pub truth: GroupTruth,
    /// Opened alerts of the group's feed with an onset in the group's span.
    pub alerts: usize,
    /// The first of them.
    pub first_alert: Option<ObservedAlert>,
    /// Its onset minus the first positive post, in minutes.
    pub onset_minutes: Option<f64>,
    /// When it was raised ([`ObservedAlert::raised_at`]) minus the first
    /// positive post, in minutes.
    pub delay_minutes: Option<f64>,
}

/// For each group, the first alert of the feed named after it within the
/// group's span of posts, against its first positive post.
pub fn score_labelled(groups: &BTreeMap<String, GroupTruth>, alerts: &[ObservedAlert]) -> Vec<GroupOutcome> {
    groups
        .iter()
        .map(|(name, truth)| {
            let within = |a: &&ObservedAlert| {
                a.feed == *name
                    && truth
                        .first_post
                        .is_some_and(|f| a.onset.0 >= f.floor(Timestamp::MINUTE).0)
                    && truth.last_post.is_some_and(|l| a.onset <= l)
            };
            let mut mine: Vec<&ObservedAlert> = alerts.iter().filter(within).collect();
            mine.sort_by_key(|a| (a.detected_at, a.onset));
            let first = mine.first().map(|a| (*a).clone());
            let since = |t: Timestamp| truth.first_positive.map(|f| minutes(f, t));
            GroupOutcome {
                group: name.clone(),
                truth: truth.clone(),
                alerts: mine.len(),
                onset_minutes: first.as_ref().and_then(|a| since(a.onset)),
                delay_minutes: first.as_ref().and_then(|a| since(a.raised_at())),
                first_alert: first,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::emerging::TopicTerm;

    const MIN: i64 = Timestamp::MINUTE;

    fn burst(id: &str, topic: &str, start_min: i64, end_min: i64) -> PlantedBurst {
        PlantedBurst {
            id: id.into(),
            topic: topic.into(),
            start: Timestamp(start_min * MIN),
            end: Timestamp(end_min * MIN),
        }
    }

    fn alert(id: &str, feed: &str, onset_min: i64, detected_min: i64) -> ObservedAlert {
        ObservedAlert {
            id: id.into(),
            feed: feed.into(),
            onset: Timestamp(onset_min * MIN),
            detected_at: Timestamp(detected_min * MIN),
            peak_count: 40,
            magnitude: 8.0,
        }
    }

    #[test]
    fn alerts_are_matched_to_bursts_of_their_topic_by_onset() {
        let bursts = [
            burst("burst-001", "weather", 100, 130),
            burst("burst-002", "sports", 200, 215),
            burst("burst-003", "music", 400, 420),
        ];
        let alerts = [
            // Weather: onset one minute before the planted start (within the
            // slack), raised at the end of minute 101: 2 minutes late.
            alert("a1", "weather", 99, 101),
            // A second alert on the same burst: a duplicate.
            alert("a2", "weather", 120, 121),
            // Sports, onset at minute 203, raised at the end of 204: 5 min.
            alert("a3", "sports", 203, 204),
            // Right time, wrong topic: unmatched.
            alert("a4", "music", 205, 206),
            // Right topic, 6 minutes after the burst's end: unmatched.
            alert("a5", "sports", 221, 222),
        ];
        let s = score_spikes(&bursts, &[], &alerts);
        assert_eq!((s.bursts, s.detected, s.alerts), (3, 2, 5));
        assert_eq!((s.matched_alerts, s.duplicates), (3, 1));
        assert_eq!(s.precision, 0.6);
        assert_eq!(s.precision_all, 0.6);
        assert_eq!(s.recall, 2.0 / 3.0);
        assert_eq!(s.median_delay_minutes, Some(3.5));
        assert_eq!(s.max_delay_minutes, Some(5.0));
        assert_eq!(s.per_burst[0].alert.as_deref(), Some("a1"));
        assert_eq!(s.per_burst[0].delay_minutes, Some(2.0));
        assert_eq!(s.per_burst[0].onset_error_minutes, Some(-1));
        assert_eq!(s.per_burst[1].onset_error_minutes, Some(3));
        assert_eq!(s.per_burst[2].alert, None);
        let unmatched: Vec<&str> = s.unmatched.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(unmatched, ["a4", "a5"]);
    }

    #[test]
    fn alerts_on_a_campaign_wave_are_set_apart() {
        let bursts = [burst("burst-001", "weather", 100, 130)];
        let campaigns = [PlantedCampaign {
            id: "copypaste-001".into(),
            kind: "copy_paste".into(),
            topic: "housing".into(),
            waves: vec![
                (Timestamp(300 * MIN), Timestamp(306 * MIN)),
                (Timestamp(500 * MIN), Timestamp(503 * MIN)),
            ],
        }];
        let alerts = [
            alert("a1", "weather", 100, 101),
            alert("wave", "housing", 501, 502),
            // Between two waves: a false alarm.
            alert("between", "housing", 400, 401),
        ];
        let s = score_spikes(&bursts, &campaigns, &alerts);
        assert_eq!(s.campaign_alerts.len(), 1);
        assert_eq!(s.campaign_alerts[0].campaign, "copypaste-001");
        assert_eq!(s.campaign_alerts[0].alert.id, "wave");
        assert_eq!(s.unmatched.len(), 1);
        assert_eq!(s.precision, 0.5);
        assert_eq!(s.precision_all, 1.0 / 3.0);
    }

    #[test]
    fn the_earliest_raised_alert_is_the_detection_whatever_the_input_order() {
        let bursts = [burst("burst-001", "weather", 100, 130)];
        let alerts = [alert("late", "weather", 104, 110), alert("early", "weather", 100, 100)];
        let s = score_spikes(&bursts, &[], &alerts);
        assert_eq!(s.per_burst[0].alert.as_deref(), Some("early"));
        assert_eq!(s.per_burst[0].delay_minutes, Some(1.0));
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.precision, 1.0);
    }

    #[test]
    fn nothing_to_score_gives_zeros_and_no_delay() {
        let s = score_spikes(&[], &[], &[]);
        assert_eq!((s.precision, s.recall), (0.0, 0.0));
        assert_eq!(s.median_delay_minutes, None);
        assert_eq!(s.max_delay_minutes, None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }

    fn topic(id: u64, keys: &[(KeyKind, &str)]) -> Topic {
        let terms = keys
            .iter()
            .map(|(kind, text)| {
                serde_json::from_value::<TopicTerm>(serde_json::json!({
                    "kind": kind, "text": text, "score": 10.0, "count": 5.0,
                    "expected": 0.1, "prior_expected": 0.1, "first_seen": 0
                }))
                .unwrap()
            })
            .collect();
        Topic {
            id: tidewatch_core::emerging::TopicId(id),
            terms,
            score: 10.0,
            first_seen: Timestamp(0),
            posts: 5.0,
            posts_since_first_seen: 5.0,
        }
    }

    fn planted() -> PlantedEmerging {
        PlantedEmerging {
            id: "emerging-001".into(),
            name: "quorvex virus".into(),
            start: Timestamp(600 * MIN),
            end: Timestamp(900 * MIN),
            keys: vec!["quorvex".into(), "quorvexalert".into(), "quorvex.example".into()],
            post_ids: HashSet::new(),
        }
    }

    #[test]
    fn a_planted_topic_is_noted_at_its_first_listing_within_its_span() {
        let mut t = EmergingTracker::new(vec![planted()]);
        let other = topic(1, &[(KeyKind::Term, "ferry")]);
        let ours = topic(2, &[(KeyKind::Bigram, "new quorvex"), (KeyKind::Term, "clinic")]);
        // Before its start: not counted even though listed.
        assert!(t.observe(Timestamp(600 * MIN), std::slice::from_ref(&ours)).is_empty());
        assert!(t.observe(Timestamp(605 * MIN), std::slice::from_ref(&other)).is_empty());
        let first = t.observe(Timestamp(612 * MIN), &[other.clone(), ours.clone()]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0, 0);
        // Only the first sighting counts.
        assert!(t.observe(Timestamp(613 * MIN), &[ours]).is_empty());
        let o = &t.into_outcomes()[0];
        let s = o.sighting.as_ref().unwrap();
        assert_eq!((s.rank, s.minutes_after_start), (2, 12.0));
        assert_eq!(s.terms, ["\"new quorvex\"", "clinic"]);
    }

    #[test]
    fn truth_files_are_read_by_the_fields_scored() {
        let json = br#"{"generator": "x", "seed": 1,
          "topics": [{"name": "weather", "share": 0.1, "query": "rain OR storm", "terms": []}],
          "events": [
            {"id": "burst-001", "kind": "burst", "start": "2026-03-02T03:10:00Z",
             "end": "2026-03-02T03:40:00Z", "topic": "weather", "terms": [], "hashtags": [],
             "links": [], "domains": [], "accounts": [], "size": 10, "params": {}, "post_ids": ["p1"]},
            {"id": "emerging-001", "kind": "emerging_topic", "start": "2026-03-02T09:00:00Z",
             "end": "2026-03-02T15:00:00Z", "topic": "quorvex virus",
             "terms": ["Quorvex virus", "clinic"], "hashtags": ["QuorvexAlert"],
             "domains": ["quorvex.example"], "post_ids": ["p2", "p3"]},
            {"id": "copypaste-001", "kind": "copy_paste", "start": "2026-03-02T09:00:00Z",
             "end": "2026-03-02T09:05:00Z", "topic": "housing"},
            {"id": "other-001", "kind": "something_new", "start": "2026-03-02T09:00:00Z",
             "end": "2026-03-02T09:05:00Z"}
          ]}"#;
        let t = PlantedTruth::from_json(json).unwrap();
        assert_eq!(t.topics[0].query, "rain OR storm");
        assert_eq!(t.bursts, [burst("burst-001", "weather", 29_540_350, 29_540_380)]);
        assert_eq!(t.emerging.len(), 1);
        assert_eq!(t.campaigns.len(), 1);
        assert_eq!(
            t.campaigns[0].waves,
            [(Timestamp(29_540_700 * MIN), Timestamp(29_540_705 * MIN))]
        );
        let e = &t.emerging[0];
        assert_eq!(e.keys, ["quorvex", "quorvexalert", "quorvex.example"]);
        assert_eq!(e.post_ids.len(), 2);
        assert!(PlantedTruth::from_json(b"[]").is_err());
    }

    #[test]
    fn labelled_groups_take_the_first_alert_of_their_feed_in_their_span() {
        let mut groups = BTreeMap::new();
        let mut flood = GroupTruth::default();
        flood.add(Some(Timestamp(1_000 * MIN + 30_000)), false);
        flood.add(Some(Timestamp(1_010 * MIN)), true);
        flood.add(Some(Timestamp(1_500 * MIN)), true);
        flood.add(None, true);
        groups.insert("flood".to_string(), flood);
        groups.insert("quake".to_string(), GroupTruth::default());
        let alerts = [
            // Before the group's first post (another crisis): not counted.
            alert("early", "flood", 900, 901),
            alert("second", "flood", 1_200, 1_203),
            alert("first", "flood", 1_100, 1_104),
            alert("other", "quake", 1_100, 1_101),
        ];
        let out = score_labelled(&groups, &alerts);
        assert_eq!(out.len(), 2);
        let f = &out[0];
        assert_eq!((f.truth.posts, f.truth.positives), (4, 3));
        assert_eq!(f.truth.first_positive, Some(Timestamp(1_010 * MIN)));
        assert_eq!(f.alerts, 2);
        assert_eq!(f.first_alert.as_ref().map(|a| a.id.as_str()), Some("first"));
        assert_eq!(f.onset_minutes, Some(90.0));
        assert_eq!(f.delay_minutes, Some(95.0));
        let q = &out[1];
        assert_eq!((q.alerts, q.first_alert.clone(), q.delay_minutes), (0, None, None));
    }
}
