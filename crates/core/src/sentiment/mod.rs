//! Sentiment scoring that reproduces VADER (Hutto & Gilbert 2014) as
//! implemented by the reference package vaderSentiment 3.3.2.
//!
//! The idea: every word with a rating in a human-rated lexicon contributes
//! its valence, adjusted by a handful of rules read off the words around it,
//! and the adjusted valences are summed and squashed into `compound` in
//! [-1, 1]. The rules, in the order they apply to one sentiment word:
//!
//! - "no" right before another rated word negates it instead of counting;
//!   a "no" up to three words back negates the word;
//! - a word in CAPITALS amid lower-case words is intensified;
//! - up to three preceding boosters ("very") or dampeners ("kinda") shift
//!   it, less the further away they are, and preceding negations ("not",
//!   anything with "n't") flip and weaken it;
//! - idioms override it ("the shit" is praise) and "least" negates it
//!   (but not in "at least");
//!
//! then, over the whole post, words before the first "but" count half and
//! words after it one and a half, and exclamation marks (up to four) and
//! repeated question marks push the total away from zero. Emoji are first
//! replaced by their descriptions ("😍" → "smiling face with heart-eyes"), so
//! they are scored through the lexicon too.
//!
//! The reference's idiosyncrasies are kept on purpose, since the goal is
//! agreement with it: for example its "but" rule finds each valence by
//! value, so when two words share a valence only the first is reweighted.

mod lexicon;
mod tokens;

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use crate::post::Sentiment;
use lexicon::{booster_pair, idiom_pair, idiom_triple, is_negation, lexicon, C_INCR, N_SCALAR};
use tokens::Token;

/// Scores a post's text. Never panics; an empty or blank text scores all 0.
///
/// `compound` is rounded to 4 decimals and the shares `pos`, `neu`, `neg`
/// to 3, as the reference rounds them.
pub fn score(text: &str) -> Sentiment {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => scratch.score(text),
        // Only reachable if scoring were ever re-entered on this thread.
        Err(_) => Scratch::default().score(text),
    })
}

/// Buffers reused from one post to the next.
#[derive(Default)]
struct Scratch {
    expanded: String,
    lower: String,
    tokens: Vec<Token>,
    valences: Vec<f64>,
}

impl Scratch {
    fn score(&mut self, text: &str) -> Sentiment {
        let lexicon = lexicon();
        let text = tokens::expand_emoji(text, lexicon, &mut self.expanded).unwrap_or(text);
        tokens::tokenize(text, lexicon, &mut self.lower, &mut self.tokens);
        let words = Words {
            lower: &self.lower,
            tokens: &self.tokens,
            caps_differ: caps_differ(&self.tokens),
        };

        self.valences.clear();
        for i in 0..words.len() {
            let word = words.lower(i);
            // Degree adverbs and "kind" of "kind of" only modify other words.
            let modifier = words.tokens[i].booster.is_some()
                || (word == "kind" && i + 1 < words.len() && words.lower(i + 1) == "of");
            self.valences.push(if modifier { 0.0 } else { words.valence(i) });
        }
        if let Some(but) = (0..words.len()).find(|&i| words.lower(i) == "but") {
            reweight_around_but(&mut self.valences, but);
        }
        summarise(&self.valences, text)
    }
}

/// True when some but not all tokens are in capitals: only then do capitals
/// signal emphasis.
fn caps_differ(tokens: &[Token]) -> bool {
    let upper = tokens.iter().filter(|t| t.upper).count();
    upper > 0 && upper < tokens.len()
}

/// The tokens of one post, with the context the rules look at.
struct Words<'a> {
    lower: &'a str,
    tokens: &'a [Token],
    caps_differ: bool,
}

impl Words<'_> {
    fn len(&self) -> usize {
        self.tokens.len()
    }

    fn lower(&self, i: usize) -> &str {
        let t = &self.tokens[i];
        self.lower.get(t.lower_start..t.lower_end).unwrap_or("")
    }

    fn rated(&self, i: usize) -> bool {
        self.tokens[i].rating.is_some()
    }

    fn emphasised(&self, i: usize) -> bool {
        self.tokens[i].upper && self.caps_differ
    }

    /// The adjusted valence of token `i` (0 for words without a rating).
    fn valence(&self, i: usize) -> f64 {
        let Some(rating) = self.tokens[i].rating else {
            return 0.0;
        };
        let mut valence = rating;
        if self.lower(i) == "no" && i + 1 < self.len() && self.rated(i + 1) {
            // "no" negating the next rated word, not a rated word itself.
            valence = 0.0;
        }
        let no_before = (i >= 1 && self.lower(i - 1) == "no")
            || (i >= 2 && self.lower(i - 2) == "no")
            || (i >= 3 && self.lower(i - 3) == "no" && matches!(self.lower(i - 1), "or" | "nor"));
        if no_before {
            valence = rating * N_SCALAR;
        }
        if self.emphasised(i) {
            valence += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        // The three preceding words, nearest first; rated words are not
        // read as modifiers.
        for distance in 1..=3 {
            if i < distance || self.rated(i - distance) {
                continue;
            }
            let shift = self.booster_shift(i - distance, valence);
            valence += match distance {
                1 => shift,
                2 => shift * 0.95,
                _ => shift * 0.9,
            };
            valence = self.negate(valence, distance, i);
            if distance == 3 {
                valence = self.idioms(valence, i);
            }
        }
        self.least(valence, i)
    }

    /// How much booster/dampener token `j` moves `valence`: always away
    /// from zero for a booster, towards it for a dampener, plus the capitals
    /// emphasis if the booster itself is shouted.
    fn booster_shift(&self, j: usize, valence: f64) -> f64 {
        let Some(mut shift) = self.tokens[j].booster else {
            return 0.0;
        };
        if valence < 0.0 {
            shift = -shift;
        }
        if self.emphasised(j) {
            shift += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        shift
    }

    /// The negation rule for the word `distance` tokens before `i`, with
    /// the exceptions "never so/this good" (intensifies) and "without doubt"
    /// (leaves it alone).
    fn negate(&self, valence: f64, distance: usize, i: usize) -> f64 {
        let w = |d: usize| self.lower(i - d);
        let so_or_this = |s: &str| s == "so" || s == "this";
        match distance {
            1 => {
                if is_negation(w(1)) {
                    return valence * N_SCALAR;
                }
            }
            2 => {
                if w(2) == "never" && so_or_this(w(1)) {
                    return valence * 1.25;
                }
                if w(2) == "without" && w(1) == "doubt" {
                    return valence;
                }
                if is_negation(w(2)) {
                    return valence * N_SCALAR;
                }
            }
            _ => {
                // As in the reference, "so"/"this" right before the word
                // intensifies even without a "never".
                if (w(3) == "never" && so_or_this(w(2))) || so_or_this(w(1)) {
                    return valence * 1.25;
                }
                if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") {
                    return valence;
                }
                if is_negation(w(3)) {
                    return valence * N_SCALAR;
                }
            }
        }
        valence
    }

    /// Idioms around token `i` (which has at least three words before it)
    /// replace its valence; two-word dampeners just before it ("kind of")
    /// shift it.
    fn idioms(&self, mut valence: f64, i: usize) -> f64 {
        let w = |j: usize| self.lower(j);
        let (w3, w2, w1, w0) = (w(i - 3), w(i - 2), w(i - 1), w(i));
        // The first matching phrase ending at or before the word wins.
        let before = idiom_pair(w1, w0)
            .or_else(|| idiom_triple(w2, w1, w0))
            .or_else(|| idiom_pair(w2, w1))
            .or_else(|| idiom_triple(w3, w2, w1))
            .or_else(|| idiom_pair(w3, w2));
        if let Some(v) = before {
            valence = v;
        }
        // Phrases starting at the word override that.
        if i + 1 < self.len() {
            if let Some(v) = idiom_pair(w0, w(i + 1)) {
                valence = v;
            }
        }
        if i + 2 < self.len() {
            if let Some(v) = idiom_triple(w0, w(i + 1), w(i + 2)) {
                valence = v;
            }
        }
        for shift in [booster_pair(w3, w2), booster_pair(w2, w1)].into_iter().flatten() {
            valence += shift;
        }
        valence
    }

    /// "least" before a word negates it, except in "at least"/"very least".
    fn least(&self, valence: f64, i: usize) -> f64 {
        if i == 0 || self.rated(i - 1) || self.lower(i - 1) != "least" {
            return valence;
        }
        if i >= 2 && matches!(self.lower(i - 2), "at" | "very") {
            valence
        } else {
            valence * N_SCALAR
        }
    }
}

/// Halves the valences before the first "but" and multiplies those after it
/// by 1.5. Like the reference, each valence is located by value (its first
/// occurrence), so repeated values reweight the first slot repeatedly.
fn reweight_around_but(valences: &mut [f64], but: usize) {
    for k in 0..valences.len() {
        let value = valences[k];
        let slot = valences.iter().position(|&v| v == value).unwrap_or(k);
        if slot < but {
            valences[slot] = value * 0.5;
        } else if slot > but {
            valences[slot] = value * 1.5;
        }
    }
}

/// Emphasis from "!" (0.292 each, at most 4) and from two or more "?"
/// (0.18 each, 0.96 from four on).
fn punctuation_emphasis(text: &str) -> f64 {
    // Most texts have neither: memchr's vectorised search passes over
    // them far faster than a byte loop.
    let bangs = memchr::memchr_iter(b'!', text.as_bytes()).count();
    let questions = memchr::memchr_iter(b'?', text.as_bytes()).count();
    let bang = bangs.min(4) as f64 * 0.292;
    let question = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f64 * 0.18,
        _ => 0.96,
    };
    bang + question
}

/// Turns the per-token valences into the four scores.
fn summarise(valences: &[f64], text: &str) -> Sentiment {
    if valences.is_empty() {
        return Sentiment::default();
    }
    let emphasis = punctuation_emphasis(text);
    let mut sum = valences.iter().fold(0.0, |acc, v| acc + v);
    if sum > 0.0 {
        sum += emphasis;
    } else if sum < 0.0 {
        sum -= emphasis;
    }
    let compound = normalize(sum);

    // Each rated word counts one more than its valence, so that a neutral
    // word's weight of 1 is comparable.
    let (mut pos, mut neg, mut neutral) = (0.0f64, 0.0f64, 0usize);
    for &v in valences {
        if v > 0.0 {
            pos += v + 1.0;
        } else if v < 0.0 {
            neg += v - 1.0;
        } else {
            neutral += 1;
        }
    }
    if pos > neg.abs() {
        pos += emphasis;
    } else if pos < neg.abs() {
        neg -= emphasis;
    }
    let total = pos + neg.abs() + neutral as f64;
    Sentiment {
        compound: round_half_even(compound, 4),
        pos: round_half_even((pos / total).abs(), 3),
        neu: round_half_even((neutral as f64 / total).abs(), 3),
        neg: round_half_even((neg / total).abs(), 3),
    }
}

/// Squashes a valence sum into [-1, 1]; 15 approximates the largest sum
/// expected in practice.
fn normalize(sum: f64) -> f64 {
    (sum / (sum * sum + 15.0).sqrt()).clamp(-1.0, 1.0)
}

/// Rounds like Python's `round(x, digits)`: the exact binary value rounded
/// to the nearest decimal, ties to even.
fn round_half_even(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    let scaled = x * scale;
    if !scaled.is_finite() {
        return x;
    }
    // Away from a tie, rounding the scaled value is exact enough; near one,
    // let the (exact) decimal formatter decide.
    if ((scaled - scaled.trunc()).abs() - 0.5).abs() > 1e-6 {
        return scaled.round() / scale;
    }
    format!("{x:.prec$}", prec = digits.unsigned_abs() as usize)
        .parse()
        .unwrap_or(x)
}
