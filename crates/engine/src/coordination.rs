//! Coordinated groups in a run: accounts acting in concert, found while
//! the stream goes on, and kept in the store with their evidence.
//!
//! A [`CoordinationWatch`] holds the streaming coordination network of
//! `tidewatch_core::coordination`. A run's sink hands it every matched
//! post in input order, with the narrative the post joined by its text;
//! the watch pairs it with the recent posts sharing a key (narrative,
//! link, reposted or replied-to post, rare hashtag set). Every
//! [`REPORT_EVERY_MS`] of event time, and when a pseudonym epoch closes,
//! the network's groups are taken and recorded as [`GroupRecord`]s: the
//! member pseudonyms, the strong edges between them, and the evidence (the
//! pseudonymised ids and times of the posts that tie them).
//!
//! - **k**: a group is recorded only with at least `k` distinct accounts
//!   (`k` ≥ [`MIN_K`] = 5). The core never returns smaller groups; this
//!   layer checks again, [`current_groups`] checks on reading, and the
//!   store's table refuses a row under 5 accounts. Nothing here answers a
//!   question about one account.
//! - **Stable ids**: the core names a group by the hash of its members, so
//!   a campaign that gains a member would get a new id at each report.
//!   Within an epoch, a group takes the id of the earlier group it shares
//!   the most members with (the best-scored group first, each id once per
//!   report), and its record is updated in place; a group joining two
//!   earlier ones keeps one id, and the other record stays as it was last
//!   seen. Pseudonyms change with the epoch, so ids do too.
//! - **Pending records** wait in the watch until the sink takes them for
//!   the next store commit ([`CoordinationWatch::take_pending`]).

use crate::run::MatchedPost;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use tidewatch_core::coordination::{
    ConfigError, CoordPost, CoordinationConfig, CoordinationStats, Coordinator, EdgeType, Group, MIN_K,
};
use tidewatch_core::narrative::NarrativeId;
use tidewatch_core::Timestamp;
use tidewatch_store::db::{CoordinationGroupRow, Db};
use tidewatch_store::StoreError;

/// Event time between two reports of the network's groups.
pub const REPORT_EVERY_MS: i64 = 5 * Timestamp::MINUTE;

/// A strong edge between two members, by their index in
/// [`GroupRecord::accounts`] (`a < b`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEdge {
    pub a: usize,
    pub b: usize,
    /// Coincidences per type (`co-post`, ...), types with none left out.
    pub weights: BTreeMap<String, u32>,
    pub total: u32,
}

/// One coincidence: the two posts (pseudonymised ids) that tie two
/// members, and their times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEvidence {
    #[serde(rename = "type")]
    pub kind: String,
    pub posts: [String; 2],
    pub times: [Timestamp; 2],
}

/// A coordinated group as recorded in the store: an aggregate finding
/// about a campaign (see [`Group`] for the meaning of each figure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// 16 hex digits; stable while the group grows within its epoch.
    pub id: String,
    /// The pseudonym epoch of its members.
    pub epoch: i64,
    /// First and last coincidence (event time).
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Member pseudonyms, sorted (at least k).
    pub accounts: Vec<String>,
    pub edges: Vec<RecordEdge>,
    pub density: f64,
    pub total_weight: u64,
    pub weight_by_type: BTreeMap<String, u64>,
    pub types: Vec<String>,
    pub time_compression: f64,
    pub score: f64,
    /// Narratives the members co-posted (16 hex digits each).
    pub narratives: Vec<String>,
    /// A capped sample of coincidences, heaviest edges first.
    pub evidence: Vec<RecordEvidence>,
}

impl GroupRecord {
    /// The record of a core group, under `id`, in `epoch`.
    pub fn from_group(g: &Group, id: String, epoch: i64) -> GroupRecord {
        let by_type = |w: &[u32; EdgeType::COUNT]| -> BTreeMap<String, u32> {
            EdgeType::ALL
                .into_iter()
                .filter(|t| w[t.index()] > 0)
                .map(|t| (t.name().to_string(), w[t.index()]))
                .collect()
        };
        GroupRecord {
            id,
            epoch,
            first_seen: Timestamp(g.first_ms),
            last_seen: Timestamp(g.last_ms),
            accounts: g.accounts.clone(),
            edges: g
                .edges
                .iter()
                .map(|e| RecordEdge {
                    a: e.a,
                    b: e.b,
                    weights: by_type(&e.weights),
                    total: e.total,
                })
                .collect(),
            density: g.density,
            total_weight: g.total_weight,
            weight_by_type: EdgeType::ALL
                .into_iter()
                .filter(|t| g.weight_by_type[t.index()] > 0)
                .map(|t| (t.name().to_string(), g.weight_by_type[t.index()]))
                .collect(),
            types: g.types.iter().map(|t| t.name().to_string()).collect(),
            time_compression: g.time_compression,
            score: g.score,
            narratives: g.narratives.iter().map(NarrativeId::to_string).collect(),
            evidence: g
                .evidence
                .iter()
                .map(|e| RecordEvidence {
                    kind: e.kind.name().to_string(),
                    posts: [e.posts[0].to_string(), e.posts[1].to_string()],
                    times: [Timestamp(e.times[0]), Timestamp(e.times[1])],
                })
                .collect(),
        }
    }

    /// One line for a terminal: figures only, no pseudonym.
    pub fn summary(&self) -> String {
        format!(
            "GROUP {}: {} accounts, types {}, density {:.2}, weight {}, {} → {}",
            self.id,
            self.accounts.len(),
            self.types.join(","),
            self.density,
            self.total_weight,
            self.first_seen,
            self.last_seen
        )
    }

    /// The row the store keeps.
    pub fn to_row(&self) -> CoordinationGroupRow {
        CoordinationGroupRow {
            id: self.id.clone(),
            epoch: self.epoch,
            first_seen_ms: self.first_seen.0,
            last_seen_ms: self.last_seen.0,
            accounts: self.accounts.len() as i64,
            score: self.score,
            types: self.types.join(","),
            record: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// The coordination network of a run and the group records it produced;
/// see the module docs. It serialises to its state (see
/// [`crate::state`]).
#[derive(Serialize, Deserialize)]
pub struct CoordinationWatch {
    coordinator: Coordinator,
    k: usize,
    epoch_ms: i64,
    /// Event time of the last report.
    reported_at: Option<i64>,
    /// The newest event time seen.
    now: Option<i64>,
    /// Pseudonym → the stable id of the group it was last recorded in
    /// (current epoch only).
    member_of: HashMap<String, String>,
    /// Every group id recorded (by this run or, from the store, an
    /// earlier one), with its epoch: a group is announced once. Ids of a
    /// closed epoch are forgotten (its pseudonyms, hence ids, never recur).
    known: HashMap<String, i64>,
    /// Records changed since the last [`Self::take_pending`], by id (not
    /// saved: a run takes them before it saves).
    #[serde(skip)]
    pending: BTreeMap<String, GroupRecord>,
}

impl CoordinationWatch {
    /// A watch with an empty network. Refuses `k` < 5 (and any other
    /// invalid setting).
    pub fn new(config: CoordinationConfig) -> Result<CoordinationWatch, ConfigError> {
        let k = config.k.max(MIN_K);
        let epoch_ms = config.epoch_ms;
        Ok(CoordinationWatch {
            coordinator: Coordinator::new(config)?,
            k,
            epoch_ms,
            reported_at: None,
            now: None,
            member_of: HashMap::new(),
            known: HashMap::new(),
            pending: BTreeMap::new(),
        })
    }

    /// A watch that remembers the group ids the store holds, so a
    /// restarted run does not announce them again.
    pub fn open(config: CoordinationConfig, db: &Db) -> Result<CoordinationWatch, OpenError> {
        let mut watch = CoordinationWatch::new(config)?;
        watch.known = db
            .coordination_groups(None)?
            .into_iter()
            .map(|r| (r.id, r.epoch))
            .collect();
        Ok(watch)
    }

    pub fn config(&self) -> &CoordinationConfig {
        self.coordinator.config()
    }

    /// The network's counters and sizes.
    pub fn stats(&self) -> CoordinationStats {
        self.coordinator.stats()
    }

    /// Feeds one post (in input order) with the narrative it joined by its
    /// text (`None` for reposts, short texts, or without narratives).
    /// Returns the groups recorded for the first time at this post
    /// (usually none).
    pub fn post(&mut self, m: &MatchedPost, narrative: Option<NarrativeId>) -> Vec<GroupRecord> {
        if let Some(view) = CoordPost::from_post(&m.post, narrative) {
            self.now = Some(self.now.map_or(view.time_ms, |n| n.max(view.time_ms)));
            self.coordinator.observe(&view);
        }
        if let Some((epoch, groups)) = self.coordinator.close_epoch(false) {
            let new = self.record(&groups, Some(epoch));
            // The epoch's pseudonyms will not be seen again.
            self.member_of.clear();
            self.known.retain(|_, e| *e > epoch);
            self.reported_at = self.now;
            return new;
        }
        let Some(now) = self.now else {
            return Vec::new();
        };
        match self.reported_at {
            None => {
                self.reported_at = Some(now);
                Vec::new()
            }
            Some(at) if now.saturating_sub(at) >= REPORT_EVERY_MS => {
                self.reported_at = Some(now);
                let groups = self.coordinator.groups();
                self.record(&groups, None)
            }
            Some(_) => Vec::new(),
        }
    }

    /// Reports the network as it stands at the end of a run, under its
    /// open epoch; returns the groups recorded for the first time. The
    /// network is kept, so a run that saves it afterwards
    /// ([`crate::state`]) can be continued.
    pub fn finish(&mut self) -> Vec<GroupRecord> {
        let groups = self.coordinator.groups();
        self.record(&groups, self.coordinator.open_epoch())
    }

    /// Records `groups` (best score first, as the core sorts them) under
    /// stable ids; returns those never recorded before.
    fn record(&mut self, groups: &[Group], epoch: Option<i64>) -> Vec<GroupRecord> {
        let mut new = Vec::new();
        let mut used: HashSet<String> = HashSet::new();
        for g in groups {
            // Checked again here: nothing under k leaves this module.
            if g.accounts.len() < self.k {
                continue;
            }
            let mut votes: HashMap<&str, usize> = HashMap::new();
            for a in &g.accounts {
                if let Some(id) = self.member_of.get(a) {
                    *votes.entry(id.as_str()).or_default() += 1;
                }
            }
            let earlier = votes
                .into_iter()
                .filter(|(id, _)| !used.contains(*id))
                .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(x.0)))
                .map(|(id, _)| id.to_string());
            let id = match earlier {
                Some(id) => id,
                None if used.contains(&g.id) => continue,
                None => g.id.clone(),
            };
            used.insert(id.clone());
            let epoch = epoch.unwrap_or_else(|| g.first_ms.div_euclid(self.epoch_ms));
            let rec = GroupRecord::from_group(g, id.clone(), epoch);
            for a in &g.accounts {
                self.member_of.insert(a.clone(), id.clone());
            }
            if self.known.insert(id.clone(), epoch).is_none() {
                new.push(rec.clone());
            }
            self.pending.insert(id, rec);
        }
        new
    }

    /// The records changed since the last call, as rows for the store.
    pub fn take_pending(&mut self) -> Vec<CoordinationGroupRow> {
        std::mem::take(&mut self.pending)
            .into_values()
            .map(|r| r.to_row())
            .collect()
    }

    /// The records changed since the last call (for callers without a
    /// store: `tidewatch coordination --input`, evaluations).
    pub fn take_pending_records(&mut self) -> Vec<GroupRecord> {
        std::mem::take(&mut self.pending).into_values().collect()
    }
}

/// Why [`CoordinationWatch::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The groups recorded in the store, highest score first; with `since`,
/// only those whose last coincidence is at or after it. A row that cannot
/// be read, or that holds fewer than [`MIN_K`] accounts, is skipped.
pub fn current_groups(db: &Db, since: Option<Timestamp>) -> Result<Vec<GroupRecord>, StoreError> {
    Ok(db
        .coordination_groups(since.map(|t| t.0))?
        .into_iter()
        .filter_map(|row| {
            let mut rec: GroupRecord = serde_json::from_str(&row.record).ok()?;
            rec.first_seen = Timestamp(row.first_seen_ms);
            rec.last_seen = Timestamp(row.last_seen_ms);
            (rec.accounts.len() >= MIN_K).then_some(rec)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_core::entities;
    use tidewatch_core::Post;
    use tidewatch_store::db::CommitDelta;

    /// A post by `author` at `t` seconds sharing `link`, entities filled.
    fn matched(id: &str, author: &str, t: i64, link: &str) -> MatchedPost {
        let mut post = Post {
            id: id.into(),
            platform: "x".into(),
            author: Some(author.into()),
            created_at: Some(Timestamp(1_700_000_000_000 + t * 1000)),
            text: format!("look {link}"),
            ..Default::default()
        };
        let mut spans = Vec::new();
        entities::scan_into(&post.text, &mut spans);
        post.entities = Some(entities::extract(&post.text, &spans));
        MatchedPost {
            post,
            feeds: Vec::new(),
            version: 0,
            terms: String::new(),
        }
    }

    /// `n` accounts sharing the same link within seconds, `rounds` times
    /// (each round a new link), starting at `t0` seconds.
    fn campaign(prefix: &str, n: usize, rounds: usize, t0: i64) -> Vec<MatchedPost> {
        let mut v = Vec::new();
        for r in 0..rounds {
            for a in 0..n {
                v.push(matched(
                    &format!("{prefix}-p{r}-{a}"),
                    &format!("{prefix}-acct{a}"),
                    t0 + r as i64 * 600 + a as i64,
                    &format!("https://news.example/{prefix}/story{r}"),
                ));
            }
        }
        v
    }

    #[test]
    fn only_groups_of_k_accounts_are_recorded_stored_and_read_back() {
        let mut watch = CoordinationWatch::new(CoordinationConfig::default()).unwrap();
        // A ring of 3 and a ring of 6 accounts, three rounds each.
        let mut posts = campaign("small", 3, 3, 0);
        posts.extend(campaign("big", 6, 3, 5));
        posts.sort_by_key(|m| m.post.created_at);
        let mut announced = Vec::new();
        for m in &posts {
            announced.extend(watch.post(m, None));
        }
        announced.extend(watch.finish());
        assert_eq!(announced.len(), 1, "{announced:?}");
        // Announced at the first report after its second round (weight 2),
        // then updated in place until the end.
        assert_eq!(announced[0].total_weight, 30);
        let rows = watch.take_pending();
        assert_eq!(rows.len(), 1);
        assert!(watch.take_pending().is_empty(), "taken once");
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db")).unwrap();
        db.commit(
            1,
            &CommitDelta {
                coordination_groups: rows,
                ..Default::default()
            },
        )
        .unwrap();
        let stored = current_groups(&db, None).unwrap();
        assert_eq!(stored.len(), 1);
        let g = &stored[0];
        assert_eq!(g.id, announced[0].id);
        assert_eq!(g.accounts.len(), 6);
        assert!(g.accounts.iter().all(|a| a.starts_with("big-")));
        assert_eq!(g.types, vec!["co-link".to_string()]);
        // Six accounts pairwise tied by three links each: 15 edges of weight 3.
        assert_eq!(g.edges.len(), 15);
        assert!(g.edges.iter().all(|e| e.total == 3 && e.a < e.b), "{:?}", g.edges);
        assert_eq!(g.total_weight, 45);
        assert!(!g.evidence.is_empty());
        assert!(g
            .evidence
            .iter()
            .all(|e| e.posts.iter().all(|p| p.starts_with("big-p"))));
        assert!(current_groups(&db, Some(Timestamp(g.last_seen.0 + 1)))
            .unwrap()
            .is_empty());

        // The table itself refuses a group under 5 accounts.
        let mut small = g.to_row();
        small.id = "0000000000000001".into();
        small.accounts = 4;
        let refused = db.commit(
            2,
            &CommitDelta {
                coordination_groups: vec![small],
                ..Default::default()
            },
        );
        assert!(refused.is_err());

        // A restarted watch does not announce the stored group again.
        let mut reopened = CoordinationWatch::open(CoordinationConfig::default(), &db).unwrap();
        let mut again = Vec::new();
        for m in &posts {
            again.extend(reopened.post(m, None));
        }
        again.extend(reopened.finish());
        assert!(again.is_empty());
    }

    #[test]
    fn a_growing_group_keeps_its_id() {
        let mut watch = CoordinationWatch::new(CoordinationConfig::default()).unwrap();
        // Five accounts for three rounds, then a sixth joins for three more,
        // each round 10 minutes apart so the watch reports in between.
        let mut posts = campaign("ring", 5, 3, 0);
        for m in campaign("ring", 6, 6, 0).into_iter().skip(18) {
            posts.push(m);
        }
        let mut announced = Vec::new();
        for m in &posts {
            announced.extend(watch.post(m, None));
        }
        announced.extend(watch.finish());
        assert_eq!(announced.len(), 1, "announced once");
        let pending = watch.take_pending_records();
        assert_eq!(pending.len(), 1, "one record, updated in place");
        assert_eq!(pending[0].id, announced[0].id);
        assert_eq!(announced[0].accounts.len(), 5);
        assert_eq!(pending[0].accounts.len(), 6);
    }

    #[test]
    fn group_ids_of_a_closed_epoch_are_forgotten() {
        let mut watch = CoordinationWatch::new(CoordinationConfig::default()).unwrap();
        let mut announced = Vec::new();
        for m in &campaign("ring", 6, 3, 0) {
            announced.extend(watch.post(m, None));
        }
        assert_eq!((announced.len(), watch.known.len()), (1, 1));
        // A post two days later closes the campaign's epoch.
        let later = matched("late-p", "late-acct", 2 * 86_400, "https://news.example/late");
        announced.extend(watch.post(&later, None));
        assert!(watch.known.is_empty(), "{:?}", watch.known);
        assert_eq!(announced.len(), 1, "announced once");
    }

    #[test]
    fn k_under_five_is_refused() {
        let cfg = CoordinationConfig {
            k: 4,
            ..Default::default()
        };
        assert!(CoordinationWatch::new(cfg).is_err());
    }
}
