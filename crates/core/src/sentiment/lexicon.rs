//! The word lists VADER scores with: the rated lexicon and the emoji
//! descriptions (both data files shipped with vaderSentiment 3.3.2, MIT
//! licensed, see `data/VADER-LICENSE.txt`), plus the small fixed lists of
//! the paper's rules: degree adverbs, negations and special-case idioms.
//!
//! The two files are compiled into the binary and parsed once, on first use,
//! into hash maps keyed by borrowed `&'static str` slices of the embedded
//! text, so a lookup never allocates.

use rustc_hash::FxBuildHasher;
use std::collections::HashMap;
use std::sync::OnceLock;

const LEXICON_TXT: &str = include_str!("../../data/vader_lexicon.txt");
const EMOJI_TXT: &str = include_str!("../../data/emoji_utf8_lexicon.txt");

/// Intensity added by a booster word ("very"), from the paper.
pub(super) const B_INCR: f64 = 0.293;
/// Intensity removed by a dampener word ("slightly").
pub(super) const B_DECR: f64 = -0.293;
/// Intensity added by writing a sentiment word in capitals amid lower case.
pub(super) const C_INCR: f64 = 0.733;
/// Factor applied to a negated valence.
pub(super) const N_SCALAR: f64 = -0.74;

/// The parsed data files.
pub(super) struct Lexicon {
    /// Lower-case token → what the rules know about it. One lookup per
    /// token answers both "is it rated" and "is it a degree adverb".
    pub words: HashMap<&'static str, Word, FxBuildHasher>,
    /// Single-code-point emoji → its English description ("red heart").
    pub emoji: HashMap<char, &'static str, FxBuildHasher>,
}

/// What the lexicon knows about one lower-case token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Word {
    /// Mean valence rating in [-4, 4], for words of the rated lexicon.
    pub rating: Option<f64>,
    /// Intensity added to the next sentiment word, for degree adverbs.
    pub booster: Option<f64>,
}

/// The lexicon, parsed on first use.
pub(super) fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| Lexicon {
        words: parse_words(LEXICON_TXT),
        emoji: parse_emoji(EMOJI_TXT),
    })
}

/// `token<TAB>mean<TAB>stddev<TAB>ratings` per line, plus the degree
/// adverbs. A token listed twice keeps its last rating, as the reference
/// does.
fn parse_words(text: &'static str) -> HashMap<&'static str, Word, FxBuildHasher> {
    let mut words = HashMap::with_capacity_and_hasher(8192, FxBuildHasher);
    for line in text.lines() {
        let mut fields = line.trim().split('\t');
        let (Some(word), Some(rating)) = (fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(rating) = rating.parse::<f64>() {
            words.entry(word).or_insert_with(Word::default).rating = Some(rating);
        }
    }
    let adverbs = BOOSTERS
        .iter()
        .map(|w| (w, B_INCR))
        .chain(DAMPENERS.iter().map(|w| (w, B_DECR)));
    for (word, intensity) in adverbs {
        words.entry(*word).or_insert_with(Word::default).booster = Some(intensity);
    }
    words
}

/// `emoji<TAB>description` per line (CRLF endings). Only keys made of one
/// code point can ever match, because the reference looks text up one code
/// point at a time; multi-code-point sequences are therefore left out.
fn parse_emoji(text: &'static str) -> HashMap<char, &'static str, FxBuildHasher> {
    let mut emoji = HashMap::with_capacity_and_hasher(2048, FxBuildHasher);
    for line in text.lines() {
        let mut fields = line.trim().split('\t');
        let (Some(key), Some(description)) = (fields.next(), fields.next()) else {
            continue;
        };
        let mut chars = key.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            emoji.insert(c, description);
        }
    }
    emoji
}

/// Degree adverbs that intensify the next sentiment word ("very"), each
/// adding [`B_INCR`] (before the sign adjustment the rules apply).
const BOOSTERS: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "frackin",
    "fracking",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fuckin",
    "fucking",
    "fuggin",
    "fugging",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];

/// Degree adverbs that soften the next sentiment word ("kinda"), each
/// adding [`B_DECR`].
const DAMPENERS: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "kinda",
    "kindof",
    "kind-of",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sorta",
    "sortof",
    "sort-of",
];

/// The two-word dampeners ("kind of"). Tokens never contain spaces, so these
/// only take effect through the idiom rule's word pairs.
pub(super) fn booster_pair(first: &str, second: &str) -> Option<f64> {
    match (first, second) {
        ("just", "enough") | ("kind", "of") | ("sort", "of") => Some(B_DECR),
        _ => None,
    }
}

/// Whether a (lower-case) token negates what follows it: a listed negation
/// or any word with the contraction "n't" (found by a plain window scan:
/// `str::contains` sets up a substring searcher on every call, several
/// times the cost for a word of a few bytes).
pub(super) fn is_negation(word: &str) -> bool {
    matches!(
        word,
        "aint"
            | "arent"
            | "cannot"
            | "cant"
            | "couldnt"
            | "darent"
            | "didnt"
            | "doesnt"
            | "dont"
            | "hadnt"
            | "hasnt"
            | "havent"
            | "isnt"
            | "mightnt"
            | "mustnt"
            | "neither"
            | "neednt"
            | "never"
            | "none"
            | "nope"
            | "nor"
            | "not"
            | "nothing"
            | "nowhere"
            | "oughtnt"
            | "shant"
            | "shouldnt"
            | "uhuh"
            | "wasnt"
            | "werent"
            | "uh-uh"
            | "without"
            | "wont"
            | "wouldnt"
            | "rarely"
            | "seldom"
            | "despite"
    ) || word.as_bytes().windows(3).any(|w| w == b"n't")
}

/// Two-word idioms whose meaning overrides their words' ratings
/// ("the shit" is praise).
pub(super) fn idiom_pair(first: &str, second: &str) -> Option<f64> {
    match (first, second) {
        ("the", "shit") | ("the", "bomb") => Some(3.0),
        ("bad", "ass") => Some(1.5),
        ("bus", "stop") => Some(0.0),
        ("yeah", "right") => Some(-2.0),
        ("beating", "heart") => Some(3.5),
        _ => None,
    }
}

/// Three-word idioms, as [`idiom_pair`].
pub(super) fn idiom_triple(first: &str, second: &str, third: &str) -> Option<f64> {
    match (first, second, third) {
        ("kiss", "of", "death") => Some(-1.5),
        ("to", "die", "for") => Some(3.0),
        _ => None,
    }
}
