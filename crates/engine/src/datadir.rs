//! The data directory: where a tidewatch installation keeps its state.
//!
//! Besides the store, it holds the pseudonymisation keyring
//! (`keyring.json`) and the detectors' state a run saves when it stops and
//! at checkpoints (`detectors.state`, see [`crate::state`]), both readable
//! only by their owner. Files are replaced atomically (write, sync,
//! rename), so a crash leaves either the old or the new one, and a deleted
//! epoch key is gone from the keyring as soon as [`DataDir::save_keyring`]
//! returns. The saved state holds pseudonyms, never handles.

use crate::state::{DetectorsSnapshot, InputPositions, RunState, StateError};
use crate::topics::TopicWatch;
use std::fs;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use tidewatch_core::pseudonym::{Keyring, KeyringState, PseudonymConfig};

/// The default location, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "tidewatch-data";

/// The detectors' state a run left for the next one (see [`crate::state`]).
pub const DETECTOR_STATE_FILE: &str = "detectors.state";

/// Errors opening or writing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a keyring: {source}")]
    BadKeyring { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {source}")]
    BadDetectors { path: PathBuf, source: StateError },
}

/// What [`DataDir::load_state`] found.
pub enum SavedState {
    /// No saved state.
    None,
    /// State saved with the store's current commit: it has seen exactly
    /// the posts the store holds.
    Current(Box<RunState>),
    /// State saved with the earlier commit `saved`: a checkpoint of a run
    /// killed later, or the state of a run that could not save when it
    /// stopped. It has not seen the posts committed since; its
    /// [`RunState::inputs`] say where to read them again.
    Behind { saved: u64, state: Box<RunState> },
    /// State saved with a later commit than the store's (the store was
    /// replaced or rolled back since): refused.
    Ahead { saved: u64 },
}

/// An opened data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens `root`, creating it if needed.
    pub fn open(root: &Path) -> Result<DataDir, DataDirError> {
        fs::create_dir_all(root).map_err(|source| DataDirError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    fn keyring_path(&self) -> PathBuf {
        self.root.join("keyring.json")
    }

    /// Loads the keyring, or creates a fresh random one with `config` if
    /// there is none yet. An existing keyring keeps its own configuration.
    pub fn load_keyring(&self, config: PseudonymConfig) -> Result<Keyring, DataDirError> {
        let path = self.keyring_path();
        match fs::read(&path) {
            Ok(bytes) => {
                let state: KeyringState =
                    serde_json::from_slice(&bytes).map_err(|source| DataDirError::BadKeyring {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Keyring::from_state(state))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let ring = Keyring::new(config);
                self.save_keyring(&ring)?;
                Ok(ring)
            }
            Err(source) => Err(DataDirError::Io { path, source }),
        }
    }

    /// Writes the keyring atomically.
    pub fn save_keyring(&self, ring: &Keyring) -> Result<(), DataDirError> {
        let path = self.keyring_path();
        let json = serde_json::to_vec_pretty(&ring.snapshot()).map_err(|e| DataDirError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        self.replace(&path, |f| f.write_all(&json).map_err(StateError::Io))
    }

    fn detectors_path(&self) -> PathBuf {
        self.root.join(DETECTOR_STATE_FILE)
    }

    /// Saves the detectors' state atomically, tagged with `commit` (the
    /// store's last commit); returns the file's size in bytes.
    pub fn save_state(
        &self,
        commit: u64,
        inputs: &InputPositions,
        topics: &TopicWatch,
        detectors: &DetectorsSnapshot,
    ) -> Result<u64, DataDirError> {
        let path = self.detectors_path();
        self.replace(&path, |f| crate::state::save(commit, inputs, topics, detectors, f))?;
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|source| DataDirError::Io { path, source })
    }

    /// Reads the saved detector state, given the store's commit `commit`.
    /// The file stays: a run killed before its first checkpoint leaves the
    /// next one this state to go on from (it is replaced at every save).
    pub fn load_state(&self, commit: u64) -> Result<SavedState, DataDirError> {
        let path = self.detectors_path();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SavedState::None),
            Err(source) => return Err(DataDirError::Io { path, source }),
        };
        let read = || {
            let mut input = BufReader::new(file);
            let saved = crate::state::saved_commit(&mut input)?;
            if saved > commit {
                return Ok(SavedState::Ahead { saved });
            }
            let state = Box::new(crate::state::load(input)?);
            Ok(if saved == commit {
                SavedState::Current(state)
            } else {
                SavedState::Behind { saved, state }
            })
        };
        read().map_err(|source| DataDirError::BadDetectors { path, source })
    }

    /// Replaces `path` atomically with what `write` writes: a temporary
    /// file, readable only by its owner, synced, then renamed.
    fn replace(
        &self,
        path: &Path,
        write: impl FnOnce(&mut BufWriter<fs::File>) -> Result<(), StateError>,
    ) -> Result<(), DataDirError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let err = |source: StateError| match source {
            StateError::Io(source) => DataDirError::Io {
                path: path.to_path_buf(),
                source,
            },
            source => DataDirError::BadDetectors {
                path: path.to_path_buf(),
                source,
            },
        };
        {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = BufWriter::new(opts.open(&tmp).map_err(|e| err(e.into()))?);
            write(&mut f).map_err(err)?;
            let f = f.into_inner().map_err(|e| err(e.into_error().into()))?;
            f.sync_all().map_err(|e| err(e.into()))?;
        }
        fs::rename(&tmp, path).map_err(|e| err(e.into()))?;
        if let Ok(dir) = fs::File::open(&self.root) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tidewatch_core::pseudonym::Pseudonymiser;
    use tidewatch_core::Timestamp;

    #[test]
    fn keyring_persists_and_deleted_keys_leave_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dd = DataDir::open(dir.path()).unwrap();
        let ring = Arc::new(dd.load_keyring(PseudonymConfig::default()).unwrap());
        let mut ps = Pseudonymiser::new(ring.clone(), Timestamp(0));
        let a = ps.account("x", "a", 0);
        dd.save_keyring(&ring).unwrap();
        let again = Arc::new(dd.load_keyring(PseudonymConfig::default()).unwrap());
        assert_eq!(Pseudonymiser::new(again.clone(), Timestamp(0)).account("x", "a", 0), a);
        let key_hex = std::fs::read_to_string(dir.path().join("keyring.json")).unwrap();
        assert!(key_hex.contains("\"0\""));
        again.expire(Timestamp(30 * Timestamp::DAY));
        dd.save_keyring(&again).unwrap();
        let after = std::fs::read_to_string(dir.path().join("keyring.json")).unwrap();
        assert!(!after.contains("\"0\""), "{after}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keyring.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }

    #[test]
    fn saved_state_is_read_with_its_commit_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dd = DataDir::open(dir.path()).unwrap();
        let file = dir.path().join("detectors.state");
        let topics = TopicWatch::new(Default::default());
        let none = DetectorsSnapshot::of(None).unwrap();
        assert!(matches!(dd.load_state(3), Ok(SavedState::None)));

        let bytes = dd.save_state(3, &InputPositions::new(), &topics, &none).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o077, 0);
        }
        assert!(matches!(dd.load_state(3), Ok(SavedState::Current(_))));
        // Kept, for a run killed before it saves again.
        assert!(matches!(dd.load_state(4), Ok(SavedState::Behind { saved: 3, .. })));
        assert!(matches!(dd.load_state(2), Ok(SavedState::Ahead { saved: 3 })));

        dd.save_state(5, &InputPositions::new(), &topics, &none).unwrap();
        assert!(matches!(dd.load_state(5), Ok(SavedState::Current(_))));

        std::fs::write(&file, b"twdetect\x03\0\0\0\x03\0\0\0\0\0\0\0garbage").unwrap();
        let err = dd.load_state(3).err().expect("damaged");
        assert!(err.to_string().contains("detectors.state"), "{err}");
    }
}
