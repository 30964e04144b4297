//! The ServiceActor: one per process service. It prepares a start ([`Prepare`]:
//! stop what an earlier run left behind — the process its PID file names, when that
//! one is live and carries our tag, and every process carrying the service's tag —
//! then run the `install` step when `unless_exists` is missing), spawns the command
//! through `ringmaster_os::spawn`, writes the PID file, streams stdout/stderr
//! ([`crate::logs`]), reports [`EventKind::Spawned`] and, when the root process ends
//! on its own, [`EventKind::Exited`] — only after its pipes were read to EOF (or a
//! short grace passed) and its log lines are on disk. On [`Stop`] it stops every
//! member (descendants, process group, tag) on a blocking thread and removes the PID
//! file; a service with a stop command runs it first (`service/stop_command.rs`).
//! Restarts and readiness are the Supervisor's and HealthChecker's business.
mod stop_command;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster_os::{
    CensusTarget, ChildWrapper, PidFileFinding, PidRecord, ProcessInfo, SpawnSpec, StopReport,
    StopTarget, Tag,
};

use crate::config::{Probe, ServiceConfig};
use crate::janitor::{blocking, blocking_now};
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

/// How often the processes of a daemonized service are checked (each known pid:
/// one cheap look), so that its end is noticed within this.
pub const DAEMON_POLL: Duration = Duration::from_millis(50);
/// How often the process table is scanned again for new members of a daemonized
/// service (a master that forks new workers).
pub const DAEMON_RESCAN: Duration = Duration::from_secs(1);

/// The wait task → its ServiceActor: the root process of run `run` ended, and
/// the service with it (what of it still ran was stopped). Carries the spawned
/// wrapper, dropped only now (on Windows it holds the job).
#[derive(Message)]
#[rtype(result = "()")]
struct ChildExited {
    run: u64,
    code: Option<i32>,
    detail: String,
    _wrapper: Option<Box<dyn ChildWrapper>>,
}

/// The wait task → its ServiceActor: the root of run `run` exited with 0 while
/// processes of the service live on: it daemonized. `main` is the daemon's main
/// process. The wrapper is kept for as long as the service lives.
#[derive(Message)]
#[rtype(result = "()")]
struct RootDaemonized {
    run: u64,
    main: Option<u32>,
    members: usize,
    wrapper: Box<dyn ChildWrapper>,
}

/// The daemon's watch task → its ServiceActor: the last process of the
/// daemonized run `run` is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct DaemonGone {
    run: u64,
}

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
        let spec = SpawnSpec {
            command: self.cfg.command.clone(),
            workdir: Some(self.cfg.workdir.clone()),
            env: self.cfg.env.clone(),
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
            root_start: ringmaster_os::process::liveness(pid).map(|(start, _)| start),
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

/// What the task waiting on a service's root needs: it waits for the root itself
/// (not its group), then decides what the root's end means for the service.
struct RootWatch {
    run: u64,
    /// The root's start time: orphans adopted since then may be its daemon.
    root_start: Option<u64>,
    name: String,
    pgid: Option<u32>,
    tag: Tag,
    port: Option<u16>,
    pid_file: PathBuf,
    follow_daemon: bool,
    signal: ringmaster_os::Signal,
    timeout: Duration,
    logs: LogWriter,
    addr: Addr<ServiceActor>,
    /// The actor's current run: the daemon's watch ends once it moved on.
    live_run: Arc<AtomicU64>,
}

impl RootWatch {
    /// Waits for the root, then:
    /// - nothing of the service lives on: its end (after its pipes were drained);
    /// - it exited with 0 and processes of the service live on (and
    ///   `follow_daemon`): it daemonized — [`RootDaemonized`], and its members are
    ///   followed until the last is gone;
    /// - otherwise (a failure, or `follow_daemon` off) with members alive: a
    ///   failure stops them first, then reports the end; a clean exit without
    ///   `follow_daemon` leaves them to the stack's stop.
    async fn run(
        self,
        mut wrapper: Box<dyn ChildWrapper>,
        guard: OwnChild,
        pumps: Vec<actix_rt::task::JoinHandle<()>>,
    ) {
        let (code, detail) = match ringmaster_os::wait_root(&mut wrapper).await {
            Ok(status) => (status.code(), status.to_string()),
            Err(e) => (None, format!("waiting for it failed: {e}")),
        };
        drop(guard);
        if self.live_run.load(Ordering::SeqCst) != self.run {
            // A stop is under way (or done): the root ended by it, and what is
            // left is the stop's to handle and report. The wrapper goes once the
            // whole group (the job, on Windows) is gone, as the stop expects.
            let _ = wrapper.wait().await;
            return;
        }
        let (pgid, tag, since) = (self.pgid, self.tag.clone(), self.root_start);
        let left = blocking_now(move || live_members(pgid, &tag, &[], since))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        if !left.is_empty() && self.live_run.load(Ordering::SeqCst) == self.run {
            if code == Some(0) && self.follow_daemon {
                return self.daemonized(wrapper, left).await;
            }
            let names = left
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.name))
                .collect::<Vec<_>>()
                .join(", ");
            if code == Some(0) {
                tracing::info!(service = %self.name,
                    "the launched process exited with 0; left running until the stack stops (follow_daemon = false): {names}");
            } else {
                tracing::warn!(service = %self.name,
                    "the launched process exited ({detail}) while {} process(es) of the service live on; stopping them: {names}",
                    left.len());
                let target = StopTarget {
                    root: None,
                    pgid: self.pgid,
                    tag: Some(self.tag.clone()),
                    also: left.iter().map(|p| (p.pid, p.start_time)).collect(),
                };
                let (signal, timeout) = (self.signal, self.timeout);
                match blocking_now(move || ringmaster_os::stop(&target, signal, timeout)).await {
                    Ok(Ok(report)) if !report.clean() => tracing::warn!(service = %self.name,
                        "still alive after the stop: {}",
                        report.survivors.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")),
                    Ok(Err(e)) => {
                        tracing::warn!(service = %self.name, "stopping what was left: {e}")
                    }
                    _ => {}
                }
            }
        }
        let _ = tokio::time::timeout(DRAIN_GRACE, futures::future::join_all(pumps)).await;
        self.logs.flush().await;
        self.addr.do_send(ChildExited {
            run: self.run,
            code,
            detail,
            _wrapper: Some(wrapper),
        });
    }

    /// The root exited with 0 and `left` live on: tells the actor, then follows
    /// the members until the last one is gone.
    async fn daemonized(self, wrapper: Box<dyn ChildWrapper>, left: Vec<ProcessInfo>) {
        let key = self.tag.env_value();
        Claims::hold(&key, &left);
        let target = CensusTarget {
            root: None,
            pgid: None,
            tag: Some(self.tag.clone()),
            also: left.iter().map(|p| (p.pid, p.start_time)).collect(),
            port: self.port,
            hint: None,
        };
        let pid_file = self.pid_file.clone();
        let main = blocking_now(move || {
            let hint = ringmaster_os::read_plain_pid(&pid_file);
            ringmaster_os::census(&[CensusTarget { hint, ..target }])
                .ok()
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.main_pid)
        })
        .await
        .ok()
        .flatten();
        self.addr.do_send(RootDaemonized {
            run: self.run,
            main,
            members: left.len(),
            wrapper,
        });
        let live_run = self.live_run.clone();
        let mut known: Vec<(u32, u64)> = left.iter().map(|p| (p.pid, p.start_time)).collect();
        let mut scanned = Instant::now();
        loop {
            tokio::time::sleep(DAEMON_POLL).await;
            if live_run.load(Ordering::SeqCst) != self.run {
                return;
            }
            let all_gone = known
                .iter()
                .all(|&(pid, start)| !ringmaster_os::process::is_same_alive(pid, start));
            if !all_gone && scanned.elapsed() < DAEMON_RESCAN {
                continue;
            }
            // Orphans are claimed only once every known member is gone (a
            // double fork whose middle process exited after the launcher), so
            // that another service's fresh daemon is not taken on a routine rescan.
            let (tag, since) = (self.tag.clone(), self.root_start.filter(|_| all_gone));
            let was = known.clone();
            let Ok(Ok(now)) = blocking(move || live_members(None, &tag, &was, since)).await else {
                continue;
            };
            scanned = Instant::now();
            if now.is_empty() {
                if live_run.load(Ordering::SeqCst) == self.run {
                    tracing::info!(service = %self.name, "the daemon's last process is gone");
                    self.logs.flush().await;
                    self.addr.do_send(DaemonGone { run: self.run });
                }
                return;
            }
            Claims::hold(&key, &now);
            known = now.iter().map(|p| (p.pid, p.start_time)).collect();
        }
    }
}

/// The live processes of a service: its group (when known), every process
/// carrying its tag, the processes already `known` as its members (pid and start
/// time: a process that wrote over its environment after it was found stays a
/// member), the orphans it claimed, and their descendants — less our own
/// children that carry its tag without being the service (its exec probes, and
/// their descendants). Blocking.
///
/// A daemon often cannot be told by its tag: nginx, redis and postgres overwrite
/// their environment with their process title, so `/proc/PID/environ` no longer
/// holds it. What links such a daemon to its service is the subreaper: when the
/// launcher exits, its orphans are re-parented to us. With `claim_since` (the
/// root's start time) every orphan of ours that started since then, carries no
/// readable tag but this service's timer-slack marker ([`Tag::slack_marker`]),
/// and that no other service claimed, is claimed for this one ([`Claims`]).
fn live_members(
    pgid: Option<u32>,
    tag: &Tag,
    known: &[(u32, u64)],
    claim_since: Option<u64>,
) -> ringmaster_os::Result<Vec<ProcessInfo>> {
    use ringmaster_os::process::{descendants, members, snapshot_brief};
    let table = snapshot_brief()?;
    let own: HashSet<u32> = OwnChild::all().into_iter().collect();
    let mut probes = own.clone();
    for &pid in &own {
        probes.extend(descendants(&table, pid).iter().map(|p| p.pid));
    }
    let key = tag.env_value();
    let mut found: BTreeMap<u32, &ProcessInfo> = members(&table, None, pgid, Some(tag))
        .into_iter()
        .map(|p| (p.pid, p))
        .collect();
    let marker = tag.slack_marker();
    let claimed = Claims::of(
        &key,
        &table,
        claim_since.map(|since| {
            let me = std::process::id();
            table
                .iter()
                .filter(|p| p.ppid == Some(me) && !p.zombie && p.start_time >= since)
                // Only orphans whose tag cannot be read (a tagged one says whose
                // it is) and that carry this service's timer-slack marker: an
                // orphan of anything else this process runs (a bot's own
                // children) is never taken.
                .filter(|p| p.tag.is_none() && !own.contains(&p.pid))
                .filter(|p| ringmaster_os::process::timer_slack(p.pid) == Some(marker))
                .map(|p| (p.pid, p.start_time))
                .collect::<Vec<_>>()
        }),
    );
    let held = claimed.into_iter().filter_map(|pid| {
        table
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| (p.pid, p.start_time))
    });
    for (pid, start) in known.iter().copied().chain(held) {
        let same = |p: &&ProcessInfo| p.pid == pid && p.start_time == start && !p.zombie;
        if let Some(p) = table.iter().find(same) {
            found.insert(p.pid, p);
            for d in descendants(&table, pid) {
                if !d.zombie {
                    found.insert(d.pid, d);
                }
            }
        }
    }
    Ok(found
        .into_values()
        .filter(|p| !probes.contains(&p.pid))
        .cloned()
        .collect())
}

/// Orphans adopted by us (the subreaper) that a service claimed when its launcher
/// exited: pid → (start time, the service's tag value).
pub(crate) struct Claims;

impl Claims {
    /// The processes (pid, start time) the service tagged `key` claimed.
    pub(crate) fn held(key: &str) -> Vec<(u32, u64)> {
        Self::map()
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, (_, k))| k == key)
                    .map(|(pid, (start, _))| (*pid, *start))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn map() -> &'static Mutex<HashMap<u32, (u64, String)>> {
        static CLAIMS: OnceLock<Mutex<HashMap<u32, (u64, String)>>> = OnceLock::new();
        CLAIMS.get_or_init(Default::default)
    }

    /// Forgets the claims of `key` whose process is gone from `table`, claims the
    /// unclaimed `candidates` for `key`, and returns the pids `key` holds.
    fn of(key: &str, table: &[ProcessInfo], candidates: Option<Vec<(u32, u64)>>) -> Vec<u32> {
        let Ok(mut map) = Self::map().lock() else {
            return Vec::new();
        };
        map.retain(|pid, (start, _)| {
            table
                .iter()
                .any(|p| p.pid == *pid && p.start_time == *start && !p.zombie)
        });
        for (pid, start) in candidates.unwrap_or_default() {
            map.entry(pid).or_insert_with(|| (start, key.to_owned()));
        }
        map.iter()
            .filter(|(_, (_, k))| k == key)
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Records `found` as members of `key` by identity: a daemon that writes over
    /// its environment later stays known (to the status, the stop, the watch).
    fn hold(key: &str, found: &[ProcessInfo]) {
        if let Ok(mut map) = Self::map().lock() {
            for p in found {
                map.insert(p.pid, (p.start_time, key.to_owned()));
            }
        }
    }

    /// Forgets every claim of `key` (the service was stopped).
    fn release(key: &str) {
        if let Ok(mut map) = Self::map().lock() {
            map.retain(|_, (_, k)| k != key);
        }
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

impl Handler<Start> for ServiceActor {
    type Result = ();

    fn handle(&mut self, msg: Start, ctx: &mut Context<Self>) {
        self.events = Some(msg.events);
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
            let res = blocking_now(move || ringmaster_os::stop(&target, signal, grace)).await;
            // The wrapper (on Windows, the job) goes only once its processes are stopped.
            drop(running);
            Claims::release(&key);
            retire.await;
            let error = match res {
                Ok(Ok(report)) => {
                    return StopAnswer {
                        report,
                        error: None,
                        command,
                    }
                }
                Ok(Err(e)) | Err(crate::Error::Os(e)) => e.to_string(),
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
            if ringmaster_os::read_plain_pid(&self.cfg.pid_file).is_none() {
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
        let mut cmd = tokio::process::Command::new("cmd");
        cmd.arg("/C").arg(command);
        cmd
    }
    #[cfg(not(windows))]
    {
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(command);
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
