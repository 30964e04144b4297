//! Configuration: the validated model ([`Config`]), loaded from `ringmaster.toml`
//! ([`Config::load`], [`Config::parse`]) or built in code ([`ConfigBuilder`]).
//! Every error found is reported at once, each with `file:line:col`.
use std::collections::BTreeMap;
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
    pub const MAX_ATTEMPTS: u32 = 3;
    pub const BACKOFF: Duration = Duration::from_secs(1);
    pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
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
    pub pid_file: PathBuf,
    pub install: Option<InstallConfig>,
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
    /// Its first health probe succeeded (or, without a probe, it was spawned).
    Ready,
    /// It was spawned.
    Started,
    /// It exited with status 0 (one-shot jobs such as a migration).
    Completed,
}

/// `health = { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HealthConfig {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub failures: u32,
}

/// A health probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// HTTP GET (never HEAD); any 2xx or 3xx is healthy.
    Http { url: String },
    /// TCP connect to 127.0.0.1:port.
    Tcp { port: u16 },
    /// A command run by the platform shell in the service's workdir; exit 0 is healthy.
    Exec { command: String },
    /// A line of the service's output matching this regex makes it ready once.
    Log { regex: String },
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
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
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

impl Config {
    /// Reads, parses and validates a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        todo!()
    }
    /// Parses and validates `text`, as if read from `path` (for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        todo!()
    }
    /// The services in a start order (dependencies first; ties by name).
    pub fn start_order(&self) -> Vec<String> {
        todo!()
    }
}

/// Builds a [`Config`] in code, for bots that do not use a file.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    // filled by the implementation
}
