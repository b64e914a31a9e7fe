//! How rare a presearch anchor is: the matcher indexes each anchor set under
//! its rarest anchor, so that few posts make the feed a candidate.
//!
//! Two estimates. With a sample of tokenised posts ([`TermStats::from_sample`])
//! the cost of an anchor is its document frequency in the sample (for a
//! prefix, the summed frequencies of the sample's distinct tokens that start
//! with it, an upper bound). Without one, or for a token the sample never
//! saw, a heuristic: longer words are rarer (stop words are short), tags
//! rarer than words, a prefix commoner than a word of the same length.

use crate::query::Anchor;
use crate::text::TokenizedText;
use std::collections::{HashMap, HashSet};

/// Document frequencies of tokens in a sample of posts.
#[derive(Clone, Debug, Default)]
pub struct TermStats {
    docs: u64,
    df: HashMap<String, u32>,
    /// The same, sorted by token, for prefix ranges.
    sorted: Vec<(String, u32)>,
}

impl TermStats {
    /// No sample: every anchor is costed by the heuristic.
    pub fn none() -> TermStats {
        TermStats::default()
    }

    /// Counts, for every distinct token, the sampled posts containing it.
    pub fn from_sample<'a>(texts: impl IntoIterator<Item = &'a TokenizedText>) -> TermStats {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut docs = 0u64;
        let mut seen: HashSet<&str> = HashSet::new();
        for t in texts {
            docs += 1;
            seen.clear();
            for (text, _) in t.iter() {
                if seen.insert(text) {
                    *df.entry(text.to_string()).or_insert(0) += 1;
                }
            }
        }
        let mut sorted: Vec<(String, u32)> = df.iter().map(|(k, &v)| (k.clone(), v)).collect();
        sorted.sort_unstable();
        TermStats { docs, df, sorted }
    }

    /// The number of sampled posts.
    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// The estimated share of posts containing the anchor (lower is rarer).
    pub fn cost(&self, anchor: &Anchor) -> f64 {
        if self.docs == 0 {
            return heuristic(anchor);
        }
        let count = match anchor {
            Anchor::Token(t) => self.df.get(t).copied().unwrap_or(0) as u64,
            Anchor::Prefix(p) => {
                let from = self.sorted.partition_point(|(k, _)| k.as_str() < p.as_str());
                self.sorted[from..]
                    .iter()
                    .take_while(|(k, _)| k.starts_with(p.as_str()))
                    .map(|&(_, n)| n as u64)
                    .sum()
            }
        };
        if count == 0 {
            // Unseen in the sample: rarer than anything seen, ties broken
            // by the heuristic.
            return heuristic(anchor) / (self.docs as f64 + 1.0);
        }
        count as f64 / self.docs as f64
    }
}

fn heuristic(anchor: &Anchor) -> f64 {
    let (text, prefix) = match anchor {
        Anchor::Token(t) => (t.as_str(), false),
        Anchor::Prefix(p) => (p.as_str(), true),
    };
    let chars = text.chars().count().min(12) as i32;
    let tag = text.starts_with(['#', '$', '@']);
    let mut cost = 0.5f64.powi(chars);
    if tag {
        cost *= 0.1;
    }
    if prefix {
        cost *= 16.0;
    }
    cost.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenized;

    #[test]
    fn heuristic_prefers_long_words_and_tags() {
        let s = TermStats::none();
        let t = |w: &str| s.cost(&Anchor::Token(w.into()));
        assert!(t("earthquake") < t("the"));
        assert!(t("#flood") < t("flood"));
        assert!(s.cost(&Anchor::Prefix("earthq".into())) > t("earthquake"));
    }

    #[test]
    fn sample_frequencies_count_documents() {
        let texts = [
            tokenized("the flood the flood"),
            tokenized("the fire"),
            tokenized("a floodgate"),
        ];
        let s = TermStats::from_sample(texts.iter());
        assert_eq!(s.docs(), 3);
        assert!((s.cost(&Anchor::Token("the".into())) - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.cost(&Anchor::Prefix("flood".into())) - 2.0 / 3.0).abs() < 1e-9);
        assert!(s.cost(&Anchor::Token("absent".into())) < s.cost(&Anchor::Token("fire".into())));
    }
}
