//! Presearch anchors: which tokens a post must contain for a query to be
//! able to match it.
//!
//! The compiled matcher indexes every feed under the tokens its query
//! cannot match without, and verifies a post only against the feeds one of
//! whose anchors the post contains. This module derives those anchors from
//! the query tree.
//!
//! # The contract
//!
//! [`Anchors::of`] returns either
//! - [`Anchors::Unanchored`]: no token is required (pure negations,
//!   field-only queries such as `lang:de`, `x OR NOT y`); such a query must
//!   be verified against every post; or
//! - [`Anchors::AnyOf`]`(sets)`: a disjunction of conjunctions. **If the
//!   query matches a post (per `crate::query::eval::matches`), then at least
//!   one set has every one of its anchors satisfied by some token of the
//!   post.** An [`Anchor::Token`] is satisfied by a token whose folded text
//!   equals it, an [`Anchor::Prefix`] by a token whose folded text starts
//!   with it.
//!
//! So a matcher may index each set under any single anchor of it (the
//! rarest is the natural choice), and treat the feed as a candidate for a
//! post when one of those index entries hits; it must still verify. Sets
//! are non-empty, sorted and deduplicated, and no set contains another.
//!
//! How the sets are built: a term gives one set with one anchor (a
//! wildcard gives the prefix before its first wildcard); a phrase one set
//! with all its words; `OR` the union of its children's sets (unanchored if
//! any child is); `AND` and `NEAR` the cross product of their anchored
//! children's sets (children that are fields or negations drop out, which
//! is sound), skipping a child whose product would exceed
//! [`MAX_SETS`] sets (dropping a conjunct only weakens the filter).

use super::ast::{Node, Pattern};
use crate::text::TokenizedText;
use std::fmt;

/// The most sets an `AND` or `NEAR` cross product may produce.
pub const MAX_SETS: usize = 64;

/// One token requirement.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anchor {
    /// A token whose folded text is exactly this (`climate`, `#climate`,
    /// `地`).
    Token(String),
    /// A token whose folded text starts with this (from a wildcard term
    /// `climat*` → `climat`). Never empty.
    Prefix(String),
}

impl Anchor {
    /// Whether a token's folded text satisfies this anchor.
    pub fn matches(&self, token: &str) -> bool {
        match self {
            Anchor::Token(t) => token == t,
            Anchor::Prefix(p) => token.starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Token(t) => f.write_str(t),
            Anchor::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// What a post must contain for a query to possibly match it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchors {
    /// Nothing: verify the query against every post.
    Unanchored,
    /// At least one of these sets must be fully present in the post.
    AnyOf(Vec<Vec<Anchor>>),
}

impl Anchors {
    /// The anchors of a query tree.
    pub fn of(node: &Node) -> Anchors {
        match node {
            Node::Term(p) => Anchors::AnyOf(vec![vec![anchor(p)]]),
            Node::Phrase { words, .. } => Anchors::AnyOf(simplify(vec![words.iter().map(anchor).collect()])),
            Node::Near { left, right, .. } => all_of(&[left.as_ref(), right.as_ref()]),
            Node::Field(_) | Node::Not(_) => Anchors::Unanchored,
            Node::And(children) => all_of(&children.iter().collect::<Vec<_>>()),
            Node::Or(children) => {
                let mut sets = Vec::new();
                for child in children {
                    match Anchors::of(child) {
                        Anchors::Unanchored => return Anchors::Unanchored,
                        Anchors::AnyOf(s) => sets.extend(s),
                    }
                }
                Anchors::AnyOf(simplify(sets))
            }
        }
    }

    /// Whether a post with these tokens passes the presearch filter (always
    /// true for [`Anchors::Unanchored`]).
    pub fn admits(&self, tokens: &TokenizedText) -> bool {
        match self {
            Anchors::Unanchored => true,
            Anchors::AnyOf(sets) => sets
                .iter()
                .any(|set| set.iter().all(|a| tokens.iter().any(|(text, _)| a.matches(text)))),
        }
    }
}

impl fmt::Display for Anchors {
    /// `{climate, change} OR {#climate}`, or a note that every post is
    /// verified.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchors::Unanchored => f.write_str("(no anchor: every post is verified)"),
            Anchors::AnyOf(sets) => {
                for (i, set) in sets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    f.write_str("{")?;
                    for (j, a) in set.iter().enumerate() {
                        if j > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{a}")?;
                    }
                    f.write_str("}")?;
                }
                Ok(())
            }
        }
    }
}

fn anchor(p: &Pattern) -> Anchor {
    match p {
        Pattern::Exact(t) => Anchor::Token(t.clone()),
        Pattern::Wildcard(_) => Anchor::Prefix(p.literal_prefix().to_string()),
    }
}

/// The cross product of the anchored children's sets: every child is
/// required, so a post must satisfy one set of each.
fn all_of(children: &[&Node]) -> Anchors {
    let mut parts: Vec<Vec<Vec<Anchor>>> = children
        .iter()
        .filter_map(|c| match Anchors::of(c) {
            Anchors::Unanchored => None,
            Anchors::AnyOf(sets) => Some(sets),
        })
        .collect();
    if parts.is_empty() {
        return Anchors::Unanchored;
    }
    // Few alternatives first: they make the most selective products.
    parts.sort_by_key(Vec::len);
    let mut product: Vec<Vec<Anchor>> = vec![Vec::new()];
    for part in parts {
        if product.len().saturating_mul(part.len()) > MAX_SETS {
            continue;
        }
        product = product
            .iter()
            .flat_map(|left| {
                part.iter().map(move |right| {
                    let mut set = left.clone();
                    set.extend(right.iter().cloned());
                    set
                })
            })
            .collect();
    }
    Anchors::AnyOf(simplify(product))
}

/// Sorts and deduplicates each set, then drops sets that contain another
/// (`{a} OR {a, b}` is `{a}`).
fn simplify(mut sets: Vec<Vec<Anchor>>) -> Vec<Vec<Anchor>> {
    for set in &mut sets {
        set.sort();
        set.dedup();
    }
    sets.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    sets.dedup();
    let mut kept: Vec<Vec<Anchor>> = Vec::new();
    for set in sets {
        if !kept.iter().any(|k| k.iter().all(|a| set.contains(a))) {
            kept.push(set);
        }
    }
    kept
}
