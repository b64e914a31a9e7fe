//! The data directory: where a tidewatch installation keeps its state.
//!
//! For now it holds the pseudonymisation keyring (`keyring.json`, readable
//! only by its owner). The file is replaced atomically (write, sync,
//! rename), so a crash leaves either the old or the new keyring, and a
//! deleted epoch key is gone from the file as soon as [`DataDir::save_keyring`]
//! returns.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tidewatch_core::pseudonym::{Keyring, KeyringState, PseudonymConfig};

/// The default location, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "tidewatch-data";

/// Errors opening or writing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a keyring: {source}")]
    BadKeyring { path: PathBuf, source: serde_json::Error },
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
        let tmp = self.root.join("keyring.json.tmp");
        let io_err = |source| DataDirError::Io {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(&ring.snapshot()).map_err(|e| io_err(io::Error::other(e)))?;
        {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(io_err)?;
            f.write_all(&json).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
        }
        fs::rename(&tmp, &path).map_err(io_err)?;
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
}
