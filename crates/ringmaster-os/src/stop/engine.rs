//! The one thread that runs every stop of the process. A stop is a [`Job`]: its
//! members found in a scan and signalled, then its known pids polled every
//! [`POLL_EVERY`] and the table scanned again every [`RESCAN_EVERY`] for members
//! that appeared, until all are gone (confirmed by a scan), or its grace ends (then
//! the kill, and [`KILL_WAIT`] more). Each turn of the loop polls every job's pids
//! and takes at most one scan, shared by every job that needs one, so many stops at
//! once cost what one costs plus their pids. The thread starts with the first stop
//! and ends after [`IDLE_EXIT`] without one.
use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{sys, target_members, Signal, StopReport, StopTarget};
use super::{KILL_WAIT, POLL_EVERY, RESCAN_EVERY};
use crate::process::{self, ProcessBrief, Tree};
use crate::{Error, Result};

/// How long the thread waits for a stop before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Where new jobs go: the running thread's end of the channel, if it runs.
static ENGINE: Mutex<Option<Sender<Job>>> = Mutex::new(None);

/// What a job's caller gets once it is done.
pub(super) type Reply = Box<dyn FnOnce(Result<StopReport>) + Send>;

/// The error of a stop whose thread ended before answering (it panicked).
pub(super) fn ended() -> Error {
    Error::io(
        "stopping",
        std::io::Error::other("the thread running the stops ended"),
    )
}

/// Hands `job` to the thread, starting it when none runs.
pub(super) fn submit(job: Job) {
    let mut engine = ENGINE.lock().unwrap_or_else(PoisonError::into_inner);
    let job = match engine.as_ref() {
        Some(tx) => match tx.send(job) {
            Ok(()) => return,
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (tx, rx) = mpsc::channel();
    let started = std::thread::Builder::new()
        .name("ringmaster-stop".into())
        .spawn(move || run(rx));
    match started {
        Ok(_) => {
            // The thread holds the receiver: this send cannot fail.
            let _ = tx.send(job);
            *engine = Some(tx);
        }
        Err(e) => (job.reply)(Err(Error::io("starting the stop thread", e))),
    }
}

/// The thread's loop.
fn run(rx: Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut fresh: Vec<Job> = Vec::new();
    loop {
        if jobs.is_empty() {
            match rx.recv_timeout(IDLE_EXIT) {
                Ok(job) => fresh.push(job),
                Err(RecvTimeoutError::Timeout) => {
                    // Under the lock no job can be sent: end unless one came.
                    let mut engine = ENGINE.lock().unwrap_or_else(PoisonError::into_inner);
                    fresh.extend(rx.try_iter());
                    if fresh.is_empty() {
                        *engine = None;
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        fresh.extend(rx.try_iter());
        if !fresh.is_empty() {
            begin(&mut fresh, &mut jobs);
        }
        turn(&mut jobs);
        if !jobs.is_empty() {
            // The pause between turns; a new stop ends it early.
            if let Ok(job) = rx.recv_timeout(POLL_EVERY) {
                fresh.push(job);
            }
        }
    }
}

/// Finds the members of the `fresh` jobs in one scan and signals them.
fn begin(fresh: &mut Vec<Job>, jobs: &mut Vec<Job>) {
    match process::snapshot_brief() {
        Ok(table) => {
            let tree = Tree::new(&table);
            // Read here, not by the caller: an actor's thread does no file I/O.
            let mut protected: HashSet<u32> = process::self_and_ancestors().into_iter().collect();
            protected.extend([0, 1]);
            for mut job in fresh.drain(..) {
                job.stopper.protected = protected.clone();
                job.last_scan = Instant::now();
                if !job.stopper.silent {
                    job.stopper.send_group(&tree);
                }
                job.stopper.adopt_new(&tree);
                jobs.push(job);
            }
        }
        Err(e) => {
            let why = e.to_string();
            for job in fresh.drain(..) {
                (job.reply)(Err(Error::io(
                    "scanning the process table",
                    std::io::Error::other(why.clone()),
                )));
            }
        }
    }
}

/// One turn: polls every job's pids, takes one scan when a job needs one, and
/// answers the jobs that are done.
fn turn(jobs: &mut Vec<Job>) {
    for job in jobs.iter_mut() {
        job.stopper.poll();
    }
    let now = Instant::now();
    if !jobs.iter().any(|j| j.due(now)) {
        return;
    }
    let table = process::snapshot_brief().ok();
    let tree = table.as_deref().map(Tree::new);
    let mut i = 0;
    while i < jobs.len() {
        if jobs[i].due(now) && jobs[i].step(tree.as_ref(), now) {
            jobs.swap_remove(i).finish();
        } else {
            i += 1;
        }
    }
}

/// Where a job is.
enum Phase {
    /// Waiting for the members to go, until the grace ends.
    Grace,
    /// Killed what was left; waiting for the kill to take effect.
    Killed { until: Instant },
}

/// One stop (or wait) on the thread.
pub(super) struct Job {
    stopper: Stopper,
    /// The end of the grace: then the kill (a stop) or the end (a wait).
    grace_end: Instant,
    phase: Phase,
    last_scan: Instant,
    started: Instant,
    reply: Reply,
}

impl Job {
    /// A stop of `target` with `signal`, the kill after `grace`.
    pub(super) fn stop(target: StopTarget, signal: Signal, grace: Duration, reply: Reply) -> Job {
        Job::new(Stopper::new(target, signal), grace, reply)
    }

    /// A wait until the members of `target` are gone or `until` passes, sending
    /// nothing; its report's `survivors` are the members still alive then.
    pub(super) fn wait(target: StopTarget, until: Instant, reply: Reply) -> Job {
        let mut stopper = Stopper::new(target, Signal::Term);
        stopper.silent = true;
        Job::new(
            stopper,
            until.saturating_duration_since(Instant::now()),
            reply,
        )
    }

    fn new(stopper: Stopper, grace: Duration, reply: Reply) -> Job {
        let started = Instant::now();
        Job {
            stopper,
            grace_end: started + grace,
            phase: Phase::Grace,
            last_scan: started,
            started,
            reply,
        }
    }

    fn end(&self) -> Instant {
        match self.phase {
            Phase::Grace => self.grace_end,
            Phase::Killed { until } => until,
        }
    }

    /// It needs this turn's scan: its known members are gone (confirm), a rescan
    /// is due, or its phase ends.
    fn due(&self, now: Instant) -> bool {
        self.stopper.alive.is_empty()
            || now.duration_since(self.last_scan) >= RESCAN_EVERY
            || now >= self.end()
    }

    /// Takes this turn's scan (`None` when it failed); true when the job is done.
    fn step(&mut self, tree: Option<&Tree>, now: Instant) -> bool {
        if self.stopper.alive.is_empty() || now.duration_since(self.last_scan) >= RESCAN_EVERY {
            let fresh = match tree {
                Some(tree) => {
                    self.last_scan = now;
                    self.stopper.adopt_new(tree)
                }
                None => 0,
            };
            if self.stopper.alive.is_empty() && fresh == 0 {
                return true;
            }
        }
        if now < self.end() {
            return false;
        }
        match self.phase {
            Phase::Grace if !self.stopper.silent => {
                if self.stopper.signal != Signal::Kill {
                    let empty = Tree::new(&[]);
                    self.stopper.escalate(tree.unwrap_or(&empty));
                }
                self.phase = Phase::Killed {
                    until: now + KILL_WAIT,
                };
                false
            }
            _ => true,
        }
    }

    /// Answers the caller.
    fn finish(self) {
        let mut report = self.stopper.report;
        report.survivors = self
            .stopper
            .alive
            .values()
            .map(|t| t.brief.clone())
            .collect();
        report.elapsed = self.started.elapsed();
        if !self.stopper.silent {
            tracing::debug!(
                signal = %self.stopper.signal,
                signalled = report.signalled.len(),
                killed = report.killed.len(),
                survivors = report.survivors.len(),
                elapsed_ms = report.elapsed.as_millis() as u64,
                "stop finished"
            );
        }
        (self.reply)(Ok(report));
    }
}

/// A member being waited for.
struct Tracked {
    start_time: u64,
    brief: ProcessBrief,
}

/// Who a stop signals and waits for, and what it did.
struct Stopper {
    target: StopTarget,
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
    /// Only waits: members are adopted but get no signal ([`super::wait_gone`]).
    silent: bool,
    report: StopReport,
}

impl Stopper {
    /// Its protected pids are filled in when the thread takes it up ([`begin`]).
    fn new(target: StopTarget, signal: Signal) -> Self {
        Stopper {
            target,
            signal,
            protected: HashSet::new(),
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

    /// Adds every member in `tree` not known yet (the target's members, and the
    /// descendants of known members) and sends it the current signal. Returns how
    /// many were new.
    fn adopt_new(&mut self, tree: &Tree) -> usize {
        let mut found = target_members(tree, &self.target);
        for &pid in self.alive.keys() {
            for p in tree.descendants(pid) {
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

    /// Past the grace: kills every member still alive (`tree` is of a scan taken
    /// after the last poll), the group included, and whatever `tree` shows new.
    fn escalate(&mut self, tree: &Tree) {
        self.escalated = true;
        let left: Vec<(u32, u64)> = self
            .alive
            .iter()
            .map(|(pid, t)| (*pid, t.start_time))
            .collect();
        self.report
            .killed
            .extend(self.alive.values().map(|t| t.brief.clone()));
        self.send_group(tree);
        sys::send(&left, Signal::Kill);
        self.adopt_new(tree);
    }

    /// Sends the current signal to the target's process group, unless the group
    /// holds a protected process, or no live process at all (its id could then
    /// belong to someone else).
    fn send_group(&self, tree: &Tree) {
        let Some(pgid) = self.target.pgid else {
            return;
        };
        if self.protected.contains(&pgid) {
            return;
        }
        if sys::group_addressable(tree, pgid, &self.protected) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_stops_at_once_all_answer() {
        let answers: Vec<_> = (0..50)
            .map(|_| {
                let (tx, rx) = mpsc::channel();
                submit(Job::stop(
                    StopTarget::default(),
                    Signal::Term,
                    Duration::from_secs(1),
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                ));
                rx
            })
            .collect();
        for rx in answers {
            let report = rx.recv().expect("an answer").expect("a report");
            assert!(report.signalled.is_empty() && report.clean());
        }
    }
}
