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

/// Splits `text` into tokens, appending their lower-case forms to `lower`.
pub(super) fn tokenize(text: &str, lexicon: &Lexicon, lower: &mut String, out: &mut Vec<Token>) {
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
