//! # Language of a post
//!
//! A post's language is the tag its source gave it when there is one
//! ([`normalise_tag`] brings `en-US`, `eng` or `English` to `en`), and
//! otherwise the language detected from its text ([`detect`]).
//!
//! Detection is built for short, noisy social-media posts and for speed
//! (some 400,000 detections a second per core on tweets):
//!
//! 1. **Cleaning.** Mentions, links, `RT`, HTML entities, digits, emoji and
//!    punctuation say nothing about the language and mislead n-gram models,
//!    so they are dropped; a hashtag keeps its word but loses its `#`.
//! 2. **Script.** The letters left are counted by Unicode script. Most
//!    scripts belong to one language (Hangul is Korean, Thai is Thai, Greek
//!    is Greek; kana among Han characters means Japanese), so the script
//!    alone decides. Cyrillic, Devanagari and Hebrew are shared by a few
//!    languages and go to `whatlang`, which then only compares those
//!    (Cyrillic with `ы`/`э` and no letter foreign to Russian is Russian
//!    without asking).
//!    Arabic script goes to `whatlang` only when it holds a letter that
//!    Persian or Urdu use and Arabic does not: on plain Arabic text
//!    `whatlang` is less accurate than the script rule.
//! 3. **Latin script** goes to `whichlang`, a small linear model over byte
//!    n-grams for 16 languages (English, German, French, Spanish,
//!    Portuguese, Italian, Dutch, Swedish, Turkish, Vietnamese among the
//!    Latin ones). It is fast and, on cleaned tweets, more accurate than
//!    `whatlang`. It cannot name a language it does not know, so when the
//!    text holds a letter that none of its Latin languages writes (Polish
//!    `ł`, Czech `ř`, Danish `ø`, ...), `whatlang` decides instead between
//!    the languages that write such letters and whichlang's guess.
//!
//! Limits worth knowing: Latin-script languages without telltale letters
//! that `whichlang` does not know (Indonesian, Tagalog, ...) are reported
//! as the nearest language it knows, and romanised Hindi ("Hinglish") is
//! mostly reported as English.
//!
//! [`evaluate`] measures detection against gold labels and prints a short
//! per-language table with the most frequent confusions.

use std::collections::BTreeMap;
use std::fmt;

/// Only this many bytes of cleaned text are looked at: the first sentences
/// of a long text decide its language as well as all of it, and the cost of
/// a detection stays bounded.
const MAX_CLEAN_BYTES: usize = 2048;

/// And only this many bytes of the raw text are scanned for them, so that a
/// huge text made of links or emoji is not read to its end either.
const MAX_RAW_BYTES: usize = 16 * 1024;

/// A Han, kana or Hangul character carries about as much as a short Latin
/// word, so each counts for this many Latin letters when deciding which
/// script dominates a mixed text (a Japanese post with an English hashtag
/// is still Japanese).
const CJK_WEIGHT: u32 = 3;

/// The language of `text` as an ISO 639-1 code (`en`, `de`, `ja`, ...; for
/// the few languages without one, their ISO 639-3 code), or `None` when the
/// text holds no letters to judge by (empty, only emoji, links, mentions or
/// digits, or only a script not known here).
pub fn detect(text: &str) -> Option<&'static str> {
    let cleaned = Cleaned::new(text);
    let script = cleaned.dominant_script()?;
    match script {
        Script::Latin => Some(detect_latin(&cleaned)),
        Script::Han | Script::Kana => {
            // Japanese writes kana between its kanji; Chinese never does. A
            // tenth allows for the odd borrowed kana (の) in a Chinese post.
            let kana = cleaned.count(Script::Kana);
            let han = cleaned.count(Script::Han);
            Some(if kana * 10 >= kana + han { "ja" } else { "zh" })
        }
        Script::Arabic => {
            if cleaned.has_persian_or_urdu_letter {
                Some(ask_whatlang(&cleaned.text, &["ar", "fa", "ur"]).unwrap_or("ar"))
            } else {
                Some("ar")
            }
        }
        // ы and э are written by Russian and Belarusian only, and Belarusian
        // also writes і and ў: with them and without the other languages'
        // own letters the text is Russian, no need to ask whatlang.
        Script::Cyrillic if cleaned.has_russian_letter && !cleaned.has_non_russian_cyrillic_letter => Some("ru"),
        Script::Cyrillic => Some(ask_whatlang(&cleaned.text, &["ru", "uk", "be", "bg", "sr", "mk"]).unwrap_or("ru")),
        Script::Devanagari => Some(ask_whatlang(&cleaned.text, &["hi", "mr", "ne"]).unwrap_or("hi")),
        Script::Hebrew => Some(ask_whatlang(&cleaned.text, &["he", "yi"]).unwrap_or("he")),
        single => Some(single.only_language()),
    }
}

/// Whether `tag` is already what [`normalise_tag`] makes of it: a
/// lower-case two-letter code still in ISO 639-1.
pub fn is_normalised_tag(tag: &str) -> bool {
    tag.len() == 2 && tag.bytes().all(|b| b.is_ascii_lowercase()) && !matches!(tag, "iw" | "in" | "ji" | "jw" | "mo")
}

/// A source's language tag normalised to lower-case ISO 639-1: `en-US` →
/// `en`, `pt_BR` → `pt`, `eng`/`ger`/`deu` → `en`/`de`, `English` → `en`,
/// legacy `iw` → `he`. A three-letter code without a two-letter equivalent
/// is kept as it is (`yue`). Tags that name no language (`und`, `zxx`,
/// `mul`, the private-use `qaa`–`qtz` that Twitter uses for "hashtags only"
/// and the like, the empty tag) and unknown names give `None`.
pub fn normalise_tag(tag: &str) -> Option<String> {
    let tag = tag.trim();
    let primary = tag.split(['-', '_']).next().unwrap_or("");
    let primary = primary.to_ascii_lowercase();
    if !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    match primary.len() {
        2 => Some(
            match primary.as_str() {
                // Codes withdrawn from ISO 639-1 but still sent by some sources.
                "iw" => "he",
                "in" => "id",
                "ji" => "yi",
                "jw" => "jv",
                "mo" => "ro",
                other => other,
            }
            .to_string(),
        ),
        3 => {
            if matches!(primary.as_str(), "und" | "zxx" | "mul" | "mis") || ("qaa"..="qtz").contains(&primary.as_str())
            {
                None
            } else {
                Some(three_to_two(&primary).unwrap_or(&primary).to_string())
            }
        }
        _ => {
            // Not a code: perhaps a language's English name ("German").
            let name = tag.to_ascii_lowercase();
            english_name_to_code(&name).map(str::to_string)
        }
    }
}

/// How often a detector agreed with gold labels, per gold language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LangEval {
    /// Gold language code → its counts.
    pub per_lang: BTreeMap<String, LangScore>,
    /// (gold code, detected code or `none`) → count, for wrong detections only.
    pub confusions: BTreeMap<(String, String), u64>,
}

/// Detections of one gold language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LangScore {
    /// Samples with this gold language.
    pub total: u64,
    /// Of those, how many were detected as this language.
    pub correct: u64,
}

impl LangScore {
    /// The share detected correctly, 0 when there were no samples.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.total)
    }
}

impl LangEval {
    /// Samples seen.
    pub fn total(&self) -> u64 {
        self.per_lang.values().map(|s| s.total).sum()
    }

    /// Samples detected correctly.
    pub fn correct(&self) -> u64 {
        self.per_lang.values().map(|s| s.correct).sum()
    }

    /// Accuracy over all samples.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Accuracy over the samples whose gold language is not in `excluded`
    /// (e.g. `&["hi"]` for a data set whose Hindi is romanised).
    pub fn accuracy_excluding(&self, excluded: &[&str]) -> f64 {
        let kept = self
            .per_lang
            .iter()
            .filter(|(lang, _)| !excluded.contains(&lang.as_str()));
        let (correct, total) = kept.fold((0, 0), |(c, t), (_, s)| (c + s.correct, t + s.total));
        ratio(correct, total)
    }

    /// The `n` most frequent wrong detections of `gold`, most frequent first.
    pub fn confusions_of(&self, gold: &str, n: usize) -> Vec<(&str, u64)> {
        let mut found: Vec<(&str, u64)> = self
            .confusions
            .iter()
            .filter(|((g, _), _)| g == gold)
            .map(|((_, detected), count)| (detected.as_str(), *count))
            .collect();
        // Most frequent first; ties by code so the output is stable.
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        found.truncate(n);
        found
    }
}

impl fmt::Display for LangEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<6} {:>8} {:>8} {:>9}  most often taken for",
            "lang", "posts", "correct", "accuracy"
        )?;
        for (lang, score) in &self.per_lang {
            let confused: Vec<String> = self
                .confusions_of(lang, 3)
                .into_iter()
                .map(|(detected, count)| format!("{detected} {count}"))
                .collect();
            write!(
                f,
                "{:<6} {:>8} {:>8} {:>8.2}%",
                lang,
                score.total,
                score.correct,
                100.0 * score.accuracy()
            )?;
            if !confused.is_empty() {
                write!(f, "  {}", confused.join(", "))?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "{:<6} {:>8} {:>8} {:>8.2}%",
            "all",
            self.total(),
            self.correct(),
            100.0 * self.accuracy()
        )
    }
}

/// Runs [`detect`] on each `(text, gold code)` sample and tallies the
/// outcome. Gold codes go through [`normalise_tag`] first, so `en-US` or
/// `English` count as `en`; a text detected as nothing counts as `none`.
pub fn evaluate<'a>(samples: impl Iterator<Item = (&'a str, &'a str)>) -> LangEval {
    let mut eval = LangEval::default();
    for (text, gold) in samples {
        let gold = normalise_tag(gold).unwrap_or_else(|| gold.trim().to_ascii_lowercase());
        let detected = detect(text).unwrap_or("none");
        let score = eval.per_lang.entry(gold.clone()).or_default();
        score.total += 1;
        if detected == gold {
            score.correct += 1;
        } else {
            *eval.confusions.entry((gold, detected.to_string())).or_default() += 1;
        }
    }
    eval
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Scripts told apart here. `Latin` and the ones shared by several
/// languages are detected further; the others decide the language alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Hebrew,
    Arabic,
    Thaana,
    Devanagari,
    Bengali,
    Gurmukhi,
    Gujarati,
    Oriya,
    Tamil,
    Telugu,
    Kannada,
    Malayalam,
    Sinhala,
    Thai,
    Lao,
    Tibetan,
    Myanmar,
    Georgian,
    Hangul,
    Ethiopic,
    Khmer,
    Mongolian,
    Kana,
    Han,
}

const SCRIPT_COUNT: usize = Script::Han as usize + 1;

impl Script {
    /// The script of a character, for characters that belong to a script
    /// known here (Latin only for letters; other scripts' whole blocks, so
    /// that vowel signs and viramas stay inside their words).
    fn of(c: char) -> Option<Script> {
        if c.is_ascii() {
            return c.is_ascii_alphabetic().then_some(Script::Latin);
        }
        let script = match c as u32 {
            0x00C0..=0x024F | 0x1E00..=0x1EFF => {
                return c.is_alphabetic().then_some(Script::Latin);
            }
            0x0370..=0x03FF | 0x1F00..=0x1FFF => Script::Greek,
            0x0400..=0x052F | 0x1C80..=0x1C8F => Script::Cyrillic,
            0x0530..=0x058F => Script::Armenian,
            0x0590..=0x05FF => Script::Hebrew,
            0x0600..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => Script::Arabic,
            0x0780..=0x07BF => Script::Thaana,
            0x0900..=0x097F => Script::Devanagari,
            0x0980..=0x09FF => Script::Bengali,
            0x0A00..=0x0A7F => Script::Gurmukhi,
            0x0A80..=0x0AFF => Script::Gujarati,
            0x0B00..=0x0B7F => Script::Oriya,
            0x0B80..=0x0BFF => Script::Tamil,
            0x0C00..=0x0C7F => Script::Telugu,
            0x0C80..=0x0CFF => Script::Kannada,
            0x0D00..=0x0D7F => Script::Malayalam,
            0x0D80..=0x0DFF => Script::Sinhala,
            0x0E00..=0x0E7F => Script::Thai,
            0x0E80..=0x0EFF => Script::Lao,
            0x0F00..=0x0FFF => Script::Tibetan,
            0x1000..=0x109F => Script::Myanmar,
            0x10A0..=0x10FF | 0x1C90..=0x1CBF => Script::Georgian,
            0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Script::Hangul,
            0x1200..=0x139F => Script::Ethiopic,
            0x1780..=0x17FF => Script::Khmer,
            0x1800..=0x18AF => Script::Mongolian,
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9D => Script::Kana,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF => Script::Han,
            _ => return None,
        };
        Some(script)
    }

    /// How much one letter of this script weighs when scripts are compared.
    fn weight(self) -> u32 {
        match self {
            Script::Han | Script::Kana | Script::Hangul => CJK_WEIGHT,
            _ => 1,
        }
    }

    /// The language of a script that (in practice) one language writes.
    /// Scripts handled apart in [`detect`] are never asked.
    fn only_language(self) -> &'static str {
        match self {
            Script::Greek => "el",
            Script::Armenian => "hy",
            Script::Thaana => "dv",
            Script::Bengali => "bn",
            Script::Gurmukhi => "pa",
            Script::Gujarati => "gu",
            Script::Oriya => "or",
            Script::Tamil => "ta",
            Script::Telugu => "te",
            Script::Kannada => "kn",
            Script::Malayalam => "ml",
            Script::Sinhala => "si",
            Script::Thai => "th",
            Script::Lao => "lo",
            Script::Tibetan => "bo",
            Script::Myanmar => "my",
            Script::Georgian => "ka",
            Script::Hangul => "ko",
            Script::Ethiopic => "am",
            Script::Khmer => "km",
            Script::Mongolian => "mn",
            // Decided in `detect`; these answers are only its fallbacks.
            Script::Latin => "en",
            Script::Cyrillic => "ru",
            Script::Hebrew => "he",
            Script::Arabic => "ar",
            Script::Devanagari => "hi",
            Script::Kana => "ja",
            Script::Han => "zh",
        }
    }
}

/// A post's text reduced to the words that tell its language, with its
/// letters counted by script.
struct Cleaned {
    /// Words separated by spaces: letters (and the marks of non-Latin
    /// scripts) and apostrophes inside words; each dropped character leaves
    /// a space.
    text: String,
    /// Letters counted per [`Script`], indexed by `Script as usize`.
    counts: [u32; SCRIPT_COUNT],
    /// A Latin letter that none of whichlang's Latin languages writes.
    has_latin_letter_unknown_to_whichlang: bool,
    /// An Arabic-script letter of Persian or Urdu that Arabic does not use.
    has_persian_or_urdu_letter: bool,
    /// ы or э: Cyrillic letters of Russian and Belarusian only.
    has_russian_letter: bool,
    /// A Cyrillic letter that Russian does not write (Ukrainian і, Serbian ј...).
    has_non_russian_cyrillic_letter: bool,
}

impl Cleaned {
    fn new(raw: &str) -> Cleaned {
        let raw = prefix_within(raw, MAX_RAW_BYTES);
        let mut cleaned = Cleaned {
            text: String::with_capacity(raw.len().min(MAX_CLEAN_BYTES + 8)),
            counts: [0; SCRIPT_COUNT],
            has_latin_letter_unknown_to_whichlang: false,
            has_persian_or_urdu_letter: false,
            has_russian_letter: false,
            has_non_russian_cyrillic_letter: false,
        };
        for token in raw.split_whitespace() {
            if cleaned.text.len() >= MAX_CLEAN_BYTES {
                break;
            }
            // Opening punctuation hides mentions and links: "(@x", ".@x".
            let token =
                token.trim_start_matches(|c: char| c.is_ascii_punctuation() && c != '@' && c != '#' && c != '&');
            if is_noise_token(token) {
                continue;
            }
            cleaned.push_word(token.trim_start_matches('#'));
        }
        cleaned
    }

    /// Appends the letters of one token; any other character ends a word.
    fn push_word(&mut self, token: &str) {
        let mut chars = token.chars().peekable();
        let mut in_word = false;
        while let Some(c) = chars.next() {
            if self.text.len() >= MAX_CLEAN_BYTES {
                break;
            }
            let script = Script::of(c);
            let keep = match script {
                Some(Script::Latin) => true,
                // Keep marks and letters of other scripts, not their digits.
                Some(_) => !c.is_numeric(),
                // Apostrophes belong to words like "l'amour" and "don't".
                None => (c == '\'' || c == '\u{2019}') && in_word && chars.peek().is_some_and(|n| n.is_alphabetic()),
            };
            if !keep {
                // One space per dropped character, not one per gap: whichlang
                // saw punctuation in training and scores better this way.
                in_word = false;
                self.text.push(' ');
                continue;
            }
            if !in_word && !self.text.is_empty() && !self.text.ends_with(' ') {
                self.text.push(' ');
            }
            in_word = true;
            if let Some(script) = script {
                if c.is_alphabetic() {
                    self.counts[script as usize] += 1;
                }
                if !c.is_ascii() {
                    self.note_telltale_letter(script, c);
                }
            }
            self.text.push(if c == '\u{2019}' { '\'' } else { c });
        }
        if !self.text.is_empty() && !self.text.ends_with(' ') {
            self.text.push(' ');
        }
    }

    fn note_telltale_letter(&mut self, script: Script, c: char) {
        match script {
            Script::Latin if c.to_lowercase().any(is_latin_letter_unknown_to_whichlang) => {
                self.has_latin_letter_unknown_to_whichlang = true;
            }
            Script::Arabic if is_persian_or_urdu_letter(c) => {
                self.has_persian_or_urdu_letter = true;
            }
            Script::Cyrillic => match c.to_lowercase().next().unwrap_or(c) {
                'ы' | 'э' => self.has_russian_letter = true,
                'і' | 'ї' | 'є' | 'ґ' | 'ў' | 'ђ' | 'ј' | 'љ' | 'њ' | 'ћ' | 'џ' | 'ѓ' | 'ќ' | 'ѕ' => {
                    self.has_non_russian_cyrillic_letter = true;
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn count(&self, script: Script) -> u32 {
        self.counts[script as usize]
    }

    /// The script with the most (weighted) letters; Han and kana count
    /// together, since Japanese mixes them. `None` without any letter.
    fn dominant_script(&self) -> Option<Script> {
        let mut best: Option<(Script, u32)> = None;
        for script in ALL_SCRIPTS {
            if script == Script::Han {
                // Already counted with kana.
                continue;
            }
            let mut weight = self.count(script) * script.weight();
            if script == Script::Kana {
                weight += self.count(Script::Han) * Script::Han.weight();
            }
            let heavier = match best {
                Some((_, best_weight)) => weight > best_weight,
                None => weight > 0,
            };
            if heavier {
                best = Some((script, weight));
            }
        }
        best.map(|(script, _)| script)
    }

    /// The Latin letters of the text alone, for the rare mixed-script text
    /// whose Latin part dominates.
    fn latin_only(&self) -> String {
        self.text
            .chars()
            .map(|c| match Script::of(c) {
                Some(Script::Latin) => c,
                _ if c == '\'' => c,
                _ => ' ',
            })
            .collect()
    }
}

const ALL_SCRIPTS: [Script; SCRIPT_COUNT] = [
    Script::Latin,
    Script::Greek,
    Script::Cyrillic,
    Script::Armenian,
    Script::Hebrew,
    Script::Arabic,
    Script::Thaana,
    Script::Devanagari,
    Script::Bengali,
    Script::Gurmukhi,
    Script::Gujarati,
    Script::Oriya,
    Script::Tamil,
    Script::Telugu,
    Script::Kannada,
    Script::Malayalam,
    Script::Sinhala,
    Script::Thai,
    Script::Lao,
    Script::Tibetan,
    Script::Myanmar,
    Script::Georgian,
    Script::Hangul,
    Script::Ethiopic,
    Script::Khmer,
    Script::Mongolian,
    Script::Kana,
    Script::Han,
];

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Tokens that carry no language: mentions, links, e-mail addresses, the
/// retweet marker and HTML entities (`&amp;`).
fn is_noise_token(token: &str) -> bool {
    let lower_start = |prefix: &str| {
        token
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    token.starts_with('@')
        || token.starts_with('&')
        || token == "RT"
        || lower_start("http")
        || lower_start("www.")
        || token.contains("://")
        || token.contains('@')
}

/// Latin letters written by Polish, Czech, Slovak, Hungarian, Romanian,
/// the Nordic and Baltic languages, Croatian, Slovene and Esperanto but by
/// none of whichlang's Latin languages (English, German, French, Spanish,
/// Portuguese, Italian, Dutch, Swedish, Turkish, Vietnamese).
fn is_latin_letter_unknown_to_whichlang(c: char) -> bool {
    matches!(
        c,
        'ą' | 'ę'
            | 'ł'
            | 'ń'
            | 'ś'
            | 'ź'
            | 'ż'
            | 'ć'
            | 'č'
            | 'š'
            | 'ž'
            | 'ř'
            | 'ě'
            | 'ů'
            | 'ť'
            | 'ď'
            | 'ň'
            | 'ľ'
            | 'ĺ'
            | 'ŕ'
            | 'ő'
            | 'ű'
            | 'ø'
            | 'æ'
            | 'þ'
            | 'ð'
            | 'ā'
            | 'ē'
            | 'ī'
            | 'ū'
            | 'ģ'
            | 'ķ'
            | 'ļ'
            | 'ņ'
            | 'ė'
            | 'į'
            | 'ų'
            | 'ș'
            | 'ț'
            | 'ĉ'
            | 'ĝ'
            | 'ĥ'
            | 'ĵ'
            | 'ŝ'
            | 'ŭ'
    )
}

/// Arabic-script letters of Persian and Urdu (pe, che, zhe, gaf, keheh,
/// Farsi yeh; tteh, ddal, rreh, noon ghunna, yeh barree, heh goal, heh
/// doachashmee) that Arabic itself does not write.
fn is_persian_or_urdu_letter(c: char) -> bool {
    matches!(
        c,
        '\u{067E}'
            | '\u{0686}'
            | '\u{0698}'
            | '\u{06AF}'
            | '\u{06A9}'
            | '\u{06CC}'
            | '\u{0679}'
            | '\u{0688}'
            | '\u{0691}'
            | '\u{06BA}'
            | '\u{06D2}'
            | '\u{06C1}'
            | '\u{06BE}'
    )
}

/// Latin-script text: whichlang, unless the text shows a letter whichlang's
/// languages never write, in which case whatlang's wider set decides.
fn detect_latin(cleaned: &Cleaned) -> &'static str {
    let mixed = cleaned.counts.iter().sum::<u32>() > cleaned.count(Script::Latin);
    let latin_only;
    let text = if mixed {
        latin_only = cleaned.latin_only();
        latin_only.as_str()
    } else {
        cleaned.text.as_str()
    };
    let guess = whichlang_code(whichlang::detect_language(text));
    // whichlang's non-Latin languages cannot be right for Latin letters.
    let latin_guess = !matches!(guess, "ar" | "zh" | "hi" | "ja" | "ko" | "ru");
    if latin_guess && !cleaned.has_latin_letter_unknown_to_whichlang {
        return guess;
    }
    // whatlang compares only the languages that write such letters, and
    // whichlang's guess, so that an English sentence naming "Łukasz" stays
    // English; fewer candidates also make whatlang several times faster.
    let mut candidates = LANGUAGES_WITH_LETTERS_UNKNOWN_TO_WHICHLANG.to_vec();
    if latin_guess {
        candidates.extend(three_letter_of(guess).and_then(whatlang::Lang::from_code));
    }
    match whatlang::Detector::with_allowlist(candidates).detect_lang(text) {
        Some(lang) => iso639_1_of_whatlang(lang),
        None if latin_guess => guess,
        None => "en",
    }
}

/// whatlang's languages that write the letters of
/// [`is_latin_letter_unknown_to_whichlang`].
const LANGUAGES_WITH_LETTERS_UNKNOWN_TO_WHICHLANG: [whatlang::Lang; 15] = {
    use whatlang::Lang::*;
    [
        Pol, Ces, Slk, Slv, Hrv, Hun, Ron, Dan, Nob, Lav, Lit, Est, Fin, Epo, Tuk,
    ]
};

/// The ISO 639-3 code of one of whichlang's Latin-script languages.
fn three_letter_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "en" => "eng",
        "de" => "deu",
        "fr" => "fra",
        "es" => "spa",
        "pt" => "por",
        "it" => "ita",
        "nl" => "nld",
        "sv" => "swe",
        "tr" => "tur",
        "vi" => "vie",
        _ => return None,
    })
}

/// whatlang's answer for `text`, if it is one of `allowed` (ISO 639-1).
fn ask_whatlang(text: &str, allowed: &[&str]) -> Option<&'static str> {
    let code = iso639_1_of_whatlang(whatlang::detect_lang(text)?);
    allowed.contains(&code).then_some(code)
}

fn iso639_1_of_whatlang(lang: whatlang::Lang) -> &'static str {
    three_to_two(lang.code()).unwrap_or(lang.code())
}

fn whichlang_code(lang: whichlang::Lang) -> &'static str {
    use whichlang::Lang;
    match lang {
        Lang::Ara => "ar",
        Lang::Cmn => "zh",
        Lang::Deu => "de",
        Lang::Eng => "en",
        Lang::Fra => "fr",
        Lang::Hin => "hi",
        Lang::Ita => "it",
        Lang::Jpn => "ja",
        Lang::Kor => "ko",
        Lang::Nld => "nl",
        Lang::Por => "pt",
        Lang::Rus => "ru",
        Lang::Spa => "es",
        Lang::Swe => "sv",
        Lang::Tur => "tr",
        Lang::Vie => "vi",
    }
}

/// ISO 639-2 (terminology and bibliographic) and 639-3 codes of common
/// languages, and every language whatlang knows, to ISO 639-1.
fn three_to_two(code: &str) -> Option<&'static str> {
    Some(match code {
        "afr" => "af",
        "aka" => "ak",
        "alb" | "sqi" => "sq",
        "amh" => "am",
        "ara" | "arb" => "ar",
        "arm" | "hye" => "hy",
        "asm" => "as",
        "aze" => "az",
        "baq" | "eus" => "eu",
        "bel" => "be",
        "ben" => "bn",
        "bod" | "tib" => "bo",
        "bos" => "bs",
        "bre" => "br",
        "bul" => "bg",
        "bur" | "mya" => "my",
        "cat" => "ca",
        "ces" | "cze" => "cs",
        "chi" | "zho" | "cmn" => "zh",
        "cym" | "wel" => "cy",
        "dan" => "da",
        "deu" | "ger" => "de",
        "div" => "dv",
        "dut" | "nld" => "nl",
        "ell" | "gre" => "el",
        "eng" => "en",
        "epo" => "eo",
        "est" => "et",
        "fas" | "per" | "pes" => "fa",
        // Filipino is standardised Tagalog and has no code of its own.
        "fil" | "tgl" => "tl",
        "fin" => "fi",
        "fra" | "fre" => "fr",
        "geo" | "kat" => "ka",
        "gle" => "ga",
        "glg" => "gl",
        "guj" => "gu",
        "hat" => "ht",
        "hau" => "ha",
        "heb" => "he",
        "hin" => "hi",
        "hrv" => "hr",
        "hun" => "hu",
        "ibo" => "ig",
        "ice" | "isl" => "is",
        "ind" => "id",
        "ita" => "it",
        "jav" => "jv",
        "jpn" => "ja",
        "kan" => "kn",
        "kaz" => "kk",
        "khm" => "km",
        "kin" => "rw",
        "kir" => "ky",
        "kor" => "ko",
        "kur" => "ku",
        "lao" => "lo",
        "lat" => "la",
        "lav" => "lv",
        "lit" => "lt",
        "ltz" => "lb",
        "mac" | "mkd" => "mk",
        "mal" => "ml",
        "mao" | "mri" => "mi",
        "mar" => "mr",
        "may" | "msa" | "zsm" => "ms",
        "mlg" => "mg",
        "mlt" => "mt",
        "mon" => "mn",
        "nep" => "ne",
        "nno" => "nn",
        "nob" => "nb",
        "nor" => "no",
        "nya" => "ny",
        "ori" => "or",
        "orm" => "om",
        "pan" => "pa",
        "pol" => "pl",
        "por" => "pt",
        "pus" => "ps",
        "ron" | "rum" => "ro",
        "rus" => "ru",
        "sin" => "si",
        "slk" | "slo" => "sk",
        "slv" => "sl",
        "smo" => "sm",
        "sna" => "sn",
        "snd" => "sd",
        "som" => "so",
        "spa" => "es",
        "srp" => "sr",
        "swa" => "sw",
        "swe" => "sv",
        "tam" => "ta",
        "tat" => "tt",
        "tel" => "te",
        "tgk" => "tg",
        "tha" => "th",
        "tir" => "ti",
        "tuk" => "tk",
        "tur" => "tr",
        "ukr" => "uk",
        "urd" => "ur",
        "uzb" => "uz",
        "vie" => "vi",
        "xho" => "xh",
        "yid" => "yi",
        "yor" => "yo",
        "zul" => "zu",
        _ => return None,
    })
}

/// English names of common languages (lower case) to ISO 639-1.
fn english_name_to_code(name: &str) -> Option<&'static str> {
    Some(match name {
        "arabic" => "ar",
        "bengali" | "bangla" => "bn",
        "bulgarian" => "bg",
        "catalan" => "ca",
        "chinese" | "mandarin" => "zh",
        "croatian" => "hr",
        "czech" => "cs",
        "danish" => "da",
        "dutch" | "flemish" => "nl",
        "english" => "en",
        "estonian" => "et",
        "finnish" => "fi",
        "french" => "fr",
        "german" => "de",
        "greek" => "el",
        "hebrew" => "he",
        "hindi" => "hi",
        "hungarian" => "hu",
        "indonesian" => "id",
        "italian" => "it",
        "japanese" => "ja",
        "korean" => "ko",
        "latvian" => "lv",
        "lithuanian" => "lt",
        "malay" => "ms",
        "norwegian" => "no",
        "persian" | "farsi" => "fa",
        "polish" => "pl",
        "portuguese" => "pt",
        "romanian" => "ro",
        "russian" => "ru",
        "serbian" => "sr",
        "slovak" => "sk",
        "slovenian" | "slovene" => "sl",
        "spanish" | "castilian" => "es",
        "swahili" => "sw",
        "swedish" => "sv",
        "tagalog" | "filipino" => "tl",
        "tamil" => "ta",
        "thai" => "th",
        "turkish" => "tr",
        "ukrainian" => "uk",
        "urdu" => "ur",
        "vietnamese" => "vi",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn detects_latin_script_languages() {
        let cases = [
            ("The weather is lovely today and we are off to the beach", "en"),
            ("Ich habe heute leider keine Zeit, weil ich noch arbeiten muss", "de"),
            ("Je ne sais pas pourquoi le train est encore en retard ce matin", "fr"),
            ("Mañana vamos a la playa con mis amigos si no llueve", "es"),
            ("Não sei se vou conseguir chegar a tempo para o jantar", "pt"),
            ("Questa sera andiamo a mangiare una pizza con gli amici", "it"),
            ("Ik weet niet of ik morgen naar het werk kan komen", "nl"),
        ];
        for (text, code) in cases {
            assert_eq!(detect(text), Some(code), "{text}");
        }
    }

    #[test]
    fn latin_letters_whichlang_lacks_hand_over_to_whatlang() {
        assert_eq!(
            detect("Dzisiaj jest bardzo ładna pogoda, więc idziemy na długi spacer"),
            Some("pl")
        );
        assert_eq!(
            detect("Dnes je opravdu krásné počasí a půjdeme ven na procházku"),
            Some("cs")
        );
        // A foreign name alone does not make an English sentence Polish.
        assert_eq!(
            detect("Yesterday I met Łukasz at the conference and we talked about the weather"),
            Some("en")
        );
    }

    #[test]
    fn tells_cyrillic_languages_apart() {
        assert_eq!(detect("Сегодня очень хорошая погода, пойдём гулять в парк"), Some("ru"));
        assert_eq!(detect("Сьогодні дуже гарна погода, ходімо гуляти в парк"), Some("uk"));
        assert_eq!(
            detect("Днес времето е много хубаво и ще излезем на разходка"),
            Some("bg")
        );
    }

    #[test]
    fn detects_other_scripts() {
        let cases = [
            ("今日はとても暑いですね", "ja"),
            ("我们明天去北京看朋友", "zh"),
            ("오늘 날씨가 정말 좋네요", "ko"),
            ("Сегодня очень хорошая погода, пойдём гулять в парк", "ru"),
            ("الطقس جميل جدا اليوم والجميع في الحديقة", "ar"),
            ("امروز هوا خیلی خوب است و ما به پارک می‌رویم", "fa"),
            ("Καλημέρα σε όλους, τι κάνετε σήμερα;", "el"),
            ("שלום לכולם, מה שלומכם היום", "he"),
            ("วันนี้อากาศดีมาก", "th"),
            ("आज मौसम बहुत अच्छा है और हम बाहर जा रहे हैं", "hi"),
            ("დღეს ძალიან კარგი ამინდია", "ka"),
        ];
        for (text, code) in cases {
            assert_eq!(detect(text), Some(code), "{text}");
        }
    }

    #[test]
    fn ignores_mentions_links_hashtag_marks_and_emoji() {
        assert_eq!(
            detect("RT @alice_example: Ich liebe diesen Song so sehr!!! 😍😍 #musik https://example.com/x"),
            Some("de")
        );
        // The English hashtag does not outweigh the Japanese text.
        assert_eq!(detect("今日はいい天気 #sunnyday"), Some("ja"));
    }

    #[test]
    fn nothing_to_judge_gives_none() {
        for text in [
            "",
            "   \n\t",
            "😀🎉👍",
            "https://example.com/a/b?c=d",
            "www.example.org",
            "@alice_example @bob_example",
            "12345 !!! ... 3,99 €",
            "RT &amp;",
        ] {
            assert_eq!(detect(text), None, "{text:?}");
        }
    }

    #[test]
    fn normalises_tags() {
        let cases = [
            ("en", Some("en")),
            ("EN", Some("en")),
            ("en-US", Some("en")),
            ("pt_BR", Some("pt")),
            ("zh-Hant-TW", Some("zh")),
            (" de ", Some("de")),
            ("eng", Some("en")),
            ("ger", Some("de")),
            ("deu", Some("de")),
            ("fre", Some("fr")),
            ("cmn", Some("zh")),
            ("fil", Some("tl")),
            ("yue", Some("yue")),
            ("iw", Some("he")),
            ("in", Some("id")),
            ("English", Some("en")),
            ("german", Some("de")),
            ("und", None),
            ("zxx", None),
            ("qme", None),
            ("", None),
            ("x-private", None),
            ("Klingon", None),
            ("e1", None),
        ];
        for (tag, want) in cases {
            assert_eq!(normalise_tag(tag).as_deref(), want, "{tag:?}");
        }
    }

    #[test]
    fn evaluate_tallies_and_prints_a_table() {
        let samples = [
            ("The weather is lovely today and we are off to the beach", "en"),
            ("Ich habe heute leider keine Zeit, weil ich noch arbeiten muss", "de"),
            ("😀", "en-US"),
        ];
        let eval = evaluate(samples.into_iter());
        assert_eq!(eval.total(), 3);
        assert_eq!(eval.correct(), 2);
        assert_eq!(eval.per_lang.get("en"), Some(&LangScore { total: 2, correct: 1 }));
        assert_eq!(eval.confusions_of("en", 5), vec![("none", 1)]);
        assert!((eval.accuracy_excluding(&["en"]) - 1.0).abs() < 1e-12);
        let table = eval.to_string();
        let want = "\
lang      posts  correct  accuracy  most often taken for
de            1        1   100.00%
en            2        1    50.00%  none 1
all           3        2    66.67%";
        assert_eq!(table, want);
    }

    #[test]
    fn long_texts_are_judged_by_their_start() {
        assert_eq!(prefix_within("日本", 4), "日");
        assert_eq!(prefix_within("ab", 10), "ab");
        let long = "Ich habe heute leider keine Zeit. ".repeat(100_000);
        assert_eq!(detect(&long), Some("de"));
        let emoji_then_text = format!("{} the weather is lovely today", "😀".repeat(100_000));
        assert_eq!(detect(&emoji_then_text), None);
    }

    proptest! {
        #[test]
        fn detect_never_panics_and_answers_a_code(text in any::<String>()) {
            if let Some(code) = detect(&text) {
                prop_assert!((2..=3).contains(&code.len()));
                prop_assert!(code.bytes().all(|b| b.is_ascii_lowercase()));
            }
        }

        #[test]
        fn normalise_tag_never_panics_and_is_lower_case(tag in any::<String>()) {
            if let Some(code) = normalise_tag(&tag) {
                prop_assert!((2..=3).contains(&code.len()));
                prop_assert!(code.bytes().all(|b| b.is_ascii_lowercase()));
            }
        }

        /// The fast path of enrichment keeps a tag as it is exactly when
        /// normalising would give the same tag.
        #[test]
        fn a_normalised_tag_is_its_own_normal_form(tag in "[a-zA-Z]{1,3}|[a-z]{2}|iw|in|mo|[a-z]{2}-[A-Z]{2}") {
            prop_assert_eq!(is_normalised_tag(&tag), normalise_tag(&tag).as_deref() == Some(tag.as_str()) && tag.len() == 2);
        }

        #[test]
        fn text_without_letters_gives_none(text in "[0-9 .,!?:;()#@&%$€\\-]{0,40}") {
            prop_assert_eq!(detect(&text), None);
        }
    }
}
