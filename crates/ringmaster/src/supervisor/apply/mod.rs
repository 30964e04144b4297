//! A graph that changes while it runs ([`Apply`]; the rules are in
//! [`crate::change`]). A change is worked out against the running graph into a
//! [`Plan`] (refused as a whole when the graph it leads to is not valid), then
//! run in three steps: one cascade stops what is removed, what is restarted and
//! their running dependents (dependents first, by the graph as it was); the
//! graph is then rebuilt (entries removed, replaced, updated, added; order and
//! heights); and what was stopped or added is needed again and starts as at
//! `up`. The change answers once those are ready, or with the first failure.
//! Changes run one at a time, after any pending [`Up`].
use super::*;
use crate::balancer::SetMinReady;
use crate::change::{Action, ApplyReport, ServiceChange, ServiceDef, SettingChange};
use crate::config::replica_of;
use crate::messages::{Apply, Change, Preview};
use crate::service::Reconfigure;

/// What a queued change asks for: a [`Change`], the rolling restart of a
/// replicated service ([`Restart`] of it), or one service stopped or started on
/// request (`stopped.rs`).
pub(super) enum Job {
    Change(Change),
    Roll(String),
    Stop(String),
    Start(String),
}

/// A change waiting for its turn.
pub(super) struct Queued {
    change: Job,
    at: Instant,
    tx: oneshot::Sender<Result<ApplyReport>>,
}

mod plan;
mod run;

use plan::{rejected, Plan};
use run::setting_changes;

impl Handler<Preview> for Supervisor {
    type Result = Result<ApplyReport>;

    /// What the change would do, worked out against the graph as it is now; nothing
    /// is changed. (A change queued before it is not taken into account.)
    fn handle(&mut self, msg: Preview, _: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let plan = self.plan(Job::Change(msg.0))?;
        let mut report = self.report(plan, Instant::now(), None);
        report.preview = true;
        Ok(report)
    }
}

impl Handler<Apply> for Supervisor {
    type Result = ResponseFuture<Result<ApplyReport>>;

    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed || self.shutting_down {
            return Box::pin(async { Err(Error::ShuttingDown) });
        }
        let rx = self.queue(Job::Change(msg.0), ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(Error::SupervisorGone)) })
    }
}

impl Supervisor {
    /// Queues `job` behind the changes before it; returns its answer.
    pub(super) fn queue(
        &mut self,
        job: Job,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<ApplyReport>> {
        let (tx, rx) = oneshot::channel();
        self.changes.push_back(Queued {
            change: job,
            at: Instant::now(),
            tx,
        });
        self.next_change(ctx);
        rx
    }

    /// Runs the next queued change, unless one runs, an [`Up`] is pending (a
    /// change waits until the start is over) or a shutdown began.
    pub(super) fn next_change(&mut self, ctx: &mut Context<Self>) {
        while !self.applying && !self.shutting_down && !self.closed {
            if self.waiters.iter().any(|w| w.up) || self.orphans == Some(true) {
                return;
            }
            let Some(q) = self.changes.pop_front() else {
                return;
            };
            match q.change {
                Job::Stop(name) => {
                    self.applying = true;
                    self.run_stop(name, q.at, q.tx, ctx);
                }
                Job::Start(name) => {
                    self.applying = true;
                    self.run_start(name, q.at, q.tx, ctx);
                }
                job => match self.plan(job) {
                    Ok(plan) => {
                        self.applying = true;
                        self.run_plan(plan, q.at, q.tx, ctx);
                    }
                    Err(e) => {
                        let _ = q.tx.send(Err(e));
                    }
                },
            }
        }
    }

    /// Once, at the first [`Up`], when this Supervisor holds the instance lock
    /// (so no other instance runs on the state directory): stops what an earlier
    /// run left of services no configuration names, in parallel with the start.
    pub(super) fn stop_orphans(&mut self, ctx: &mut Context<Self>) {
        if self.orphans.is_some() || self.lock.is_none() {
            return;
        }
        self.orphans = Some(true);
        let project = self.project.clone();
        let known: BTreeSet<String> = self.entries.keys().cloned().collect();
        async move {
            blocking(move || crate::janitor::stop_orphans(&project, &known, SWEEP_GRACE)).await
        }
        .into_actor(self)
        .map(|res, act, ctx| {
            act.orphans = Some(false);
            match res.and_then(|found| found.map_err(Error::from)) {
                Ok(found) => {
                    for (service, report) in found {
                        let stopped: Vec<String> =
                            report.stopped.iter().map(|p| p.to_string()).collect();
                        tracing::warn!(
                            "stopped {} process(es) an earlier run left of `{service}`, which no \
                             configuration names (added at runtime?): {}",
                            stopped.len(),
                            stopped.join(", ")
                        );
                    }
                }
                Err(e) => tracing::warn!("looking for what an earlier run left: {e}"),
            }
            act.next_change(ctx);
        })
        .spawn(ctx);
    }

    /// Refuses every queued change: a shutdown began.
    pub(super) fn refuse_changes(&mut self) {
        for q in std::mem::take(&mut self.changes) {
            let _ = q.tx.send(Err(Error::ShuttingDown));
        }
    }
}
