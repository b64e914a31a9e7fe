//! What a run saves so that the next run on its data directory goes on
//! where it stopped.
//!
//! The detectors that learn from the stream keep hours of it in memory:
//! the emerging-topic baseline (6 h), narratives and coordination edges
//! (24 h). A restart used to lose all of it: narratives were founded again
//! under new ids, edges counted from zero, and emerging topics stayed blind
//! until the baseline had relearnt what is usual. (Spike detection needs
//! none of this: it relearns from the minute counts the store keeps.)
//!
//! So a run writes their whole state ([`save`]) into the data directory
//! ([`crate::datadir::DataDir::save_state`]), tagged with the store commit
//! it goes with: after its last commit when it stops cleanly (input read,
//! Ctrl-C, SIGTERM), and every few minutes while it runs, at a commit made
//! for the purpose (a checkpoint: see [`crate::run::RunSink::checkpoint`]).
//! The next run reads it ([`load`]):
//!
//! - state of the store's current commit has seen exactly the posts the
//!   store holds, and the inputs resume right after them: the detectors
//!   go on as if never stopped;
//! - state of an earlier commit is a checkpoint of a run that was killed
//!   (or failed to save) later. It records where each input stood
//!   ([`RunState::inputs`]: events, and the input's own cursor), so the
//!   next run reads the files, and the live sources that can replay
//!   (Jetstream, a cluster's posts stream: see
//!   [`crate::sources::SourceSpec::read_again_until`]), again from there
//!   to where the store stands, into the detectors only, and they stand
//!   where an uninterrupted run's would. Posts of other live sources
//!   cannot be read again: the detectors are blind to those committed
//!   after the checkpoint, which is still far better than starting empty;
//! - state of a later commit than the store's, or of another format, is
//!   refused.
//!
//! The format: 8 magic bytes, the format number and the commit (little
//! endian), then two zstd frames, with checksums: the emerging topics and
//! the inputs' positions in postcard (serde), and the narratives and
//! coordination network in postcard ([`DetectorsSnapshot`]), which the
//! detectors' own thread makes so that a checkpoint does not wait for
//! them. Scratch buffers and what a
//! run takes before it saves (pending rows) are not in it.

use crate::coordination::CoordinationWatch;
use crate::detectors::PostDetectors;
use crate::narratives::NarrativeWatch;
use crate::topics::TopicWatch;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Saved state starts with these bytes, then the format and the commit.
const MAGIC: &[u8; 8] = b"twdetect";
/// Bumped whenever a saved type changes: older state is refused, not
/// misread.
const FORMAT: u32 = 4;

/// Why saved state could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not saved detector state")]
    NotState,
    #[error("saved detector state of format {found}, this version reads {FORMAT}")]
    Format { found: u32 },
    #[error("saved detector state is damaged: {0}")]
    Damaged(#[from] postcard::Error),
}

/// The detectors' state as a run saved it.
pub struct RunState {
    pub topics: TopicWatch,
    /// Narratives and coordination, when the run had them.
    pub detectors: Option<PostDetectors>,
    /// Where each input (by checkpoint name) stood at the saved commit:
    /// where a run reads again what was committed after it.
    pub inputs: InputPositions,
}

/// Where each input stood, by the input's checkpoint name.
pub type InputPositions = std::collections::BTreeMap<String, InputAt>;

/// Where one input stood at a commit, as its checkpoint in the store says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAt {
    /// Events (posts and deletions) consumed.
    pub events: u64,
    /// The input's own cursor: a byte offset for files, the stream
    /// sequence for a NATS source (see [`crate::sources`]).
    pub offset: Option<u64>,
}

/// What is written of narratives and coordination, borrowed when written
/// and owned when read.
#[derive(Serialize, Deserialize)]
struct SavedDetectors<N, C> {
    narratives: N,
    coordination: C,
}

/// The narratives and coordination network at one point of a run, as the
/// compressed frame [`save`] writes: made where the detectors live (their
/// own thread while a run goes on), written by whoever holds the topics.
pub struct DetectorsSnapshot(Vec<u8>);

impl DetectorsSnapshot {
    /// The state of `detectors` (none: a run without them).
    pub fn of(detectors: Option<&PostDetectors>) -> Result<DetectorsSnapshot, StateError> {
        let saved = detectors.map(|d| SavedDetectors {
            narratives: &d.narratives,
            coordination: d.coordination.as_ref(),
        });
        frame(&saved).map(DetectorsSnapshot)
    }

    /// Its size, compressed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `value` in postcard, as one zstd frame with a checksum.
fn frame<T: Serialize>(value: &T) -> Result<Vec<u8>, StateError> {
    let mut z = zstd::Encoder::new(Vec::new(), 1)?;
    z.include_checksum(true)?;
    let z = postcard::to_io(value, z)?;
    Ok(z.finish()?)
}

/// Writes the state of `topics` and the `detectors` snapshot, tagged with
/// `commit`: the store commit it goes with, when the inputs stood at
/// `inputs`.
pub fn save(
    commit: u64,
    inputs: &InputPositions,
    topics: &TopicWatch,
    detectors: &DetectorsSnapshot,
    out: &mut impl Write,
) -> Result<(), StateError> {
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT.to_le_bytes())?;
    out.write_all(&commit.to_le_bytes())?;
    out.write_all(&frame(&(topics, inputs))?)?;
    out.write_all(&detectors.0)?;
    Ok(())
}

/// The commit saved state goes with, read from its header; `input` is left
/// at the state itself.
pub fn saved_commit(input: &mut impl Read) -> Result<u64, StateError> {
    let mut header = [0u8; 20];
    match input.read_exact(&mut header) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(StateError::NotState),
        r => r?,
    }
    let (magic, rest) = header.split_at(8);
    let (format, commit) = rest.split_at(4);
    if magic != MAGIC {
        return Err(StateError::NotState);
    }
    let found = u32::from_le_bytes(format.try_into().unwrap_or_default());
    if found != FORMAT {
        return Err(StateError::Format { found });
    }
    Ok(u64::from_le_bytes(commit.try_into().unwrap_or_default()))
}

/// Reads the state [`save`] wrote, after its header (see [`saved_commit`]).
pub fn load(input: impl Read) -> Result<RunState, StateError> {
    // The two frames decode as one stream.
    let bytes = zstd::decode_all(input)?;
    let ((topics, inputs), rest): ((TopicWatch, InputPositions), _) = postcard::take_from_bytes(&bytes)?;
    let saved: Option<SavedDetectors<NarrativeWatch, Option<CoordinationWatch>>> = postcard::from_bytes(rest)?;
    Ok(RunState {
        topics,
        inputs,
        detectors: saved.map(|s| PostDetectors {
            narratives: s.narratives,
            coordination: s.coordination,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::narratives::WatchConfig;
    use crate::run::testing::{describe, matched};
    use crate::run::MatchedPost;
    use tidewatch_core::emerging::EmergingConfig;
    use tidewatch_core::text::TokenizedText;
    use tidewatch_gen::{GenConfig, Generator};

    /// The detectors of a run with narratives and coordination; narratives
    /// are reported small, so the log below holds reports.
    fn detectors() -> (TopicWatch, PostDetectors) {
        let watch = WatchConfig {
            min_accounts: 2,
            min_posts: 2,
            ..Default::default()
        };
        let detectors = PostDetectors {
            narratives: NarrativeWatch::new(watch).unwrap(),
            coordination: Some(CoordinationWatch::new(Default::default()).unwrap()),
        };
        (TopicWatch::new(EmergingConfig::default()), detectors)
    }

    /// A generated day with its planted events (an emerging topic,
    /// copy-paste, co-link and repost-ring campaigns, bursts).
    fn posts() -> Vec<MatchedPost> {
        let mut tokens = TokenizedText::new();
        Generator::new(&GenConfig {
            posts: 40_000,
            days: 1,
            seed: 11,
            ..GenConfig::default()
        })
        .map(|p| matched(p, &mut tokens))
        .collect()
    }

    /// Feeds `posts`, logging what is found in each and the rows taken
    /// every 1,000 posts.
    fn feed(topics: &mut TopicWatch, d: &mut PostDetectors, posts: &[MatchedPost], log: &mut Vec<String>) {
        for (i, m) in posts.iter().enumerate() {
            let new: Vec<String> = topics.post(m).into_iter().map(|t| t.id).collect();
            let f = d.post(m, None);
            log.push(format!("{} {new:?}", describe(m, &f)));
            if i % 1_000 == 999 {
                log.push(rows(topics, d));
            }
        }
    }

    /// The rows the detectors have changed, in full.
    fn rows(topics: &mut TopicWatch, d: &mut PostDetectors) -> String {
        let rows = d.take_rows();
        let narratives: Vec<&String> = rows.narratives.iter().map(|r| &r.record).collect();
        let groups: Vec<&String> = rows.groups.iter().map(|r| &r.record).collect();
        let topics: Vec<String> = topics.take_pending().into_iter().map(|r| r.record).collect();
        format!("rows {narratives:?} {groups:?} {topics:?}")
    }

    /// Counters without the bytes held, which depend on the maps' capacity.
    fn sizes(topics: &TopicWatch, d: &PostDetectors) -> String {
        let mut n = d.narratives.narratives().stats();
        n.approx_bytes = 0;
        let mut c = d.coordination.as_ref().map(|c| c.stats()).unwrap_or_default();
        c.approx_bytes = 0;
        format!("{} {n:?} {c:?}", topics.detector().tracked())
    }

    /// Stops halfway: what it finds after the stop, saved and loaded, is
    /// what detectors that never stopped find.
    #[test]
    fn saved_detectors_go_on_as_if_never_stopped() {
        let posts = posts();
        let (first, second) = posts.split_at(posts.len() / 2);

        let (mut topics, mut whole) = detectors();
        let mut reference = Vec::new();
        feed(&mut topics, &mut whole, first, &mut reference);
        let at_stop = reference.len();
        feed(&mut topics, &mut whole, second, &mut reference);
        reference.push(rows(&mut topics, &mut whole));

        let (mut topics, mut stopped) = detectors();
        let mut log = Vec::new();
        feed(&mut topics, &mut stopped, first, &mut log);
        assert_eq!(log, reference[..at_stop], "the same detectors before the stop");
        let mut saved = Vec::new();
        save(
            42,
            &InputPositions::new(),
            &topics,
            &DetectorsSnapshot::of(Some(&stopped)).unwrap(),
            &mut saved,
        )
        .unwrap();
        let mut input = saved.as_slice();
        assert_eq!(saved_commit(&mut input).unwrap(), 42);
        let state = load(input).unwrap();
        let (mut topics_again, mut resumed) = (state.topics, state.detectors.unwrap());
        assert_eq!(sizes(&topics_again, &resumed), sizes(&topics, &stopped));
        drop((topics, stopped));

        feed(&mut topics_again, &mut resumed, second, &mut log);
        log.push(rows(&mut topics_again, &mut resumed));
        let changed = |what: usize| {
            log[at_stop..]
                .iter()
                .filter(|l| l.starts_with("rows") && l.split(" [").nth(what).is_some_and(|s| s != "]"))
                .count()
        };
        assert!(changed(2) > 5, "the planted campaigns' groups change after the stop");
        assert!(changed(3) > 0, "emerging topics are recorded after the stop");
        let first_difference = log.iter().zip(&reference).position(|(a, b)| a != b);
        assert_eq!(
            (log.len(), first_difference),
            (reference.len(), None),
            "{}",
            first_difference.map_or(String::new(), |i| {
                let at = log[i]
                    .bytes()
                    .zip(reference[i].bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                let from = at.saturating_sub(300);
                format!("{}\nagainst\n{}", &log[i][from..], &reference[i][from..])
            })
        );
    }

    #[test]
    fn state_without_narratives_holds_the_topics_only() {
        let (mut topics, mut d) = detectors();
        feed(&mut topics, &mut d, &posts()[..5_000], &mut Vec::new());
        let mut saved = Vec::new();
        save(
            1,
            &InputPositions::from([(
                "a.jsonl".to_string(),
                InputAt {
                    events: 5,
                    offset: Some(120),
                },
            )]),
            &topics,
            &DetectorsSnapshot::of(None).unwrap(),
            &mut saved,
        )
        .unwrap();
        let mut input = saved.as_slice();
        saved_commit(&mut input).unwrap();
        let state = load(input).unwrap();
        assert!(state.detectors.is_none());
        assert_eq!(
            state.inputs,
            InputPositions::from([(
                "a.jsonl".to_string(),
                InputAt {
                    events: 5,
                    offset: Some(120)
                }
            )])
        );
        assert_eq!(state.topics.detector().tracked(), topics.detector().tracked());
    }

    #[test]
    fn damaged_or_foreign_state_is_refused() {
        let (mut topics, mut d) = detectors();
        feed(&mut topics, &mut d, &posts()[..2_000], &mut Vec::new());
        let mut saved = Vec::new();
        save(
            7,
            &InputPositions::new(),
            &topics,
            &DetectorsSnapshot::of(Some(&d)).unwrap(),
            &mut saved,
        )
        .unwrap();

        let mut flipped = saved.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 0x55;
        let mut input = flipped.as_slice();
        assert_eq!(saved_commit(&mut input).unwrap(), 7);
        assert!(load(input).is_err(), "the checksum catches a flipped byte");

        let mut truncated = &saved[..saved.len() / 2];
        saved_commit(&mut truncated).unwrap();
        assert!(load(truncated).is_err());

        let mut newer = saved.clone();
        newer[8] = 99;
        assert!(matches!(
            saved_commit(&mut newer.as_slice()),
            Err(StateError::Format { found: 99 })
        ));
        assert!(matches!(
            saved_commit(&mut &b"{\"not\": \"state\"}\n"[..]),
            Err(StateError::NotState)
        ));
        assert!(matches!(saved_commit(&mut &b"short"[..]), Err(StateError::NotState)));
    }
}
