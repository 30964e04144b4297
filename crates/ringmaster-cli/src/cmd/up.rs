//! `ringmaster up`: start the services in dependency order and stay in the
//! foreground. While starting, one live line per service (a spinner on a
//! terminal, plain lines otherwise); then each service's output prefixed with its
//! name. SIGINT/SIGTERM (or `down` through the control socket) runs the shutdown
//! cascade and prints its report; a second signal kills what is left of the
//! selected services at once. SIGHUP reloads the file (unless it came because
//! the terminal closed: then it stops), and changes through the control socket
//! (`reload`, `add`, `remove`) are printed as they are made. Stdout is written by a thread of its own, so a
//! reader that stops reading never holds up the actors (lines are dropped for the
//! screen instead, and counted).
//!
//! `up -d` re-executes this program as a hidden `__serve` command in a new session,
//! with its output going to `<state_dir>/ringmaster.log`, and returns once the
//! control socket says every service is ready.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster::messages::{LogLine, ServiceEvent, ServiceStopReport, ShutdownReport};
use ringmaster::{Config, Options, Orchestrator, ServiceStatus};
use ringmaster_os::{InstanceLock, StopReport};
use tokio::sync::{broadcast, mpsc, watch};

use crate::cli::UpArgs;
use crate::control::client::Client;
use crate::control::server::{self, reload_file, Applied, Current, Shared};
use crate::control::Startup;
use crate::exit::{load_config, CmdResult, Failure, FAILED, OK};
use crate::output::{human_duration, state_color, Prefixer, Style};
use crate::{cleanup, control, metrics, platform};

mod progress;
use progress::Progress;

/// The file the detached instance writes its output to, in the state directory.
pub const DETACHED_LOG: &str = "ringmaster.log";

/// How the running instance reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In a terminal or a pipe: progress and the services' output on stdout.
    Foreground,
    /// The detached instance (`__serve`): events only (service output is in the
    /// log files already).
    Detached,
}

/// Global flags passed on to the detached instance.
#[derive(Clone, Debug, Default)]
pub struct Passthrough {
    pub args: Vec<String>,
}

/// Runs `up` (or `__serve` when `mode` is [`Mode::Detached`]).
pub fn run(args: &UpArgs, style: Style, mode: Mode, pass: &Passthrough) -> CmdResult {
    let config = load_config(&args.config.file)?;
    check_services(&config, &args.services)?;
    let state_dir = config.settings.state_dir.clone();
    if let Some(pid) = InstanceLock::owner(&state_dir) {
        return Err(Failure::failed(format!(
            "another ringmaster (pid {pid}) is running with state directory {}",
            state_dir.display()
        )));
    }
    if args.detach && mode == Mode::Foreground {
        return detach(args, &config, &style, pass);
    }
    let style = if mode == Mode::Detached {
        Style::plain()
    } else {
        style
    };
    actix_rt::System::new().block_on(serve(config, args.services.clone(), style, mode))
}

/// Exit 2 naming the first of `names` that is not a service of `config`, with
/// the configured ones.
pub fn check_services(config: &Config, names: &[String]) -> Result<(), Failure> {
    match names.iter().find(|n| !config.services.contains_key(*n)) {
        Some(name) => Err(Failure::usage(format!(
            "unknown service `{name}` (configured: {})",
            config
                .services
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(()),
    }
}

/// The named services plus everything they depend on, in start order (all when
/// none are named).
pub fn selected(config: &Config, only: &[String]) -> Vec<String> {
    let order = config.start_order();
    if only.is_empty() {
        return order;
    }
    let mut want: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = only.to_vec();
    while let Some(name) = stack.pop() {
        if want.insert(name.clone()) {
            if let Some(svc) = config.services.get(&name) {
                stack.extend(svc.depends_on.iter().map(|d| d.service.clone()));
            }
        }
    }
    order.into_iter().filter(|n| want.contains(n)).collect()
}

/// Forwards actix messages into a tokio channel.
struct Forward<M: Send + 'static>(mpsc::UnboundedSender<M>);

impl<M: Send + Unpin + 'static> Actor for Forward<M> {
    type Context = Context<Self>;
}

impl<M> Handler<M> for Forward<M>
where
    M: Message<Result = ()> + Send + Unpin + 'static,
{
    type Result = ();
    fn handle(&mut self, msg: M, _: &mut Context<Self>) {
        let _ = self.0.send(msg);
    }
}

/// How startup ended.
enum Outcome {
    Ready,
    Failed(String),
    Interrupted(&'static str),
    Requested,
}

async fn serve(config: Config, only: Vec<String>, style: Style, mode: Mode) -> CmdResult {
    let state_dir = config.settings.state_dir.clone();
    let mut names = selected(&config, &only);
    let all: Vec<String> = config.start_order();
    let prefix = Prefixer::new(style, all.clone());
    let mut view = Progress::new(style, mode, prefix, names.clone());

    // Signals first: a Ctrl-C from here on runs the cascade instead of killing us.
    let mut signals = platform::signals()
        .map_err(|e| Failure::failed(format!("cannot install signal handlers: {e}")))?;

    let orch = match Orchestrator::start(config.clone(), Options::default()) {
        Ok(o) => o,
        Err(ringmaster::Error::Os(e @ ringmaster_os::Error::AlreadyRunning { .. })) => {
            return Err(Failure::failed(e.to_string()))
        }
        Err(e) => return Err(Failure::failed(format!("cannot start: {e}"))),
    };
    let (ev_tx, mut events) = mpsc::unbounded_channel::<ServiceEvent>();
    orch.subscribe(Forward(ev_tx).start().recipient());
    let (log_tx, mut logs) = mpsc::unbounded_channel::<LogLine>();
    orch.subscribe_logs(Forward(log_tx).start().recipient());
    let (followers, _) = broadcast::channel::<LogLine>(1024);

    let pid = std::process::id();
    let (startup_tx, startup_rx) = watch::channel(Startup {
        state: "starting".into(),
        reason: None,
        pid,
    });
    let (report_tx, report_rx) = watch::channel::<Option<ShutdownReport>>(None);
    let (shutdown_tx, mut shutdown_rx) = mpsc::unbounded_channel::<()>();
    // The configuration in force (reloads replace it), and what changes did.
    let current = Arc::new(Mutex::new(Current::new(config.clone())));
    let (applied_tx, mut applied) = mpsc::unbounded_channel::<Applied>();

    let control = control::listen(&state_dir).and_then(|listening| {
        tracing::info!(endpoint = %listening.describe(), "control socket");
        control::server::start(
            listening,
            Shared {
                orch: orch.clone(),
                log_dir: crate::logfiles::dir(&state_dir),
                config: current.clone(),
                applied: applied_tx.clone(),
                startup: startup_rx.clone(),
                report: report_rx.clone(),
                shutdown: shutdown_tx.clone(),
                logs: followers.clone(),
            },
        )
    });
    let control = match control {
        Ok(server) => {
            let handle = server.handle();
            actix_rt::spawn(server);
            Some(handle)
        }
        Err(e) => {
            view.own(&format!(
                "cannot open the control socket in {}: {e}",
                state_dir.display()
            ));
            let _ = orch.shutdown(config.settings.shutdown_timeout).await;
            return Err(Failure::failed(format!("control socket: {e}")));
        }
    };
    let metrics = match config.settings.metrics {
        Some(addr) => match metrics::start(addr, orch.clone()) {
            Ok(server) => {
                let handle = server.handle();
                actix_rt::spawn(server);
                view.own(&format!("metrics on http://{addr}/metrics"));
                Some(handle)
            }
            Err(e) => {
                view.own(&format!("cannot serve metrics on {addr}: {e}"));
                None
            }
        },
        None => None,
    };

    // Startup.
    let outcome = {
        let up = orch.up(if only.is_empty() {
            None
        } else {
            Some(only.clone())
        });
        tokio::pin!(up);
        let mut tick = tokio::time::interval(Duration::from_millis(80));
        loop {
            tokio::select! {
                r = &mut up => break match r {
                    Ok(()) => Outcome::Ready,
                    Err(e) => Outcome::Failed(e.to_string()),
                },
                Some(sig) = signals.recv() => {
                    if sig == RELOAD_SIGNAL {
                        // Applied once the start is over (the library queues it).
                        view.own(&format!("{sig}: reloading once the start is over"));
                        reload_in_background(&orch, &current, &applied_tx, sig);
                        continue;
                    }
                    break Outcome::Interrupted(sig);
                }
                Some(()) = shutdown_rx.recv() => break Outcome::Requested,
                Some(a) = applied.recv() => view.applied(a, &mut names),
                Some(ev) = events.recv() => view.event(&ev),
                Some(line) = logs.recv() => {
                    let _ = followers.send(line.clone());
                    view.log(&line);
                }
                _ = tick.tick() => view.tick(),
            }
        }
    };
    if matches!(outcome, Outcome::Ready) {
        // The last Ready events may still be on their way; show them first.
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while !view.all_ready() {
            match tokio::time::timeout_at(until, events.recv()).await {
                Ok(Some(ev)) => view.event(&ev),
                _ => break,
            }
        }
    }
    view.end_startup();
    let mut failed = None;
    match &outcome {
        Outcome::Ready => {
            let _ = startup_tx.send(Startup {
                state: "ready".into(),
                reason: None,
                pid,
            });
            view.own(&format!(
                "{} ready in {}; Ctrl-C stops {}",
                plural(names.len(), "service"),
                human_duration(view.started.elapsed()),
                if names.len() == 1 { "it" } else { "them all" }
            ));
            loop {
                tokio::select! {
                    Some(sig) = signals.recv() => {
                        if sig == RELOAD_SIGNAL {
                            view.own(&format!("{sig}: reloading {}", file_name(&current)));
                            reload_in_background(&orch, &current, &applied_tx, sig);
                            continue;
                        }
                        view.own(&format!("{sig}: stopping"));
                        break;
                    }
                    Some(a) = applied.recv() => view.applied(a, &mut names),
                    Some(()) = shutdown_rx.recv() => {
                        view.own("stop requested through the control socket");
                        break;
                    }
                    Some(ev) = events.recv() => view.event(&ev),
                    Some(line) = logs.recv() => {
                        let _ = followers.send(line.clone());
                        view.log(&line);
                    }
                }
            }
        }
        Outcome::Failed(reason) => {
            view.own(&format!(
                "startup failed: {reason}; stopping what was started"
            ));
            let _ = startup_tx.send(Startup {
                state: "failed".into(),
                reason: Some(reason.clone()),
                pid,
            });
            failed = Some(reason.clone());
        }
        Outcome::Interrupted(sig) => view.own(&format!("{sig} during startup: stopping")),
        Outcome::Requested => view.own("stop requested through the control socket"),
    }
    if failed.is_none() {
        let _ = startup_tx.send(Startup {
            state: "stopping".into(),
            reason: None,
            pid,
        });
    }

    // The cascade; a second signal kills what is left of the selected services at
    // once (never a service this run did not select: its port may be someone
    // else's). Both by the configuration in force.
    let config = server::current(&current).merged();
    let deadline = config.settings.shutdown_timeout;
    let started = Instant::now();
    let mut forced: Option<cleanup::Cleanup> = None;
    let report = {
        let cascade = orch.shutdown(deadline);
        tokio::pin!(cascade);
        loop {
            tokio::select! {
                r = &mut cascade => break r.ok(),
                Some(a) = applied.recv() => view.applied(a, &mut names),
                Some(sig) = signals.recv() => {
                    if sig == RELOAD_SIGNAL {
                        view.own(&format!("{sig} during the shutdown: not reloaded"));
                        continue;
                    }
                    view.own(&format!("{sig} again: killing what is left at once"));
                    let cfg = config.clone();
                    let selected = names.clone();
                    let swept = actix_web::rt::task::spawn_blocking(move || {
                        cleanup::sweep(&cfg, Some(&selected), true)
                    })
                    .await;
                    match swept {
                        Ok(swept) => {
                            for line in &swept.actions {
                                view.own(&format!("forced stop: {line}"));
                            }
                            if swept.stopped.is_empty() {
                                view.own("forced stop: nothing was left to kill");
                            }
                            for line in &swept.leftovers {
                                view.own(&format!("still there: {line}"));
                            }
                            forced = Some(swept);
                        }
                        Err(e) => view.own(&format!("the forced stop failed: {e}")),
                    }
                    // The cascade finds nothing left to wait for; give it a moment to report.
                    match tokio::time::timeout(Duration::from_secs(5), &mut cascade).await {
                        Ok(r) => break r.ok(),
                        Err(_) => break None,
                    }
                }
                Some(ev) = events.recv() => view.event(&ev),
                Some(line) = logs.recv() => {
                    let _ = followers.send(line.clone());
                    view.log(&line);
                }
                Some(()) = shutdown_rx.recv() => {}
            }
        }
    };
    let cascade_clean = report.as_ref().map(|r| r.clean());
    let mut report = report.unwrap_or(ShutdownReport {
        services: Vec::new(),
        elapsed: started.elapsed(),
        deadline_hit: true,
    });
    if let Some(swept) = &forced {
        merge_forced(&mut report, swept);
    }
    // After a forced stop the cascade's word is not the last one: look again.
    let clean = match cascade_clean {
        Some(clean) if forced.is_none() => clean,
        _ => {
            let cfg = config.clone();
            let selected = names.clone();
            actix_web::rt::task::spawn_blocking(move || cleanup::verify(&cfg, Some(&selected)))
                .await
                .map(|left| {
                    let said = forced
                        .as_ref()
                        .map(|f| f.leftovers.as_slice())
                        .unwrap_or(&[]);
                    for line in left.iter().filter(|l| !said.contains(l)) {
                        view.own(&format!("still there: {line}"));
                    }
                    left.is_empty()
                })
                .unwrap_or(false)
        }
    };
    let _ = report_tx.send(Some(report.clone()));
    view.report(&report);
    if let Some(handle) = control {
        handle.stop(true).await;
    }
    if let Some(handle) = metrics {
        handle.stop(false).await;
    }
    control::remove(&state_dir);
    drop(orch);
    match failed {
        Some(reason) => Err(Failure::failed(format!("startup failed: {reason}"))),
        None if clean => Ok(OK),
        None => Err(Failure::code(
            FAILED,
            "the shutdown left processes or ports behind",
        )),
    }
}

/// Puts what a forced stop killed into the cascade's report: a process the sweep
/// killed did not stop gracefully, whatever the cascade saw of its end. A service
/// the cascade did not report (it gave no report in time) gets an entry of its own.
fn merge_forced(report: &mut ShutdownReport, swept: &cleanup::Cleanup) {
    for (name, killed) in &swept.stopped {
        let entry = match report.services.iter().position(|s| &s.name == name) {
            Some(i) => &mut report.services[i],
            None => {
                report.services.push(ServiceStopReport {
                    name: name.clone(),
                    report: StopReport::default(),
                    port_free: None,
                    deadline_cut: false,
                    no_answer: None,
                    ..Default::default()
                });
                report.services.last_mut().expect("just pushed")
            }
        };
        let r = &mut entry.report;
        for p in killed {
            if !r.signalled.iter().any(|q| q.pid == p.pid) {
                r.signalled.push(p.clone());
            }
            if !r.killed.iter().any(|q| q.pid == p.pid) {
                r.killed.push(p.clone());
            }
            r.survivors.retain(|q| q.pid != p.pid);
        }
    }
}

/// The signal that reloads the file (Unix).
const RELOAD_SIGNAL: &str = "SIGHUP";

/// The file in force, for messages.
fn file_name(current: &Mutex<Current>) -> String {
    let c = server::current(current);
    c.file
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the configuration".into())
}

/// Reloads the file in force on the arbiter, off the loop (the change waits
/// for what it starts); what it did comes back on `applied`.
fn reload_in_background(
    orch: &Orchestrator,
    current: &Arc<Mutex<Current>>,
    applied: &mpsc::UnboundedSender<Applied>,
    via: &str,
) {
    let (orch, current, applied, via) = (
        orch.clone(),
        current.clone(),
        applied.clone(),
        via.to_owned(),
    );
    actix_rt::spawn(async move {
        let done = match reload_file(&orch, &current, None, false).await {
            Ok(report) => Applied::Done { via, report },
            Err(e) => Applied::Refused { via, why: e.text() },
        };
        let _ = applied.send(done);
    });
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `up -d`: starts the detached instance and waits until every service is ready.
fn detach(args: &UpArgs, config: &Config, style: &Style, pass: &Passthrough) -> CmdResult {
    let state_dir = config.settings.state_dir.clone();
    ringmaster_os::pidfile::ensure_state_dir(&state_dir)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", state_dir.display())))?;
    let log_path = state_dir.join(DETACHED_LOG);
    // No instance holds the lock here (checked before), so nobody writes the log:
    // start a fresh one when it has grown past the size limit (one old file kept).
    if let Err(e) = ringmaster::logs::rotate_if_larger(&log_path, config.settings.log_max_bytes, 1)
    {
        tracing::warn!("cannot rotate {}: {e}", log_path.display());
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Failure::failed(format!("cannot open {}: {e}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Failure::failed(format!("cannot open {}: {e}", log_path.display())))?;
    let start_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find this program's path: {e}")))?;
    let file = absolute(&args.config.file);
    let mut cmd = Command::new(exe);
    cmd.args(&pass.args)
        .arg("__serve")
        .arg("-f")
        .arg(&file)
        .args(&args.services)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    platform::detach(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::failed(format!("cannot start the background instance: {e}")))?;
    let pid = child.id();
    let names = selected(config, &args.services);
    let client = Client::new(&state_dir).with_timeout(Some(Duration::from_secs(5)));
    let mut last: Vec<(String, String)> = Vec::new();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_since(&log_path, start_len, 30);
            // The instance may have failed and exited between two polls of
            // `/startup`: its log then says why, and that comes first.
            let reason = tail.lines().find_map(|l| {
                let (_, rest) = l.split_once("startup failed: ")?;
                Some(
                    rest.trim_end_matches("; stopping what was started")
                        .to_string(),
                )
            });
            let head = match reason {
                Some(reason) => format!("startup failed: {reason}\n"),
                None => String::new(),
            };
            return Err(Failure::failed(format!(
                "{head}the background instance exited during startup ({status}); from {}:\n{tail}",
                log_path.display(),
            )));
        }
        if let Ok(startup) = client.get_json::<Startup>("/startup") {
            let statuses: Vec<ServiceStatus> = client.get_json("/status?brief").unwrap_or_default();
            if args.wait_timeout.is_some_and(|t| started.elapsed() >= t) {
                return Err(Failure::failed(not_ready_in_time(
                    &statuses, &names, started, pid,
                )));
            }
            for s in statuses.iter().filter(|s| names.contains(&s.name)) {
                let state = crate::output::state_name(s);
                let entry = (s.name.clone(), state.clone());
                if !last.contains(&entry) {
                    last.retain(|(n, _)| n != &s.name);
                    last.push(entry);
                    let mut line =
                        format!("{}: {}", s.name, style.paint(state_color(&state), &state));
                    if let Some(reason) = &s.reason {
                        line.push_str(&format!(" ({reason})"));
                    }
                    println!("{line}");
                }
            }
            match startup.state.as_str() {
                "ready" => {
                    println!(
                        "{} ready in {}; ringmaster runs in the background (pid {pid}, log {}); `ringmaster down` stops it",
                        plural(names.len(), "service"),
                        human_duration(started.elapsed()),
                        log_path.display()
                    );
                    return Ok(OK);
                }
                "failed" => {
                    let reason = startup.reason.unwrap_or_default();
                    // It stops what it started, then exits.
                    let wait = config
                        .settings
                        .shutdown_timeout
                        .saturating_add(Duration::from_secs(10));
                    let t = Instant::now();
                    while t.elapsed() < wait {
                        if let Ok(Some(_)) = child.try_wait() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    return Err(Failure::failed(format!("startup failed: {reason}")));
                }
                "stopping" => {
                    return Err(Failure::failed(
                        "the background instance was stopped during startup",
                    ))
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `up -d --wait-timeout` ran out: who is not ready, and the last word on why.
fn not_ready_in_time(
    statuses: &[ServiceStatus],
    names: &[String],
    started: Instant,
    pid: u32,
) -> String {
    let mut text = format!(
        "not every service was ready after {}:",
        human_duration(started.elapsed())
    );
    for s in statuses
        .iter()
        .filter(|s| names.contains(&s.name) && crate::output::state_name(s) != "ready")
    {
        let why = s
            .reason
            .as_deref()
            .or(s.health.as_deref())
            .unwrap_or("no word yet");
        text.push_str(&format!(
            "\n  {}: {} ({why})",
            s.name,
            crate::output::state_name(s)
        ));
    }
    text.push_str(&format!(
        "\nthe instance keeps running in the background (pid {pid}); `ringmaster down` stops it"
    ));
    text
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The last `n` lines written to `path` after `offset`.
fn log_since(path: &Path, offset: u64, n: usize) -> String {
    let (lines, _) = crate::logfiles::read_new(path, offset);
    let skip = lines.len().saturating_sub(n);
    lines[skip..].join("\n")
}
