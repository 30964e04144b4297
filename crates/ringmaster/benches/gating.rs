//! Gating latency at any start-up length: from the moment a dependency's probe
//! could first succeed to the moment its dependent is spawned (its `Spawned`
//! event reaching a subscriber), for dependencies that become ready 0.1, 1, 5 and
//! 30 s after their launch, with every kind of readiness; beside it, `wait-on`
//! (what `concurrently` users gate with) on the same dependencies; and the CPU
//! ringmaster spends while it waits 30 s for a slow starter.
//!
//! The dependencies:
//! - `http late bind`: the health endpoint's port is bound at the moment (the
//!   common case: uvicorn without `--reload`, postgres, redis);
//! - `http held`: bound from the start, every request held until the moment (a
//!   reloader whose worker is starting: `uvicorn --reload`);
//! - `http 503 first`: bound from the start, 503 until the moment, then 200;
//! - `tcp late bind`: a tcp probe, the port bound at the moment;
//! - `log line`: a log probe, the line printed at the moment;
//! - `notify`: `READY=1` sent at the moment;
//! - `plugin`: a plugin reporting `Ready` at the moment.
//!
//! The HTTP endpoints are served by this bench, so the moment is timed where it
//! happens; for `log` and `notify` the fake service prints the wall-clock time
//! of the moment. `BENCH_PAIRS` dependency/dependent pairs (default 20) per
//! row: for start-ups of 1 s and more all at once, their moments 37 ms apart;
//! for shorter ones one after another (the launch of 40 processes at once takes
//! longer than the start-up itself on a small machine). Run:
//! `cargo build --release -p ringmaster-tests --bin fake-service && cargo bench
//! -p ringmaster --bench gating` (`BENCH_LENGTHS=0.1,1` for fewer lengths;
//! `WAIT_ON=path/to/wait-on` for the comparison, which
//! `scripts/bench-tools.sh` installs).
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use common::*;
use ringmaster::config::{Config, ServiceConfigBuilder};
use ringmaster::messages::{EventKind, LogLine, Start, Stop};
use ringmaster::plugin::PluginService;
use ringmaster::{Options, Orchestrator, StopReport};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    HttpLate,
    HttpHeld,
    Http503,
    TcpLate,
    Log,
    Notify,
    Plugin,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::HttpLate => "http, late bind",
            Kind::HttpHeld => "http, held until ready",
            Kind::Http503 => "http, 503 until ready",
            Kind::TcpLate => "tcp, late bind",
            Kind::Log => "log line",
            Kind::Notify => "notify (READY=1)",
            Kind::Plugin => "plugin Ready",
        }
    }
}

/// When a moment happened: set by whoever makes it happen.
type Moment = Arc<Mutex<Option<Instant>>>;

/// When a dependency becomes ready: set once known (its spawn plus the
/// start-up length), waited for by its server's threads.
#[derive(Clone, Default)]
struct Due(Arc<(Mutex<Option<Instant>>, std::sync::Condvar)>);

impl Due {
    fn at(t: Instant) -> Due {
        let due = Due::default();
        due.set(t);
        due
    }
    fn set(&self, t: Instant) {
        *self.0 .0.lock().expect("lock") = Some(t);
        self.0 .1.notify_all();
    }
    fn get(&self) -> Option<Instant> {
        *self.0 .0.lock().expect("lock")
    }
    fn wait(&self) -> Instant {
        let mut g = self.0 .0.lock().expect("lock");
        loop {
            if let Some(t) = *g {
                return t;
            }
            g = self.0 .1.wait(g).expect("wait");
        }
    }
}

/// An HTTP (or, for `tcp late bind`, bare TCP) server for one dependency on
/// `port`, ready at `due` as `kind` says. Returns the moment its probe could
/// first succeed: the bind for a late bind, `due` otherwise.
fn serve(kind: Kind, port: u16, due: Due) -> Moment {
    let moment: Moment = Arc::new(Mutex::new(None));
    let m = moment.clone();
    if matches!(kind, Kind::HttpHeld | Kind::Http503) {
        // Bound (and accepting) from the start.
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the health port");
        let d = due.clone();
        std::thread::spawn(move || *m.lock().expect("lock") = Some(d.wait()));
        std::thread::spawn(move || accept(listener, kind, due));
    } else {
        std::thread::spawn(move || {
            let at = due.wait();
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the health port");
            *m.lock().expect("lock") = Some(Instant::now());
            accept(listener, kind, due);
        });
    }
    moment
}

fn accept(listener: TcpListener, kind: Kind, due: Due) {
    for stream in listener.incoming() {
        let Ok(s) = stream else { continue };
        let due = due.clone();
        std::thread::spawn(move || answer(s, kind, &due));
    }
}

fn answer(mut s: TcpStream, kind: Kind, due: &Due) {
    let mut buf = [0u8; 2048];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if kind == Kind::TcpLate {
            continue;
        }
        if kind == Kind::HttpHeld {
            let at = due.wait();
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
        }
        let ready = due.get().is_some_and(|at| Instant::now() >= at);
        let resp: &[u8] = if ready {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        } else {
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        };
        if s.write_all(resp).is_err() {
            return;
        }
    }
}

/// A plugin that reports `Ready` at its moment, and records when it did.
struct LatePlugin {
    /// From its `Start` to its `Ready`.
    after: Duration,
    moment: Moment,
}

impl Actor for LatePlugin {
    type Context = Context<Self>;
}

impl Handler<Start> for LatePlugin {
    type Result = ();
    fn handle(&mut self, start: Start, ctx: &mut Context<Self>) {
        start.events.report(EventKind::Spawned { pid: None });
        let moment = self.moment.clone();
        ctx.run_later(self.after, move |_, _| {
            *moment.lock().expect("lock") = Some(Instant::now());
            start.events.report(EventKind::Ready);
        });
    }
}

impl Handler<Stop> for LatePlugin {
    type Result = MessageResult<Stop>;
    fn handle(&mut self, _: Stop, _: &mut Context<Self>) -> Self::Result {
        MessageResult(StopReport::default())
    }
}

/// Output lines with their arrival, for the `notified <µs>` lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<LogLine>>>);

struct LineRecorder(Lines);

impl Actor for LineRecorder {
    type Context = Context<Self>;
}

impl Handler<LogLine> for LineRecorder {
    type Result = ();
    fn handle(&mut self, l: LogLine, _: &mut Context<Self>) {
        self.0 .0.lock().expect("lock").push(l);
    }
}

/// A port for a listener bound later: free now, and below the ephemeral range
/// (a late-bound port taken meanwhile as the local port of some outgoing
/// connection, a probe's own among them, could not be bound).
fn late_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (std::process::id() as u16 % 100) * 100 + n % 10_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The wall clock as an instant of this process.
struct Clock {
    instant: Instant,
    micros: u128,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            micros: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0),
        }
    }
    fn instant_of(&self, micros: u128) -> Instant {
        if micros >= self.micros {
            self.instant + Duration::from_micros((micros - self.micros) as u64)
        } else {
            self.instant - Duration::from_micros((self.micros - micros) as u64)
        }
    }
}

/// One round: `pairs` dependencies of `kind`, each ready `length` (and 37 ms
/// more per pair) after its own spawn, each with a dependent; returns each
/// pair's gating latency.
async fn round(kind: Kind, length: Duration, pairs: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut b = Config::builder(dir.path()).state_dir(dir.path().join("state"));
    let mut plugins = Vec::new();
    let mut moments: Vec<Moment> = Vec::new();
    // Each dependency is ready `length` (and 37 ms more per pair) after its spawn.
    let mut dues: Vec<(String, Duration, Due)> = Vec::new();
    for i in 0..pairs {
        let after = length + Duration::from_millis(37 * i as u64);
        let dep = format!("dep{i}");
        let after_ms = after.as_millis();
        let due = Due::default();
        if matches!(
            kind,
            Kind::HttpLate | Kind::HttpHeld | Kind::Http503 | Kind::TcpLate
        ) {
            dues.push((dep.clone(), after, due.clone()));
        }
        let svc = match kind {
            Kind::HttpLate | Kind::HttpHeld | Kind::Http503 => {
                let port = late_port();
                moments.push(serve(kind, port, due));
                Some(
                    ServiceConfigBuilder::new(&dep, fake(""))
                        .health_http(format!("http://127.0.0.1:{port}/health")),
                )
            }
            Kind::TcpLate => {
                let port = late_port();
                moments.push(serve(kind, port, due));
                Some(ServiceConfigBuilder::new(&dep, fake("")).health_tcp(port))
            }
            Kind::Log => {
                moments.push(Arc::default());
                Some(
                    ServiceConfigBuilder::new(&dep, fake(&format!("--notify-after {after_ms}")))
                        .health_log("^notified "),
                )
            }
            Kind::Notify => {
                moments.push(Arc::default());
                Some(
                    ServiceConfigBuilder::new(&dep, fake(&format!("--notify-after {after_ms}")))
                        .health_notify(),
                )
            }
            Kind::Plugin => {
                let moment: Moment = Arc::default();
                moments.push(moment.clone());
                let addr = LatePlugin { after, moment }.start();
                plugins.push(PluginService::from_addr(&dep, &addr));
                b = b.external(&dep);
                None
            }
        };
        if let Some(svc) = svc {
            b = b.service(svc);
        }
        b = b.service(ServiceConfigBuilder::new(format!("app{i}"), fake("")).depends_on(&dep));
    }
    let config = b.build().expect("valid");
    let clock = Clock::now();
    let orch = Orchestrator::start_with(config, Options::default(), plugins).expect("starts");
    let events = Events::default();
    orch.subscribe(Recorder(events.clone()).start().recipient());
    {
        // The servers learn when their dependency was spawned.
        let events = events.clone();
        actix_rt::spawn(async move {
            let mut left = dues;
            let give_up = Instant::now() + Duration::from_secs(120);
            while !left.is_empty() && Instant::now() < give_up {
                left.retain(|(dep, after, due)| {
                    match events.first(dep, |e| matches!(e.kind, EventKind::Spawned { .. })) {
                        Some(spawned) => {
                            due.set(spawned + *after);
                            false
                        }
                        None => true,
                    }
                });
                actix_rt::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }
    let lines = Lines::default();
    orch.subscribe_logs(LineRecorder(lines.clone()).start().recipient());
    orch.up(None).await.expect("up");
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    let mut out = Vec::new();
    for (i, moment) in moments.iter().enumerate() {
        let spawned = events
            .first(&format!("app{i}"), |e| {
                matches!(e.kind, EventKind::Spawned { .. })
            })
            .expect("app spawned");
        let moment = match kind {
            Kind::Log | Kind::Notify => {
                let dep = format!("dep{i}");
                let micros = lines
                    .0
                    .lock()
                    .expect("lock")
                    .iter()
                    .filter(|l| l.service == dep)
                    .find_map(|l| l.line.strip_prefix("notified ")?.parse::<u128>().ok())
                    .expect("the notified line");
                clock.instant_of(micros)
            }
            _ => moment.lock().expect("lock").expect("the moment happened"),
        };
        if std::env::var("BENCH_SPLIT").is_ok() {
            let ready = events
                .first(&format!("dep{i}"), |e| matches!(e.kind, EventKind::Ready))
                .expect("dep ready");
            eprintln!(
                "  {:?}: moment→ready {:?}, ready→spawned {:?}",
                kind,
                ready.saturating_duration_since(moment),
                spawned.saturating_duration_since(ready)
            );
        }
        out.push(spawned.saturating_duration_since(moment));
    }
    let report = orch
        .shutdown(Duration::from_secs(20))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    out
}

/// `pairs` samples of `kind` at `length`: all at once when the start-up is long
/// enough for the orchestrator to have launched them all before the first
/// moment (≥ 1 s), else one pair at a time.
async fn rounds(kind: Kind, length: Duration, pairs: usize) -> Vec<Duration> {
    if length >= Duration::from_secs(1) {
        return round(kind, length, pairs).await;
    }
    let mut all = Vec::new();
    for _ in 0..pairs {
        all.extend(round(kind, length, 1).await);
    }
    all
}

/// `wait-on` against `pairs` dependencies of `kind`: from the moment to its exit
/// (when `wait-on … && next` would start the next command).
fn wait_on(
    exe: &str,
    interval_ms: u64,
    kind: Kind,
    length: Duration,
    pairs: usize,
) -> Vec<Duration> {
    let mut waits = Vec::new();
    for i in 0..pairs {
        let port = late_port();
        let due = Due::default();
        let moment = serve(kind, port, due.clone());
        // Ready `length` after wait-on is started, as when `concurrently` starts
        // the server and `wait-on … && next` together.
        due.set(Instant::now() + length + Duration::from_millis(37 * i as u64));
        let child = std::process::Command::new(exe)
            .args(["-i", &interval_ms.to_string()])
            .arg(format!("http-get://127.0.0.1:{port}/health"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("wait-on runs");
        waits.push(std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
            let done = Instant::now();
            let m = moment.lock().expect("lock").expect("the moment happened");
            done.saturating_duration_since(m)
        }));
    }
    waits
        .into_iter()
        .map(|t| t.join().expect("joined"))
        .collect()
}

/// This process's CPU time so far, all its threads, those that ended too:
/// `CLOCK_PROCESS_CPUTIME_ID`, from the scheduler's own accounting (`getrusage`
/// counts in clock ticks and over-charges a thread that wakes on a timer; a sum
/// over `/proc/self/task` loses the threads that ended). Zero on Windows.
fn cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we pass.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    Duration::ZERO
}

/// ringmaster's CPU while one dependency of `kind` takes `length` to be ready:
/// measured from 2 s after the launch (the start-up's own work done) to 0.5 s
/// before the moment, as a share of one core.
async fn cpu_while_waiting(kind: Kind, length: Duration) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Instant::now();
    let at = launch + length;
    let mut b = Config::builder(dir.path()).state_dir(dir.path().join("state"));
    let due = Due::at(at);
    let dep = match kind {
        Kind::Notify => ServiceConfigBuilder::new(
            "dep",
            fake(&format!("--notify-after {}", length.as_millis())),
        )
        .health_notify(),
        _ => {
            let port = late_port();
            serve(kind, port, due);
            ServiceConfigBuilder::new("dep", fake(""))
                .health_http(format!("http://127.0.0.1:{port}/health"))
        }
    };
    b = b
        .service(dep)
        .service(ServiceConfigBuilder::new("app", fake("")).depends_on("dep"));
    let orch = Orchestrator::start(b.build().expect("valid"), Options::default()).expect("starts");
    let up = {
        let orch = orch.clone();
        actix_rt::spawn(async move { orch.up(None).await })
    };
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let (t0, c0) = (Instant::now(), cpu_time());
    actix_rt::time::sleep(
        at.saturating_duration_since(Instant::now()) - Duration::from_millis(500),
    )
    .await;
    let (t1, c1) = (Instant::now(), cpu_time());
    up.await.expect("joined").expect("up");
    let report = orch
        .shutdown(Duration::from_secs(20))
        .await
        .expect("shutdown");
    assert!(report.clean(), "{report:?}");
    (c1 - c0).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0
}

fn row(label: &str, length: &str, v: &[Duration]) {
    println!(
        "| {label} | {length} | {} | {} | {} | {} |",
        v.len(),
        ms(percentile(v, 50.0)),
        ms(percentile(v, 95.0)),
        ms(percentile(v, 100.0)),
    );
}

fn main() {
    let pairs: usize = std::env::var("BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let lengths: Vec<f64> = std::env::var("BENCH_LENGTHS")
        .unwrap_or_else(|_| "0.1,1,5,30".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    if std::env::var("BENCH_CPU_ONLY").is_ok() {
        actix_rt::System::new().block_on(async {
            for kind in [Kind::HttpLate, Kind::Http503, Kind::Notify] {
                let pct = cpu_while_waiting(kind, Duration::from_secs(30)).await;
                println!("  {}: {pct:.2} %", kind.label());
            }
        });
        return;
    }
    let kinds = [
        Kind::HttpLate,
        Kind::HttpHeld,
        Kind::Http503,
        Kind::TcpLate,
        Kind::Log,
        Kind::Notify,
        Kind::Plugin,
    ];
    println!("gating latency: the dependency's probe could first succeed → dependent spawned");
    println!("({pairs} pairs at once per row, moments 37 ms apart)\n");
    println!("| readiness | ready after | n | p50 | p95 | max |");
    println!("| --- | --- | --- | --- | --- | --- |");
    actix_rt::System::new().block_on(async {
        for &len in &lengths {
            for kind in kinds {
                let v = rounds(kind, Duration::from_secs_f64(len), pairs).await;
                row(
                    &format!("ringmaster: {}", kind.label()),
                    &format!("{len} s"),
                    &v,
                );
            }
        }
        if let Ok(exe) = std::env::var("WAIT_ON") {
            // One wait-on at a time (20 node processes starting at once saturate
            // two cores), fewer samples for the long start-ups.
            for &len in &lengths {
                let length = Duration::from_secs_f64(len);
                let samples = if len >= 30.0 { 3 } else { pairs.min(10) };
                for interval in [250, 1] {
                    let v: Vec<Duration> = (0..samples)
                        .flat_map(|_| wait_on(&exe, interval, Kind::HttpLate, length, 1))
                        .collect();
                    row(
                        &format!("wait-on -i {interval}: {}", Kind::HttpLate.label()),
                        &format!("{len} s"),
                        &v,
                    );
                }
            }
        }
        println!("\nringmaster's CPU while it waits 30 s for one slow starter (% of one core):");
        for kind in [Kind::HttpLate, Kind::Http503, Kind::Notify] {
            let pct = cpu_while_waiting(kind, Duration::from_secs(30)).await;
            println!("  {}: {pct:.2} %", kind.label());
        }
    });
}
