//! Entities: hashtags, mentions, links, link domains and cashtags.
//!
//! One pass over the text finds every entity as a [`Span`]; the same spans
//! drive both extraction ([`extract`]) and redaction (`crate::redact`), so
//! what is counted and what is masked can never disagree.
//!
//! Rules, chosen to match how the platforms themselves delimit entities:
//! - `#tag` and `$TAG` start at a word boundary; a hashtag holds letters,
//!   digits, marks and `_` and is not all digits; a cashtag is 1–6 ASCII
//!   letters, optionally followed by `.` and 1–2 letters (`$BRK.B`).
//! - `@handle` starts at a word boundary and may carry an instance or a
//!   domain (`@bob@mastodon.example`, `@alice.bsky.social`); a trailing dot
//!   is punctuation, not part of the handle.
//! - Reddit's `u/name` and `/u/name` are mentions too.
//! - `local@domain.tld` is an e-mail address, not a mention.
//! - a link starts with `http://`, `https://` or `www.` and runs to the next
//!   white space, minus trailing punctuation and unbalanced closing brackets.
//!   It is normalised to scheme + lower-case host + path (query and fragment
//!   dropped); its domain is the host without a leading `www.`.

use crate::post::Entities;
use std::ops::Range;

/// What a [`Span`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Hashtag,
    Mention,
    Cashtag,
    Link,
    Email,
}

/// One entity in a text: its kind and its byte range (sigil included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub kind: SpanKind,
    pub range: Range<usize>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_tag_char(c: char) -> bool {
    is_word_char(c) || matches!(c, '\u{0300}'..='\u{036F}' | '\u{200C}' | '\u{200D}')
}

fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// Bytes that can start an entity (a table: this test runs on every byte).
const MAY_START: [bool; 256] = {
    let mut t = [false; 256];
    let starts = b"#@$/hHwW";
    let mut i = 0;
    while i < starts.len() {
        t[starts[i] as usize] = true;
        i += 1;
    }
    t
};

/// Finds every entity in `text`, in order, without overlaps.
pub fn scan(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    scan_into(text, &mut spans);
    spans
}

/// Like [`scan`], reusing `spans` (cleared first).
pub fn scan_into(text: &str, spans: &mut Vec<Span>) {
    spans.clear();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Only these bytes can start an entity; skip the rest quickly.
        let Some(off) = bytes[i..].iter().position(|&b| MAY_START[b as usize]) else {
            break;
        };
        i += off;
        let at_boundary = || char_before(text, i).is_none_or(|c| !is_word_char(c) && c != '&');
        let found = match bytes[i] {
            b'#' if at_boundary() => hashtag_at(text, i),
            b'$' if at_boundary() => cashtag_at(text, i),
            b'@' => {
                if at_boundary() {
                    mention_at(text, i)
                } else {
                    email_around(text, i, spans)
                }
            }
            b'/' => reddit_mention_at(text, i),
            // `h` and `w` are common letters: only `ht…` and `ww…` can
            // start a link, which one byte tells before anything is decoded.
            b'h' | b'H' | b'w' | b'W'
                if bytes.get(i + 1).is_some_and(|b| matches!(b, b't' | b'T' | b'w' | b'W'))
                    && char_before(text, i).is_none_or(|c| !is_word_char(c)) =>
            {
                link_at(text, i)
            }
            _ => None,
        };
        match found {
            Some(span) => {
                i = span.range.end;
                spans.push(span);
            }
            None => i += 1,
        }
    }
}

fn take_while(text: &str, start: usize, pred: impl Fn(char) -> bool) -> usize {
    text[start..]
        .char_indices()
        .find(|&(_, c)| !pred(c))
        .map_or(text.len(), |(j, _)| start + j)
}

fn hashtag_at(text: &str, i: usize) -> Option<Span> {
    let end = take_while(text, i + 1, is_tag_char);
    let body = &text[i + 1..end];
    if body.is_empty() || body.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(Span {
        kind: SpanKind::Hashtag,
        range: i..end,
    })
}

fn cashtag_at(text: &str, i: usize) -> Option<Span> {
    let b = text.as_bytes();
    let mut end = i + 1;
    while end < b.len() && b[end].is_ascii_alphabetic() && end - i <= 6 {
        end += 1;
    }
    let letters = end - i - 1;
    if letters == 0 || letters > 6 {
        return None;
    }
    // A share class suffix: $BRK.B
    if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_alphabetic() {
        let mut e2 = end + 1;
        while e2 < b.len() && b[e2].is_ascii_alphabetic() && e2 - end <= 2 {
            e2 += 1;
        }
        if e2 - end - 1 <= 2 && text[e2..].chars().next().is_none_or(|c| !is_word_char(c)) {
            end = e2;
        }
    }
    if text[end..].chars().next().is_some_and(is_word_char) {
        return None;
    }
    Some(Span {
        kind: SpanKind::Cashtag,
        range: i..end,
    })
}

fn mention_at(text: &str, i: usize) -> Option<Span> {
    let handle_char = |c: char| is_word_char(c) || c == '.' || c == '-' || c == '@';
    let mut end = take_while(text, i + 1, handle_char);
    // Trailing dots, hyphens and a dangling '@' are punctuation.
    while end > i + 1 && matches!(text.as_bytes()[end - 1], b'.' | b'-' | b'@') {
        end -= 1;
    }
    if end == i + 1 || !text[i + 1..].starts_with(|c: char| is_word_char(c)) {
        return None;
    }
    Some(Span {
        kind: SpanKind::Mention,
        range: i..end,
    })
}

/// `u/name` or `/u/name`, where `i` is the slash after the `u`.
fn reddit_mention_at(text: &str, i: usize) -> Option<Span> {
    let b = text.as_bytes();
    if i == 0 || !matches!(b[i - 1], b'u' | b'U') {
        return None;
    }
    let mut start = i - 1;
    if start > 0 && b[start - 1] == b'/' {
        start -= 1;
    }
    if char_before(text, start).is_some_and(is_word_char) {
        return None;
    }
    let end = take_while(text, i + 1, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !(3..=20).contains(&(end - i - 1)) {
        return None;
    }
    Some(Span {
        kind: SpanKind::Mention,
        range: start..end,
    })
}

/// The handle of a mention span's text: `@Bob` → `Bob`, `/u/bob` → `bob`.
pub fn mention_handle(body: &str) -> &str {
    match body.strip_prefix('@') {
        Some(h) => h,
        None => body.trim_start_matches('/').get(2..).unwrap_or(""),
    }
}

/// An `@` inside a word: an e-mail address if the parts look like one. The
/// local part may already have been passed by the scanner; look back for it.
fn email_around(text: &str, at: usize, spans: &[Span]) -> Option<Span> {
    let local_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let floor = spans.last().map_or(0, |s| s.range.end);
    let start = text[floor..at]
        .char_indices()
        .rev()
        .find(|&(_, c)| !local_char(c))
        .map_or(floor, |(j, c)| floor + j + c.len_utf8());
    if start == at {
        return None;
    }
    let domain_char = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let mut end = take_while(text, at + 1, domain_char);
    while end > at + 1 && matches!(text.as_bytes()[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &text[at + 1..end];
    let tld = domain.rsplit('.').next().unwrap_or("");
    if !domain.contains('.') || tld.len() < 2 || !tld.chars().all(char::is_alphabetic) {
        return None;
    }
    Some(Span {
        kind: SpanKind::Email,
        range: start..end,
    })
}

fn link_at(text: &str, i: usize) -> Option<Span> {
    let rest = &text[i..];
    let prefix_ok = ["http://", "https://", "www."]
        .iter()
        .any(|p| rest.len() >= p.len() && rest.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()));
    if !prefix_ok {
        return None;
    }
    let mut end = take_while(text, i, |c| {
        !c.is_whitespace() && !matches!(c, '<' | '>' | '"' | '“' | '”')
    });
    // Trailing punctuation belongs to the sentence; a closing bracket only
    // to the link when the link opened one.
    while let Some(c) = text[i..end].chars().next_back() {
        let unbalanced = |open: char| text[i..end].matches(open).count() < text[i..end].matches(c).count();
        let trim = match c {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '…' | '*' => true,
            ')' => unbalanced('('),
            ']' => unbalanced('['),
            '}' => unbalanced('{'),
            _ => false,
        };
        if !trim {
            break;
        }
        end -= c.len_utf8();
    }
    let host_start = rest.find("://").map_or(0, |p| p + 3);
    if end <= i + host_start || !text[i + host_start..end].contains(|c: char| c.is_alphanumeric()) {
        return None;
    }
    Some(Span {
        kind: SpanKind::Link,
        range: i..end,
    })
}

/// Hosts whose link paths name accounts (`twitter.com/<handle>/status/…`,
/// `bsky.app/profile/<handle>`, `reddit.com/user/<name>`): links to them are
/// kept as the bare host, like a mention is kept as `@user`.
const ACCOUNT_HOSTS: &[&str] = &[
    "twitter.com",
    "x.com",
    "bsky.app",
    "reddit.com",
    "facebook.com",
    "instagram.com",
    "tiktok.com",
    "threads.net",
    "youtube.com",
    "linkedin.com",
    "t.me",
];

/// Whether links to `domain` (lower case, no `www.`) name accounts in their
/// path. Mastodon instances are recognised by their `/@name` paths instead.
pub fn is_account_host(domain: &str) -> bool {
    ACCOUNT_HOSTS.iter().any(|h| {
        domain == *h
            || (domain.len() > h.len() && domain.ends_with(h) && domain.as_bytes()[domain.len() - h.len() - 1] == b'.')
    })
}

/// Whether a link's path names an account: on an [account host](is_account_host),
/// or a `/@name` path (Mastodon, Medium, YouTube handles).
pub fn names_account(domain: &str, path: &str) -> bool {
    is_account_host(domain) || path.starts_with("/@") || path.contains("/users/")
}

/// A link normalised to `scheme://host/path` (lower-case scheme and host, no
/// user info, default port, query or fragment), and its domain (the host
/// without `www.`). `None` if there is no host.
pub fn normalise_link(raw: &str) -> Option<(String, String)> {
    let (scheme, rest) = match raw.find("://") {
        Some(p) => (raw[..p].to_ascii_lowercase(), &raw[p + 3..]),
        None => ("http".to_string(), raw),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(p) => (&rest[..p], &rest[p..]),
        None => (rest, ""),
    };
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    }
    .trim_end_matches('.')
    .to_lowercase();
    if host.is_empty() || !host.contains(|c: char| c.is_alphanumeric()) {
        return None;
    }
    let domain = host.strip_prefix("www.").unwrap_or(&host).to_string();
    let path = if path == "/" || names_account(&domain, path) {
        ""
    } else {
        path
    };
    let link = format!("{scheme}://{host}{path}");
    Some((link, domain))
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Extracts the entities of a text from its spans. Tags and mentions are
/// lower-cased without their sigil; each list keeps first-seen order with
/// duplicates removed.
pub fn extract(text: &str, spans: &[Span]) -> Entities {
    let mut e = Entities::default();
    for s in spans {
        let body = &text[s.range.clone()];
        match s.kind {
            SpanKind::Hashtag => push_unique(&mut e.hashtags, body[1..].to_lowercase()),
            SpanKind::Cashtag => push_unique(&mut e.cashtags, body[1..].to_ascii_lowercase()),
            SpanKind::Mention => push_unique(&mut e.mentions, mention_handle(body).to_lowercase()),
            SpanKind::Link => {
                if let Some((link, domain)) = normalise_link(body) {
                    push_unique(&mut e.links, link);
                    push_unique(&mut e.domains, domain);
                }
            }
            SpanKind::Email => {}
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ents(text: &str) -> Entities {
        extract(text, &scan(text))
    }

    fn kinds(text: &str) -> Vec<(SpanKind, &str)> {
        scan(text).into_iter().map(|s| (s.kind, &text[s.range])).collect()
    }

    #[test]
    fn finds_each_kind_of_entity() {
        let e = ents("RT @Alice_Example: #Climate talks in #Bonn2026, $TSLA up. See https://www.Example.org/a/b?utm=x#frag and @bob@mastodon.example.");
        assert_eq!(e.hashtags, vec!["climate", "bonn2026"]);
        assert_eq!(e.mentions, vec!["alice_example", "bob@mastodon.example"]);
        assert_eq!(e.cashtags, vec!["tsla"]);
        assert_eq!(e.links, vec!["https://www.example.org/a/b"]);
        assert_eq!(e.domains, vec!["example.org"]);
    }

    #[test]
    fn word_boundaries_are_respected() {
        assert_eq!(kinds("C#sharp a#b &#39; #123 #1a"), vec![(SpanKind::Hashtag, "#1a")]);
        assert_eq!(kinds("costs $5 or $ABCDEFG or $x1"), vec![]);
        assert_eq!(kinds("$BRK.B rose"), vec![(SpanKind::Cashtag, "$BRK.B")]);
        assert_eq!(
            kinds("#Überschwemmung #日本"),
            vec![(SpanKind::Hashtag, "#Überschwemmung"), (SpanKind::Hashtag, "#日本")]
        );
    }

    #[test]
    fn reddit_user_links_are_mentions() {
        assert_eq!(
            kinds("ask u/kim_example or /u/Judy-Ex, not menu/item"),
            vec![(SpanKind::Mention, "u/kim_example"), (SpanKind::Mention, "/u/Judy-Ex"),]
        );
        assert_eq!(ents("thanks /u/Judy-Ex").mentions, vec!["judy-ex"]);
    }

    #[test]
    fn emails_are_not_mentions() {
        assert_eq!(
            kinds("write to jane.doe+x@example.org. thanks @team"),
            vec![
                (SpanKind::Email, "jane.doe+x@example.org"),
                (SpanKind::Mention, "@team"),
            ]
        );
        assert_eq!(kinds("a@b is not an address"), vec![]);
    }

    #[test]
    fn links_lose_trailing_punctuation_but_keep_balanced_brackets() {
        assert_eq!(
            kinds("(see https://en.example.org/wiki/Foo_(bar)), ok"),
            vec![(SpanKind::Link, "https://en.example.org/wiki/Foo_(bar)")]
        );
        assert_eq!(kinds("at www.example.com."), vec![(SpanKind::Link, "www.example.com")]);
        assert_eq!(kinds("http:// nothing"), vec![]);
        assert_eq!(kinds("shows"), vec![]);
    }

    #[test]
    fn normalises_links() {
        let n = |s| normalise_link(s).unwrap();
        assert_eq!(
            n("HTTPS://News.Example.COM:443/Path?q=1"),
            ("https://news.example.com/Path".into(), "news.example.com".into())
        );
        assert_eq!(
            n("https://www.example.org/"),
            ("https://www.example.org".into(), "example.org".into())
        );
        assert_eq!(
            n("www.example.org/x#y"),
            ("http://www.example.org/x".into(), "example.org".into())
        );
        assert_eq!(
            n("https://user:pw@example.org/p"),
            ("https://example.org/p".into(), "example.org".into())
        );
        assert_eq!(normalise_link("https://"), None);
        // Paths that name accounts are dropped.
        assert_eq!(
            n("https://mobile.twitter.com/someone/status/1"),
            ("https://mobile.twitter.com".into(), "mobile.twitter.com".into())
        );
        assert_eq!(
            n("https://social.example/@someone/11"),
            ("https://social.example".into(), "social.example".into())
        );
    }

    proptest! {
        #[test]
        fn spans_are_ordered_disjoint_and_on_char_boundaries(text in "\\PC{0,80}") {
            let spans = scan(&text);
            let mut last = 0;
            for s in &spans {
                prop_assert!(s.range.start >= last && s.range.end > s.range.start);
                prop_assert!(text.is_char_boundary(s.range.start) && text.is_char_boundary(s.range.end));
                last = s.range.end;
            }
            let _ = extract(&text, &spans);
        }

        #[test]
        fn finds_planted_hashtags(words in proptest::collection::vec("[a-z]{1,8}", 1..6), tag in "[a-z][a-z0-9_]{0,10}") {
            let text = format!("{} #{} {}", words.join(" "), tag, words.join(" "));
            prop_assert!(ents(&text).hashtags.contains(&tag));
        }
    }
}
