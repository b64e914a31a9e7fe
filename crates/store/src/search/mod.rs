//! Search over the post index with the feed query language: newest-first
//! hits, counts, date histograms and streaming export.
//!
//! The idea: a search must select exactly the posts a feed with the same
//! query would have selected. [`translate`] turns the query into a tantivy
//! query that matches a superset of those posts and says whether that
//! superset is exact (it is for terms, exact phrases, wildcards, fields and
//! any boolean combination of them). When it is not (slop, NEAR, wildcards
//! inside phrases, NOT over those), each candidate is rebuilt from its
//! stored fields and checked with the reference evaluator
//! [`matches_post`], in the order results are produced, so a top-20 search
//! only verifies candidates until it has 20 hits.
//!
//! - [`PostIndex::search`]: newest first, by the `created_at` fast field; a
//!   segment whose newest post is older than the current 20th is skipped.
//! - [`PostIndex::count`], [`PostIndex::histogram`]: exact queries read only
//!   the posting lists and the fast field; others verify every candidate.
//! - [`PostIndex::export`]: every hit, segment by segment in document
//!   order, one stored document at a time: constant memory whatever the
//!   number of results.
//!
//! `from` is inclusive and `to` exclusive. Posts without a time are last
//! in newest-first order, and are not counted in histograms.
//!
//! `@mention` queries search the redacted text: they find a mention only
//! where it survived redaction (public accounts).

mod translate;

use crate::index::{post_of, Fields, PostIndex, FEEDS_FIELD};
use crate::StoreError;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Bound;
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query as _, RangeQuery, TermQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::store::StoreReader;
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TantivyDocument, Term, TERMINATED};
use tidewatch_core::post::Post;
use tidewatch_core::query::eval::matches_post;
use tidewatch_core::query::{Query, SentimentClass};
use tidewatch_core::time::Timestamp;
pub(crate) use translate::translate;

/// Decompressed store blocks kept per segment while reading documents.
const STORE_CACHE_BLOCKS: usize = 16;
/// A histogram with more buckets than this is refused (a bucket width far
/// too small for the time span would exhaust memory).
pub const MAX_BUCKETS: i64 = 10_000_000;

/// What to search for.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub query: Query,
    /// Only posts at or after this time.
    pub from: Option<Timestamp>,
    /// Only posts before this time.
    pub to: Option<Timestamp>,
    /// Only posts that matched this feed.
    pub feed: Option<u32>,
    /// At most this many hits ([`PostIndex::search`] only).
    pub limit: usize,
}

/// One search result: what may be shown of a stored post. There is no
/// author: it is never stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    /// The post's keyed-hash id.
    pub id: String,
    pub created_at: Option<Timestamp>,
    pub platform: String,
    /// The language tag, lower case.
    pub lang: Option<String>,
    /// `negative`, `neutral` or `positive`; empty for a post without a
    /// sentiment score.
    pub sentiment: String,
    /// The redacted text.
    pub text: String,
    pub url: Option<String>,
    /// The ids of the feeds the post matched, ascending.
    pub feeds: Vec<u32>,
}

/// A candidate in newest-first order: (time, segment, document), compared
/// as a tuple, all descending. Unique, so the order is total.
type Key = (i64, u32, DocId);

/// A request translated against one searcher.
struct Plan {
    searcher: Searcher,
    weight: Box<dyn Weight>,
    /// Whether every candidate is a hit (no verification needed).
    exact: bool,
    query: Query,
    fields: Fields,
}

impl PostIndex {
    /// The newest hits, up to `req.limit`.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<Hit>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let plan = self.plan(req)?;
        let mut stores = Stores::new(&plan.searcher);
        let mut hits = Vec::with_capacity(req.limit.min(1024));
        if plan.exact {
            for key in plan.top(req.limit).map_err(|e| self.err(e))? {
                let doc = stores.doc(key).map_err(|e| self.err(e))?;
                let feeds = stores.feeds(key).map_err(|e| self.err(e))?;
                hits.push(hit_of(&plan.fields, &doc, feeds));
            }
            return Ok(hits);
        }
        // Verify candidates newest first; fetch more while too few pass. A
        // larger top-k extends the smaller one (the order is total), so the
        // candidates already checked are skipped.
        let mut k = req.limit.saturating_mul(4).max(64);
        let mut checked = 0;
        loop {
            let candidates = plan.top(k).map_err(|e| self.err(e))?;
            for &key in candidates.iter().skip(checked) {
                let doc = stores.doc(key).map_err(|e| self.err(e))?;
                if matches_post(&plan.query, &post_of(&plan.fields, &doc)) {
                    let feeds = stores.feeds(key).map_err(|e| self.err(e))?;
                    hits.push(hit_of(&plan.fields, &doc, feeds));
                    if hits.len() == req.limit {
                        return Ok(hits);
                    }
                }
            }
            if candidates.len() < k {
                return Ok(hits);
            }
            checked = candidates.len();
            k = k.saturating_mul(8);
        }
    }

    /// The number of hits.
    pub fn count(&self, req: &SearchRequest) -> Result<u64, StoreError> {
        let plan = self.plan(req)?;
        if plan.exact {
            let mut n = 0u64;
            for segment in plan.searcher.segment_readers() {
                n += u64::from(plan.weight.count(segment).map_err(|e| self.err(e))?);
            }
            return Ok(n);
        }
        let mut n = 0u64;
        plan.each_hit(|_, _, _| {
            n += 1;
            Ok(())
        })
        .map_err(|e| self.map_err(e))?;
        Ok(n)
    }

    /// The number of hits per time bucket of `bucket_ms` milliseconds
    /// (aligned on multiples of it since the epoch), for every bucket from
    /// the first hit's to the last hit's, empty buckets included. Hits
    /// without a time are not counted.
    pub fn histogram(&self, req: &SearchRequest, bucket_ms: i64) -> Result<Vec<(Timestamp, u64)>, StoreError> {
        if bucket_ms <= 0 {
            return Err(StoreError::Invalid(format!(
                "histogram bucket must be positive, got {bucket_ms} ms"
            )));
        }
        let plan = self.plan(req)?;
        let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
        let mut add = |t: Option<i64>| {
            if let Some(t) = t {
                *counts.entry(t.div_euclid(bucket_ms)).or_default() += 1;
            }
        };
        if plan.exact {
            plan.each_candidate(|_, _, time, _| {
                add(time);
                Ok(true)
            })
            .map_err(|e| self.map_err(e))?;
        } else {
            plan.each_hit(|time, _, _| {
                add(time);
                Ok(())
            })
            .map_err(|e| self.map_err(e))?;
        }
        let (Some((&first, _)), Some((&last, _))) = (counts.first_key_value(), counts.last_key_value()) else {
            return Ok(Vec::new());
        };
        if last - first >= MAX_BUCKETS {
            return Err(StoreError::Invalid(format!(
                "a histogram with {bucket_ms} ms buckets over this span would have more than {MAX_BUCKETS} buckets"
            )));
        }
        Ok((first..=last)
            .map(|b| (Timestamp(b * bucket_ms), counts.get(&b).copied().unwrap_or(0)))
            .collect())
    }

    /// Calls `each` on every hit, segment by segment in index order (not
    /// by time), reading one stored post at a time: memory stays constant
    /// whatever the number of hits. Stops at the first error `each`
    /// returns. Returns the number of hits visited.
    pub fn export(
        &self,
        req: &SearchRequest,
        each: &mut dyn FnMut(&Hit) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let plan = self.plan(req)?;
        let mut n = 0u64;
        plan.each_hit(|_, doc, feeds| {
            n += 1;
            each(&hit_of(&plan.fields, doc, feeds())).map_err(Stop::Caller)
        })
        .map_err(|e| self.map_err(e))?;
        Ok(n)
    }

    /// Translates a request against the current searcher.
    fn plan(&self, req: &SearchRequest) -> Result<Plan, StoreError> {
        let searcher = self.reader.searcher();
        let f = self.fields;
        let translated = translate(req.query.root(), &searcher, &f).map_err(|e| self.err(e))?;
        let mut clauses = vec![(Occur::Must, translated.query)];
        if req.from.is_some() || req.to.is_some() {
            let bound = |t: Option<Timestamp>, inclusive: bool| match t {
                None => Bound::Unbounded,
                Some(t) if inclusive => Bound::Included(Term::from_field_i64(f.created_at, t.0)),
                Some(t) => Bound::Excluded(Term::from_field_i64(f.created_at, t.0)),
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(req.from, true), bound(req.to, false))),
            ));
        }
        if let Some(feed) = req.feed {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.feeds, u64::from(feed)),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .map_err(|e| self.err(e))?;
        Ok(Plan {
            searcher,
            weight,
            exact: translated.exact,
            query: req.query.clone(),
            fields: f,
        })
    }

    fn map_err(&self, e: Stop) -> StoreError {
        match e {
            Stop::Index(e) => self.err(e),
            Stop::Caller(e) => e,
        }
    }
}

/// Why an iteration over candidates stopped early.
enum Stop {
    Index(tantivy::TantivyError),
    Caller(StoreError),
}

impl From<tantivy::TantivyError> for Stop {
    fn from(e: tantivy::TantivyError) -> Stop {
        Stop::Index(e)
    }
}

impl Plan {
    /// The `k` newest candidates, newest first.
    fn top(&self, k: usize) -> tantivy::Result<Vec<Key>> {
        // Newest segments first, so the heap fills with recent posts and
        // older segments can be skipped whole.
        let mut segments: Vec<(u32, &SegmentReader, Option<Column<i64>>)> = Vec::new();
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            let column = segment.fast_fields().column_opt::<i64>("created_at")?;
            segments.push((ord as u32, segment, column));
        }
        segments.sort_by_key(|(_, _, column)| Reverse(column.as_ref().map_or(i64::MIN, |c| c.max_value())));
        let mut heap: BinaryHeap<Reverse<Key>> = BinaryHeap::with_capacity(k.min(1 << 20) + 1);
        for (ord, segment, column) in segments {
            let newest = column.as_ref().map_or(i64::MIN, |c| c.max_value());
            if heap.len() >= k && heap.peek().is_some_and(|Reverse(min)| min.0 > newest) {
                continue;
            }
            let alive = segment.alive_bitset();
            let mut scorer = self.weight.scorer(segment, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if !alive.is_some_and(|a| a.is_deleted(doc)) {
                    let time = column.as_ref().and_then(|c| c.first(doc)).unwrap_or(i64::MIN);
                    let key = (time, ord, doc);
                    if heap.len() < k {
                        heap.push(Reverse(key));
                    } else if heap.peek().is_some_and(|Reverse(min)| *min < key) {
                        heap.pop();
                        heap.push(Reverse(key));
                    }
                }
                doc = scorer.advance();
            }
        }
        let mut out: Vec<Key> = heap.into_iter().map(|Reverse(k)| k).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// Calls `f(segment ordinal, segment, time, doc)` on every live candidate, segment by
    /// segment in document order, until it returns `false`.
    fn each_candidate(
        &self,
        mut f: impl FnMut(usize, &SegmentReader, Option<i64>, DocId) -> Result<bool, Stop>,
    ) -> Result<(), Stop> {
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            let column = segment.fast_fields().column_opt::<i64>("created_at")?;
            let alive = segment.alive_bitset();
            let mut scorer = self.weight.scorer(segment, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if !alive.is_some_and(|a| a.is_deleted(doc)) {
                    let time = column.as_ref().and_then(|c| c.first(doc));
                    if !f(ord, segment, time, doc)? {
                        return Ok(());
                    }
                }
                doc = scorer.advance();
            }
        }
        Ok(())
    }

    /// Calls `f(time, document)` on every hit, in index order, verifying
    /// candidates when the translation is not exact.
    fn each_hit(
        &self,
        mut f: impl FnMut(Option<i64>, &TantivyDocument, &dyn Fn() -> Vec<u32>) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        // One store reader (and feed column) at a time: segments are
        // visited in turn.
        let mut store: Option<(usize, StoreReader, Option<Column<u64>>)> = None;
        self.each_candidate(|ord, segment, time, doc| {
            let (reader, column) = match &mut store {
                Some((current, reader, column)) if *current == ord => (reader, column),
                _ => {
                    let reader = segment
                        .get_store_reader(STORE_CACHE_BLOCKS)
                        .map_err(|e| Stop::Index(e.into()))?;
                    let column = feed_column(segment);
                    let slot = store.insert((ord, reader, column));
                    (&mut slot.1, &mut slot.2)
                }
            };
            let document: TantivyDocument = reader.get(doc)?;
            if self.exact || matches_post(&self.query, &post_of(&self.fields, &document)) {
                let column = &*column;
                f(time, &document, &|| feeds_at(column.as_ref(), doc))?;
            }
            Ok(true)
        })
    }
}

/// The `feeds` fast-field column of a segment (`None` when the segment
/// has no feed ids at all).
fn feed_column(segment: &SegmentReader) -> Option<Column<u64>> {
    segment.fast_fields().u64(FEEDS_FIELD).ok()
}

/// The feed ids of `doc`, ascending.
fn feeds_at(column: Option<&Column<u64>>, doc: DocId) -> Vec<u32> {
    column.map_or_else(Vec::new, |c| {
        c.values_for_doc(doc).filter_map(|v| u32::try_from(v).ok()).collect()
    })
}

/// Store readers and feed columns of a searcher's segments, opened when
/// first needed.
struct Stores<'a> {
    searcher: &'a Searcher,
    readers: Vec<Option<StoreReader>>,
    columns: Vec<Option<Option<Column<u64>>>>,
}

impl<'a> Stores<'a> {
    fn new(searcher: &'a Searcher) -> Stores<'a> {
        let n = searcher.segment_readers().len();
        Stores {
            searcher,
            readers: (0..n).map(|_| None).collect(),
            columns: (0..n).map(|_| None).collect(),
        }
    }

    /// The feed ids of a hit, from the fast field (they are not stored).
    fn feeds(&mut self, (_, segment, doc): Key) -> tantivy::Result<Vec<u32>> {
        let ord = segment as usize;
        let slot = self
            .columns
            .get_mut(ord)
            .ok_or_else(|| tantivy::TantivyError::InvalidArgument(format!("no segment {ord}")))?;
        let column = slot.get_or_insert_with(|| feed_column(self.searcher.segment_reader(segment)));
        Ok(feeds_at(column.as_ref(), doc))
    }

    fn doc(&mut self, (_, segment, doc): Key) -> tantivy::Result<TantivyDocument> {
        let ord = segment as usize;
        let slot = self
            .readers
            .get_mut(ord)
            .ok_or_else(|| tantivy::TantivyError::InvalidArgument(format!("no segment {ord}")))?;
        let reader = match slot {
            Some(reader) => reader,
            None => slot.insert(
                self.searcher
                    .segment_reader(segment)
                    .get_store_reader(STORE_CACHE_BLOCKS)?,
            ),
        };
        reader.get(doc)
    }
}

/// The hit a stored document shows.
fn hit_of(f: &Fields, doc: &TantivyDocument, feeds: Vec<u32>) -> Hit {
    let post: Post = post_of(f, doc);
    Hit {
        sentiment: post
            .sentiment
            .map(|s| SentimentClass::of_compound(s.compound).as_str().to_string())
            .unwrap_or_default(),
        feeds,
        id: post.id,
        created_at: post.created_at,
        platform: post.platform,
        lang: post.lang,
        text: post.text,
        url: post.url,
    }
}

#[cfg(test)]
mod tests;
