//! Enrichment: everything added to a post before detection, in one place.
//!
//! [`Enricher::enrich`] runs, in this order:
//!
//! 1. pseudonymisation ([`crate::pseudonym`]): nothing after it sees a raw
//!    handle, a raw post id or a permalink;
//! 2. entities ([`crate::entities`]) from the raw text;
//! 3. language ([`crate::lang`]): the source's tag if it has a usable one,
//!    otherwise detected from the text;
//! 4. sentiment ([`crate::sentiment`]).
//!
//! The text is left as the author wrote it, because feeds match `@mentions`
//! before redaction. [`Enricher::redact`] is the last step before a post is
//! stored, shown or written: it masks the text ([`crate::redact`]) and
//! replaces mentions of non-public accounts in the entities by their epoch
//! pseudonyms.

use crate::entities::{self, Span};
use crate::post::{Deletion, Event, LangSource, Post};
use crate::pseudonym::{Keyring, Pseudonymiser};
use crate::redact::{self, PublicAccounts};
use crate::time::Timestamp;
use crate::{lang, sentiment};
use std::sync::Arc;

/// Enriches posts; one per thread.
pub struct Enricher {
    pseudonymiser: Pseudonymiser,
    public: Arc<PublicAccounts>,
    spans: Vec<Span>,
    /// Posts arrive enriched and redacted, deletions pseudonymised.
    upstream: bool,
}

impl Enricher {
    /// `undated_time` chooses the pseudonym epoch of posts without a
    /// timestamp (usually the wall-clock time when the run started).
    pub fn new(keyring: Arc<Keyring>, public: Arc<PublicAccounts>, undated_time: Timestamp) -> Enricher {
        Enricher {
            pseudonymiser: Pseudonymiser::new(keyring, undated_time),
            public,
            spans: Vec::new(),
            upstream: false,
        }
    }

    /// The keyring this enricher pseudonymises with.
    pub fn keys(&self) -> &Arc<Keyring> {
        self.pseudonymiser.keyring()
    }

    /// With `yes`, posts are taken as already pseudonymised, enriched and
    /// redacted, by this same code, elsewhere (a cluster's publisher, which
    /// still had the raw text): [`Enricher::enrich`] keeps what a post
    /// carries, [`Enricher::redact`] changes nothing, and deletions keep
    /// their ids. Hashing an id twice would make a pseudonym nothing else
    /// knows, and sentiment or language found again in a masked text could
    /// differ from what the raw text gave. A post without a sentiment
    /// score was not enriched: it gets entities, language and sentiment
    /// here, from its (masked) text, but its ids are left alone.
    pub fn enriched_upstream(mut self, yes: bool) -> Enricher {
        self.upstream = yes;
        self
    }

    /// Steps 1–4 (see the module doc). Call exactly once per post.
    pub fn enrich(&mut self, post: &mut Post) {
        if self.upstream && post.sentiment.is_some() {
            self.spans.clear();
            return;
        }
        if !self.upstream {
            self.pseudonymiser.apply(post);
        }
        entities::scan_into(&post.text, &mut self.spans);
        post.entities = Some(entities::extract(&post.text, &self.spans));
        if post.lang.as_deref().is_some_and(lang::is_normalised_tag) {
            // Most tagged posts carry a plain code already ("en").
            post.lang_source = Some(LangSource::Source);
        } else {
            self.detect_lang(post);
        }
        post.sentiment = Some(sentiment::score(&post.text));
    }

    /// The language from the source's tag, normalised, or else detected.
    fn detect_lang(&mut self, post: &mut Post) {
        match post.lang.as_deref().and_then(lang::normalise_tag) {
            Some(tag) => {
                post.lang = Some(tag);
                post.lang_source = Some(LangSource::Source);
            }
            None => {
                post.lang = lang::detect(&post.text).map(str::to_string);
                post.lang_source = post.lang.as_ref().map(|_| LangSource::Detected);
            }
        }
    }

    /// The last step before a post leaves the pipeline: masks its text and
    /// pseudonymises mentions of non-public accounts in its entities.
    /// Returns whether the text changed, so a caller may keep what it
    /// derived from the text when it did not.
    pub fn redact(&mut self, post: &mut Post) -> bool {
        entities::scan_into(&post.text, &mut self.spans);
        self.redact_scanned(post)
    }

    /// [`Enricher::redact`] for the post [`Enricher::enrich`] was last
    /// called on, its text unchanged since: reuses the entity spans found
    /// then instead of scanning the text again.
    pub fn redact_enriched(&mut self, post: &mut Post) -> bool {
        self.redact_scanned(post)
    }

    /// [`Enricher::redact`] with `self.spans` already holding the spans of
    /// `post.text`.
    fn redact_scanned(&mut self, post: &mut Post) -> bool {
        if self.upstream {
            return false;
        }
        // Most posts hold nothing to mask; don't copy their text.
        let clean = self
            .spans
            .iter()
            .all(|s| s.kind == entities::SpanKind::Hashtag || s.kind == entities::SpanKind::Cashtag)
            && !post.text.bytes().any(|b| b.is_ascii_digit());
        let mut changed = false;
        if !clean {
            let masked = redact::redact_text(&post.text, &self.spans, &self.public);
            if masked != post.text {
                post.text = masked;
                changed = true;
            }
        }
        if let Some(e) = post.entities.as_mut() {
            let epoch = self.pseudonymiser.epoch_of(post.created_at);
            for m in e.mentions.iter_mut() {
                if !self.public.contains(m) {
                    *m = self.pseudonymiser.account(&post.platform, m, epoch);
                }
            }
        }
        changed
    }

    /// Pseudonymises a deletion notice so that it names the stored post.
    pub fn deletion(&mut self, d: &mut Deletion) {
        if !self.upstream {
            self.pseudonymiser.apply_deletion(d);
        }
    }

    /// Enriches and redacts an event, for pipelines with no detection step
    /// in between (`tidewatch ingest`).
    pub fn finish(&mut self, event: &mut Event) {
        match event {
            Event::Post(p) => {
                // The text is unchanged since `enrich` scanned it.
                self.enrich(p);
                self.redact_scanned(p);
            }
            Event::Delete(d) => self.deletion(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pseudonym::PseudonymConfig;

    fn enricher(public: &[&str]) -> Enricher {
        let ring = Arc::new(Keyring::from_seed(PseudonymConfig::default(), 7));
        Enricher::new(ring, Arc::new(PublicAccounts::new(public)), Timestamp(0))
    }

    fn post(text: &str, lang: Option<&str>) -> Post {
        Post {
            id: "1".into(),
            platform: "twitter".into(),
            created_at: Some(Timestamp(1_767_225_600_000)),
            author: Some("alice_example".into()),
            text: text.into(),
            lang: lang.map(str::to_string),
            url: Some("https://twitter.com/alice_example/status/1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn enriches_then_redacts() {
        let mut e = enricher(&["bbcnews"]);
        let mut p = post(
            "@bob_example @BBCNews what a great day! https://example.org/x?utm=1 #sun",
            Some("en-GB"),
        );
        e.enrich(&mut p);
        assert_eq!(p.lang.as_deref(), Some("en"));
        assert_eq!(p.lang_source, Some(LangSource::Source));
        assert!(p.sentiment.unwrap().compound > 0.5);
        // Before redaction the matcher sees the raw mention.
        assert!(p.text.contains("@bob_example"));
        assert_eq!(p.entities.as_ref().unwrap().mentions, vec!["bob_example", "bbcnews"]);
        e.redact(&mut p);
        assert_eq!(p.text, "@user @BBCNews what a great day! https://example.org/x #sun");
        let m = &p.entities.as_ref().unwrap().mentions;
        assert!(m[0].starts_with('u') && !m[0].contains("bob"), "{m:?}");
        assert_eq!(m[1], "bbcnews");
        assert_eq!(p.entities.as_ref().unwrap().domains, vec!["example.org"]);
        assert_eq!(p.url, None);
        assert!(!p.author.unwrap().contains("alice"));
    }

    #[test]
    fn redacting_with_the_spans_of_enrichment_equals_scanning_again() {
        for text in [
            "@bob_example @BBCNews what a great day! https://example.org/x?utm=1 #sun",
            "call +44 20 7946 0958 or mail carol@example.com, cc @dave_example",
            "nothing to mask here #tag $CASH",
            "",
        ] {
            let mut e = enricher(&["bbcnews"]);
            let (mut a, mut b) = (post(text, None), post(text, None));
            e.enrich(&mut a);
            let changed_a = e.redact_enriched(&mut a);
            e.enrich(&mut b);
            let changed_b = e.redact(&mut b);
            assert_eq!(
                (a.text, a.entities, changed_a),
                (b.text, b.entities, changed_b),
                "{text}"
            );
        }
    }

    #[test]
    fn a_mentioned_account_has_the_same_pseudonym_as_its_posts() {
        let mut e = enricher(&[]);
        let mut by_bob = post("hello", None);
        by_bob.author = Some("Bob_Example".into());
        e.finish(&mut Event::Post(by_bob.clone()));
        let mut ev = Event::Post(by_bob);
        e.finish(&mut ev);
        let Event::Post(by_bob) = ev else { unreachable!() };
        let mut to_bob = post("@bob_example hi", None);
        e.enrich(&mut to_bob);
        e.redact(&mut to_bob);
        assert_eq!(to_bob.entities.unwrap().mentions, vec![by_bob.author.unwrap()]);
    }

    #[test]
    fn detects_language_when_the_source_has_none() {
        let mut e = enricher(&[]);
        let mut p = post("Das ist ein schöner Tag und wir gehen heute in den Park", Some("und"));
        e.enrich(&mut p);
        assert_eq!(p.lang.as_deref(), Some("de"));
        assert_eq!(p.lang_source, Some(LangSource::Detected));
    }

    #[test]
    fn posts_enriched_upstream_are_kept_as_they_came() {
        // What a publisher makes of a raw post...
        let mut published = post("so happy to meet @alice_example at the harbour", Some("en"));
        let mut e = enricher(&[]);
        e.enrich(&mut published);
        e.redact_enriched(&mut published);
        assert!(published.text.contains("@user"));
        // ... a worker keeps: ids, sentiment of the raw text, entities.
        let mut worker = enricher(&[]).enriched_upstream(true);
        let mut p = published.clone();
        worker.enrich(&mut p);
        assert!(!worker.redact_enriched(&mut p));
        assert_eq!(p, published);
        // A post that came without a score is enriched here, its ids untouched.
        let mut again = published.clone();
        again.sentiment = None;
        worker.enrich(&mut again);
        assert_eq!(again.id, published.id, "ids are never hashed twice");
        assert!(again.sentiment.is_some());
        let mut d = Deletion {
            id: "0f3a".into(),
            platform: "twitter".into(),
            ..Default::default()
        };
        worker.deletion(&mut d);
        assert_eq!(d.id, "0f3a");
        enricher(&[]).deletion(&mut d);
        assert_ne!(d.id, "0f3a");
    }
}
