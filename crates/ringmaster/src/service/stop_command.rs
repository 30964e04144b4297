//! A service's stop command (`stop = { command = "..." }`): run first when a
//! running service is stopped, before any signal, so that a server can be asked to
//! shut down its own way (`redis-cli -p 6379 shutdown`, `nginx -s quit`,
//! `pg_ctl stop -m fast`).
//!
//! # How the time is split
//! The stop has two phases, each bounded by the service's stop timeout and by what
//! is left of the cascade's deadline:
//! 1. **The command** runs with the service's environment, workdir and tag, for at
//!    most the stop's grace (the stop timeout, cut to what is left of the
//!    deadline). When it exits with 0, the service gets the rest of that same time
//!    to go on its own (a command that only *asks*, such as `nginx -s quit`,
//!    returns before the server is gone); nothing is signalled meanwhile. A command
//!    that fails (another status, or it cannot be spawned) ends this phase at
//!    once. One still running when the time is up is killed with its own tree.
//! 2. **The signals**: whatever of the service is left gets the stop signal, and
//!    the kill after the stop timeout cut to what is left of the deadline
//!    ([`ringmaster_os::stop`], as for a service without a stop command).
//!
//! The command runs only when the service has a live process (a service that
//! already exited has nothing to ask), and not when the deadline has passed
//! (everything is killed at once then). Leftovers of an earlier run, the forced
//! sweep and `down` without a running instance use signals only.
use std::time::{Duration, Instant};

use ringmaster_os::{Signal, SpawnSpec, StopTarget, Tag};

use super::OwnChild;
use crate::janitor::blocking_now;
use crate::logs::OutputSink;
use crate::messages::{StopCommandOutcome, StopCommandReport, Stream};

/// What the stop command needs to know about its service.
pub(super) struct StopCommand {
    pub service: String,
    pub command: String,
    pub workdir: std::path::PathBuf,
    pub env: Vec<(String, String)>,
    pub tag: Tag,
    /// Where its output goes: the service's log and log subscribers.
    pub sink: OutputSink,
    /// The service's processes (root, group, tag).
    pub target: StopTarget,
}

impl StopCommand {
    /// Phase 1 (see the module documentation): runs the command for at most
    /// `budget`, then, when it succeeded, waits for the service's processes to go
    /// until `budget` is over. `None` when it did not run: nothing of the
    /// service was alive, or `budget` is zero.
    pub(super) async fn run(self, budget: Duration) -> Option<StopCommandReport> {
        if budget.is_zero() {
            return None;
        }
        let probe = self.target.clone();
        // Unknown (the scan failed): run it anyway, it is the service's own way.
        if let Ok(Ok(alive)) = blocking_now(move || ringmaster_os::alive_members(&probe)).await {
            if alive.is_empty() {
                return None;
            }
        }
        let name = self.service.clone();
        let started = Instant::now();
        let end = started + budget;
        tracing::info!(service = %name, "stop command: `{}`", self.command);
        let outcome = self.spawn_and_wait(budget).await;
        let elapsed = started.elapsed();
        let target = self.target.clone();
        let ok = outcome == StopCommandOutcome::Exited { code: Some(0) };
        // After a success the service has the rest of the budget to go by itself;
        // otherwise one look says whether anything is left.
        let gone = blocking_now(move || {
            if ok {
                ringmaster_os::wait_gone(&target, end)
            } else {
                ringmaster_os::alive_members(&target).map(|a| a.is_empty())
            }
        })
        .await;
        let report = StopCommandReport {
            command: self.command,
            outcome,
            elapsed,
            stopped_service: matches!(gone, Ok(Ok(true))),
        };
        if report.stopped_service {
            tracing::info!(service = %name, "{report}; the service is gone");
        } else if ok {
            tracing::info!(service = %name, "{report}; the service is still running: the stop signal follows");
        } else {
            tracing::warn!(service = %name, "{report}; the stop signal follows");
        }
        Some(report)
    }

    /// Spawns the command and waits for it at most `budget`; past it, kills the
    /// command's own tree (its root and process group, not the service).
    async fn spawn_and_wait(&self, budget: Duration) -> StopCommandOutcome {
        let spec = SpawnSpec {
            command: self.command.clone(),
            workdir: Some(self.workdir.clone()),
            env: self.env.clone(),
            tag: self.tag.clone(),
        };
        let spawned = match ringmaster_os::spawn(&spec) {
            Ok(s) => s,
            Err(e) => {
                return StopCommandOutcome::Failed {
                    error: e.to_string(),
                }
            }
        };
        let _guard = OwnChild::register(spawned.pid);
        // The pumps are left to run on their own: the lines reach the log, and
        // the stop does not wait for pipes a leftover child may hold.
        if let Some(out) = spawned.stdout {
            self.sink.clone().pump(out, Stream::Stdout);
        }
        if let Some(err) = spawned.stderr {
            self.sink.clone().pump(err, Stream::Stderr);
        }
        let (pid, pgid) = (spawned.pid, spawned.pgid);
        let mut child = spawned.child;
        match tokio::time::timeout(budget, child.wait()).await {
            Ok(Ok(status)) => StopCommandOutcome::Exited {
                code: status.code(),
            },
            Ok(Err(e)) => StopCommandOutcome::Failed {
                error: format!("waiting for it failed: {e}"),
            },
            Err(_) => {
                let own = StopTarget {
                    root: Some(pid),
                    pgid,
                    tag: None,
                    also: Vec::new(),
                };
                let _ = ringmaster_os::stop_async(own, Signal::Kill, Duration::ZERO).await;
                // Reaped by its owner: us.
                let _ = tokio::time::timeout(ringmaster_os::stop::KILL_WAIT, child.wait()).await;
                StopCommandOutcome::TimedOut { after: budget }
            }
        }
    }
}
