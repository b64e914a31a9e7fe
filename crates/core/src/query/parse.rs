//! The parser: query text → [`Node`] tree, or a [`ParseError`] naming the
//! column and what was expected.
//!
//! Two steps. The lexer cuts the text into parentheses, operators, quoted
//! phrases and bare chunks, remembering each one's column. The recursive
//! descent parser then follows the grammar (tightest first):
//!
//! ```text
//! query   = or
//! or      = and ("OR" and)*
//! and     = unary (["AND"] unary)*          adjacent operands: implicit AND
//! unary   = ("NOT" | "-") unary | near
//! near    = primary ["NEAR/" n primary]
//! primary = "(" or ")" | "\"phrase\"" ["~" n] | field:value | term
//! ```
//!
//! Words in terms and phrases are cut and folded by [`crate::text::tokenize`],
//! exactly like post text; a bare chunk that yields several tokens
//! (`e-mail`, `地震`) becomes a phrase.

use super::ast::{Field, Node, Pattern, SentimentClass};
use crate::text::{tokenize, TokenKind, TokenizedText};
use std::fmt;

/// Field names that would select posts by who wrote (or received) them.
/// tidewatch watches topics, not people, so these are refused with an
/// explanation rather than "unknown field".
const PERSON_FIELDS: &[&str] = &[
    "author",
    "authors",
    "from",
    "to",
    "user",
    "username",
    "users",
    "by",
    "handle",
    "screen_name",
    "screenname",
    "account",
    "author_id",
    "user_id",
    "uid",
    "profile",
    "poster",
    "writer",
    "nick",
    "nickname",
];

/// What went wrong, without the position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty query: expected a term, a phrase, a field or '('")]
    Empty,
    #[error("expected {expected}, found {found}")]
    Expected { expected: &'static str, found: String },
    #[error("unclosed quote: expected a closing '\"'")]
    UnclosedQuote,
    #[error("expected ')' to close the '(' at column {open}, found {found}")]
    UnclosedParen { open: usize, found: String },
    #[error("too deeply nested: at most {max} levels of parentheses and NOT")]
    TooDeep { max: usize },
    #[error("unexpected ')' without a matching '('")]
    UnmatchedParen,
    #[error("expected a number of words after 'NEAR/', as in NEAR/3")]
    BadNear,
    #[error("expected a number after '~', as in \"climate change\"~2")]
    BadSlop,
    #[error("number too large: at most {max}")]
    NumberTooLarge { max: u32 },
    #[error("a NEAR operand must be a term, a phrase, or a parenthesised OR of terms and phrases")]
    NearOperand,
    #[error("NEAR cannot be chained: write (a NEAR/n b) AND (b NEAR/n c)")]
    ChainedNear,
    #[error("'{text}' has no letters or digits to search for")]
    NothingToSearch { text: String },
    #[error("'~' is only allowed right after a quoted phrase, as in \"climate change\"~2")]
    Fuzzy,
    #[error("bad wildcard '{text}': {reason}")]
    BadWildcard { text: String, reason: &'static str },
    #[error("tidewatch never selects posts by author or account: there is no '{field}:' field (it watches topics, not people)")]
    PersonField { field: String },
    #[error("unknown field '{field}:'; the fields are lang:, platform:, domain:, sentiment: and is:")]
    UnknownField { field: String },
    #[error("bad value for '{field}:': expected {expected}")]
    BadFieldValue { field: String, expected: &'static str },
}

/// A query that could not be parsed: what went wrong and where.
///
/// `Display` prints the message with the column, then the query with a caret
/// under that column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// 1-based character index in the query (one past the end for "found
    /// end of query").
    pub column: usize,
    /// The query text, for pointing at the column.
    pub query: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} at column {}", self.kind, self.column)?;
        writeln!(f, "  {}", self.query)?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl std::error::Error for ParseError {}

/// Parses a query into its tree.
pub fn parse(query: &str) -> Result<Node, ParseError> {
    let fail = |(kind, column)| ParseError {
        kind,
        column,
        query: query.to_string(),
    };
    let chars: Vec<char> = query.chars().collect();
    let lexemes = lex(&chars).map_err(fail)?;
    let mut p = Parser {
        lexemes,
        next: 0,
        end_column: chars.len() + 1,
        depth: 0,
        scratch: TokenizedText::new(),
    };
    p.parse_query().map_err(fail)
}

type Fail = (ParseErrorKind, usize);

/// The deepest nesting of parentheses and `NOT`s accepted: the tree is
/// walked recursively, so unbounded nesting could exhaust the stack.
pub const MAX_DEPTH: usize = 100;

#[derive(Clone, Debug, PartialEq)]
enum Lex {
    Open,
    Close,
    And,
    Or,
    Not,
    Minus,
    Near(u32),
    Phrase { text: String, slop: u32 },
    Chunk(String),
}

#[derive(Clone, Debug)]
struct Lexeme {
    lex: Lex,
    column: usize,
}

/// Quotation marks: the ASCII one, and the typographic ones a query pasted
/// from a word processor carries.
fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”' | '„')
}

fn is_chunk_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')') || is_quote(c)
}

/// Reads decimal digits starting at `i`; `None` if there are none.
fn number(chars: &[char], i: usize) -> Result<Option<(u32, usize)>, Fail> {
    let mut j = i;
    let mut value: u64 = 0;
    while let Some(d) = chars.get(j).and_then(|c| c.to_digit(10)) {
        value = value * 10 + u64::from(d);
        if value > u64::from(u32::MAX) {
            return Err((ParseErrorKind::NumberTooLarge { max: u32::MAX }, i + 1));
        }
        j += 1;
    }
    Ok((j > i).then_some((value as u32, j)))
}

fn lex(chars: &[char]) -> Result<Vec<Lexeme>, Fail> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let lex = match c {
            '(' => {
                i += 1;
                Lex::Open
            }
            ')' => {
                i += 1;
                Lex::Close
            }
            _ if is_quote(c) => {
                let Some(len) = chars[i + 1..].iter().position(|&c| is_quote(c)) else {
                    return Err((ParseErrorKind::UnclosedQuote, column));
                };
                let text: String = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 2;
                let mut slop = 0;
                if chars.get(i) == Some(&'~') {
                    match number(chars, i + 1)? {
                        Some((n, next)) => {
                            slop = n;
                            i = next;
                        }
                        None => return Err((ParseErrorKind::BadSlop, i + 2)),
                    }
                }
                Lex::Phrase { text, slop }
            }
            '-' if chars
                .get(i + 1)
                .is_some_and(|&n| !is_chunk_end(n) || n == '(' || is_quote(n)) =>
            {
                i += 1;
                Lex::Minus
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_chunk_end(chars[i]) {
                    i += 1;
                }
                let chunk: String = chars[start..i].iter().collect();
                match chunk.as_str() {
                    "AND" => Lex::And,
                    "OR" => Lex::Or,
                    "NOT" => Lex::Not,
                    "NEAR" => return Err((ParseErrorKind::BadNear, i + 1)),
                    _ if chunk.starts_with("NEAR/") => {
                        let digits = start + 5;
                        match number(chars, digits)? {
                            Some((n, end)) if end == i => Lex::Near(n),
                            _ => return Err((ParseErrorKind::BadNear, digits + 1)),
                        }
                    }
                    _ => Lex::Chunk(chunk),
                }
            }
        };
        out.push(Lexeme { lex, column });
    }
    Ok(out)
}

fn describe(lex: Option<&Lex>) -> String {
    match lex {
        None => "end of query".into(),
        Some(Lex::Open) => "'('".into(),
        Some(Lex::Close) => "')'".into(),
        Some(Lex::And) => "AND".into(),
        Some(Lex::Or) => "OR".into(),
        Some(Lex::Not) => "NOT".into(),
        Some(Lex::Minus) => "'-'".into(),
        Some(Lex::Near(n)) => format!("NEAR/{n}"),
        Some(Lex::Phrase { text, .. }) => format!("\"{text}\""),
        Some(Lex::Chunk(c)) => format!("'{c}'"),
    }
}

const AN_OPERAND: &str = "a term, a phrase, a field or '('";

struct Parser {
    lexemes: Vec<Lexeme>,
    next: usize,
    end_column: usize,
    /// Current nesting of parentheses and `NOT`s.
    depth: usize,
    scratch: TokenizedText,
}

impl Parser {
    fn peek(&self) -> Option<&Lex> {
        self.lexemes.get(self.next).map(|l| &l.lex)
    }

    fn column(&self) -> usize {
        self.lexemes.get(self.next).map_or(self.end_column, |l| l.column)
    }

    fn expected(&self, expected: &'static str) -> Fail {
        (
            ParseErrorKind::Expected {
                expected,
                found: describe(self.peek()),
            },
            self.column(),
        )
    }

    /// Enters one level of nesting, failing past [`MAX_DEPTH`].
    fn descend(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((ParseErrorKind::TooDeep { max: MAX_DEPTH }, self.column()));
        }
        Ok(())
    }

    fn parse_query(&mut self) -> Result<Node, Fail> {
        if self.lexemes.is_empty() {
            return Err((ParseErrorKind::Empty, 1));
        }
        let root = self.parse_or()?;
        match self.peek() {
            None => Ok(root),
            Some(Lex::Close) => Err((ParseErrorKind::UnmatchedParen, self.column())),
            Some(_) => Err(self.expected("AND, OR or the end of the query")),
        }
    }

    fn parse_or(&mut self) -> Result<Node, Fail> {
        let mut children = vec![self.parse_and()?];
        while self.peek() == Some(&Lex::Or) {
            self.next += 1;
            children.push(self.parse_and()?);
        }
        Ok(Node::or(children))
    }

    fn parse_and(&mut self) -> Result<Node, Fail> {
        let mut children = vec![self.parse_unary()?];
        loop {
            match self.peek() {
                Some(Lex::And) => {
                    self.next += 1;
                    children.push(self.parse_unary()?);
                }
                Some(Lex::Open | Lex::Not | Lex::Minus | Lex::Phrase { .. } | Lex::Chunk(_)) => {
                    children.push(self.parse_unary()?)
                }
                _ => break,
            }
        }
        Ok(Node::and(children))
    }

    fn parse_unary(&mut self) -> Result<Node, Fail> {
        if matches!(self.peek(), Some(Lex::Not | Lex::Minus)) {
            self.next += 1;
            self.descend()?;
            let operand = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(operand)));
        }
        self.parse_near()
    }

    fn parse_near(&mut self) -> Result<Node, Fail> {
        let left_column = self.column();
        let left = self.parse_primary()?;
        let Some(&Lex::Near(distance)) = self.peek() else {
            return Ok(left);
        };
        if !left.is_near_operand() {
            return Err((ParseErrorKind::NearOperand, left_column));
        }
        self.next += 1;
        let right_column = self.column();
        let right = self.parse_primary()?;
        if !right.is_near_operand() {
            return Err((ParseErrorKind::NearOperand, right_column));
        }
        if matches!(self.peek(), Some(Lex::Near(_))) {
            return Err((ParseErrorKind::ChainedNear, self.column()));
        }
        Ok(Node::Near {
            left: Box::new(left),
            right: Box::new(right),
            distance,
        })
    }

    fn parse_primary(&mut self) -> Result<Node, Fail> {
        let column = self.column();
        let Some(lexeme) = self.lexemes.get(self.next).cloned() else {
            return Err(self.expected(AN_OPERAND));
        };
        match lexeme.lex {
            Lex::Open => {
                self.next += 1;
                self.descend()?;
                let inner = self.parse_or()?;
                self.depth -= 1;
                if self.peek() != Some(&Lex::Close) {
                    return Err((
                        ParseErrorKind::UnclosedParen {
                            open: column,
                            found: describe(self.peek()),
                        },
                        self.column(),
                    ));
                }
                self.next += 1;
                Ok(inner)
            }
            Lex::Phrase { text, slop } => {
                self.next += 1;
                let mut words = Vec::new();
                for chunk in text.split_whitespace() {
                    self.chunk_patterns(chunk, column, true, &mut words)?;
                }
                match words.len() {
                    0 => Err((ParseErrorKind::NothingToSearch { text }, column)),
                    1 => Ok(Node::Term(words.remove(0))),
                    _ => Ok(Node::Phrase { words, slop }),
                }
            }
            Lex::Chunk(chunk) => {
                self.next += 1;
                self.chunk(&chunk, column)
            }
            _ => Err(self.expected(AN_OPERAND)),
        }
    }

    /// A bare chunk: a field, a wildcard term, or words.
    fn chunk(&mut self, chunk: &str, column: usize) -> Result<Node, Fail> {
        if let Some((name, value)) = chunk.split_once(':') {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                let value_column = column + name.chars().count() + 1;
                return field(name, value, column, value_column).map(Node::Field);
            }
        }
        if chunk.contains('~') {
            return Err((ParseErrorKind::Fuzzy, column));
        }
        let mut words = Vec::new();
        self.chunk_patterns(chunk, column, false, &mut words)?;
        match words.len() {
            0 => Err((ParseErrorKind::NothingToSearch { text: chunk.into() }, column)),
            1 => Ok(Node::Term(words.remove(0))),
            _ => Ok(Node::Phrase { words, slop: 0 }),
        }
    }

    /// Appends the patterns of one space-free chunk of a term or phrase.
    ///
    /// In a bare term both `*` and `?` make a wildcard. Inside quotes a word
    /// is a wildcard if it has a `*`, or a `?` followed by something other
    /// than `?` (`wom?n`); trailing question marks alone are punctuation, so
    /// that a quoted question such as `"is it true?"` stays a plain phrase.
    fn chunk_patterns(
        &mut self,
        chunk: &str,
        column: usize,
        in_phrase: bool,
        out: &mut Vec<Pattern>,
    ) -> Result<(), Fail> {
        let is_wildcard = if in_phrase {
            chunk.contains('*') || chunk.trim_end_matches('?').contains('?')
        } else {
            chunk.contains(['*', '?'])
        };
        if is_wildcard {
            out.push(wildcard(chunk, &mut self.scratch).map_err(|k| (k, column))?);
            return Ok(());
        }
        out.extend(words_of(chunk, &mut self.scratch).into_iter().map(Pattern::Exact));
        Ok(())
    }
}

/// The words of a chunk as the tokeniser cuts them: one per position, a tag
/// in place of the words it covers (`#東京2020` is one word, not four).
fn words_of(chunk: &str, scratch: &mut TokenizedText) -> Vec<String> {
    tokenize(chunk, scratch);
    let mut words = Vec::new();
    let mut covered_until = 0;
    for (text, token) in scratch.iter() {
        if token.position < covered_until {
            continue;
        }
        words.push(text.to_string());
        covered_until = token.last_position + 1;
    }
    words
}

/// A wildcard term: literal segments of letters and digits around `*` and
/// `?`, starting with at least one literal character (an optional sigil
/// first), all within one word.
fn wildcard(chunk: &str, scratch: &mut TokenizedText) -> Result<Pattern, ParseErrorKind> {
    let bad = |reason| ParseErrorKind::BadWildcard {
        text: chunk.to_string(),
        reason,
    };
    let (sigil, body) = match chunk.chars().next() {
        Some(s @ ('#' | '$' | '@')) => (Some(s), &chunk[1..]),
        _ => (None, chunk),
    };
    if body.starts_with(['*', '?']) {
        return Err(bad(
            "it must start with a letter or digit (leading wildcards are not supported)",
        ));
    }
    let mut pattern = String::new();
    if let Some(s) = sigil {
        pattern.push(s);
    }
    let mut literal = String::new();
    let flush = |literal: &mut String, pattern: &mut String, scratch: &mut TokenizedText| {
        if literal.is_empty() {
            return Ok(());
        }
        if literal
            .chars()
            .any(|c| !(c.is_alphanumeric() || c == '_') || crate::text::is_cjk(c))
        {
            return Err(bad(
                "a wildcard applies to one word of letters and digits (not CJK, not punctuation)",
            ));
        }
        tokenize(literal, scratch);
        match scratch.tokens() {
            [only] if only.kind == TokenKind::Word => pattern.push_str(scratch.text(only)),
            _ => return Err(bad("a wildcard applies to one word of letters and digits")),
        }
        literal.clear();
        Ok(())
    };
    for c in body.chars() {
        if c == '*' || c == '?' {
            flush(&mut literal, &mut pattern, scratch)?;
            pattern.push(c);
        } else {
            literal.push(c);
        }
    }
    flush(&mut literal, &mut pattern, scratch)?;
    Ok(Pattern::Wildcard(pattern))
}

fn field(name: &str, value: &str, column: usize, value_column: usize) -> Result<Field, Fail> {
    let lower = name.to_ascii_lowercase();
    if PERSON_FIELDS.contains(&lower.as_str()) {
        return Err((ParseErrorKind::PersonField { field: lower }, column));
    }
    let bad = |expected| {
        (
            ParseErrorKind::BadFieldValue {
                field: lower.clone(),
                expected,
            },
            value_column,
        )
    };
    let value = value.to_lowercase();
    let simple =
        |extra: &[char]| !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    match lower.as_str() {
        "lang" => {
            let ok = simple(&['-', '_'])
                && value.starts_with(|c: char| c.is_ascii_alphabetic())
                && !value.ends_with(['-', '_']);
            if ok {
                Ok(Field::Lang(value))
            } else {
                Err(bad("a language code such as de or pt-br"))
            }
        }
        "platform" => {
            if simple(&['-', '_', '.']) {
                Ok(Field::Platform(value))
            } else {
                Err(bad("a platform name such as bluesky"))
            }
        }
        "domain" => {
            let mut d = value.trim_end_matches('.');
            while let Some(rest) = d.strip_prefix("www.") {
                d = rest;
            }
            let ok = d.contains('.')
                && !d.starts_with(['.', '-'])
                && !d.contains("..")
                && d.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
            if ok {
                Ok(Field::Domain(d.to_string()))
            } else {
                Err(bad("a domain such as example.org"))
            }
        }
        "sentiment" => match value.as_str() {
            "negative" => Ok(Field::Sentiment(SentimentClass::Negative)),
            "neutral" => Ok(Field::Sentiment(SentimentClass::Neutral)),
            "positive" => Ok(Field::Sentiment(SentimentClass::Positive)),
            _ => Err(bad("negative, neutral or positive")),
        },
        "is" => match value.as_str() {
            "repost" => Ok(Field::IsRepost),
            "reply" => Ok(Field::IsReply),
            _ => Err(bad("repost or reply")),
        },
        _ => Err((ParseErrorKind::UnknownField { field: lower }, column)),
    }
}
