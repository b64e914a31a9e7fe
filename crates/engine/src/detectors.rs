//! The detectors that need nothing but the posts in input order — the
//! narrative watch and, on top of it, the coordination network — held
//! together so that a run can drive them on a thread of their own.
//!
//! Why a thread: with them on, `tidewatch run`'s single ordered consumer
//! (windows, the sink) is the stage that limits the run, and they are
//! about half of its work. They read no windows, alerts or store, so a run
//! that is given them ([`crate::run::RunSink::take_detectors`]) hands each
//! batch to them first, on a thread named `tw-detect`, while its consumer
//! windows the batch before; the sink then gets every post together with
//! what they found in it ([`Detected`]). The sink sees the same findings
//! in the same order as if it had called them itself, so a run's output
//! does not depend on this.
//!
//! **Saved state.** Their state covers the last 24 h of posts, which a
//! restart would otherwise lose: narratives would be founded again under
//! new ids and coordination edges would count from zero. A run that stops
//! cleanly therefore saves them ([`PostDetectors::save`], into the data
//! directory: [`crate::datadir::DataDir::save_detectors`]) tagged with its
//! last store commit, and the next run on that directory goes on from them
//! when the store is still at that commit, i.e. when no post was committed
//! since that they did not see.

use crate::coordination::{CoordinationWatch, GroupRecord};
use crate::narratives::{NarrativeRecord, NarrativeWatch};
use crate::run::MatchedPost;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use tidewatch_core::narrative::{NarrativeConfig, NarrativeSketch, NarrativeUpdate};
use tidewatch_store::db::{CoordinationGroupRow, NarrativeRow};

/// Narratives, and coordination keyed on them: co-post edges pair posts
/// that joined a narrative by their text.
pub struct PostDetectors {
    pub narratives: NarrativeWatch,
    pub coordination: Option<CoordinationWatch>,
}

/// Saved state starts with these bytes, then the format and the commit.
const STATE_MAGIC: &[u8; 8] = b"twdetect";
/// Bumped whenever a saved type changes: older state is refused, not
/// misread.
const STATE_FORMAT: u32 = 1;

/// Why saved detector state could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not saved detector state")]
    NotState,
    #[error("saved detector state of format {found}, this version reads {STATE_FORMAT}")]
    Format { found: u32 },
    #[error("saved detector state is damaged: {0}")]
    Damaged(#[from] postcard::Error),
}

/// The saved state, borrowed when written and owned when read.
#[derive(Serialize, Deserialize)]
struct Saved<N, C> {
    narratives: N,
    coordination: C,
}

/// What the detectors made of one post.
#[derive(Clone, Debug, Default)]
pub struct Detected {
    /// The narrative the post founded or joined (`None` for a short text
    /// that is not a repost): what the index records as its `cluster`.
    pub update: Option<NarrativeUpdate>,
    /// Narratives reported for the first time because of this post.
    pub reported: Vec<NarrativeRecord>,
    /// Narratives that this post made grow fast.
    pub grown: Vec<NarrativeRecord>,
    /// Coordinated groups this post formed or changed enough to report.
    pub groups: Vec<GroupRecord>,
}

/// The narratives and groups changed since the last time, as rows for the
/// store (taken at the end of every batch).
#[derive(Clone, Debug, Default)]
pub struct DetectedRows {
    pub narratives: Vec<NarrativeRow>,
    pub groups: Vec<CoordinationGroupRow>,
}

impl PostDetectors {
    /// The shingle settings a run's workers sketch posts with for them.
    pub fn sketch_config(&self) -> &NarrativeConfig {
        self.narratives.sketch_config()
    }

    /// Starts loading what [`Self::post`] with `sketch` will read first:
    /// call it for the next post before feeding the current one.
    pub fn prefetch(&self, sketch: Option<&NarrativeSketch>) {
        if let Some(s) = sketch {
            self.narratives.prefetch(s);
        }
    }

    /// Feeds one post, in input order, with its sketch when a worker made
    /// it.
    pub fn post(&mut self, m: &MatchedPost, sketch: Option<&NarrativeSketch>) -> Detected {
        let reported = self.narratives.post_sketched(m, sketch);
        let update = self.narratives.last_update();
        let grown = self.narratives.take_grown();
        let groups = match &mut self.coordination {
            Some(coord) => coord.post(m, update.filter(|u| !u.by_repost).map(|u| u.narrative)),
            None => Vec::new(),
        };
        Detected {
            update,
            reported,
            grown,
            groups,
        }
    }

    /// Writes the detectors' whole state, tagged with `commit`: the store
    /// commit it goes with. A header (magic, format, commit) is followed by
    /// a zstd stream, with a checksum, of the state in postcard.
    pub fn save(&self, commit: u64, out: &mut impl Write) -> Result<(), StateError> {
        out.write_all(STATE_MAGIC)?;
        out.write_all(&STATE_FORMAT.to_le_bytes())?;
        out.write_all(&commit.to_le_bytes())?;
        let mut z = zstd::Encoder::new(out, 1)?;
        z.include_checksum(true)?;
        let saved = Saved {
            narratives: &self.narratives,
            coordination: &self.coordination,
        };
        let z = postcard::to_io(&saved, z)?;
        z.finish()?;
        Ok(())
    }

    /// The commit saved state goes with, read from its header; `input` is
    /// left at the state itself.
    pub fn saved_commit(input: &mut impl Read) -> Result<u64, StateError> {
        let mut header = [0u8; 20];
        match input.read_exact(&mut header) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(StateError::NotState),
            r => r?,
        }
        let (magic, rest) = header.split_at(8);
        let (format, commit) = rest.split_at(4);
        if magic != STATE_MAGIC {
            return Err(StateError::NotState);
        }
        let found = u32::from_le_bytes(format.try_into().unwrap_or_default());
        if found != STATE_FORMAT {
            return Err(StateError::Format { found });
        }
        Ok(u64::from_le_bytes(commit.try_into().unwrap_or_default()))
    }

    /// Reads the state [`Self::save`] wrote, after its header (see
    /// [`Self::saved_commit`]).
    pub fn load(input: impl Read) -> Result<PostDetectors, StateError> {
        let bytes = zstd::decode_all(input)?;
        let saved: Saved<NarrativeWatch, Option<CoordinationWatch>> = postcard::from_bytes(&bytes)?;
        Ok(PostDetectors {
            narratives: saved.narratives,
            coordination: saved.coordination,
        })
    }

    /// What changed since the last call, for the store.
    pub fn take_rows(&mut self) -> DetectedRows {
        DetectedRows {
            narratives: self.narratives.take_pending(),
            groups: self.coordination.as_mut().map(|c| c.take_pending()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordination::CoordinationWatch;
    use crate::narratives::WatchConfig;
    use crate::run::testing::{describe, matched};
    use tidewatch_core::text::TokenizedText;
    use tidewatch_gen::{GenConfig, Generator};

    /// Detectors that report small narratives, so the log below holds
    /// reports.
    fn detectors() -> PostDetectors {
        let watch = WatchConfig {
            min_accounts: 2,
            min_posts: 2,
            ..Default::default()
        };
        PostDetectors {
            narratives: NarrativeWatch::new(watch).unwrap(),
            coordination: Some(CoordinationWatch::new(Default::default()).unwrap()),
        }
    }

    /// A generated day with its planted campaigns (copy-paste, co-link,
    /// repost rings).
    fn posts() -> Vec<MatchedPost> {
        let mut tokens = TokenizedText::new();
        Generator::new(&GenConfig {
            posts: 30_000,
            days: 1,
            seed: 11,
            ..GenConfig::default()
        })
        .map(|p| matched(p, &mut tokens))
        .collect()
    }

    /// Feeds `posts`, logging what is found in each and the rows taken
    /// every 1,000 posts.
    fn feed(d: &mut PostDetectors, posts: &[MatchedPost], log: &mut Vec<String>) {
        for (i, m) in posts.iter().enumerate() {
            let f = d.post(m, None);
            log.push(describe(m, &f));
            if i % 1_000 == 999 {
                log.push(rows(d));
            }
        }
    }

    /// The rows the detectors have changed, in full.
    fn rows(d: &mut PostDetectors) -> String {
        let rows = d.take_rows();
        let narratives: Vec<String> = rows.narratives.iter().map(|r| r.record.clone()).collect();
        let groups: Vec<String> = rows.groups.iter().map(|r| r.record.clone()).collect();
        format!("rows {narratives:?} {groups:?}")
    }

    /// Stats without the bytes held, which depend on the maps' capacity.
    fn sizes(d: &PostDetectors) -> String {
        let mut n = d.narratives.narratives().stats();
        n.approx_bytes = 0;
        let mut c = d.coordination.as_ref().map(|c| c.stats()).unwrap_or_default();
        c.approx_bytes = 0;
        format!("{n:?} {c:?}")
    }

    #[test]
    fn saved_detectors_go_on_as_if_never_stopped() {
        let posts = posts();
        let (first, second) = posts.split_at(posts.len() / 2);

        let mut whole = detectors();
        let mut reference = Vec::new();
        feed(&mut whole, first, &mut reference);
        let at_stop = reference.len();
        feed(&mut whole, second, &mut reference);
        let groups = whole.coordination.as_mut().unwrap().finish();
        reference.push(format!("{:?}", groups.iter().map(|g| &g.accounts).collect::<Vec<_>>()));
        reference.push(rows(&mut whole));

        let mut stopped = detectors();
        let mut log = Vec::new();
        feed(&mut stopped, first, &mut log);
        assert_eq!(log, reference[..at_stop], "the same detectors before the stop");
        let mut saved = Vec::new();
        stopped.save(42, &mut saved).unwrap();
        let mut input = saved.as_slice();
        assert_eq!(PostDetectors::saved_commit(&mut input).unwrap(), 42);
        let mut resumed = PostDetectors::load(input).unwrap();
        assert_eq!(sizes(&resumed), sizes(&stopped));
        drop(stopped);

        feed(&mut resumed, second, &mut log);
        let groups = resumed.coordination.as_mut().unwrap().finish();
        log.push(format!("{:?}", groups.iter().map(|g| &g.accounts).collect::<Vec<_>>()));
        log.push(rows(&mut resumed));
        let with_groups = log[at_stop..]
            .iter()
            .filter(|l| l.starts_with("rows") && !l.ends_with(" []"))
            .count();
        assert!(with_groups > 5, "the planted campaigns' groups change after the stop");
        assert_eq!(log, reference);
        assert_eq!(sizes(&resumed), sizes(&whole));
    }

    #[test]
    fn damaged_or_foreign_state_is_refused() {
        let mut d = detectors();
        feed(&mut d, &posts()[..2_000], &mut Vec::new());
        let mut saved = Vec::new();
        d.save(7, &mut saved).unwrap();

        let mut flipped = saved.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 0x55;
        let mut input = flipped.as_slice();
        assert_eq!(PostDetectors::saved_commit(&mut input).unwrap(), 7);
        assert!(
            PostDetectors::load(input).is_err(),
            "the checksum catches a flipped byte"
        );

        let mut truncated = &saved[..saved.len() / 2];
        PostDetectors::saved_commit(&mut truncated).unwrap();
        assert!(PostDetectors::load(truncated).is_err());

        let mut newer = saved.clone();
        newer[8] = 99;
        assert!(matches!(
            PostDetectors::saved_commit(&mut newer.as_slice()),
            Err(StateError::Format { found: 99 })
        ));
        assert!(matches!(
            PostDetectors::saved_commit(&mut &b"{\"not\": \"state\"}\n"[..]),
            Err(StateError::NotState)
        ));
        assert!(matches!(
            PostDetectors::saved_commit(&mut &b"short"[..]),
            Err(StateError::NotState)
        ));
    }
}
