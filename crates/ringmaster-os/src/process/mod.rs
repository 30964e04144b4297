//! Process identity and snapshots. One [`snapshot`] is one scan of the process
//! table; everything that needs "who is alive" over many processes takes a
//! snapshot once and works on it. Platform code: `linux.rs` (reads /proc),
//! `other.rs` (sysinfo, for macOS and Windows).
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tag::Tag;
use crate::Result;

/// What we know of one live process. Two infos with the same pid but another
/// `start_time` (or another exe) are different processes: the pid was reused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// Process group id (Unix); `None` elsewhere.
    pub pgid: Option<u32>,
    /// Session id (Unix); `None` elsewhere.
    pub sid: Option<u32>,
    /// Start time in platform units (Linux: clock ticks since boot; elsewhere:
    /// seconds since the epoch). Only comparable with another reading of the same pid.
    pub start_time: u64,
    /// Process name as the OS reports it (Linux: comm, which a process may rename).
    pub name: String,
    pub exe: Option<PathBuf>,
    pub argv: Vec<String>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// The ringmaster tag found in its environment, if any (and readable).
    pub tag: Option<Tag>,
    /// True for a zombie (exited, not yet reaped): counts as gone.
    pub zombie: bool,
}

/// A short description for reports: pid and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessBrief {
    pub pid: u32,
    pub name: String,
}

impl std::fmt::Display for ProcessBrief {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.pid, self.name)
    }
}

impl ProcessInfo {
    /// Pid and name.
    pub fn brief(&self) -> ProcessBrief {
        ProcessBrief {
            pid: self.pid,
            name: self.name.clone(),
        }
    }
    /// The basename of argv[0], if any.
    pub fn argv0_basename(&self) -> Option<String> {
        todo!()
    }
    /// The file name of the exe, if known.
    pub fn exe_name(&self) -> Option<String> {
        todo!()
    }
}

/// Every live process (zombies included, flagged), in one scan.
pub fn snapshot() -> Result<Vec<ProcessInfo>> {
    todo!()
}

/// One process by pid; `None` when no such process exists.
pub fn process(pid: u32) -> Result<Option<ProcessInfo>> {
    todo!()
}

/// True when `pid` is alive (not a zombie) and still has `start_time`.
pub fn is_same_alive(pid: u32, start_time: u64) -> bool {
    todo!()
}

/// The members of a service in `table`: the descendants of `root` (and `root`),
/// every process in process group `pgid`, and every process carrying `tag`.
/// Zombies are left out. Sorted by pid, no duplicates.
pub fn members<'a>(
    table: &'a [ProcessInfo],
    root: Option<u32>,
    pgid: Option<u32>,
    tag: Option<&Tag>,
) -> Vec<&'a ProcessInfo> {
    todo!()
}

/// The descendants of `pid` in `table`, not including `pid`.
pub fn descendants(table: &[ProcessInfo], pid: u32) -> Vec<&ProcessInfo> {
    todo!()
}

/// Our own pid and the pids of all our ancestors (up to PID 1).
pub fn self_and_ancestors() -> Vec<u32> {
    todo!()
}

/// Polls `cond` every `every` until it is true or `timeout` passes; returns whether it became true.
pub fn poll_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(every);
    }
}
