//! The status of every service, serializable with serde (the `status --json` form).
use serde::{Deserialize, Serialize};

/// A service's state (the `state` field of `status --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Waiting,
    Starting,
    Ready,
    Unhealthy,
    Stopping,
    /// Also what a service is before anything happened to it.
    #[default]
    Stopped,
    Failed,
}

/// One service's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// CPU used by all its live processes, in % of one core (100 = one core busy),
    /// over the time since the previous full status (the first one: since each
    /// process started). None when it is not running, for a plugin, or in a brief status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Resident memory of all its live processes, in bytes (same conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// CPU time all its live processes used so far, in seconds (user and system;
    /// a process that ended no longer counts). Same conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
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
    /// What a service with a `notify` probe last said of itself (`STATUS=…`).
    #[serde(default)]
    pub status_text: Option<String>,
    /// True for a plugin (non-process) service.
    pub plugin: bool,
    /// A service with `replicas`: its balancer (the port it listens on, the
    /// replicas ready, connections in flight, accepted and refused for want of
    /// a ready replica, and each replica's share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<crate::balancer::BalancerSnapshot>,
    /// A replica (`api#0`) behind a balancer: its connections in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
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

/// The columns of `ringmaster status` (and of [`StatusTable`]), in order; each
/// [`ServiceStatus::cells`] row has one cell per column.
pub const STATUS_COLUMNS: [&str; 9] = [
    "SERVICE", "STATE", "PID", "PORT", "CPU", "MEM", "HEALTH", "RESTARTS", "UPTIME",
];

impl ServiceState {
    /// Its `status --json` name: `waiting`, `starting`, `ready`, `unhealthy`,
    /// `stopping`, `stopped`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Ready => "ready",
            ServiceState::Unhealthy => "unhealthy",
            ServiceState::Stopping => "stopping",
            ServiceState::Stopped => "stopped",
            ServiceState::Failed => "failed",
        }
    }

    /// True while a run of it is alive: starting, ready or unhealthy.
    pub fn running(&self) -> bool {
        matches!(
            self,
            ServiceState::Starting | ServiceState::Ready | ServiceState::Unhealthy
        )
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ServiceStatus {
    /// The HEALTH cell: the probe's word (and what a notify service said); for a
    /// replicated service, its replicas ready and its connections; for a
    /// replica, its connections in flight beside its probe.
    fn health_cell(&self) -> String {
        if let Some(b) = &self.balancer {
            return format!(
                "{}/{} replicas ready, {} in flight, {} refused",
                b.ready, b.members, b.active, b.refused
            );
        }
        let word = match (&self.health, &self.status_text) {
            (Some(h), Some(t)) => format!("{h} ({t})"),
            (None, Some(t)) => t.clone(),
            (h, None) => h.clone().unwrap_or_else(|| "-".into()),
        };
        match self.connections {
            Some(n) if word == "-" => format!("{n} in flight"),
            Some(n) => format!("{word}, {n} in flight"),
            None => word,
        }
    }

    /// Its row of the `ringmaster status` table, one cell per [`STATUS_COLUMNS`]
    /// (`-` where there is nothing), the uptime counted up to `now_ms`
    /// ([`crate::text::now_ms`]).
    pub fn cells(&self, now_ms: u64) -> Vec<String> {
        let mut state = self.state.to_string();
        if let Some(reason) = &self.reason {
            state = format!("{state} ({reason})");
        } else if self.daemonized {
            state = format!("{state} (daemonized)");
        }
        vec![
            self.name.clone(),
            state,
            self.pid.map_or("-".into(), |p| p.to_string()),
            self.port.map_or("-".into(), |p| p.to_string()),
            self.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%")),
            self.rss_bytes.map_or("-".into(), crate::text::human_bytes),
            self.health_cell(),
            self.restarts.to_string(),
            if self.state.running() && self.since_ms > 0 {
                crate::text::human_duration(std::time::Duration::from_millis(
                    now_ms.saturating_sub(self.since_ms),
                ))
            } else {
                "-".into()
            },
        ]
    }
}

/// One line with the cells of `ringmaster status`, each labelled with its column
/// and those without a value left out:
/// `api: ready, pid 4121, port 8000, cpu 0.4%, mem 21.3M, health ok, restarts 0, uptime 2.5s`.
impl std::fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cells = self.cells(crate::text::now_ms());
        write!(f, "{}: {}", cells[0], cells[1])?;
        for (column, cell) in STATUS_COLUMNS.iter().zip(&cells).skip(2) {
            if cell != "-" {
                write!(f, ", {} {cell}", column.to_lowercase())?;
            }
        }
        Ok(())
    }
}

/// The `ringmaster status` table of `statuses`: `format!("{}", StatusTable(&list))`.
pub struct StatusTable<'a>(pub &'a [ServiceStatus]);

impl StatusTable<'_> {
    /// The table, its header painted by `paint`, uptimes counted to `now_ms`.
    pub fn render(&self, paint: &dyn crate::text::Paint, now_ms: u64) -> String {
        let rows: Vec<Vec<String>> = self.0.iter().map(|s| s.cells(now_ms)).collect();
        crate::text::table(paint, &STATUS_COLUMNS, &rows)
    }
}

impl std::fmt::Display for StatusTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&crate::text::Plain, crate::text::now_ms()))
    }
}
