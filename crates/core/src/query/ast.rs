//! The query's syntax tree, and its canonical printed form.
//!
//! A [`Node`] tree is what the parser produces and what both the reference
//! evaluator and the compiled matcher consume. Every string in it is already
//! folded like post text (see [`crate::text`]), so matching compares
//! strings directly.
//!
//! Printing a node ([`std::fmt::Display`]) gives the canonical form: explicit
//! `AND`/`OR`/`NOT`, parentheses around every nested `AND`, `OR` and `NEAR`,
//! folded terms. Parsing that form gives back the same tree.

use crate::post::Post;
use std::fmt;

/// A pattern one token must match: a folded word (or tag, sigil included),
/// or a wildcard pattern over a single token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// The token's text equals this (e.g. `climate`, `#climate`, `地`).
    Exact(String),
    /// `*` matches any run of characters (possibly empty), `?` exactly one
    /// character; everything else literally. Never starts with a wildcard:
    /// [`Pattern::literal_prefix`] is non-empty.
    Wildcard(String),
}

impl Pattern {
    /// Whether a token's folded text matches this pattern.
    pub fn matches(&self, token: &str) -> bool {
        match self {
            Pattern::Exact(word) => word == token,
            Pattern::Wildcard(pattern) => {
                let p: Vec<char> = pattern.chars().collect();
                let t: Vec<char> = token.chars().collect();
                glob(&p, &t)
            }
        }
    }

    /// The literal text before the first wildcard (the whole word for an
    /// exact pattern). Every token the pattern matches starts with it.
    pub fn literal_prefix(&self) -> &str {
        match self {
            Pattern::Exact(word) => word,
            Pattern::Wildcard(pattern) => {
                let end = pattern.find(['*', '?']).unwrap_or(pattern.len());
                &pattern[..end]
            }
        }
    }

    /// The pattern as written in a query.
    pub fn as_str(&self) -> &str {
        match self {
            Pattern::Exact(s) | Pattern::Wildcard(s) => s,
        }
    }
}

/// Glob matching with `*` and `?`: the classic two-pointer algorithm that
/// backtracks only to the last `*`, so it takes O(pattern × token) steps
/// whatever the pattern (no exponential backtracking on `a*a*a*b`).
fn glob(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen, and the token index it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// VADER's three classes of the compound score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SentimentClass {
    /// compound ≤ -0.05
    Negative,
    /// -0.05 < compound < 0.05
    Neutral,
    /// compound ≥ 0.05
    Positive,
}

impl SentimentClass {
    /// The class of a VADER compound score (the usual ±0.05 thresholds).
    pub fn of_compound(compound: f64) -> SentimentClass {
        if compound >= 0.05 {
            SentimentClass::Positive
        } else if compound <= -0.05 {
            SentimentClass::Negative
        } else {
            SentimentClass::Neutral
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SentimentClass::Negative => "negative",
            SentimentClass::Neutral => "neutral",
            SentimentClass::Positive => "positive",
        }
    }
}

/// A condition on a post's metadata rather than its words.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `lang:de`: the post's language tag is `de` or a regional form of it
    /// (`de-at`). Lower case.
    Lang(String),
    /// `platform:bluesky`. Lower case.
    Platform(String),
    /// `domain:example.org`: a link's domain is `example.org` or a subdomain
    /// of it. Lower case, without a leading `www.`.
    Domain(String),
    /// `sentiment:negative|neutral|positive`; a post without a sentiment
    /// score matches none of them.
    Sentiment(SentimentClass),
    /// `is:repost`
    IsRepost,
    /// `is:reply`
    IsReply,
}

impl Field {
    /// Whether `post` satisfies this condition. Link domains are read from
    /// `post.entities` (a post without entities has no domains).
    pub fn matches(&self, post: &Post) -> bool {
        match self {
            Field::Lang(want) => post.lang.as_deref().is_some_and(|lang| {
                let lang = lang.as_bytes();
                lang.len() >= want.len()
                    && lang[..want.len()].eq_ignore_ascii_case(want.as_bytes())
                    && matches!(lang.get(want.len()), None | Some(b'-' | b'_'))
            }),
            Field::Platform(want) => post.platform.eq_ignore_ascii_case(want),
            Field::Domain(want) => post
                .entities
                .as_ref()
                .is_some_and(|e| e.domains.iter().any(|domain| domain_matches(domain, want))),
            Field::Sentiment(class) => post
                .sentiment
                .is_some_and(|s| SentimentClass::of_compound(s.compound) == *class),
            Field::IsRepost => post.is_repost(),
            Field::IsReply => post.is_reply(),
        }
    }
}

/// `news.example.org` and `example.org` match `example.org`;
/// `badexample.org` does not.
fn domain_matches(domain: &str, want: &str) -> bool {
    let domain = domain.to_lowercase();
    let domain = domain.strip_prefix("www.").unwrap_or(&domain);
    domain == want || domain.strip_suffix(want).is_some_and(|head| head.ends_with('.'))
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Lang(v) => write!(f, "lang:{v}"),
            Field::Platform(v) => write!(f, "platform:{v}"),
            Field::Domain(v) => write!(f, "domain:{v}"),
            Field::Sentiment(c) => write!(f, "sentiment:{}", c.as_str()),
            Field::IsRepost => f.write_str("is:repost"),
            Field::IsReply => f.write_str("is:reply"),
        }
    }
}

/// A node of the query tree.
///
/// The parser keeps these invariants, and the matcher may rely on them:
/// `And`/`Or` have at least two children and never a child of their own
/// kind (they are flattened); a `Phrase` has at least two words; `Near`
/// operands are `Term`, `Phrase`, or `Or` whose children are all `Term` or
/// `Phrase`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// Some token of the post matches the pattern.
    Term(Pattern),
    /// The words occur in order, with at most `slop` other positions in
    /// total between consecutive words (`slop` 0: adjacent, an exact
    /// phrase). See `crate::query` for the precise rule.
    Phrase {
        words: Vec<Pattern>,
        slop: u32,
    },
    /// An occurrence of `left` and one of `right`, in either order, not
    /// overlapping, with at most `distance` positions between them.
    Near {
        left: Box<Node>,
        right: Box<Node>,
        distance: u32,
    },
    Field(Field),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

impl Node {
    /// A conjunction, flattening nested `And`s; one child is returned as is.
    pub fn and(children: Vec<Node>) -> Node {
        Node::flatten(children, true)
    }

    /// A disjunction, flattening nested `Or`s; one child is returned as is.
    pub fn or(children: Vec<Node>) -> Node {
        Node::flatten(children, false)
    }

    fn flatten(children: Vec<Node>, is_and: bool) -> Node {
        let mut flat = Vec::with_capacity(children.len());
        for child in children {
            match child {
                Node::And(inner) if is_and => flat.extend(inner),
                Node::Or(inner) if !is_and => flat.extend(inner),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            if let Some(only) = flat.pop() {
                return only;
            }
        }
        if is_and {
            Node::And(flat)
        } else {
            Node::Or(flat)
        }
    }

    /// Whether this node may be an operand of `NEAR`: a term, a phrase, or
    /// an `OR` of terms and phrases.
    pub fn is_near_operand(&self) -> bool {
        match self {
            Node::Term(_) | Node::Phrase { .. } => true,
            Node::Or(children) => children
                .iter()
                .all(|c| matches!(c, Node::Term(_) | Node::Phrase { .. })),
            _ => false,
        }
    }

    /// Every pattern of the terms and phrases in this tree, in order
    /// (including those under `NOT`).
    pub fn patterns(&self) -> Vec<&Pattern> {
        let mut out = Vec::new();
        self.collect_patterns(&mut out);
        out
    }

    fn collect_patterns<'a>(&'a self, out: &mut Vec<&'a Pattern>) {
        match self {
            Node::Term(p) => out.push(p),
            Node::Phrase { words, .. } => out.extend(words),
            Node::Near { left, right, .. } => {
                left.collect_patterns(out);
                right.collect_patterns(out);
            }
            Node::Field(_) => {}
            Node::Not(child) => child.collect_patterns(out),
            Node::And(children) | Node::Or(children) => {
                for c in children {
                    c.collect_patterns(out);
                }
            }
        }
    }

    fn is_compound(&self) -> bool {
        matches!(self, Node::And(_) | Node::Or(_) | Node::Near { .. })
    }

    /// Writes a child: compound children are parenthesised.
    fn fmt_child(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_compound() {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

fn fmt_joined(children: &[Node], sep: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        child.fmt_child(f)?;
    }
    Ok(())
}

/// Whether a pattern is a single CJK character (printed without a space
/// next to another one, as it was written).
fn is_single_cjk(p: &Pattern) -> bool {
    let mut chars = p.as_str().chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if crate::text::is_cjk(c))
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Term(p) => f.write_str(p.as_str()),
            Node::Phrase { words, slop } => {
                f.write_str("\"")?;
                for (i, w) in words.iter().enumerate() {
                    if i > 0 && !(is_single_cjk(&words[i - 1]) && is_single_cjk(w)) {
                        f.write_str(" ")?;
                    }
                    f.write_str(w.as_str())?;
                }
                f.write_str("\"")?;
                if *slop > 0 {
                    write!(f, "~{slop}")?;
                }
                Ok(())
            }
            Node::Near { left, right, distance } => {
                left.fmt_child(f)?;
                write!(f, " NEAR/{distance} ")?;
                right.fmt_child(f)
            }
            Node::Field(field) => write!(f, "{field}"),
            Node::Not(child) => {
                f.write_str("NOT ")?;
                child.fmt_child(f)
            }
            Node::And(children) => fmt_joined(children, " AND ", f),
            Node::Or(children) => fmt_joined(children, " OR ", f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::post::{Entities, Sentiment};

    #[test]
    fn wildcards_match_whole_tokens() {
        let p = Pattern::Wildcard("climat*".into());
        assert!(p.matches("climate") && p.matches("climat") && p.matches("climatology"));
        assert!(!p.matches("#climate") && !p.matches("clima"));
        let infix = Pattern::Wildcard("c*mate".into());
        assert!(infix.matches("climate") && infix.matches("cmate") && !infix.matches("climates"));
        let one = Pattern::Wildcard("c?t".into());
        assert!(one.matches("cat") && one.matches("cöt") && !one.matches("ct") && !one.matches("cart"));
        assert_eq!(infix.literal_prefix(), "c");
        assert_eq!(Pattern::Wildcard("#clim*".into()).literal_prefix(), "#clim");
    }

    /// The textbook recursive definition, as an oracle for [`glob`].
    fn glob_by_definition(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|skip| glob_by_definition(rest, &t[skip..])),
            Some(('?', rest)) => !t.is_empty() && glob_by_definition(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && glob_by_definition(rest, &t[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_its_definition(p in "[ab*?]{0,7}", t in "[abc]{0,9}") {
            let (p, t): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
            proptest::prop_assert_eq!(glob(&p, &t), glob_by_definition(&p, &t));
        }
    }

    #[test]
    fn glob_is_not_exponential() {
        let p = Pattern::Wildcard(format!("{}b", "a*".repeat(30)));
        assert!(!p.matches(&"a".repeat(200)));
    }

    #[test]
    fn sentiment_classes_follow_vader_thresholds() {
        assert_eq!(SentimentClass::of_compound(-0.05), SentimentClass::Negative);
        assert_eq!(SentimentClass::of_compound(-0.049), SentimentClass::Neutral);
        assert_eq!(SentimentClass::of_compound(0.049), SentimentClass::Neutral);
        assert_eq!(SentimentClass::of_compound(0.05), SentimentClass::Positive);
    }

    #[test]
    fn fields_match_post_metadata() {
        let post = Post {
            platform: "Bluesky".into(),
            lang: Some("de-AT".into()),
            reply_to: Some("1".into()),
            sentiment: Some(Sentiment {
                compound: -0.4,
                ..Default::default()
            }),
            entities: Some(Entities {
                domains: vec!["news.example.org".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(Field::Lang("de".into()).matches(&post));
        assert!(!Field::Lang("d".into()).matches(&post));
        assert!(Field::Platform("bluesky".into()).matches(&post));
        assert!(Field::Domain("example.org".into()).matches(&post));
        assert!(Field::Domain("news.example.org".into()).matches(&post));
        assert!(!Field::Domain("ample.org".into()).matches(&post));
        assert!(Field::Sentiment(SentimentClass::Negative).matches(&post));
        assert!(Field::IsReply.matches(&post) && !Field::IsRepost.matches(&post));
        let bare = Post::default();
        assert!(!Field::Sentiment(SentimentClass::Neutral).matches(&bare));
        assert!(!Field::Domain("example.org".into()).matches(&bare));
    }

    #[test]
    fn constructors_flatten() {
        let t = |s: &str| Node::Term(Pattern::Exact(s.into()));
        let n = Node::and(vec![t("a"), Node::and(vec![t("b"), t("c")])]);
        assert_eq!(n, Node::And(vec![t("a"), t("b"), t("c")]));
        assert_eq!(Node::or(vec![t("a")]), t("a"));
    }
}
