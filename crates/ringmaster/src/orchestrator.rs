//! The handle a bot (or the CLI) holds: start the actors inside the current actix
//! System, then `up`, `status`, `restart`, `shutdown`, `sweep`, and subscribe to events.
use std::time::Duration;

use actix::prelude::*;

use crate::config::Config;
use crate::messages::{LogLine, ServiceEvent, ShutdownReport, SweepReport};
use crate::plugin::PluginService;
use crate::status::ServiceStatus;
use crate::Result;

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
        todo!()
    }
    /// Starts services (all, or `only` plus their dependencies) in dependency order;
    /// resolves when every one is ready, or with the first failure.
    pub async fn up(&self, only: Option<Vec<String>>) -> Result<()> {
        todo!()
    }
    /// Status of every service.
    pub async fn status(&self) -> Result<Vec<ServiceStatus>> {
        todo!()
    }
    /// Stops and starts one service.
    pub async fn restart(&self, name: &str) -> Result<()> {
        todo!()
    }
    /// The shutdown cascade; completes before it returns.
    pub async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        todo!()
    }
    /// Forced fallback: sweep every configured port and tag (authorized only).
    pub async fn sweep(&self) -> Result<SweepReport> {
        todo!()
    }
    /// Receive every service event.
    pub fn subscribe(&self, to: Recipient<ServiceEvent>) {
        todo!()
    }
    /// Receive every output line.
    pub fn subscribe_logs(&self, to: Recipient<LogLine>) {
        todo!()
    }
    /// The supervisor's address, for plugins and advanced use.
    pub fn supervisor(&self) -> &Addr<crate::supervisor::Supervisor> {
        &self.supervisor
    }
}
