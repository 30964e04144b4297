//! The handle a bot (or the CLI) holds: start the actors inside the current actix
//! System, then `up`, `status`, `restart`, `shutdown`, `sweep`, and subscribe to events.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::config::Config;
use crate::health::HealthChecker;
use crate::janitor::PortJanitor;
use crate::logs::{LogWriter, KEEP};
use crate::messages::{
    GetStatus, LogLine, Restart, ServiceEvent, Shutdown, ShutdownReport, Subscribe, SubscribeLogs,
    SweepReport, Up,
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

/// A running orchestrator. Cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    supervisor: Addr<crate::supervisor::Supervisor>,
    project: String,
    sweep_items: Arc<Vec<crate::janitor::SweepItem>>,
}

/// Checks the combined graph of configured services and plugins: unique names,
/// known dependencies, no cycle.
fn check_graph(config: &Config, plugins: &[PluginService]) -> Result<()> {
    let mut graph: BTreeMap<String, Vec<String>> = config
        .services
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                s.depends_on.iter().map(|d| d.service.clone()).collect(),
            )
        })
        .collect();
    for p in plugins {
        if graph.contains_key(&p.name) {
            return Err(Error::Other(format!(
                "plugin `{}` has the name of another service",
                p.name
            )));
        }
        graph.insert(
            p.name.clone(),
            p.depends_on.iter().map(|d| d.service.clone()).collect(),
        );
    }
    let known: BTreeSet<&String> = graph.keys().collect();
    for (name, deps) in &graph {
        if let Some(d) = deps.iter().find(|d| !known.contains(d)) {
            return Err(Error::Other(format!(
                "service `{name}` depends on unknown service `{d}`"
            )));
        }
    }
    crate::supervisor::topo_order(&graph)
        .map(|_| ())
        .map_err(|cycle| Error::Other(format!("dependency cycle: {}", cycle.join(" → "))))
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
        check_graph(&config, &plugins)?;
        let state_dir = config.settings.state_dir.clone();
        let lock = if options.lock {
            Some(ringmaster_os::InstanceLock::acquire(&state_dir)?)
        } else {
            ringmaster_os::pidfile::ensure_state_dir(&state_dir)?;
            None
        };
        let subreaper = options.subreaper && ringmaster_os::become_subreaper()?;
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
            shutdown_timeout: config.settings.shutdown_timeout,
            lock,
            subreaper,
            janitor,
            health,
        })?;
        let sweep_items = Arc::new(supervisor.sweep_items());
        Ok(Orchestrator {
            supervisor: supervisor.start(),
            project,
            sweep_items,
        })
    }

    /// Starts services (all, or `only` plus their dependencies) in dependency order;
    /// resolves when every one is ready, or with the first failure (what it started
    /// is then stopped again).
    pub async fn up(&self, only: Option<Vec<String>>) -> Result<()> {
        self.supervisor
            .send(Up { only })
            .await
            .map_err(|_| Error::SupervisorGone)?
    }

    /// Status of every service, in start order. Answered during a shutdown too
    /// (the services being stopped show `stopping`).
    pub async fn status(&self) -> Result<Vec<ServiceStatus>> {
        self.supervisor
            .send(GetStatus)
            .await
            .map_err(|_| Error::SupervisorGone)
    }

    /// Stops one service (its dependents first) and starts it again; resolves once
    /// it and the dependents it stopped are ready again.
    pub async fn restart(&self, name: &str) -> Result<()> {
        self.supervisor
            .send(Restart {
                name: name.to_owned(),
            })
            .await
            .map_err(|_| Error::SupervisorGone)?
    }

    /// The shutdown cascade; completes before it returns (so the caller may stop
    /// the actix System right after). Releases the instance lock.
    pub async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.supervisor
            .send(Shutdown { deadline })
            .await
            .map_err(|_| Error::SupervisorGone)
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
        Ok(crate::janitor::sweep(self.project.clone(), self.sweep_items.as_ref().clone()).await)
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
        &self.project
    }
}
