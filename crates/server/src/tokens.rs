//! API tokens: bearer secrets with a role, stored only as hashes.
//!
//! `tidewatch token create --role read|admin` makes a random token, prints
//! it once and appends its BLAKE3 hash to `DATA/tokens.json` (mode 0600,
//! replaced atomically). The server hashes each presented token and looks
//! the hash up: a stolen tokens file gives no usable token. The file is
//! re-read when it changes, so a new token works without a restart.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The tokens file in a data directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// Every token starts with this, so a leaked one is recognisable.
const PREFIX: &str = "tw_";

/// What a token may do. `Admin` includes everything `Read` may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

/// One stored token: never the secret, only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The first characters of the token, to tell tokens apart in a listing.
    pub id: String,
    pub role: Role,
    /// BLAKE3 of the whole token, hex.
    pub hash: String,
    /// Unix ms.
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a tokens file: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
}

fn hash(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

/// Reads the tokens of `data` (none when there is no file).
pub fn read_tokens(data: &Path) -> Result<Vec<TokenEntry>, TokenError> {
    let path = data.join(TOKENS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| TokenError::Parse { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(TokenError::Io { path, source }),
    }
}

/// Creates a token with `role` in data directory `data` and returns it:
/// the only time the secret exists outside the client.
pub fn create_token(data: &Path, role: Role) -> Result<(String, TokenEntry), TokenError> {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!("{PREFIX}{}", blake3::Hash::from(secret).to_hex());
    let entry = TokenEntry {
        id: token[..PREFIX.len() + 8].to_string(),
        role,
        hash: hash(&token).to_hex().to_string(),
        created_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    std::fs::create_dir_all(data).map_err(|source| TokenError::Io {
        path: data.to_path_buf(),
        source,
    })?;
    let mut all = read_tokens(data)?;
    all.push(entry.clone());
    write_tokens(data, &all)?;
    Ok((token, entry))
}

/// Replaces the tokens file atomically, readable by its owner only.
fn write_tokens(data: &Path, tokens: &[TokenEntry]) -> Result<(), TokenError> {
    let path = data.join(TOKENS_FILE);
    let tmp = data.join(format!("{TOKENS_FILE}.tmp"));
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec_pretty(tokens).map_err(|e| io(std::io::Error::other(e)))?;
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)
}

/// The tokens the server accepts, re-read when the file changes.
pub struct TokenStore {
    data: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<TokenEntry>)>,
}

impl TokenStore {
    pub fn new(data: &Path) -> TokenStore {
        TokenStore {
            data: data.to_path_buf(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// The role of `token`, if it is a known one.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let presented = hash(token);
        let modified = std::fs::metadata(self.data.join(TOKENS_FILE))
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != modified || modified.is_none() {
            // An unreadable file accepts no token rather than keeping stale ones.
            *cache = (modified, read_tokens(&self.data).unwrap_or_default());
        }
        cache.1.iter().find_map(|e| {
            // blake3::Hash compares in constant time.
            let stored = blake3::Hash::from_hex(&e.hash).ok()?;
            (stored == presented).then_some(e.role)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_is_accepted_with_its_role_and_only_its_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (read, _) = create_token(dir.path(), Role::Read).unwrap();
        let (admin, entry) = create_token(dir.path(), Role::Admin).unwrap();
        assert!(admin.starts_with("tw_") && admin.len() == 3 + 64);
        assert_eq!(entry.id, admin[..11]);
        let store = TokenStore::new(dir.path());
        assert_eq!(store.role_of(&read), Some(Role::Read));
        assert_eq!(store.role_of(&admin), Some(Role::Admin));
        assert_eq!(store.role_of("tw_not-a-token"), None);
        let file = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(!file.contains(&admin[3..]), "the secret is not stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKENS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
