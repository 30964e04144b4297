//! Plugin services: a service that is not a process but an actor of your own (an
//! in-process HTTP server, a connection pool, a bot component), registered in code
//! with [`PluginService`] and started by [`crate::Orchestrator::start_with`].
//!
//! # The protocol
//! A plugin is any actor that handles [`Start`] and [`Stop`]:
//! - On [`Start`] it begins its work and reports its events with
//!   `start.events.report(kind)` (a [`Reporter`](crate::messages::Reporter) bound
//!   to the plugin's registered name, `start.name`: the plugin never writes its
//!   name into an event, so it cannot get it wrong): `Spawned { pid: None }` once
//!   it runs, and — when it has no health probe — `Ready` once it serves. With a
//!   health probe ([`PluginService::health`]) the probe decides readiness like
//!   for a process service (a `Ready` the plugin sends itself is accepted too).
//!   Not ready within its `ready_timeout` ([`PluginService::ready_timeout`],
//!   default 5 minutes) of the `Start`, it is stopped and fails.
//! - When it stops on its own it reports `Exited { code }` (`Some(0)`: done; other
//!   codes and `None`: a failure); the restart policy then applies and a new
//!   [`Start`] follows. `Failed { reason }` fails it for good (no restart).
//! - On [`Stop`] (sent only after a [`Start`]) it stops within `grace` and replies
//!   with a [`StopReport`](crate::StopReport) (`StopReport::default()`
//!   with `elapsed` set is fine for a plugin without processes). It need not
//!   report `Stopped`: the Supervisor does. A plugin that does not answer within
//!   `grace` + 5 s (or whose actor is gone) is named in the shutdown report's
//!   [`ServiceStopReport::no_answer`](crate::messages::ServiceStopReport::no_answer),
//!   which makes the report not clean; its `StopReport` stays empty.
//!
//! A plugin takes part in gating (process services may `depends_on` its name and
//! it may depend on them), health checks, restarts and the shutdown cascade like a
//! process service. Its port, when it has one, is cleared before its start and
//! checked after its stop.
//!
//! # Example
//! ```no_run
//! use actix::prelude::*;
//! use ringmaster::messages::{EventKind, Start, Stop};
//! use ringmaster::plugin::PluginService;
//! use ringmaster::StopReport;
//!
//! /// A plugin that is ready as soon as it starts.
//! struct Cache;
//! impl Actor for Cache { type Context = Context<Self>; }
//!
//! impl Handler<Start> for Cache {
//!     type Result = ();
//!     fn handle(&mut self, start: Start, _: &mut Context<Self>) {
//!         // ... start the work here ...
//!         start.events.report(EventKind::Spawned { pid: None });
//!         start.events.report(EventKind::Ready);
//!     }
//! }
//!
//! impl Handler<Stop> for Cache {
//!     type Result = MessageResult<Stop>;
//!     fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
//!         // ... stop the work here ...
//!         MessageResult(StopReport::default())
//!     }
//! }
//!
//! # fn run(config: ringmaster::Config) -> ringmaster::Result<()> {
//! let cache = Cache.start();
//! let plugin = PluginService::from_addr("cache", &cache).port(6380);
//! let orch = ringmaster::Orchestrator::start_with(
//!     config,
//!     ringmaster::Options::default(),
//!     vec![plugin],
//! )?;
//! # Ok(()) }
//! ```
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::config::{
    defaults, Condition, Dependency, HealthConfig, Probe, RestartConfig, RestartPolicy,
};
use crate::messages::{Start, Stop};

/// A plugin service registered in code: its name, where to send [`Start`] and
/// [`Stop`], and what a process service would have in its configuration
/// (dependencies, health probe, port, restart policy, stop timeout).
#[derive(Clone)]
pub struct PluginService {
    pub(crate) name: String,
    pub(crate) start: Recipient<Start>,
    pub(crate) stop: Recipient<Stop>,
    pub(crate) depends_on: Vec<Dependency>,
    pub(crate) health: Option<HealthConfig>,
    pub(crate) port: Option<u16>,
    pub(crate) allow: Vec<String>,
    pub(crate) restart: RestartConfig,
    pub(crate) stop_timeout: Duration,
    pub(crate) ready_timeout: Duration,
}

impl std::fmt::Debug for PluginService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginService")
            .field("name", &self.name)
            .field("depends_on", &self.depends_on)
            .field("health", &self.health)
            .field("port", &self.port)
            .field("restart", &self.restart)
            .field("stop_timeout", &self.stop_timeout)
            .field("ready_timeout", &self.ready_timeout)
            .finish_non_exhaustive()
    }
}

impl PluginService {
    /// Why this plugin cannot join a stack, if it cannot: a `notify` probe (a
    /// plugin has no process to send `READY=1`).
    pub(crate) fn refusal(&self) -> Option<String> {
        self.health
            .as_ref()
            .is_some_and(|h| h.probe == Probe::Notify)
            .then(|| {
                format!(
                    "plugin `{}` has a notify probe: a plugin has no process to send READY=1; \
                     report Ready from the plugin instead",
                    self.name
                )
            })
    }

    /// A plugin named `name` whose actor receives [`Start`] at `start` and [`Stop`]
    /// at `stop`. Defaults: no dependency, no health probe (the plugin reports
    /// `Ready` itself), no port, restart `on-failure` with the usual attempts and
    /// backoff, stop timeout 10 s, ready timeout 5 minutes.
    pub fn new(name: impl Into<String>, start: Recipient<Start>, stop: Recipient<Stop>) -> Self {
        PluginService {
            name: name.into(),
            start,
            stop,
            depends_on: Vec::new(),
            health: None,
            port: None,
            allow: Vec::new(),
            restart: RestartConfig {
                policy: RestartPolicy::OnFailure,
                max_attempts: defaults::MAX_ATTEMPTS,
                backoff: defaults::BACKOFF,
            },
            stop_timeout: defaults::STOP_TIMEOUT,
            ready_timeout: defaults::READY_TIMEOUT,
        }
    }

    /// A plugin whose actor at `addr` handles both [`Start`] and [`Stop`].
    pub fn from_addr<A>(name: impl Into<String>, addr: &Addr<A>) -> Self
    where
        A: Actor + Handler<Start> + Handler<Stop>,
        A::Context: ToEnvelope<A, Start> + ToEnvelope<A, Stop>,
    {
        Self::new(name, addr.clone().recipient(), addr.clone().recipient())
    }

    /// Starts only once `service` (a configured service or another plugin) is ready.
    pub fn depends_on(self, service: impl Into<String>) -> Self {
        self.depends_on_condition(service, Condition::Ready)
    }

    /// Starts only once `service` reached `condition` (the same name as
    /// [`crate::config::ServiceConfigBuilder::depends_on_condition`]).
    pub fn depends_on_condition(
        mut self,
        service: impl Into<String>,
        condition: Condition,
    ) -> Self {
        self.depends_on.push(Dependency {
            service: service.into(),
            condition,
        });
        self
    }

    /// Probes it with `probe` (default interval 30 s, timeout 2 s, 3 failures):
    /// its first success makes it ready.
    pub fn health(self, probe: Probe) -> Self {
        self.health_config(HealthConfig {
            probe,
            interval: defaults::HEALTH_INTERVAL,
            timeout: defaults::HEALTH_TIMEOUT,
            failures: defaults::HEALTH_FAILURES,
            start_interval: defaults::HEALTH_START_INTERVAL,
        })
    }

    /// Probes it with a full health configuration.
    pub fn health_config(mut self, health: HealthConfig) -> Self {
        self.health = Some(health);
        self
    }

    /// The port it owns: cleared before its start, checked free after its stop.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Who the port janitor may stop when it holds the plugin's port (process
    /// name, exe file name or `argv[0]` basename).
    pub fn allow<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.allow.extend(names.into_iter().map(Into::into));
        self
    }

    /// Its restart policy (default `on-failure`, 3 attempts, 1 s backoff).
    pub fn restart(mut self, restart: RestartConfig) -> Self {
        self.restart = restart;
        self
    }

    /// How long its [`Stop`] may take (its `grace`; default 10 s).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// How long it may take from its [`Start`] to being ready (its `Ready`, or
    /// its first successful probe) before it is stopped and fails, with its last
    /// probe result in the reason (default 5 minutes).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its dependencies.
    pub fn dependencies(&self) -> &[Dependency] {
        &self.depends_on
    }
}
