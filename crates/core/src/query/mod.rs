//! The query language of detection feeds (Brandwatch / Lucene style).
//!
//! A query is parsed once into a [`Query`] (a [`Node`] tree whose words are
//! already folded like post text), then matched against posts: by the naive
//! reference evaluator [`eval::matches`] here, and by the compiled matcher,
//! which indexes feeds by their [`Anchors`]. History search reuses the same
//! tree.
//!
//! # Syntax
//!
//! | Query | Matches a post that… |
//! |---|---|
//! | `climate` | has the word (any case, any accents: `cafe` finds `Café`) |
//! | `"climate change"` | has the words adjacent, in order |
//! | `"climate change"~2` | has them in order with ≤ 2 words inserted in total |
//! | `a AND b`, `a b` | has both (adjacent operands are an implicit AND) |
//! | `a OR b` | has either |
//! | `NOT a`, `-a` | does not have `a` (a query may be purely negative) |
//! | `a NEAR/3 b` | has `a` and `b`, either order, ≤ 3 words between them |
//! | `climat*`, `c*mate`, `wom?n` | has a word matching the wildcard |
//! | `#climate`, `$tsla`, `@alice_example` | has the hashtag / cashtag / mention |
//! | `lang:de` | is in German (`de`, `de-at`, …) |
//! | `platform:bluesky` | comes from that platform |
//! | `domain:example.org` | links to that domain or a subdomain (`news.example.org`) |
//! | `sentiment:negative` | has VADER compound ≤ -0.05 (`positive` ≥ 0.05, else `neutral`) |
//! | `is:repost`, `is:reply` | is a repost / a reply |
//!
//! Operators are upper case (`and` is a word). Typographic quotes (`“…”`,
//! `„…“`) delimit phrases like `"`. Precedence, tightest first:
//! `NEAR/n`, then `NOT`/`-`, then `AND` (explicit or implicit), then `OR`;
//! so `a b OR c` is `(a AND b) OR c`, and `NOT a NEAR/2 b` is
//! `NOT (a NEAR/2 b)`. Parentheses group.
//!
//! There is no `author:` field, nor `from:`, `user:`, `by:` or any other way
//! to select posts by who wrote them: tidewatch watches topics, not people,
//! and such a query is a parse error saying so.
//!
//! # Words
//!
//! Terms and phrases are cut and folded by [`crate::text::tokenize`], the
//! same function that tokenises posts; see there for the rules (case and
//! diacritic folding, CJK characters as single tokens, tags). A bare term
//! that tokenises into several words is a phrase: `e-mail` is `"e mail"`,
//! `地震` is the phrase `"地 震"` and so finds 地震 inside a Japanese
//! sentence. The plain word `climate` also finds the hashtag `#climate`;
//! the query `#climate` finds only the hashtag.
//!
//! A wildcard term is one word: at least one letter or digit (after an
//! optional sigil) before the first `*`/`?`, letters and digits only, no
//! CJK. `*` matches any run of characters, `?` exactly one, within a token.
//! Wildcards may appear inside phrases (`"climat* change"`); there a word
//! is a pattern if it has a `*` or a `?` before another character
//! (`"wom?n rights"`), so a quoted question `"is it true?"` stays a plain
//! phrase, while a bare `true?` is a wildcard.
//!
//! # Positions, phrases and NEAR, precisely
//!
//! Every word and every CJK character has a position (0, 1, 2, …); a tag
//! shares the position of its word (`#東京2020` spans the positions of
//! `東`, `京`, `2020`). An occurrence of a term is the span of the token it
//! matches; of a phrase `"w1 … wk"~s`, tokens t1 … tk matching w1 … wk with
//! each ti starting after t(i-1) ends, the number of positions between
//! consecutive ones summing to at most `s` (so the words stay in order;
//! `"a b"~0` is the exact phrase). `x NEAR/n y` needs an occurrence of `x`
//! and one of `y` that do not overlap and have at most `n` positions
//! strictly between them, in either order (`NEAR/0`: adjacent). NEAR
//! operands are terms, phrases, or a parenthesised OR of terms and phrases;
//! NEAR does not chain.
//!
//! # Canonical form
//!
//! `Query`'s `Display` (and [`Query::normalized`]) prints explicit
//! operators, parentheses around every nested AND, OR and NEAR, and folded
//! words: `Climate -Hoax OR "Café Au lait"` prints as
//! `(climate AND NOT hoax) OR "cafe au lait"`. Parsing it gives the same tree.

//!
//! # For the compiled matcher
//!
//! - Tokenise each post once with [`crate::text::tokenize`] into a reused
//!   [`crate::text::TokenizedText`]; every [`Pattern`] is compared with a
//!   token's folded text ([`Pattern::matches`]), positions come from
//!   [`crate::text::Token::position`] / `last_position`.
//! - [`Field::matches`] evaluates a field on a `Post`.
//! - [`Query::anchors`] gives the presearch sets, with the soundness
//!   contract documented in [`anchors`]; [`Node`] lists the tree's
//!   invariants.
//! - [`eval::matches`] is the oracle: the compiled matcher must return
//!   exactly the feeds for which it is true.

pub mod anchors;
pub mod ast;
pub mod eval;
pub mod parse;

pub use anchors::{Anchor, Anchors};
pub use ast::{Field, Node, Pattern, SentimentClass};
pub use parse::{ParseError, ParseErrorKind};

use std::fmt;
use std::str::FromStr;

/// A parsed query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    root: Node,
}

impl Query {
    /// Parses a query; the error names the column and what was expected.
    pub fn parse(text: &str) -> Result<Query, ParseError> {
        parse::parse(text).map(|root| Query { root })
    }

    /// Wraps a tree built by hand (it should keep the invariants listed on
    /// [`Node`]; the parser's trees always do).
    pub fn from_node(root: Node) -> Query {
        Query { root }
    }

    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The canonical form: re-parses to the same tree.
    pub fn normalized(&self) -> String {
        self.root.to_string()
    }

    /// What a post must contain to possibly match; see [`anchors`] for the
    /// contract the compiled matcher relies on.
    pub fn anchors(&self) -> Anchors {
        Anchors::of(&self.root)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

impl FromStr for Query {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Query, ParseError> {
        Query::parse(s)
    }
}

#[cfg(test)]
mod tests;
