//! Building a [`Config`] in code, for bots that do not use a file. The result goes
//! through the same semantic checks as a file; errors have no position and read
//! `<builder>: message`.
//!
//! ```
//! use std::time::Duration;
//! use ringmaster::config::{Config, ServiceConfigBuilder};
//! let config = Config::builder("/srv/dashboard")
//!     .shutdown_timeout(Duration::from_secs(20))
//!     .service(
//!         ServiceConfigBuilder::new("api", "python -m uvicorn main:app --port 8000")
//!             .workdir("api")
//!             .port(8000)
//!             .allow(["python", "uvicorn"])
//!             .health_http("http://127.0.0.1:8000/health")
//!             .stop_signal(ringmaster::Signal::Int),
//!     )
//!     .service(
//!         ServiceConfigBuilder::new("frontend", "npm run dev")
//!             .workdir("dashboard")
//!             .port(3000)
//!             .depends_on("api")
//!             .install("npm install", Some("node_modules")),
//!     )
//!     .build()?;
//! assert_eq!(config.start_order(), ["api", "frontend"]);
//! # Ok::<(), ringmaster::config::ConfigErrors>(())
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringmaster_os::Signal;

use super::expand::mark_replica_vars;
use super::parse::{absolute, read_env_file, resolve, EnvFileFailure};
use super::validate::{validate, Spot};
use super::{
    defaults, Condition, Config, ConfigError, ConfigErrors, Dependency, HealthConfig,
    InstallConfig, Probe, RestartConfig, RestartPolicy, ServiceConfig, Settings, StopConfig,
};

/// The file name builder errors carry.
pub const BUILDER_FILE: &str = "<builder>";

/// Builds a [`Config`] in code, for bots that do not use a file
/// (see [`Config::builder`]). Relative paths are resolved against `base_dir`.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    base_dir: PathBuf,
    state_dir: Option<PathBuf>,
    shutdown_timeout: Option<Duration>,
    health_interval: Option<Duration>,
    metrics: Option<SocketAddr>,
    log_max_bytes: Option<u64>,
    start_window: Option<Duration>,
    services: Vec<ServiceConfigBuilder>,
    external: BTreeSet<String>,
}

impl Config {
    /// Starts a [`ConfigBuilder`]; relative paths will be resolved against `base_dir`.
    pub fn builder(base_dir: impl Into<PathBuf>) -> ConfigBuilder {
        ConfigBuilder::new(base_dir)
    }
}

impl ConfigBuilder {
    /// A builder whose relative paths resolve against `base_dir` (made absolute
    /// against the current directory when relative).
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        ConfigBuilder {
            base_dir: base_dir.into(),
            ..Default::default()
        }
    }
    /// `settings.state_dir` (default `.ringmaster`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
    /// `settings.shutdown_timeout` (default 15 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = Some(d);
        self
    }
    /// `settings.health_interval` (default 30 s), the default of every probe's interval.
    pub fn health_interval(mut self, d: Duration) -> Self {
        self.health_interval = Some(d);
        self
    }
    /// `settings.metrics`: the Prometheus endpoint address (off by default).
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }
    /// `settings.log_max_bytes` (default 10 MiB).
    pub fn log_max_bytes(mut self, n: u64) -> Self {
        self.log_max_bytes = Some(n);
        self
    }
    /// `settings.start_window` (default 1 s): how long a service without a
    /// health probe must run before it is ready, unless it sets its own.
    pub fn start_window(mut self, d: Duration) -> Self {
        self.start_window = Some(d);
        self
    }
    /// Declares a service provided outside this configuration, such as a plugin
    /// registered with [`crate::Orchestrator::start_with`]: services may depend on
    /// it. (The orchestrator checks the combined graph.)
    pub fn external(mut self, name: impl Into<String>) -> Self {
        self.external.insert(name.into());
        self
    }
    /// Adds a service.
    pub fn service(mut self, service: ServiceConfigBuilder) -> Self {
        self.services.push(service);
        self
    }

    /// Resolves paths, applies defaults, reads env files and runs the same checks
    /// as a file. Errors from code read `<builder>: message` (line and column 0);
    /// errors inside an env file point into it.
    pub fn build(self) -> Result<Config, ConfigErrors> {
        let base_dir = absolute(&self.base_dir);
        let settings = Settings {
            state_dir: resolve(
                &base_dir,
                self.state_dir
                    .as_deref()
                    .unwrap_or(Path::new(defaults::STATE_DIR)),
            ),
            shutdown_timeout: self.shutdown_timeout.unwrap_or(defaults::SHUTDOWN_TIMEOUT),
            health_interval: self.health_interval.unwrap_or(defaults::HEALTH_INTERVAL),
            metrics: self.metrics,
            log_max_bytes: self.log_max_bytes.unwrap_or(defaults::LOG_MAX_BYTES),
            start_window: self.start_window.unwrap_or(defaults::START_WINDOW),
        };
        let mut errors = Vec::new();
        let here = |message: String| ConfigError {
            file: PathBuf::from(BUILDER_FILE),
            line: 0,
            col: 0,
            message,
        };
        let mut services = BTreeMap::new();
        for b in self.services {
            let name = b.name.clone();
            if services.contains_key(&name) {
                errors.push(here(format!("service `{name}` is defined twice")));
                continue;
            }
            let svc = b.finish(&base_dir, &settings, &mut errors);
            services.insert(name, svc);
        }
        let config = Config {
            path: None,
            base_dir,
            settings,
            services,
        };
        let locate = |_: &str, _: Spot| (PathBuf::from(BUILDER_FILE), 0, 0);
        errors.extend(validate(&config, &self.external, &locate));
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::sorted(errors))
        }
    }
}

/// Builds one service for a [`ConfigBuilder`]. Defaults are those of the file:
/// restart on failure up to 3 attempts with 1 s backoff, stop with TERM and 10 s
/// timeout, health interval from the settings, 2 s timeout, 3 failures.
#[derive(Clone, Debug)]
pub struct ServiceConfigBuilder {
    name: String,
    command: String,
    workdir: Option<PathBuf>,
    env_file: Option<PathBuf>,
    env: Vec<(String, String)>,
    port: Option<u16>,
    allow: Vec<String>,
    depends_on: Vec<Dependency>,
    probe: Option<Probe>,
    health_interval: Option<Duration>,
    health_timeout: Option<Duration>,
    health_failures: Option<u32>,
    health_start_interval: Option<Duration>,
    restart: RestartConfig,
    stop: StopConfig,
    ready_timeout: Duration,
    start_window: Option<Duration>,
    pid_file: Option<PathBuf>,
    install: Option<(String, Option<PathBuf>)>,
    follow_daemon: bool,
    replicas: Option<u32>,
    min_ready: Option<u32>,
    replica_ports: Option<(u16, u16)>,
}

impl ServiceConfigBuilder {
    /// A service `name` running `command` through the platform shell.
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        ServiceConfigBuilder {
            name: name.into(),
            command: command.into(),
            workdir: None,
            env_file: None,
            env: Vec::new(),
            port: None,
            allow: Vec::new(),
            depends_on: Vec::new(),
            probe: None,
            health_interval: None,
            health_timeout: None,
            health_failures: None,
            health_start_interval: None,
            restart: RestartConfig {
                policy: RestartPolicy::OnFailure,
                max_attempts: defaults::MAX_ATTEMPTS,
                backoff: defaults::BACKOFF,
            },
            stop: StopConfig {
                signal: Signal::Term,
                timeout: defaults::STOP_TIMEOUT,
                command: None,
            },
            ready_timeout: defaults::READY_TIMEOUT,
            start_window: None,
            pid_file: None,
            install: None,
            follow_daemon: true,
            replicas: None,
            min_ready: None,
            replica_ports: None,
        }
    }
    /// Working directory, relative to the base folder (default: the base folder).
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(dir.into());
        self
    }
    /// An env file (`KEY=VALUE` lines) read at build time, relative to the base
    /// folder; `env` entries win over it.
    pub fn env_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.env_file = Some(path.into());
        self
    }
    /// One environment variable (no `${VAR}` expansion: values are taken as given).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }
    /// The port the service owns: cleared before start, verified free after stop.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// Who the port janitor may stop when it holds the port (process name, exe
    /// file name or `argv[0]` basename). Adds to the list.
    pub fn allow<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow.extend(names.into_iter().map(Into::into));
        self
    }
    /// Depends on `service` being ready.
    pub fn depends_on(self, service: impl Into<String>) -> Self {
        self.depends_on_condition(service, Condition::Ready)
    }
    /// Depends on `service` reaching `condition`.
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
    /// The health probe (replaces any earlier one).
    pub fn health(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }
    /// Health: HTTP GET `url` (`http://` only: the probe has no TLS), 2xx/3xx is healthy.
    pub fn health_http(self, url: impl Into<String>) -> Self {
        self.health(Probe::Http { url: url.into() })
    }
    /// Health: TCP connect to 127.0.0.1:`port`.
    pub fn health_tcp(self, port: u16) -> Self {
        self.health(Probe::Tcp { port })
    }
    /// Health: `command` exits 0.
    pub fn health_exec(self, command: impl Into<String>) -> Self {
        self.health(Probe::Exec {
            command: command.into(),
        })
    }
    /// Readiness: one of the service's processes sends `READY=1` on the
    /// `NOTIFY_SOCKET` it gets (the sd_notify protocol; Linux).
    pub fn health_notify(self) -> Self {
        self.health(Probe::Notify)
    }
    /// Readiness: a line of the service's output matches `regex`.
    pub fn health_log(self, regex: impl Into<String>) -> Self {
        self.health(Probe::Log {
            regex: regex.into(),
        })
    }
    /// Probe interval once ready (default: the settings' `health_interval`).
    pub fn health_interval(mut self, d: Duration) -> Self {
        self.health_interval = Some(d);
        self
    }
    /// Probe timeout (default 2 s).
    pub fn health_timeout(mut self, d: Duration) -> Self {
        self.health_timeout = Some(d);
        self
    }
    /// Consecutive failures that make it unhealthy (default 3).
    pub fn health_failures(mut self, n: u32) -> Self {
        self.health_failures = Some(n);
        self
    }
    /// Before the first success, the longest wait between two probes that got an
    /// answer (default 100 ms).
    pub fn health_start_interval(mut self, d: Duration) -> Self {
        self.health_start_interval = Some(d);
        self
    }
    /// Restart policy (default on-failure).
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart.policy = policy;
        self
    }
    /// Start attempts (default 3).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.restart.max_attempts = n;
        self
    }
    /// Base of the exponential restart backoff (default 1 s).
    pub fn backoff(mut self, d: Duration) -> Self {
        self.restart.backoff = d;
        self
    }
    /// Stop signal (default TERM); [`crate::Signal`] is re-exported at the crate root.
    pub fn stop_signal(mut self, signal: Signal) -> Self {
        self.stop.signal = signal;
        self
    }
    /// Time between the stop signal and the kill (default 10 s).
    pub fn stop_timeout(mut self, d: Duration) -> Self {
        self.stop.timeout = d;
        self
    }
    /// Whether a launcher that exits with 0 while processes of the service live on
    /// has daemonized (default `true`; see [`ServiceConfig::follow_daemon`]).
    pub fn follow_daemon(mut self, follow: bool) -> Self {
        self.follow_daemon = follow;
        self
    }
    /// How long it may take from its launch to being ready before it fails, with
    /// its last probe result in the reason (default 5 minutes; must be more than 0).
    pub fn ready_timeout(mut self, d: Duration) -> Self {
        self.ready_timeout = d;
        self
    }
    /// A stop command, run first when the service is stopped (with its
    /// environment, workdir and tag) for at most the stop timeout; then the stop
    /// signal goes to whatever is left, and the kill after the stop timeout.
    pub fn stop_command(mut self, command: impl Into<String>) -> Self {
        self.stop.command = Some(command.into());
        self
    }
    /// Without a health probe: how long the service must run before it is ready
    /// (default: the settings' `start_window`, 1 s). Zero: ready when spawned.
    /// Setting it on a service with a probe is an error.
    pub fn start_window(mut self, d: Duration) -> Self {
        self.start_window = Some(d);
        self
    }
    /// PID file, relative to the base folder (default `<state_dir>/<name>.pid`).
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }
    /// An install step run before start unless `unless_exists` (relative to the
    /// workdir) exists.
    pub fn install(
        mut self,
        command: impl Into<String>,
        unless_exists: Option<impl Into<PathBuf>>,
    ) -> Self {
        self.install = Some((command.into(), unless_exists.map(Into::into)));
        self
    }

    /// Runs the service as `n` members, `NAME#0` … (at least 1); with a
    /// [`port`](Self::port), ringmaster listens on it and forwards each connection
    /// to a ready member (see [`ServiceConfig::replicas`]). In such a service the
    /// text `${REPLICA}` (the member's index) and, with a port, `${PORT}` (the
    /// member's own port) are filled in per member in the command, `env` values,
    /// workdir, the http/exec probe, the stop and install commands and the PID
    /// file; a [`health_tcp`](Self::health_tcp) of the service's port probes each
    /// member's own port. An explicit [`pid_file`](Self::pid_file) must hold
    /// `${REPLICA}`, an [`install`](Self::install) needs `unless_exists`, and
    /// `PORT` must not be set in `env` when there is a port.
    pub fn replicas(mut self, n: u32) -> Self {
        self.replicas = Some(n);
        self
    }
    /// With [`replicas`](Self::replicas): how many members must be ready for the
    /// service to be ready (default 1; 1..=replicas).
    pub fn min_ready(mut self, n: u32) -> Self {
        self.min_ready = Some(n);
        self
    }
    /// With [`replicas`](Self::replicas) and a [`port`](Self::port): the ports
    /// `first..=last` the members' own ports are taken from (default: free ports
    /// the OS picks). It must not contain the service's port, and must hold at
    /// least `replicas` ports.
    pub fn replica_ports(mut self, first: u16, last: u16) -> Self {
        self.replica_ports = Some((first, last));
        self
    }

    /// The service with paths resolved and defaults applied.
    fn finish(
        self,
        base_dir: &Path,
        settings: &Settings,
        errors: &mut Vec<ConfigError>,
    ) -> ServiceConfig {
        let name = self.name;
        let here = |message: String| ConfigError {
            file: PathBuf::from(BUILDER_FILE),
            line: 0,
            col: 0,
            message,
        };
        // With replicas: `${REPLICA}` and `${PORT}` become the marks that
        // `ServiceConfig::replica` fills in, as they do in a file.
        let replicated = self.replicas.is_some();
        let with_port = self.port.is_some();
        let mark = |text: String| {
            if replicated {
                mark_replica_vars(&text, with_port)
            } else {
                text
            }
        };
        let mark_path = |path: PathBuf| match path.to_str() {
            Some(text) if replicated => PathBuf::from(mark_replica_vars(text, with_port)),
            _ => path,
        };
        let workdir = self
            .workdir
            .map(|d| resolve(base_dir, mark_path(d)))
            .unwrap_or_else(|| base_dir.to_path_buf());
        let port_is_ours = "`PORT` is set by ringmaster to each replica's own port";
        let mut env = Vec::new();
        if let Some(path) = self.env_file {
            match read_env_file(&resolve(base_dir, path)) {
                Ok(pairs) => {
                    if replicated && with_port && pairs.iter().any(|(k, _)| k == "PORT") {
                        errors.push(here(format!(
                            "service `{name}`: {port_is_ours}; remove it from the env_file"
                        )));
                    }
                    env = pairs
                }
                Err(EnvFileFailure::Invalid(errs)) => errors.extend(errs),
                Err(EnvFileFailure::Unreadable(message)) => {
                    errors.push(here(format!("service `{name}`: {message}")))
                }
            }
        }
        for (k, v) in self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                errors.push(here(format!(
                    "service `{name}`: invalid environment variable name `{k}`"
                )));
                continue;
            }
            if replicated && with_port && k == "PORT" {
                errors.push(here(format!(
                    "service `{name}`: {port_is_ours}; remove it from `env`"
                )));
            }
            env.retain(|(existing, _)| *existing != k);
            env.push((k, mark(v)));
        }
        let any_health_setting = self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_failures.is_some()
            || self.health_start_interval.is_some();
        let probe = self.probe.map(|probe| match probe {
            Probe::Http { url } => Probe::Http { url: mark(url) },
            Probe::Exec { command } => Probe::Exec {
                command: mark(command),
            },
            other => other,
        });
        let health = match probe {
            Some(probe) => Some(HealthConfig {
                probe,
                interval: self.health_interval.unwrap_or(settings.health_interval),
                timeout: self.health_timeout.unwrap_or(defaults::HEALTH_TIMEOUT),
                failures: self.health_failures.unwrap_or(defaults::HEALTH_FAILURES),
                start_interval: self
                    .health_start_interval
                    .unwrap_or(defaults::HEALTH_START_INTERVAL),
            }),
            None => {
                if any_health_setting {
                    errors.push(here(format!(
                        "service `{name}`: health interval, timeout or failures set without a probe (http, tcp, exec, log or notify)"
                    )));
                }
                None
            }
        };
        if self.start_window.is_some() && health.is_some() {
            errors.push(here(format!(
                "service `{name}`: start_window applies only to a service without a health probe (the probe decides when it is ready)"
            )));
        }
        if self.min_ready.is_some() && !replicated {
            errors.push(here(format!(
                "service `{name}`: min_ready applies only to a service with `replicas`"
            )));
        }
        let install = self.install.map(|(command, unless)| InstallConfig {
            command: mark(command),
            unless_exists: unless.map(|p| resolve(&workdir, p)),
        });
        let mut stop = self.stop;
        stop.command = stop.command.map(mark);
        ServiceConfig {
            pid_file: self
                .pid_file
                .map(|p| resolve(base_dir, mark_path(p)))
                .unwrap_or_else(|| settings.state_dir.join(format!("{name}.pid"))),
            name,
            follow_daemon: self.follow_daemon,
            command: mark(self.command),
            workdir,
            env,
            port: self.port,
            allow: self.allow,
            depends_on: self.depends_on,
            health,
            restart: self.restart,
            stop,
            ready_timeout: self.ready_timeout,
            start_window: self.start_window.unwrap_or(settings.start_window),
            install,
            replicas: self.replicas,
            min_ready: self.min_ready.unwrap_or(1),
            replica_ports: self.replica_ports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str) -> ServiceConfigBuilder {
        ServiceConfigBuilder::new(name, format!("run-{name}"))
    }

    #[test]
    fn defaults_and_paths() {
        let base = std::env::temp_dir().join("rm-builder-test");
        let c = Config::builder(&base)
            .state_dir("state")
            .service(
                svc("api")
                    .workdir("api")
                    .port(8000)
                    .health_http("http://127.0.0.1:8000/health")
                    .install("npm i", Some("node_modules")),
            )
            .build()
            .unwrap();
        assert_eq!(c.path, None);
        assert_eq!(c.base_dir, base);
        assert_eq!(c.settings.state_dir, base.join("state"));
        assert_eq!(c.settings.shutdown_timeout, Duration::from_secs(15));
        assert_eq!(c.settings.log_max_bytes, defaults::LOG_MAX_BYTES);
        let api = &c.services["api"];
        assert_eq!(api.workdir, base.join("api"));
        assert_eq!(api.pid_file, base.join("state").join("api.pid"));
        assert_eq!(api.restart.max_attempts, 3);
        assert_eq!(api.restart.policy, RestartPolicy::OnFailure);
        assert_eq!(api.stop.signal, Signal::Term);
        assert_eq!(api.stop.timeout, Duration::from_secs(10));
        let h = api.health.as_ref().unwrap();
        assert_eq!(h.interval, Duration::from_secs(30));
        assert_eq!((h.timeout, h.failures), (Duration::from_secs(2), 3));
        assert_eq!(
            api.install.as_ref().unwrap().unless_exists,
            Some(base.join("api").join("node_modules"))
        );
    }

    #[test]
    fn same_checks_as_a_file() {
        let errors = Config::builder("/tmp")
            .service(svc("a").depends_on("b").port(8000))
            .service(svc("b").depends_on("a").port(8000))
            .service(
                ServiceConfigBuilder::new("c", "  ")
                    .depends_on("nope")
                    .port(0),
            )
            .service(svc("a"))
            .service(svc("d").health_interval(Duration::from_secs(1)))
            .build()
            .unwrap_err();
        let text = errors.to_string();
        for expected in [
            "<builder>: service `a` is defined twice",
            "<builder>: service `c` has an empty command",
            "<builder>: service `c` depends on unknown service `nope`",
            "<builder>: service `c`: port 0 is out of range (1-65535)",
            "<builder>: dependency cycle: a -> b -> a",
            "<builder>: port 8000 is used by both `a` and `b`",
            "<builder>: service `d`: health interval, timeout or failures set without a probe",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_eq!(errors.0.len(), 7, "{text}");
        assert!(errors.0.iter().all(|e| e.line == 0 && e.col == 0));
    }
}
