//! The Supervisor: owns the dependency graph and drives every service through its
//! life — prepare (leftovers, install, port), wait for dependencies, start, ready,
//! restart with backoff or fail, stop — and runs the shutdown cascade.
//!
//! # How a start goes
//! On [`Up`], every needed service (the named ones and what they depend on) that is
//! not running becomes `waiting` and is *prepared* at once, all in parallel: its
//! ServiceActor stops what an earlier run left behind and runs the install step,
//! then the PortJanitor clears its port (a refusal fails the service). A prepared
//! service is *launched* — `Watch` to the HealthChecker, then `Start` — the moment
//! every dependency reached its condition, so gating costs one message hop after
//! the dependency's first healthy probe. A process service without a probe is
//! ready when it still runs at the end of its start window (`start_window`,
//! default 1 s; zero: when spawned); a plugin when it reports `Ready`.
//!
//! # The start window
//! Without a probe, running through the window is the only sign that a service
//! started at all (supervisord's `startsecs`). Until its end the service is
//! `starting`, and dependents that need it `ready` wait (`started` is met at the
//! spawn). An exit inside the window is a failed start: never ready, the restart
//! policy applies with its backoff, and once the attempts are used up the
//! service fails and a pending [`Up`] answers with its last exit. An exit with
//! status 0 inside the window is a one-shot job that completed, not a failure.
//!
//! Each launch arms its readiness deadline (`ready_timeout`): not ready by then,
//! it is stopped and fails with its last probe result. An [`Up`] may carry a
//! deadline of its own (`within`).
//!
//! # Failures and restarts
//! An exit (or `failures` failed probes in a row) is restarted when the policy says
//! so, after `backoff × 2^(n-1)` (capped at [`MAX_BACKOFF`]); the count resets once
//! the service stayed ready for [`RESET_AFTER`]. Past `max_attempts` restarts, or on
//! a refusal, an install or spawn failure, the service is `failed`: its running
//! dependents are stopped and wait again (with the reason), and a pending [`Up`]
//! answers with the failure once what it started is stopped again. Dependents that
//! wait keep waiting through a dependency's restart. Condition `started` stays met
//! once the dependency was spawned in this run, even after it exited; a dependency
//! that must be `ready` but exited with 0 and is not restarted never will be, so
//! the dependents waiting for it cannot start, and pending requests that need them
//! answer as for a failure.
//!
//! # Stopping
//! Stops run as a cascade: the services to stop are grouped by height in the graph
//! (0: nothing depends on it; else one more than its highest dependent) and
//! stopped lowest first, each level in parallel, each service with its stop
//! timeout cut to what is left of the deadline; past the deadline, everything left
//! is stopped at once with no grace. After each stop the PortJanitor checks the
//! port, its grace for leftovers also cut to what is left of the deadline.
//! [`Shutdown`] runs the cascade, then releases the instance lock, and replies
//! only when everything is done. The Supervisor keeps answering meanwhile:
//! [`GetStatus`] shows the services `stopping`, [`Up`] and [`Restart`] are refused,
//! health results and the events of the services being stopped change nothing, and
//! a second `Shutdown` gets the same report when the first is done (one that comes
//! later too). What never started (`waiting`) shows `stopped` once it is done.
mod cascade;
mod handlers;
mod reaper;

use cascade::{run_cascade, CascadeCtx, StopItem, StopVia};
use reaper::ReaperHandle;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use ringmaster_os::{CensusTarget, InstanceLock, Signal, StopReport, StopTarget, Tag};
use tokio::sync::oneshot;

use crate::config::{
    Condition, Dependency, HealthConfig, RestartConfig, RestartPolicy, ServiceConfig,
};
use crate::health::HealthChecker;
use crate::janitor::{blocking, blocking_now, PortJanitor, SweepItem};
use crate::logs::LogSubscribers;
use crate::messages::{
    CheckPort, ClearPort, EventKind, GetStatus, Health, HealthChanged, HoldRestarts, Notice,
    Notified, Reporter, Restart, ServiceEvent, ServiceStopReport, Shutdown, ShutdownReport, Start,
    Stop, Subscribe, SubscribeLogs, Unwatch, Up, Watch,
};
use crate::plugin::PluginService;
use crate::service::{OwnChild, Prepare, ServiceActor, ServiceContext, StopAnswer, StopChecked};
use crate::status::{MemberStatus, ServiceState, ServiceStatus};
use crate::{Error, Result};

/// Restart delays never grow beyond this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A service that stayed ready this long starts counting its restarts afresh.
pub const RESET_AFTER: Duration = Duration::from_secs(60);
/// How long past its grace a [`Stop`] may take before the Supervisor gives up on
/// the answer (and kills what carries the service's tag itself).
pub const STOP_MARGIN: Duration = Duration::from_secs(5);
/// How often adopted orphans are reaped when we are a subreaper, besides right
/// after a service exits and after every stop. A pass reads only our own
/// threads' children lists ([`ringmaster_os::process::children`]), not the
/// process table, and runs on a thread of its own.
pub const REAP_EVERY: Duration = Duration::from_secs(1);

/// How the Supervisor reaches one service.
#[derive(Clone)]
enum Runner {
    Process(Addr<ServiceActor>),
    Plugin {
        start: Recipient<Start>,
        stop: Recipient<Stop>,
    },
}

/// Where a service is in its start/stop cycle (finer than [`ServiceState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing in flight, no process.
    Idle,
    /// Leftovers, install and port in flight.
    Preparing,
    /// Ready to launch once its dependencies are met.
    Prepared,
    /// `Start` sent, not spawned yet.
    Starting,
    /// Spawned (state starting, ready or unhealthy).
    Running,
    /// A stop in flight.
    Stopping,
}

/// What the configuration says about one service (process or plugin): fixed for
/// the Supervisor's life.
struct Spec {
    runner: Runner,
    deps: Vec<Dependency>,
    port: Option<u16>,
    allow: Vec<String>,
    health: Option<HealthConfig>,
    restart: RestartConfig,
    stop_timeout: Duration,
    stop_signal: Signal,
    /// From launch to ready, else it fails ([`Supervisor::ready_timed_out`]).
    ready_timeout: Duration,
    /// A process service with a stop command.
    stop_command: bool,
    /// Without a probe: how long it must run before it is ready (zero for a plugin).
    start_window: Duration,
    workdir: PathBuf,
    /// The environment its command (and its exec probe) gets on top of ours.
    env: Vec<(String, String)>,
    /// Its tag (`None` for a plugin).
    tag: Option<Tag>,
}

impl Spec {
    fn of_service(cfg: &ServiceConfig, runner: Runner, project: &str) -> Spec {
        Spec {
            runner,
            deps: cfg.depends_on.clone(),
            port: cfg.port,
            allow: cfg.allow.clone(),
            health: cfg.health.clone(),
            restart: cfg.restart.clone(),
            stop_timeout: cfg.stop.timeout,
            stop_signal: cfg.stop.signal,
            ready_timeout: cfg.ready_timeout,
            stop_command: cfg.stop.command.is_some(),
            start_window: if cfg.health.is_some() {
                Duration::ZERO
            } else {
                cfg.start_window
            },
            workdir: cfg.workdir.clone(),
            env: cfg.env.clone(),
            tag: Some(Tag::new(project, cfg.name.as_str())),
        }
    }

    /// A plugin has no process of its own: no stop signal to choose (its port's
    /// holders get TERM), no workdir (exec probes run in the state directory), no
    /// environment and no tag.
    fn of_plugin(p: &PluginService, state_dir: PathBuf) -> Spec {
        Spec {
            runner: Runner::Plugin {
                start: p.start.clone(),
                stop: p.stop.clone(),
            },
            deps: p.depends_on.clone(),
            port: p.port,
            allow: p.allow.clone(),
            health: p.health.clone(),
            restart: p.restart.clone(),
            stop_timeout: p.stop_timeout,
            stop_signal: Signal::Term,
            ready_timeout: p.ready_timeout,
            stop_command: false,
            start_window: Duration::ZERO,
            workdir: state_dir,
            env: Vec::new(),
            tag: None,
        }
    }
}

/// One service as the Supervisor tracks it: its [`Spec`] and where it is now.
struct Entry {
    name: String,
    spec: Spec,
    /// 0 when nothing depends on it; else one more than its highest dependent.
    height: usize,

    state: ServiceState,
    reason: Option<String>,
    /// The spawned root (plugins: what they reported).
    pid: Option<u32>,
    /// Set by [`EventKind::Daemonized`]: the root is gone, the daemon's main pid.
    daemon: Option<Option<u32>>,
    restarts: u32,
    last_exit: Option<i32>,
    since_ms: u64,
    health_text: Option<String>,
    health_latency_ms: Option<u64>,
    /// What this run said of itself over its notify socket.
    said: Said,

    needed: bool,
    phase: Phase,
    /// Bumped whenever what is in flight for this service is superseded.
    op: u64,
    ready: bool,
    started: bool,
    completed: bool,
    ever_started: bool,
    attempts: u32,
    ready_since: Option<Instant>,
    restart_timer: Option<SpawnHandle>,
    /// Armed at launch, cancelled once it is ready, exits, fails or is stopped.
    ready_timer: Option<SpawnHandle>,
}

impl Entry {
    fn new(name: String, spec: Spec) -> Entry {
        Entry {
            name,
            spec,
            height: 0,
            state: ServiceState::Stopped,
            reason: None,
            pid: None,
            daemon: None,
            restarts: 0,
            last_exit: None,
            since_ms: now_ms(),
            health_text: None,
            health_latency_ms: None,
            said: Said::default(),
            needed: false,
            phase: Phase::Idle,
            op: 0,
            ready: false,
            started: false,
            completed: false,
            ever_started: false,
            attempts: 0,
            ready_since: None,
            restart_timer: None,
            ready_timer: None,
        }
    }

    fn set_state(&mut self, state: ServiceState, reason: Option<String>) {
        if self.state != state {
            self.since_ms = now_ms();
        }
        self.state = state;
        self.reason = reason;
    }

    fn in_flight(&self) -> bool {
        self.phase != Phase::Idle || self.restart_timer.is_some()
    }

    fn is_plugin(&self) -> bool {
        matches!(self.spec.runner, Runner::Plugin { .. })
    }

    /// Cancels its readiness deadline, if armed.
    fn disarm_ready(&mut self, ctx: &mut Context<Supervisor>) {
        if let Some(t) = self.ready_timer.take() {
            ctx.cancel_future(t);
        }
    }

    /// What is known of its way to ready: its last probe result, or why there is none.
    fn readiness_text(&self) -> String {
        match (&self.health_text, &self.spec.health) {
            (Some(h), _) => format!("last probe: {h}"),
            (None, Some(_)) => "no probe result yet".to_owned(),
            (None, None) if self.phase == Phase::Starting => {
                if self.is_plugin() {
                    "the plugin reported neither Spawned nor Ready".to_owned()
                } else {
                    "it was not spawned".to_owned()
                }
            }
            (None, None) => "the plugin did not report Ready".to_owned(),
        }
    }
}

/// What a `notify` service said of itself in its current run
/// ([`crate::messages::Notified`]).
#[derive(Debug, Default)]
struct Said {
    /// `STATUS=`: shown by `status`.
    status: Option<String>,
    /// `MAINPID=`: the main pid `status` shows while it lives.
    main_pid: Option<u32>,
}

/// A pending [`Up`] or [`Restart`]: answered once all `names` are ready (or
/// completed), or with the first failure among them.
struct Waiter {
    /// Names it for its deadline ([`Up::within`]).
    id: u64,
    names: Vec<String>,
    /// What this request started (stopped again when it fails).
    started_here: Vec<String>,
    tx: oneshot::Sender<Result<()>>,
}

/// Everything the Supervisor is built from.
pub struct SupervisorSetup {
    pub(crate) services: Vec<ServiceConfig>,
    pub(crate) plugins: Vec<PluginService>,
    pub(crate) shared: ServiceContext,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) lock: Option<InstanceLock>,
    pub(crate) subreaper: bool,
    pub(crate) janitor: Addr<PortJanitor>,
    pub(crate) health: Addr<HealthChecker>,
    /// Filled with the name of every service this Supervisor prepares: what the
    /// orchestrator's last handle stops when it is dropped without a shutdown.
    pub(crate) touched: Touched,
}

/// The services a Supervisor began to start, shared with the orchestrator handle.
pub(crate) type Touched = Arc<std::sync::Mutex<BTreeSet<String>>>;

/// Owns the dependency graph; see the module documentation.
pub struct Supervisor {
    project: String,
    entries: BTreeMap<String, Entry>,
    order: Vec<String>,
    janitor: Addr<PortJanitor>,
    health: Addr<HealthChecker>,
    subscribers: Vec<Recipient<ServiceEvent>>,
    log_subscribers: LogSubscribers,
    shutdown_timeout: Duration,
    lock: Option<InstanceLock>,
    waiters: Vec<Waiter>,
    /// The id of the next [`Waiter`].
    next_waiter: u64,
    touched: Touched,
    /// A shutdown cascade runs (or ran): nothing starts any more.
    shutting_down: bool,
    /// A forced sweep took the services down ([`HoldRestarts`]): what exits is
    /// stopped, not restarted.
    swept: bool,
    /// Further [`Shutdown`]s that came while the cascade ran: they get its report.
    shutdown_waiters: Vec<oneshot::Sender<ShutdownReport>>,
    /// The shutdown is done.
    closed: bool,
    /// The report of the shutdown, once it is done: what a later [`Shutdown`] gets.
    last_report: Option<ShutdownReport>,
    /// Present when we are a subreaper.
    reaper: Option<ReaperHandle>,
    /// The periodic reaping, until the shutdown is done.
    reap_timer: Option<SpawnHandle>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exited with code {c}"),
        None => "was killed by a signal".to_owned(),
    }
}

/// The restart delay before attempt `attempt` (1-based).
pub fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Services in a start order: dependencies first, ties by name. `Err` names a
/// cycle. Dependencies on unknown names are ignored here (checked elsewhere).
pub(crate) fn topo_order(
    graph: &BTreeMap<String, Vec<String>>,
) -> std::result::Result<Vec<String>, Vec<String>> {
    let mut order = Vec::with_capacity(graph.len());
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while order.len() < graph.len() {
        let next = graph.iter().find(|(name, deps)| {
            !done.contains(name.as_str())
                && deps
                    .iter()
                    .all(|d| done.contains(d.as_str()) || !graph.contains_key(d))
        });
        match next {
            Some((name, _)) => {
                done.insert(name);
                order.push(name.clone());
            }
            None => return Err(find_cycle(graph, &done)),
        }
    }
    Ok(order)
}

fn find_cycle(graph: &BTreeMap<String, Vec<String>>, done: &BTreeSet<&str>) -> Vec<String> {
    // Walk from any unfinished node along unfinished dependencies until a repeat.
    let Some(start) = graph.keys().find(|k| !done.contains(k.as_str())) else {
        return Vec::new();
    };
    let mut path: Vec<String> = vec![start.clone()];
    loop {
        let last = path.last().cloned().unwrap_or_default();
        let next = graph
            .get(&last)
            .and_then(|deps| {
                deps.iter()
                    .find(|d| graph.contains_key(*d) && !done.contains(d.as_str()))
            })
            .cloned();
        let Some(next) = next else {
            return path;
        };
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle = path[i..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}

impl Supervisor {
    /// Builds the Supervisor and one ServiceActor per process service (started on
    /// the current arbiter). The graph must be valid (see
    /// [`crate::Orchestrator::start_with`]).
    pub fn new(setup: SupervisorSetup) -> Result<Supervisor> {
        let SupervisorSetup {
            services,
            plugins,
            shared,
            shutdown_timeout,
            lock,
            subreaper,
            janitor,
            health,
            touched,
        } = setup;
        let mut entries = BTreeMap::new();
        for cfg in services {
            let addr = ServiceActor::new(cfg.clone(), shared.clone()).start();
            let spec = Spec::of_service(&cfg, Runner::Process(addr), &shared.project);
            entries.insert(cfg.name.clone(), Entry::new(cfg.name.clone(), spec));
        }
        for p in plugins {
            let spec = Spec::of_plugin(&p, shared.state_dir.clone());
            entries.insert(p.name.clone(), Entry::new(p.name.clone(), spec));
        }
        let graph: BTreeMap<String, Vec<String>> = entries
            .iter()
            .map(|(n, e)| {
                (
                    n.clone(),
                    e.spec.deps.iter().map(|d| d.service.clone()).collect(),
                )
            })
            .collect();
        let order = topo_order(&graph)
            .map_err(|cycle| Error::Other(format!("dependency cycle: {}", cycle.join(" → "))))?;
        // Height: 0 for a service nothing depends on, else one more than its
        // highest dependent. Dependents first (reverse start order).
        for name in order.iter().rev() {
            let (height, deps) = {
                let e = &entries[name];
                (
                    e.height,
                    e.spec
                        .deps
                        .iter()
                        .map(|d| d.service.clone())
                        .collect::<Vec<_>>(),
                )
            };
            for d in deps {
                if let Some(dep) = entries.get_mut(&d) {
                    dep.height = dep.height.max(height + 1);
                }
            }
        }
        Ok(Supervisor {
            project: shared.project.clone(),
            entries,
            order,
            janitor,
            health,
            subscribers: Vec::new(),
            log_subscribers: shared.log_subscribers.clone(),
            shutdown_timeout,
            lock,
            waiters: Vec::new(),
            next_waiter: 0,
            touched,
            shutting_down: false,
            swept: false,
            shutdown_waiters: Vec::new(),
            closed: false,
            last_report: None,
            reaper: subreaper.then(ReaperHandle::start),
            reap_timer: None,
        })
    }

    fn broadcast(&self, name: &str, kind: EventKind) {
        let ev = ServiceEvent {
            name: name.to_owned(),
            kind,
        };
        for s in &self.subscribers {
            s.do_send(ev.clone());
        }
    }

    /// The needed set of `only` (or all): the named services and, transitively,
    /// what they depend on.
    fn closure(&self, only: Option<&[String]>) -> Result<Vec<String>> {
        let Some(only) = only else {
            return Ok(self.order.clone());
        };
        let mut set = BTreeSet::new();
        let mut stack: Vec<String> = Vec::new();
        for n in only {
            if !self.entries.contains_key(n) {
                return Err(Error::UnknownService(n.clone()));
            }
            stack.push(n.clone());
        }
        while let Some(n) = stack.pop() {
            if set.insert(n.clone()) {
                if let Some(e) = self.entries.get(&n) {
                    stack.extend(e.spec.deps.iter().map(|d| d.service.clone()));
                }
            }
        }
        Ok(self
            .order
            .iter()
            .filter(|n| set.contains(*n))
            .cloned()
            .collect())
    }

    /// Every service that depends on `name`, directly or not, in start order.
    fn dependents(&self, name: &str) -> Vec<String> {
        let mut set: BTreeSet<String> = BTreeSet::new();
        set.insert(name.to_owned());
        for n in &self.order {
            let e = &self.entries[n];
            if e.spec.deps.iter().any(|d| set.contains(&d.service)) {
                set.insert(n.clone());
            }
        }
        set.remove(name);
        self.order
            .iter()
            .filter(|n| set.contains(*n))
            .cloned()
            .collect()
    }

    /// The first dependency of `e` not at its condition, with the condition.
    fn unmet(&self, e: &Entry) -> Option<(String, Condition)> {
        e.spec.deps.iter().find_map(|d| {
            let dep = self.entries.get(&d.service)?;
            let met = match d.condition {
                Condition::Ready => dep.ready,
                // Latched: spawned in this run, even when it has exited since.
                Condition::Started => dep.started || dep.ready,
                Condition::Completed => dep.completed,
            };
            (!met).then(|| (d.service.clone(), d.condition))
        })
    }

    fn failed_dependency(&self, e: &Entry) -> Option<String> {
        e.spec
            .deps
            .iter()
            .find(|d| {
                self.entries
                    .get(&d.service)
                    .is_some_and(|dep| dep.state == ServiceState::Failed)
            })
            .map(|d| d.service.clone())
    }

    /// The first dependency of `e` that can never reach its condition in this
    /// run although it did not fail: one that must be `ready` but exited with
    /// status 0 and is not restarted (policy `never` or `on-failure`), with the
    /// reason to give.
    fn ended_dependency(&self, e: &Entry) -> Option<(String, String)> {
        e.spec.deps.iter().find_map(|d| {
            let dep = self.entries.get(&d.service)?;
            let ended = d.condition == Condition::Ready
                && !dep.ready
                && dep.completed
                && dep.phase == Phase::Idle
                && dep.restart_timer.is_none();
            ended.then(|| {
                (
                    d.service.clone(),
                    format!(
                        "dependency `{}` exited with code 0 and is not restarted, so it can \
                         never be ready (a one-shot job wants the condition \"completed\")",
                        d.service
                    ),
                )
            })
        })
    }

    /// Moves every needed service as far as it can go now.
    fn advance(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down || self.closed {
            return;
        }
        for name in self.order.clone() {
            let e = &self.entries[&name];
            if !e.needed || e.restart_timer.is_some() {
                continue;
            }
            let ended = self.ended_dependency(e).map(|(_, reason)| reason);
            match e.phase {
                Phase::Idle if e.state == ServiceState::Waiting => {
                    if let Some(dep) = self.failed_dependency(e) {
                        let reason = format!("dependency `{dep}` failed");
                        if let Some(e) = self.entries.get_mut(&name) {
                            e.reason = Some(reason);
                        }
                        continue;
                    }
                    if let Some(reason) = ended {
                        self.cannot_start(&name, reason, ctx);
                        continue;
                    }
                    self.begin_prepare(&name, ctx);
                    self.note_waiting(&name);
                }
                Phase::Preparing | Phase::Prepared if ended.is_some() => {
                    if let Some(reason) = ended {
                        self.cannot_start(&name, reason, ctx);
                    }
                }
                Phase::Preparing => self.note_waiting(&name),
                Phase::Prepared => {
                    if self.unmet(e).is_none() {
                        self.launch(&name, ctx);
                    } else {
                        self.note_waiting(&name);
                    }
                }
                _ => {}
            }
        }
    }

    fn note_waiting(&mut self, name: &str) {
        let Some(e) = self.entries.get(name) else {
            return;
        };
        let reason = match self.unmet(e) {
            Some((dep, cond)) => {
                let cond = match cond {
                    Condition::Ready => "ready",
                    Condition::Started => "started",
                    Condition::Completed => "completed",
                };
                let failed = self
                    .entries
                    .get(&dep)
                    .is_some_and(|d| d.state == ServiceState::Failed);
                if failed {
                    format!("dependency `{dep}` failed")
                } else {
                    format!("waiting for `{dep}` ({cond})")
                }
            }
            None => "preparing".to_owned(),
        };
        if let Some(e) = self.entries.get_mut(name) {
            if e.state == ServiceState::Waiting
                && !e.reason.as_deref().is_some_and(|r| r.contains("restart"))
            {
                e.reason = Some(reason);
            }
        }
    }

    fn begin_prepare(&mut self, name: &str, ctx: &mut Context<Self>) {
        let janitor = self.janitor.clone();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.phase = Phase::Preparing;
        e.op += 1;
        let op = e.op;
        if let Ok(mut touched) = self.touched.lock() {
            touched.insert(name.to_owned());
        }
        let prepare = match &e.spec.runner {
            Runner::Process(addr) => Some(addr.send(Prepare)),
            Runner::Plugin { .. } => None,
        };
        let clear = e.spec.port.map(|port| ClearPort {
            port,
            service: e.name.clone(),
            allow: e.spec.allow.clone(),
            signal: e.spec.stop_signal,
            grace: e.spec.stop_timeout,
        });
        let name = name.to_owned();
        async move {
            if let Some(p) = prepare {
                p.await
                    .map_err(|e| format!("the service actor is gone: {e}"))??;
            }
            if let Some(msg) = clear {
                janitor
                    .send(msg)
                    .await
                    .map_err(|e| format!("the port janitor is gone: {e}"))?
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }
        .into_actor(self)
        .map(move |res, act, ctx| {
            let Some(e) = act.entries.get_mut(&name) else {
                return;
            };
            if e.op != op || e.phase != Phase::Preparing || act.shutting_down {
                return;
            }
            match res {
                Ok(()) => {
                    e.phase = Phase::Prepared;
                    act.advance(ctx);
                }
                Err(reason) => {
                    e.phase = Phase::Idle;
                    act.fail(&name, reason, ctx);
                }
            }
        })
        .spawn(ctx);
    }

    fn launch(&mut self, name: &str, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.phase = Phase::Starting;
        e.op += 1;
        e.set_state(ServiceState::Starting, None);
        e.ready = false;
        // `started` stays as it is: once spawned in this run, a service counts
        // as started for its dependents (see `unmet`).
        e.completed = false;
        // What an earlier run's probe said does not describe this one.
        e.health_text = None;
        e.health_latency_ms = None;
        e.said = Said::default();
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut notify_socket = None;
        if let Some(h) = &e.spec.health {
            // The notify socket is bound here, before `Start`: the service may
            // send READY=1 the moment it runs.
            #[cfg(target_os = "linux")]
            let notify = match h.probe {
                crate::config::Probe::Notify => match crate::notify::NotifySocket::bind(name) {
                    Ok(sock) => {
                        notify_socket = Some(sock.address().to_owned());
                        Some(Arc::new(sock))
                    }
                    Err(err) => {
                        tracing::warn!(service = %name, "cannot bind its notify socket: {err}");
                        None
                    }
                },
                _ => None,
            };
            self.health.do_send(Watch {
                name: name.to_owned(),
                probe: h.probe.clone(),
                interval: h.interval,
                timeout: h.timeout,
                failures: h.failures,
                start_interval: h.start_interval,
                patience: e.spec.ready_timeout,
                port: e.spec.port,
                workdir: e.spec.workdir.clone(),
                env: e.spec.env.clone(),
                tag: e.spec.tag.clone(),
                #[cfg(target_os = "linux")]
                notify,
                reply: me.clone().recipient(),
                notices: me.clone().recipient(),
            });
        }
        let start = Start {
            name: name.to_owned(),
            events: Reporter::new(name, me.recipient()),
            notify_socket,
        };
        tracing::debug!(service = %name, "launching");
        match &e.spec.runner {
            Runner::Process(addr) => addr.do_send(start),
            Runner::Plugin { start: to, .. } => to.do_send(start),
        }
        // The readiness deadline of this run.
        e.disarm_ready(ctx);
        let (op, after) = (e.op, e.spec.ready_timeout);
        let owned = name.to_owned();
        e.ready_timer = Some(ctx.run_later(after, move |act, ctx| {
            act.ready_timed_out(&owned, op, after, ctx)
        }));
    }

    /// `name`'s run `op` was not ready `after` its launch: it is stopped, then
    /// fails (no restart) with what its probe said last.
    fn ready_timed_out(&mut self, name: &str, op: u64, after: Duration, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.ready_timer = None;
        if e.op != op
            || e.ready
            || !matches!(e.phase, Phase::Starting | Phase::Running)
            || self.shutting_down
        {
            return;
        }
        let reason = format!(
            "not ready within {} of its start ({})",
            crate::text::human_duration(after),
            e.readiness_text()
        );
        tracing::warn!(service = %name, "{reason}; stopping it");
        let owned = name.to_owned();
        let timeout = self.shutdown_timeout;
        self.cascade(vec![owned.clone()], timeout, ctx)
            .map(move |_, act, ctx| {
                if !act.shutting_down {
                    act.fail(&owned, reason, ctx);
                }
            })
            .spawn(ctx);
    }

    /// A process service without a probe was spawned: it is ready once it still
    /// runs after `window` (an exit before that is a failed start, see
    /// `on_exit`). Meanwhile it is `starting`, and dependents that need it ready
    /// wait; `started` is met already.
    fn begin_start_window(&mut self, name: &str, window: Duration, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let op = e.op;
        e.reason = Some(format!("start window {window:?}"));
        let owned = name.to_owned();
        ctx.run_later(window, move |act, ctx| {
            let survived = act.entries.get(&owned).is_some_and(|e| {
                e.op == op
                    && e.phase == Phase::Running
                    && !e.ready
                    && e.state == ServiceState::Starting
            });
            if survived && !act.shutting_down && !act.closed {
                act.mark_ready(&owned, ctx);
            }
        });
        self.advance(ctx);
    }

    fn mark_ready(&mut self, name: &str, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.ready {
            return;
        }
        e.disarm_ready(ctx);
        e.ready = true;
        e.started = true;
        e.ready_since = Some(Instant::now());
        e.set_state(ServiceState::Ready, None);
        tracing::info!(service = %name, "ready");
        self.broadcast(name, EventKind::Ready);
        self.advance(ctx);
        self.check_waiters();
    }

    fn check_waiters(&mut self) {
        let entries = &self.entries;
        let done = |n: &String| {
            entries
                .get(n)
                .is_some_and(|e| e.ready || (e.completed && e.phase == Phase::Idle))
        };
        let (finished, pending): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.names.iter().all(done));
        self.waiters = pending;
        for w in finished {
            let _ = w.tx.send(Ok(()));
        }
    }

    fn on_exit(&mut self, name: &str, code: Option<i32>, ctx: &mut Context<Self>) {
        self.health.do_send(Unwatch {
            name: name.to_owned(),
        });
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.disarm_ready(ctx);
        e.pid = None;
        e.daemon = None;
        e.last_exit = code;
        // A probe-less service that ends within its start window never started
        // (supervisord's `startsecs`): the reason says so. With status 0 it is
        // a job that completed, not a failure.
        let window = e.spec.start_window;
        let in_window = !e.ready && !window.is_zero() && e.phase == Phase::Running;
        let why = if in_window && code != Some(0) {
            format!("{} within its start window ({window:?})", exit_text(code))
        } else {
            exit_text(code)
        };
        e.ready = false;
        // `started` is kept: it was spawned in this run (condition `started`).
        e.phase = Phase::Idle;
        e.op += 1;
        if e.ready_since
            .take()
            .is_some_and(|t| t.elapsed() >= RESET_AFTER)
        {
            e.attempts = 0;
        }
        tracing::info!(service = %name, "{why}");
        let restart = match e.spec.restart.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != Some(0),
            RestartPolicy::Never => false,
        };
        self.broadcast(name, EventKind::Exited { code });
        self.reap();
        self.after_down(name, restart, why, code == Some(0), ctx);
    }

    /// After a service went down on its own (exit, or stopped for being
    /// unhealthy): restart it, or leave it completed, or fail it.
    fn after_down(
        &mut self,
        name: &str,
        restart: bool,
        why: String,
        success: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.shutting_down {
            // Nothing restarts and nothing fails now: the cascade decides its state.
            return;
        }
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if self.swept {
            e.set_state(ServiceState::Stopped, Some(format!("{why}; swept")));
            self.check_waiters();
            return;
        }
        if restart {
            if e.attempts >= e.spec.restart.max_attempts {
                let n = e.attempts;
                let reason = format!("{why}; gave up after {n} restart(s)");
                self.fail(name, reason, ctx);
                return;
            }
            e.attempts += 1;
            e.restarts += 1;
            let delay = backoff_delay(e.spec.restart.backoff, e.attempts);
            e.set_state(
                ServiceState::Waiting,
                Some(format!(
                    "{why}; restart {}/{} in {delay:?}",
                    e.attempts, e.spec.restart.max_attempts
                )),
            );
            tracing::info!(service = %name, "{why}; restarting in {delay:?} (attempt {}/{})", e.attempts, e.spec.restart.max_attempts);
            let owned = name.to_owned();
            let handle = ctx.run_later(delay, move |act, ctx| {
                if let Some(e) = act.entries.get_mut(&owned) {
                    e.restart_timer = None;
                    if e.phase == Phase::Idle && e.state == ServiceState::Waiting {
                        e.reason = None;
                    }
                }
                act.advance(ctx);
            });
            if let Some(e) = self.entries.get_mut(name) {
                e.restart_timer = Some(handle);
            }
        } else if success {
            e.completed = true;
            e.set_state(ServiceState::Stopped, Some(format!("{why} (completed)")));
            self.check_waiters();
            self.advance(ctx);
        } else {
            self.fail(name, why, ctx);
        }
    }

    fn on_unhealthy(&mut self, name: &str, detail: String, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.phase != Phase::Running || e.state == ServiceState::Unhealthy {
            return;
        }
        e.set_state(ServiceState::Unhealthy, Some(detail.clone()));
        tracing::warn!(service = %name, "unhealthy: {detail}");
        let restart = e.spec.restart.policy != RestartPolicy::Never;
        self.broadcast(
            name,
            EventKind::Unhealthy {
                reason: detail.clone(),
            },
        );
        if !restart || self.shutting_down || self.swept {
            return;
        }
        let name_owned = name.to_owned();
        let timeout = self.shutdown_timeout;
        self.cascade(vec![name_owned.clone()], timeout, ctx)
            .map(move |_, act, ctx| {
                if let Some(e) = act.entries.get_mut(&name_owned) {
                    if e.phase == Phase::Idle {
                        e.ready_since = None;
                        act.after_down(
                            &name_owned,
                            true,
                            format!("unhealthy ({detail})"),
                            false,
                            ctx,
                        );
                    }
                }
            })
            .spawn(ctx);
    }

    /// A success after `Unhealthy` (the service was not restarted): ready again.
    fn on_healthy(&mut self, name: &str) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.phase != Phase::Running || e.state != ServiceState::Unhealthy {
            return;
        }
        e.set_state(ServiceState::Ready, None);
        tracing::info!(service = %name, "healthy again");
        self.broadcast(name, EventKind::Healthy);
    }

    /// Fails `name` for good: its running dependents are stopped and wait again,
    /// and pending requests that need it answer with the failure once what they
    /// started is stopped again.
    fn fail(&mut self, name: &str, reason: String, ctx: &mut Context<Self>) {
        self.health.do_send(Unwatch {
            name: name.to_owned(),
        });
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if let Some(t) = e.restart_timer.take() {
            ctx.cancel_future(t);
        }
        e.disarm_ready(ctx);
        if e.phase != Phase::Stopping {
            e.phase = Phase::Idle;
        }
        e.op += 1;
        e.ready = false;
        e.started = false;
        e.pid = None;
        e.daemon = None;
        e.set_state(ServiceState::Failed, Some(reason.clone()));
        tracing::error!(service = %name, "failed: {reason}");
        self.broadcast(
            name,
            EventKind::Failed {
                reason: reason.clone(),
            },
        );

        let dependents = self.dependents(name);
        let waiting_reason = format!("dependency `{name}` failed");
        for d in &dependents {
            if let Some(de) = self.entries.get_mut(d) {
                if !de.in_flight() && de.state != ServiceState::Failed && de.needed {
                    de.set_state(ServiceState::Waiting, Some(waiting_reason.clone()));
                }
            }
        }
        let to_stop: Vec<String> = dependents
            .iter()
            .filter(|d| self.entries.get(*d).is_some_and(|e| e.in_flight()))
            .cloned()
            .collect();
        self.fail_requests(name, reason, to_stop, ctx);
    }

    /// `name` cannot start in this run although it did not fail itself: a
    /// dependency it must wait for ended for good. It waits with `reason`, and
    /// the pending requests that need it answer with `reason`, as for a failure,
    /// once what they started (it too) is stopped again.
    fn cannot_start(&mut self, name: &str, reason: String, ctx: &mut Context<Self>) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.reason.as_deref() != Some(reason.as_str()) {
            tracing::warn!(service = %name, "cannot start: {reason}");
        }
        e.set_state(ServiceState::Waiting, Some(reason.clone()));
        self.fail_requests(name, reason, Vec::new(), ctx);
    }

    /// Answers the pending requests that need `name` with its failure (`reason`)
    /// once `to_stop` (its running dependents, which wait again) and what those
    /// requests started are stopped again.
    fn fail_requests(
        &mut self,
        name: &str,
        reason: String,
        mut to_stop: Vec<String>,
        ctx: &mut Context<Self>,
    ) {
        let (affected, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.names.iter().any(|n| n == name));
        self.waiters = rest;
        // A failed service stays as it is; one that cannot start is undone too.
        let failed_itself = self
            .entries
            .get(name)
            .is_some_and(|e| e.state == ServiceState::Failed);
        let undo: BTreeSet<String> = affected
            .iter()
            .flat_map(|w| w.started_here.iter().cloned())
            .filter(|n| n != name || !failed_itself)
            .collect();
        for n in &undo {
            if let Some(e) = self.entries.get_mut(n) {
                // Not needed any more: nothing of it starts while it is undone.
                e.needed = false;
                if !to_stop.contains(n) && e.in_flight() {
                    to_stop.push(n.clone());
                }
            }
        }
        if to_stop.is_empty() && affected.is_empty() {
            return;
        }
        let failed = name.to_owned();
        let timeout = self.shutdown_timeout;
        self.cascade(to_stop, timeout, ctx)
            .map(move |(reports, _), act, _| {
                for r in &reports {
                    let Some(e) = act.entries.get_mut(&r.name) else {
                        continue;
                    };
                    if e.phase != Phase::Idle || e.state == ServiceState::Failed {
                        continue;
                    }
                    if r.name == failed {
                        e.needed = false;
                        e.set_state(ServiceState::Stopped, Some(reason.clone()));
                    } else if undo.contains(&r.name) {
                        e.needed = false;
                        e.set_state(
                            ServiceState::Stopped,
                            Some(format!("stopped again: `{failed}` failed to start")),
                        );
                    } else {
                        e.set_state(
                            ServiceState::Waiting,
                            Some(format!("dependency `{failed}` failed")),
                        );
                    }
                }
                for n in &undo {
                    if let Some(e) = act.entries.get_mut(n) {
                        if e.state == ServiceState::Waiting {
                            e.needed = false;
                            let why = if *n == failed {
                                reason.clone()
                            } else {
                                format!("not started: `{failed}` failed")
                            };
                            e.set_state(ServiceState::Stopped, Some(why));
                        }
                    }
                }
                for w in affected {
                    let _ = w.tx.send(Err(Error::ServiceFailed {
                        service: failed.clone(),
                        reason: reason.clone(),
                    }));
                }
            })
            .spawn(ctx);
    }

    /// Stops `names` as a cascade (dependents first, each level in parallel) within
    /// `deadline`. Marks them stopping at once and stopped (phase idle) at the end.
    fn cascade(
        &mut self,
        names: Vec<String>,
        deadline: Duration,
        ctx: &mut Context<Self>,
    ) -> impl ActorFuture<Self, Output = (Vec<ServiceStopReport>, bool)> + 'static {
        let mut items: Vec<(usize, StopItem)> = Vec::new();
        let mut ops: Vec<(String, u64)> = Vec::new();
        for n in &names {
            let Some(e) = self.entries.get_mut(n) else {
                continue;
            };
            self.health.do_send(Unwatch { name: n.clone() });
            // A plugin hears Stop only after a Start (one waiting for its
            // dependencies, or between restarts, has nothing running).
            let plugin_idle = e.is_plugin() && !matches!(e.phase, Phase::Starting | Phase::Running);
            // A pending restart is cancelled: left to fire, its timer would clear
            // the handle of a later one and start the service before its backoff.
            if let Some(t) = e.restart_timer.take() {
                ctx.cancel_future(t);
            }
            e.disarm_ready(ctx);
            e.phase = Phase::Stopping;
            e.op += 1;
            ops.push((n.clone(), e.op));
            if plugin_idle {
                e.ready = false;
                e.started = false;
                continue;
            }
            e.ready = false;
            e.started = false;
            if e.state != ServiceState::Failed {
                e.set_state(ServiceState::Stopping, None);
            }
            items.push((
                e.height,
                StopItem {
                    name: n.clone(),
                    via: match &e.spec.runner {
                        Runner::Process(a) => StopVia::Process(a.clone()),
                        Runner::Plugin { stop, .. } => StopVia::Plugin(stop.clone()),
                    },
                    timeout: e.spec.stop_timeout,
                    port: e.spec.port,
                    allow: e.spec.allow.clone(),
                    signal: e.spec.stop_signal,
                    stop_command: e.spec.stop_command,
                },
            ));
        }
        let mut by_height: BTreeMap<usize, Vec<StopItem>> = BTreeMap::new();
        for (h, item) in items {
            by_height.entry(h).or_default().push(item);
        }
        let levels: VecDeque<Vec<StopItem>> = by_height.into_values().collect();
        let cascade = CascadeCtx {
            janitor: self.janitor.clone(),
            subscribers: self.subscribers.clone(),
            project: self.project.clone(),
        };
        run_cascade(levels, deadline, cascade).into_actor(self).map(
            move |(reports, hit), act, _| {
                act.reap();
                for (name, op) in &ops {
                    if let Some(e) = act.entries.get_mut(name) {
                        if e.op == *op {
                            e.phase = Phase::Idle;
                            e.pid = None;
                            e.daemon = None;
                            e.daemon = None;
                            e.ready_since = None;
                            if e.state != ServiceState::Failed {
                                e.set_state(ServiceState::Stopped, None);
                            }
                        }
                    }
                }
                (reports, hit)
            },
        )
    }

    /// After a [`Restart`] stopped `stopped` (`name` and its running dependents):
    /// needs them again, with what they depend on (started as [`Up`] would, when
    /// it does not run) and the dependents that were waiting for `name`, and
    /// returns the answer to wait for.
    fn start_again(
        &mut self,
        name: &str,
        stopped: &[String],
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<()>> {
        let mut names = Vec::new();
        for n in stopped {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = true;
                e.attempts = 0;
                e.completed = false;
                if e.phase == Phase::Idle {
                    e.set_state(ServiceState::Waiting, None);
                }
            }
        }
        // Every name is known here: `closure` cannot fail.
        let closure = self.closure(Some(stopped)).unwrap_or_default();
        // A dependency that completed (a one-shot job that exited with 0) stays
        // completed: restarting what depends on it does not run it again.
        let deps: Vec<String> = closure
            .iter()
            .filter(|n| !stopped.contains(n))
            .filter(|n| !self.entries.get(*n).is_some_and(|e| e.completed))
            .cloned()
            .collect();
        // What this request starts besides the restarted services is stopped
        // again when it fails.
        let started_here = self.need(&deps);
        names.extend(closure);
        // Dependents that were waiting for it come along.
        for d in self.dependents(name) {
            let waits = self
                .entries
                .get(&d)
                .is_some_and(|e| e.needed && e.state == ServiceState::Waiting);
            if waits && !names.contains(&d) {
                names.push(d);
            }
        }
        let (_, rx) = self.wait_for(names, started_here);
        self.advance(ctx);
        self.check_waiters();
        rx
    }

    fn status_of(e: &Entry) -> ServiceStatus {
        ServiceStatus {
            name: e.name.clone(),
            state: e.state,
            reason: e.reason.clone(),
            pid: e.said.main_pid.or(e.daemon.unwrap_or(e.pid)),
            root_pid: if e.daemon.is_some() { None } else { e.pid },
            daemonized: e.daemon.is_some(),
            members: Vec::new(),
            port: e.spec.port,
            restarts: e.restarts,
            last_exit: e.last_exit,
            since_ms: e.since_ms,
            health: e.health_text.clone(),
            health_latency_ms: e.health_latency_ms,
            status_text: e.said.status.clone(),
            plugin: e.is_plugin(),
        }
    }

    pub(crate) fn sweep_items(&self) -> Vec<SweepItem> {
        self.entries
            .values()
            .map(|e| SweepItem {
                service: e.name.clone(),
                port: e.spec.port,
                allow: e.spec.allow.clone(),
                signal: e.spec.stop_signal,
                grace: e.spec.stop_timeout.min(SWEEP_GRACE),
                tag: !e.is_plugin(),
            })
            .collect()
    }

    /// Marks `names` needed; those not running or on their way (and not already
    /// waiting) begin a new run. Returns the ones this starts.
    fn need(&mut self, names: &[String]) -> Vec<String> {
        let mut started_here = Vec::new();
        for n in names {
            let Some(e) = self.entries.get_mut(n) else {
                continue;
            };
            e.needed = true;
            if !e.in_flight() && e.state != ServiceState::Waiting {
                // A new run.
                e.attempts = 0;
                e.completed = false;
                e.started = false;
                e.set_state(ServiceState::Waiting, None);
            }
            if !e.in_flight() {
                started_here.push(n.clone());
            }
        }
        started_here
    }

    /// Registers `names` as a request; returns its answer.
    fn wait_for(
        &mut self,
        names: Vec<String>,
        started_here: Vec<String>,
    ) -> (u64, oneshot::Receiver<Result<()>>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.waiters.push(Waiter {
            id,
            names,
            started_here,
            tx,
        });
        (id, rx)
    }

    /// The request `id` ([`Up::within`]) is not answered `within` its deadline:
    /// it answers with what is not ready (state, reason, last probe), once what it
    /// started is stopped again — as for a failure.
    fn up_timed_out(&mut self, id: u64, within: Duration, ctx: &mut Context<Self>) {
        let Some(pos) = self.waiters.iter().position(|w| w.id == id) else {
            return;
        };
        if self.shutting_down || self.closed {
            return;
        }
        let w = self.waiters.remove(pos);
        let pending: Vec<String> = w
            .names
            .iter()
            .filter_map(|n| self.entries.get(n))
            .filter(|e| !(e.ready || (e.completed && e.phase == Phase::Idle)))
            .map(|e| {
                let state = Self::status_of(e).state;
                let mut text = format!("`{}` {state}", e.name);
                if let Some(r) = &e.reason {
                    text.push_str(&format!(" ({r})"));
                }
                if e.state == ServiceState::Starting {
                    text.push_str(&format!(", {}", e.readiness_text()));
                }
                text
            })
            .collect();
        let reason = format!(
            "not ready within {}: {}",
            crate::text::human_duration(within),
            pending.join("; ")
        );
        tracing::warn!("up: {reason}; stopping what it started");
        let mut to_stop = Vec::new();
        for n in &w.started_here {
            if let Some(e) = self.entries.get_mut(n) {
                e.needed = false;
                if e.in_flight() {
                    to_stop.push(n.clone());
                }
            }
        }
        let timeout = self.shutdown_timeout;
        let undo = w.started_here.clone();
        self.cascade(to_stop, timeout, ctx)
            .map(move |_, act, _| {
                for n in &undo {
                    if let Some(e) = act.entries.get_mut(n) {
                        let idle = e.phase == Phase::Idle;
                        if idle && matches!(e.state, ServiceState::Waiting | ServiceState::Stopped)
                        {
                            e.set_state(
                                ServiceState::Stopped,
                                Some("stopped again: up's deadline passed".to_owned()),
                            );
                        }
                    }
                }
                let _ = w.tx.send(Err(Error::NotReady(reason)));
            })
            .spawn(ctx);
    }
}

/// The grace [`crate::Orchestrator::sweep`] gives each service's processes before
/// killing them.
pub const SWEEP_GRACE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff_delay(b, 1), Duration::from_millis(100));
        assert_eq!(backoff_delay(b, 2), Duration::from_millis(200));
        assert_eq!(backoff_delay(b, 3), Duration::from_millis(400));
        assert_eq!(backoff_delay(b, 40), MAX_BACKOFF);
    }

    #[test]
    fn topo_order_puts_dependencies_first_and_names_cycles() {
        let g: BTreeMap<String, Vec<String>> = [
            ("web", vec!["api"]),
            ("api", vec!["db"]),
            ("db", vec![]),
            ("cache", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
        .collect();
        assert_eq!(
            topo_order(&g).expect("no cycle"),
            vec!["cache", "db", "api", "web"]
        );
        let c: BTreeMap<String, Vec<String>> = [("a", vec!["b"]), ("b", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
            .collect();
        assert_eq!(topo_order(&c).expect_err("a cycle"), vec!["a", "b", "a"]);
    }
}
