//! The ServiceActor: one per process service. It prepares a start ([`Prepare`]:
//! stop what an earlier run left behind — the process its PID file names, when that
//! one is live and carries our tag, and every process carrying the service's tag —
//! then run the `install` step when `unless_exists` is missing), spawns the command
//! through `ringmaster_os::spawn`, writes the PID file, streams stdout/stderr
//! ([`crate::logs`]), reports [`EventKind::Spawned`] and, when the root process ends
//! on its own, what that means (`service/root_watch.rs`): [`EventKind::Exited`]
//! once nothing of the service is left (after its pipes were read to EOF or a short
//! grace passed), or [`EventKind::Daemonized`] and later `Exited`. On [`Stop`] it stops every
//! member (descendants, process group, tag) on a blocking thread and removes the PID
//! file; a service with a stop command runs it first (`service/stop_command.rs`).
//! Restarts and readiness are the Supervisor's and HealthChecker's business.
mod root_watch;
mod stop_command;

pub(crate) use root_watch::Claims;
use root_watch::{ChildExited, DaemonGone, RootDaemonized, RootWatch};
pub use root_watch::{DAEMON_POLL, DAEMON_RESCAN};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster_os::{
    ChildWrapper, PidFileFinding, PidRecord, SpawnSpec, StopReport, StopTarget, Tag,
};

use crate::config::{Probe, ServiceConfig};
use crate::janitor::blocking;
use crate::logs::{LogSubscribers, LogWriter, OutputSink};
use crate::messages::{EventKind, LogLine, Reporter, Start, Stop, StopCommandReport, Stream};

/// How long a service's pipes may stay open after its root process exited
/// (children that inherited them) before the exit is reported anyway. Lines that
/// come later still reach the log.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Supervisor → ServiceActor: get ready to spawn (leftovers of an earlier run
/// stopped, install step run). Replies with the failure's text.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "Result<(), String>")]
pub struct Prepare;

/// Supervisor → ServiceActor: its configuration changed only in how it is
/// watched, restarted or stopped ([`crate::config::ServiceDiff::in_place`]): the
/// next stop uses the new `stop`; what runs is left as it is.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Reconfigure(pub Box<ServiceConfig>);

/// What a ServiceActor shares with the rest of the orchestrator.
#[derive(Clone)]
pub struct ServiceContext {
    /// The state directory (PID files default there, logs live there).
    pub state_dir: PathBuf,
    /// The project id ([`ringmaster_os::project_id`] of the state directory).
    pub project: String,
    /// The log file writer.
    pub logs: LogWriter,
    /// The HealthChecker, which gets the output lines of services with a log probe.
    pub health: Option<Recipient<LogLine>>,
    pub(crate) log_subscribers: LogSubscribers,
}

struct Running {
    /// The spawned root.
    pid: u32,
    pgid: Option<u32>,
    /// Set once the root exited with 0 and left the service running as a daemon:
    /// the root's pid and group are then no longer ours to signal.
    daemon: bool,
    /// The spawned wrapper, once the wait task handed it back (a daemon's).
    _wrapper: Option<Box<dyn ChildWrapper>>,
}

/// Runs one process service.
pub struct ServiceActor {
    cfg: ServiceConfig,
    tag: Tag,
    shared: ServiceContext,
    events: Option<Reporter>,
    /// The `NOTIFY_SOCKET` of the current launch (a notify probe's).
    notify_socket: Option<String>,
    /// Bumped by every spawn and every stop: a wait task of an older run is ignored.
    run: u64,
    child: Option<Running>,
    starting: Option<SpawnHandle>,
    prepared: bool,
    pid_file: PidFileSlot,
    /// Bumped by every [`Stop`]: a preparation that began before it spawns no
    /// install step after it and does not count as prepared.
    stops: Arc<AtomicU64>,
    /// The current run, for tasks that outlive a message (a daemon's watch).
    live_run: Arc<AtomicU64>,
}

impl ServiceActor {
    /// An actor for `cfg`.
    pub fn new(cfg: ServiceConfig, shared: ServiceContext) -> Self {
        let tag = Tag::new(shared.project.clone(), cfg.name.clone());
        ServiceActor {
            tag,
            shared,
            events: None,
            notify_socket: None,
            run: 0,
            child: None,
            starting: None,
            prepared: false,
            pid_file: PidFileSlot::new(cfg.pid_file.clone()),
            stops: Arc::default(),
            live_run: Arc::default(),
            cfg,
        }
    }

    fn sink(&self, tail: bool) -> OutputSink {
        let probe = match self.cfg.health.as_ref().map(|h| &h.probe) {
            Some(Probe::Log { .. }) => self.shared.health.clone(),
            _ => None,
        };
        OutputSink {
            service: Arc::from(self.cfg.name.as_str()),
            writer: self.shared.logs.clone(),
            subscribers: self.shared.log_subscribers.clone(),
            probe,
            tail: tail.then(Default::default),
        }
    }

    fn report(&self, kind: EventKind) {
        if let Some(events) = &self.events {
            events.report(kind);
        }
    }

    /// The preparation as a future that does not touch the actor. A [`Stop`] that
    /// comes while it runs cancels it: no install step is spawned after the stop,
    /// and it ends with an error (which the Supervisor, having stopped the
    /// service, ignores).
    fn prepare_future(&self) -> impl std::future::Future<Output = Result<(), String>> + 'static {
        let cfg = self.cfg.clone();
        let tag = self.tag.clone();
        let sink = self.sink(true);
        let stops = self.stops.clone();
        let at = stops.load(Ordering::SeqCst);
        let stopped = move || {
            (stops.load(Ordering::SeqCst) != at).then(|| "stopped while preparing".to_owned())
        };
        async move {
            let (pid_file, signal, timeout, t) = (
                cfg.pid_file.clone(),
                cfg.stop.signal,
                cfg.stop.timeout,
                tag.clone(),
            );
            let name = cfg.name.clone();
            let leftovers = blocking(move || stop_leftovers(&name, &pid_file, &t, signal, timeout))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("stopping what an earlier run left: {e}"))?;
            if let Some(report) = leftovers {
                tracing::info!(service = %cfg.name, "stopped {} process(es) left by an earlier run: {}",
                    report.signalled.len() + report.killed.len(),
                    report.signalled.iter().chain(&report.killed).map(|p| p.to_string()).collect::<Vec<_>>().join(", "));
            }
            if let Some(install) = &cfg.install {
                let needed = match &install.unless_exists {
                    Some(path) => !cfg.workdir.join(path).exists(),
                    None => true,
                };
                if needed {
                    // Checked right before the spawn, with no await between: the
                    // Stop handler runs on this actor's thread, so either it came
                    // first and nothing is spawned, or the install already carries
                    // the tag that the stop sweeps.
                    if let Some(e) = stopped() {
                        return Err(e);
                    }
                    run_install(&cfg, &install.command, &tag, sink).await?;
                }
            }
            match stopped() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }

    fn spawn_now(&mut self, ctx: &mut Context<Self>) {
        if self.child.is_some() {
            return;
        }
        self.prepared = false;
        let mut env = self.cfg.env.clone();
        if let Some(address) = &self.notify_socket {
            env.retain(|(k, _)| k != "NOTIFY_SOCKET");
            env.push(("NOTIFY_SOCKET".to_owned(), address.clone()));
        }
        let spec = SpawnSpec {
            command: self.cfg.command.clone(),
            workdir: Some(self.cfg.workdir.clone()),
            env,
            tag: self.tag.clone(),
        };
        let spawned = match ringmaster_os::spawn(&spec) {
            Ok(s) => s,
            Err(e) => {
                self.report(EventKind::Failed {
                    reason: e.to_string(),
                });
                return;
            }
        };
        let guard = OwnChild::register(spawned.pid);
        self.run += 1;
        self.live_run.store(self.run, Ordering::SeqCst);
        let run = self.run;
        let (pid, pgid) = (spawned.pid, spawned.pgid);
        self.child = Some(Running {
            pid,
            pgid,
            daemon: false,
            _wrapper: None,
        });
        tracing::info!(service = %self.cfg.name, pid, "spawned `{}`", self.cfg.command);
        self.report(EventKind::Spawned { pid: Some(pid) });

        let sink = self.sink(false);
        let mut pumps = Vec::new();
        if let Some(out) = spawned.stdout {
            pumps.push(sink.clone().pump(out, Stream::Stdout));
        }
        if let Some(err) = spawned.stderr {
            pumps.push(sink.pump(err, Stream::Stderr));
        }
        let watch = RootWatch {
            run,
            root: pid,
            name: self.cfg.name.clone(),
            pgid,
            tag: self.tag.clone(),
            port: self.cfg.port,
            pid_file: self.cfg.pid_file.clone(),
            follow_daemon: self.cfg.follow_daemon,
            signal: self.cfg.stop.signal,
            timeout: self.cfg.stop.timeout,
            logs: self.shared.logs.clone(),
            addr: ctx.address(),
            live_run: self.live_run.clone(),
        };
        actix_rt::spawn(watch.run(spawned.child, guard, pumps));

        // The PID file records identity; written off the actor's thread.
        actix_rt::spawn(self.pid_file.write(run, pid, &self.cfg.name, &self.tag));
    }
}

/// A service's PID file: written after each spawn, removed after an exit or a
/// stop. Writes and removals are serialized, and a write whose run was already
/// retired does not happen, so a removal is never undone by a late write.
#[derive(Clone)]
struct PidFileSlot {
    path: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
    /// The run whose file may be written (0: none).
    live: Arc<AtomicU64>,
}

impl PidFileSlot {
    fn new(path: PathBuf) -> Self {
        PidFileSlot {
            path,
            lock: Arc::default(),
            live: Arc::default(),
        }
    }

    /// Records `pid` of `run` (its identity read from the OS).
    fn write(
        &self,
        run: u64,
        pid: u32,
        service: &str,
        tag: &Tag,
    ) -> impl std::future::Future<Output = ()> + 'static {
        self.live.store(run, Ordering::SeqCst);
        let (slot, service, tag) = (self.clone(), service.to_owned(), tag.clone());
        async move {
            let _held = slot.lock.lock().await;
            if slot.live.load(Ordering::SeqCst) != run {
                return;
            }
            let path = slot.path.clone();
            let res = blocking(move || -> ringmaster_os::Result<()> {
                if let Some(info) = ringmaster_os::process::process(pid)? {
                    ringmaster_os::write_pid_file(&path, &PidRecord::new(&info, service, &tag))?;
                }
                Ok(())
            })
            .await;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("PID file: {e}"),
                Err(e) => tracing::warn!("PID file: {e}"),
            }
        }
    }

    /// Removes the file; a pending write of an earlier run is cancelled.
    fn retire(&self) -> impl std::future::Future<Output = ()> + 'static {
        self.live.store(0, Ordering::SeqCst);
        let slot = self.clone();
        async move {
            let _held = slot.lock.lock().await;
            let path = slot.path.clone();
            let _ = blocking(move || ringmaster_os::remove_pid_file(&path)).await;
        }
    }
}

/// Stops the process a PID file names when it is live and ours, and every process
/// carrying `tag` ([`ringmaster_os::stop_leftovers`]), saying what the PID file
/// held. Returns the stop's report when it touched anything. Blocking.
fn stop_leftovers(
    service: &str,
    pid_file: &std::path::Path,
    tag: &Tag,
    signal: ringmaster_os::Signal,
    timeout: Duration,
) -> ringmaster_os::Result<Option<StopReport>> {
    let left = ringmaster_os::stop_leftovers(pid_file, tag, signal, timeout)?;
    match &left.pid_file {
        PidFileFinding::Foreign { pid, tag, .. } => tracing::warn!(
            service,
            "PID file {} names pid {pid}, which does not carry this service's tag ({tag}); left alone",
            pid_file.display()
        ),
        PidFileFinding::Stale(reason) => tracing::info!(
            service,
            "removed stale PID file {}: {reason}",
            pid_file.display()
        ),
        PidFileFinding::Unreadable(e) => tracing::warn!(service, "{e}"),
        PidFileFinding::Missing | PidFileFinding::Ours { .. } => {}
    }
    let report = left.report;
    let touched = !(report.signalled.is_empty() && report.killed.is_empty());
    Ok(touched.then_some(report))
}

/// Runs the install command to its end; a failure names the exit code and the
/// last lines of its output.
async fn run_install(
    cfg: &ServiceConfig,
    command: &str,
    tag: &Tag,
    sink: OutputSink,
) -> Result<(), String> {
    tracing::info!(service = %cfg.name, "installing: `{command}`");
    let spec = SpawnSpec {
        command: command.to_owned(),
        workdir: Some(cfg.workdir.clone()),
        env: cfg.env.clone(),
        tag: tag.clone(),
    };
    let spawned = ringmaster_os::spawn(&spec).map_err(|e| format!("install: {e}"))?;
    let _guard = OwnChild::register(spawned.pid);
    let tail = sink.tail.clone();
    let mut pumps = Vec::new();
    if let Some(out) = spawned.stdout {
        pumps.push(sink.clone().pump(out, Stream::Stdout));
    }
    if let Some(err) = spawned.stderr {
        pumps.push(sink.pump(err, Stream::Stderr));
    }
    let mut child = spawned.child;
    let status = child.wait().await;
    let _ = tokio::time::timeout(DRAIN_GRACE, futures::future::join_all(pumps)).await;
    let last = tail
        .and_then(|t| t.lock().ok().map(|t| t.iter().cloned().collect::<Vec<_>>()))
        .unwrap_or_default();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!(
            "install `{command}` failed ({}){}",
            match s.code() {
                Some(c) => format!("exit code {c}"),
                None => s.to_string(),
            },
            if last.is_empty() {
                String::new()
            } else {
                format!("; last output:\n{}", last.join("\n"))
            }
        )),
        Err(e) => Err(format!("install `{command}`: {e}")),
    }
}

impl Actor for ServiceActor {
    type Context = Context<Self>;
}

impl Handler<Prepare> for ServiceActor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, _: Prepare, _: &mut Context<Self>) -> Self::Result {
        let run = self.run;
        Box::pin(
            self.prepare_future()
                .into_actor(self)
                .map(move |res, act, _| {
                    if res.is_ok() && act.run == run && act.child.is_none() {
                        act.prepared = true;
                    }
                    res
                }),
        )
    }
}

impl Handler<Reconfigure> for ServiceActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        // The PID file and the tag depend on what does not change in place.
        debug_assert_eq!(msg.0.pid_file, self.cfg.pid_file);
        self.cfg = *msg.0;
    }
}

impl Handler<Start> for ServiceActor {
    type Result = ();

    fn handle(&mut self, msg: Start, ctx: &mut Context<Self>) {
        self.events = Some(msg.events);
        self.notify_socket = msg.notify_socket;
        if self.child.is_some() || self.starting.is_some() {
            return;
        }
        if self.prepared {
            self.spawn_now(ctx);
            return;
        }
        let run = self.run;
        let fut = self
            .prepare_future()
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.starting = None;
                if act.run != run {
                    return;
                }
                match res {
                    Ok(()) => act.spawn_now(ctx),
                    Err(reason) => act.report(EventKind::Failed { reason }),
                }
            });
        self.starting = Some(ctx.spawn(fut));
    }
}

/// Supervisor (its stop cascade) → ServiceActor: [`Stop`], answered with the
/// error of a stop that failed besides its (then empty) report, so that the
/// shutdown report does not call it clean, and what the stop command did.
/// `grace` bounds the stop command; the signal's own grace is the stop timeout
/// cut to what is left until `deadline` (the cascade's).
#[derive(Message, Debug, Clone)]
#[rtype(result = "StopAnswer")]
pub(crate) struct StopChecked {
    pub grace: Duration,
    pub deadline: Instant,
}

/// The answer to [`StopChecked`].
#[derive(Debug, Clone, Default)]
pub(crate) struct StopAnswer {
    pub report: StopReport,
    /// Set when the stop failed (then `report` is empty).
    pub error: Option<String>,
    /// What the stop command did, when it ran.
    pub command: Option<StopCommandReport>,
}

impl ServiceActor {
    /// Stops the running process group (and whatever carries the tag): the stop
    /// command first, within `grace`, then the signal, with the kill after
    /// `grace`, or after the stop timeout cut to what is left until `deadline`
    /// when the command ran. Its report, the error when the stop failed, and what
    /// the command did.
    fn stop_now(
        &mut self,
        grace: Duration,
        deadline: Option<Instant>,
        ctx: &mut Context<Self>,
    ) -> impl ActorFuture<Self, Output = StopAnswer> + 'static {
        if let Some(h) = self.starting.take() {
            ctx.cancel_future(h);
        }
        self.stops.fetch_add(1, Ordering::SeqCst);
        self.run += 1;
        self.prepared = false;
        self.live_run.store(self.run, Ordering::SeqCst);
        let running = self.child.take();
        // A daemon's root is gone (its pid may be reused): only its tag counts.
        let root = running.as_ref().filter(|r| !r.daemon);
        let key = self.tag.env_value();
        let target = StopTarget {
            root: root.map(|r| r.pid),
            pgid: root.and_then(|r| r.pgid),
            tag: Some(self.tag.clone()),
            also: Claims::held(&key),
        };
        let signal = self.cfg.stop.signal;
        let timeout = self.cfg.stop.timeout;
        let command = self.stop_command(&target);
        let retire = self.pid_file.retire();
        let name = self.cfg.name.clone();
        async move {
            let mut grace = grace;
            let command = match command {
                Some(c) => c.run(grace).await,
                None => None,
            };
            if command.is_some() {
                grace = match deadline {
                    Some(end) => timeout.min(end.saturating_duration_since(Instant::now())),
                    None => grace,
                };
            }
            let started = Instant::now();
            let res = ringmaster_os::stop_async(target, signal, grace).await;
            // The wrapper (on Windows, the job) goes only once its processes are stopped.
            drop(running);
            Claims::release(&key);
            retire.await;
            let error = match res {
                Ok(report) => {
                    return StopAnswer {
                        report,
                        error: None,
                        command,
                    }
                }
                Err(e) => e.to_string(),
            };
            tracing::warn!(service = %name, "stop: {error}");
            let report = StopReport {
                elapsed: started.elapsed(),
                ..StopReport::default()
            };
            StopAnswer {
                report,
                error: Some(format!("the stop failed: {error}")),
                command,
            }
        }
        .into_actor(self)
    }
}

impl Handler<Stop> for ServiceActor {
    type Result = ResponseActFuture<Self, StopReport>;

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(
            self.stop_now(msg.grace, None, ctx)
                .map(|answer, _, _| answer.report),
        )
    }
}

impl Handler<StopChecked> for ServiceActor {
    type Result = ResponseActFuture<Self, StopAnswer>;

    fn handle(&mut self, msg: StopChecked, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(self.stop_now(msg.grace, Some(msg.deadline), ctx))
    }
}

impl ServiceActor {
    /// The stop command of this service, for the processes of `target`.
    fn stop_command(&self, target: &StopTarget) -> Option<stop_command::StopCommand> {
        let command = self.cfg.stop.command.clone()?;
        Some(stop_command::StopCommand {
            service: self.cfg.name.clone(),
            command,
            workdir: self.cfg.workdir.clone(),
            env: self.cfg.env.clone(),
            tag: self.tag.clone(),
            sink: self.sink(false),
            target: target.clone(),
        })
    }
}

impl Handler<ChildExited> for ServiceActor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, _: &mut Context<Self>) {
        if msg.run != self.run || self.child.is_none() {
            return;
        }
        self.child = None;
        tracing::info!(service = %self.cfg.name, "exited: {}", msg.detail);
        actix_rt::spawn(self.pid_file.retire());
        self.report(EventKind::Exited { code: msg.code });
    }
}

impl Handler<RootDaemonized> for ServiceActor {
    type Result = ();

    fn handle(&mut self, msg: RootDaemonized, _: &mut Context<Self>) {
        let Some(running) = self.child.as_mut().filter(|_| msg.run == self.run) else {
            return;
        };
        running.daemon = true;
        running._wrapper = Some(msg.wrapper);
        tracing::info!(service = %self.cfg.name,
            "daemonized: the launched process exited with 0 and {} process(es) live on{}",
            msg.members,
            msg.main.map(|p| format!("; main pid {p}")).unwrap_or_default());
        // The PID file now names the daemon, unless the daemon keeps its own there.
        if let Some(main) = msg.main {
            if !msg.daemon_file {
                actix_rt::spawn(
                    self.pid_file
                        .write(msg.run, main, &self.cfg.name, &self.tag),
                );
            }
        }
        self.report(EventKind::Daemonized { pid: msg.main });
    }
}

impl Handler<DaemonGone> for ServiceActor {
    type Result = ();

    fn handle(&mut self, msg: DaemonGone, _: &mut Context<Self>) {
        if msg.run != self.run || !self.child.as_ref().is_some_and(|r| r.daemon) {
            return;
        }
        self.child = None;
        actix_rt::spawn(self.pid_file.retire());
        self.report(EventKind::Exited { code: None });
    }
}

/// The platform shell running `command` (`sh -c` on Unix, `cmd /C` on Windows),
/// for commands that are not services (exec probes).
pub(crate) fn shell_command(command: &str) -> tokio::process::Command {
    #[cfg(windows)]
    {
        // As at a service's spawn: `cmd /C` gets the command line as it is (std's
        // quoting would escape its double quotes, which cmd does not undo).
        let mut cmd = tokio::process::Command::new("cmd");
        cmd.arg("/C").raw_arg(command);
        cmd
    }
    #[cfg(not(windows))]
    {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(command);
        // As at a service's spawn: ours (from systemd) is not passed on.
        cmd.env_remove("NOTIFY_SOCKET");
        cmd
    }
}

/// Our own children that something in this process waits on (service roots,
/// install steps, exec probes): the subreaper's periodic reaping leaves them alone.
/// Registered for as long as the guard lives.
pub(crate) struct OwnChild(u32);

fn own_children() -> &'static Mutex<HashSet<u32>> {
    static CHILDREN: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    CHILDREN.get_or_init(Default::default)
}

impl OwnChild {
    /// Registers `pid` until the guard drops.
    pub(crate) fn register(pid: u32) -> OwnChild {
        if let Ok(mut set) = own_children().lock() {
            set.insert(pid);
        }
        OwnChild(pid)
    }

    /// Every registered pid.
    pub(crate) fn all() -> Vec<u32> {
        own_children()
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

impl Drop for OwnChild {
    fn drop(&mut self) {
        if let Ok(mut set) = own_children().lock() {
            set.remove(&self.0);
        }
    }
}

#[cfg(all(test, windows))]
mod windows_tests {
    /// An exec probe's command reaches `cmd /C` as written, double quotes included.
    #[actix_rt::test]
    async fn a_command_with_double_quotes_reaches_cmd_as_written() {
        let out =
            super::shell_command(r#"echo "a b"&& if "x y"=="x y" (echo same) else (echo differ)"#)
                .output()
                .await
                .expect("cmd runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(lines, [r#""a b""#, "same"], "{text:?}");
    }
}
