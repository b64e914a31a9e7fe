//! Turning a post into the tokens VADER scores, exactly as the reference
//! does it: emoji replaced by their descriptions, the text split on
//! whitespace, and surrounding ASCII punctuation removed from a token unless
//! that would leave two characters or fewer (so ":)" and ":D" survive as
//! emoticons while "great!!" becomes "great").
//!
//! Everything is written into buffers owned by the caller and reused from
//! one post to the next, so tokenising allocates nothing once they have grown.

use super::lexicon::Lexicon;

/// One token: where its lower-case form sits in the shared lower-case
/// buffer, and the facts the rules ask about it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub lower_start: usize,
    pub lower_end: usize,
    /// Written in capitals, in Python's `str.isupper` sense.
    pub upper: bool,
    /// The lexicon rating of the lower-case form, if it has one.
    pub rating: Option<f64>,
    /// The intensity it adds as a booster or dampener, if it is one.
    pub booster: Option<f64>,
}

/// Replaces every emoji with its description, separated from the preceding
/// text by a space unless one is already there (the text right after an
/// emoji is not separated, as in the reference). Returns `None` when the
/// text has no emoji, so the caller can keep using the original.
pub(super) fn expand_emoji<'a>(text: &str, lexicon: &Lexicon, out: &'a mut String) -> Option<&'a str> {
    // ASCII text cannot hold an emoji; skip the scan for the common case.
    if text.is_ascii() {
        return None;
    }
    let first = text
        .char_indices()
        .find(|&(_, c)| !c.is_ascii() && lexicon.emoji.contains_key(&c))?
        .0;
    out.clear();
    out.push_str(&text[..first]);
    let mut after_space = first == 0 || text.as_bytes()[first - 1] == b' ';
    for c in text[first..].chars() {
        match lexicon.emoji.get(&c) {
            Some(description) => {
                if !after_space {
                    out.push(' ');
                }
                out.push_str(description);
                after_space = false;
            }
            None => {
                out.push(c);
                after_space = c == ' ';
            }
        }
    }
    Some(out.as_str())
}

/// Python's `str.isspace`, which `str.split()` splits on: Unicode
/// White_Space plus the ASCII information separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, '\t'..='\r' | '\u{1c}'..=' ')
    } else {
        c.is_whitespace()
    }
}

/// What the ASCII fast path needs to know about a byte, from one table
/// lookup instead of a chain of range tests.
const SPACE: u8 = 1;
const PUNCT: u8 = 2;
const UPPER: u8 = 4;
const LOWER: u8 = 8;
/// Any byte of a word that is not punctuation (letters, digits, controls).
const WORD: u8 = 16;

const fn ascii_classes() -> [u8; 128] {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if matches!(c, b'\t'..=b'\r' | 0x1c..=b' ') {
            SPACE
        } else if c.is_ascii_punctuation() {
            PUNCT
        } else if c.is_ascii_uppercase() {
            UPPER | WORD
        } else if c.is_ascii_lowercase() {
            LOWER | WORD
        } else {
            WORD
        };
        b += 1;
    }
    table
}

static ASCII_CLASS: [u8; 128] = ascii_classes();

/// A word that was read: where it starts, whether it is all ASCII, and
/// for an ASCII word what its bytes said (so it needs no second look).
struct WordScan {
    start: usize,
    ascii: bool,
    /// Byte offsets of the first and one past the last non-punctuation
    /// byte, when there is one.
    first: Option<usize>,
    last: usize,
    /// The classes of its bytes, or-ed.
    classes: u8,
}

/// The character at byte `i` (a non-ASCII lead byte) and its length.
fn char_at(text: &str, i: usize) -> (Option<char>, usize) {
    match text.get(i..).and_then(|rest| rest.chars().next()) {
        Some(c) => (Some(c), c.len_utf8()),
        None => (None, 1),
    }
}

/// The first and one past the last byte of `bytes[start..end]` (ASCII)
/// that is not punctuation, if there is one.
fn unpunctuated(bytes: &[u8], start: usize, end: usize) -> (Option<usize>, usize) {
    let word = |b: &u8| ASCII_CLASS[usize::from(*b & 0x7f)] & WORD != 0;
    let span = &bytes[start..end];
    match (span.iter().position(word), span.iter().rposition(word)) {
        (Some(first), Some(last)) => (Some(start + first), start + last + 1),
        _ => (None, start),
    }
}

/// Splits `text` into tokens, appending their lower-case forms to `lower`.
///
/// Walks bytes and decodes a character only at a non-ASCII byte, and
/// handles all-ASCII words without Unicode tables: most words of most
/// posts are ASCII, even in texts with an emoji or an accent elsewhere.
/// An ASCII word is classified as it is read, so that making its token
/// takes one copy and one lookup. The loop reads one word per turn of the
/// outer loop, and the inner loop keeps its state in locals: this is the
/// hottest loop of enrichment.
pub(super) fn tokenize(text: &str, lexicon: &Lexicon, lower: &mut String, out: &mut Vec<Token>) {
    lower.clear();
    out.clear();
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        // Skip the separating spaces.
        let b = bytes[i];
        if b.is_ascii() {
            if ASCII_CLASS[usize::from(b)] & SPACE != 0 {
                i += 1;
                continue;
            }
        } else {
            let (c, len) = char_at(text, i);
            if c.is_some_and(is_python_space) {
                i += len;
                continue;
            }
        }
        // A word starts at `i`: read to the next space.
        let start = i;
        let (mut ascii, mut classes) = (true, 0u8);
        while i < n {
            let b = bytes[i];
            if b.is_ascii() {
                let class = ASCII_CLASS[usize::from(b)];
                if class & SPACE != 0 {
                    break;
                }
                classes |= class;
                i += 1;
            } else {
                let (c, len) = char_at(text, i);
                if c.is_some_and(is_python_space) {
                    break;
                }
                ascii = false;
                i += len;
            }
        }
        // Where the punctuation around an ASCII word ends: found after the
        // word, from both ends, so the loop above tracks nothing per byte.
        // (A word with a non-ASCII character goes the general way.)
        let (first, last) = if ascii {
            unpunctuated(bytes, start, i)
        } else {
            (None, start)
        };
        let word = WordScan {
            start,
            ascii,
            first,
            last,
            classes,
        };
        push_word(text, &word, i, lexicon, lower, out);
    }
}

fn push_word(text: &str, w: &WordScan, end: usize, lexicon: &Lexicon, lower: &mut String, out: &mut Vec<Token>) {
    if w.ascii {
        push_ascii_token(text, w, end, lexicon, lower, out);
    } else {
        push_token(text, w.start, end, lexicon, lower, out);
    }
}

/// [`push_token`] for an ASCII word whose bytes were classified while it
/// was read: the same token, without decoding characters or a second pass
/// over the word.
fn push_ascii_token(text: &str, w: &WordScan, end: usize, lexicon: &Lexicon, lower: &mut String, out: &mut Vec<Token>) {
    // As in push_token: a stripped token of two characters or fewer keeps
    // its punctuation. (ASCII: every byte offset is a character boundary.)
    let (first, last) = match w.first {
        Some(first) if w.last - first > 2 => (first, w.last),
        _ => (w.start, end),
    };
    let word = text.get(first..last).unwrap_or("");
    let lower_start = lower.len();
    lower.push_str(word);
    if w.classes & UPPER != 0 {
        if let Some(added) = lower.get_mut(lower_start..) {
            added.make_ascii_lowercase();
        }
    }
    let lower_end = lower.len();
    let known = lexicon
        .words
        .get(&lower[lower_start..lower_end])
        .copied()
        .unwrap_or_default();
    out.push(Token {
        lower_start,
        lower_end,
        // Stripped bytes are punctuation, neither upper nor lower case:
        // the whole word's classes are the token's.
        upper: w.classes & UPPER != 0 && w.classes & LOWER == 0,
        rating: known.rating,
        booster: known.booster,
    });
}

fn push_token(text: &str, start: usize, end: usize, lexicon: &Lexicon, lower: &mut String, out: &mut Vec<Token>) {
    let word = &text[start..end];
    let stripped = word.trim_matches(|c: char| c.is_ascii_punctuation());
    // A stripped token of one or two characters was most likely an emoticon.
    let (start, end) = if char_count_at_most_2(stripped) {
        (start, end)
    } else {
        let offset = stripped.as_ptr() as usize - word.as_ptr() as usize;
        (start + offset, start + offset + stripped.len())
    };
    let word = &text[start..end];

    let lower_start = lower.len();
    if word.is_ascii() {
        lower.push_str(word);
        if let Some(added) = lower.get_mut(lower_start..) {
            added.make_ascii_lowercase();
        }
    } else {
        lower.extend(word.chars().flat_map(char::to_lowercase));
    }
    let lower_end = lower.len();
    let known = lexicon
        .words
        .get(&lower[lower_start..lower_end])
        .copied()
        .unwrap_or_default();
    out.push(Token {
        lower_start,
        lower_end,
        upper: is_upper(word),
        rating: known.rating,
        booster: known.booster,
    });
}

fn char_count_at_most_2(s: &str) -> bool {
    s.len() <= 2 || (s.len() <= 8 && s.chars().count() <= 2)
}

/// Python's `str.isupper`: at least one upper-case letter and no lower-case
/// or title-case one.
pub(super) fn is_upper(word: &str) -> bool {
    let mut any_upper = false;
    for c in word.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        any_upper |= c.is_uppercase();
    }
    any_upper
}

/// The title-case letters (general category Lt), such as the digraph "ǅ".
fn is_titlecase(c: char) -> bool {
    matches!(
        c,
        '\u{1c5}'
            | '\u{1c8}'
            | '\u{1cb}'
            | '\u{1f2}'
            | '\u{1f88}'..='\u{1f8f}'
            | '\u{1f98}'..='\u{1f9f}'
            | '\u{1fa8}'..='\u{1faf}'
            | '\u{1fbc}'
            | '\u{1fcc}'
            | '\u{1ffc}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: split on Python spaces character by character, every
    /// word through the general [`push_token`].
    fn tokenize_chars(text: &str, lexicon: &Lexicon, lower: &mut String, out: &mut Vec<Token>) {
        lower.clear();
        out.clear();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (is_python_space(c), start) {
                (true, Some(s)) => {
                    push_token(text, s, i, lexicon, lower, out);
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(s) = start {
            push_token(text, s, text.len(), lexicon, lower, out);
        }
    }

    fn tokens(
        f: fn(&str, &Lexicon, &mut String, &mut Vec<Token>),
        text: &str,
    ) -> Vec<(String, bool, Option<f64>, Option<f64>)> {
        let (mut lower, mut out) = (String::new(), Vec::new());
        f(text, super::super::lexicon::lexicon(), &mut lower, &mut out);
        out.iter()
            .map(|t| {
                (
                    lower[t.lower_start..t.lower_end].to_string(),
                    t.upper,
                    t.rating,
                    t.booster,
                )
            })
            .collect()
    }

    proptest! {
        /// Walking bytes with the ASCII fast path finds exactly the tokens of
        /// the plain character walk.
        #[test]
        fn byte_walk_equals_the_character_walk(text in "([ \t\n\x1c\u{a0}\u{3000}]|[a-zA-Z]{1,8}|[0-9]{1,3}|[!-/:-@\\[-`{-~]{1,3}|good|GREAT|not|very|:\\)|:D|café|ÉTÉ|ǅx|日本|😀){0,24}") {
            prop_assert_eq!(tokens(tokenize, &text), tokens(tokenize_chars, &text));
        }
    }
}
