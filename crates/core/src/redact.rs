//! Redaction of the text that is stored or shown.
//!
//! A post's text can name people even when its author is pseudonymised:
//! replies start with handles, posts carry e-mail addresses and phone
//! numbers, and links carry tracking parameters that identify the sharer.
//! Before a text leaves the pipeline:
//!
//! - `@handle` becomes `@user`, unless the account is on the configured list
//!   of public accounts (news outlets, brands, institutions);
//! - e-mail addresses become `[email]`, phone numbers `[phone]`;
//! - links lose their query string and fragment.
//!
//! Mentions in the post's entities follow the same rule: a public account
//! stays by name; any other becomes its epoch pseudonym (so that "many
//! accounts reply to the same account" stays visible) — see
//! `crate::enrich::Enricher::redact`.

use crate::entities::{Span, SpanKind};
use std::collections::HashSet;

/// Accounts that may be named: handles, lower case, without `@`.
#[derive(Clone, Debug, Default)]
pub struct PublicAccounts {
    handles: HashSet<String>,
}

impl PublicAccounts {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(handles: I) -> Self {
        PublicAccounts {
            handles: handles
                .into_iter()
                .map(|h| h.as_ref().trim_start_matches('@').to_lowercase())
                .collect(),
        }
    }

    /// Whether `handle` (with or without `@`, any case) is public.
    pub fn contains(&self, handle: &str) -> bool {
        if self.handles.is_empty() {
            return false;
        }
        self.handles.contains(&handle.trim_start_matches('@').to_lowercase())
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

/// Returns the redacted text, given the text's entity spans (from
/// `crate::entities::scan`).
pub fn redact_text(text: &str, spans: &[Span], public: &PublicAccounts) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for s in spans {
        mask_phones(&text[last..s.range.start], &mut out);
        let body = &text[s.range.clone()];
        match s.kind {
            SpanKind::Mention if !public.contains(crate::entities::mention_handle(body)) => {
                out.push_str(if body.starts_with('@') { "@user" } else { "u/user" })
            }
            SpanKind::Email => out.push_str("[email]"),
            SpanKind::Link => push_link(body, &mut out),
            _ => out.push_str(body),
        }
        last = s.range.end;
    }
    mask_phones(&text[last..], &mut out);
    out
}

/// A link without query or fragment; a link whose path names an account
/// (a profile or a post permalink) keeps only its host.
fn push_link(body: &str, out: &mut String) {
    let bare = body.split(['?', '#']).next().unwrap_or(body);
    let after_scheme = bare.find("://").map_or(0, |p| p + 3);
    let (host, path) = match bare[after_scheme..].find('/') {
        Some(p) => bare.split_at(after_scheme + p),
        None => (bare, ""),
    };
    let domain = host[after_scheme..].to_ascii_lowercase();
    let domain = domain.strip_prefix("www.").unwrap_or(&domain);
    if !path.is_empty() && crate::entities::names_account(domain, path) {
        out.push_str(host);
        out.push_str("/…");
    } else {
        out.push_str(bare);
    }
}

/// Copies `seg` to `out`, replacing phone numbers with `[phone]`.
///
/// A phone number is a run of digits and single separators (space, `-`,
/// `.`, brackets) starting at a word boundary, with 9 to 15 digits, or 7 or
/// more after a leading `+`. Shorter runs (years, times, prices) are kept;
/// a run right after a currency sign is an amount, not a number to call.
fn mask_phones(seg: &str, out: &mut String) {
    let b = seg.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        // Most text has no digit at all: jump to the next candidate.
        match b[i..]
            .iter()
            .position(|&c| c.is_ascii_digit() || c == b'+' || c == b'(')
        {
            Some(off) => i += off,
            None => break,
        }
        let c = b[i];
        let starts = c.is_ascii_digit() || ((c == b'+' || c == b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        let boundary = i == 0
            || !(b[i - 1].is_ascii_alphanumeric()
                || matches!(b[i - 1], b'$' | b'_' | b'.' | b',' | b'/' | b'-' | b'+' | b':')
                || b[i - 1] >= 0x80);
        if !(starts && boundary) {
            i += 1;
            continue;
        }
        let (end, digits) = phone_run(b, i);
        let plus = c == b'+';
        let followed_ok = end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] >= 0x80);
        if followed_ok && ((9..=15).contains(&digits) || (plus && (7..=15).contains(&digits))) {
            out.push_str(&seg[copied..i]);
            out.push_str("[phone]");
            copied = end;
            i = end;
        } else {
            i = end.max(i + 1);
        }
    }
    out.push_str(&seg[copied..]);
}

/// From `i`, the end of a run of digits with single separators between
/// them, and how many digits it holds. The run ends on a digit or `)`.
fn phone_run(b: &[u8], mut i: usize) -> (usize, usize) {
    let mut digits = 0;
    let mut end = i;
    if b[i] == b'+' {
        i += 1;
    }
    let mut prev_sep = true;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            digits += 1;
            i += 1;
            end = i;
            prev_sep = false;
        } else if c == b')' && !prev_sep {
            i += 1;
            end = i;
            prev_sep = false;
        } else if c == b'(' || (matches!(c, b' ' | b'-' | b'.') && !prev_sep) {
            // An opening bracket may follow a separator: "+44 (0)20".
            i += 1;
            prev_sep = true;
        } else {
            break;
        }
    }
    (end, digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::scan;
    use proptest::prelude::*;

    fn redact(text: &str, public: &[&str]) -> String {
        redact_text(text, &scan(text), &PublicAccounts::new(public))
    }

    #[test]
    fn masks_mentions_unless_public() {
        assert_eq!(
            redact("@alice_example @BBCNews thanks @bob@mastodon.example!", &["bbcnews"]),
            "@user @BBCNews thanks @user!"
        );
    }

    #[test]
    fn masks_reddit_user_links() {
        assert_eq!(
            redact("ask u/kim_example and /u/judy_example", &[]),
            "ask u/user and u/user"
        );
    }

    #[test]
    fn masks_emails_and_phones() {
        assert_eq!(
            redact("mail jane.doe@example.org or call +44 20 7946 0958 now", &[]),
            "mail [email] or call [phone] now"
        );
        assert_eq!(redact("call (555) 123-4567.", &[]), "call [phone].");
        assert_eq!(redact("ring 555.123.4567", &[]), "ring [phone]");
    }

    #[test]
    fn keeps_numbers_that_are_not_phones() {
        for t in [
            "in 2016-2017 we",
            "at 12:30 today",
            "costs $1234567890",
            "10,000,000 people",
            "flight BA2490",
            "v1.2.3.4",
        ] {
            assert_eq!(redact(t, &[]), t);
        }
    }

    #[test]
    fn links_to_accounts_keep_only_their_host() {
        assert_eq!(
            redact("via https://twitter.com/someone_x/status/12 and https://social.example/@someone_y/3 and https://www.reddit.com/user/z", &[]),
            "via https://twitter.com/… and https://social.example/… and https://www.reddit.com/…"
        );
    }

    #[test]
    fn drops_query_strings_from_links() {
        assert_eq!(
            redact("read https://news.example.org/a?utm_source=x&uid=42#c now", &[]),
            "read https://news.example.org/a now"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_leaves_no_planted_handle(prefix in "\\PC{0,30}", handle in "[a-z][a-z0-9_]{5,12}", suffix in "\\PC{0,30}") {
            let text = format!("{prefix} @{handle} {suffix}");
            let out = redact(&text, &[]);
            let planted = format!("@{handle}");
            prop_assert!(!out.contains(&planted), "{} kept in {}", planted, out);
        }

        #[test]
        fn planted_phone_numbers_are_masked(a in 100u32..999, b in 100u32..999, c in 1000u32..9999, sep in "[ .-]") {
            let text = format!("call me at {a}{sep}{b}{sep}{c} please");
            prop_assert_eq!(redact(&text, &[]), "call me at [phone] please");
        }
    }
}
