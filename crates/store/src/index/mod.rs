//! The post index: every stored post in a tantivy index, searchable with
//! the feed query language.
//!
//! The idea: index exactly what the feed matcher looks at, in the form it
//! looks at it, so that a search can be answered by tantivy's own queries
//! and still agree with the feeds. The text goes through the matcher's
//! tokeniser ([`tokenizer`]); metadata the query language filters on is
//! indexed as exact keys that turn each field condition into one term:
//!
//! | field | indexed as | for |
//! |---|---|---|
//! | `id` | the keyed-hash id, exact, stored | upstream deletions |
//! | `text` | redacted text, tidewatch tokens with positions, stored | terms, phrases, NEAR, wildcards |
//! | `created_at` | ms since epoch, i64, indexed + fast + stored | newest first, `--from/--to`, histograms, retention |
//! | `lang` | lower-cased tag, fast + stored | display, aggregations |
//! | `lang_key` | the tag and each prefix ending before `-`/`_` (`pt-br` → `pt`, `pt-br`) | `lang:` |
//! | `platform` | lower-cased, exact, fast + stored | `platform:` |
//! | `domains` | link domains, stored | verification |
//! | `domain_key` | each domain (lower-cased, one `www.` dropped) and every suffix after a `.` | `domain:` with subdomains |
//! | `hashtags` | entity hashtags, exact | facets |
//! | `feeds` | matched feed ids, multi-valued u64, indexed + fast + stored | `--feed` |
//! | `sentiment`, `compound` | VADER class (exact, stored) and score (stored) | `sentiment:` |
//! | `is` | `repost` / `reply` flags, exact, stored | `is:` |
//! | `url` | the post's `url` if it still has one, stored | display |
//! | `batch` | the commit batch number, indexed + fast | crash recovery |
//! | `cluster` | narrative id (near-duplicate cluster), when the run gave one; indexed + fast + stored | narratives |
//!
//! The author pseudonym, the source and the labels are not stored: search
//! never shows or selects posts by who wrote them.
//!
//! Dates are an i64 of milliseconds rather than a tantivy date, because
//! tantivy's inverted index keeps dates to the second only, and retention
//! and `--from/--to` bounds must be exact to the millisecond.
//!
//! Mentions: the index holds redacted text, so `@alice_example` finds only
//! posts where that mention survived redaction (public accounts); other
//! mentions read `@user`.

pub mod tokenizer;

use crate::StoreError;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use tantivy::directory::MmapDirectory;
use tantivy::query::RangeQuery;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tidewatch_core::post::{Entities, Post, Sentiment};
use tidewatch_core::query::SentimentClass;
use tidewatch_core::time::Timestamp;
use tokenizer::{PostTokenizer, TOKENIZER_NAME};

/// Tantivy's smallest indexing budget per thread (15 MB).
const MIN_HEAP_PER_THREAD: usize = 15_000_000;
/// More indexing threads than this would only compete with the pipeline.
const MAX_THREADS: usize = 2;

/// The name of the matched-feed-ids field (multi-valued, indexed, fast).
pub(crate) const FEEDS_FIELD: &str = "feeds";

/// The handles of the schema's fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    pub id: Field,
    pub text: Field,
    pub created_at: Field,
    pub lang: Field,
    pub lang_key: Field,
    pub platform: Field,
    pub domains: Field,
    pub domain_key: Field,
    pub hashtags: Field,
    pub feeds: Field,
    pub sentiment: Field,
    pub compound: Field,
    pub is: Field,
    pub url: Field,
    pub batch: Field,
    /// The post's narrative id ([`PostIndex::add_clustered`]).
    pub cluster: Field,
}

/// The value of the `is` field for reposts.
pub(crate) const IS_REPOST: &str = "repost";
/// The value of the `is` field for replies.
pub(crate) const IS_REPLY: &str = "reply";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions)
        // Results are ordered by time, never scored: no norms needed.
        .set_fieldnorms(false);
    let text_options = TextOptions::default().set_indexing_options(text_indexing).set_stored();
    let exact_key = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let exact_stored = exact_key.clone().set_stored();
    let fast_u64 = NumericOptions::default().set_indexed().set_fast();
    let fields = Fields {
        id: b.add_text_field("id", exact_stored.clone()),
        text: b.add_text_field("text", text_options),
        created_at: b.add_i64_field("created_at", INDEXED | FAST | STORED),
        lang: b.add_text_field("lang", STRING | FAST | STORED),
        lang_key: b.add_text_field("lang_key", exact_key.clone()),
        platform: b.add_text_field("platform", STRING | FAST | STORED),
        domains: b.add_text_field("domains", STORED),
        domain_key: b.add_text_field("domain_key", exact_key.clone()),
        hashtags: b.add_text_field("hashtags", exact_key),
        // Not stored: hits read them from the fast field. Stored, a post
        // matching 35 feeds would cost 300 bytes of document store.
        feeds: b.add_u64_field(FEEDS_FIELD, INDEXED | FAST),
        sentiment: b.add_text_field("sentiment", exact_stored.clone()),
        compound: b.add_f64_field("compound", STORED),
        is: b.add_text_field("is", exact_stored),
        url: b.add_text_field("url", STORED),
        batch: b.add_u64_field("batch", fast_u64.clone()),
        // Declared with the others so that indexes written before
        // narratives filled it in still open (same schema).
        cluster: b.add_u64_field("cluster", fast_u64.set_stored()),
    };
    (b.build(), fields)
}

/// The tantivy index of stored posts, with its writer and reader.
pub struct PostIndex {
    pub(crate) dir: PathBuf,
    pub(crate) index: Index,
    /// `None` when opened with [`PostIndex::open_read_only`].
    pub(crate) writer: Option<IndexWriter<TantivyDocument>>,
    pub(crate) reader: IndexReader,
    pub(crate) fields: Fields,
}

impl PostIndex {
    /// Opens the index in `dir`, creating the directory and an empty index
    /// if needed. The writer may use up to `writer_heap_bytes` of memory
    /// (at least 15 MB; one indexing thread per 15 MB, at most two).
    pub fn open(dir: &Path, writer_heap_bytes: usize) -> Result<PostIndex, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let err = |source: tantivy::TantivyError| StoreError::Index {
            path: dir.to_path_buf(),
            source,
        };
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| err(e.into()))?;
        let index = Index::open_or_create(directory, schema).map_err(err)?;
        index.tokenizers().register(TOKENIZER_NAME, PostTokenizer::default());
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(writer_heap_bytes / MIN_HEAP_PER_THREAD)
            .clamp(1, MAX_THREADS);
        let writer = index.writer_with_num_threads(threads, writer_heap_bytes).map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(PostIndex {
            dir: dir.to_path_buf(),
            index,
            writer: Some(writer),
            reader,
            fields,
        })
    }

    /// Opens an existing index for searching only: no writer, so no
    /// writer lock, and a search can run while `tidewatch run` writes to
    /// the same index (it sees the last commit). A missing directory or
    /// index is an error, never created.
    pub fn open_read_only(dir: &Path) -> Result<PostIndex, StoreError> {
        let err = |source: tantivy::TantivyError| StoreError::Index {
            path: dir.to_path_buf(),
            source,
        };
        let directory = MmapDirectory::open(dir).map_err(|e| err(e.into()))?;
        let index = Index::open(directory).map_err(err)?;
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err(StoreError::Invalid(format!(
                "{}: the index was written with another schema than this tidewatch reads",
                dir.display()
            )));
        }
        index.tokenizers().register(TOKENIZER_NAME, PostTokenizer::default());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(PostIndex {
            dir: dir.to_path_buf(),
            index,
            writer: None,
            reader,
            fields,
        })
    }

    /// The writer, or an error for an index opened read-only.
    fn writer(&mut self) -> Result<&mut IndexWriter<TantivyDocument>, StoreError> {
        let dir = &self.dir;
        self.writer
            .as_mut()
            .ok_or_else(|| StoreError::Invalid(format!("{}: the index was opened read-only", dir.display())))
    }

    pub(crate) fn err(&self, source: tantivy::TantivyError) -> StoreError {
        StoreError::Index {
            path: self.dir.clone(),
            source,
        }
    }

    /// Adds one post (enriched and redacted) with the ids of the feeds it
    /// matched and the number of the batch it belongs to. Visible to
    /// searches after the next [`PostIndex::commit`].
    pub fn add(&mut self, post: &Post, feeds: &[u32], batch: u64) -> Result<(), StoreError> {
        self.add_clustered(post, feeds, batch, None)
    }

    /// [`PostIndex::add`], with the id of the narrative the post belongs
    /// to (`tidewatch_core::narrative::NarrativeId`'s number), if any.
    pub fn add_clustered(
        &mut self,
        post: &Post,
        feeds: &[u32],
        batch: u64,
        cluster: Option<u64>,
    ) -> Result<(), StoreError> {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &post.id);
        doc.add_text(f.text, &post.text);
        if let Some(t) = post.created_at {
            doc.add_i64(f.created_at, t.0);
        }
        if let Some(lang) = &post.lang {
            let lang = lang.to_ascii_lowercase();
            for key in lang_keys(&lang) {
                doc.add_text(f.lang_key, key);
            }
            doc.add_text(f.lang, &lang);
        }
        doc.add_text(f.platform, post.platform.to_ascii_lowercase());
        if let Some(e) = &post.entities {
            for domain in &e.domains {
                doc.add_text(f.domains, domain);
                let lower = domain.to_lowercase();
                for key in domain_keys(&lower) {
                    doc.add_text(f.domain_key, key);
                }
            }
            for tag in &e.hashtags {
                doc.add_text(f.hashtags, tag);
            }
        }
        for &feed in feeds {
            doc.add_u64(f.feeds, u64::from(feed));
        }
        if let Some(s) = post.sentiment {
            doc.add_text(f.sentiment, SentimentClass::of_compound(s.compound).as_str());
            doc.add_f64(f.compound, s.compound);
        }
        if post.is_repost() {
            doc.add_text(f.is, IS_REPOST);
        }
        if post.is_reply() {
            doc.add_text(f.is, IS_REPLY);
        }
        if let Some(url) = &post.url {
            doc.add_text(f.url, url);
        }
        doc.add_u64(f.batch, batch);
        if let Some(c) = cluster {
            doc.add_u64(f.cluster, c);
        }
        let opstamp = self.writer()?.add_document(doc);
        opstamp.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes the post with this (keyed-hash) id, at the next commit.
    pub fn delete_id(&mut self, id: &str) -> Result<(), StoreError> {
        let term = Term::from_field_text(self.fields.id, id);
        self.writer()?.delete_term(term);
        Ok(())
    }

    /// Removes every post whose event time is before `t`, at the next
    /// commit. Posts without a time are kept.
    pub fn delete_before(&mut self, t: Timestamp) -> Result<(), StoreError> {
        let query = RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_i64(self.fields.created_at, t.0)),
        );
        let opstamp = self.writer()?.delete_query(Box::new(query));
        opstamp.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes every document added with this batch number (crash
    /// recovery), at the next commit.
    pub fn delete_batch(&mut self, batch: u64) -> Result<(), StoreError> {
        let term = Term::from_field_u64(self.fields.batch, batch);
        self.writer()?.delete_term(term);
        Ok(())
    }

    /// Commits every addition and deletion since the last commit,
    /// atomically, with `payload` as the commit's payload; then reloads the
    /// reader so that searches see the commit.
    pub fn commit(&mut self, payload: &str) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        let err = |source| StoreError::Index {
            path: dir.clone(),
            source,
        };
        let mut prepared = self.writer()?.prepare_commit().map_err(err)?;
        prepared.set_payload(payload);
        prepared.commit().map_err(err)?;
        self.reader.reload().map_err(err)
    }

    /// The payload of the last commit (`None` for a new index).
    pub fn payload(&self) -> Result<Option<String>, StoreError> {
        Ok(self.index.load_metas().map_err(|e| self.err(e))?.payload)
    }

    /// The number of committed, non-deleted posts.
    /// Calls `each` with the id of every committed post (and of deleted
    /// posts not yet merged away), segment by segment: what the store's
    /// duplicate filter is built from.
    pub fn for_each_id(&self, each: &mut dyn FnMut(&[u8])) -> Result<(), StoreError> {
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.id).map_err(|e| self.err(e))?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(|e| self.err(tantivy::TantivyError::from(e)))?;
            while terms.advance() {
                each(terms.key());
            }
        }
        Ok(())
    }

    /// Whether a committed, undeleted post has this id.
    pub fn contains_id(&self, id: &str) -> Result<bool, StoreError> {
        let query = tantivy::query::TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            tantivy::schema::IndexRecordOption::Basic,
        );
        let n = self
            .reader
            .searcher()
            .search(&query, &tantivy::collector::Count)
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The number of segments searches visit (each adds per-query work).
    pub fn segment_count(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// The size in bytes of the last commit: its segments' files and
    /// `meta.json`. Files a merge left behind when its writer stopped (the
    /// next writer deletes them) are not counted: they are not the index.
    pub fn size_bytes(&self) -> u64 {
        let Ok(metas) = self.index.searchable_segment_metas() else {
            return 0;
        };
        // A segment's files are named after its id: `<uuid>.<component>`.
        let live: std::collections::HashSet<String> = metas.iter().map(|m| m.id().uuid_string()).collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name == "meta.json" || name.split('.').next().is_some_and(|stem| live.contains(stem))
            })
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }
}

/// `lang:` keys of a lower-cased tag: the tag, and each prefix that ends
/// right before a `-` or `_` (`pt-br` → `pt`, `pt-br`), which is exactly
/// the set of values `lang:` accepts for it.
fn lang_keys(lang: &str) -> impl Iterator<Item = &str> {
    lang.match_indices(['-', '_'])
        .map(move |(i, _)| &lang[..i])
        .chain(std::iter::once(lang))
}

/// `domain:` keys of a lower-cased domain: the domain without one leading
/// `www.`, and every suffix that follows a `.` (`news.example.org` →
/// itself, `example.org`, `org`), which is exactly the set of values
/// `domain:` accepts for it.
fn domain_keys(domain: &str) -> impl Iterator<Item = &str> {
    let domain = domain.strip_prefix("www.").unwrap_or(domain);
    std::iter::once(domain).chain(domain.match_indices('.').map(move |(i, _)| &domain[i + 1..]))
}

/// The post a stored document describes, with what the query evaluator
/// reads: text, time, language, platform, domains, sentiment, and the
/// repost/reply flags (as empty ids). The author is never stored.
pub(crate) fn post_of(f: &Fields, doc: &TantivyDocument) -> Post {
    let text_of = |field| doc.get_first(field).and_then(|v| v.as_str()).map(str::to_string);
    let flags: Vec<&str> = doc.get_all(f.is).filter_map(|v| v.as_str()).collect();
    let domains: Vec<String> = doc
        .get_all(f.domains)
        .filter_map(|v| v.as_str())
        .map(str::to_string)
        .collect();
    Post {
        id: text_of(f.id).unwrap_or_default(),
        platform: text_of(f.platform).unwrap_or_default(),
        created_at: doc.get_first(f.created_at).and_then(|v| v.as_i64()).map(Timestamp),
        text: text_of(f.text).unwrap_or_default(),
        lang: text_of(f.lang),
        reply_to: flags.contains(&IS_REPLY).then(String::new),
        repost_of: flags.contains(&IS_REPOST).then(String::new),
        url: text_of(f.url),
        sentiment: doc
            .get_first(f.compound)
            .and_then(|v| v.as_f64())
            .map(|compound| Sentiment {
                compound,
                ..Default::default()
            }),
        entities: Some(Entities {
            domains,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
