//! Hand-checked cases, one or more per rule. Every expected quadruple
//! (compound, pos, neu, neg) is what vaderSentiment 3.3.2 returns for the
//! same invented text.

use proptest::prelude::*;

use super::lexicon::lexicon;
use super::{round_half_even, score};
use crate::post::Sentiment;

#[track_caller]
fn check(text: &str, compound: f64, pos: f64, neu: f64, neg: f64) {
    let expected = Sentiment {
        compound,
        pos,
        neu,
        neg,
    };
    assert_eq!(score(text), expected, "scores of {text:?}");
}

#[test]
fn data_files_parse_completely() {
    let lex = lexicon();
    // 7,520 lines, of which 14 repeat an earlier token.
    assert_eq!(lex.words.values().filter(|w| w.rating.is_some()).count(), 7506);
    assert_eq!(lex.words.values().filter(|w| w.booster.is_some()).count(), 81);
    assert_eq!(lex.words.get("good").and_then(|w| w.rating), Some(1.9));
    assert_eq!(lex.words.get(":)").and_then(|w| w.rating), Some(2.0));
    // No degree adverb has a rating of its own.
    assert!(lex.words.values().all(|w| w.rating.is_none() || w.booster.is_none()));
    // Only the 1,212 single-code-point emoji can ever match.
    assert_eq!(lex.emoji.len(), 1212);
    assert_eq!(lex.emoji.get(&'😍'), Some(&"smiling face with heart-eyes"));
}

#[test]
fn plain_lexicon_word() {
    check("The soup was good.", 0.4404, 0.492, 0.508, 0.0);
    check("soup", 0.0, 0.0, 1.0, 0.0);
}

#[test]
fn empty_and_blank_texts_score_zero() {
    check("", 0.0, 0.0, 0.0, 0.0);
    check("   ", 0.0, 0.0, 0.0, 0.0);
    check("!!! ???", 0.0, 0.0, 1.0, 0.0);
}

#[test]
fn boosters_and_dampeners() {
    check("The soup was very good.", 0.4927, 0.444, 0.556, 0.0);
    check("The soup was kind of good.", 0.3832, 0.343, 0.657, 0.0);
}

#[test]
fn negation() {
    check("The soup was not good.", -0.3412, 0.0, 0.624, 0.376);
    check("The soup isn't good.", -0.3412, 0.0, 0.555, 0.445);
    check("Not bad at all", 0.431, 0.487, 0.513, 0.0);
    // "no" before a rated word negates it rather than counting itself.
    check("There is no problem with the soup.", 0.3089, 0.273, 0.727, 0.0);
}

#[test]
fn never_so_and_without_doubt() {
    check("The soup has never been so good.", 0.5777, 0.384, 0.616, 0.0);
    check("Without a doubt, excellent soup.", 0.7013, 0.659, 0.341, 0.0);
}

#[test]
fn but_shifts_weight_to_the_second_clause() {
    check(
        "The soup was good, but the bread was awful.",
        -0.4678,
        0.151,
        0.541,
        0.309,
    );
    // Equal valences are found by value: only the first "good" is halved
    // (twice), as in the reference.
    check("good good but bad", -0.431, 0.404, 0.104, 0.492);
}

#[test]
fn capitals_amid_lower_case_emphasise() {
    check("The soup was GOOD today.", 0.5622, 0.476, 0.524, 0.0);
    check("The soup was VERY good today.", 0.6028, 0.44, 0.56, 0.0);
    // All capitals is no emphasis.
    check("THE SOUP WAS GOOD", 0.4404, 0.492, 0.508, 0.0);
}

#[test]
fn exclamation_marks_up_to_four() {
    check("The soup was good!!!", 0.5826, 0.557, 0.443, 0.0);
    check("The soup was good!!!!!!!", 0.6209, 0.576, 0.424, 0.0);
}

#[test]
fn repeated_question_marks() {
    check("Was the soup good?", 0.4404, 0.492, 0.508, 0.0);
    check("Was the soup good??", 0.504, 0.521, 0.479, 0.0);
    check("Was the soup good????", 0.594, 0.563, 0.437, 0.0);
}

#[test]
fn emoji_and_emoticons() {
    check("The soup 😍", 0.4588, 0.375, 0.625, 0.0);
    // The description is glued to the word that follows the emoji.
    check("soup😍yum", 0.4588, 0.429, 0.571, 0.0);
    check("Nice day :)", 0.7003, 0.853, 0.147, 0.0);
}

#[test]
fn idioms() {
    check("This soup is the shit", 0.6124, 0.5, 0.5, 0.0);
    check("The soup is the bomb tonight", 0.6124, 0.444, 0.556, 0.0);
}

#[test]
fn least() {
    check("This is the least good soup", -0.3412, 0.0, 0.675, 0.325);
    check("least good", -0.3412, 0.0, 0.294, 0.706);
    check("At least the soup is good", 0.4404, 0.367, 0.633, 0.0);
}

#[test]
fn rounding_matches_python_round() {
    // Exact binary ties go to the even neighbour; 2.675 is just below a tie.
    assert_eq!(round_half_even(0.5625, 3), 0.562);
    assert_eq!(round_half_even(0.0625, 3), 0.062);
    assert_eq!(round_half_even(0.1875, 3), 0.188);
    assert_eq!(round_half_even(2.675, 2), 2.67);
    assert_eq!(round_half_even(-0.03125, 4), -0.0312);
    assert_eq!(round_half_even(0.09375, 4), 0.0938);
    assert_eq!(round_half_even(0.12345678, 4), 0.1235);
}

/// Text mixing rated words, rule words, emoji, capitals and odd whitespace.
fn post_like() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(vec![
        "good", "BAD", "not", "no", "but", "kind", "of", "least", "the", "shit", "very", "😍", ":)", "!!", "??",
        "\u{1c}", "\u{a0}",
    ])
    .prop_map(String::from);
    let piece = prop_oneof![word, "\\PC{0,6}"];
    proptest::collection::vec((piece, prop_oneof![Just(" "), Just("")]), 0..30)
        .prop_map(|v| v.into_iter().flat_map(|(word, gap)| [word, gap.to_string()]).collect())
}

fn assert_well_formed(s: Sentiment) {
    assert!((-1.0..=1.0).contains(&s.compound), "{s:?}");
    let total = s.pos + s.neu + s.neg;
    let empty = s == Sentiment::default();
    assert!(empty || (total - 1.0).abs() <= 0.002, "{s:?}");
    assert!(s.pos >= 0.0 && s.neu >= 0.0 && s.neg >= 0.0, "{s:?}");
}

proptest! {
    #[test]
    fn arbitrary_strings_score_within_bounds(text in any::<String>()) {
        assert_well_formed(score(&text));
    }

    #[test]
    fn post_like_strings_score_within_bounds(text in post_like()) {
        assert_well_formed(score(&text));
    }
}
