//! One service stopped on request and started again ([`StopService`],
//! [`StartService`]): `ringmaster stop` / `start`, the `s` key of `top`. A
//! stopped service is not needed: nothing restarts it (its restart policy, a
//! dependency's restart) until it is started again, named by an `Up`, or
//! restarted. What depends on it stops first and remembers why
//! (`stopped_with`), so that starting it brings them back.
//!
//! Both run as queued changes (`apply::Job`): one at a time with reloads,
//! adds, removals, scales and rolls, and after a pending `Up` — a stop asked
//! during the start-up waits for it instead of failing it, and a reload cannot
//! plan against a service half stopped.
use super::apply::Job;
use super::*;
use crate::change::ApplyReport;
use crate::config::replica_of;
use crate::messages::{StartService, StopService};

/// The answer of a queued request about service `name` (a stop, a start, a
/// rolling restart): `Ok`, or what failed.
pub(super) async fn answer(name: String, rx: oneshot::Receiver<Result<ApplyReport>>) -> Result<()> {
    let report = rx.await.unwrap_or(Err(Error::SupervisorGone))?;
    match report.failed {
        Some(reason) => Err(Error::ServiceFailed {
            service: name,
            reason,
        }),
        None => Ok(()),
    }
}

/// A report with no service change (a stop or start changes no configuration).
fn done(at: Instant, failed: Option<String>) -> ApplyReport {
    ApplyReport {
        services: Vec::new(),
        settings: Vec::new(),
        elapsed: at.elapsed(),
        failed,
        preview: false,
    }
}

impl Supervisor {
    /// Refuses a request for `name` during a shutdown, or for an unknown name.
    pub(super) fn known(&self, name: &str) -> Result<()> {
        if self.closed || self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        if self.entries.get(name).is_none_or(|e| e.leaving) {
            return Err(Error::UnknownService(name.to_owned()));
        }
        Ok(())
    }

    /// Stops `name`, its replicas and what runs (or waits to) of its dependents,
    /// dependents first; none is needed any more. Answers on `tx` when done.
    pub(super) fn run_stop(
        &mut self,
        name: String,
        at: Instant,
        tx: oneshot::Sender<Result<ApplyReport>>,
        ctx: &mut Context<Self>,
    ) {
        let dependents: Vec<String> = self
            .dependents(&name)
            .into_iter()
            .filter(|d| {
                self.entries
                    .get(d)
                    .is_some_and(|e| e.in_flight() || (e.needed && !e.completed))
            })
            .collect();
        let mut names = vec![name.clone()];
        for n in std::iter::once(&name).chain(&dependents) {
            names.extend(self.members(n));
        }
        names.extend(dependents.iter().cloned());
        for n in &names {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
                e.stopped_with = (*n != name && replica_of(n).is_none()).then(|| name.clone());
            }
        }
        let to_stop: Vec<String> = names
            .iter()
            .filter(|n| self.entries.get(*n).is_some_and(|e| e.in_flight()))
            .cloned()
            .collect();
        tracing::info!(service = %name, "stopping on request");
        let timeout = self.settings.shutdown_timeout;
        self.cascade(to_stop, timeout, ctx)
            .map(move |_, act, ctx| {
                for n in &names {
                    let Some(e) = act.entries.get_mut(n) else {
                        continue;
                    };
                    if e.phase != Phase::Idle || e.state == ServiceState::Failed {
                        continue;
                    }
                    if e.needed {
                        // Needed again meanwhile (a restart, an `up` naming it):
                        // it starts as any needed service does.
                        e.set_state(ServiceState::Waiting, None);
                        continue;
                    }
                    let why = if *n == name {
                        "stopped on request".to_owned()
                    } else {
                        format!("stopped with `{name}`")
                    };
                    e.set_state(ServiceState::Stopped, Some(why));
                }
                act.applying = false;
                let _ = tx.send(Ok(done(at, None)));
                act.advance(ctx);
                // A request still waiting for one of them answers with why.
                act.check_waiters(ctx);
            })
            .spawn(ctx);
    }

    /// Starts `name` again with what it depends on (a dependency that completed
    /// stays completed) and the dependents its stop took down; answers on `tx`
    /// once they are ready, or with the first failure.
    pub(super) fn run_start(
        &mut self,
        name: String,
        at: Instant,
        tx: oneshot::Sender<Result<ApplyReport>>,
        ctx: &mut Context<Self>,
    ) {
        let mut again = vec![name.clone()];
        for e in self.entries.values_mut() {
            if e.name == name || e.stopped_with.as_deref() == Some(name.as_str()) {
                if e.name != name {
                    again.push(e.name.clone());
                }
                e.stopped_with = None;
            }
        }
        // Already running ones are left as they are: `need_again` restarts nothing.
        let (names, started_here) = self.need_again(&again);
        let (_, rx) = self.wait_for(names, started_here, false);
        self.advance(ctx);
        self.check_waiters(ctx);
        actix::fut::wrap_future::<_, Self>(async move {
            rx.await.unwrap_or(Err(Error::SupervisorGone))
        })
        .map(move |res, act, ctx| {
            act.applying = false;
            let _ = tx.send(Ok(done(at, res.err().map(|e| e.to_string()))));
            act.next_change(ctx);
        })
        .spawn(ctx);
    }
}

impl Handler<StopService> for Supervisor {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: StopService, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.known(&msg.name) {
            return Box::pin(async move { Err(e) });
        }
        let rx = self.queue(Job::Stop(msg.name.clone()), ctx);
        Box::pin(answer(msg.name, rx))
    }
}

impl Handler<StartService> for Supervisor {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: StartService, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.known(&msg.name) {
            return Box::pin(async move { Err(e) });
        }
        let rx = self.queue(Job::Start(msg.name.clone()), ctx);
        Box::pin(answer(msg.name, rx))
    }
}
