//! Process identity and snapshots. One [`snapshot`] is one scan of the process
//! table; everything that needs "who is alive" over many processes takes a
//! snapshot once and works on it. Platform code: `linux.rs` (reads /proc),
//! `other.rs` (sysinfo, for macOS and Windows).
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tag::Tag;
use crate::Result;

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(not(target_os = "linux"), path = "other.rs")]
mod sys;

mod tree;
pub use tree::Tree;

/// What we know of one live process. Two infos with the same pid but another
/// `start_time` (or another exe) are different processes: the pid was reused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// Process group id (Unix); `None` elsewhere.
    pub pgid: Option<u32>,
    /// Session id (Unix); `None` elsewhere.
    pub sid: Option<u32>,
    /// Start time in platform units (Linux: clock ticks since boot; elsewhere:
    /// seconds since the epoch): comparable between processes of one machine
    /// (which started first), coarsely outside Linux.
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
    /// What it costs: read by [`snapshot_usage`] only (`None` otherwise, and
    /// for a zombie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What one process costs, read in the same scan as its identity
/// ([`snapshot_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time it used so far, user and system, all its threads (not its
    /// children's). Linux counts in clock ticks (usually 10 ms).
    pub cpu: Duration,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// How long it has run, at the scan (Linux: to the clock tick; elsewhere: to
    /// the second).
    pub age: Duration,
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
    /// The basename of `argv[0]`, if any.
    pub fn argv0_basename(&self) -> Option<String> {
        let first = self.argv.first()?;
        let base = first.rsplit(['/', '\\']).next().unwrap_or(first);
        (!base.is_empty()).then(|| base.to_string())
    }
    /// The file name of the exe, if known.
    pub fn exe_name(&self) -> Option<String> {
        let name = self
            .exe
            .as_ref()?
            .file_name()?
            .to_string_lossy()
            .into_owned();
        // Linux marks a replaced or removed binary with " (deleted)".
        Some(name.strip_suffix(" (deleted)").unwrap_or(&name).to_string())
    }
}

/// Every live process (zombies included, flagged), in one scan.
pub fn snapshot() -> Result<Vec<ProcessInfo>> {
    sys::scan(Detail::Full)
}

/// Like [`snapshot`], but reads only what membership needs (pid, ppid, group,
/// session, start time, name, zombie state, tag): `exe`, `argv`, `uid` and
/// `user` are left empty. Cheaper, for repeated scans while stopping.
pub fn snapshot_brief() -> Result<Vec<ProcessInfo>> {
    sys::scan(Detail::Brief)
}

/// Like [`snapshot_brief`], plus what each process costs ([`ProcessInfo::usage`]:
/// CPU time, resident memory, age). On Linux these come from the `stat` file the
/// brief scan reads anyway (and one read of `/proc/uptime`); elsewhere sysinfo
/// reads them in the same refresh. See docs/benchmarks.md for what it adds.
pub fn snapshot_usage() -> Result<Vec<ProcessInfo>> {
    sys::scan(Detail::Usage)
}

/// How much of each process a scan reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Everything in [`ProcessInfo`] but `usage`.
    Full,
    /// No exe, argv, uid, user or usage.
    Brief,
    /// [`Detail::Brief`] and `usage`.
    Usage,
}

/// The pids of this process's children, running or exited and not yet reaped
/// (adopted orphans included when we are a subreaper). Cheap, for reaping often:
/// on Linux it reads only the children lists of our own threads
/// (`/proc/self/task/*/children`: a thread lists the children it spawned, and an
/// orphan adopted by a subreaper becomes the child of one of its threads); on a
/// kernel without those lists, the `stat` of every process and nothing else (no
/// environment, exe or command line). Elsewhere: one scan of the process table
/// that reads no environment.
///
/// A child that appears or goes while the lists are read may be missed (the
/// kernel promises no consistent list): the next call finds it.
pub fn children() -> Result<Vec<u32>> {
    sys::children()
}

/// One process by pid; `None` when no such process exists.
pub fn process(pid: u32) -> Result<Option<ProcessInfo>> {
    sys::process(pid)
}

/// True when `pid` is alive (not a zombie) and still has `start_time`.
/// Cheap: looks at this one pid only (Linux: one read of /proc/PID/stat).
pub fn is_same_alive(pid: u32, start_time: u64) -> bool {
    matches!(sys::liveness(pid), Some((start, false)) if start == start_time)
}

/// The command line of `pid`, where one read gives it (Linux: `/proc/PID/cmdline`);
/// `None` elsewhere (there a full [`process`] read is much dearer) or when it
/// cannot be read.
pub fn argv(pid: u32) -> Option<Vec<String>> {
    sys::argv(pid)
}

/// The timer slack of `pid` in ns (Linux: `/proc/PID/timerslack_ns`, readable for
/// our own children); `None` elsewhere or when it cannot be read. See
/// [`crate::Tag::slack_marker`].
pub fn timer_slack(pid: u32) -> Option<u64> {
    sys::timer_slack(pid)
}

/// The start time of `pid` and whether it is a zombie; `None` when there is no
/// such process. Cheap: looks at this one pid only.
pub fn liveness(pid: u32) -> Option<(u64, bool)> {
    sys::liveness(pid)
}

/// The members of a service in `table`: the descendants of `root` (and `root`),
/// every process in process group `pgid`, and every process carrying `tag`.
/// Zombies are left out. Sorted by pid, no duplicates. For many services of one
/// table, index it once ([`Tree`]).
pub fn members<'a>(
    table: &'a [ProcessInfo],
    root: Option<u32>,
    pgid: Option<u32>,
    tag: Option<&Tag>,
) -> Vec<&'a ProcessInfo> {
    Tree::new(table).members(root, pgid, tag)
}

/// The descendants of `pid` in `table`, not including `pid` (see [`Tree::new`]
/// for who counts as a child). For many lookups in one table, index it once
/// ([`Tree`]).
pub fn descendants(table: &[ProcessInfo], pid: u32) -> Vec<&ProcessInfo> {
    Tree::new(table).descendants(pid)
}

/// Our own pid and the pids of all our ancestors (up to PID 1).
pub fn self_and_ancestors() -> Vec<u32> {
    let mut out = vec![std::process::id()];
    let mut cur = std::process::id();
    while let Some(parent) = sys::parent(cur) {
        if parent == 0 || out.contains(&parent) {
            break;
        }
        out.push(parent);
        if parent == 1 {
            break;
        }
        cur = parent;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, start: u64, name: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: Some(ppid),
            start_time: start,
            name: name.into(),
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn a_process_older_than_the_one_that_reused_its_parents_pid_is_no_descendant() {
        // services.exe (started at 5) names parent 40, long gone; cmd.exe got pid
        // 40 later (started at 100) and runs ping.exe.
        let table = [
            p(56, 40, 5, "services.exe"),
            p(40, 7, 100, "cmd.exe"),
            p(428, 40, 101, "ping.exe"),
            p(192, 56, 6, "svchost.exe"),
        ];
        let found: Vec<u32> = descendants(&table, 40).iter().map(|p| p.pid).collect();
        assert_eq!(found, vec![428]);
        // Started in the same tick (coarse clocks): still a child.
        let table = [p(40, 7, 100, "cmd.exe"), p(428, 40, 100, "ping.exe")];
        assert_eq!(descendants(&table, 40).len(), 1);
    }
}
