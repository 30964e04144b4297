//! One ringmaster per state directory: an OS file lock on `<state_dir>/ringmaster.lock`
//! whose content names the owner pid. A lock left by a dead process does not block
//! (the OS released it when the process died).
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::Result;

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
        todo!()
    }
    /// The pid of the running owner, if the lock is held by a live process.
    pub fn owner(state_dir: &Path) -> Option<u32> {
        todo!()
    }
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
