//! Configuration: the validated model ([`Config`]), loaded from `ringmaster.toml`
//! ([`Config::load`], [`Config::parse`]) or built in code ([`ConfigBuilder`]).
//! Every error found is reported at once, each with `file:line:col`; nothing is
//! returned (so nothing can start) when any error exists.
//!
//! # The file
//!
//! ```toml
//! [settings]                       # every key optional
//! state_dir = ".ringmaster"        # lock, PID files, logs, control socket
//! shutdown_timeout = "15s"         # deadline of the whole shutdown cascade
//! health_interval = "30s"          # default interval of every probe
//! metrics = "127.0.0.1:9464"       # opt-in Prometheus endpoint (default off)
//! log_max_bytes = 10485760         # per-service log size before rotation (10 MiB)
//! start_window = "1s"              # default start window of probe-less services
//!
//! [services.api]
//! command = "uvicorn main:app --port ${API_PORT:-8000}"   # required, platform shell
//! workdir = "api"                  # default: the file's folder
//! env_file = "api/.env"            # KEY=VALUE lines; `env` wins over it
//! env = { PYTHONUNBUFFERED = "1", WORKERS = 2 }           # numbers/booleans as written
//! port = 8000                      # 1-65535, one service per port; or "${API_PORT:-8000}"
//! allow = ["python", "uvicorn"]
//! depends_on = ["db"]              # or { db = "ready", migrate = "completed", cache = "started" }
//! health = { http = "http://127.0.0.1:8000/health", interval = "30s", timeout = "2s", failures = 3 }
//!                                  # exactly one of http (http:// only, no TLS), tcp (a port), exec (a command), log (a regex)
//! restart = { policy = "on-failure", max_attempts = 3, backoff = "1s" }  # never | on-failure | always
//! stop = { signal = "TERM", timeout = "10s" }  # also `command = "redis-cli shutdown"`, run first
//! ready_timeout = "5m"             # launch → ready, else it fails (default 5m)
//! start_window = "1s"              # without a probe: ready once it ran this long (settings default)
//! pid_file = ".api.pid"            # default: <state_dir>/<name>.pid
//! install = { command = "pip install -r requirements.txt", unless_exists = ".venv" }
//! replicas = 3                     # members api#0, api#1, api#2; ringmaster balances :8000
//! min_ready = 1                    # members ready for the service to be ready (1..=replicas)
//! replica_ports = "9100-9199"      # members' own ports (default: picked by the OS)
//! ```
//!
//! - Durations: `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"`, `"1.5s"` ([`parse_duration`]).
//! - Relative paths (`state_dir`, `workdir`, `pid_file`, `env_file`) resolve against
//!   the file's folder; `install.unless_exists` against the service's workdir.
//! - `${VAR}` and `${VAR:-default}` expand in `command`, `env` values, `workdir`,
//!   `install.command`, `stop.command`, the `http`/`exec` probes, and `port` and the `tcp` probe
//!   when they are strings (then read as a number), from what the service sees:
//!   its `env` table, then its `env_file`, then the process environment (`env`
//!   values themselves expand from the `env_file` and the process environment
//!   only); `pid_file` too. An unset `${VAR}` without default is an error; `$${`
//!   writes a literal `${`; `$VAR` and `$$` are left to the shell.
//! - With `replicas`, `${REPLICA}` and (with a `port`) `${PORT}` are not looked
//!   up: they stay marks until [`ServiceConfig::replica`] makes a member's
//!   configuration, with its index and its own port in their place.
//! - Unknown keys are errors at every level. Service names are letters, digits,
//!   `-`, `_`, `.` (they become file names).
//! - Beyond the DESIGN contract: `settings.metrics`, `settings.log_max_bytes`,
//!   `start_window` (settings and service), `stop.command`, `env_file`, the
//!   table form of `depends_on`, numbers/booleans as `env` values,
//!   `port`/`tcp` as expandable strings, `${VAR}` in `pid_file`, and
//!   `replicas`/`min_ready`/`replica_ports` (members made by
//!   [`ServiceConfig::replica`], named by [`replica_name`]).
//!
//! # Where things live
//!
//! - `parse.rs`: TOML with spans, raw serde structs refusing unknown keys
//!   (deserialized key by key, so each bad key is one error and the rest is
//!   still checked), conversion into the model (defaults, paths, `${VAR}`, `env_file`).
//! - `validate.rs`: checks shared by the file and the builder (names, commands,
//!   ports, probes, unknown and duplicate dependencies, cycles) and the start order.
//! - `builder.rs`: [`ConfigBuilder`] and [`ServiceConfigBuilder`].
//! - `duration.rs`: the duration parser.
//! - `expand.rs`: `${VAR}` expansion and env files.
mod builder;
mod duration;
mod expand;
mod parse;
mod raw;
mod validate;

pub use builder::{ConfigBuilder, ServiceConfigBuilder, BUILDER_FILE};
pub use duration::{parse_duration, MAX as MAX_DURATION};
pub(crate) use expand::{PORT_MARK, REPLICA_MARK};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringmaster_os::Signal;
use serde::Serialize;

/// Defaults that users of the Python tool this replaces know.
pub mod defaults {
    use std::time::Duration;
    pub const STATE_DIR: &str = ".ringmaster";
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(30);
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
    pub const HEALTH_FAILURES: u32 = 3;
    /// Before its first success, the longest wait between two probes that got an
    /// answer (`health.start_interval`).
    pub const HEALTH_START_INTERVAL: Duration = Duration::from_millis(100);
    pub const MAX_ATTEMPTS: u32 = 3;
    pub const BACKOFF: Duration = Duration::from_secs(1);
    pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a service may take from its launch to its first successful probe
    /// (`ready_timeout`): 5 minutes, so that slow real starters — `next dev`
    /// compiling a large app on a small machine, a `cargo run` that builds first —
    /// are not failed, while a start that can never succeed still ends.
    pub const READY_TIMEOUT: Duration = Duration::from_secs(300);
    /// How long a service without a health probe must run before it is ready
    /// (supervisord's `startsecs`).
    pub const START_WINDOW: Duration = Duration::from_secs(1);
    /// Per-service log file size before rotation: 10 MiB.
    pub const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
}

/// A validated configuration. Paths are absolute.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// The folder relative paths were resolved against.
    pub base_dir: PathBuf,
    pub settings: Settings,
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
}

/// `[settings]`.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub shutdown_timeout: Duration,
    pub health_interval: Duration,
    /// Opt-in Prometheus endpoint address.
    pub metrics: Option<SocketAddr>,
    /// Per-service log file size before rotation, in bytes.
    pub log_max_bytes: u64,
    /// The default [`ServiceConfig::start_window`].
    pub start_window: Duration,
}

/// `[services.NAME]`.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceConfig {
    pub name: String,
    pub command: String,
    pub workdir: PathBuf,
    /// From `env_file` first, then `env` (which wins).
    pub env: Vec<(String, String)>,
    pub port: Option<u16>,
    pub allow: Vec<String>,
    pub depends_on: Vec<Dependency>,
    pub health: Option<HealthConfig>,
    pub restart: RestartConfig,
    pub stop: StopConfig,
    /// How long it may take from its launch to being ready (its first successful
    /// probe; a plugin: its `Ready`) before it fails, with its last probe result
    /// in the reason. Not counted: waiting for dependencies, the install step.
    pub ready_timeout: Duration,
    /// Without a health probe: how long the service must run before it is ready.
    /// An exit within it is a failed start (or, with status 0, a completed job).
    /// Zero: ready when spawned. Has no effect with a probe.
    pub start_window: Duration,
    pub pid_file: PathBuf,
    pub install: Option<InstallConfig>,
    /// When the launched command exits with 0 while processes of the service
    /// (carrying its tag) live on, the service has daemonized: it keeps running and
    /// ends when its last member is gone. `false`: such an exit completes the
    /// service (a one-shot job), and what it left runs on until the stack stops.
    pub follow_daemon: bool,
    /// `replicas = N`: the service runs as N members, `NAME#0` … (each made with
    /// [`ServiceConfig::replica`]); with a `port`, ringmaster listens on it and
    /// forwards each connection to a ready member. `None`: a plain service.
    ///
    /// In a replicated service, `${REPLICA}` (and, with a `port`, `${PORT}`) in
    /// `command`, `env`, `workdir`, `pid_file`, the probe, `stop.command` and
    /// `install.command` are still marks here: run members, never this
    /// configuration itself.
    pub replicas: Option<u32>,
    /// With `replicas`: how many members must be ready for the service (what its
    /// dependents wait for) to be ready, 1..=replicas. 1 without `replicas`.
    pub min_ready: u32,
    /// With `replicas` and a `port`: the ports (first, last, inclusive) the
    /// members' own ports are taken from. `None`: a free port the OS picks.
    pub replica_ports: Option<(u16, u16)>,
}

/// The name of member `index` of the replicated service `service`: `api#0`.
/// (`#` cannot appear in a service name, so it never names another service.)
pub fn replica_name(service: &str, index: u32) -> String {
    format!("{service}#{index}")
}

/// The service and index a member's name stands for: `api#3` → `("api", 3)`.
/// `None` for a plain service name, or anything [`replica_name`] does not make.
///
/// ```
/// use ringmaster::config::{replica_name, replica_of};
/// assert_eq!(replica_of(&replica_name("api", 3)), Some(("api", 3)));
/// assert_eq!(replica_of("api"), None);
/// assert_eq!(replica_of("api#03"), None);
/// ```
pub fn replica_of(name: &str) -> Option<(&str, u32)> {
    let (service, index) = name.split_once('#')?;
    let canonical = !index.is_empty()
        && index.bytes().all(|b| b.is_ascii_digit())
        && (index == "0" || !index.starts_with('0'));
    if service.is_empty() || !canonical {
        return None;
    }
    Some((service, index.parse().ok()?))
}

/// A dependency and the condition it must reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
}

/// When a dependency counts as met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Its first health probe succeeded (or, without a probe, it ran through its
    /// start window).
    Ready,
    /// It was spawned.
    Started,
    /// It exited with status 0 (one-shot jobs such as a migration).
    Completed,
}

impl Condition {
    /// `ready`, `started`, `completed`: as written in `depends_on`.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Ready => "ready",
            Condition::Started => "started",
            Condition::Completed => "completed",
        }
    }
}

/// `health = { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthConfig {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub failures: u32,
    /// Before the first success: the longest wait between two probes that got
    /// an answer (a refused connection is retried every
    /// [`crate::health::KNOCK_EVERY`] instead).
    pub start_interval: Duration,
}

/// A health probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// HTTP GET (never HEAD) of an `http://` URL (no TLS: `https://` is refused);
    /// any 2xx or 3xx is healthy.
    Http { url: String },
    /// TCP connect to 127.0.0.1:port.
    Tcp { port: u16 },
    /// A command run by the platform shell in the service's workdir; exit 0 is healthy.
    Exec { command: String },
    /// A line of the service's output matching this regex makes it ready once.
    Log { regex: String },
    /// The sd_notify protocol (Linux): the service gets `NOTIFY_SOCKET` and is
    /// ready when one of its processes sends `READY=1`.
    Notify,
}

/// `restart = { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestartConfig {
    pub policy: RestartPolicy,
    pub max_attempts: u32,
    pub backoff: Duration,
}

/// When a service is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

/// `stop = { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StopConfig {
    pub signal: Signal,
    pub timeout: Duration,
    /// Run first, with the service's environment, workdir and tag (`redis-cli
    /// shutdown`, `nginx -s quit`), for at most `timeout`; then the signal goes to
    /// whatever is left, and the kill after `timeout`.
    pub command: Option<String>,
}

/// `install = { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstallConfig {
    pub command: String,
    /// Relative to the service's workdir; the install is skipped when it exists.
    pub unless_exists: Option<PathBuf>,
}

/// One configuration error with its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    /// `file:line:col: message`, or `file: message` when there is no position
    /// (line 0, as for errors from a [`ConfigBuilder`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

/// Every error found in one configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// In order of file, line and column (stable), without duplicates.
    fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        errors.dedup();
        ConfigErrors(errors)
    }
}

/// The largest configuration accepted, in bytes (4 MiB). A real configuration is a
/// few kilobytes; a larger file is a mistake (a log or a binary given with `-f`),
/// refused before it is read whole or parsed.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// The error for a configuration of `len` bytes, over [`MAX_CONFIG_BYTES`].
fn too_large(file: &Path, len: u64) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line: 0,
        col: 0,
        message: format!(
            "the configuration is {len} bytes, more than the limit of {MAX_CONFIG_BYTES} bytes (4 MiB)"
        ),
    }
}

/// Reads a configuration file of at most [`MAX_CONFIG_BYTES`] (only that much of a
/// larger one is read).
fn read_config(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let cannot = |e: std::io::Error| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        message: format!("cannot read the configuration: {e}"),
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        let len = std::fs::metadata(path)
            .map(|m| m.len())
            .unwrap_or(bytes.len() as u64);
        return Err(too_large(path, len));
    }
    String::from_utf8(bytes).map_err(|_| {
        cannot(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

impl Config {
    /// Reads, parses and validates a file.
    ///
    /// A file that cannot be read gives one error at `path:0:0`; so does a file
    /// larger than [`MAX_CONFIG_BYTES`], or one that is not UTF-8.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        Config::load_with_external(path, &[] as &[&str])
    }
    /// Like [`Config::load`], where services may also depend on `external` names:
    /// services provided outside the file, such as plugins registered with
    /// [`crate::Orchestrator::start_with`] (which checks the combined graph).
    pub fn load_with_external<S: AsRef<str>>(
        path: impl AsRef<Path>,
        external: &[S],
    ) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        match read_config(path) {
            Ok(text) => Config::parse_with_external(&text, path, external),
            Err(e) => Err(ConfigErrors(vec![e])),
        }
    }
    /// Parses and validates `text`, as if read from `path` (for messages and relative paths).
    /// A text larger than [`MAX_CONFIG_BYTES`] is one error at `path:0:0`.
    ///
    /// Relative paths resolve against `path`'s folder (made absolute against the
    /// current directory). `${VAR}` reads the process environment and `env_file`s.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        parse::parse(text, path, &BTreeSet::new())
    }
    /// Like [`Config::parse`], where services may also depend on `external` names
    /// (see [`Config::load_with_external`]).
    pub fn parse_with_external<S: AsRef<str>>(
        text: &str,
        path: &Path,
        external: &[S],
    ) -> Result<Config, ConfigErrors> {
        let external = external.iter().map(|s| s.as_ref().to_string()).collect();
        parse::parse(text, path, &external)
    }
    /// The services in a start order (dependencies first; ties by name).
    pub fn start_order(&self) -> Vec<String> {
        validate::start_order(&self.services)
    }
    /// The reverse of [`Config::start_order`]: dependents before their dependencies.
    pub fn stop_order(&self) -> Vec<String> {
        let mut order = self.start_order();
        order.reverse();
        order
    }
    /// The named services plus everything they depend on (transitively), in start
    /// order. An unknown name is an error naming it.
    pub fn start_order_for<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<String>, String> {
        let mut wanted = BTreeSet::new();
        let mut todo: Vec<&str> = Vec::new();
        for n in names {
            let n = n.as_ref();
            if !self.services.contains_key(n) {
                return Err(format!("unknown service `{n}`"));
            }
            todo.push(n);
        }
        while let Some(n) = todo.pop() {
            if wanted.insert(n.to_string()) {
                if let Some(svc) = self.services.get(n) {
                    todo.extend(svc.depends_on.iter().map(|d| d.service.as_str()));
                }
            }
        }
        Ok(self
            .start_order()
            .into_iter()
            .filter(|n| wanted.contains(n))
            .collect())
    }
    /// The services that list `name` in their `depends_on` (direct dependents), by name.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.services
            .values()
            .filter(|s| s.depends_on.iter().any(|d| d.service == name))
            .map(|s| s.name.clone())
            .collect()
    }
}

/// How a service's configuration changed ([`ServiceConfig::changes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceDiff {
    /// Keys whose change shapes the process: it must be restarted for them.
    pub restart: Vec<&'static str>,
    /// Keys that change how it is watched, restarted or stopped: applied to the
    /// running service.
    pub in_place: Vec<&'static str>,
}

impl ServiceDiff {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty() && self.in_place.is_empty()
    }
}

impl ServiceConfig {
    /// The configuration of member `index` of this replicated service, whose own
    /// port is `port` (`None` for a service without a `port`):
    ///
    /// - `name` is `NAME#index` ([`replica_name`]);
    /// - the marks of `${REPLICA}` and `${PORT}` become `index` and `port` (empty
    ///   when `None`) in `command`, every `env` value, `workdir`, the probe's URL
    ///   or command, `stop.command`, `install.command` and `unless_exists`, and
    ///   `pid_file`; a `pid_file` without the mark (the default
    ///   `<state_dir>/NAME.pid`) becomes `NAME#index.pid` beside it;
    /// - a `tcp` probe of the service's `port` (where the balancer listens)
    ///   probes the member's `port` instead;
    /// - `port` is `port`, and `env` gains `PORT=port` when it is `Some`;
    /// - `replicas` is `None`, `min_ready` 1, `replica_ports` `None`: a member
    ///   is a plain service. Everything else is copied.
    ///
    /// ```
    /// use std::path::Path;
    /// use ringmaster::config::Config;
    /// let config = Config::parse(
    ///     "[services.api]\ncommand = \"serve --port ${PORT} --id ${REPLICA}\"\nport = 8000\nreplicas = 2\n",
    ///     Path::new("/srv/app/ringmaster.toml"),
    /// )?;
    /// let member = config.services["api"].replica(1, Some(9101));
    /// assert_eq!(member.name, "api#1");
    /// assert_eq!(member.command, "serve --port 9101 --id 1");
    /// assert!(member.env.contains(&("PORT".into(), "9101".into())));
    /// # Ok::<(), ringmaster::config::ConfigErrors>(())
    /// ```
    pub fn replica(&self, index: u32, port: Option<u16>) -> ServiceConfig {
        let number = index.to_string();
        let port_text = port.map(|p| p.to_string()).unwrap_or_default();
        let fill = |text: &str| {
            text.replace(REPLICA_MARK, &number)
                .replace(PORT_MARK, &port_text)
        };
        let fill_path = |path: &Path| -> PathBuf {
            match path.to_str() {
                Some(text) => PathBuf::from(fill(text)),
                // Marks come from the file's text (UTF-8): only whole parts are
                // filled when some other part is not UTF-8.
                None => path
                    .components()
                    .map(|c| match c.as_os_str().to_str() {
                        Some(text) => std::ffi::OsString::from(fill(text)),
                        None => c.as_os_str().to_os_string(),
                    })
                    .collect(),
            }
        };
        let mut env: Vec<(String, String)> =
            self.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
        if let Some(p) = port {
            env.retain(|(k, _)| k != "PORT");
            env.push(("PORT".into(), p.to_string()));
        }
        let health = self.health.as_ref().map(|h| HealthConfig {
            probe: match &h.probe {
                Probe::Http { url } => Probe::Http { url: fill(url) },
                Probe::Exec { command } => Probe::Exec {
                    command: fill(command),
                },
                Probe::Tcp { port: probed } => Probe::Tcp {
                    port: match port {
                        Some(own) if self.port == Some(*probed) => own,
                        _ => *probed,
                    },
                },
                other => other.clone(),
            },
            ..h.clone()
        });
        let pid_file = match self.pid_file.to_str() {
            Some(text) if text.contains(REPLICA_MARK) => fill_path(&self.pid_file),
            _ => {
                let stem = self.pid_file.file_stem().unwrap_or_default();
                let mut file = stem.to_os_string();
                file.push(format!("#{index}"));
                if let Some(ext) = self.pid_file.extension() {
                    file.push(".");
                    file.push(ext);
                }
                fill_path(&self.pid_file.with_file_name(file))
            }
        };
        ServiceConfig {
            name: replica_name(&self.name, index),
            command: fill(&self.command),
            workdir: fill_path(&self.workdir),
            env,
            port,
            allow: self.allow.clone(),
            depends_on: self.depends_on.clone(),
            health,
            restart: self.restart.clone(),
            stop: StopConfig {
                command: self.stop.command.as_deref().map(fill),
                ..self.stop.clone()
            },
            ready_timeout: self.ready_timeout,
            start_window: self.start_window,
            pid_file,
            install: self.install.as_ref().map(|i| InstallConfig {
                command: fill(&i.command),
                unless_exists: i.unless_exists.as_deref().map(fill_path),
            }),
            follow_daemon: self.follow_daemon,
            replicas: None,
            min_ready: 1,
            replica_ports: None,
        }
    }

    /// What differs between this configuration and `new` of the same service.
    ///
    /// Restart: `command`, `workdir`, `env` (with what `env_file` gave), `port`,
    /// `allow`, `install`, `pid_file`, `follow_daemon`, `replica_ports`, and a
    /// change of the health probe to or from `log` or `notify` (the output pipe
    /// and `NOTIFY_SOCKET` are wired at the spawn; a new regex or interval of the
    /// same kind changes in place). In place: `depends_on`, `health`,
    /// `restart`, `stop`, `ready_timeout`, `start_window`, `replicas` (members
    /// are added or removed), `min_ready`.
    pub fn changes(&self, new: &ServiceConfig) -> ServiceDiff {
        let mut d = ServiceDiff::default();
        let mut check = |changed: bool, key: &'static str, restart: bool| {
            if changed {
                if restart {
                    d.restart.push(key);
                } else {
                    d.in_place.push(key);
                }
            }
        };
        check(self.command != new.command, "command", true);
        check(self.workdir != new.workdir, "workdir", true);
        check(self.env != new.env, "env", true);
        check(self.port != new.port, "port", true);
        check(self.allow != new.allow, "allow", true);
        check(self.install != new.install, "install", true);
        check(self.pid_file != new.pid_file, "pid_file", true);
        check(
            self.follow_daemon != new.follow_daemon,
            "follow_daemon",
            true,
        );
        check(
            self.replica_ports != new.replica_ports,
            "replica_ports",
            true,
        );
        let wired = |h: &Option<HealthConfig>| match h.as_ref().map(|h| &h.probe) {
            Some(Probe::Log { .. }) => 1,
            Some(Probe::Notify) => 2,
            _ => 0,
        };
        let health_changed = self.health != new.health;
        let rewire = wired(&self.health) != wired(&new.health);
        check(health_changed, "health", rewire);
        check(self.depends_on != new.depends_on, "depends_on", false);
        check(self.restart != new.restart, "restart", false);
        check(self.stop != new.stop, "stop", false);
        check(
            self.ready_timeout != new.ready_timeout,
            "ready_timeout",
            false,
        );
        check(self.start_window != new.start_window, "start_window", false);
        check(self.replicas != new.replicas, "replicas", false);
        check(self.min_ready != new.min_ready, "min_ready", false);
        d
    }
}

impl Config {
    /// One service given as a JSON object with the keys of a `[services.NAME]`
    /// table plus `name` (what the control API's `POST /services` takes), read
    /// as if it stood in this configuration's file: its relative paths resolve
    /// against the same folder, and the defaults come from the same `[settings]`.
    /// It may depend on `external` names (the services that run already).
    /// Errors name the service and the key; they carry no line (there is no file).
    pub fn service_from_json<S: AsRef<str>>(
        &self,
        value: &serde_json::Value,
        external: &[S],
    ) -> Result<ServiceConfig, ConfigErrors> {
        let fail = |file: &str, message: String| {
            ConfigErrors(vec![ConfigError {
                file: PathBuf::from(file),
                line: 0,
                col: 0,
                message,
            }])
        };
        let mut table = match value {
            serde_json::Value::Object(m) => m.clone(),
            _ => return Err(fail("service", "a service is a JSON object".into())),
        };
        let name = match table.remove("name") {
            Some(serde_json::Value::String(n)) => n,
            _ => {
                return Err(fail(
                    "service",
                    "the JSON object needs a `name` (a string)".into(),
                ))
            }
        };
        let label = format!("service `{name}` (JSON)");
        let body = toml::Value::try_from(serde_json::Value::Object(table))
            .map_err(|e| fail(&label, format!("cannot be written as TOML: {e}")))?;
        // `[services.NAME]` alone, read with this configuration's settings.
        let mut services = toml::Table::new();
        services.insert(name.clone(), body);
        let mut doc = toml::Table::new();
        doc.insert("services".into(), toml::Value::Table(services));
        let text = toml::to_string(&doc)
            .map_err(|e| fail(&label, format!("cannot be written as TOML: {e}")))?;
        let path = self.base_dir.join("(service given as JSON)");
        let external = external.iter().map(|s| s.as_ref().to_string()).collect();
        let parsed = parse::parse_with(&text, &path, &external, Some(&self.settings));
        let mut config = parsed.map_err(|errs| {
            ConfigErrors(
                errs.0
                    .into_iter()
                    .map(|e| ConfigError {
                        file: PathBuf::from(&label),
                        line: 0,
                        col: 0,
                        message: e.message,
                    })
                    .collect(),
            )
        })?;
        config
            .services
            .remove(&name)
            .ok_or_else(|| fail(&label, "no service was read".into()))
    }
}
