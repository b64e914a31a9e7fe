//! Tokenisation of a post's text: done once per post, shared by every feed.
//!
//! The idea: fold the text into one lower-case, accent-free `String` buffer
//! and describe each token as a byte range of that buffer plus its word
//! position. No allocation per token; a reused [`TokenizedText`] makes
//! tokenising a tweet a single pass over its bytes, with a fast path for
//! ASCII.
//!
//! Query terms are tokenised by this same function (see `crate::query`), so
//! whatever rule is chosen here, a query written like the text matches it.
//!
//! # Rules
//!
//! - **Words** are maximal runs of letters, digits, marks and `_` (a
//!   simplified form of Unicode word boundaries, UAX #29). `.` and `,`
//!   join digits (`3.5`, `1,000`). Unlike UAX #29, an apostrophe or a period
//!   between letters splits the word (`l'eau` → `l`, `eau`;
//!   `end.Next` → `end`, `next`): a query for `eau` should find `l'eau`, and
//!   a query `l'eau` still matches as the phrase `l eau`.
//! - **Folding**: every character is decomposed (NFKD, so full-width `Ａ` is
//!   `a`), combining diacritics are dropped, and the rest is lower-cased:
//!   `Café` → `cafe`, `Überschwemmung` → `uberschwemmung`. A few letters that
//!   have no decomposition are folded as search engines usually do:
//!   `ß` → `ss`, `æ` → `ae`, `œ` → `oe`, `ø` → `o`, `ł` → `l`, `đ` → `d`,
//!   `ı` → `i`, final `ς` → `σ`. `й` keeps its breve (it is a distinct Cyrillic letter), and
//!   marks of other scripts (Devanagari vowel signs, …) are kept as part of
//!   the word; Arabic harakat and Hebrew points are dropped, like Latin
//!   accents.
//! - **CJK** (Han, Hiragana, Katakana, Hangul) has no spaces between words,
//!   so each CJK character is a token at its own position. A query `地震`
//!   is then the two-token phrase `地 震`, and finds `地震` inside any
//!   sentence. Other scripts written without spaces (Thai, Khmer, …) are
//!   kept as whole runs.
//! - **Hashtags, cashtags, mentions**: `#Climate` yields two tokens at the
//!   same position: the tag `#climate` (kind [`TokenKind::Hashtag`]) and the
//!   plain word `climate`. So the query `#climate` finds only the hashtag,
//!   while the plain query `climate` finds both the word and the hashtag —
//!   what social-listening users expect. The same holds for `$TSLA`
//!   (`$tsla` + `tsla`) and `@alice_example` (`@alice_example` +
//!   `alice_example`). A sigil counts only at the start of a word (not in
//!   `C#` or `&#39;`); `#1` is not a hashtag and `$100` is not a cashtag. A
//!   tag's body runs over letters, digits, `_` and CJK characters, so
//!   `#東京2020` is one tag covering three positions (`東`, `京`, `2020`);
//!   [`Token::last_position`] says where it ends.
//! - Everything else (spaces, punctuation, emoji, symbols) separates tokens
//!   and is not searchable.
//!
//! Tokens are listed by position; at a position holding a tag, the tag comes
//! first, then the plain word.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// What a [`Token`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A folded word of letters and digits.
    Word,
    /// One Han, Hiragana, Katakana or Hangul character.
    Cjk,
    /// `#tag`, sigil included.
    Hashtag,
    /// `$tag`, sigil included.
    Cashtag,
    /// `@handle`, sigil included.
    Mention,
}

impl TokenKind {
    /// Whether this is a hashtag, cashtag or mention (its text starts with
    /// the sigil).
    pub fn is_tag(self) -> bool {
        matches!(self, TokenKind::Hashtag | TokenKind::Cashtag | TokenKind::Mention)
    }
}

/// One token: a byte range of [`TokenizedText::folded`] and its word
/// position(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Start of the token's text in the folded buffer (bytes).
    pub start: u32,
    /// End (exclusive) of the token's text in the folded buffer (bytes).
    pub end: u32,
    /// The word position of the token (0-based, counted over words and CJK
    /// characters).
    pub position: u32,
    /// The last position the token covers: equal to `position` except for a
    /// tag whose body spans several positions (`#東京2020`).
    pub last_position: u32,
    pub kind: TokenKind,
}

/// The tokens of one text, in reusable buffers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenizedText {
    folded: String,
    tokens: Vec<Token>,
    positions: u32,
}

impl TokenizedText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the buffers, keeping their capacity.
    pub fn clear(&mut self) {
        self.folded.clear();
        self.tokens.clear();
        self.positions = 0;
    }

    /// The tokens, ordered by position (a tag before the plain word at the
    /// same position).
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The folded text of a token of this text.
    pub fn text(&self, token: &Token) -> &str {
        self.folded.get(token.start as usize..token.end as usize).unwrap_or("")
    }

    /// `(text, token)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Token)> + '_ {
        self.tokens.iter().map(move |t| (self.text(t), t))
    }

    /// The folded buffer the tokens point into. It also holds the sigils
    /// and number punctuation; it is not meant to be read as text.
    pub fn folded(&self) -> &str {
        &self.folded
    }

    /// The number of word positions (one more than the last position).
    pub fn position_count(&self) -> u32 {
        self.positions
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Tokenises `text` into `out` (cleared first; its buffers are reused).
pub fn tokenize(text: &str, out: &mut TokenizedText) {
    out.clear();
    let mut b = Builder {
        out,
        pos: 0,
        word_start: None,
        tag: None,
        prev_blocks_sigil: false,
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if is_ascii_word_byte(byte) {
            // The fast path: a run of ASCII letters and digits is copied and
            // lower-cased in one pass.
            i = b.ascii_run(bytes, i);
        } else if byte < 0x80 {
            let next_is_digit = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            b.ascii(byte, next_is_digit);
            i += 1;
        } else {
            let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            i += c.len_utf8();
            let next_is_digit = bytes.get(i).is_some_and(u8::is_ascii_digit);
            b.non_ascii(c, next_is_digit);
        }
    }
    b.separator();
    b.out.positions = b.pos;
}

/// Each byte's folded form if it is an ASCII word byte (letter, digit,
/// `_`), else 0: one lookup classifies and lower-cases it.
static ASCII_WORD_FOLD: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

#[inline]
fn is_ascii_word_byte(b: u8) -> bool {
    ASCII_WORD_FOLD[usize::from(b)] != 0
}

/// Tokenises `text` into a new [`TokenizedText`].
pub fn tokenized(text: &str) -> TokenizedText {
    let mut out = TokenizedText::new();
    tokenize(text, &mut out);
    out
}

/// Whether `c` is a Han, Hiragana, Katakana or Hangul character, tokenised
/// one character at a time.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{2FDF}'          // CJK and Kangxi radicals
        | '\u{3005}' | '\u{3007}'        // 々 〇
        | '\u{3021}'..='\u{3029}'        // Hangzhou numerals
        | '\u{3038}'..='\u{303B}'
        | '\u{3041}'..='\u{3096}'        // Hiragana letters
        | '\u{309D}'..='\u{309F}'
        | '\u{30A1}'..='\u{30FA}'        // Katakana letters
        | '\u{30FC}'..='\u{30FF}'
        | '\u{3131}'..='\u{318E}'        // Hangul compatibility jamo
        | '\u{31F0}'..='\u{31FF}'        // Katakana extension
        | '\u{3400}'..='\u{4DBF}'        // Han extension A
        | '\u{4E00}'..='\u{9FFF}'        // Han
        | '\u{A960}'..='\u{A97F}'        // Hangul jamo extended A
        | '\u{AC00}'..='\u{D7AF}'        // Hangul syllables
        | '\u{D7B0}'..='\u{D7FF}'
        | '\u{1100}'..='\u{11FF}'        // Hangul jamo
        | '\u{20000}'..='\u{3134F}' // Han extensions B–G
    )
}

/// Diacritics dropped by folding: Latin/Greek/Cyrillic combining marks,
/// Hebrew points, Arabic harakat and the tatweel.
fn is_stripped_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{0591}'..='\u{05BD}'
        | '\u{05BF}' | '\u{05C1}' | '\u{05C2}' | '\u{05C4}' | '\u{05C5}' | '\u{05C7}'
        | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}'
    )
}

/// Characters that neither belong to a word nor separate words: joiners,
/// the soft hyphen, variation selectors, Japanese voicing marks.
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{3099}'..='\u{309C}'
    )
}

/// Letters without a decomposition that search engines fold anyway.
fn special_fold(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ø' | 'Ø' => "o",
        'ł' | 'Ł' => "l",
        'đ' | 'Đ' => "d",
        'ı' => "i",
        'ς' => "σ",
        _ => return None,
    })
}

/// A tag whose sigil has been seen and whose body is still being read.
struct OpenTag {
    kind: TokenKind,
    /// Where the sigil is in the folded buffer.
    start: u32,
    /// Where the tag's token goes in the token list (before its body).
    token_index: usize,
    position: u32,
}

struct Builder<'a> {
    out: &'a mut TokenizedText,
    /// The position the next token gets.
    pos: u32,
    /// Where the word being read starts in the folded buffer.
    word_start: Option<u32>,
    tag: Option<OpenTag>,
    /// Whether the previous character forbids a sigil here (a word
    /// character, or `&` as in `&#39;`).
    prev_blocks_sigil: bool,
}

impl Builder<'_> {
    fn len(&self) -> u32 {
        self.out.folded.len() as u32
    }

    #[inline]
    fn ascii(&mut self, byte: u8, next_is_digit: bool) {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'_' => self.word_push(byte as char),
            b'A'..=b'Z' => self.word_push(byte.to_ascii_lowercase() as char),
            b'#' => self.sigil('#', TokenKind::Hashtag),
            b'$' => self.sigil('$', TokenKind::Cashtag),
            b'@' => self.sigil('@', TokenKind::Mention),
            b'.' | b',' => {
                let after_digit =
                    self.word_start.is_some() && self.out.folded.as_bytes().last().is_some_and(u8::is_ascii_digit);
                if after_digit && next_is_digit {
                    self.out.folded.push(byte as char);
                } else {
                    self.separator();
                }
            }
            b'&' => {
                self.separator();
                self.prev_blocks_sigil = true;
            }
            _ => self.separator(),
        }
    }

    fn non_ascii(&mut self, c: char, next_is_digit: bool) {
        if is_cjk(c) {
            self.cjk(c);
        } else if let Some(folded) = special_fold(c) {
            for f in folded.chars() {
                self.word_push(f);
            }
        } else if c == 'й' || c == 'Й' {
            self.word_push('й');
        } else {
            decompose_compatible(c, |d| self.decomposed(d, next_is_digit));
        }
    }

    /// One character of a non-ASCII character's compatibility decomposition.
    fn decomposed(&mut self, d: char, next_is_digit: bool) {
        if d.is_ascii() {
            self.ascii(d as u8, next_is_digit);
        } else if is_stripped_mark(d) || is_ignorable(d) {
            // Neither part of the word nor a boundary.
        } else if is_cjk(d) {
            self.cjk(d);
        } else if let Some(folded) = special_fold(d) {
            for f in folded.chars() {
                self.word_push(f);
            }
        } else if d.is_alphanumeric() || is_combining_mark(d) {
            for l in d.to_lowercase() {
                if !is_stripped_mark(l) {
                    self.word_push(l);
                }
            }
        } else {
            self.separator();
        }
    }

    /// Appends the run of ASCII letters, digits and `_` that starts at
    /// `bytes[from]` to the current word, lower-cased; returns where the
    /// run ends.
    fn ascii_run(&mut self, bytes: &[u8], from: usize) -> usize {
        if self.word_start.is_none() {
            self.word_start = Some(self.len());
        }
        let mut end = from;
        for &byte in &bytes[from..] {
            let f = ASCII_WORD_FOLD[usize::from(byte)];
            if f == 0 {
                break;
            }
            self.out.folded.push(char::from(f));
            end += 1;
        }
        self.prev_blocks_sigil = true;
        end
    }

    #[inline]
    fn word_push(&mut self, c: char) {
        if self.word_start.is_none() {
            self.word_start = Some(self.len());
        }
        self.out.folded.push(c);
        self.prev_blocks_sigil = true;
    }

    fn cjk(&mut self, c: char) {
        self.end_word();
        let start = self.len();
        self.out.folded.push(c);
        self.emit(start, self.pos, self.pos, TokenKind::Cjk);
        self.pos += 1;
        self.prev_blocks_sigil = true;
    }

    fn sigil(&mut self, sigil: char, kind: TokenKind) {
        if self.prev_blocks_sigil {
            self.separator();
            return;
        }
        self.separator();
        self.tag = Some(OpenTag {
            kind,
            start: self.len(),
            token_index: self.out.tokens.len(),
            position: self.pos,
        });
        self.out.folded.push(sigil);
    }

    #[inline]
    fn separator(&mut self) {
        self.end_word();
        self.close_tag();
        self.prev_blocks_sigil = false;
    }

    #[inline]
    fn end_word(&mut self) {
        if let Some(start) = self.word_start.take() {
            self.emit(start, self.pos, self.pos, TokenKind::Word);
            self.pos += 1;
        }
    }

    fn close_tag(&mut self) {
        let Some(tag) = self.tag.take() else { return };
        if self.pos == tag.position {
            return; // a sigil with no body
        }
        let body = self.out.folded.get(tag.start as usize + 1..).unwrap_or("");
        let valid = match tag.kind {
            TokenKind::Hashtag => !body.bytes().all(|b| b.is_ascii_digit()),
            TokenKind::Cashtag => body.chars().next().is_some_and(char::is_alphabetic),
            _ => true,
        };
        if valid {
            let token = Token {
                start: tag.start,
                end: self.len(),
                position: tag.position,
                last_position: self.pos - 1,
                kind: tag.kind,
            };
            self.out.tokens.insert(tag.token_index, token);
        }
    }

    #[inline]
    fn emit(&mut self, start: u32, position: u32, last_position: u32, kind: TokenKind) {
        let end = self.len();
        self.out.tokens.push(Token {
            start,
            end,
            position,
            last_position,
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(text, position)` of every token.
    fn toks(text: &str) -> Vec<(String, u32)> {
        let t = tokenized(text);
        t.iter().map(|(s, tok)| (s.to_string(), tok.position)).collect()
    }

    fn words(text: &str) -> Vec<String> {
        toks(text).into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn splits_ascii_words_and_lowercases() {
        assert_eq!(
            toks("Hello, World! 42 times_two"),
            vec![
                ("hello".into(), 0),
                ("world".into(), 1),
                ("42".into(), 2),
                ("times_two".into(), 3)
            ]
        );
    }

    #[test]
    fn folds_case_and_diacritics() {
        assert_eq!(
            words("Café Überschwemmung naïve ÉCOLE"),
            vec!["cafe", "uberschwemmung", "naive", "ecole"]
        );
        // A combining accent written separately folds the same way.
        assert_eq!(words("Cafe\u{301}"), vec!["cafe"]);
        assert_eq!(words("Straße Søren Łódź"), vec!["strasse", "soren", "lodz"]);
        // Full-width letters are folded by compatibility decomposition.
        assert_eq!(words("ＣＬＩＭＡＴＥ"), vec!["climate"]);
        assert_eq!(words("Ελλάδα мой"), vec!["ελλαδα", "мой"]);
    }

    #[test]
    fn apostrophes_and_periods_split_letters_but_join_digits() {
        assert_eq!(
            words("l'eau don’t end.Next"),
            vec!["l", "eau", "don", "t", "end", "next"]
        );
        assert_eq!(
            words("3.5% of 1,000 people. 7."),
            vec!["3.5", "of", "1,000", "people", "7"]
        );
        assert_eq!(words("e-mail"), vec!["e", "mail"]);
    }

    #[test]
    fn tags_yield_the_tag_and_the_plain_word_at_one_position() {
        let t = tokenized("Go #Climate $TSLA @alice_example!");
        let got: Vec<(&str, u32, TokenKind)> = t.iter().map(|(s, k)| (s, k.position, k.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("go", 0, TokenKind::Word),
                ("#climate", 1, TokenKind::Hashtag),
                ("climate", 1, TokenKind::Word),
                ("$tsla", 2, TokenKind::Cashtag),
                ("tsla", 2, TokenKind::Word),
                ("@alice_example", 3, TokenKind::Mention),
                ("alice_example", 3, TokenKind::Word),
            ]
        );
        assert_eq!(t.position_count(), 4);
    }

    #[test]
    fn sigils_count_only_at_word_start() {
        assert_eq!(words("C# a#b &#39; #1 $100 # $"), vec!["c", "a", "b", "39", "1", "100"]);
        assert_eq!(words("##tag"), vec!["#tag", "tag"]);
        // Full-width sigil, as used in Japanese hashtags.
        assert_eq!(words("＃Tag"), vec!["#tag", "tag"]);
    }

    #[test]
    fn cjk_characters_are_tokens_of_their_own() {
        assert_eq!(
            toks("今日は地震がありました"),
            "今日は地震がありました"
                .chars()
                .enumerate()
                .map(|(i, c)| (c.to_string(), i as u32))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            toks("東京2020 서울"),
            vec![
                ("東".into(), 0),
                ("京".into(), 1),
                ("2020".into(), 2),
                ("서".into(), 3),
                ("울".into(), 4)
            ]
        );
    }

    #[test]
    fn a_tag_with_a_cjk_body_spans_several_positions() {
        let t = tokenized("#東京2020 速報");
        let got: Vec<(&str, u32, u32)> = t.iter().map(|(s, k)| (s, k.position, k.last_position)).collect();
        assert_eq!(
            got,
            vec![
                ("#東京2020", 0, 2),
                ("東", 0, 0),
                ("京", 1, 1),
                ("2020", 2, 2),
                ("速", 3, 3),
                ("報", 4, 4)
            ]
        );
    }

    #[test]
    fn greek_final_sigma_and_dotted_capitals_fold_like_lower_case() {
        assert_eq!(words("ΟΔΟΣ οδος İstanbul"), vec!["οδοσ", "οδοσ", "istanbul"]);
    }

    #[test]
    fn half_width_katakana_folds_to_full_width() {
        assert_eq!(words("ｶﾀｶﾅ"), vec!["カ", "タ", "カ", "ナ"]);
    }

    #[test]
    fn emoji_and_symbols_separate() {
        assert_eq!(words("fire🔥🔥water ™"), vec!["fire", "water", "tm"]);
    }

    #[test]
    fn buffers_are_reused() {
        let mut t = TokenizedText::new();
        tokenize("one two three", &mut t);
        tokenize("four", &mut t);
        assert_eq!(t.iter().map(|(s, _)| s).collect::<Vec<_>>(), vec!["four"]);
        assert_eq!(t.position_count(), 1);
        tokenize("", &mut t);
        assert!(t.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_tokens_are_well_formed(s in any::<String>()) {
            let t = tokenized(&s);
            let mut last = 0;
            for (text, tok) in t.iter() {
                prop_assert!(!text.is_empty());
                prop_assert!(tok.position >= last);
                prop_assert!(tok.last_position >= tok.position);
                prop_assert!(tok.last_position < t.position_count());
                last = tok.position;
            }
        }

        #[test]
        fn tokenising_folded_tokens_is_stable(s in "[a-zA-Zé #@$.,'0-9地震]{0,40}") {
            // A word token re-tokenises to itself: the property that lets
            // query terms be tokenised like the text.
            let t = tokenized(&s);
            for (text, tok) in t.iter() {
                if tok.kind == TokenKind::Word {
                    let again = tokenized(text);
                    prop_assert_eq!(again.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>(), vec![text.to_string()]);
                }
            }
        }
    }
}
