//! Coordinated behaviour: streaming coordination networks between
//! pseudonymous accounts, and the groups they form.
//!
//! The idea: accounts acting in concert do the same thing at nearly the
//! same moment, again and again — they post the same text, share the same
//! link, repost or reply to the same post within seconds of each other.
//! One such coincidence means little (two people retweet a viral post in
//! the same minute); the same pair coinciding repeatedly, inside a dense
//! cluster of at least five accounts, is a campaign.
//!
//! - **Keys** ([`EdgeType`]): each post is looked up under the keys it
//!   has: its narrative ([`crate::narrative`]: near-identical text,
//!   co-post), each normalised link with a path (co-link), the post it
//!   reposts (co-repost), the post it replies to (co-reply), and the set of
//!   its *rare* hashtags when it has at least two (co-hashtag; rarity is a
//!   decayed count-min frequency below a threshold, so perennial tags do not
//!   pair everyone). A repost is keyed only by what it reposts: its text,
//!   links and tags are the original's, and counting them again would turn
//!   one coincidence into several.
//! - **Pairing, streaming and sub-quadratic**: per (type, key) the recent
//!   (account, post, time) within the type's window Δ (default 60 s) are
//!   kept; a new post is paired with the other accounts there whose post
//!   is within Δ. A key used by more than `max_fanout` accounts within Δ
//!   is *saturated*: that is organic virality (a popular post reposted by
//!   hundreds a minute, a link everyone shares), not a campaign, whose
//!   members coincide with each other far more than with the crowd. A
//!   saturated key pairs no one (the posts and pairings skipped are
//!   counted in [`CoordinationStats`]) until its posts within Δ are back
//!   to `max_fanout` or fewer; a campaign riding on a viral key still
//!   shows through its other keys. This bounds the pairings per post by
//!   `max_fanout`, and a viral key costs a constant per post. A post
//!   whose author used the same key within Δ before pairs with no one: all
//!   the posts near it were near the earlier one too and already paired
//!   with it, so repeating a key (reposting twice) is not a new
//!   coincidence. A key unused for Δ expires. Each pairing adds 1 to the edge's weight for
//!   that type, so a pair's weight counts coincidences, and the edge keeps
//!   the first `evidence_cap` of them (both post ids and times) as evidence.
//! - **Groups** ([`Group`]): connected components of the edges whose total
//!   weight (all types together) is at least `min_weight`, after peeling
//!   accounts with fewer than `min_degree` such edges, scored by size,
//!   density, total weight and time compression. Only groups with at least
//!   `k` distinct accounts are ever returned; `k` is at least [`MIN_K`] = 5
//!   and a configuration asking for less is refused. Member pseudonyms
//!   appear only inside a group: there is no query by account.
//! - **Memory**: keys live for Δ, edges for `edge_ttl_ms` after their last
//!   coincidence (default one pseudonym epoch, 24 h), and each map has a cap
//!   beyond which the least recently used entries are evicted (counted).
//!   Pseudonyms change with each epoch ([`crate::pseudonym`]), so an edge
//!   cannot outlive its epoch in any useful way; [`Coordinator::close_epoch`]
//!   reports the groups of an epoch once it is over (plus the longest Δ,
//!   for late pairs) and forgets every edge last seen before its end,
//!   and [`Coordinator::forget_before`] drops anything older than a time.
//! - **Compatibility** ([`cnt`]): the coordination-network-toolkit's exact
//!   edge semantics, as a batch function, for checking against that tool.

pub mod cnt;
pub mod eval;
mod groups;
mod rarity;

#[cfg(test)]
mod tests;

pub use groups::{Group, GroupEdge};

use crate::narrative::NarrativeId;
use crate::post::Post;
use rarity::TagRarity;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// The least `k` (distinct accounts in a group) that may be configured.
pub const MIN_K: usize = 5;

/// The kinds of coincidence that tie two accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeType {
    /// Near-identical text (the same narrative), not a repost.
    CoPost,
    /// The same normalised link.
    CoLink,
    /// A repost of the same post.
    CoRepost,
    /// A reply to the same post.
    CoReply,
    /// The same set of at least two rare hashtags.
    CoHashtag,
}

impl EdgeType {
    pub const COUNT: usize = 5;
    pub const ALL: [EdgeType; EdgeType::COUNT] = [
        EdgeType::CoPost,
        EdgeType::CoLink,
        EdgeType::CoRepost,
        EdgeType::CoReply,
        EdgeType::CoHashtag,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// `co-post`, `co-link`, ...
    pub fn name(self) -> &'static str {
        match self {
            EdgeType::CoPost => "co-post",
            EdgeType::CoLink => "co-link",
            EdgeType::CoRepost => "co-repost",
            EdgeType::CoReply => "co-reply",
            EdgeType::CoHashtag => "co-hashtag",
        }
    }

    /// Parses a name as given by [`EdgeType::name`].
    pub fn from_name(s: &str) -> Option<EdgeType> {
        EdgeType::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// Settings of a [`Coordinator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoordinationConfig {
    /// Window Δ per type, indexed by [`EdgeType::index`] (default 60 s each).
    pub window_ms: [i64; EdgeType::COUNT],
    /// Types looked at (default all).
    pub enabled: [bool; EdgeType::COUNT],
    /// Most accounts a new post is paired with per key; a key with more
    /// accounts within Δ is saturated and pairs no one (default 50).
    pub max_fanout: usize,
    /// Most recent posts kept per key (default 500).
    pub max_recent_per_key: usize,
    /// Most live keys per type (default 1 000 000).
    pub max_keys: usize,
    /// Most edges (default 2 000 000).
    pub max_edges: usize,
    /// An edge not refreshed for this long is dropped (default 24 h).
    pub edge_ttl_ms: i64,
    /// Pseudonym epoch length, as in [`crate::pseudonym::PseudonymConfig`]
    /// (default 24 h); used by [`Coordinator::close_epoch`].
    pub epoch_ms: i64,
    /// Evidence events kept per edge (default 4).
    pub evidence_cap: usize,
    /// Least total edge weight for an edge to join a group (default 2).
    pub min_weight: u32,
    /// Least strong edges of a group member (default 2; see [`Group`]).
    pub min_degree: usize,
    /// Least distinct accounts in a returned group (default and minimum 5).
    pub k: usize,
    /// A hashtag is rare while its decayed count is below this (default 50).
    pub rare_hashtag_below: f64,
    /// Half-life of hashtag counts (default 1 h).
    pub hashtag_half_life_ms: i64,
}

impl Default for CoordinationConfig {
    fn default() -> Self {
        CoordinationConfig {
            window_ms: [60_000; EdgeType::COUNT],
            enabled: [true; EdgeType::COUNT],
            max_fanout: 50,
            max_recent_per_key: 500,
            max_keys: 1_000_000,
            max_edges: 2_000_000,
            edge_ttl_ms: 24 * 3600 * 1000,
            epoch_ms: 24 * 3600 * 1000,
            evidence_cap: 4,
            min_weight: 2,
            min_degree: 2,
            k: MIN_K,
            rare_hashtag_below: 50.0,
            hashtag_half_life_ms: 3600 * 1000,
        }
    }
}

/// An invalid [`CoordinationConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("k must be at least {MIN_K} (got {0}): smaller groups are never shown")]
    KTooSmall(usize),
    #[error("windows must be positive (got {0} ms)")]
    Window(i64),
    #[error("edge ttl and epoch must be positive")]
    Lifetime,
    #[error("caps (fan-out, recent posts, keys, edges) must be at least 1")]
    Caps,
    #[error("min weight must be at least 1")]
    MinWeight,
    #[error("rare hashtag threshold must be positive")]
    Rarity,
}

impl CoordinationConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.k < MIN_K {
            return Err(ConfigError::KTooSmall(self.k));
        }
        if let Some(&w) = self.window_ms.iter().find(|&&w| w <= 0) {
            return Err(ConfigError::Window(w));
        }
        if self.edge_ttl_ms <= 0 || self.epoch_ms <= 0 || self.hashtag_half_life_ms <= 0 {
            return Err(ConfigError::Lifetime);
        }
        if self.max_fanout == 0 || self.max_recent_per_key == 0 || self.max_keys == 0 || self.max_edges == 0 {
            return Err(ConfigError::Caps);
        }
        if self.min_weight == 0 {
            return Err(ConfigError::MinWeight);
        }
        if self.rare_hashtag_below.is_nan() || self.rare_hashtag_below <= 0.0 {
            return Err(ConfigError::Rarity);
        }
        Ok(())
    }

    /// The same window for every type.
    pub fn with_window(mut self, ms: i64) -> Self {
        self.window_ms = [ms; EdgeType::COUNT];
        self
    }
}

/// What the coordinator needs of one post (see [`CoordPost::from_post`]).
#[derive(Clone, Copy, Debug)]
pub struct CoordPost<'a> {
    /// The pseudonymised author.
    pub author: &'a str,
    /// The (pseudonymised) post id.
    pub id: &'a str,
    pub time_ms: i64,
    /// The post's narrative, if it joined one by its text (not for reposts).
    pub narrative: Option<NarrativeId>,
    /// Normalised links (as in [`crate::Entities::links`]).
    pub links: &'a [String],
    pub repost_of: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    /// Hashtags, lower case without `#` (as in [`crate::Entities::hashtags`]).
    pub hashtags: &'a [String],
}

impl<'a> CoordPost<'a> {
    /// The view of an enriched, pseudonymised post. `narrative` is what
    /// [`crate::narrative::Narratives::observe`] returned for it; it is
    /// ignored for reposts. `None` for a post without author or time.
    pub fn from_post(post: &'a Post, narrative: Option<NarrativeId>) -> Option<CoordPost<'a>> {
        let author = post.author.as_deref()?;
        let time_ms = post.created_at?.0;
        let (links, hashtags): (&[String], &[String]) = match &post.entities {
            Some(e) => (&e.links, &e.hashtags),
            None => (&[], &[]),
        };
        Some(CoordPost {
            author,
            id: &post.id,
            time_ms,
            narrative: if post.repost_of.is_some() { None } else { narrative },
            links,
            repost_of: post.repost_of.as_deref(),
            reply_to: post.reply_to.as_deref(),
            hashtags,
        })
    }
}

/// One coincidence kept as evidence: the two posts that tie an edge's
/// accounts (`posts[0]` by the edge's first account, in [`GroupEdge`]
/// order), their times, and the type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(rename = "type")]
    pub kind: EdgeType,
    #[serde(serialize_with = "posts_as_strs")]
    pub posts: [Arc<str>; 2],
    pub times: [i64; 2],
}

fn posts_as_strs<S: serde::Serializer>(p: &[Arc<str>; 2], s: S) -> Result<S::Ok, S::Error> {
    [&*p[0], &*p[1]].serialize(s)
}

/// Counters and sizes, for metrics and memory checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinationStats {
    pub observed: u64,
    /// Posts without author or time, or without any key.
    pub keyless: u64,
    /// Pairings made, per type.
    pub pairings: [u64; EdgeType::COUNT],
    /// Pairings not made because the key was saturated: for each such
    /// post, the key's other posts within Δ (an upper bound on the
    /// accounts it would have been paired with).
    pub capped_pairings: u64,
    /// Keys that became saturated (more than `max_fanout` accounts within
    /// Δ), and posts that paired with no one because of it.
    pub saturated_keys: u64,
    pub saturated_posts: u64,
    /// Recent posts dropped from a key beyond `max_recent_per_key`.
    pub recent_dropped: u64,
    pub keys: usize,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub edges: usize,
    pub expired_edges: u64,
    pub evicted_edges: u64,
    /// Pseudonyms held (accounts in at least one edge).
    pub accounts: usize,
    /// Approximate bytes held.
    pub approx_bytes: usize,
}

/// A recent post under a key.
#[derive(Serialize, Deserialize)]
struct Recent {
    account: u64,
    name: Arc<str>,
    post: Arc<str>,
    t: i64,
}

/// The recent posts of one key.
#[derive(Serialize, Deserialize)]
struct KeyState {
    recent: VecDeque<Recent>,
    last: i64,
    /// More than `max_fanout` accounts used the key within Δ: it pairs no
    /// one until its posts within Δ are back to `max_fanout` or fewer.
    saturated: bool,
}

/// An undirected edge; `a < b` by account hash.
#[derive(Serialize, Deserialize)]
struct Edge {
    weights: [u32; EdgeType::COUNT],
    first: i64,
    last: i64,
    /// Sum over coincidences of |t_a − t_b| / Δ_type.
    gap_frac_sum: f32,
    evidence: Vec<Evidence>,
    narratives: Vec<NarrativeId>,
}

/// Account hash → (pseudonym, number of edges holding it).
type Accounts = HashMap<u64, (Arc<str>, u32), BuildHasherDefault<MixHasher>>;

/// Most narrative ids kept per edge.
const NARRATIVES_PER_EDGE: usize = 4;

/// The streaming coordination network. See the module doc.
///
/// It serialises (serde) to its whole state, so a run that stops can save
/// it and the next one go on from it; the scratch buffers are not saved.
#[derive(Serialize, Deserialize)]
pub struct Coordinator {
    cfg: CoordinationConfig,
    keys: [Timed<KeyState, u64>; EdgeType::COUNT],
    edges: Timed<Edge, (u64, u64)>,
    /// Account hash → (pseudonym, number of edges holding it).
    accounts: Accounts,
    rarity: TagRarity,
    now: Option<i64>,
    /// The epoch whose end [`Coordinator::close_epoch`] waits for.
    open_epoch: Option<i64>,
    stats: CoordinationStats,
    /// Accounts already paired with the current post under the current key.
    #[serde(skip)]
    paired: Vec<u64>,
    /// Their posts' places in the key's recent posts.
    #[serde(skip)]
    matched: Vec<usize>,
    #[serde(skip)]
    tags: Vec<u64>,
}

impl Coordinator {
    pub fn new(cfg: CoordinationConfig) -> Result<Coordinator, ConfigError> {
        cfg.validate()?;
        Ok(Coordinator {
            keys: std::array::from_fn(|_| Timed::new(cfg.max_keys)),
            edges: Timed::new(cfg.max_edges),
            accounts: HashMap::default(),
            rarity: TagRarity::new(cfg.hashtag_half_life_ms),
            now: None,
            open_epoch: None,
            stats: CoordinationStats::default(),
            paired: Vec::new(),
            matched: Vec::new(),
            tags: Vec::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &CoordinationConfig {
        &self.cfg
    }

    /// Pairs `post` with the recent posts sharing one of its keys.
    pub fn observe(&mut self, post: &CoordPost<'_>) {
        self.stats.observed += 1;
        let t = post.time_ms;
        let now = self.now.map_or(t, |n| n.max(t));
        self.now = Some(now);
        if self.open_epoch.is_none() {
            self.open_epoch = Some(t.div_euclid(self.cfg.epoch_ms));
        }
        self.expire(now);

        let account = hash_str(post.author, 0);
        let mut name: Option<Arc<str>> = None;
        let mut id: Option<Arc<str>> = None;
        let mut keyed = false;
        let mut visit = |c: &mut Coordinator, kind: EdgeType, key: u64| {
            if !c.cfg.enabled[kind.index()] {
                return;
            }
            keyed = true;
            let me = Side {
                account,
                name: name.get_or_insert_with(|| Arc::from(post.author)),
                post: id.get_or_insert_with(|| Arc::from(post.id)),
                t,
            };
            c.pair(kind, key, me, post.narrative);
        };
        if let Some(r) = post.repost_of {
            visit(self, EdgeType::CoRepost, hash_str(r, 1));
        } else {
            if let Some(n) = post.narrative {
                visit(self, EdgeType::CoPost, n.0 ^ 0x636f_706f_7374);
            }
            for (i, l) in post.links.iter().enumerate() {
                // Homepage links (no path) say little; a link twice in one
                // post counts once.
                if has_path(l) && !post.links[..i].contains(l) {
                    visit(self, EdgeType::CoLink, hash_str(l, 2));
                }
            }
            if let Some(key) = self.rare_tag_key(post.hashtags, t) {
                visit(self, EdgeType::CoHashtag, key);
            }
        }
        if let Some(r) = post.reply_to {
            visit(self, EdgeType::CoReply, hash_str(r, 3));
        }
        if !keyed {
            self.stats.keyless += 1;
        }
        self.keys.iter_mut().for_each(Timed::enforce_key_cap);
        self.enforce_edge_cap();
    }

    /// The key of a post's rare hashtags, if it has at least two; counts
    /// its tags into the rarity sketch either way.
    fn rare_tag_key(&mut self, hashtags: &[String], t: i64) -> Option<u64> {
        if hashtags.is_empty() {
            return None;
        }
        self.tags.clear();
        for h in hashtags {
            let hash = hash_str(h, 4);
            if self.tags.contains(&hash) {
                continue;
            }
            let rare = self.rarity.estimate(hash, t) < self.cfg.rare_hashtag_below;
            self.rarity.add(hash, t);
            if rare {
                self.tags.push(hash);
            }
        }
        if self.tags.len() < 2 {
            return None;
        }
        self.tags.sort_unstable();
        let mut h = MixHasher::default();
        self.tags.hash(&mut h);
        Some(h.finish())
    }

    /// Pairs the current post with the key's recent posts and records it.
    fn pair(&mut self, kind: EdgeType, key: u64, me: Side<'_>, narrative: Option<NarrativeId>) {
        let Coordinator {
            cfg,
            keys,
            edges,
            accounts,
            now,
            stats,
            paired,
            matched,
            ..
        } = self;
        let (window, t) = (cfg.window_ms[kind.index()], me.t);
        let state = keys[kind.index()].get_or_insert_with(key, t, || KeyState {
            recent: VecDeque::new(),
            last: t,
            saturated: false,
        });
        state.last = state.last.max(t);
        let cutoff = now.unwrap_or(t) - window;
        while state.recent.front().is_some_and(|r| r.t < cutoff) {
            state.recent.pop_front();
        }
        // Posts within Δ bound the accounts within Δ from above: at most
        // `max_fanout` of them and the key is surely unsaturated again.
        if state.saturated && state.recent.len() <= cfg.max_fanout {
            state.saturated = false;
        }
        paired.clear();
        // The posts paired with, as places in `recent`: borrowed where they
        // are rather than cloned, since a clone of a post's names touches
        // their shared counts, one cache miss each.
        matched.clear();
        // A 256-bit filter of the paired accounts' hashes: a clear bit
        // proves an account new without scanning `paired` (a scan per
        // recent post made a busy key quadratic).
        let mut seen = [0u64; 4];
        if !state.saturated {
            // Most recent first.
            for (i, r) in state.recent.iter().enumerate().rev() {
                if (r.t - t).abs() > window {
                    continue;
                }
                if r.account == me.account {
                    // The author used this key within Δ already: every post
                    // within Δ of this one was within Δ of that one too and
                    // is paired with it, so this repeat adds no coincidence.
                    matched.clear();
                    break;
                }
                let bit = (r.account >> 56) as usize;
                let (word, mask) = (bit / 64, 1u64 << (bit % 64));
                if seen[word] & mask != 0 && paired.contains(&r.account) {
                    continue;
                }
                if paired.len() >= cfg.max_fanout {
                    // One account more than the cap: organic virality.
                    state.saturated = true;
                    stats.saturated_keys += 1;
                    matched.clear();
                    break;
                }
                paired.push(r.account);
                seen[word] |= mask;
                matched.push(i);
            }
        }
        if state.saturated {
            stats.saturated_posts += 1;
            stats.capped_pairings += state.recent.len() as u64;
        }
        stats.pairings[kind.index()] += matched.len() as u64;
        for &i in matched.iter() {
            let r = &state.recent[i];
            let them = Side {
                account: r.account,
                name: &r.name,
                post: &r.post,
                t: r.t,
            };
            let gap = (t - r.t).abs() as f32 / window as f32;
            add_edge(edges, accounts, cfg.evidence_cap, kind, [me, them], gap, narrative);
        }
        state.recent.push_back(Recent {
            account: me.account,
            name: me.name.clone(),
            post: me.post.clone(),
            t,
        });
        if state.recent.len() > cfg.max_recent_per_key {
            state.recent.pop_front();
            stats.recent_dropped += 1;
        }
    }

    fn release_account(&mut self, h: u64) {
        if let Some(entry) = self.accounts.get_mut(&h) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                self.accounts.remove(&h);
            }
        }
    }

    /// Drops keys idle for their window and edges idle for `edge_ttl_ms`.
    fn expire(&mut self, now: i64) {
        for (i, index) in self.keys.iter_mut().enumerate() {
            index.expire(now - self.cfg.window_ms[i], |s| s.last);
        }
        let dropped = self.edges.expire(now - self.cfg.edge_ttl_ms, |e| e.last);
        for (a, b) in dropped {
            self.release_account(a);
            self.release_account(b);
        }
    }

    fn enforce_edge_cap(&mut self) {
        let dropped = self.edges.enforce_cap(|e| e.last);
        for (a, b) in dropped {
            self.release_account(a);
            self.release_account(b);
        }
    }

    /// Forgets every key and edge last refreshed before `t` (and the
    /// pseudonyms only they held).
    pub fn forget_before(&mut self, t: i64) {
        for index in &mut self.keys {
            index.expire(t, |s| s.last);
        }
        let dropped = self.edges.expire(t, |e| e.last);
        for (a, b) in dropped {
            self.release_account(a);
            self.release_account(b);
        }
    }

    /// Once the newest time seen is past the end of the oldest open
    /// epoch by more than the longest window (no post can pair into it
    /// any more), returns that epoch's number and the groups found up to
    /// then, and forgets every edge last refreshed before the epoch's end.
    /// Call it after each [`Coordinator::observe`] (it is cheap when no
    /// epoch is due) and after the stream ends with `flush = true` to
    /// close the last epoch.
    pub fn close_epoch(&mut self, flush: bool) -> Option<(i64, Vec<Group>)> {
        let epoch = self.open_epoch?;
        let now = self.now?;
        let end = (epoch + 1).saturating_mul(self.cfg.epoch_ms);
        let grace = self.cfg.window_ms.iter().copied().max().unwrap_or(0);
        if !flush && now <= end.saturating_add(grace) {
            return None;
        }
        let groups = self.groups();
        self.forget_before(if flush { i64::MAX } else { end });
        let next = now.div_euclid(self.cfg.epoch_ms);
        self.open_epoch = if flush { None } else { Some(next.max(epoch + 1)) };
        Some((epoch, groups))
    }

    /// The epoch [`Coordinator::close_epoch`] waits for the end of (`None`
    /// before the first post).
    pub fn open_epoch(&self) -> Option<i64> {
        self.open_epoch
    }

    /// The coordinated groups in the current network: components of the
    /// edges with total weight ≥ `min_weight`, with at least `k` accounts,
    /// best score first. Scans every edge: meant for periodic reports.
    pub fn groups(&self) -> Vec<Group> {
        groups::find(self)
    }

    /// Counters and current sizes.
    pub fn stats(&self) -> CoordinationStats {
        let mut s = self.stats.clone();
        s.keys = self.keys.iter().map(|k| k.map.len()).sum();
        s.expired_keys = self.keys.iter().map(|k| k.expired).sum();
        s.evicted_keys = self.keys.iter().map(|k| k.evicted).sum();
        s.edges = self.edges.map.len();
        s.expired_edges = self.edges.expired;
        s.evicted_edges = self.edges.evicted;
        s.accounts = self.accounts.len();
        let recent: usize = self
            .keys
            .iter()
            .flat_map(|k| k.map.values())
            .map(|s| s.recent.capacity() * std::mem::size_of::<Recent>())
            .sum();
        let evidence: usize = self
            .edges
            .map
            .values()
            .map(|e| e.evidence.capacity() * (std::mem::size_of::<Evidence>() + 2 * 48))
            .sum();
        s.approx_bytes = self.keys.iter().map(Timed::bytes).sum::<usize>()
            + self.edges.bytes()
            + recent
            + evidence
            + self.accounts.capacity() * 80
            + self.rarity.bytes();
        s
    }
}

/// One post of a coincidence: its account and pseudonym, its id and time.
#[derive(Clone, Copy)]
struct Side<'a> {
    account: u64,
    name: &'a Arc<str>,
    post: &'a Arc<str>,
    t: i64,
}

/// Counts one coincidence between the accounts of `sides` on their edge,
/// creating it (and holding both pseudonyms) on the first.
fn add_edge(
    edges: &mut Timed<Edge, (u64, u64)>,
    accounts: &mut Accounts,
    evidence_cap: usize,
    kind: EdgeType,
    sides: [Side<'_>; 2],
    gap: f32,
    narrative: Option<NarrativeId>,
) {
    // The edge's first account has the smaller hash (never equal: an
    // account is not paired with itself).
    let [a, b] = if sides[0].account < sides[1].account {
        sides
    } else {
        [sides[1], sides[0]]
    };
    let t = a.t.max(b.t);
    let mut created = false;
    let edge = edges.get_or_insert_with((a.account, b.account), t, || {
        created = true;
        Edge {
            weights: [0; EdgeType::COUNT],
            first: t,
            last: t,
            gap_frac_sum: 0.0,
            evidence: Vec::new(),
            narratives: Vec::new(),
        }
    });
    edge.weights[kind.index()] = edge.weights[kind.index()].saturating_add(1);
    edge.first = edge.first.min(t);
    edge.last = edge.last.max(t);
    edge.gap_frac_sum += gap;
    if let Some(n) = narrative.filter(|_| kind == EdgeType::CoPost) {
        if edge.narratives.len() < NARRATIVES_PER_EDGE && !edge.narratives.contains(&n) {
            edge.narratives.push(n);
        }
    }
    if edge.evidence.len() < evidence_cap {
        // Most edges are organic and never see a second coincidence:
        // room for exactly one, not the four a first push reserves.
        edge.evidence.reserve_exact(1);
        edge.evidence.push(Evidence {
            kind,
            posts: [a.post.clone(), b.post.clone()],
            times: [a.t, b.t],
        });
    }
    if created {
        for s in [a, b] {
            accounts.entry(s.account).or_insert_with(|| (s.name.clone(), 0)).1 += 1;
        }
    }
}

/// Whether a normalised link has a path after its host.
fn has_path(link: &str) -> bool {
    let rest = link.split_once("://").map_or(link, |(_, r)| r);
    rest.find('/').is_some_and(|p| p + 1 < rest.len())
}

/// A 64-bit hash of a string, salted by its role.
fn hash_str(s: &str, salt: u64) -> u64 {
    let h = blake3::hash(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A fast hasher for keys that are already hashes (or pairs of them).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A map with expiry by a per-value time and a cap, like the narrative
/// clusterer's: each key has one entry in `queue`, stamped with its time
/// when queued; an entry found stale at the front is queued again with
/// the newer time.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>"
))]
struct Timed<V, K> {
    map: HashMap<K, V, BuildHasherDefault<MixHasher>>,
    queue: VecDeque<(i64, K)>,
    cap: usize,
    expired: u64,
    evicted: u64,
}

impl<V, K: Copy + Eq + Hash> Timed<V, K> {
    fn new(cap: usize) -> Self {
        Timed {
            map: HashMap::default(),
            queue: VecDeque::new(),
            cap,
            expired: 0,
            evicted: 0,
        }
    }

    fn get_or_insert_with(&mut self, key: K, t: i64, make: impl FnOnce() -> V) -> &mut V {
        let queue = &mut self.queue;
        self.map.entry(key).or_insert_with(|| {
            queue.push_back((t, key));
            make()
        })
    }

    /// Drops entries whose time is before `cutoff`; returns their keys.
    fn expire(&mut self, cutoff: i64, last: impl Fn(&V) -> i64) -> Vec<K> {
        let mut dropped = Vec::new();
        while let Some(&(t, key)) = self.queue.front() {
            if t >= cutoff {
                break;
            }
            self.queue.pop_front();
            match self.map.get(&key).map(&last) {
                Some(l) if l >= cutoff => self.queue.push_back((l, key)),
                Some(_) => {
                    self.map.remove(&key);
                    self.expired += 1;
                    dropped.push(key);
                }
                None => {}
            }
        }
        dropped
    }

    /// Evicts the least recently refreshed entries beyond the cap.
    fn enforce_cap(&mut self, last: impl Fn(&V) -> i64) -> Vec<K> {
        let mut dropped = Vec::new();
        while self.map.len() > self.cap {
            let Some((t, key)) = self.queue.pop_front() else {
                break;
            };
            match self.map.get(&key).map(&last) {
                Some(l) if l > t => self.queue.push_back((l, key)),
                Some(_) => {
                    self.map.remove(&key);
                    self.evicted += 1;
                    dropped.push(key);
                }
                None => {}
            }
        }
        dropped
    }

    fn bytes(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<K>() + std::mem::size_of::<V>() + 1)
            + self.queue.capacity() * std::mem::size_of::<(i64, K)>()
    }
}

impl Timed<KeyState, u64> {
    fn enforce_key_cap(&mut self) {
        let _ = self.enforce_cap(|s| s.last);
    }
}
