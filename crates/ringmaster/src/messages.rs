//! Every message the actors exchange, each with who sends it to whom.
//!
//! ```text
//!                  Up / Shutdown{deadline} / Restart{name} / Apply / GetStatus / Subscribe / SubscribeLogs
//!  bot or CLI ──────────────────────────────► Supervisor ── ServiceEvent ──► subscribers
//!  (through Orchestrator)                     │  ▲
//!              Start / Stop{grace}            │  │ ServiceEvent{name, kind}
//!                                             ▼  │
//!                               ServiceActor (one per service; a plugin is any actor that speaks this)
//!                                             └── LogLine ──► HealthChecker (log probes), log subscribers
//!  Supervisor ── ClearPort / CheckPort ─────► PortJanitor   (replies: ClearReport or a refusal / PortCheck)
//!  Supervisor ── Watch / Unwatch ───────────► HealthChecker ── HealthChanged{name, ready|healthy|unhealthy|failing}
//! ```
//!
//! Replies travel as the answer to the message (`Stop` → `StopReport`, `Shutdown`
//! → [`ShutdownReport`], ...), never as messages of their own. The forced sweep
//! ([`crate::Orchestrator::sweep`]) is no message: it runs without the Supervisor,
//! so that it works while a shutdown runs or hangs.
use std::time::Duration;

use actix::prelude::*;
use ringmaster_os::{ClearReport, Refusal, Signal, StopReport, Tag};
use serde::{Deserialize, Serialize};

use crate::config::Probe;
use crate::status::ServiceStatus;

/// Bot or CLI ([`crate::Orchestrator::up`]) → Supervisor: start `only` these services (and what they depend on),
/// or all; replies once every started service is ready, or with the first failure
/// (what was started is then stopped again).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<(), crate::Error>")]
pub struct Up {
    pub only: Option<Vec<String>>,
    /// An overall deadline: when not every service is ready by then, the reply is
    /// [`crate::Error::NotReady`] naming what is not (state, reason, last probe),
    /// once what this request started is stopped again. `None`: no deadline of
    /// its own (each service's `ready_timeout` still applies).
    pub within: Option<Duration>,
}

/// Bot or CLI ([`crate::Orchestrator::shutdown`]) → Supervisor: run the shutdown
/// cascade within `deadline`; replies once it is done.
#[derive(Message, Debug, Clone)]
#[rtype(result = "ShutdownReport")]
pub struct Shutdown {
    pub deadline: Duration,
}

/// Bot or CLI ([`crate::Orchestrator::restart`]) → Supervisor: stop one service
/// (its running dependents first) and start them again.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), crate::Error>")]
pub struct Restart {
    pub name: String,
}

/// Bot or CLI ([`crate::Orchestrator::stop_service`]) → Supervisor: stop one
/// service and its running dependents (dependents first, as a cascade); they stay
/// stopped — no restart policy brings them back — until [`StartService`] (or a
/// [`Restart`], or an [`Up`] that names them).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), crate::Error>")]
pub struct StopService {
    pub name: String,
}

/// Bot or CLI ([`crate::Orchestrator::start_service`]) → Supervisor: start a
/// service again, with what it depends on (as [`Up`] would) and the dependents
/// that [`StopService`] stopped with it; answered once they are ready.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), crate::Error>")]
pub struct StartService {
    pub name: String,
}

/// Bot or CLI ([`crate::Orchestrator::apply`], [`crate::Orchestrator::add_service`],
/// [`crate::Orchestrator::remove_service`]) → Supervisor: change the running set
/// of services (see [`crate::change`]); replies once what it started is ready, or
/// with the first failure in [`crate::change::ApplyReport::failed`]. An error is
/// a change that cannot be made (nothing was changed then).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<crate::change::ApplyReport, crate::Error>")]
pub struct Apply(pub Change);

/// Bot or CLI ([`crate::Orchestrator::preview`]) → Supervisor: what an [`Apply`]
/// of this change would do now, as its report (with `preview` set); nothing is
/// changed. An error is a change that could not be made.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<crate::change::ApplyReport, crate::Error>")]
pub struct Preview(pub Change);

/// What an [`Apply`] asks for.
#[derive(Debug, Clone)]
pub enum Change {
    /// Make the services that came from a configuration what this one says
    /// (added, removed, restarted, updated), and take its settings where they
    /// can change.
    Config(Box<crate::Config>),
    /// Add one service.
    Add(crate::change::ServiceDef),
    /// Stop one service and forget it.
    Remove(String),
    /// Run `replicas` replicas of a service that has `replicas`: new ones start
    /// (ready before the change answers); the highest numbers go, drained first.
    Scale { service: String, replicas: u32 },
}

/// Bot or CLI ([`crate::Orchestrator::status`]) → Supervisor: the status of every
/// service (answered during a shutdown too). With `brief`, without the census of
/// the process table ([`crate::Orchestrator::status_brief`]): states and reasons
/// only, `pid` as last reported (the spawned root, or a daemon's), no `members`.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Vec<ServiceStatus>")]
pub struct GetStatus {
    pub brief: bool,
}

/// [`crate::Orchestrator::sweep`] → Supervisor, before the forced sweep: from now
/// on nothing restarts (pending restarts are cancelled); a service that goes down
/// is marked stopped, so the sweep is not undone behind its back.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "()")]
pub struct HoldRestarts;

/// Bot or CLI ([`crate::Orchestrator::subscribe`]) → Supervisor: send every
/// [`ServiceEvent`] to this recipient too.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<ServiceEvent>);

/// Bot or CLI ([`crate::Orchestrator::subscribe_logs`]) → Supervisor: send every
/// output line of the services ([`LogLine`]) to this recipient.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SubscribeLogs(pub Recipient<LogLine>);

/// Supervisor → service actor (process or plugin): start now; report what
/// happens with `events`, which is bound to the service's name.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Start {
    /// The name the service is registered under (for the plugin's own logs: the
    /// events need not repeat it).
    pub name: String,
    /// Where this service's events go: [`Reporter::report`] sends a
    /// [`ServiceEvent`] with this service's name to the Supervisor.
    pub events: Reporter,
    /// For a process service with a `notify` probe: the `NOTIFY_SOCKET` its
    /// processes get (a plugin never has one).
    pub notify_socket: Option<String>,
}

/// Reports one service's events to the Supervisor, with the service's name filled
/// in: a plugin never writes its own name, so it cannot get it wrong. Cheap to
/// clone (into a task that reports later).
#[derive(Clone, Debug)]
pub struct Reporter {
    name: String,
    to: Recipient<ServiceEvent>,
}

impl Reporter {
    /// A reporter sending `name`'s events to `to`. The Supervisor makes one for
    /// each [`Start`]; a plugin's unit test can make one to drive the plugin alone.
    pub fn new(name: impl Into<String>, to: Recipient<ServiceEvent>) -> Reporter {
        Reporter {
            name: name.into(),
            to,
        }
    }

    /// Sends `kind` as an event of this service (dropped when the Supervisor is gone).
    pub fn report(&self, kind: EventKind) {
        self.to.do_send(ServiceEvent {
            name: self.name.clone(),
            kind,
        });
    }

    /// The service this reporter speaks for.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Supervisor (its stop cascade) → service actor or plugin, only after a
/// [`Start`]: stop within `grace` (then kill); replies with what it did.
#[derive(Message, Debug, Clone)]
#[rtype(result = "StopReport")]
pub struct Stop {
    pub grace: Duration,
}

/// Something happened to a service. A service actor or plugin → Supervisor
/// (through the [`Reporter`] of its [`Start`]): `Spawned`, `Daemonized`, `Exited`,
/// `Failed`, and from a plugin also `Ready`, `Unhealthy`, `Healthy`. An event naming no known
/// service is dropped with a warning. Supervisor → subscribers ([`Subscribe`]):
/// what it decided (`Spawned`, `Daemonized`, `Ready`, `Unhealthy`, `Healthy`, `Exited`,
/// `Failed`), and `Stopped`, which its stop cascade creates.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct ServiceEvent {
    pub name: String,
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Its root process was spawned (plugins: it started).
    Spawned { pid: Option<u32> },
    /// Its first health probe succeeded (or it has no probe and ran through its
    /// start window): once per start, what dependents and [`Up`] wait for.
    Ready,
    /// Its health probe failed `failures` times in a row.
    Unhealthy { reason: String },
    /// A probe succeeded again after [`EventKind::Unhealthy`], and the service was
    /// not restarted meanwhile (restart policy `never`): its state is `ready` again.
    /// Comes only after `Unhealthy`; a restarted service reports `Ready` instead.
    /// A plugin may send it after its own `Unhealthy`.
    Healthy,
    /// Its launched (root) process exited with 0 while processes of the service
    /// live on: it daemonized. The service keeps running; `pid` is the daemon's
    /// main process. Its end — when its last member is gone — is an `Exited`
    /// without a code. Sent once per start.
    Daemonized { pid: Option<u32> },
    /// Its root process exited on its own (and whatever of the service still ran
    /// was stopped), or, after `Daemonized`, its last process is gone.
    Exited { code: Option<i32> },
    /// It cannot run: refused port, install failed, spawn failed, out of attempts.
    Failed { reason: String },
    /// It joined the running stack ([`Apply`]); its start follows.
    Added,
    /// It was stopped (a `Stopped` came before) and left the stack ([`Apply`]).
    Removed,
    /// Its configuration changed ([`Apply`]): `keys` name what; with `restart`,
    /// it is stopped and started again with the new one, else the running
    /// service takes it as it is.
    Reconfigured { keys: Vec<String>, restart: bool },
    /// It was stopped on request: created by the Supervisor's stop cascade after
    /// each service's stop and sent to subscribers only (a service actor never
    /// sends it; a plugin need not, and one that does while running counts as an
    /// exit without a code).
    Stopped { report: StopReport },
}

/// Supervisor → PortJanitor: make `port` free for `service`, stopping only
/// holders that `allow` (or our tag) authorizes, with `signal` (the service's
/// stop signal), then kill after `grace`. A refusal is
/// `Err(Error::Os(ringmaster_os::Error::Refused { .. }))`, whose text names each
/// holder (pid, name, exe, user); nothing was touched then.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ClearReport, crate::Error>")]
pub struct ClearPort {
    pub port: u16,
    pub service: String,
    pub allow: Vec<String>,
    pub signal: Signal,
    pub grace: Duration,
}

/// Supervisor (its stop cascade) → PortJanitor: after `service` stopped, check that `port` is free;
/// stop authorized leftovers (our tag or `allow`) with `signal` (the service's
/// stop signal), then kill after `grace`, when it is not.
#[derive(Message, Debug, Clone)]
#[rtype(result = "PortCheck")]
pub struct CheckPort {
    pub port: u16,
    pub service: String,
    pub allow: Vec<String>,
    pub signal: Signal,
    pub grace: Duration,
}

/// The PortJanitor's reply to [`CheckPort`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PortCheck {
    /// True when nothing listens on the port any more.
    pub free: bool,
    /// The leftovers that were stopped (empty when the port was free at once).
    pub stopped: Vec<ringmaster_os::ProcessBrief>,
    /// Holders that may not be stopped.
    pub refused: Vec<Refusal>,
}

/// Supervisor → HealthChecker: probe `name` fast from now until its first success,
/// then every `interval`; report to `reply`. An `exec` probe runs as the service
/// does: in its `workdir`, with its `env` added to ours and its `tag` set (so what
/// the probe leaves running is one of the service's processes and stops with it).
/// See [`crate::health`] for the schedules.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Watch {
    pub name: String,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub failures: u32,
    /// Before the first success: the longest wait between two probes that got an
    /// answer.
    pub start_interval: Duration,
    /// Before the first success: how long a probe whose connection was accepted
    /// waits for its answer (the service's `ready_timeout`; a server that is
    /// starting may accept long before it answers).
    pub patience: Duration,
    /// The service is ready already (its probe changed while it ran): the watch
    /// begins with the liveness schedule, its first probe at once.
    pub ready: bool,
    /// The service's own port: an `exec` probe runs once it accepts connections.
    pub port: Option<u16>,
    pub workdir: std::path::PathBuf,
    /// The service's environment (`env_file`, then `env`), as in its `ServiceConfig`.
    pub env: Vec<(String, String)>,
    /// The service's tag (`None` for a plugin, which has no processes of its own).
    pub tag: Option<Tag>,
    /// A `notify` probe's socket for this launch (Linux).
    #[cfg(target_os = "linux")]
    pub notify: Option<std::sync::Arc<crate::notify::NotifySocket>>,
    pub reply: Recipient<HealthChanged>,
    /// Where what a `notify` service says of itself goes.
    pub notices: Recipient<Notified>,
}

/// HealthChecker → Supervisor: a `notify` service said something other than
/// `READY=1` (which comes as [`Health::Ready`]). Only what one of its own
/// processes sent is passed on.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Notified {
    pub name: String,
    /// The process that sent it.
    pub pid: u32,
    pub notice: Notice,
}

/// What a `notify` service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `STATUS=…`: a line of text about its state.
    Status(String),
    /// `MAINPID=…`: its main process (checked to be one of its processes).
    MainPid(u32),
    /// `STOPPING=1`: it is shutting down on its own.
    Stopping,
}

/// Supervisor → HealthChecker: stop probing `name`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub name: String,
}

/// A service actor's output sink → HealthChecker (only for a service with a log
/// probe) and log subscribers ([`SubscribeLogs`]): one line of a service's output.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct LogLine {
    pub service: String,
    pub stream: Stream,
    pub line: String,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// HealthChecker → Supervisor: a service's health changed (or, before its first
/// success, what its failing probe says: [`Health::Failing`]).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct HealthChanged {
    pub name: String,
    pub health: Health,
    /// How long the probe took, and what it said.
    pub latency: Duration,
    pub detail: String,
}

/// A health result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// First success since the watch began.
    Ready,
    /// A success after being ready (or back from unhealthy).
    Healthy,
    /// `failures` consecutive failures.
    Unhealthy,
    /// A failure before the first success: no verdict (the service stays
    /// `starting`), only what the probe said, for its status. Sent on the first
    /// failure, when the detail changes, and otherwise at most once per
    /// [`crate::health::FAILING_EVERY`].
    Failing,
}

/// The Supervisor's reply to [`Shutdown`]: per service, what its stop did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShutdownReport {
    pub services: Vec<ServiceStopReport>,
    /// The whole cascade's duration.
    pub elapsed: Duration,
    /// True when the deadline passed and what was left got killed at once.
    pub deadline_hit: bool,
}

/// One service in a [`ShutdownReport`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceStopReport {
    pub name: String,
    pub report: StopReport,
    /// True when its port is free after the stop (None when it has no port).
    pub port_free: Option<bool>,
    /// True when its stop signal's grace was cut short by the shutdown deadline.
    #[serde(default)]
    pub deadline_cut: bool,
    /// Set when it is a plugin that did not answer [`Stop`] within its grace +
    /// [`crate::supervisor::STOP_MARGIN`] (or whose actor was gone, so that it could
    /// not take it): what happened, as text naming the plugin. It may still be running;
    /// having no processes of ringmaster's, nothing was stopped in its place, and
    /// `report` is empty. (A service actor that does not answer is replaced by a
    /// kill of what carries the service's tag, which `report` shows.)
    #[serde(default)]
    pub no_answer: Option<String>,
    /// Who still held its port after its own processes stopped and was stopped
    /// by the port check (a leftover carrying its tag, or a holder its `allow`
    /// list names). Empty when the port was free at once, or it has no port.
    #[serde(default)]
    pub port_stopped: Vec<ringmaster_os::ProcessBrief>,
    /// Who still held its port after the stop and may not be stopped (not ours,
    /// not in its `allow` list): left alive, named with pid, name, exe and user.
    #[serde(default)]
    pub port_refused: Vec<Refusal>,
    /// Set when the stop itself failed (the process table could not be read,
    /// say): what went wrong. Nothing may have been stopped then, so the report
    /// is not clean although `report` is empty.
    #[serde(default)]
    pub stop_error: Option<String>,
    /// What its stop command (`stop.command`) did, when it has one and it ran
    /// (it runs only when the service has a live process, and the deadline has
    /// not passed). A failed or hung command is named here; the signals followed.
    #[serde(default)]
    pub stop_command: Option<StopCommandReport>,
    /// A plugin (no process of ringmaster's): one that answered `Stop` stopped,
    /// though `report` names no process.
    #[serde(default)]
    pub plugin: bool,
}

/// What a service's stop command did ([`ServiceStopReport::stop_command`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopCommandReport {
    /// The command as run (expanded).
    pub command: String,
    pub outcome: StopCommandOutcome,
    /// From its spawn until it ended (or was killed).
    pub elapsed: Duration,
    /// True when every process of the service was gone after it, before any
    /// signal: the command stopped the service on its own.
    pub stopped_service: bool,
}

/// How a stop command ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StopCommandOutcome {
    /// It exited on its own (`code` is `None` when a signal ended it).
    Exited { code: Option<i32> },
    /// It was still running when its time was up, and was killed with its tree.
    TimedOut { after: Duration },
    /// It could not be spawned or waited for.
    Failed { error: String },
}

impl StopCommandReport {
    /// True when it exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.outcome == StopCommandOutcome::Exited { code: Some(0) }
    }
}

impl std::fmt::Display for StopCommandReport {
    /// `stop command `redis-cli shutdown` exited with code 0 in 12ms`, `... timed
    /// out after 10s and was killed`, `... could not run: ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stop command `{}` ", self.command)?;
        let short = |d: Duration| {
            if d < Duration::from_secs(1) {
                format!("{}ms", d.as_millis())
            } else {
                format!("{:.1}s", d.as_secs_f64())
            }
        };
        match &self.outcome {
            StopCommandOutcome::Exited { code: Some(c) } => {
                write!(f, "exited with code {c} in {}", short(self.elapsed))
            }
            StopCommandOutcome::Exited { code: None } => {
                write!(f, "was killed by a signal after {}", short(self.elapsed))
            }
            StopCommandOutcome::TimedOut { after } => {
                write!(f, "timed out after {} and was killed", short(*after))
            }
            StopCommandOutcome::Failed { error } => write!(f, "could not run: {error}"),
        }
    }
}

impl ServiceStopReport {
    /// True when the stop left nothing: no survivor, no error, its plugin
    /// answered, and its port (if any) is free.
    pub fn clean(&self) -> bool {
        self.report.clean()
            && self.no_answer.is_none()
            && self.stop_error.is_none()
            && self.port_free != Some(false)
    }

    /// True when every process went on the stop signal alone (nothing killed, no
    /// survivor), and a plugin answered.
    pub fn graceful(&self) -> bool {
        self.report.killed.is_empty()
            && self.report.survivors.is_empty()
            && self.no_answer.is_none()
            && self.stop_error.is_none()
    }
}

impl ShutdownReport {
    /// True when every service stopped with no survivor and no error, every
    /// plugin answered its [`Stop`], and every port is free.
    pub fn clean(&self) -> bool {
        self.services.iter().all(ServiceStopReport::clean)
    }

    /// Every process still alive after the cascade, with its service: who blocks
    /// a hung shutdown.
    pub fn survivors(&self) -> Vec<(String, ringmaster_os::ProcessBrief)> {
        self.services
            .iter()
            .flat_map(|s| {
                s.report
                    .survivors
                    .iter()
                    .map(|p| (s.name.clone(), p.clone()))
            })
            .collect()
    }
}

/// What [`crate::Orchestrator::sweep`] did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SweepReport {
    pub stopped: Vec<ringmaster_os::ProcessBrief>,
    pub refused: Vec<Refusal>,
    pub ports_still_held: Vec<u16>,
}

impl EventKind {
    /// The state it puts the service in, as `ringmaster up` shows it: `starting`,
    /// `ready`, `unhealthy`, `exited`, `failed`, `stopped`.
    pub fn state_name(&self) -> &'static str {
        match self {
            EventKind::Spawned { .. } => "starting",
            EventKind::Daemonized { .. } => "daemonized",
            EventKind::Ready | EventKind::Healthy => "ready",
            EventKind::Unhealthy { .. } => "unhealthy",
            EventKind::Exited { .. } => "exited",
            EventKind::Failed { .. } => "failed",
            EventKind::Stopped { .. } => "stopped",
            EventKind::Added => "added",
            EventKind::Removed => "removed",
            EventKind::Reconfigured { .. } => "reconfigured",
        }
    }

    /// What `ringmaster up` adds after the state (empty when nothing):
    /// `(pid 4121)`, `(connection refused)`, `with code 1`, `(needed kill: 2)`.
    pub fn detail(&self) -> String {
        match self {
            EventKind::Spawned { pid } | EventKind::Daemonized { pid } => {
                pid.map(|p| format!("(pid {p})")).unwrap_or_default()
            }
            EventKind::Ready | EventKind::Added | EventKind::Removed => String::new(),
            EventKind::Reconfigured { keys, restart } => format!(
                "({}{})",
                keys.join(", "),
                if *restart {
                    "; restarting"
                } else {
                    "; in place"
                }
            ),
            EventKind::Unhealthy { reason } | EventKind::Failed { reason } => format!("({reason})"),
            EventKind::Healthy => "(healthy again)".to_owned(),
            EventKind::Exited { code: Some(c) } => format!("with code {c}"),
            EventKind::Exited { code: None } => "on a signal".to_owned(),
            EventKind::Stopped { report } if report.killed.is_empty() => String::new(),
            EventKind::Stopped { report } => format!("(needed kill: {})", report.killed.len()),
        }
    }
}

/// The state and its detail, as `ringmaster up` prints an event: `starting (pid
/// 4121)`, `exited with code 1`, `failed (port 8000 is held by ...)`.
impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.state_name())?;
        let detail = self.detail();
        if !detail.is_empty() {
            write!(f, " {detail}")?;
        }
        Ok(())
    }
}

/// `api: starting (pid 4121)`, as `ringmaster up` prints it without a terminal.
impl std::fmt::Display for ServiceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.kind)
    }
}

impl ShutdownReport {
    /// The report as `ringmaster up` and `down` print it, coloured by `paint`:
    /// a verdict line, then one line per service — stopped gracefully, needed
    /// kill (naming who), survivors, a plugin that did not answer, a stop that
    /// failed, and whether its port is free (naming who was stopped on it, or who
    /// holds it and was left alone).
    pub fn render(&self, paint: &dyn crate::text::Paint) -> String {
        use crate::text::{human_duration, Tone};
        let mut out = String::new();
        let width = crate::text::widest(self.services.iter().map(|s| s.name.as_str()));
        let verdict = if self.clean() {
            paint.paint(Tone::Good, "stopped")
        } else {
            paint.paint(Tone::Bad, "stopped with leftovers")
        };
        out.push_str(&format!(
            "{verdict} in {}{}\n",
            human_duration(self.elapsed),
            if self.deadline_hit {
                " (deadline passed: what was left was killed)"
            } else {
                ""
            }
        ));
        for s in &self.services {
            let r = &s.report;
            let list = |v: &[ringmaster_os::ProcessBrief]| {
                v.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut what = if let Some(no_answer) = &s.no_answer {
                paint.paint(Tone::Bad, no_answer)
            } else if let Some(error) = &s.stop_error {
                paint.paint(Tone::Bad, error)
            } else if !r.survivors.is_empty() {
                paint.paint(Tone::Bad, &format!("still alive: {}", list(&r.survivors)))
            } else if !r.killed.is_empty() {
                paint.paint(Tone::Warning, &format!("needed kill: {}", list(&r.killed)))
            } else if r.signalled.is_empty() {
                match &s.stop_command {
                    Some(c) if c.stopped_service => {
                        format!(
                            "stopped by its stop command in {}",
                            human_duration(c.elapsed)
                        )
                    }
                    _ if s.plugin && s.no_answer.is_none() => "stopped".to_string(),
                    _ => "was not running".to_string(),
                }
            } else {
                format!(
                    "stopped gracefully ({} process{})",
                    r.signalled.len(),
                    if r.signalled.len() == 1 { "" } else { "es" }
                )
            };
            if !r.signalled.is_empty() {
                what.push_str(&format!(" in {}", human_duration(r.elapsed)));
            }
            if let Some(c) = s.stop_command.as_ref().filter(|c| !c.stopped_service) {
                // The command did not end the service: say why the signals came.
                let text = format!(" (after {c})");
                what.push_str(&if c.succeeded() {
                    text
                } else {
                    paint.paint(Tone::Warning, &text)
                });
            }
            let freed = if s.port_stopped.is_empty() {
                String::new()
            } else {
                format!(" by stopping {}", list(&s.port_stopped))
            };
            match s.port_free {
                Some(true) if freed.is_empty() => what.push_str("; port free"),
                Some(true) => what.push_str(&format!("; port freed{freed}")),
                Some(false) => {
                    let held = if s.port_refused.is_empty() {
                        "port still held".to_string()
                    } else {
                        let holders = s
                            .port_refused
                            .iter()
                            .map(holder)
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!("port held by {holders}, not ours: left alone")
                    };
                    what.push_str(&format!("; {}", paint.paint(Tone::Bad, &held)));
                    if !freed.is_empty() {
                        what.push_str(&format!(" (after stopping{freed})"));
                    }
                }
                None => {}
            }
            out.push_str(&format!("  {:width$}  {what}\n", s.name));
        }
        out
    }
}

/// A holder of a port that may not be stopped: `4242 (python, /usr/bin/python3, user bob)`.
fn holder(r: &Refusal) -> String {
    let mut parts = vec![r.name.clone()];
    if let Some(exe) = &r.exe {
        parts.push(exe.display().to_string());
    }
    if let Some(user) = &r.user {
        parts.push(format!("user {user}"));
    }
    format!("{} ({})", r.pid, parts.join(", "))
}

/// The report as `ringmaster up` and `down` print it (without colour), one line
/// per service after the verdict; ends with a newline.
impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&crate::text::Plain))
    }
}
