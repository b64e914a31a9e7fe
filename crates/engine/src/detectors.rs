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
//! A run saves them, with the emerging-topic detector, for the next run
//! on its data directory when it stops and at checkpoints
//! ([`crate::state`]); the thread snapshots them at the batch a checkpoint
//! asks for ([`crate::state::DetectorsSnapshot`]).

use crate::coordination::{CoordinationWatch, GroupRecord};
use crate::narratives::{NarrativeRecord, NarrativeWatch};
use crate::run::MatchedPost;
use tidewatch_core::narrative::{NarrativeConfig, NarrativeSketch, NarrativeUpdate};
use tidewatch_store::db::{CoordinationGroupRow, NarrativeRow};

/// Narratives, and coordination keyed on them: co-post edges pair posts
/// that joined a narrative by their text.
pub struct PostDetectors {
    pub narratives: NarrativeWatch,
    pub coordination: Option<CoordinationWatch>,
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

    /// What changed since the last call, for the store.
    pub fn take_rows(&mut self) -> DetectedRows {
        DetectedRows {
            narratives: self.narratives.take_pending(),
            groups: self.coordination.as_mut().map(|c| c.take_pending()).unwrap_or_default(),
        }
    }
}
