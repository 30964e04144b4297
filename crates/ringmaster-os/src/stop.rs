//! Stopping a service: signal every member, wait until every member is gone (not
//! only the leader), kill what is left after the grace, report who needed it.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::process::ProcessBrief;
use crate::tag::Tag;
use crate::Result;

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
        todo!()
    }
}

/// Whose processes to stop: the descendants of `root`, the group `pgid`, and every
/// process carrying `tag`. Any of them may be absent.
#[derive(Clone, Debug, Default)]
pub struct StopTarget {
    pub root: Option<u32>,
    pub pgid: Option<u32>,
    pub tag: Option<Tag>,
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
pub fn stop(target: &StopTarget, signal: Signal, grace: Duration) -> Result<StopReport> {
    todo!()
}
