//! One run of one tool: launched, watched until the stack is ready, left idle,
//! stopped (the normal run); or killed once ready and launched again (the crash
//! run). Every figure comes from the OS: the ports, `GET`s, and /proc.
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::procs::{self, Census, Proc};
use super::tools::{Paths, Run, Tool};

/// How often the ports are asked and the process table is read while waiting.
pub const POLL: Duration = Duration::from_millis(5);
/// How long a stack may take to be ready (the first `next dev` compile included).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stop may take before it counts as not done.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the stack may take to be ready again after a crash and a relaunch.
const AGAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The idle window for the manager's CPU.
pub const IDLE: Duration = Duration::from_secs(10);

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The moments of a start, as the bench saw them.
#[derive(Default)]
struct Seen {
    api_ready: Option<Instant>,
    web_ready: Option<Instant>,
    web_first: Option<Instant>,
}

/// Watches a start from `t0`: `GET /health` on the API port and `GET /` on the
/// web port every POLL, each on its thread, and the process table every POLL for
/// the frontend's first process (a service process naming the web port). Returns
/// once all three are seen or after READY_TIMEOUT.
fn watch_start(run: &Run, census: &Arc<Mutex<Census>>, t0: Instant) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (port, path, wait) in [
        (run.api, "/health", Duration::from_secs(5)),
        (run.web, "/", Duration::from_secs(60)),
    ] {
        let (seen, done) = (seen.clone(), done.clone());
        let api = port == run.api;
        threads.push(std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if procs::get_status(port, path, wait) == Some(200) {
                    let now = Instant::now();
                    let mut s = seen.lock().expect("seen");
                    if api {
                        s.api_ready = Some(now);
                    } else {
                        s.web_ready = Some(now);
                    }
                    return;
                }
                std::thread::sleep(POLL);
            }
        }));
    }
    let web_needle = format!("--port {}", run.web);
    while t0.elapsed() < READY_TIMEOUT {
        procs::reap();
        let found = {
            let mut c = census.lock().expect("census");
            c.scan()
                .iter()
                .any(|(_, service, cmd)| *service && cmd.contains(&web_needle))
        };
        let mut s = seen.lock().expect("seen");
        if found && s.web_first.is_none() {
            s.web_first = Some(Instant::now());
        }
        if s.api_ready.is_some() && s.web_ready.is_some() && s.web_first.is_some() {
            break;
        }
        drop(s);
        std::thread::sleep(POLL);
    }
    done.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Arc::try_unwrap(seen)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .unwrap_or_default()
}

fn since(t0: Instant, t: Option<Instant>) -> Value {
    t.map(|t| json!(ms(t - t0))).unwrap_or(Value::Null)
}

/// The manager's processes over the idle window: resident memory (summed, at the
/// end), CPU used during the window, and their names.
fn idle_cost(census: &mut Census) -> Value {
    if std::env::var_os("PEERS_DEBUG").is_some() {
        for (e, service, cmd) in census.scan() {
            let what = if service { "service" } else { "manager" };
            eprintln!("  {what} {} (ppid {}): {cmd}", e.pid, e.ppid);
        }
    }
    let before: Vec<(Proc, u64)> = procs::manager_procs(census)
        .into_iter()
        .map(|p| (p, procs::cpu_ns(p)))
        .collect();
    std::thread::sleep(IDLE);
    let mut cpu_ns = 0;
    for (p, t0) in &before {
        let t1 = procs::cpu_ns(*p);
        if t1 >= *t0 {
            cpu_ns += t1 - t0;
        }
    }
    let now = procs::manager_procs(census);
    let rss: u64 = now.iter().map(|p| procs::rss_kib(p.0)).sum();
    let names: Vec<String> = now.iter().map(|p| ringmaster_tests::comm(p.0)).collect();
    let services = census.alive_services();
    let service_rss: u64 = services.iter().map(|p| procs::rss_kib(p.0)).sum();
    json!({
        "manager_rss_kib": rss,
        "manager_cpu_ms": ms(Duration::from_nanos(cpu_ns)),
        "manager_procs": names,
        "service_procs": services.len(),
        "service_rss_kib": service_rss,
    })
}

/// After a stop request at `t0`: when every service process was gone with both
/// ports refusing, and when no manager process was left in the tree (each None
/// when it did not happen within STOP_TIMEOUT).
fn wait_stopped(run: &Run, census: &Mutex<Census>, t0: Instant) -> [Option<Duration>; 2] {
    let (mut gone, mut exited) = (None, None);
    while t0.elapsed() < STOP_TIMEOUT && (gone.is_none() || exited.is_none()) {
        procs::reap();
        let (services, managers) = {
            let mut c = census.lock().expect("census");
            let managers = procs::manager_procs(&mut c).len();
            (c.alive_services().len(), managers)
        };
        let now = t0.elapsed();
        if gone.is_none() && services == 0 && procs::port_free(run.api) && procs::port_free(run.web)
        {
            gone = Some(now);
        }
        if exited.is_none() && managers == 0 {
            exited = Some(now);
        }
        std::thread::sleep(POLL);
    }
    [gone, exited]
}

/// With PEERS_DEBUG, the end of the tool's output.
fn debug_log(tool: Tool, run: &Run) {
    if std::env::var_os("PEERS_DEBUG").is_some() {
        let file = match tool {
            Tool::Pm2 => run.dir.join("pm2/pm2.log"),
            _ => run.dir.join(format!("{}.log", tool.name())),
        };
        let log = std::fs::read_to_string(file);
        let log = log.unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        for l in &lines[lines.len().saturating_sub(25)..] {
            eprintln!("  | {l}");
        }
    }
}

fn launch(tool: Tool, run: &Run) -> Child {
    tool.launch(run).spawn().expect("the tool starts")
}

/// A launched run: its ports, its census, when it was launched, the tool's process
/// and what was seen of the start.
struct Started<'a> {
    run: Run<'a>,
    census: Arc<Mutex<Census>>,
    t0: Instant,
    child: Child,
    seen: Seen,
}

/// Launches `tool` in `dir` on two free ports and watches until both answer (or
/// the start gives up).
fn start<'a>(tool: Tool, paths: &'a Paths, dir: &'a std::path::Path) -> Started<'a> {
    let (api, web) = (ringmaster_tests::free_port(), ringmaster_tests::free_port());
    let run = Run {
        paths,
        dir,
        api,
        web,
    };
    let census = Arc::new(Mutex::new(Census::new([api, web])));
    let t0 = Instant::now();
    let child = launch(tool, &run);
    let seen = watch_start(&run, &census, t0);
    Started {
        run,
        census,
        t0,
        child,
        seen,
    }
}

/// Launch → ready → idle → stop → gone; then everything left is killed.
// The launched tools are reaped with everything else below the bench
// (`procs::reap`, waitpid(-1)), not through their `Child`.
#[allow(clippy::zombie_processes)]
pub fn normal(tool: Tool, paths: &Paths) -> Value {
    let dir = tempfile::tempdir().expect("a temp dir");
    let Started {
        run,
        census,
        t0,
        child,
        seen,
    } = start(tool, paths, dir.path());
    let mut out = json!({
        "api_ready_ms": since(t0, seen.api_ready),
        "web_ready_ms": since(t0, seen.web_ready),
        "frontend_first_process_ms": since(t0, seen.web_first),
        "gating_ms": match (seen.api_ready, seen.web_first) {
            (Some(a), Some(w)) if w >= a => json!(ms(w - a)),
            (Some(a), Some(w)) => json!(-ms(a - w)),
            _ => Value::Null,
        },
    });
    if seen.web_ready.is_some() {
        std::thread::sleep(Duration::from_secs(1));
        let cost = idle_cost(&mut census.lock().expect("census"));
        merge(&mut out, cost);
    }
    // The stop request, as the tool's users make it.
    let t1 = Instant::now();
    tool.stop(&run, &child);
    let [gone, exited] = wait_stopped(&run, &census, t1);
    let left = exited.map(|e| {
        let at = t1 + e + Duration::from_secs(3);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let mut c = census.lock().expect("census");
        c.scan();
        c.alive_services().len()
    });
    debug_log(tool, &run);
    if std::env::var_os("PEERS_DEBUG").is_some() {
        for (e, service, cmd) in census.lock().expect("census").scan() {
            eprintln!("  left: {service} {} (ppid {}): {cmd}", e.pid, e.ppid);
        }
    }
    merge(
        &mut out,
        json!({
            "stop_all_gone_ms": gone.map(ms),
            "manager_exited_ms": exited.map(ms),
            "left_3s_after_exit": left,
            "killed_by_bench": procs::kill_tree().len(),
        }),
    );
    out
}

/// Launch → ready → SIGKILL of the manager → launch again → ready again (served
/// by new processes on the same ports) → the survivors of the kill checked.
#[allow(clippy::zombie_processes)]
pub fn crash(tool: Tool, paths: &Paths) -> Value {
    let dir = tempfile::tempdir().expect("a temp dir");
    let Started {
        run,
        census,
        t0,
        child,
        seen,
    } = start(tool, paths, dir.path());
    let mut out = json!({ "first_web_ready_ms": since(t0, seen.web_ready) });
    let Some(manager) = seen.web_ready.and_then(|_| tool.manager_pid(&run, &child)) else {
        procs::kill_tree();
        return out;
    };
    std::thread::sleep(Duration::from_secs(1));
    census.lock().expect("census").scan();
    let before = census.lock().expect("census").alive_services();
    procs::signal(manager, libc::SIGKILL);
    ringmaster_tests::wait_for("the killed manager gone", STOP_TIMEOUT, || {
        procs::reap();
        !ringmaster_tests::pid_alive(manager)
    });
    std::thread::sleep(Duration::from_secs(2));
    let before_kill = before.len();
    let survivors: Vec<Proc> = before.into_iter().filter(|p| procs::alive(*p)).collect();
    let held = [run.api, run.web]
        .iter()
        .filter(|p| !procs::port_free(**p))
        .count();

    // Launched again, as its user would after the crash.
    let t1 = Instant::now();
    let again = launch(tool, &run);
    let old: Vec<u32> = survivors.iter().map(|p| p.0).collect();
    let served_by_new = |port: u16| {
        let holders = ringmaster_os::listeners(port).unwrap_or_default();
        !holders.is_empty() && holders.iter().all(|l| !old.contains(&l.pid))
    };
    let mut ready_again = None;
    while t1.elapsed() < AGAIN_TIMEOUT {
        procs::reap();
        if procs::get_status(run.api, "/health", Duration::from_secs(5)) == Some(200)
            && procs::get_status(run.web, "/", Duration::from_secs(60)) == Some(200)
            && served_by_new(run.api)
            && served_by_new(run.web)
        {
            ready_again = Some(t1.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    let not_cleaned = survivors.iter().filter(|p| procs::alive(**p)).count();
    merge(
        &mut out,
        json!({
            "service_procs_before_kill": before_kill,
            "survived_kill": survivors.len(),
            "ports_held_after_kill": held,
            "ready_again_ms": ready_again.map(ms),
            "survivors_left_after_relaunch": not_cleaned,
        }),
    );
    // Stopped as usual; whatever is left is killed below.
    tool.stop(&run, &again);
    let pid = again.id();
    let _ = procs_wait(Duration::from_secs(30), || {
        !ringmaster_tests::pid_alive(pid)
    });
    merge(
        &mut out,
        json!({ "killed_by_bench": procs::kill_tree().len() }),
    );
    out
}

/// Checks `cond` every POLL (reaping as it goes) until it holds or `timeout` ends.
fn procs_wait(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        procs::reap();
        if cond() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    false
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}
