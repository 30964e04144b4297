//! The status of every service, serializable with serde (the `status --json` form).
use serde::{Deserialize, Serialize};

/// A service's state (the `state` field of `status --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Waiting,
    Starting,
    Ready,
    Unhealthy,
    Stopping,
    Stopped,
    Failed,
}

/// One service's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    /// Why it is waiting or failed, when it is.
    pub reason: Option<String>,
    /// The service's main process: the program behind shell wrappers (`sh -c`,
    /// `cmd /C`, `npm run`) — the holder of its port when it has one, a daemon's
    /// own pid once it daemonized. Only a live process is shown.
    pub pid: Option<u32>,
    /// The process ringmaster spawned (often `/bin/sh -c ...`), while it runs.
    #[serde(default)]
    pub root_pid: Option<u32>,
    /// True once the launched process exited with 0 and left the service running
    /// as a daemon (its end is when its last process is gone).
    #[serde(default)]
    pub daemonized: bool,
    /// Every live process of the service (descendants of the root, and every
    /// process carrying its tag), sorted by pid. Empty when it is not running.
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    pub port: Option<u16>,
    /// Number of restarts so far.
    pub restarts: u32,
    /// Exit code of the last exit, if any (None: killed by a signal or never exited).
    pub last_exit: Option<i32>,
    /// Unix time (ms) when it entered its state.
    pub since_ms: u64,
    /// The last health probe's result: `"ok"`, or `"failing: <what the probe said>"`
    /// — also while `starting`, before its first success (updated on a failure
    /// whose detail changed, otherwise at most once a second). None when the
    /// service has no probe, or its current run has no probe result yet.
    pub health: Option<String>,
    /// Latency of the last probe, in ms.
    pub health_latency_ms: Option<u64>,
    /// True for a plugin (non-process) service.
    pub plugin: bool,
}

/// One live process of a service (`members` in `status --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub pid: u32,
    /// Its name as the OS reports it (Linux: comm, which a process may rename).
    pub name: String,
    /// The TCP ports it listens on.
    #[serde(default)]
    pub ports: Vec<u16>,
}
