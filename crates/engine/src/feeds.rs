//! Detection feeds: the standing queries a run matches every post against.
//!
//! A feeds file is TOML:
//!
//! ```toml
//! [[feed]]
//! name = "climate"
//! query = '"climate change" OR #climate NEAR/5 protest'
//! ```
//!
//! [`FeedSet`] gives every feed a stable numeric id for as long as the
//! process runs: a feed keeps its id when its query changes, and the id of a
//! removed feed is never reused, so series and alerts never mix two feeds.
//! Each change produces a new immutable [`FeedSet`] version; the engine
//! compiles it into a matcher and swaps it in between batches (see
//! `crate::live`), so posts in flight finish on the version they started on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tidewatch_core::query::{ParseError, Query};

/// One feed as written by the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedDef {
    pub name: String,
    pub query: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedsFile {
    #[serde(default)]
    feed: Vec<FeedDef>,
}

/// Why a feeds file or a feed is not usable.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Toml { path: String, message: String },
    #[error("{origin}: feed {name:?}: {error}")]
    // Boxed: a parse error carries the whole query and is much larger than
    // the other variants.
    Query {
        origin: String,
        name: String,
        error: Box<ParseError>,
    },
    #[error("{origin}: feed name {name:?} is used twice")]
    Duplicate { origin: String, name: String },
    #[error("{origin}: a feed has an empty name")]
    EmptyName { origin: String },
}

/// Parses the text of a feeds file; `origin` names it in errors.
pub fn parse_feeds(text: &str, origin: &str) -> Result<Vec<FeedDef>, FeedError> {
    let file: FeedsFile = toml::from_str(text).map_err(|e| FeedError::Toml {
        path: origin.to_string(),
        message: e.to_string(),
    })?;
    let mut seen = std::collections::HashSet::new();
    for f in &file.feed {
        if f.name.trim().is_empty() {
            return Err(FeedError::EmptyName {
                origin: origin.to_string(),
            });
        }
        if !seen.insert(f.name.as_str()) {
            return Err(FeedError::Duplicate {
                origin: origin.to_string(),
                name: f.name.clone(),
            });
        }
        Query::parse(&f.query).map_err(|error| FeedError::Query {
            origin: origin.to_string(),
            name: f.name.clone(),
            error: Box::new(error),
        })?;
    }
    Ok(file.feed)
}

/// The text of a feeds file holding `defs` (what [`parse_feeds`] reads).
pub fn feeds_toml(defs: &[FeedDef]) -> String {
    let file = FeedsFile { feed: defs.to_vec() };
    // Two strings per feed: serialising cannot fail.
    toml::to_string(&file).unwrap_or_default()
}

/// Reads and validates a feeds file.
pub fn load_feeds(path: &Path) -> Result<Vec<FeedDef>, FeedError> {
    let text = std::fs::read_to_string(path).map_err(|source| FeedError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_feeds(&text, &path.display().to_string())
}

/// A feed with its stable id and parsed query.
#[derive(Clone, Debug)]
pub struct Feed {
    pub id: u32,
    pub name: String,
    pub query: Query,
    /// The query as the user wrote it.
    pub text: String,
}

/// An immutable version of the feed set.
#[derive(Clone, Debug, Default)]
pub struct FeedSet {
    /// Increases by one with every change.
    pub version: u64,
    /// Feeds by id.
    pub feeds: BTreeMap<u32, Feed>,
    /// Every name ever given an id, so a removed and re-added feed keeps it.
    ids: BTreeMap<String, u32>,
    next_id: u32,
}

impl FeedSet {
    /// A first version holding `defs`.
    pub fn new(defs: &[FeedDef]) -> Result<FeedSet, FeedError> {
        let mut set = FeedSet::default();
        for d in defs {
            set.upsert_in_place(d)?;
        }
        set.version = 1;
        Ok(set)
    }

    /// A first version holding `defs`, where names `known` from an earlier
    /// run (the store's feed table) keep their ids and new names get ids
    /// after all of them: a feed's series continue across runs.
    pub fn with_known_ids(known: &[(String, u32)], defs: &[FeedDef]) -> Result<FeedSet, FeedError> {
        let mut set = FeedSet::default();
        for (name, id) in known {
            set.ids.insert(name.clone(), *id);
            set.next_id = set.next_id.max(id + 1);
        }
        for d in defs {
            set.upsert_in_place(d)?;
        }
        set.version = 1;
        Ok(set)
    }

    fn upsert_in_place(&mut self, def: &FeedDef) -> Result<u32, FeedError> {
        let query = Query::parse(&def.query).map_err(|error| FeedError::Query {
            origin: "feed".into(),
            name: def.name.clone(),
            error: Box::new(error),
        })?;
        let id = match self.ids.get(&def.name) {
            Some(&id) => id,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.ids.insert(def.name.clone(), id);
                id
            }
        };
        self.feeds.insert(
            id,
            Feed {
                id,
                name: def.name.clone(),
                query,
                text: def.query.clone(),
            },
        );
        Ok(id)
    }

    /// The next version with `def` added, or its query replaced.
    pub fn with_upsert(&self, def: &FeedDef) -> Result<(FeedSet, u32), FeedError> {
        let mut next = self.clone();
        let id = next.upsert_in_place(def)?;
        next.version += 1;
        Ok((next, id))
    }

    /// The next version without the feed called `name` (unchanged if absent).
    pub fn with_removed(&self, name: &str) -> FeedSet {
        let mut next = self.clone();
        if let Some(id) = next.ids.get(name) {
            next.feeds.remove(id);
        }
        next.version += 1;
        next
    }

    /// The next version holding exactly `defs` (a reloaded feeds file):
    /// unchanged names keep their ids.
    pub fn with_replaced(&self, defs: &[FeedDef]) -> Result<FeedSet, FeedError> {
        let mut next = self.clone();
        next.feeds.clear();
        for d in defs {
            next.upsert_in_place(d)?;
        }
        next.version += 1;
        Ok(next)
    }

    /// The name of feed `id`, also for feeds removed since.
    pub fn name_of(&self, id: u32) -> Option<&str> {
        self.ids.iter().find(|(_, &i)| i == id).map(|(n, _)| n.as_str())
    }

    /// Every name ever given an id, with the id.
    pub fn known_ids(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.ids.iter().map(|(n, &id)| (n.as_str(), id))
    }

    /// Names by id of every feed ever known, for writing series.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.next_id as usize];
        for (n, &id) in &self.ids {
            names[id as usize] = n.clone();
        }
        names
    }

    pub fn len(&self) -> usize {
        self.feeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_feeds_file() {
        let defs = parse_feeds(
            "[[feed]]\nname = \"climate\"\nquery = '\"climate change\" OR #climate'\n\n[[feed]]\nname = \"quakes\"\nquery = \"earthquake -drill\"\n",
            "feeds.toml",
        )
        .unwrap();
        assert_eq!(defs.len(), 2);
        assert_eq!(
            defs[1],
            FeedDef {
                name: "quakes".into(),
                query: "earthquake -drill".into()
            }
        );
    }

    #[test]
    fn written_feeds_files_read_back_the_same() {
        let defs = vec![
            FeedDef {
                name: "quotes \"and\" 'apostrophes'".into(),
                query: r#""climate change" OR #klima -drill"#.into(),
            },
            FeedDef {
                name: "地震".into(),
                query: "地震 lang:ja".into(),
            },
        ];
        assert_eq!(parse_feeds(&feeds_toml(&defs), "written").unwrap(), defs);
        assert_eq!(parse_feeds(&feeds_toml(&[]), "empty").unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_file_the_feed_and_the_column() {
        let e = parse_feeds("[[feed]]\nname = \"bad\"\nquery = \"climate AND\"\n", "f.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("f.toml: feed \"bad\": "), "{msg}");
        assert!(msg.contains("column"), "{msg}");
        let e = parse_feeds(
            "[[feed]]\nname = \"x\"\nquery = \"a\"\n[[feed]]\nname = \"x\"\nquery = \"b\"\n",
            "f.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("used twice"));
        let e = parse_feeds("[[feed]]\nname = \"x\"\nqeury = \"a\"\n", "f.toml").unwrap_err();
        assert!(e.to_string().contains("qeury"), "{e}");
        let e = parse_feeds("[[feed]]\nname = \"who\"\nquery = \"author:someone\"\n", "f.toml").unwrap_err();
        assert!(e.to_string().contains("who"), "{e}");
    }

    #[test]
    fn ids_are_stable_across_changes_and_never_reused() {
        let def = |n: &str, q: &str| FeedDef {
            name: n.into(),
            query: q.into(),
        };
        let v1 = FeedSet::new(&[def("a", "x"), def("b", "y")]).unwrap();
        let (v2, c) = v1.with_upsert(&def("c", "z")).unwrap();
        assert_eq!(c, 2);
        let v3 = v2.with_removed("a");
        let (v4, b) = v3.with_upsert(&def("b", "changed")).unwrap();
        assert_eq!(b, 1);
        let (v5, a) = v4.with_upsert(&def("a", "back")).unwrap();
        assert_eq!(a, 0, "a re-added feed keeps its id");
        let (v6, d) = v5.with_upsert(&def("d", "w")).unwrap();
        assert_eq!(d, 3);
        assert_eq!(v6.version, 6);
        assert_eq!(v6.names(), vec!["a", "b", "c", "d"]);
        assert_eq!(v3.len(), 2);
        let v7 = v6.with_replaced(&[def("d", "w"), def("e", "v")]).unwrap();
        assert_eq!(v7.feeds.keys().copied().collect::<Vec<_>>(), vec![3, 4]);

        // A later run knows the ids the store recorded.
        let known: Vec<(String, u32)> = v7.known_ids().map(|(n, id)| (n.to_string(), id)).collect();
        let next = FeedSet::with_known_ids(&known, &[def("f", "u"), def("b", "y")]).unwrap();
        assert_eq!(
            next.feeds.values().map(|f| (f.name.as_str(), f.id)).collect::<Vec<_>>(),
            vec![("b", 1), ("f", 5)]
        );
    }
}
