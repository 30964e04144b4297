//! One ringmaster per state directory: an OS file lock on `<state_dir>/ringmaster.lock`
//! whose content names the owner pid. A lock left by a dead process does not block
//! (the OS released it when the process died).
//!
//! The lock is `std::fs::File::try_lock` (flock on Linux and macOS, `LockFileEx`
//! on Windows). Windows locks are mandatory, so no one else can read the locked
//! file there: the owner also writes its pid to `ringmaster.lock.pid` beside it,
//! which is read only when the lock file itself cannot be.
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, Result};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "ringmaster.lock";

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock, creating the state dir (0700) when needed.
    /// Fails with [`crate::Error::AlreadyRunning`] naming the owner's pid.
    pub fn acquire(state_dir: &Path) -> Result<InstanceLock> {
        crate::pidfile::ensure_state_dir(state_dir)?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = open_lock_file(&path, true)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::AlreadyRunning {
                    pid: wait_for_owner_pid(&path).unwrap_or(0),
                    dir: state_dir.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
        let pid = std::process::id();
        let written = (|| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{pid}")?;
            file.flush()
        })();
        written.map_err(|e| Error::io(format!("writing our pid into {}", path.display()), e))?;
        if cfg!(windows) {
            std::fs::write(side_file(&path), format!("{pid}\n"))
                .map_err(|e| Error::io(format!("writing {}", side_file(&path).display()), e))?;
        }
        Ok(InstanceLock { file, path })
    }

    /// The pid of the running owner, if the lock is held by a live process
    /// (ourselves included, when this process holds it). `None` when the lock is
    /// free, or the state dir has no lock file.
    pub fn owner(state_dir: &Path) -> Option<u32> {
        let path = state_dir.join(LOCK_FILE);
        let file = open_lock_file(&path, false).ok()?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(TryLockError::WouldBlock) => wait_for_owner_pid(&path),
            Err(TryLockError::Error(_)) => None,
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}

/// Opens the lock file read-write (creating it, mode 0600, when `create`), never
/// through a symlink on Unix.
fn open_lock_file(path: &Path, create: bool) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(create);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .map_err(|e| Error::io(format!("opening lock file {}", path.display()), e))
}

/// `<lock file>.pid`: the owner pid where the lock file cannot be read (Windows).
fn side_file(lock: &Path) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

/// The pid written in the lock file (or its side file). The owner writes it right
/// after locking, so an empty file is given a moment to fill.
fn wait_for_owner_pid(path: &Path) -> Option<u32> {
    let mut pid = None;
    crate::process::poll_until(Duration::from_secs(1), Duration::from_millis(10), || {
        pid = read_pid(path).or_else(|| read_pid(&side_file(path)));
        pid.is_some()
    });
    pid
}

fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_the_same_process_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let lock = InstanceLock::acquire(&state).expect("first lock");
        assert_eq!(lock.path(), state.join(LOCK_FILE));
        let text = std::fs::read_to_string(lock.path()).expect("read lock file");
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock locks belong to the open file: a second open in this process conflicts.
        match InstanceLock::acquire(&state) {
            Err(Error::AlreadyRunning { pid, dir }) => {
                assert_eq!(pid, std::process::id());
                assert_eq!(dir, state);
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        assert_eq!(InstanceLock::owner(&state), Some(std::process::id()));
        drop(lock);
        assert_eq!(InstanceLock::owner(&state), None);
        let again = InstanceLock::acquire(&state).expect("lock after release");
        drop(again);
    }

    #[test]
    fn no_lock_file_means_no_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(InstanceLock::owner(dir.path()), None);
        assert!(!dir.path().join(LOCK_FILE).exists());
    }
}
