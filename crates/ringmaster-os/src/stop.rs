//! Stopping a service: signal every member, wait until every member is gone (not
//! only the leader), kill what is left after the grace, report who needed it.
//! Platform code (how a signal is sent): `stop/unix.rs`, `stop/windows.rs`.
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
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::process::{self, ProcessBrief, ProcessInfo};
use crate::tag::Tag;
use crate::Result;

#[cfg_attr(unix, path = "stop/unix.rs")]
#[cfg_attr(windows, path = "stop/windows.rs")]
mod sys;

/// How often the known pids are checked while waiting.
pub const POLL_EVERY: Duration = Duration::from_millis(5);
/// How often the process table is scanned again for new members while waiting.
pub const RESCAN_EVERY: Duration = Duration::from_millis(100);
/// How long to wait for the kill to take effect before naming survivors.
pub const KILL_WAIT: Duration = Duration::from_secs(2);

/// A stop signal. On Windows every graceful signal means "ask to close"
/// (`taskkill /T`), and `Kill` means terminate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    Term,
    Int,
    Hup,
    Quit,
    Kill,
    Usr1,
    Usr2,
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
            _ => {
                return Err(format!(
                    "unknown signal {s:?}; expected one of TERM, INT, HUP, QUIT, KILL, USR1, USR2"
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
/// more for the kill to take effect. Blocking: call it off actor threads.
/// Processes that are not ours are not in the target, so they are never signalled.
///
/// When `root` was spawned by this process, pass it: it is then left for its owner
/// to reap. On Windows the graceful signal is `taskkill /T` and the kill
/// `taskkill /T /F` plus a terminate per member; the job object itself is
/// terminated by whoever owns the spawned child wrapper (`start_kill`).
pub fn stop(target: &StopTarget, signal: Signal, grace: Duration) -> Result<StopReport> {
    let start = Instant::now();
    let mut run = Stopper::new(target, signal);
    let table = process::snapshot_brief()?;
    run.send_group(&table);
    run.adopt_new(&table);
    run.wait(start + grace);
    if !run.alive.is_empty() {
        if signal != Signal::Kill {
            run.escalate();
        }
        run.wait(Instant::now() + KILL_WAIT);
    }
    run.report.survivors = run.alive.values().map(|t| t.brief.clone()).collect();
    run.report.elapsed = start.elapsed();
    tracing::debug!(
        %signal,
        signalled = run.report.signalled.len(),
        killed = run.report.killed.len(),
        survivors = run.report.survivors.len(),
        elapsed_ms = run.report.elapsed.as_millis() as u64,
        "stop finished"
    );
    Ok(run.report)
}

/// The live members of `target` now (one scan), protected processes left out.
pub fn alive_members(target: &StopTarget) -> Result<Vec<ProcessBrief>> {
    let table = process::snapshot_brief()?;
    let protected: HashSet<u32> = process::self_and_ancestors().into_iter().collect();
    Ok(target_members(&table, target)
        .into_values()
        .filter(|p| !protected.contains(&p.pid) && p.pid > 1)
        .map(ProcessInfo::brief)
        .collect())
}

/// The live members of `target` in `table`: [`process::members`] of its root,
/// group and tag, and each of `also` that still has its start time, with its
/// descendants.
fn target_members<'t>(table: &'t [ProcessInfo], t: &StopTarget) -> BTreeMap<u32, &'t ProcessInfo> {
    let mut found: BTreeMap<u32, &ProcessInfo> =
        process::members(table, t.root, t.pgid, t.tag.as_ref())
            .into_iter()
            .map(|p| (p.pid, p))
            .collect();
    for &(pid, start) in &t.also {
        if let Some(p) = table.iter().find(|p| p.pid == pid && p.start_time == start) {
            if !p.zombie {
                found.insert(p.pid, p);
            }
            for d in process::descendants(table, pid) {
                if !d.zombie {
                    found.insert(d.pid, d);
                }
            }
        }
    }
    found
}

/// Waits, sending no signal, until every member of `target` is gone or `until`
/// passes: the known pids are checked every [`POLL_EVERY`], the table scanned
/// again every [`RESCAN_EVERY`] (members that appear are waited for too). True
/// when they are all gone (confirmed by a scan). Blocking: call it off actor
/// threads. Used after a service's stop command, before any signal.
pub fn wait_gone(target: &StopTarget, until: Instant) -> Result<bool> {
    let mut run = Stopper::new(target, Signal::Term);
    run.silent = true;
    let table = process::snapshot_brief()?;
    run.adopt_new(&table);
    run.wait(until);
    Ok(run.alive.is_empty())
}

/// A member being waited for.
struct Tracked {
    start_time: u64,
    brief: ProcessBrief,
}

/// The state of one [`stop`].
struct Stopper<'a> {
    target: &'a StopTarget,
    /// The graceful signal.
    signal: Signal,
    /// Never signalled: 0, 1, ourselves, our ancestors.
    protected: HashSet<u32>,
    /// Members not yet gone, by pid.
    alive: BTreeMap<u32, Tracked>,
    /// Members seen gone (pid, start time): a later scan does not take them back.
    gone: HashSet<(u32, u64)>,
    /// Past the grace: everything gets the kill.
    escalated: bool,
    /// Only waits: members are adopted but get no signal ([`wait_gone`]).
    silent: bool,
    report: StopReport,
}

impl<'a> Stopper<'a> {
    fn new(target: &'a StopTarget, signal: Signal) -> Self {
        let mut protected: HashSet<u32> = process::self_and_ancestors().into_iter().collect();
        protected.extend([0, 1]);
        Stopper {
            target,
            signal,
            protected,
            alive: BTreeMap::new(),
            gone: HashSet::new(),
            escalated: false,
            silent: false,
            report: StopReport::default(),
        }
    }

    /// The signal for now: the graceful one, or the kill once escalated.
    fn current_signal(&self) -> Signal {
        if self.escalated {
            Signal::Kill
        } else {
            self.signal
        }
    }

    /// Adds every member in `table` not known yet (the target's members, and the
    /// descendants of known members) and sends it the current signal. Returns how
    /// many were new.
    fn adopt_new(&mut self, table: &[ProcessInfo]) -> usize {
        let mut found = target_members(table, self.target);
        for &pid in self.alive.keys() {
            for p in process::descendants(table, pid) {
                if !p.zombie {
                    found.insert(p.pid, p);
                }
            }
        }
        let mut fresh = Vec::new();
        for (pid, p) in found {
            let known = self
                .alive
                .get(&pid)
                .is_some_and(|k| k.start_time == p.start_time);
            if known || self.protected.contains(&pid) || self.gone.contains(&(pid, p.start_time)) {
                continue;
            }
            let brief = p.brief();
            if self.silent {
                // Waited for, not signalled: no entry in the report.
            } else if self.escalated {
                self.report.killed.push(brief.clone());
            } else {
                self.report.signalled.push(brief.clone());
            }
            self.alive.insert(
                pid,
                Tracked {
                    start_time: p.start_time,
                    brief,
                },
            );
            fresh.push((pid, p.start_time));
        }
        if !self.silent {
            sys::send(&fresh, self.current_signal());
        }
        fresh.len()
    }

    /// Past the grace: re-scans, then kills every member still alive, the group
    /// included.
    fn escalate(&mut self) {
        let table = process::snapshot_brief().unwrap_or_default();
        self.poll();
        self.escalated = true;
        let left: Vec<(u32, u64)> = self
            .alive
            .iter()
            .map(|(pid, t)| (*pid, t.start_time))
            .collect();
        self.report
            .killed
            .extend(self.alive.values().map(|t| t.brief.clone()));
        self.send_group(&table);
        sys::send(&left, Signal::Kill);
        self.adopt_new(&table);
    }

    /// Sends the current signal to the target's process group, unless the group
    /// holds a protected process, or no live process at all (its id could then
    /// belong to someone else).
    fn send_group(&self, table: &[ProcessInfo]) {
        let Some(pgid) = self.target.pgid else {
            return;
        };
        if self.protected.contains(&pgid) {
            return;
        }
        let group: Vec<&ProcessInfo> = table.iter().filter(|p| p.pgid == Some(pgid)).collect();
        let holds_live = group.iter().any(|p| !p.zombie);
        let holds_protected = group.iter().any(|p| self.protected.contains(&p.pid));
        if holds_live && !holds_protected {
            sys::send_group(pgid, self.current_signal());
        }
    }

    /// Drops the known pids that are gone; reaps zombies re-parented to us.
    fn poll(&mut self) {
        let root = self.target.root;
        let mut gone = Vec::new();
        for (&pid, tracked) in &self.alive {
            match process::liveness(pid) {
                Some((start, false)) if start == tracked.start_time => {}
                Some((start, true)) if start == tracked.start_time => {
                    if Some(pid) != root {
                        crate::spawn::reap_pid(pid);
                    }
                    gone.push((pid, tracked.start_time));
                }
                _ => gone.push((pid, tracked.start_time)),
            }
        }
        for (pid, start) in gone {
            self.alive.remove(&pid);
            self.gone.insert((pid, start));
        }
    }

    /// Polls until every member is gone (confirmed by a scan that finds nobody
    /// new) or `until` passes; scans for new members every [`RESCAN_EVERY`].
    fn wait(&mut self, until: Instant) {
        let mut last_scan = Instant::now();
        loop {
            self.poll();
            if self.alive.is_empty() || last_scan.elapsed() >= RESCAN_EVERY {
                last_scan = Instant::now();
                let fresh = match process::snapshot_brief() {
                    Ok(table) => self.adopt_new(&table),
                    Err(_) => 0,
                };
                if self.alive.is_empty() && fresh == 0 {
                    return;
                }
            }
            if Instant::now() >= until {
                return;
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
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
