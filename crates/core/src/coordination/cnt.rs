//! Compatibility with the coordination-network-toolkit (version 1.5.2):
//! its edge semantics, exactly, as a batch function.
//!
//! The idea: researchers know that tool's edge lists, so tidewatch can
//! produce the same edges from the same posts for them to compare. As
//! observed in 1.5.2:
//!
//! - **Keys**: co-tweet (here co-post) keys are the normalised texts
//!   ([`normalise_text`]: lower-cased, every `@` up to the next whitespace
//!   deleted, whitespace collapsed) of posts with no repost id; co-link keys
//!   are the links as given, of posts with no repost id (the toolkit does
//!   not load a retweet's urls); co-retweet (co-repost) keys the repost id;
//!   co-reply keys the replied-to id of posts with no repost id (it joins
//!   on `repost_id is null`).
//! - **Weight**: for accounts u ≠ v, weight(u→v) is the number of distinct
//!   posts of u that have at least one post of v with the same key and
//!   |t_u − t_v| ≤ Δ (inclusive). A post of u with several matching keys
//!   or several matching posts of v counts once.
//! - **Direction**: edges are directed; u→v is kept when its own weight is
//!   ≥ the minimum, independently of v→u.
//!
//! Differences from tidewatch's own network ([`super::Coordinator`]):
//! co-post there keys on near-duplicate narratives rather than identical
//! normalised text; edges there are undirected and count coincidences
//! (pairs of posts) rather than distinct posts of one side; there is a
//! fan-out cap per key; reposts count only as co-reposts; homepage links
//! are skipped; there is a co-hashtag type; and only groups of at least
//! five accounts are shown, never the raw edge list.
//!
//! Computation: records are grouped by key and sorted by time; for each
//! key a two-pointer sliding window holds the posts within Δ of the
//! current one together with a count per account, so each post meets
//! only the accounts inside its window (no all-pairs scan).

use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The toolkit's network types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CntType {
    /// Identical normalised text ("co-tweet").
    CoPost,
    CoLink,
    /// The same repost id ("co-retweet").
    CoRepost,
    CoReply,
}

impl CntType {
    pub const ALL: [CntType; 4] = [CntType::CoPost, CntType::CoLink, CntType::CoRepost, CntType::CoReply];

    pub fn name(self) -> &'static str {
        match self {
            CntType::CoPost => "co-post",
            CntType::CoLink => "co-link",
            CntType::CoRepost => "co-repost",
            CntType::CoReply => "co-reply",
        }
    }

    /// Parses `co-post` (or the toolkit's `co-tweet`), `co-link`,
    /// `co-repost` (or `co-retweet`), `co-reply`.
    pub fn from_name(s: &str) -> Option<CntType> {
        match s {
            "co-post" | "co-tweet" => Some(CntType::CoPost),
            "co-link" => Some(CntType::CoLink),
            "co-repost" | "co-retweet" => Some(CntType::CoRepost),
            "co-reply" => Some(CntType::CoReply),
            _ => None,
        }
    }
}

/// One post, as the compatibility mode needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CntRecord {
    pub id: String,
    pub author: String,
    pub time_ms: i64,
    pub text: String,
    pub repost_of: Option<String>,
    pub reply_to: Option<String>,
    pub links: Vec<String>,
}

/// A directed edge `source → target`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CntEdge {
    pub source: String,
    pub target: String,
    pub weight: u32,
    #[serde(rename = "type")]
    pub kind: CntType,
}

/// Whitespace as Python's `str.split()` sees it: Unicode white space plus
/// the information separators U+001C–U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The toolkit's text key: lower-cased, every `@` and what follows it up
/// to the next whitespace removed, whitespace runs collapsed to one space
/// (none at the ends).
pub fn normalise_text(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut in_mention = false;
    let mut pending_space = false;
    for c in lower.chars() {
        if is_py_space(c) {
            in_mention = false;
            pending_space = !out.is_empty();
            continue;
        }
        if c == '@' {
            in_mention = true;
        }
        if in_mention {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// The keys of a record for a network type.
fn keys(r: &CntRecord, kind: CntType) -> Vec<String> {
    match kind {
        CntType::CoPost => match r.repost_of {
            None => vec![normalise_text(&r.text)],
            Some(_) => Vec::new(),
        },
        CntType::CoLink if r.repost_of.is_some() => Vec::new(),
        CntType::CoLink => {
            let mut v = r.links.clone();
            v.sort();
            v.dedup();
            v
        }
        CntType::CoRepost => r.repost_of.iter().cloned().collect(),
        CntType::CoReply if r.repost_of.is_some() => Vec::new(),
        CntType::CoReply => r.reply_to.iter().cloned().collect(),
    }
}

/// The toolkit's directed edges of one type over `records`, for window
/// `window_ms` (inclusive) and `min_weight`, sorted by source then target.
pub fn cnt_edges(records: &[CntRecord], kind: CntType, window_ms: i64, min_weight: u32) -> Vec<CntEdge> {
    // Accounts and posts numbered densely.
    let mut account_ids: HashMap<&str, u32> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    // A post is its (account, id): ids are only unique per platform account
    // space, and a repeated record of the same post counts once.
    let mut post_ids: HashMap<(u32, &str), u32> = HashMap::new();
    let mut by_key: HashMap<String, Vec<(i64, u32, u32)>> = HashMap::new();
    for r in records {
        let next = names.len() as u32;
        let a = *account_ids.entry(r.author.as_str()).or_insert_with(|| {
            names.push(r.author.as_str());
            next
        });
        let next = post_ids.len() as u32;
        let p = *post_ids.entry((a, r.id.as_str())).or_insert(next);
        for k in keys(r, kind) {
            by_key.entry(k).or_default().push((r.time_ms, a, p));
        }
    }

    // (post of u, v): u's post has a matching post of v.
    let mut matched: HashSet<(u32, u32)> = HashSet::new();
    let mut author_of: HashMap<u32, u32> = HashMap::new();
    for mut posts in by_key.into_values() {
        if posts.len() < 2 {
            continue;
        }
        posts.sort_unstable();
        // Sliding window [lo, hi) of posts with time within Δ of posts[i].
        let mut in_window: HashMap<u32, u32> = HashMap::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        for i in 0..posts.len() {
            let (t, u, p) = posts[i];
            while hi < posts.len() && posts[hi].0 <= t.saturating_add(window_ms) {
                *in_window.entry(posts[hi].1).or_insert(0) += 1;
                hi += 1;
            }
            while posts[lo].0 < t.saturating_sub(window_ms) {
                let a = posts[lo].1;
                if let Some(c) = in_window.get_mut(&a) {
                    *c -= 1;
                    if *c == 0 {
                        in_window.remove(&a);
                    }
                }
                lo += 1;
            }
            author_of.insert(p, u);
            for &v in in_window.keys() {
                if v != u {
                    matched.insert((p, v));
                }
            }
        }
    }

    let mut weights: HashMap<(u32, u32), u32> = HashMap::new();
    for (p, v) in matched {
        if let Some(&u) = author_of.get(&p) {
            *weights.entry((u, v)).or_insert(0) += 1;
        }
    }
    let mut edges: Vec<CntEdge> = weights
        .into_iter()
        .filter(|&(_, w)| w >= min_weight)
        .map(|((u, v), w)| CntEdge {
            source: names[u as usize].to_string(),
            target: names[v as usize].to_string(),
            weight: w,
            kind,
        })
        .collect();
    edges.sort();
    edges
}
