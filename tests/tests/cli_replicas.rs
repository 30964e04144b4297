//! `replicas`: a service run as several members behind ringmaster's balancer on
//! its port, against real processes and real connections: connections spread
//! over the replicas; a replica killed under load is restarted and rejoins; a
//! replica that fails its probe gets no traffic, and with none ready a
//! connection is refused (closed at once); `restart` rolls the replicas and
//! `scale` adds and drains them while a client counts failed requests (none);
//! a reload that changes the command rolls them too; `logs api` is the
//! replicas' output.
#![cfg(unix)]

mod cli_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, kill_pid, pid_alive, wait_for};
use serde_json::Value;

/// One HTTP request on a connection of its own; the body of a 200, or what went wrong.
fn get(port: u16) -> Result<String, String> {
    slow_get(port, Duration::ZERO)
}

/// One HTTP request sent in two halves, `pause` apart: a request in flight for
/// that long.
fn slow_get(port: u16, pause: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\n")
        .map_err(|e| format!("write: {e}"))?;
    std::thread::sleep(pause);
    s.write_all(b"Host: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read: {e}"))?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(format!("answer: {text:?}")),
    }
}

/// What a client saw: its failures, and how often each body came.
type Seen = (Vec<String>, BTreeMap<String, u64>);

/// A client sending requests one after another until stopped: counts answers
/// and failures (with the first few failures' texts), and which body came how often.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    thread: Option<JoinHandle<Seen>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let (s, o) = (stop.clone(), ok.clone());
        let thread = std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut bodies: BTreeMap<String, u64> = BTreeMap::new();
            while !s.load(Ordering::SeqCst) {
                match get(port) {
                    Ok(body) => {
                        o.fetch_add(1, Ordering::SeqCst);
                        *bodies.entry(body).or_default() += 1;
                    }
                    Err(e) => failures.push(e),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (failures, bodies)
        });
        Load {
            stop,
            ok,
            thread: Some(thread),
        }
    }

    /// Waits until `n` more requests were answered.
    fn more(&self, n: u64) {
        let from = self.ok.load(Ordering::SeqCst);
        wait_for(&format!("{n} more answers"), LONG, || {
            self.ok.load(Ordering::SeqCst) >= from + n
        });
    }

    /// Stops the client: its failures and the bodies it got.
    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("the client thread")
    }
}

/// A replicated fake-service answering HTTP with its replica number.
fn replicated(port: u16, replicas: u32, extra: &str, more: &str) -> String {
    format!(
        "[settings]\nshutdown_timeout = \"20s\"\n\n[services.api]\n\
         command = \"{} --listen ${{PORT}} --body r${{REPLICA}} {extra}\"\n\
         port = {port}\nreplicas = {replicas}\n\
         health = {{ http = \"http://127.0.0.1:${{PORT}}/\", interval = \"200ms\", failures = 2 }}\n\
         stop = {{ timeout = \"5s\" }}\n{more}\n",
        fake_service().display()
    )
}

fn entry<'a>(status: &'a [Value], name: &str) -> &'a Value {
    status
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status:?}"))
}

/// The replicas' names in `status --json`.
fn replica_names(status: &[Value]) -> Vec<String> {
    status
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| n.starts_with("api#"))
        .map(str::to_owned)
        .collect()
}

/// Waits until `api` shows `n` replicas, all ready and taking connections.
fn wait_replicas(p: &Project, n: usize) -> Vec<Value> {
    let mut last = Vec::new();
    wait_for(&format!("{n} ready replicas"), LONG, || {
        let Some(s) = p.status() else {
            return false;
        };
        let names = replica_names(&s);
        let ready = names.len() == n
            && names.iter().all(|m| entry(&s, m)["state"] == "ready")
            && entry(&s, "api")["balancer"]["ready"] == n as u64;
        last = s;
        ready
    });
    last
}

#[test]
fn connections_spread_and_a_killed_replica_rejoins() {
    let port = free_port();
    let p = Project::with_config(&replicated(port, 3, "", ""));
    p.up_detached();
    let status = wait_replicas(&p, 3);
    p.guard_tagged();
    let api = entry(&status, "api");
    assert_eq!(api["state"], "ready", "{api}");
    assert_eq!(api["balancer"]["listening"], true, "{api}");
    // Each replica on a port of its own, held by its own process; the service's
    // port is held by ringmaster itself.
    let mut ports: Vec<u64> = (0..3)
        .map(|i| {
            entry(&status, &format!("api#{i}"))["port"]
                .as_u64()
                .expect("a port")
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "{status:?}");
    assert!(!ports.contains(&u64::from(port)));
    assert_eq!(holders(port), vec![p.instance_pid().expect("instance")]);
    // The service's own row costs what its replicas cost together.
    let rss = |n: &str| entry(&status, n)["rss_bytes"].as_u64().unwrap_or(0);
    assert!(rss("api#0") > 0, "{status:?}");
    assert_eq!(rss("api"), rss("api#0") + rss("api#1") + rss("api#2"));

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..30 {
        *seen.entry(get(port).expect("an answer")).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "every replica answers: {seen:?}");

    // api#1 killed under load: it is restarted and answers again.
    let load = Load::start(port);
    load.more(20);
    let killed = pid_of(&status, "api#1");
    kill_pid(killed);
    wait_for("api#1 restarted", LONG, || {
        p.status().is_some_and(|s| {
            let e = entry(&s, "api#1");
            e["state"] == "ready" && e["pid"].as_u64().is_some_and(|n| n as u32 != killed)
        })
    });
    load.more(60);
    let (failures, bodies) = load.finish();
    assert!(!pid_alive(killed));
    assert!(bodies.get("r1").is_some_and(|n| *n > 0), "{bodies:?}");
    // Connections to the killed one failed or were tried elsewhere; most answered.
    let ok: u64 = bodies.values().sum();
    assert!(
        ok > failures.len() as u64 * 10,
        "{ok} answers, {failures:?}"
    );

    // `logs api` is its replicas' output, from the instance and from the files.
    let live = p.rm().args(["logs", "api"]).output().expect("logs");
    let live = text(&live.stdout);
    for i in 0..3 {
        assert!(live.contains(&format!("api#{i}")), "{live}");
    }
    p.rm().arg("down").assert().code(0);
    wait_port_free(port);
    for pt in ports {
        wait_port_free(pt as u16);
    }
    assert!(p.tagged_pids().is_empty(), "{:?}", p.tagged_pids());
    let files = p.rm().args(["logs", "api"]).output().expect("logs");
    assert_eq!(files.status.code(), Some(0), "{}", text(&files.stderr));
    let files = text(&files.stdout);
    for i in 0..3 {
        assert!(files.contains(&format!("api#{i}")), "{files}");
    }
    let one = p.rm().args(["logs", "api#1"]).output().expect("logs");
    assert_eq!(one.status.code(), Some(0), "{}", text(&one.stderr));
}

#[test]
fn a_replica_failing_its_probe_gets_no_traffic_and_none_ready_is_refused() {
    let port = free_port();
    let p = Project::new();
    for i in 0..2 {
        p.write(&format!("h{i}"), "200");
    }
    let health = format!("--health-file {}/h${{REPLICA}}", p.path().display());
    p.write(
        "ringmaster.toml",
        &replicated(port, 2, &health, "restart = { policy = \"never\" }"),
    );
    p.up_detached();
    wait_replicas(&p, 2);
    p.guard_tagged();

    // api#1 fails its probe: unhealthy, and no connection goes to it.
    p.write("h1", "500");
    wait_for("api#1 unhealthy", LONG, || {
        p.status().is_some_and(|s| {
            entry(&s, "api#1")["state"] == "unhealthy" && entry(&s, "api")["balancer"]["ready"] == 1
        })
    });
    for _ in 0..20 {
        assert_eq!(get(port).as_deref(), Ok("r0"));
    }
    // Healthy again: it takes connections again.
    p.write("h1", "200");
    wait_replicas(&p, 2);
    wait_for("r1 answering again", LONG, || {
        get(port).as_deref() == Ok("r1")
    });

    // None ready: a connection is closed at once, and counted as refused.
    p.write("h0", "500");
    p.write("h1", "500");
    wait_for("no replica ready", LONG, || {
        p.status().is_some_and(|s| {
            let api = entry(&s, "api");
            api["balancer"]["ready"] == 0 && api["state"] == "unhealthy"
        })
    });
    let answer = get(port);
    assert!(answer.is_err(), "{answer:?}");
    let status = p.status().expect("status");
    let refused = entry(&status, "api")["balancer"]["refused"]
        .as_u64()
        .expect("refused");
    assert!(refused >= 1, "{status:?}");
    p.rm().arg("down").assert().code(0);
    wait_port_free(port);
}

#[test]
fn restart_and_reload_roll_the_replicas_with_no_failed_request() {
    let port = free_port();
    let p = Project::with_config(&replicated(port, 3, "", ""));
    p.up_detached();
    let before = wait_replicas(&p, 3);
    p.guard_tagged();
    let old: Vec<u32> = replica_names(&before)
        .iter()
        .map(|n| pid_of(&before, n))
        .collect();

    let load = Load::start(port);
    load.more(20);
    // Requests in flight when the roll begins (half sent, finished a second
    // later) end normally: each replica is drained before it stops.
    let slow: Vec<JoinHandle<Result<String, String>>> = (0..3)
        .map(|_| std::thread::spawn(move || slow_get(port, Duration::from_millis(1500))))
        .collect();
    wait_for("the slow requests in flight", LONG, || {
        p.status()
            .is_some_and(|s| entry(&s, "api")["balancer"]["active"].as_u64() >= Some(3))
    });
    p.rm().args(["restart", "api"]).assert().code(0);
    for t in slow {
        let answer = t.join().expect("a slow client");
        assert!(
            answer.as_deref().is_ok_and(|b| b.starts_with('r')),
            "{answer:?}"
        );
    }
    load.more(20);
    let (failures, bodies) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    let after = wait_replicas(&p, 3);
    p.guard_tagged();
    for pid in &old {
        assert!(!pid_alive(*pid), "{pid} replaced: {after:?}");
    }
    assert!(bodies.len() >= 3, "{bodies:?}");

    // A reload that changes the command rolls them the same way.
    let changed = replicated(port, 3, "", "").replace("--body r", "--body v2-r");
    p.write("ringmaster.toml", &changed);
    let load = Load::start(port);
    load.more(20);
    let out = p.rm().arg("reload").output().expect("reload");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rolled"),
        "{}",
        text(&out.stdout)
    );
    load.more(20);
    let (failures, _) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    wait_replicas(&p, 3);
    p.guard_tagged();
    for _ in 0..6 {
        let body = get(port).expect("an answer");
        assert!(body.starts_with("v2-r"), "{body}");
    }
    p.rm().arg("down").assert().code(0);
    wait_port_free(port);
    assert!(p.tagged_pids().is_empty(), "{:?}", p.tagged_pids());
}

#[test]
fn scale_up_and_down_under_load_with_no_failed_request() {
    let port = free_port();
    let p = Project::with_config(&replicated(port, 2, "", ""));
    p.up_detached();
    wait_replicas(&p, 2);
    p.guard_tagged();

    let load = Load::start(port);
    load.more(10);
    let out = p.rm().args(["scale", "api", "4"]).output().expect("scale");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let four = wait_replicas(&p, 4);
    p.guard_tagged();
    load.more(40);
    let gone: Vec<(u32, u64)> = ["api#1", "api#2", "api#3"]
        .iter()
        .map(|n| {
            (
                pid_of(&four, n),
                entry(&four, n)["port"].as_u64().expect("a port"),
            )
        })
        .collect();
    p.rm().args(["scale", "api", "1"]).assert().code(0);
    load.more(20);
    let (failures, bodies) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        bodies.contains_key("r3"),
        "the new ones took connections: {bodies:?}"
    );
    let one = wait_replicas(&p, 1);
    assert_eq!(replica_names(&one), vec!["api#0"]);
    for (pid, pt) in gone {
        assert!(!pid_alive(pid), "{pid}");
        wait_port_free(pt as u16);
    }
    // Not a replicated service / below 1: refused, exit 2.
    p.rm().args(["scale", "nope", "2"]).assert().code(2);
    p.rm().args(["scale", "api", "0"]).assert().code(2);
    p.rm().arg("down").assert().code(0);
    wait_port_free(port);
}

#[test]
fn replicas_a_killed_instance_left_are_stopped_by_the_next_up_and_by_down() {
    let port = free_port();
    let p = Project::with_config(&replicated(port, 2, "", ""));
    let first = p.up_detached();
    // A rolling restart leaves a replica under a number the file's count does
    // not reach (api#2): only the project's tag finds it later.
    wait_replicas(&p, 2);
    p.rm().args(["restart", "api"]).assert().code(0);
    let before = wait_replicas(&p, 2);
    p.guard_tagged();
    let old: Vec<u32> = replica_names(&before)
        .iter()
        .map(|n| pid_of(&before, n))
        .collect();
    assert!(
        replica_names(&before).contains(&"api#2".to_owned()),
        "{before:?}"
    );

    // The instance dies; its replicas live on, the balancer's port with it is free.
    kill_pid(first);
    wait_for("the instance's lock", LONG, || p.instance_pid().is_none());
    assert!(old.iter().all(|pid| pid_alive(*pid)), "{old:?}");
    wait_port_free(port);

    // The next up stops them and serves on the same port again.
    let second = p.up_detached();
    let again = wait_replicas(&p, 2);
    p.guard_tagged();
    for pid in &old {
        wait_gone(*pid);
    }
    assert_eq!(get(port).map(|b| b.starts_with('r')), Ok(true));

    // Killed again: `down` with no instance stops the replicas, as the service's.
    let now: Vec<u32> = replica_names(&again)
        .iter()
        .map(|n| pid_of(&again, n))
        .collect();
    kill_pid(second);
    wait_for("the instance's lock", LONG, || p.instance_pid().is_none());
    let out = p.rm().arg("down").output().expect("down");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("api#0: stopped"), "{said}");
    assert!(!said.contains("in no configuration"), "{said}");
    for pid in now {
        assert!(!pid_alive(pid), "{pid}: {said}");
    }
    assert!(p.tagged_pids().is_empty(), "{:?}", p.tagged_pids());
}

#[test]
fn a_new_port_moves_the_balancer_and_leaves_the_replicas() {
    let (port, moved) = (free_port(), free_port());
    let p = Project::with_config(&replicated(port, 2, "", ""));
    p.up_detached();
    let before = wait_replicas(&p, 2);
    p.guard_tagged();
    let pids: Vec<u32> = ["api#0", "api#1"]
        .iter()
        .map(|n| pid_of(&before, n))
        .collect();
    p.write(
        "ringmaster.toml",
        &replicated(port, 2, "", "").replace(&format!("port = {port}"), &format!("port = {moved}")),
    );
    let out = p.rm().arg("reload").output().expect("reload");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let after = wait_replicas(&p, 2);
    let now: Vec<u32> = ["api#0", "api#1"]
        .iter()
        .map(|n| pid_of(&after, n))
        .collect();
    assert_eq!(now, pids, "the replicas keep running");
    wait_port_free(port);
    let mut seen: Vec<String> = (0..10).map(|_| get(moved).expect("an answer")).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, vec!["r0", "r1"]);
    p.rm().arg("down").assert().code(0);
    wait_port_free(moved);
}

#[test]
fn one_failing_replica_leaves_the_service_ready_and_goes_first_on_scale_down() {
    let port = free_port();
    // Replica 2 cannot start; the others serve.
    let config = format!(
        "[services.api]\n\
         command = \"if [ ${{REPLICA}} = 2 ]; then exit 3; fi; exec {} --listen ${{PORT}} --body r${{REPLICA}}\"\n\
         port = {port}\nreplicas = 3\n\
         health = {{ http = \"http://127.0.0.1:${{PORT}}/\", interval = \"200ms\" }}\n\
         restart = {{ policy = \"on-failure\", max_attempts = 1, backoff = \"100ms\" }}\n\
         stop = {{ timeout = \"5s\" }}\n",
        fake_service().display()
    );
    let p = Project::with_config(&config);
    // `up` answers once the service is ready as a whole (min_ready = 1).
    p.up_detached();
    p.guard_tagged();
    wait_for("api#2 failed, the others ready", LONG, || {
        p.status().is_some_and(|s| {
            entry(&s, "api#2")["state"] == "failed"
                && entry(&s, "api")["state"] == "ready"
                && entry(&s, "api")["balancer"]["ready"] == 2
        })
    });
    for _ in 0..6 {
        let body = get(port).expect("an answer");
        assert!(body == "r0" || body == "r1", "{body}");
    }
    // Scaling down retires the failed one, not the highest ready number.
    p.rm().args(["scale", "api", "2"]).assert().code(0);
    let status = wait_replicas(&p, 2);
    assert_eq!(replica_names(&status), vec!["api#0", "api#1"]);
    p.rm().arg("down").assert().code(0);
    wait_port_free(port);
}

#[test]
fn when_every_replica_failed_the_service_fails_and_frees_its_port() {
    let port = free_port();
    let config = format!(
        "{}\n[services.web]\ncommand = \"{} --listen 0\"\ndepends_on = [\"api\"]\nstart_window = \"0\"\n",
        replicated(
            port,
            2,
            "--exit-after 1500 --exit-code 1",
            "restart = { policy = \"never\" }"
        ),
        fake_service().display()
    );
    let p = Project::with_config(&config);
    p.up_detached();
    p.guard_tagged();
    wait_for("api failed as a whole", LONG, || {
        p.status().is_some_and(|s| {
            let api = entry(&s, "api");
            api["state"] == "failed"
                && api["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("every replica failed"))
                && entry(&s, "web")["state"] != "ready"
        })
    });
    // Its balancer stopped with it: the port is free, and `restart` takes it again.
    wait_port_free(port);
    p.rm().args(["restart", "api"]).assert().code(0);
    assert!(get(port).is_ok_and(|b| b.starts_with('r')));
    p.rm().arg("down").assert().code(0);
}

#[test]
fn a_replica_port_range_over_another_services_port_is_refused() {
    let (a, b) = (free_port(), free_port());
    let (low, high) = (b.saturating_sub(2).max(1), b.saturating_add(2));
    if (low..=high).contains(&a) {
        return; // the two free ports came too close to tell the ranges apart
    }
    let config = format!(
        "{}\n[services.db]\ncommand = \"{} --listen {b}\"\nport = {b}\n",
        replicated(a, 2, "", &format!("replica_ports = \"{low}-{high}\"")),
        fake_service().display()
    );
    let p = Project::with_config(&config);
    let out = p.rm().arg("validate").output().expect("validate");
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains(&format!("holds port {b}, which `db` uses"))
            && said.contains("ringmaster.toml:"),
        "{said}"
    );
    p.rm().args(["up", "-d"]).assert().code(2);
    assert!(p.tagged_pids().is_empty());
}
