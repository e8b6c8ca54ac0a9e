//! Owner-only files in dbdir: directories 0700, files 0600, whatever the umask (the mode is set
//! with chmod after creation, which the umask does not touch). The stored account xpubs reveal
//! every address of the wallet, and the wallet files are the encrypted mnemonics, so another
//! local user must not read any of it. Used by `wallet` (wallet files) and `store` (SQLite: its
//! `-wal` and `-shm` files take the database file's mode, so a 0600 database is enough).

use std::fs;
use std::io;
use std::path::Path;

/// Directory mode.
pub const DIR_MODE: u32 = 0o700;
/// File mode.
pub const FILE_MODE: u32 = 0o600;

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn chmod(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn mode_of(m: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_of(_: &fs::Metadata) -> u32 {
    0
}

/// Creates `dir` and any missing parents; the directories created, and `dir` itself, are 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if !dir.is_dir() {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(DIR_MODE);
        }
        b.create(dir)?;
    }
    chmod(dir, DIR_MODE)
}

/// Creates `path` empty if it is missing, and makes it 0600 either way.
pub fn private_file(path: &Path) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(FILE_MODE);
    }
    drop(opts.open(path)?);
    chmod(path, FILE_MODE)
}

/// Makes an existing `path` 0600 (a missing one is fine).
pub fn tighten_file(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && mode_of(&m) & 0o077 != 0 => chmod(path, FILE_MODE),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// At start: creates the db root (0700) or, if it exists, tightens it, the directories in it and
/// the files in both levels (wallet files, the databases and their `-wal`/`-shm`) that others
/// can read; each path changed gets one warning line. Symlinks are left alone.
pub fn secure_root(root: &Path) -> io::Result<()> {
    let existed = root.is_dir();
    create_dir(root)?;
    if !existed {
        return Ok(());
    }
    let mut changed = Vec::new();
    tighten_tree(root, 1, &mut changed)?;
    for (path, was) in &changed {
        tracing::warn!(path = %path.display(), mode = format!("{was:o}"), "dbdir: other users could read this; made it owner-only");
    }
    Ok(())
}

fn tighten_tree(
    dir: &Path,
    depth: u32,
    changed: &mut Vec<(std::path::PathBuf, u32)>,
) -> io::Result<()> {
    let m = fs::symlink_metadata(dir)?;
    if mode_of(&m) & 0o077 != 0 {
        changed.push((dir.to_path_buf(), mode_of(&m)));
        chmod(dir, DIR_MODE)?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let m = fs::symlink_metadata(&path)?;
        if m.is_dir() && depth > 0 {
            tighten_tree(&path, depth - 1, changed)?;
        } else if m.is_file() && mode_of(&m) & 0o077 != 0 {
            changed.push((path.clone(), mode_of(&m)));
            chmod(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// The lock file in the db root that keeps a second daemon off the same dbdir.
pub const LOCK_FILE: &str = "kdfd.lock";

/// Why the db root could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock; its PID as it wrote it, if readable.
    #[error("another kdfd (pid {}) is using dbdir '{}': one daemon per dbdir", .1.as_deref().unwrap_or("unknown"), .0.display())]
    Held(std::path::PathBuf, Option<String>),
    /// The lock file cannot be opened or written.
    #[error("lock file '{}': {}", .0.display(), .1)]
    Io(std::path::PathBuf, io::Error),
}

/// Takes the exclusive lock on `<root>/kdfd.lock` (flock on unix, LockFileEx on Windows, through
/// std's `File::try_lock`) and writes our PID in it. The lock lasts as long as the returned file
/// is open, and the OS drops it when the process dies, so a crash leaves no stale lock.
pub fn lock_root(root: &Path) -> Result<fs::File, LockError> {
    use std::io::{Read, Seek, Write};
    let path = root.join(LOCK_FILE);
    let io = |e| LockError::Io(path.clone(), e);
    let mut opts = fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(FILE_MODE);
    }
    let mut f = opts.open(&path).map_err(io)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            let pid = (!pid.is_empty() && pid.len() < 20).then(|| pid.to_string());
            return Err(LockError::Held(root.to_path_buf(), pid));
        }
        Err(fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    f.set_len(0).map_err(io)?;
    f.rewind().map_err(io)?;
    writeln!(f, "{}", std::process::id()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(f)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn tightens_two_levels() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("DB");
        fs::create_dir(&root).unwrap();
        chmod(&root, 0o755).unwrap();
        let sub = root.join("abcd");
        fs::create_dir(&sub).unwrap();
        chmod(&sub, 0o775).unwrap();
        fs::write(root.join("w.json"), "{}").unwrap();
        chmod(&root.join("w.json"), 0o644).unwrap();
        fs::write(sub.join("kdfd.sqlite"), "").unwrap();
        chmod(&sub.join("kdfd.sqlite"), 0o666).unwrap();
        secure_root(&root).unwrap();
        let mode = |p: &Path| mode_of(&fs::metadata(p).unwrap());
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&root.join("w.json")), 0o600);
        assert_eq!(mode(&sub.join("kdfd.sqlite")), 0o600);
        let fresh = t.path().join("x/y");
        create_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        private_file(&fresh.join("f")).unwrap();
        assert_eq!(mode(&fresh.join("f")), 0o600);
    }

    #[test]
    fn one_lock_per_root() {
        let t = tempfile::tempdir().unwrap();
        let held = lock_root(t.path()).unwrap();
        let pid = std::process::id().to_string();
        match lock_root(t.path()) {
            Err(LockError::Held(_, Some(p))) => assert_eq!(p, pid),
            other => panic!("{other:?}"),
        }
        drop(held);
        lock_root(t.path()).expect("free again");
    }
}
