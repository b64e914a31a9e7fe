//! How far the clusterer's narratives agree with exact near-duplicate
//! similarity: the measure behind `tidewatch eval narratives` and the
//! planted-campaign tests.
//!
//! The idea: the criterion is exact Jaccard similarity ≥ 0.8 of
//! two posts' shingle sets, which MinHash and LSH only estimate. An
//! [`AgreementMeter`] clusters posts as a run does (in time order) and
//! keeps the shingle set of every post placed by its text (not a repost).
//! [`AgreementMeter::measure`] then draws pairs uniformly among all
//! same-narrative pairs and checks each pair's exact Jaccard (precision of
//! the near-duplicate relation), and finds every pair within the window at
//! exact ≥ 0.8 by prefix filtering to say how many share a narrative
//! (recall). Only counts come out, never a text or an account.

use super::minhash::{estimate, jaccard, signature, splitmix};
use super::{ConfigError, NarrativeConfig, NarrativeUpdate, Narratives, Shingler};
use crate::post::Post;
use crate::text::{tokenize, TokenizedText};
use serde::Serialize;
use std::collections::HashMap;

/// The exact Jaccard similarity that makes two posts near-duplicates.
pub const NEAR_DUPLICATE: f64 = 0.8;

/// What [`AgreementMeter::measure`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    /// Posts observed.
    pub posts: usize,
    /// Posts placed in a narrative by their text.
    pub text_posts: usize,
    /// Narratives with two or more posts placed by text.
    pub narratives: usize,
    /// Same-narrative pairs of posts placed by text.
    pub pairs: u64,
    /// Pairs drawn (0 when there is no pair to draw).
    pub sampled: usize,
    /// Share of the drawn pairs at exact Jaccard ≥ [`NEAR_DUPLICATE`].
    pub exact_agreement: f64,
    /// Drawn pairs whose MinHash estimate is ≥ [`NEAR_DUPLICATE`], and the
    /// share of those at exact ≥ [`NEAR_DUPLICATE`] too.
    pub estimated: usize,
    pub estimated_agreement: f64,
    /// Pairs of text posts at most the clusterer's window apart with exact
    /// Jaccard ≥ [`NEAR_DUPLICATE`] (all of them), and the share of those
    /// in one narrative.
    pub near_pairs: usize,
    pub recall: f64,
}

/// One post placed by its text: its time, shingle set and narrative.
struct Placed {
    t: i64,
    set: Vec<u64>,
    narrative: u64,
}

/// Clusters posts and keeps what [`AgreementMeter::measure`] needs.
pub struct AgreementMeter {
    cfg: NarrativeConfig,
    clusterer: Narratives,
    tokens: TokenizedText,
    shingler: Shingler,
    placed: Vec<Placed>,
    posts: usize,
}

impl AgreementMeter {
    pub fn new(cfg: NarrativeConfig) -> Result<AgreementMeter, ConfigError> {
        Ok(AgreementMeter {
            clusterer: Narratives::new(cfg.clone())?,
            cfg,
            tokens: TokenizedText::new(),
            shingler: Shingler::new(),
            placed: Vec::new(),
            posts: 0,
        })
    }

    /// Clusters the next post (posts in time order); returns where the
    /// clusterer put it.
    pub fn observe(&mut self, post: &Post) -> Option<NarrativeUpdate> {
        self.posts += 1;
        tokenize(&post.text, &mut self.tokens);
        let update = self.clusterer.observe(post, &self.tokens, &[], String::new);
        if let Some(u) = update.as_ref().filter(|u| !u.by_repost) {
            self.placed.push(Placed {
                t: post.created_at.map_or(0, |t| t.0),
                set: self
                    .shingler
                    .shingles(&post.text, &self.tokens, self.cfg.shingle_words)
                    .to_vec(),
                narrative: u.narrative.0,
            });
        }
        update
    }

    /// Draws `samples` same-narrative pairs (seeded: the same posts give
    /// the same draw) and measures the agreement.
    pub fn measure(&self, samples: usize, seed: u64) -> Agreement {
        let mut members: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, p) in self.placed.iter().enumerate() {
            members.entry(p.narrative).or_default().push(i);
        }
        let mut clusters: Vec<Vec<usize>> = members.into_values().filter(|m| m.len() >= 2).collect();
        // Map order is random: the draw must not be.
        clusters.sort();
        let (pairs, good, estimated, estimated_good) = sample_pairs(&self.placed, &clusters, samples, seed);
        let (near_pairs, together) = exact_near_pairs(&self.placed, self.cfg.window_ms);
        let share = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let sampled = if pairs == 0 { 0 } else { samples };
        Agreement {
            posts: self.posts,
            text_posts: self.placed.len(),
            narratives: clusters.len(),
            pairs,
            sampled,
            exact_agreement: share(good, sampled),
            estimated,
            estimated_agreement: share(estimated_good, estimated),
            near_pairs,
            recall: share(together, near_pairs),
        }
    }
}

/// Draws `samples` pairs uniformly among all same-narrative pairs of
/// `clusters` (indices into `texts`): (all pairs, drawn pairs at exact
/// Jaccard ≥ 0.8, drawn pairs with a MinHash estimate ≥ 0.8, of those at
/// exact ≥ 0.8). No pair is drawn when there is none.
fn sample_pairs(texts: &[Placed], clusters: &[Vec<usize>], samples: usize, seed: u64) -> (u64, usize, usize, usize) {
    let weights: Vec<u64> = clusters.iter().map(|c| (c.len() * (c.len() - 1) / 2) as u64).collect();
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return (0, 0, 0, 0);
    }
    let mut rng = seed;
    let mut below = |n: u64| {
        rng = splitmix(rng);
        rng % n.max(1)
    };
    let (mut good, mut estimated, mut estimated_good) = (0, 0, 0);
    for _ in 0..samples {
        let mut pick = below(total);
        let Some(c) = clusters.iter().zip(&weights).find_map(|(c, &w)| {
            if pick < w {
                Some(c)
            } else {
                pick -= w;
                None
            }
        }) else {
            continue;
        };
        let i = below(c.len() as u64) as usize;
        let mut j = below(c.len() as u64 - 1) as usize;
        if j >= i {
            j += 1;
        }
        let (a, b) = (&texts[c[i]].set, &texts[c[j]].set);
        let exact = jaccard(a, b) >= NEAR_DUPLICATE;
        good += usize::from(exact);
        if estimate(&signature(a), &signature(b)) >= NEAR_DUPLICATE {
            estimated += 1;
            estimated_good += usize::from(exact);
        }
    }
    (total, good, estimated, estimated_good)
}

/// Every pair of `texts` (in time order) at most `window` ms apart with
/// exact Jaccard ≥ 0.8, by prefix filtering: with each set's shingles
/// ordered rarest first, two sets at Jaccard ≥ t share one of the first
/// |x| − ⌈t·|x|⌉ + 1 shingles of each. Returns (pairs, pairs in one
/// narrative).
fn exact_near_pairs(texts: &[Placed], window: i64) -> (usize, usize) {
    let mut freq: HashMap<u64, u32> = HashMap::new();
    for p in texts {
        for &s in &p.set {
            *freq.entry(s).or_default() += 1;
        }
    }
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut seen: Vec<usize> = vec![usize::MAX; texts.len()];
    let (mut pairs, mut together) = (0, 0);
    let mut order: Vec<u64> = Vec::new();
    for (i, p) in texts.iter().enumerate() {
        order.clear();
        order.extend_from_slice(&p.set);
        order.sort_unstable_by_key(|s| (freq.get(s).copied().unwrap_or(0), *s));
        let need = (NEAR_DUPLICATE * p.set.len() as f64 - 1e-9).ceil() as usize;
        let prefix = p.set.len() + 1 - need.clamp(1, p.set.len().max(1));
        for s in order.iter().take(prefix) {
            let list = index.entry(*s).or_default();
            for &j in list.iter().rev() {
                let q = &texts[j];
                if p.t - q.t > window {
                    break;
                }
                if seen[j] == i {
                    continue;
                }
                seen[j] = i;
                if jaccard(&p.set, &q.set) >= NEAR_DUPLICATE {
                    pairs += 1;
                    together += usize::from(p.narrative == q.narrative);
                }
            }
            list.push(i);
        }
    }
    (pairs, together)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, minute: i64, author: &str, text: &str) -> Post {
        Post {
            id: id.into(),
            platform: "twitter".into(),
            created_at: Some(crate::Timestamp(1_767_225_600_000 + minute * 60_000)),
            author: Some(author.into()),
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn identical_copies_agree_and_distinct_texts_make_no_pair() {
        let mut m = AgreementMeter::new(NarrativeConfig::default()).unwrap();
        let copy = "the river crossing at wendmoor was closed by officials quietly last night after the storm";
        for i in 0..6 {
            m.observe(&post(&format!("c{i}"), i, &format!("acct{i}"), copy));
        }
        m.observe(&post(
            "x",
            7,
            "other",
            "a completely different sentence about bread baking and sourdough starters",
        ));
        let a = m.measure(100, 1);
        assert_eq!(a.posts, 7);
        assert_eq!(a.narratives, 1);
        assert_eq!(a.pairs, 15, "6 copies make 15 pairs");
        assert_eq!(a.sampled, 100);
        assert_eq!(a.exact_agreement, 1.0);
        assert_eq!(a.near_pairs, 15);
        assert_eq!(a.recall, 1.0);
    }
}
