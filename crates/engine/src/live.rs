//! Live feed changes: the compiled matcher is immutable; a change compiles
//! a new one off to the side and swaps it in.
//!
//! Workers take the current [`Compiled`] once per batch and use it for the
//! whole batch, so a post is matched against exactly one version of the
//! feed set — none is lost or matched twice across a change — and the
//! stream never pauses: compiling 100k feeds takes seconds, during which
//! the old version keeps matching.

use crate::feeds::{FeedDef, FeedError, FeedSet};
use std::sync::{Arc, RwLock};
use tidewatch_core::matcher::{FeedMatcher, FeedSpec};

/// One compiled version of the feed set.
pub struct Compiled {
    pub set: FeedSet,
    pub matcher: FeedMatcher,
}

impl Compiled {
    pub fn compile(set: FeedSet) -> Compiled {
        let specs = set
            .feeds
            .values()
            .map(|f| FeedSpec {
                id: f.id,
                name: f.name.clone(),
                query: f.query.clone(),
            })
            .collect();
        let matcher = FeedMatcher::build(specs);
        Compiled { set, matcher }
    }

    pub fn version(&self) -> u64 {
        self.set.version
    }
}

/// The feed set a running pipeline matches against, changeable while it runs.
pub struct LiveFeeds {
    current: RwLock<Arc<Compiled>>,
    /// Serialises changes so two concurrent edits cannot lose one another.
    edit: std::sync::Mutex<()>,
}

impl LiveFeeds {
    pub fn new(defs: &[FeedDef]) -> Result<LiveFeeds, FeedError> {
        Ok(LiveFeeds::from_set(FeedSet::new(defs)?))
    }

    pub fn from_set(set: FeedSet) -> LiveFeeds {
        LiveFeeds {
            current: RwLock::new(Arc::new(Compiled::compile(set))),
            edit: std::sync::Mutex::new(()),
        }
    }

    /// The version to use for the next batch.
    pub fn current(&self) -> Arc<Compiled> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a change: `change` derives the next feed set from the current
    /// one; the result is compiled and swapped in. Returns the new version.
    pub fn update(&self, change: impl FnOnce(&FeedSet) -> Result<FeedSet, FeedError>) -> Result<u64, FeedError> {
        let _guard = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        let next = change(&self.current().set)?;
        let compiled = Arc::new(Compiled::compile(next));
        let version = compiled.version();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = compiled;
        Ok(version)
    }

    pub fn upsert(&self, def: &FeedDef) -> Result<u64, FeedError> {
        self.update(|s| s.with_upsert(def).map(|(next, _)| next))
    }

    pub fn remove(&self, name: &str) -> Result<u64, FeedError> {
        self.update(|s| Ok(s.with_removed(name)))
    }

    pub fn replace_all(&self, defs: &[FeedDef]) -> Result<u64, FeedError> {
        self.update(|s| s.with_replaced(defs))
    }
}
