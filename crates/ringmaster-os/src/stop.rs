//! Stopping a service: signal every member, wait until every member is gone (not
//! only the leader), kill what is left after the grace, report who needed it.
//! Platform code (how a signal is sent): `stop/unix.rs`, `stop/windows.rs`; the
//! thread that runs every stop: `stop/engine.rs`.
//!
//! # How a stop runs
//! One scan finds the members; each gets the signal, and so does the process
//! group. Then the known pids are polled every [`POLL_EVERY`] with a cheap per-pid
//! check (exists, not a zombie, same start time: a reused pid counts as gone), and
//! every [`RESCAN_EVERY`] a new scan looks for members that appeared since (a
//! process forking while it stops; descendants of known members count too). As
//! soon as every known pid is gone and a confirming scan finds nobody new, the stop
//! returns. After the grace, whatever is left (re-scanned first) is killed, and the
//! stop waits up to [`KILL_WAIT`] more before naming the survivors.
//!
//! A group leader that exits early ends nothing: every pid is tracked on its own.
//! Zombies count as gone; zombies that were re-parented to us (subreaper) are
//! reaped by pid, except the target's root, which its owner (tokio) waits on.
//! Never signalled, whatever the target says: PID 0 and 1, this process and its
//! ancestors, and a process group holding any of them.
//!
//! All the stops of the process run on one thread, which polls each one's pids in
//! turn and takes one scan for all the stops that need one. A cascade level of 500
//! services stopping at once used to be 500 threads each scanning the table (and
//! the System thread waiting on the thread pool's lock to start them).
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::process::{self, ProcessBrief, ProcessInfo, Tree};
use crate::tag::Tag;
use crate::Result;

#[cfg_attr(unix, path = "stop/unix.rs")]
#[cfg_attr(windows, path = "stop/windows.rs")]
mod sys;

mod engine;

#[cfg(any(windows, test))]
mod console;

#[cfg(windows)]
pub(crate) use sys::has_console;

/// How often the known pids are checked while waiting.
pub const POLL_EVERY: Duration = Duration::from_millis(5);
/// How often the process table is scanned again for new members while waiting.
pub const RESCAN_EVERY: Duration = Duration::from_millis(100);
/// How long to wait for the kill to take effect before naming survivors.
pub const KILL_WAIT: Duration = Duration::from_secs(2);

/// A stop signal. On Windows every graceful signal means CTRL_BREAK to the
/// service's console process group, then "ask to close" (`taskkill /T`, for
/// windowed programs); `Kill` means terminate. Windows cannot send CTRL_C to one
/// process group, so `INT` is CTRL_BREAK there too (`stop/console.rs`).
/// `Break` names CTRL_BREAK for configurations written for Windows; on Unix it
/// is SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    Term,
    Int,
    Hup,
    Quit,
    Kill,
    Usr1,
    Usr2,
    Break,
}

impl std::str::FromStr for Signal {
    type Err = String;
    /// Accepts `TERM`, `SIGTERM`, `term`, and so on.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Ok(match name {
            "TERM" => Signal::Term,
            "INT" => Signal::Int,
            "HUP" => Signal::Hup,
            "QUIT" => Signal::Quit,
            "KILL" => Signal::Kill,
            "USR1" => Signal::Usr1,
            "USR2" => Signal::Usr2,
            "BREAK" => Signal::Break,
            _ => {
                return Err(format!(
                    "unknown signal {s:?}; expected one of TERM, INT, HUP, QUIT, KILL, USR1, USR2, BREAK"
                ))
            }
        })
    }
}

impl std::fmt::Display for Signal {
    /// The name without `SIG`: `TERM`, `KILL`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Break => "BREAK",
        })
    }
}

/// Whose processes to stop: the descendants of `root`, the group `pgid`, every
/// process carrying `tag`, and each of `also` (pid and start time: a process whose
/// environment no longer shows the tag, such as a daemon that wrote its title over
/// it) with its descendants. Any of them may be absent.
#[derive(Clone, Debug, Default)]
pub struct StopTarget {
    pub root: Option<u32>,
    pub pgid: Option<u32>,
    pub tag: Option<Tag>,
    /// Members known by identity: only the process with that start time counts.
    pub also: Vec<(u32, u64)>,
}

/// What a stop did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StopReport {
    /// From the first signal until every member was gone (or until giving up).
    pub elapsed: Duration,
    /// Everyone who got the stop signal.
    pub signalled: Vec<ProcessBrief>,
    /// Who was still alive after the grace and was killed.
    pub killed: Vec<ProcessBrief>,
    /// Who is still alive after the kill (should be empty).
    pub survivors: Vec<ProcessBrief>,
}

impl StopReport {
    /// True when nothing survived.
    pub fn clean(&self) -> bool {
        self.survivors.is_empty()
    }
}

/// Stops every member of `target`: sends `signal` to each (and to the group),
/// re-scans for new members (a process forking while it stops), waits until all
/// are gone, sends kill to whatever remains after `grace`, and waits a short while
/// more for the kill to take effect. Blocking: call it off actor threads (or use
/// [`stop_async`]). Processes that are not ours are not in the target, so they are
/// never signalled.
///
/// When `root` was spawned by this process, pass it: it is then left for its owner
/// to reap. On Windows the graceful signal is `taskkill /T` and the kill
/// `taskkill /T /F` plus a terminate per member; the job object itself is
/// terminated by whoever owns the spawned child wrapper (`start_kill`).
///
/// Every stop of the process runs on one thread (`stop/engine.rs`): stops at the same
/// time share its scans of the process table, and none holds a thread of its own.
pub fn stop(target: &StopTarget, signal: Signal, grace: Duration) -> Result<StopReport> {
    run_waiting(|reply| engine::Job::stop(target.clone(), signal, grace, reply))
}

/// Hands the job `make` builds to the stop thread and waits for its report.
fn run_waiting(make: impl FnOnce(engine::Reply) -> engine::Job) -> Result<StopReport> {
    let (tx, rx) = std::sync::mpsc::channel();
    engine::submit(make(Box::new(move |r| {
        let _ = tx.send(r);
    })));
    rx.recv().unwrap_or_else(|_| Err(engine::ended()))
}

/// [`stop`] for async code: the stop starts when this is called and the future
/// waits for its report without holding a thread.
pub fn stop_async(
    target: StopTarget,
    signal: Signal,
    grace: Duration,
) -> impl std::future::Future<Output = Result<StopReport>> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine::submit(engine::Job::stop(
        target,
        signal,
        grace,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    ));
    async move { rx.await.unwrap_or_else(|_| Err(engine::ended())) }
}

/// The live members of `target` now (one scan), protected processes left out.
pub fn alive_members(target: &StopTarget) -> Result<Vec<ProcessBrief>> {
    let table = process::snapshot_brief()?;
    let protected: HashSet<u32> = process::self_and_ancestors().into_iter().collect();
    Ok(target_members(&Tree::new(&table), target)
        .into_values()
        .filter(|p| !protected.contains(&p.pid) && p.pid > 1)
        .map(ProcessInfo::brief)
        .collect())
}

/// The live members of `target` in `tree` ([`Tree::members_with`]).
fn target_members<'t>(tree: &Tree<'t>, t: &StopTarget) -> BTreeMap<u32, &'t ProcessInfo> {
    tree.members_with(t.root, t.pgid, t.tag.as_ref(), &t.also)
}

/// Waits, sending no signal, until every member of `target` is gone or `until`
/// passes: the known pids are checked every [`POLL_EVERY`], the table scanned
/// again every [`RESCAN_EVERY`] (members that appear are waited for too). True
/// when they are all gone (confirmed by a scan). Blocking: call it off actor
/// threads. Used after a service's stop command, before any signal.
pub fn wait_gone(target: &StopTarget, until: Instant) -> Result<bool> {
    let report = run_waiting(|reply| engine::Job::wait(target.clone(), until, reply))?;
    Ok(report.survivors.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_parse_in_any_spelling() {
        for s in ["TERM", "SIGTERM", "term", "sigterm", " Term "] {
            assert_eq!(s.parse::<Signal>(), Ok(Signal::Term), "{s}");
        }
        assert_eq!("SIGKILL".parse::<Signal>(), Ok(Signal::Kill));
        assert_eq!("usr2".parse::<Signal>(), Ok(Signal::Usr2));
        assert_eq!("SIGBREAK".parse::<Signal>(), Ok(Signal::Break));
        assert!("SIGFOO".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
        for sig in [
            Signal::Term,
            Signal::Int,
            Signal::Hup,
            Signal::Quit,
            Signal::Kill,
            Signal::Usr1,
            Signal::Usr2,
            Signal::Break,
        ] {
            assert_eq!(sig.to_string().parse::<Signal>(), Ok(sig));
        }
    }

    #[test]
    fn an_empty_target_stops_nothing() {
        let report =
            stop(&StopTarget::default(), Signal::Term, Duration::from_secs(1)).expect("stop runs");
        assert!(report.signalled.is_empty() && report.killed.is_empty() && report.clean());
    }
}
