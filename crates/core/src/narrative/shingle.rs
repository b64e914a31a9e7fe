//! Normalised shingles of a post's text.
//!
//! The idea: near-duplicates differ in the details that copy-paste
//! campaigns and retweets vary — who is mentioned, which tracking
//! parameters a link carries, case, accents, emoji, punctuation — so those
//! are normalised away before the text is cut into shingles. Starting from
//! the shared tokeniser's folded tokens ([`crate::text`]):
//!
//! - a leading `RT @handle:` (also repeated) is dropped;
//! - every mention becomes the same single token `@` (the handle is not
//!   kept: the text's shape is what matters, and it keeps handles out);
//!   a handle with a domain (`@name.bsky.social`) is one mention too;
//! - a hashtag or cashtag is one token with its sigil (`#climate`), so it
//!   differs from the plain word; the plain word the tokeniser also emits at
//!   the same position is skipped;
//! - a link becomes one token: its host (lower case, without `www.`) and
//!   path, without scheme, query or fragment, so `?utm_...` variants agree.
//!   Link tokens go after the text's own tokens. Texts holding a link or a
//!   mention are re-tokenised with each link removed and each mention
//!   replaced by a plain `@m`, since tokens carry no link or handle
//!   boundaries;
//! - emoji and punctuation are already not tokens;
//! - CJK text has one token per character; consecutive CJK characters are
//!   turned into overlapping character bigrams (a run of one stays a single
//!   character), because single characters are too common to tell texts
//!   apart.
//!
//! The resulting units are cut into shingles of `words` consecutive units
//! (1 = the set of units), each hashed to 64 bits; a text with fewer units
//! than `words` gives one shingle of all its units. Only the first
//! [`MAX_UNITS`] units are used, bounding the cost of very long texts.

use super::minhash::{hash_bytes, splitmix};
use crate::text::{tokenize, TokenKind, TokenizedText};

/// Units beyond this many (a long Reddit post) are ignored.
pub const MAX_UNITS: usize = 1024;

const SEED_WORD: u64 = 0x11;
const SEED_TAG: u64 = 0x22;
const SEED_LINK: u64 = 0x33;
const SEED_CJK: u64 = 0x44;
/// The one unit every mention becomes.
const MENTION_UNIT: u64 = 0x6D65_6E74_696F_6E00;

/// Reusable buffers for shingling; one per clusterer.
#[derive(Debug, Default)]
pub struct Shingler {
    retokenized: TokenizedText,
    cleaned: String,
    link: String,
    links: Vec<u64>,
    units: Vec<u64>,
    cjk_run: Vec<u64>,
    shingles: Vec<u64>,
}

impl Shingler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The distinct shingle hashes of `text`, sorted. `tokens` must be
    /// `text` tokenised by [`crate::text::tokenize`].
    pub fn shingles(&mut self, text: &str, tokens: &TokenizedText, words: usize) -> &[u64] {
        self.units.clear();
        self.links.clear();
        if needs_cleaning(text) {
            self.clean(text);
            let mut retokenized = std::mem::take(&mut self.retokenized);
            tokenize(&self.cleaned, &mut retokenized);
            self.push_token_units(&retokenized);
            self.retokenized = retokenized;
        } else {
            self.push_token_units(tokens);
        }
        let room = MAX_UNITS.saturating_sub(self.units.len());
        self.units.extend(self.links.iter().take(room));
        self.units.truncate(MAX_UNITS);

        self.shingles.clear();
        let words = words.max(1);
        if words == 1 {
            self.shingles.extend_from_slice(&self.units);
        } else if self.units.len() < words {
            if !self.units.is_empty() {
                self.shingles.push(combine(&self.units));
            }
        } else {
            self.shingles.extend(self.units.windows(words).map(combine));
        }
        self.shingles.sort_unstable();
        self.shingles.dedup();
        &self.shingles
    }

    /// Turns tokens into units (see the module doc).
    fn push_token_units(&mut self, tokens: &TokenizedText) {
        let toks = tokens.tokens();
        // Plain tokens at positions up to this one belong to a tag, mention
        // or dropped `RT @x` prefix already handled.
        let mut skip_through: Option<u32> = None;
        let mut next = 0usize;
        let mut expected_position = 0u32;
        // Leading `RT @handle` prefixes.
        while let (Some(rt), Some(mention)) = (toks.get(next), toks.get(next + 1)) {
            let is_rt = rt.kind == TokenKind::Word && rt.position == expected_position && tokens.text(rt) == "rt";
            if !(is_rt && mention.kind == TokenKind::Mention && mention.position == rt.position + 1) {
                break;
            }
            skip_through = Some(mention.last_position);
            expected_position = mention.last_position + 1;
            // Past the mention and the plain word(s) under it.
            next += 2;
            while toks.get(next).is_some_and(|t| t.position <= mention.last_position) {
                next += 1;
            }
        }
        let mut last_cjk_position: Option<u32> = None;
        for tok in toks.get(next..).unwrap_or(&[]) {
            if self.units.len() >= MAX_UNITS {
                break;
            }
            let text = tokens.text(tok);
            match tok.kind {
                TokenKind::Hashtag | TokenKind::Cashtag | TokenKind::Mention => {
                    self.flush_cjk();
                    last_cjk_position = None;
                    let unit = if tok.kind == TokenKind::Mention {
                        MENTION_UNIT
                    } else {
                        hash_bytes(text.as_bytes(), SEED_TAG)
                    };
                    self.units.push(unit);
                    skip_through = Some(tok.last_position);
                }
                _ if skip_through.is_some_and(|s| tok.position <= s) => {}
                TokenKind::Word => {
                    self.flush_cjk();
                    last_cjk_position = None;
                    self.units.push(hash_bytes(text.as_bytes(), SEED_WORD));
                }
                TokenKind::Cjk => {
                    if last_cjk_position.map(|p| p + 1) != Some(tok.position) {
                        self.flush_cjk();
                    }
                    last_cjk_position = Some(tok.position);
                    self.cjk_run.push(hash_bytes(text.as_bytes(), SEED_CJK));
                }
            }
        }
        self.flush_cjk();
    }

    /// Emits the pending CJK run as character bigrams.
    fn flush_cjk(&mut self) {
        match self.cjk_run.as_slice() {
            [] => {}
            [one] => self.units.push(*one),
            run => {
                for pair in run.windows(2) {
                    self.units.push(splitmix(pair[0].rotate_left(23) ^ pair[1]));
                }
            }
        }
        self.cjk_run.clear();
    }

    /// Copies `text` into `self.cleaned` without its links and with each
    /// mention as `@m`, and pushes each link's unit to `self.links`.
    fn clean(&mut self, text: &str) {
        self.cleaned.clear();
        for chunk in text.split_whitespace() {
            if let Some(at) = link_start(chunk) {
                self.cleaned.push_str(chunk.get(..at).unwrap_or(""));
                self.cleaned.push(' ');
                let raw = chunk.get(at..).unwrap_or("");
                if let Some(unit) = self.link_unit(raw) {
                    self.links.push(unit);
                }
            } else if let Some(at) = mention_start(chunk) {
                self.cleaned.push_str(chunk.get(..at).unwrap_or(""));
                self.cleaned.push_str(" @m ");
            } else {
                self.cleaned.push_str(chunk);
                self.cleaned.push(' ');
            }
        }
    }

    /// The unit of one link: hash of lower-case host (no `www.`) + path,
    /// without scheme, query, fragment and trailing punctuation or `/`.
    fn link_unit(&mut self, raw: &str) -> Option<u64> {
        let rest = strip_prefix_ignore_case(raw, "https://")
            .or_else(|| strip_prefix_ignore_case(raw, "http://"))
            .unwrap_or(raw);
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        let rest = rest.get(..end).unwrap_or(rest);
        let rest = rest.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '/']);
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = strip_prefix_ignore_case(host, "www.").unwrap_or(host);
        if host.is_empty() {
            return None;
        }
        self.link.clear();
        self.link.push_str(host);
        self.link.make_ascii_lowercase();
        self.link.push_str(path);
        Some(hash_bytes(self.link.as_bytes(), SEED_LINK))
    }
}

/// Combines the units of one shingle, order-sensitively.
fn combine(units: &[u64]) -> u64 {
    units
        .iter()
        .fold(0x0053_4849_4E47_4C45_u64, |h, &u| splitmix(h.rotate_left(17) ^ u))
}

/// Whether `text` may hold a link or a mention (cheap pre-check).
fn needs_cleaning(text: &str) -> bool {
    text.contains('@') || text.contains('＠') || text.contains("://") || text.contains("www.") || text.contains("WWW.")
}

/// Where a mention starts inside a whitespace-free chunk: an `@` (or
/// full-width `＠`) at the start or after a character that is not a letter
/// or digit (so `name@example.org` is not one), followed by a handle
/// character.
fn mention_start(chunk: &str) -> Option<usize> {
    let mut prev: Option<char> = None;
    let mut chars = chunk.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_handle = chars.peek().is_some_and(|&(_, n)| n.is_alphanumeric() || n == '_');
        if (c == '@' || c == '＠') && !prev.is_some_and(char::is_alphanumeric) && next_is_handle {
            return Some(i);
        }
        prev = Some(c);
    }
    None
}

/// Where a link starts inside a whitespace-free chunk, if it holds one.
fn link_start(chunk: &str) -> Option<usize> {
    let lower_starts = |i: usize, p: &str| {
        chunk
            .as_bytes()
            .get(i..i + p.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(p.as_bytes()))
    };
    (0..chunk.len())
        .filter(|&i| chunk.is_char_boundary(i))
        .find(|&i| lower_starts(i, "http://") || lower_starts(i, "https://") || lower_starts(i, "www."))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units_of(text: &str, words: usize) -> Vec<u64> {
        let mut t = TokenizedText::new();
        tokenize(text, &mut t);
        Shingler::new().shingles(text, &t, words).to_vec()
    }

    #[test]
    fn case_accents_emoji_and_punctuation_do_not_matter() {
        assert_eq!(
            units_of("Rent prices are RISING again, café owners say!", 1),
            units_of("rent prices are rising again cafe owners say 🔥🔥", 1)
        );
    }

    #[test]
    fn mentions_become_one_token_and_rt_prefixes_are_dropped() {
        let plain = units_of("@alice_example the vote was rigged", 1);
        assert_eq!(plain, units_of("@bob_example.bsky.social the vote was rigged", 1));
        assert_eq!(plain, units_of("(@carol_example) the vote was rigged", 1));
        assert_eq!(plain.len(), 5); // @, the, vote, was, rigged
        assert_eq!(
            units_of("RT @carol_example: RT @dan_example: the vote was rigged", 1),
            units_of("the vote was rigged", 1)
        );
        // `rt` elsewhere is an ordinary word; e-mail addresses are not
        // mentions.
        assert_eq!(units_of("rt the vote", 1).len(), 3);
        assert_eq!(units_of("write to desk@news.example", 1).len(), 5);
    }

    #[test]
    fn hashtags_differ_from_plain_words_and_count_once() {
        let tagged = units_of("flood #warning", 1);
        assert_eq!(tagged.len(), 2);
        assert_ne!(tagged, units_of("flood warning", 1));
    }

    #[test]
    fn links_are_one_token_without_scheme_query_or_www() {
        let a = units_of("read this https://www.News.example/a/b?utm_source=x now", 1);
        let b = units_of("read this http://news.example/a/b/ now", 1);
        let c = units_of("read this news.example now", 1);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4); // read, this, now, the link
        assert_ne!(a, c);
        assert_ne!(a, units_of("read this https://news.example/other now", 1));
    }

    #[test]
    fn cjk_runs_become_character_bigrams() {
        // 地震速報 → 地震, 震速, 速報; 東 alone stays one unit.
        assert_eq!(units_of("地震速報", 1).len(), 3);
        assert_eq!(units_of("東", 1).len(), 1);
        assert_eq!(units_of("地震 abc 速報", 1).len(), 3);
    }

    #[test]
    fn word_shingles_of_several_units() {
        assert_eq!(units_of("red green blue black", 3).len(), 2);
        assert_eq!(units_of("red green", 3).len(), 1);
        assert!(units_of("", 3).is_empty());
        // Order matters for shingles of more than one word.
        assert_ne!(units_of("red green blue", 2), units_of("blue green red", 2));
        assert_eq!(units_of("red green blue", 1), units_of("blue green red", 1));
        assert_eq!(units_of("the red and the green", 1).len(), 4);
    }
}
