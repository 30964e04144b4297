//! The PortJanitor: clears a service's port before its start ([`ClearPort`]) and
//! checks it after its stop ([`CheckPort`]), stopping only authorized holders
//! (our tag, or the service's `allow` list). All OS work runs on blocking threads;
//! the actor only hands it out. Also the forced sweep of every configured
//! port and tag.
use std::time::Duration;

use actix::prelude::*;
use ringmaster_os::{ClearReport, Policy, Signal, StopTarget, Tag};

use crate::messages::{CheckPort, ClearPort, PortCheck, SweepReport};
use crate::{Error, Result};

/// Clears and checks ports for the Supervisor.
pub struct PortJanitor {
    project: String,
}

impl PortJanitor {
    /// A janitor for `project` (the state directory's project id): processes
    /// tagged with it count as ours.
    pub fn new(project: impl Into<String>) -> Self {
        PortJanitor {
            project: project.into(),
        }
    }
}

impl Actor for PortJanitor {
    type Context = Context<Self>;
}

fn policy(project: &str, service: &str, port: u16, allow: Vec<String>) -> Result<Policy> {
    let mut policy = Policy::current(Some(project.to_owned()), allow)?;
    policy.service = Some(service.to_owned());
    policy.port = Some(port);
    Ok(policy)
}

/// How many short OS jobs run at once on the blocking pool. Fifty services starting together would
/// otherwise occupy fifty threads of the blocking pool at once, and the stacks and
/// allocator arenas they touch stay resident long after (measured: 12 MB instead
/// of 8 MB for 50 services; the start-up is not slower).
pub const BLOCKING_LIMIT: usize = 8;

/// Runs `f` on a blocking thread (never on an arbiter thread), at most
/// [`BLOCKING_LIMIT`] at a time: for OS work that is usually short (PID files,
/// leftovers before a start, clearing and checking ports).
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    static LIMIT: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let _permit = LIMIT
        .get_or_init(|| tokio::sync::Semaphore::new(BLOCKING_LIMIT))
        .acquire()
        .await;
    blocking_now(f).await
}

/// Runs `f` on a blocking thread at once, with no limit: for stops, which must all
/// run in parallel within a level of the cascade to keep its deadline.
pub(crate) async fn blocking_now<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("a blocking task failed: {e}")))
}

/// Clears `port` for `service` (blocking).
fn clear(project: &str, msg: &ClearPort) -> Result<ClearReport> {
    let policy = policy(project, &msg.service, msg.port, msg.allow.clone())?;
    Ok(ringmaster_os::clear_port(
        msg.port, &policy, msg.signal, msg.grace, false,
    )?)
}

/// Checks `port` after `service` stopped and stops authorized leftovers (blocking).
fn check(project: &str, msg: &CheckPort) -> PortCheck {
    if matches!(ringmaster_os::ports::port_is_free(msg.port), Ok(true)) {
        return PortCheck {
            free: true,
            ..PortCheck::default()
        };
    }
    let mut out = PortCheck::default();
    match policy(project, &msg.service, msg.port, msg.allow.clone()) {
        Ok(policy) => {
            match ringmaster_os::clear_port(msg.port, &policy, msg.signal, msg.grace, false) {
                Ok(report) => {
                    out.stopped = report.holders;
                }
                Err(ringmaster_os::Error::Refused { refusals, .. }) => out.refused = refusals,
                Err(e) => tracing::warn!(service = %msg.service, "port {}: {e}", msg.port),
            }
        }
        Err(e) => tracing::warn!(service = %msg.service, "port {}: {e}", msg.port),
    }
    out.free = matches!(ringmaster_os::ports::port_is_free(msg.port), Ok(true));
    out
}

impl Handler<ClearPort> for PortJanitor {
    type Result = ResponseFuture<Result<ClearReport>>;

    fn handle(&mut self, msg: ClearPort, _: &mut Context<Self>) -> Self::Result {
        let project = self.project.clone();
        Box::pin(async move { blocking(move || clear(&project, &msg)).await? })
    }
}

impl Handler<CheckPort> for PortJanitor {
    type Result = ResponseFuture<PortCheck>;

    fn handle(&mut self, msg: CheckPort, _: &mut Context<Self>) -> Self::Result {
        let project = self.project.clone();
        Box::pin(async move {
            // After a stop, within a cascade level: no waiting for a permit.
            blocking_now(move || check(&project, &msg))
                .await
                .unwrap_or_default()
        })
    }
}

/// One configured service, as the sweep sees it.
#[derive(Clone, Debug)]
pub(crate) struct SweepItem {
    pub service: String,
    pub port: Option<u16>,
    pub allow: Vec<String>,
    pub signal: Signal,
    pub grace: Duration,
    /// Stop what carries its tag (process services; plugins have no tag).
    pub tag: bool,
}

/// The forced fallback: for every item, stop every process carrying its tag, then
/// clear its port (authorized holders only). Items run in parallel, each on a
/// blocking thread.
pub(crate) async fn sweep(project: String, items: Vec<SweepItem>) -> SweepReport {
    let tasks = items.into_iter().map(|item| {
        let project = project.clone();
        blocking_now(move || sweep_one(&project, &item))
    });
    merged(futures::future::join_all(tasks).await.into_iter().flatten())
}

/// One report of the sweep's parts.
fn merged(parts: impl IntoIterator<Item = SweepReport>) -> SweepReport {
    let mut report = SweepReport::default();
    for part in parts {
        report.stopped.extend(part.stopped);
        report.refused.extend(part.refused);
        report.ports_still_held.extend(part.ports_still_held);
    }
    report.ports_still_held.sort_unstable();
    report
}

/// The sweep, synchronously: every item on a thread of its own, all joined
/// before it returns. For a caller that cannot await — a `Drop` (see
/// [`crate::Orchestrator`]: a handle dropped without `shutdown`).
pub(crate) fn sweep_blocking(project: &str, items: &[SweepItem]) -> SweepReport {
    merged(sweep_each(project, items).into_iter().map(|(_, part)| part))
}

/// Each item swept on a thread of its own, all at the same time (one that ignores
/// TERM holds up none of the others); per item, its service and what was done.
fn sweep_each(project: &str, items: &[SweepItem]) -> Vec<(String, SweepReport)> {
    std::thread::scope(|scope| {
        let running: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(move || (item.service.clone(), sweep_one(project, item))))
            .collect();
        running.into_iter().filter_map(|t| t.join().ok()).collect()
    })
}

fn sweep_one(project: &str, item: &SweepItem) -> SweepReport {
    let mut out = SweepReport::default();
    if item.tag {
        let tag = Tag::new(project, item.service.as_str());
        let target = StopTarget {
            root: None,
            pgid: None,
            // A daemon that wrote over its environment is known by identity only.
            also: crate::service::Claims::held(&tag.env_value()),
            tag: Some(tag),
        };
        match ringmaster_os::stop(&target, item.signal, item.grace) {
            Ok(report) => out.stopped.extend(report.signalled),
            Err(e) => tracing::warn!(service = %item.service, "sweep: {e}"),
        }
    }
    if let Some(port) = item.port {
        let check = check(
            project,
            &CheckPort {
                port,
                service: item.service.clone(),
                allow: item.allow.clone(),
                signal: item.signal,
                grace: item.grace,
            },
        );
        out.stopped.extend(check.stopped);
        out.refused.extend(check.refused);
        if !check.free {
            out.ports_still_held.push(port);
        }
    }
    out
}

/// The service names that live processes carrying `project`'s tag name (one
/// scan of the process table). Blocking.
pub fn tagged_services(project: &str) -> ringmaster_os::Result<std::collections::BTreeSet<String>> {
    Ok(ringmaster_os::process::snapshot_brief()?
        .into_iter()
        .filter(|p| !p.zombie)
        .filter_map(|p| p.tag)
        .filter(|t| t.project == project)
        .map(|t| t.service)
        .collect())
}

/// What an earlier run left of services that no configuration names any more —
/// added at runtime ([`crate::Orchestrator::add_service`], `ringmaster add`) by
/// an instance that was then killed, or dropped from the file while nothing
/// ran: every process carrying the tag of `project` and a service not in
/// `known` is stopped with TERM, then killed after `grace`. A process carrying
/// our project's tag is ours whatever its service: only an instance of this
/// state directory (which holds its lock) gives it. Returns, per such service,
/// what was stopped. Blocking.
pub fn stop_orphans(
    project: &str,
    known: &std::collections::BTreeSet<String>,
    grace: Duration,
) -> ringmaster_os::Result<Vec<(String, SweepReport)>> {
    let orphans = tagged_services(project)?;
    let items: Vec<SweepItem> = orphans
        .into_iter()
        .filter(|s| !known.contains(s))
        .map(|service| SweepItem {
            service,
            port: None,
            allow: Vec::new(),
            signal: Signal::Term,
            grace,
            tag: true,
        })
        .collect();
    Ok(sweep_each(project, &items))
}
