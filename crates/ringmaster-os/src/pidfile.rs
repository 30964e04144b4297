//! PID files that record identity (pid, start time, exe, service, tag, owner pid),
//! written atomically (temp file + rename), never read or written through a
//! symlink. A file whose identity does not match the live process is stale: it is
//! removed and its pid is never signalled.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process::ProcessInfo;
use crate::Result;

/// The content of a PID file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    pub pid: u32,
    pub start_time: u64,
    pub exe: Option<PathBuf>,
    pub service: String,
    /// The [`crate::Tag::env_value`] the process was spawned with.
    pub tag: String,
    /// The ringmaster that wrote it.
    pub owner_pid: u32,
}

/// What a PID file says about the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidFileState {
    /// No file.
    Missing,
    /// The recorded process is alive and is the same process.
    Live(PidRecord, ProcessInfo),
    /// The file was stale and has been removed; the reason says why.
    Stale(String),
}

/// Creates `dir` (and parents) with mode 0700 on Unix when missing.
pub fn ensure_state_dir(dir: &Path) -> Result<()> {
    todo!()
}

/// Writes `record` to `path` atomically; refuses when `path` is a symlink.
pub fn write_pid_file(path: &Path, record: &PidRecord) -> Result<()> {
    todo!()
}

/// Reads `path`; refuses a symlink; garbage is an error (the file is left alone).
pub fn read_pid_file(path: &Path) -> Result<PidFileState> {
    todo!()
}

/// Removes `path` if it is a regular file (never through a symlink).
pub fn remove_pid_file(path: &Path) -> Result<()> {
    todo!()
}
