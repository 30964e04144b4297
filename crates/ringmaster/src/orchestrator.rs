//! The handle a bot (or the CLI) holds: start the actors inside the current actix
//! System, then `up`, `status`, `restart`, `shutdown`, `sweep`, and subscribe to events.
//!
//! The last handle dropped without a `shutdown` (an early return with `?`, a
//! panic unwinding) stops what the orchestrator started: see [`Orchestrator`].
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::change::{ApplyReport, ServiceDef};
use crate::config::Config;
use crate::health::HealthChecker;
use crate::janitor::PortJanitor;
use crate::logs::{LogWriter, KEEP};
use crate::messages::{
    Apply, Change, GetStatus, LogLine, Preview, Restart, ServiceEvent, Shutdown, ShutdownReport,
    StartService, StopService, Subscribe, SubscribeLogs, SweepReport, Up,
};
use crate::plugin::PluginService;
use crate::service::ServiceContext;
use crate::status::ServiceStatus;
use crate::supervisor::{Supervisor, SupervisorSetup};
use crate::{Error, Result};

/// Options of an embedded orchestrator.
#[derive(Clone, Debug)]
pub struct Options {
    /// Linux: make this process a child subreaper (default true). A bot that
    /// manages other children itself may opt out.
    pub subreaper: bool,
    /// Take the state directory's instance lock (default true).
    pub lock: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            subreaper: true,
            lock: true,
        }
    }
}

/// A running orchestrator. Cheap to clone: every clone is a handle to the same
/// Supervisor.
///
/// # Dropped without a shutdown
/// When the last handle is dropped after [`Orchestrator::up`] (or
/// [`Orchestrator::restart`]) and no [`Orchestrator::shutdown`] or
/// [`Orchestrator::sweep`] has finished — a bot that returned early with `?`, or
/// a panic unwinding through it — the drop stops what this orchestrator started,
/// synchronously, before it returns: restarts are held, then, for each service it
/// began to start, every process carrying the service's tag gets its stop signal
/// and is killed after a short grace (its stop timeout, at most
/// [`SWEEP_GRACE`](crate::supervisor::SWEEP_GRACE)), and its port is cleared of
/// authorized holders, all services in parallel. A `tracing` warning names the
/// services and what was stopped.
///
/// What it cannot cover: a bot that never unwinds — killed with SIGKILL, aborted
/// (`panic = "abort"`, `std::process::exit`), out of memory. Its services keep
/// running, adopted by PID 1, until the next start on the same state directory:
/// each service's preparation stops what carries its tag (and its PID file names)
/// and clears its port before launching it again.
#[derive(Clone)]
pub struct Orchestrator {
    supervisor: Addr<crate::supervisor::Supervisor>,
    guard: Arc<DropGuard>,
}

/// Shared by every handle of one orchestrator; its `Drop` is the last handle's.
struct DropGuard {
    supervisor: Addr<crate::supervisor::Supervisor>,
    project: String,
    /// What to sweep, kept current by the Supervisor as services come and go.
    registry: crate::supervisor::Registry,
    /// `up` or `restart` was called: something may run.
    used: AtomicBool,
    /// A shutdown or a sweep finished: nothing is left to stop.
    closed: AtomicBool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.used.load(Ordering::SeqCst) || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let items: Vec<_> = {
            let r = crate::supervisor::registry(&self.registry);
            r.items
                .values()
                .filter(|i| r.touched.contains(&i.service))
                .cloned()
                .collect()
        };
        if items.is_empty() {
            return;
        }
        let names: Vec<&str> = items.iter().map(|i| i.service.as_str()).collect();
        tracing::warn!(
            "the last handle to the orchestrator was dropped without shutdown: stopping {} by tag and port",
            names.join(", ")
        );
        // Nothing restarts what is stopped now (when the Supervisor still runs).
        self.supervisor.do_send(crate::messages::HoldRestarts);
        let started = Instant::now();
        let report = crate::janitor::sweep_blocking(&self.project, &items);
        let stopped: Vec<String> = report.stopped.iter().map(|p| p.to_string()).collect();
        tracing::warn!(
            "dropped without shutdown: stopped {} process(es) in {} ({}){}{}",
            stopped.len(),
            crate::text::human_duration(started.elapsed()),
            stopped.join(", "),
            if report.refused.is_empty() {
                String::new()
            } else {
                format!(
                    "; refused: {}",
                    report
                        .refused
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
            if report.ports_still_held.is_empty() {
                String::new()
            } else {
                format!("; ports still held: {:?}", report.ports_still_held)
            }
        );
    }
}

/// Checks the combined graph of configured services and plugins: unique names,
/// known dependencies, one service per port, no cycle; and that no plugin has a
/// `notify` probe (a plugin has no process to send it).
fn check_graph(config: &Config, plugins: &[PluginService]) -> Result<()> {
    let mut graph: crate::supervisor::Shape = config
        .services
        .iter()
        .map(|(n, s)| {
            let deps = s.depends_on.iter().map(|d| d.service.clone()).collect();
            (n.clone(), (deps, s.port))
        })
        .collect();
    for p in plugins {
        if let Some(why) = p.refusal() {
            return Err(Error::Other(why));
        }
        if graph.contains_key(&p.name) {
            return Err(Error::Other(format!(
                "plugin `{}` has the name of another service",
                p.name
            )));
        }
        let deps = p.depends_on.iter().map(|d| d.service.clone()).collect();
        graph.insert(p.name.clone(), (deps, p.port));
    }
    let problems = crate::supervisor::graph_problems(&graph, &[]);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(problems.join("; ")))
    }
}

impl Orchestrator {
    /// Starts the Supervisor, PortJanitor and HealthChecker in the current actix
    /// System. Takes the instance lock (error naming the running pid if held).
    /// Installs no signal handlers.
    pub fn start(config: Config, options: Options) -> Result<Orchestrator> {
        Self::start_with(config, options, Vec::new())
    }

    /// Like [`Orchestrator::start`], with plugin services registered in code
    /// ([`crate::plugin`]). Process services may depend on plugins and plugins on
    /// process services; names must be unique across both.
    pub fn start_with(
        config: Config,
        options: Options,
        plugins: Vec<PluginService>,
    ) -> Result<Orchestrator> {
        // Actors can only start inside a running System (on its arbiter, within
        // its block_on): checked before anything is touched (no lock taken).
        if actix::System::try_current().is_none() || tokio::runtime::Handle::try_current().is_err()
        {
            return Err(Error::NoSystem);
        }
        check_graph(&config, &plugins)?;
        let state_dir = config.settings.state_dir.clone();
        let lock = if options.lock {
            Some(ringmaster_os::InstanceLock::acquire(&state_dir)?)
        } else {
            ringmaster_os::pidfile::ensure_state_dir(&state_dir)?;
            None
        };
        let subreaper = options.subreaper && ringmaster_os::become_subreaper()?;
        let registry = crate::supervisor::Registry::default();
        let project = ringmaster_os::project_id(&state_dir);

        let janitor = PortJanitor::new(project.clone()).start();
        let health = HealthChecker::new().start();
        let shared = ServiceContext {
            state_dir: state_dir.clone(),
            project: project.clone(),
            logs: LogWriter::start(
                crate::logs::log_dir(&state_dir),
                config.settings.log_max_bytes,
                KEEP,
            ),
            health: Some(health.clone().recipient()),
            log_subscribers: Default::default(),
        };
        let supervisor = Supervisor::new(SupervisorSetup {
            services: config.services.values().cloned().collect(),
            plugins,
            shared,
            lock,
            subreaper,
            janitor,
            health,
            registry: registry.clone(),
            settings: config.settings.clone(),
        })?;
        let supervisor = supervisor.start();
        Ok(Orchestrator {
            supervisor: supervisor.clone(),
            guard: Arc::new(DropGuard {
                supervisor,
                project,
                registry,
                used: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Starts services (all, or `only` plus their dependencies) in dependency order;
    /// resolves when every one is ready, or with the first failure (what it started
    /// is then stopped again). A service that is not ready within its
    /// `ready_timeout` of its launch is such a failure, with its last probe result
    /// in the reason.
    pub async fn up(&self, only: Option<Vec<String>>) -> Result<()> {
        self.send_up(Up { only, within: None }).await
    }

    /// [`Orchestrator::up`] with an overall deadline: when not every service is
    /// ready `within` it, what this call started is stopped again and it answers
    /// [`Error::NotReady`], naming each service that was not ready with its state,
    /// reason and last probe result.
    pub async fn up_within(&self, only: Option<Vec<String>>, within: Duration) -> Result<()> {
        self.send_up(Up {
            only,
            within: Some(within),
        })
        .await
    }

    async fn send_up(&self, up: Up) -> Result<()> {
        self.guard.used.store(true, Ordering::SeqCst);
        self.supervisor
            .send(up)
            .await
            .map_err(|_| Error::SupervisorGone)?
    }

    /// Status of every service, in start order. Answered during a shutdown too
    /// (the services being stopped show `stopping`).
    pub async fn status(&self) -> Result<Vec<ServiceStatus>> {
        self.supervisor
            .send(GetStatus { brief: false })
            .await
            .map_err(|_| Error::SupervisorGone)
    }

    /// The status without the census of the process table: states, reasons,
    /// restarts and health as [`Orchestrator::status`] gives them, but `pid` as
    /// last reported (the spawned root, or a daemon's pid) and no `members` or
    /// `root_pid`. Cheap, for polling a start-up's progress.
    pub async fn status_brief(&self) -> Result<Vec<ServiceStatus>> {
        self.supervisor
            .send(GetStatus { brief: true })
            .await
            .map_err(|_| Error::SupervisorGone)
    }

    /// Stops one service (its dependents first) and starts it again; resolves once
    /// it and the dependents it stopped are ready again.
    pub async fn restart(&self, name: &str) -> Result<()> {
        self.ask(Restart {
            name: name.to_owned(),
        })
        .await
    }

    /// Sends the Supervisor a request that uses the handle, and waits for its answer.
    async fn ask<M, T>(&self, msg: M) -> Result<T>
    where
        M: Message<Result = Result<T>> + Send + 'static,
        T: Send + 'static,
        Supervisor: Handler<M>,
    {
        self.guard.used.store(true, Ordering::SeqCst);
        self.supervisor
            .send(msg)
            .await
            .map_err(|_| Error::SupervisorGone)?
    }

    /// Stops `name` and what runs of its dependents (dependents first); they
    /// stay stopped — their restart policies do not apply — until
    /// [`Orchestrator::start_service`]. Stopping one that does not run is not an
    /// error. ([`Error::UnknownService`] for an unknown name.)
    pub async fn stop_service(&self, name: &str) -> Result<()> {
        self.ask(StopService {
            name: name.to_owned(),
        })
        .await
    }

    /// Starts `name` again, with what it depends on (started when it does not
    /// run) and the dependents [`Orchestrator::stop_service`] stopped with it;
    /// resolves once they are ready. Starting one that runs is not an error.
    pub async fn start_service(&self, name: &str) -> Result<()> {
        self.ask(StartService {
            name: name.to_owned(),
        })
        .await
    }

    /// Makes the running stack what `config` says (a file reloaded): services
    /// added, removed, restarted or updated in place, unchanged ones untouched;
    /// the settings taken where they can change (the report says which need a
    /// new `up`). Services added with [`Orchestrator::add_service`] and plugins
    /// are left alone (a service of the same name in `config` takes one over).
    /// See [`crate::change`] for the rules. Resolves once what it started is
    /// ready (a failure is in [`ApplyReport::failed`]); an error is a change that
    /// cannot be made, and nothing was changed.
    ///
    /// `config` should come from [`Config::load`] (or a builder) with the same
    /// state directory; its services may depend on plugins and on services
    /// added on their own (load it with [`Config::load_with_external`]).
    pub async fn apply(&self, config: Config) -> Result<ApplyReport> {
        self.change(Change::Config(Box::new(config))).await
    }

    /// Adds one service — a process service ([`crate::config::ServiceConfig`], from a
    /// [`crate::config::ConfigBuilder`]) or a plugin ([`PluginService`]) — and starts
    /// it, gated on its dependencies as at `up`. Resolves once it is ready. Refused
    /// (nothing changed) when the name is taken, a dependency is unknown, or its
    /// port is another service's.
    pub async fn add_service(&self, service: impl Into<ServiceDef>) -> Result<ApplyReport> {
        self.change(Change::Add(service.into())).await
    }

    /// Stops one service through the cascade and forgets it. Refused (nothing
    /// changed) when another service depends on it.
    pub async fn remove_service(&self, name: &str) -> Result<ApplyReport> {
        self.change(Change::Remove(name.to_owned())).await
    }

    /// Runs `replicas` replicas of `name`, a service with `replicas` in its
    /// configuration: new replicas start (the report comes once they are ready),
    /// surplus ones — the highest numbers — are drained by the balancer, then
    /// stopped. What depends on the service is not touched. Refused
    /// ([`Error::Rejected`]) for a service without `replicas`, or below its
    /// `min_ready`.
    pub async fn scale(&self, name: &str, replicas: u32) -> Result<ApplyReport> {
        self.change(Change::Scale {
            service: name.to_owned(),
            replicas,
        })
        .await
    }

    /// What [`Orchestrator::apply`] of `config` would do now — the same report,
    /// with `preview` set — without changing anything (`ringmaster reload
    /// --dry-run`). Refused like `apply` when the change could not be made.
    pub async fn preview(&self, config: Config) -> Result<ApplyReport> {
        self.supervisor
            .send(Preview(Change::Config(Box::new(config))))
            .await
            .map_err(|_| Error::SupervisorGone)?
    }

    async fn change(&self, change: Change) -> Result<ApplyReport> {
        self.ask(Apply(change)).await
    }

    /// The shutdown cascade; completes before it returns (so the caller may stop
    /// the actix System right after). Releases the instance lock.
    pub async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        let report = self
            .supervisor
            .send(Shutdown { deadline })
            .await
            .map_err(|_| Error::SupervisorGone)?;
        self.guard.closed.store(true, Ordering::SeqCst);
        Ok(report)
    }

    /// Forced fallback: sweep every configured port and tag (authorized only).
    /// Runs without the Supervisor (it works while a shutdown hangs, or when the
    /// Supervisor is gone), each service on a blocking thread.
    pub async fn sweep(&self) -> Result<SweepReport> {
        // First keep the Supervisor from restarting what the sweep kills. Bounded:
        // the sweep must work even when the Supervisor does not answer.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.supervisor.send(crate::messages::HoldRestarts),
        )
        .await;
        let items: Vec<_> = crate::supervisor::registry(&self.guard.registry)
            .items
            .values()
            .cloned()
            .collect();
        let report = crate::janitor::sweep(self.guard.project.clone(), items).await;
        self.guard.closed.store(true, Ordering::SeqCst);
        Ok(report)
    }

    /// Receive every service event.
    pub fn subscribe(&self, to: Recipient<ServiceEvent>) {
        self.supervisor.do_send(Subscribe(to));
    }

    /// Receive every output line.
    pub fn subscribe_logs(&self, to: Recipient<LogLine>) {
        self.supervisor.do_send(SubscribeLogs(to));
    }

    /// The supervisor's address, for plugins and advanced use.
    pub fn supervisor(&self) -> &Addr<crate::supervisor::Supervisor> {
        &self.supervisor
    }

    /// The project id of the state directory (the first half of every tag).
    pub fn project(&self) -> &str {
        &self.guard.project
    }
}
