//! The wallet directory: `<db_root>/<name>.json`, written atomically.
//!
//! A write goes to a temp file in the same directory (name starts with `TEMP_PREFIX` and does
//! not end in `.json`, so `names()` never lists it), is fsynced, renamed over the target (or
//! hard-linked, for a create that must not overwrite), and the directory is fsynced. A crash
//! at any point leaves either the old file or the new one, never a half-written wallet.

use super::{crypto, validate_name, EncryptedData, SecretString, WalletError};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Temp files: `.kdfd-tmp-<name>-<random>`.
pub const TEMP_PREFIX: &str = ".kdfd-tmp-";
/// A temp file older than this is a leftover of a crashed write and is removed.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

fn storage(what: &str, path: &Path, e: io::Error) -> WalletError {
    WalletError::Storage(format!("{what} '{}': {e}", path.display()))
}

/// One lock per wallet name with a change in progress (see `WalletDir::serial`).
type FileLocks =
    std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<std::sync::Mutex<()>>>>>;

/// The directory holding KDF wallet files.
#[derive(Clone, Debug)]
pub struct WalletDir {
    root: PathBuf,
    /// Shared by clones: changes of one wallet file run one at a time.
    pub(super) locks: FileLocks,
}

impl WalletDir {
    /// Opens `root` (not created until the first write) and removes stale temp files.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let dir = WalletDir {
            root: root.into(),
            locks: FileLocks::default(),
        };
        dir.remove_stale_temps();
        dir
    }

    /// Runs `f` while holding wallet `name`'s lock: a read-check-write (a password change, a
    /// delete, a create) never interleaves with another on the same file, so the second
    /// change sees the first one's result (last writer no longer wins). It blocks: callers are
    /// on the blocking pool already (Argon2id runs inside).
    fn serial<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        let key = name.trim().to_string();
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let out = {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            f()
        };
        // Forget the entry with its last user, so names asked about once do not pile up.
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        drop(lock);
        if map
            .get(&key)
            .is_some_and(|l| std::sync::Arc::strong_count(l) == 1)
        {
            map.remove(&key);
        }
        out
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of wallet `name` (validated).
    pub fn path(&self, name: &str) -> Result<PathBuf, WalletError> {
        Ok(self.root.join(format!("{}.json", validate_name(name)?)))
    }

    /// Every `*.json` stem in the root, sorted (as KDF's `get_wallet_names`). No root = none.
    pub fn names(&self) -> Result<Vec<String>, WalletError> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(storage("reading", &self.root, e)),
        };
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| storage("reading", &self.root, e))?;
            let fname = entry.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            if let Some(stem) = fname.strip_suffix(".json") {
                if !stem.is_empty() && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    pub fn exists(&self, name: &str) -> Result<bool, WalletError> {
        Ok(self.path(name)?.is_file())
    }

    /// The stored `EncryptedData`. A missing file is `MnemonicFileNotFound`.
    pub fn read(&self, name: &str) -> Result<EncryptedData, WalletError> {
        self.try_read(name)?
            .ok_or(WalletError::MnemonicFileNotFound)
    }

    /// `None` when the file does not exist.
    pub fn try_read(&self, name: &str) -> Result<Option<EncryptedData>, WalletError> {
        let path = self.path(name)?;
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage("reading", &path, e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| WalletError::BadFile(format!("{}: {e}", path.display())))
    }

    /// Reads and decrypts wallet `name`.
    pub fn load(&self, name: &str, password: &str) -> Result<SecretString, WalletError> {
        crypto::decrypt(&self.read(name)?, password)
    }

    /// Encrypts `mnemonic` and saves it as a new wallet; refuses to overwrite one.
    /// The password policy is the caller's business (see `startup`).
    pub fn create(&self, name: &str, password: &str, mnemonic: &str) -> Result<(), WalletError> {
        if password.is_empty() {
            return Err(WalletError::PasswordPolicy(
                "`wallet_password` cannot be empty".into(),
            ));
        }
        let data = crypto::encrypt(mnemonic, password)?;
        self.serial(name, || self.save_new(name, &data))
    }

    /// Saves `data` as it is, as a new wallet (no overwrite).
    pub fn save_new(&self, name: &str, data: &EncryptedData) -> Result<(), WalletError> {
        let path = self.path(name)?;
        self.write_atomic(&path, data, false)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => WalletError::WalletExists(name.trim().into()),
                _ => storage("writing", &path, e),
            })
    }

    /// Re-encrypts wallet `name` under `new` after checking `current`. A wrong `current`
    /// changes nothing.
    pub fn change_password(&self, name: &str, current: &str, new: &str) -> Result<(), WalletError> {
        if new.is_empty() {
            return Err(WalletError::PasswordPolicy(
                "`wallet_password` cannot be empty".into(),
            ));
        }
        self.serial(name, || {
            let mnemonic = self.load(name, current)?;
            let data = crypto::encrypt(&mnemonic, new)?;
            let path = self.path(name)?;
            self.write_atomic(&path, &data, true)
                .map_err(|e| storage("writing", &path, e))
        })
    }

    /// Deletes wallet `name` after checking `password`. Missing: `WalletNotFound`.
    pub fn delete(&self, name: &str, password: &str) -> Result<(), WalletError> {
        self.serial(name, || {
            let data = self
                .try_read(name)?
                .ok_or_else(|| WalletError::WalletNotFound(name.trim().into()))?;
            crypto::decrypt(&data, password)?;
            let path = self.path(name)?;
            fs::remove_file(&path).map_err(|e| storage("deleting", &path, e))?;
            sync_dir(&self.root).map_err(|e| storage("syncing", &self.root, e))
        })
    }

    fn write_atomic(&self, path: &Path, data: &EncryptedData, overwrite: bool) -> io::Result<()> {
        let json = serde_json::to_vec(data).map_err(io::Error::other)?;
        crate::private_fs::create_dir(&self.root)?;
        let mut rnd = [0u8; 8];
        getrandom::getrandom(&mut rnd).map_err(io::Error::other)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("w");
        let tmp = self.root.join(format!(
            "{TEMP_PREFIX}{stem}-{:016x}",
            u64::from_le_bytes(rnd)
        ));
        let res = write_synced(&tmp, &json).and_then(|()| {
            if overwrite {
                fs::rename(&tmp, path)
            } else {
                publish_no_overwrite(&tmp, path)
            }
        });
        // On success the temp name is gone already (renamed) or a second link (removed here).
        let _ = fs::remove_file(&tmp);
        res?;
        sync_dir(&self.root)
    }

    fn remove_stale_temps(&self) {
        let Ok(rd) = fs::read_dir(&self.root) else {
            return;
        };
        let now = SystemTime::now();
        for entry in rd.flatten() {
            let is_temp = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX));
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if is_temp && old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Writes `bytes` to a new file (owner-only on unix) and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // The umask may have taken bits from the mode above; set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(crate::private_fs::FILE_MODE))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes `tmp` visible as `path` unless `path` exists: a hard link fails atomically on an
/// existing target. File systems without hard links fall back to check-then-rename.
fn publish_no_overwrite(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if path.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(tmp, path)
        }
    }
}

/// fsync of the directory makes the rename itself durable (a no-op where unsupported).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
