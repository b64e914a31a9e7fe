//! The reference check of search: over generated posts, a search for a
//! feed's query returns exactly the posts the feed matcher selected for
//! that feed, through `search`, `count`, `export` and `histogram`, with and
//! without time bounds and feed filters.
//!
//! Posts go through the engine's steps in the engine's order: enrich
//! (pseudonymise, entities, language, sentiment), tokenise and match on the
//! raw text, redact, index.
//!
//! Feeds see the raw text, the index only the redacted text, so the two may
//! differ by design on a post that redaction changed: a mention of a
//! non-public account becomes `@user` (and with it the plain word of the
//! handle, which `s?l*` may match), emails and phone numbers are masked,
//! link query strings dropped. So the check is twofold: search equals the
//! reference evaluator on the stored (redacted) posts everywhere, and equals
//! the feed matcher on every post that redaction left unchanged. No
//! `@mention` query is used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tidewatch_core::enrich::Enricher;
use tidewatch_core::matcher::{FeedMatcher, FeedSpec, MatchScratch};
use tidewatch_core::post::Post;
use tidewatch_core::pseudonym::{Keyring, PseudonymConfig};
use tidewatch_core::query::eval;
use tidewatch_core::query::Query;
use tidewatch_core::redact::PublicAccounts;
use tidewatch_core::text::{tokenize, TokenizedText};
use tidewatch_core::time::Timestamp;
use tidewatch_gen::{vocabulary, GenConfig, Generator, Lang, PUBLIC_ACCOUNTS, TOPICS};
use tidewatch_store::index::PostIndex;
use tidewatch_store::search::SearchRequest;

const POSTS: u64 = 20_000;

/// A few hundred varied feed queries, built from the generator's topics
/// and vocabularies so that most of them select something.
fn feed_queries() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    for (i, topic) in TOPICS.iter().enumerate() {
        q.push(topic.query());
        for term in topic.terms {
            q.push(if term.contains(' ') {
                format!("\"{term}\"")
            } else {
                term.to_string()
            });
        }
        for tag in topic.hashtags {
            q.push(format!("#{tag}"));
            q.push(format!("#{tag} -{}", topic.words.first().unwrap_or(&"zzz")));
        }
        for domain in topic.domains {
            q.push(format!("domain:{domain}"));
        }
        let w = topic.words;
        if w.len() >= 4 {
            q.push(format!("{} AND {}", w[0], w[1]));
            q.push(format!("{} NEAR/3 {}", w[0], w[2]));
            q.push(format!("{} NEAR/0 {}", w[1], w[3]));
            q.push(format!("\"{} {}\"~2", w[0], w[1]));
            q.push(format!("\"{} {}\"", w[2], w[3]));
            q.push(format!("({} OR {}) NOT {}", w[0], w[1], w[2]));
            q.push(format!("NOT ({} OR {})", w[0], w[3]));
            q.push(format!("-{} -{}", w[1], w[2]));
            q.push(format!("NOT ({} NEAR/2 {})", w[0], w[1]));
        }
        if let Some(term) = topic.terms.first() {
            let first = term.split(' ').next().unwrap_or(term);
            let chars: Vec<char> = first.chars().collect();
            if chars.len() >= 4 {
                let prefix: String = chars[..3].iter().collect();
                q.push(format!("{prefix}*"));
                q.push(format!("{}*{}", chars[0], chars[chars.len() - 1]));
                q.push(format!("{}?{}*", chars[0], chars[2]));
                q.push(format!("\"{prefix}* {}\"", w.first().unwrap_or(&"zzz")));
            }
            if let Some(tag) = topic.hashtags.first() {
                q.push(format!("{first} NEAR/5 #{tag}"));
                let tag_chars: Vec<char> = tag.chars().collect();
                if tag_chars.len() >= 3 {
                    q.push(format!("#{}*", tag_chars[..2].iter().collect::<String>()));
                }
            }
        }
        let field = match i % 6 {
            0 => "lang:en",
            1 => "platform:bluesky",
            2 => "sentiment:negative",
            3 => "is:repost",
            4 => "is:reply",
            _ => "sentiment:positive",
        };
        q.push(format!("({}) {field}", topic.query()));
        q.push(format!("({}) -{field}", topic.query()));
    }
    for lang in Lang::ALL {
        q.push(format!("lang:{}", lang.code()));
        let vocab = vocabulary(lang);
        let words: Vec<&String> = vocab.words.iter().take(40).collect();
        for pair in words.chunks(2).take(5) {
            if let [a, b] = pair {
                q.push(a.to_string());
                q.push(format!("{a} OR {b}"));
                q.push(format!("{a} NEAR/4 {b}"));
                q.push(format!("\"{a} {b}\"~3"));
            }
        }
        if let (Some(stop), Some(word)) = (vocab.stop_words.first(), vocab.words.first()) {
            q.push(format!("\"{stop} {word}\""));
            q.push(format!("{word} NOT lang:{}", lang.code()));
        }
    }
    for platform in ["twitter", "bluesky", "mastodon", "reddit", "rss"] {
        q.push(format!("platform:{platform}"));
    }
    for field in [
        "sentiment:negative",
        "sentiment:neutral",
        "sentiment:positive",
        "is:repost",
        "is:reply",
        "is:reply is:repost",
        "NOT is:repost",
        "-sentiment:neutral -lang:en",
    ] {
        q.push(field.to_string());
    }
    q
}

struct Corpus {
    posts: Vec<Post>,
    /// Per post, whether redaction changed its text.
    redacted: Vec<bool>,
    /// Per post, the feeds it matched.
    matched: Vec<Vec<u32>>,
    feeds: Vec<(u32, Query)>,
}

fn corpus() -> Corpus {
    let mut specs = Vec::new();
    let mut seen = BTreeSet::new();
    for text in feed_queries() {
        let Ok(query) = Query::parse(&text) else { continue };
        assert!(
            !query.root().patterns().iter().any(|p| p.as_str().starts_with('@')),
            "{text}"
        );
        if seen.insert(query.normalized()) {
            let id = specs.len() as u32;
            specs.push(FeedSpec {
                id,
                name: format!("feed{id}"),
                query,
            });
        }
    }
    assert!(specs.len() >= 300, "only {} distinct feed queries", specs.len());
    let feeds = specs.iter().map(|s| (s.id, s.query.clone())).collect();
    let matcher = FeedMatcher::build(specs);
    let ring = Arc::new(Keyring::from_seed(PseudonymConfig::default(), 11));
    let public = Arc::new(PublicAccounts::new(PUBLIC_ACCOUNTS.iter().copied()));
    let mut enricher = Enricher::new(ring, public, Timestamp(0));
    let mut tokens = TokenizedText::new();
    let mut scratch = MatchScratch::new();
    let mut out = Vec::new();
    let (mut posts, mut matched, mut redacted) = (Vec::new(), Vec::new(), Vec::new());
    let cfg = GenConfig {
        posts: POSTS,
        seed: 42,
        ..Default::default()
    };
    for mut post in Generator::new(&cfg) {
        enricher.enrich(&mut post);
        tokenize(&post.text, &mut tokens);
        matcher.match_post(&post, &tokens, &mut scratch, &mut out);
        let raw = post.text.clone();
        enricher.redact(&mut post);
        redacted.push(post.text != raw);
        posts.push(post);
        matched.push(out.clone());
    }
    Corpus {
        posts,
        redacted,
        matched,
        feeds,
    }
}

fn request(query: &Query) -> SearchRequest {
    SearchRequest {
        query: query.clone(),
        from: None,
        to: None,
        feed: None,
        limit: usize::MAX,
    }
}

fn ids_of(index: &PostIndex, req: &SearchRequest) -> BTreeSet<String> {
    index.search(req).unwrap().into_iter().map(|h| h.id).collect()
}

/// Asserts two id sets are equal, printing only the difference.
#[track_caller]
fn assert_same(got: &BTreeSet<String>, want: &BTreeSet<String>, what: &str) {
    if got != want {
        let extra: Vec<_> = got.difference(want).take(5).collect();
        let missing: Vec<_> = want.difference(got).take(5).collect();
        panic!(
            "{what}: {} found, {} expected; unexpected {extra:?}, missing {missing:?}",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn search_count_export_and_histogram_equal_the_feed_matcher() {
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    let mut index = PostIndex::open(dir.path(), 50_000_000).unwrap();
    for (i, (post, feeds)) in c.posts.iter().zip(&c.matched).enumerate() {
        index.add(post, feeds, i as u64 / 5000).unwrap();
        // Several commits: several segments, as in a real run.
        if i % 5000 == 4999 {
            index.commit(&i.to_string()).unwrap();
        }
    }
    index.commit("end").unwrap();
    assert_eq!(index.num_docs(), c.posts.len() as u64);

    // Which posts each feed selected, by index in `c.posts`.
    let mut selected: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, feeds) in c.matched.iter().enumerate() {
        for &f in feeds {
            selected.entry(f).or_default().push(i);
        }
    }
    let ids = |posts: &[usize]| -> BTreeSet<String> { posts.iter().map(|&i| c.posts[i].id.clone()).collect() };
    let times: Vec<i64> = c
        .posts
        .iter()
        .map(|p| p.created_at.expect("generated posts have times").0)
        .collect();
    let (t_min, t_max) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    let (from, to) = (t_min + (t_max - t_min) / 3, t_min + 2 * (t_max - t_min) / 3);

    let stored_tokens: Vec<TokenizedText> = c
        .posts
        .iter()
        .map(|p| tidewatch_core::text::tokenized(&p.text))
        .collect();
    let unchanged = |set: &BTreeSet<String>| -> BTreeSet<String> {
        let changed: BTreeSet<&String> = (0..c.posts.len())
            .filter(|&i| c.redacted[i])
            .map(|i| &c.posts[i].id)
            .collect();
        set.iter().filter(|id| !changed.contains(id)).cloned().collect()
    };
    let (mut nonempty, mut differ) = (0, 0);
    for (id, query) in &c.feeds {
        let by_matcher: &[usize] = selected.get(id).map_or(&[], Vec::as_slice);
        // What the stored posts match, by the reference evaluator.
        let want: Vec<usize> = (0..c.posts.len())
            .filter(|&i| eval::matches(query, &c.posts[i], &stored_tokens[i]))
            .collect();
        let want = want.as_slice();
        nonempty += usize::from(!want.is_empty());
        differ += usize::from(ids(want) != ids(by_matcher));
        let req = request(query);
        let found = ids_of(&index, &req);
        assert_same(&found, &ids(want), &format!("search {query}"));
        assert_same(
            &unchanged(&found),
            &unchanged(&ids(by_matcher)),
            &format!("search (posts unchanged by redaction) {query}"),
        );
        assert_eq!(index.count(&req).unwrap(), want.len() as u64, "count {query}");
        let mut exported = BTreeSet::new();
        let n = index
            .export(&req, &mut |h| {
                assert!(exported.insert(h.id.clone()), "{query}: {} twice", h.id);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, want.len() as u64, "export {query}");
        assert_same(&exported, &ids(want), &format!("export {query}"));
        let total: u64 = index.histogram(&req, 3_600_000).unwrap().iter().map(|(_, n)| n).sum();
        assert_eq!(total, want.len() as u64, "histogram {query}");

        // Time bounds: `from` inclusive, `to` exclusive.
        let bounded = SearchRequest {
            from: Some(Timestamp(from)),
            to: Some(Timestamp(to)),
            ..req.clone()
        };
        let in_window: Vec<usize> = want
            .iter()
            .copied()
            .filter(|&i| times[i] >= from && times[i] < to)
            .collect();
        assert_same(&ids_of(&index, &bounded), &ids(&in_window), &format!("bounded {query}"));
        assert_eq!(
            index.count(&bounded).unwrap(),
            in_window.len() as u64,
            "bounded count {query}"
        );

        // A top-20 is the 20 newest of the set.
        let top = index
            .search(&SearchRequest {
                limit: 20,
                ..req.clone()
            })
            .unwrap();
        let mut want_times: Vec<i64> = want.iter().map(|&i| times[i]).collect();
        want_times.sort_unstable_by(|a, b| b.cmp(a));
        want_times.truncate(20);
        let got_times: Vec<i64> = top.iter().map(|h| h.created_at.unwrap().0).collect();
        assert_eq!(got_times, want_times, "top 20 {query}");
    }
    eprintln!(
        "{} feeds, {nonempty} select posts, {differ} differ from the matcher on redacted posts",
        c.feeds.len()
    );
    assert!(nonempty >= 200, "only {nonempty} feeds matched anything");
    // Redaction changes few posts and so few feeds' results.
    assert!(differ * 10 < c.feeds.len(), "{differ} feeds differ after redaction");

    // The feed filter selects exactly the posts that matched the feed.
    let everything = Query::parse("NOT zzzneverwrittenzzz").unwrap();
    for (id, _) in c.feeds.iter().step_by(7) {
        let want: &[usize] = selected.get(id).map_or(&[], Vec::as_slice);
        let req = SearchRequest {
            feed: Some(*id),
            ..request(&everything)
        };
        assert_same(&ids_of(&index, &req), &ids(want), &format!("feed {id}"));
        assert_eq!(index.count(&req).unwrap(), want.len() as u64, "feed {id}");
    }
}
