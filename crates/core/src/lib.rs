//! # tidewatch-core
//!
//! The pure logic of tidewatch: everything that can be decided from posts
//! alone, without threads, sockets or disks. One [`Post`] type flows through
//! every stage; each stage here is a small set of functions over it, so that
//! every piece can be tested on a vector of posts.
//!
//! The enrichment stages, in the order [`enrich::Enricher`] applies them:
//!
//! 1. [`pseudonym`]: authors and post ids become keyed hashes, permalinks are
//!    dropped. Nothing downstream ever sees a raw handle.
//! 2. [`entities`]: hashtags, mentions, normalised links, domains, cashtags.
//! 3. [`lang`]: the source's language tag, or a detected one.
//! 4. [`sentiment`]: a VADER-compatible scorer.
//! 5. [`redact`]: mentions, e-mail addresses and phone numbers masked in the
//!    text that is stored or shown.
//!
//! Detection, on enriched posts:
//!
//! - [`text`]: the tokeniser shared by every feed (folded, positions, CJK);
//! - [`query`]: the feed query language — parser, AST, reference evaluator,
//!   and the anchors a presearcher may index a query by;
//! - [`matcher`]: thousands of queries compiled into one [`matcher::FeedMatcher`];
//! - [`window`]: per-feed event-time windows (minute, hour, day) closed by a
//!   watermark, with heavy-hitter sketches;
//! - [`spike`]: per-feed spike detection on the minute counts;
//! - [`emerging`]: emerging topics over the whole stream, without any feed,
//!   and suggested feeds for them;
//! - [`narrative`]: streaming near-duplicate clusters ("narratives");
//! - [`stopwords`]: function words left out of term statistics.

pub mod coordination;
pub mod emerging;
pub mod enrich;
pub mod entities;
pub mod lang;
pub mod matcher;
pub mod narrative;
pub mod post;
mod prefetch;
pub mod pseudonym;
pub mod query;
pub mod redact;
pub mod sentiment;
pub mod spike;
pub mod stopwords;
pub mod text;
pub mod time;
pub mod window;

pub use post::{Deletion, Entities, Event, Labels, LangSource, Post, Sentiment};
pub use time::Timestamp;
