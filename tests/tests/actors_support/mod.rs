//! Shared by the actor tests (`actors_*.rs`): a recorder of service events and
//! output lines with their arrival instants, configuration helpers that run the
//! fake-service program, and an async polling wait (a blocking wait would stall
//! the actix arbiter the orchestrator runs on).
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use ringmaster::config::{Config, ServiceConfigBuilder};
use ringmaster::messages::{EventKind, LogLine, ServiceEvent};
use ringmaster_tests::{fake_service, PidGuard};

/// Generous: tests must not depend on a fast machine.
pub const LONG: Duration = Duration::from_secs(30);

/// One recorded event: when it arrived and what it was.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub event: ServiceEvent,
}

/// What a [`Recorder`] saw, shared with the test.
#[derive(Clone, Default)]
pub struct Recording {
    pub events: Arc<Mutex<Vec<Seen>>>,
    pub lines: Arc<Mutex<Vec<LogLine>>>,
    /// When each line arrived, in the order of `lines`.
    pub line_times: Arc<Mutex<Vec<Instant>>>,
    /// Whether `probe_port` answered at the moment the watched service spawned.
    pub port_at_spawn: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Recording {
    /// Every event so far.
    pub fn events(&self) -> Vec<Seen> {
        self.events.lock().expect("events lock").clone()
    }
    /// The events of `service` whose kind matches `pred`.
    pub fn of(&self, service: &str, pred: impl Fn(&EventKind) -> bool) -> Vec<Seen> {
        self.events()
            .into_iter()
            .filter(|s| s.event.name == service && pred(&s.event.kind))
            .collect()
    }
    /// The instant of the first event of `service` matching `pred`.
    pub fn first(&self, service: &str, pred: impl Fn(&EventKind) -> bool) -> Option<Instant> {
        self.of(service, pred).first().map(|s| s.at)
    }
    /// Index of the first event of `service` matching `pred` in arrival order.
    pub fn index(&self, service: &str, pred: impl Fn(&EventKind) -> bool) -> Option<usize> {
        self.events()
            .iter()
            .position(|s| s.event.name == service && pred(&s.event.kind))
    }
    /// When the first line of `service` matching `pred` arrived.
    pub fn line_at(&self, service: &str, pred: impl Fn(&str) -> bool) -> Option<Instant> {
        let lines = self.lines();
        let times = self.line_times.lock().expect("lines lock").clone();
        lines
            .iter()
            .zip(times)
            .find(|(l, _)| l.service == service && pred(&l.line))
            .map(|(_, t)| t)
    }
    /// Every output line so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().expect("lines lock").clone()
    }
}

/// An actor that records service events and output lines. When `spawn_probe` is
/// set to `(service, port)`, it also checks at once, when `service` spawns,
/// whether something answers on `port`.
pub struct Recorder {
    pub seen: Recording,
    pub spawn_probe: Option<(String, u16)>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<ServiceEvent> for Recorder {
    type Result = ();
    fn handle(&mut self, event: ServiceEvent, _: &mut Context<Self>) {
        let at = Instant::now();
        if let (Some((svc, port)), EventKind::Spawned { .. }) = (&self.spawn_probe, &event.kind) {
            if *svc == event.name {
                let answers = ringmaster_tests::port_answers(*port);
                self.seen
                    .port_at_spawn
                    .lock()
                    .expect("lock")
                    .push((event.name.clone(), answers));
            }
        }
        self.seen
            .events
            .lock()
            .expect("events lock")
            .push(Seen { at, event });
    }
}

impl Handler<LogLine> for Recorder {
    type Result = ();
    fn handle(&mut self, line: LogLine, _: &mut Context<Self>) {
        self.seen
            .line_times
            .lock()
            .expect("lines lock")
            .push(Instant::now());
        self.seen.lines.lock().expect("lines lock").push(line);
    }
}

/// Starts a recorder subscribed to `orch`'s events and lines.
pub fn record(orch: &ringmaster::Orchestrator, spawn_probe: Option<(&str, u16)>) -> Recording {
    let seen = Recording::default();
    let addr = Recorder {
        seen: seen.clone(),
        spawn_probe: spawn_probe.map(|(s, p)| (s.to_owned(), p)),
    }
    .start();
    orch.subscribe(addr.clone().recipient());
    orch.subscribe_logs(addr.recipient());
    seen
}

/// The pid of every service in `orch`'s status (each must be running), in status
/// order, each registered with `guard`.
pub async fn guard_running(orch: &ringmaster::Orchestrator, guard: &PidGuard) -> Vec<u32> {
    let pids: Vec<u32> = orch
        .status()
        .await
        .expect("status")
        .iter()
        .map(|s| s.pid.expect("pid"))
        .collect();
    pids.iter().for_each(|p| guard.add(*p));
    pids
}

/// The shell command running fake-service with `args`: its path quoted for `sh -c`
/// (Unix) or for `cmd /C` (Windows, which takes double quotes only).
pub fn fake(args: &str) -> String {
    let path = fake_service();
    if cfg!(windows) {
        format!("\"{}\" {args}", path.display())
    } else {
        format!("'{}' {args}", path.display())
    }
}

/// A service running fake-service with `args`; short stop timeout.
pub fn svc(name: &str, args: &str) -> ServiceConfigBuilder {
    ServiceConfigBuilder::new(name, fake(args)).stop_timeout(Duration::from_secs(5))
}

/// `name`: fake-service listening on `port`, ready once its port accepts,
/// depending on `dep` (condition `ready`).
pub fn dependent(name: &str, dep: &str, port: u16) -> ServiceConfigBuilder {
    svc(name, &format!("--listen {port}"))
        .port(port)
        .depends_on(dep)
        .health_tcp(port)
}

/// Runs `orch.up(None)` on the arbiter in the background (the test goes on
/// while it waits); its answer comes from the handle.
pub fn up_in_background(
    orch: &ringmaster::Orchestrator,
) -> actix_rt::task::JoinHandle<ringmaster::Result<()>> {
    let orch = orch.clone();
    actix_rt::spawn(async move { orch.up(None).await })
}

/// A configuration in `dir` (state in `dir/state`) with `services`.
pub fn config(dir: &Path, services: Vec<ServiceConfigBuilder>) -> Config {
    let mut b = Config::builder(dir)
        .state_dir(dir.join("state"))
        .shutdown_timeout(Duration::from_secs(20));
    for s in services {
        b = b.service(s);
    }
    b.build().expect("a valid test configuration")
}

/// Awaits `f` (a request to the orchestrator) for at most [`LONG`].
pub async fn timed<T>(f: impl Future<Output = T>) -> T {
    actix_rt::time::timeout(LONG, f)
        .await
        .expect("the orchestrator answers in time")
}

/// Polls `cond` every 10 ms without blocking the arbiter; panics with `what`
/// after `timeout`.
pub async fn until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`until`], for an async condition.
pub async fn until_async<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Watches `pids` (each must be running now) on a thread until each is gone (checked with the OS: the same
/// pid with the same start time no longer runs), or for at most `timeout`.
/// Answers, for each pid, the number of the pass in which it was first seen
/// gone (`None`: still running at the end). Each pass checks the pids in the
/// order given, so with `[dependency, dependent]` a dependency seen gone in an
/// earlier pass than its dependent certainly ended while the dependent still ran.
pub fn watch_gone(pids: &[u32], timeout: Duration) -> std::thread::JoinHandle<Vec<Option<u32>>> {
    let watched: Vec<(u32, u64)> = pids
        .iter()
        .map(|&pid| match ringmaster_os::process::liveness(pid) {
            Some((start, false)) => (pid, start),
            other => panic!("pid {pid} to watch is not running: {other:?}"),
        })
        .collect();
    std::thread::spawn(move || {
        let mut gone: Vec<Option<u32>> = vec![None; watched.len()];
        let started = Instant::now();
        let mut pass = 0u32;
        while gone.iter().any(Option::is_none) && started.elapsed() < timeout {
            for (i, (pid, start)) in watched.iter().enumerate() {
                if gone[i].is_none() && !ringmaster_os::process::is_same_alive(*pid, *start) {
                    gone[i] = Some(pass);
                }
            }
            pass += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        gone
    })
}

/// The start time of `pid` in clock ticks since boot (Linux /proc).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when nothing listens on `port` (connect refused).
pub fn port_free(port: u16) -> bool {
    !ringmaster_tests::port_answers(port)
}

pub fn is_spawned(k: &EventKind) -> bool {
    matches!(k, EventKind::Spawned { .. })
}
pub fn is_ready(k: &EventKind) -> bool {
    matches!(k, EventKind::Ready)
}
pub fn is_stopped(k: &EventKind) -> bool {
    matches!(k, EventKind::Stopped { .. })
}
pub fn is_exited(k: &EventKind) -> bool {
    matches!(k, EventKind::Exited { .. })
}
pub fn is_failed(k: &EventKind) -> bool {
    matches!(k, EventKind::Failed { .. })
}
