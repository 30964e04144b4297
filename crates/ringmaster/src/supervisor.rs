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
//!
//! # Where things are
//! - this file: what the Supervisor holds (`Spec`, `Entry`, `Waiter`, the
//!   `Supervisor` itself), building it, its status and sweep views;
//! - `graph.rs`: the graph and its orders — the start order, what a request
//!   needs, dependents, whether a dependency is at its condition;
//! - `life.rs`: a service's life — prepare, launch, ready, exit, restart or fail —
//!   and the requests waiting on it;
//! - `cascade.rs`: stopping by levels within a deadline;
//! - `apply/`: a graph that changes while it runs — services added, removed,
//!   restarted or updated by [`crate::messages::Apply`], one change at a time
//!   (see [`crate::change`]): the queue in `mod.rs`, working a change out in
//!   `plan.rs`, running it in `run.rs`;
//! - `replicas.rs`: a replicated service's members and its balancer — ports,
//!   numbers, readiness told to the balancer, rolling restarts;
//! - `stopped.rs`: one service stopped or started on request (queued as changes);
//! - `reaper.rs`: reaping adopted orphans off the actor's thread;
//! - `usage.rs`: what each running service costs in its status (CPU %, from
//!   the CPU times an earlier status saw);
//! - `handlers.rs`: the message handlers, which route each message to the above.
mod apply;
mod cascade;
mod graph;
mod handlers;
mod life;
mod reaper;
mod replicas;
mod stopped;
mod usage;

pub(crate) use graph::{graph_problems, topo_order, Shape};
use reaper::ReaperHandle;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use ringmaster_os::{CensusTarget, InstanceLock, Signal, StopReport, StopTarget, Tag};
use tokio::sync::oneshot;

use crate::balancer::{Balancer, BalancerStats};
use crate::config::{
    Condition, Dependency, HealthConfig, RestartConfig, RestartPolicy, ServiceConfig, Settings,
};
use crate::health::HealthChecker;
use crate::janitor::{blocking, PortJanitor, SweepItem};
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
    /// A process service's configuration, as given (what a change is compared with;
    /// for a replicated service, its own, with `replicas`).
    config: Option<Box<ServiceConfig>>,
    /// A replicated service: its balancer (the runner is the balancer too).
    group: Option<Group>,
}

/// The balancer of a replicated service ([`crate::balancer`]).
#[derive(Clone)]
struct Group {
    addr: Addr<Balancer>,
    stats: Arc<BalancerStats>,
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
            config: Some(Box::new(cfg.clone())),
            group: None,
        }
    }

    /// A replicated service: its balancer stands for it in the graph. It starts
    /// with the service's dependencies (when its replicas start), listens on its
    /// port, and is ready once `min_ready` replicas are; it is never restarted (a
    /// replica is, on its own) and has no probe (each replica has its own).
    fn of_group(cfg: &ServiceConfig, group: Group) -> Spec {
        Spec {
            runner: Runner::Plugin {
                start: group.addr.clone().recipient(),
                stop: group.addr.clone().recipient(),
            },
            deps: cfg.depends_on.clone(),
            port: cfg.port,
            allow: cfg.allow.clone(),
            health: None,
            restart: RestartConfig {
                policy: RestartPolicy::Never,
                ..cfg.restart.clone()
            },
            stop_timeout: cfg.stop.timeout,
            stop_signal: cfg.stop.signal,
            // Never armed (`launch`): each replica has its own deadline, and the
            // service fails when they all failed (`group_check`).
            ready_timeout: Duration::ZERO,
            stop_command: false,
            start_window: Duration::ZERO,
            workdir: cfg.workdir.clone(),
            env: Vec::new(),
            tag: None,
            config: Some(Box::new(cfg.clone())),
            group: Some(group),
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
            config: None,
            group: None,
        }
    }
}

/// Where a service came from: what a file reload may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The configuration at the start, or a later one applied ([`crate::messages::Change::Config`]).
    Config,
    /// Added on its own ([`crate::messages::Change::Add`]) or a plugin: a file
    /// reload leaves it alone.
    Added,
}

/// One service as the Supervisor tracks it: its [`Spec`] and where it is now.
struct Entry {
    name: String,
    spec: Spec,
    origin: Origin,
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
    /// A change is removing it: nothing needs it any more (see `closure`).
    leaving: bool,
    /// Stopped on request ([`crate::messages::StopService`]) because it depends on
    /// this service: it starts again with it ([`crate::messages::StartService`]).
    stopped_with: Option<String>,
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
    fn new(name: String, spec: Spec, origin: Origin) -> Entry {
        Entry {
            name,
            spec,
            origin,
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
            leaving: false,
            stopped_with: None,
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
    /// An [`Up`]: a change waits until no `Up` is pending.
    up: bool,
    tx: oneshot::Sender<Result<()>>,
}

/// Everything the Supervisor is built from.
pub struct SupervisorSetup {
    pub(crate) services: Vec<ServiceConfig>,
    pub(crate) plugins: Vec<PluginService>,
    pub(crate) shared: ServiceContext,
    pub(crate) lock: Option<InstanceLock>,
    pub(crate) subreaper: bool,
    pub(crate) janitor: Addr<PortJanitor>,
    pub(crate) health: Addr<HealthChecker>,
    /// What the orchestrator's handle sweeps: kept current by the Supervisor.
    pub(crate) registry: Registry,
    /// The settings it started with (what a changed configuration is compared with).
    pub(crate) settings: Settings,
}

/// What the orchestrator handle sweeps without the Supervisor ([`crate::Orchestrator::sweep`],
/// and the last handle dropped without a shutdown), kept current by the
/// Supervisor as services come and go.
#[derive(Default)]
pub(crate) struct Swept {
    /// How to sweep each service of the graph (and of those removed while
    /// something of them may still run).
    pub(crate) items: BTreeMap<String, SweepItem>,
    /// The services it began to start: what a dropped last handle stops.
    pub(crate) touched: BTreeSet<String>,
}

/// [`Swept`], shared with the orchestrator handle.
pub(crate) type Registry = Arc<std::sync::Mutex<Swept>>;

/// Locks the registry, poisoned or not (it holds plain data).
pub(crate) fn registry(r: &Registry) -> std::sync::MutexGuard<'_, Swept> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Owns the dependency graph; see the module documentation.
pub struct Supervisor {
    project: String,
    entries: BTreeMap<String, Entry>,
    order: Vec<String>,
    janitor: Addr<PortJanitor>,
    health: Addr<HealthChecker>,
    subscribers: Vec<Recipient<ServiceEvent>>,
    log_subscribers: LogSubscribers,
    lock: Option<InstanceLock>,
    waiters: Vec<Waiter>,
    /// The id of the next [`Waiter`].
    next_waiter: u64,
    registry: Registry,
    /// What new service actors share.
    shared: ServiceContext,
    /// The settings in force (see [`crate::change`] for what a change applies):
    /// `shutdown_timeout` bounds the cascades of restarts, failures and changes.
    settings: Settings,
    /// A change is being applied ([`crate::messages::Apply`]).
    applying: bool,
    /// Changes waiting for their turn.
    changes: VecDeque<apply::Queued>,
    /// What an earlier run left of services no configuration names is being
    /// stopped (see [`crate::janitor::stop_orphans`]): `None` before the first
    /// [`Up`], `Some(true)` while it runs, `Some(false)` once done. A change waits
    /// for it (it could add a service of such a name).
    orphans: Option<bool>,
    /// Above every `op` a removed service ever had: where the `op` of a service
    /// added later begins, so that a timer of the earlier one never matches it.
    retired_op: u64,
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
    /// What the last full statuses saw of each member's CPU time (their CPU %).
    cpu_meter: usage::SharedMeter,
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

impl Supervisor {
    /// Builds the Supervisor and one ServiceActor per process service (started on
    /// the current arbiter). The graph must be valid (see
    /// [`crate::Orchestrator::start_with`]).
    pub fn new(setup: SupervisorSetup) -> Result<Supervisor> {
        let SupervisorSetup {
            services,
            plugins,
            shared,
            lock,
            subreaper,
            janitor,
            health,
            registry,
            settings,
        } = setup;
        let mut sup = Supervisor {
            project: shared.project.clone(),
            entries: BTreeMap::new(),
            order: Vec::new(),
            janitor,
            health,
            subscribers: Vec::new(),
            log_subscribers: shared.log_subscribers.clone(),
            lock,
            waiters: Vec::new(),
            next_waiter: 0,
            registry,
            shared,
            settings,
            applying: false,
            changes: VecDeque::new(),
            retired_op: 0,
            orphans: None,
            shutting_down: false,
            swept: false,
            shutdown_waiters: Vec::new(),
            closed: false,
            last_report: None,
            reaper: subreaper.then(ReaperHandle::start),
            reap_timer: None,
            cpu_meter: usage::SharedMeter::default(),
        };
        // Members' ports are chosen apart from every port the services use.
        let configured: Vec<u16> = services
            .iter()
            .filter_map(|c| c.port)
            .chain(plugins.iter().filter_map(|p| p.port))
            .collect();
        for cfg in services {
            let members = sup.members_of_new(&cfg, &configured)?;
            let spec = sup.spec_for(&cfg);
            sup.entries.insert(
                cfg.name.clone(),
                Entry::new(cfg.name.clone(), spec, Origin::Config),
            );
            for m in members {
                let spec = sup.spec_for(&m);
                sup.entries.insert(
                    m.name.clone(),
                    Entry::new(m.name.clone(), spec, Origin::Config),
                );
            }
        }
        for p in plugins {
            let spec = Spec::of_plugin(&p, sup.shared.state_dir.clone());
            sup.entries.insert(
                p.name.clone(),
                Entry::new(p.name.clone(), spec, Origin::Added),
            );
        }
        sup.order = sup.graph_order()?;
        sup.rebuild();
        Ok(sup)
    }

    /// A process service's spec, with a new ServiceActor for it (started on the
    /// current arbiter); a replicated service's, with a new balancer (started on
    /// an arbiter of its own).
    fn spec_for(&self, cfg: &ServiceConfig) -> Spec {
        if cfg.replicas.is_some() {
            let (addr, stats) = Balancer::start_own(&cfg.name, cfg.port, cfg.min_ready);
            return Spec::of_group(cfg, Group { addr, stats });
        }
        let addr = ServiceActor::new(cfg.clone(), self.shared.clone()).start();
        Spec::of_service(cfg, Runner::Process(addr), &self.project)
    }

    /// The graph as it is now: each service's dependencies and port.
    fn shape(&self) -> Shape {
        self.entries
            .iter()
            .map(|(n, e)| {
                let deps = e.spec.deps.iter().map(|d| d.service.clone()).collect();
                (n.clone(), (deps, e.spec.port))
            })
            .collect()
    }

    /// The start order of the graph as it is now; `Err` names a cycle.
    fn graph_order(&self) -> Result<Vec<String>> {
        topo_order(&graph::deps_of(&self.shape()))
            .map_err(|cycle| Error::Other(format!("dependency cycle: {}", cycle.join(" → "))))
    }

    /// After the graph changed (and at the start): each service's height — 0
    /// for one nothing depends on, else one more than its highest dependent —
    /// and the sweep registry. `order` must be current.
    fn rebuild(&mut self) {
        for e in self.entries.values_mut() {
            e.height = 0;
        }
        // The stop order's graph: a balancer stands above its members.
        let graph = self.stop_graph();
        let order = topo_order(&graph).unwrap_or_else(|_| self.order.clone());
        // Dependents first (reverse start order).
        for name in order.iter().rev() {
            let Some(e) = self.entries.get(name) else {
                continue;
            };
            let height = e.height;
            let deps = graph.get(name).cloned().unwrap_or_default();
            for d in deps {
                if let Some(dep) = self.entries.get_mut(&d) {
                    dep.height = dep.height.max(height + 1);
                }
            }
        }
        let items = self.sweep_items();
        let mut r = registry(&self.registry);
        for item in items {
            r.items.insert(item.service.clone(), item);
        }
    }

    /// Tells subscribers what happened to `name` (and its balancer, when it is
    /// a replica, whether it takes connections now).
    fn broadcast(&self, name: &str, kind: EventKind) {
        self.tell_group(name);
        let ev = ServiceEvent {
            name: name.to_owned(),
            kind,
        };
        for s in &self.subscribers {
            s.do_send(ev.clone());
        }
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
            cpu_percent: None,
            rss_bytes: None,
            cpu_seconds: None,
            port: e.spec.port,
            restarts: e.restarts,
            last_exit: e.last_exit,
            since_ms: e.since_ms,
            health: e.health_text.clone(),
            health_latency_ms: e.health_latency_ms,
            status_text: e.said.status.clone(),
            plugin: e.is_plugin(),
            balancer: e.spec.group.as_ref().map(|g| g.stats.snapshot()),
            connections: None,
        }
    }

    fn sweep_items(&self) -> Vec<SweepItem> {
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
}

/// The grace [`crate::Orchestrator::sweep`] gives each service's processes before
/// killing them.
pub const SWEEP_GRACE: Duration = Duration::from_secs(1);
