//! Spawning a service's command through the platform shell (`sh -c` / `cmd /C`),
//! in its own session and process group (a job object on Windows), with the tag
//! in its environment and stdout/stderr piped. On Linux, the child subreaper.
use std::path::PathBuf;

use process_wrap::tokio::ChildWrapper;
use tokio::process::{ChildStderr, ChildStdout};

use crate::tag::Tag;
use crate::Result;

/// What to spawn.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    /// Run by the platform shell.
    pub command: String,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub tag: Tag,
}

/// A spawned service root. `pgid` is its process group (Unix).
#[derive(Debug)]
pub struct Spawned {
    pub child: Box<dyn ChildWrapper>,
    pub pid: u32,
    pub pgid: Option<u32>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// Spawns `spec`. Must be called inside a tokio runtime (actix-rt is one).
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned> {
    todo!()
}

/// Linux: makes this process a child subreaper, so re-parented descendants stay
/// visible and can be reaped. Returns `Ok(false)` on platforms without one.
pub fn become_subreaper() -> Result<bool> {
    todo!()
}

/// Reaps exited processes that were re-parented to us (subreaper), by pid and
/// never with `waitpid(-1)`: pids in `exclude` (children tokio waits on) are left
/// alone. Returns the reaped pids.
pub fn reap_adopted(exclude: &[u32]) -> Vec<u32> {
    todo!()
}
