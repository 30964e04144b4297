//! `ringmaster up` and `down` against the real binary, with real processes and
//! ports: up → both ready → down → nothing alive and ports free; a second `up` on
//! the same state directory is refused naming the running pid; `down` after the
//! instance was killed with SIGKILL cleans up what it left; a failed startup
//! stops what was started; SIGINT runs the cascade and a second SIGINT forces it.
#![cfg(unix)]

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::*;
use ringmaster_tests::{free_port, kill_pid, pid_alive, port_answers, wait_for};

fn pids_of(status: &[serde_json::Value]) -> Vec<u32> {
    status
        .iter()
        .filter_map(|s| s["pid"].as_u64().map(|p| p as u32))
        .collect()
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_for("ringmaster up to exit", LONG, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("exited")
}

fn send_signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a pid this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

#[test]
fn up_then_down_leaves_nothing_behind() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let mut up = p.spawn_up(&[]);
    let status = p.wait_ready(&["api", "web"]);
    let mut members = p.guard_tagged();
    members.extend(pids_of(&status));
    members.extend(holders(api));
    members.extend(holders(web));
    // api has a reloader-like worker sharing its socket: two pids hold the port.
    assert!(holders(api).len() >= 2, "api and its worker hold {api}");
    assert!(port_answers(api) && port_answers(web));

    let down = p.rm().arg("down").output().expect("run down");
    let out = text(&down.stdout);
    assert_eq!(
        down.status.code(),
        Some(0),
        "down: {out}{}",
        text(&down.stderr)
    );
    assert!(out.contains("all gone"), "{out}");
    assert!(
        out.contains("api") && out.contains("web"),
        "the report names both: {out}"
    );

    let code = wait_exit(&mut up);
    assert_eq!(
        code.code(),
        Some(0),
        "up exits 0 after a clean stop:\n{}",
        p.up_output()
    );
    for pid in members {
        assert!(!pid_alive(pid), "pid {pid} of the stack is still alive");
    }
    assert!(holders(api).is_empty() && holders(web).is_empty());
    assert!(!port_answers(api) && !port_answers(web));
    assert!(
        !p.state_dir().join("control.sock").exists(),
        "the control socket is removed on exit"
    );

    // Output without a terminal: prefixed service lines, the report, no escape codes.
    let log = p.up_output();
    assert!(
        !has_escape(&log),
        "no escape codes without a terminal:\n{log}"
    );
    assert!(log.contains(&format!("api | listening {api}")), "{log}");
    assert!(
        log.contains("web: ready") && log.contains("api: ready"),
        "{log}"
    );
    assert!(log.contains("stopped"), "{log}");

    // And afterwards: no instance.
    p.rm().arg("status").assert().code(1);
}

#[test]
fn detached_up_is_ready_and_a_second_up_names_the_running_pid() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let started = Instant::now();
    let out = p.rm().args(["up", "-d"]).output().expect("up -d");
    assert_eq!(
        out.status.code(),
        Some(0),
        "up -d: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // It returned once both were ready: they answer now, without waiting.
    assert!(port_answers(api) && port_answers(web));
    let pid = p
        .instance_pid()
        .expect("the detached instance holds the lock");
    p.guard.add(pid);
    p.guard_tagged();
    let status = p.status().expect("status of the detached instance");
    assert!(status.iter().all(|s| s["state"] == "ready"), "{status:?}");

    for args in [vec!["up"], vec!["up", "-d"]] {
        let again = p.rm().args(&args).output().expect("second up");
        let err = text(&again.stderr);
        assert_eq!(again.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("pid {pid}")),
            "names the running pid: {err}"
        );
    }
    // The refused attempts touched nothing.
    assert_eq!(p.instance_pid(), Some(pid));
    assert!(port_answers(api) && port_answers(web));

    p.rm().arg("down").assert().code(0);
    wait_gone(pid);
    wait_port_free(api);
    wait_port_free(web);
}

#[test]
fn down_after_the_instance_was_killed_cleans_the_leftovers() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let pid = p.up_detached();
    let status = p.wait_ready(&["api", "web"]);
    let mut members = p.guard_tagged();
    members.extend(pids_of(&status));
    assert!(
        members.len() >= 4,
        "roots, worker and children: {members:?}"
    );

    kill_pid(pid);
    wait_gone(pid);
    // The services survive their manager, and keep their ports.
    assert!(port_answers(api) && port_answers(web));
    assert!(members.iter().all(|&m| pid_alive(m)));
    p.rm().arg("status").assert().code(1);

    let down = p.rm().arg("down").output().expect("down");
    let out = text(&down.stdout);
    assert_eq!(down.status.code(), Some(0), "{out}{}", text(&down.stderr));
    assert!(out.contains("no ringmaster is running"), "{out}");
    for m in members {
        assert!(!pid_alive(m), "leftover pid {m} is still alive");
    }
    assert!(holders(api).is_empty() && holders(web).is_empty());
    assert!(p.tagged_pids().is_empty());
    // A second down finds nothing and says so with exit 0.
    p.rm().arg("down").assert().code(0);
}

#[test]
fn down_names_what_it_cannot_stop() {
    // A foreign process on a configured port that is not in the allow list: down
    // refuses to touch it and exits 1 naming it.
    let (api, web) = (free_port(), free_port());
    let config = two_services(api, web).replace(
        "allow = [\"fake-service\"]\ndepends_on",
        "allow = [\"nothing-like-it\"]\ndepends_on",
    );
    let p = Project::with_config(&config);
    let holder = foreign_holder(&p.guard, web, &[]);
    let down = p.rm().arg("down").output().expect("down");
    let err = text(&down.stderr);
    assert_eq!(down.status.code(), Some(1), "{err}");
    assert!(err.contains(&holder.to_string()), "names the holder: {err}");
    assert!(pid_alive(holder), "the foreign holder was not touched");
}

#[test]
fn failed_startup_stops_what_was_started_and_exits_1() {
    let (api, web) = (free_port(), free_port());
    let fake = ringmaster_tests::fake_service();
    let config = format!(
        r#"[services.api]
command = "{fake} --listen {api} --http"
port = {api}
health = {{ tcp = {api} }}

[services.web]
command = "{fake} --exit-after 50 --exit-code 3"
depends_on = ["api"]
health = {{ tcp = {web} }}
restart = {{ policy = "never" }}
"#,
        fake = fake.display()
    );
    let p = Project::with_config(&config);
    let mut up = p.spawn_up(&[]);
    let code = wait_exit(&mut up);
    let log = p.up_output();
    assert_eq!(code.code(), Some(1), "startup failed → 1:\n{log}");
    assert!(log.contains("startup failed"), "{log}");
    assert!(holders(api).is_empty(), "api was stopped again:\n{log}");
    assert!(p.tagged_pids().is_empty());

    // Detached, the same failure is reported by `up -d` with exit 1.
    let out = p.rm().args(["up", "-d"]).output().expect("up -d");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    // The reason comes first, whether `up -d` saw the failure through the control
    // socket or only found the instance gone (its log then says why).
    let err = text(&out.stderr);
    assert!(
        err.starts_with("startup failed: ") && err.lines().next().unwrap_or("").contains("web"),
        "{err}"
    );
    wait_for("the detached instance to exit", LONG, || {
        p.instance_pid().is_none()
    });
    wait_port_free(api);
}

#[test]
fn sigint_runs_the_cascade_and_a_second_sigint_forces_it() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let mut up = p.spawn_up(&[]);
    p.wait_ready(&["api", "web"]);
    let members = p.guard_tagged();
    send_signal(up.id(), libc::SIGINT);
    assert_eq!(wait_exit(&mut up).code(), Some(0), "{}", p.up_output());
    assert!(members.iter().all(|&m| !pid_alive(m)));
    assert!(p.up_output().contains("SIGINT"), "{}", p.up_output());
    wait_port_free(api);

    // A service that ignores SIGTERM with a long stop timeout: the second SIGINT
    // kills it at once instead of waiting for the timeout.
    let fake = ringmaster_tests::fake_service();
    let stubborn = format!(
        r#"[settings]
shutdown_timeout = "60s"

[services.stubborn]
command = "{fake} --listen {api} --ignore-term --children 1 --children-ignore-term"
port = {api}
health = {{ tcp = {api} }}
stop = {{ timeout = "50s" }}
"#,
        fake = fake.display()
    );
    let p = Project::with_config(&stubborn);
    let mut up = p.spawn_up(&[]);
    p.wait_ready(&["stubborn"]);
    let members = p.guard_tagged();
    send_signal(up.id(), libc::SIGTERM);
    wait_for("the cascade to start", LONG, || {
        p.up_output().contains("SIGTERM")
    });
    let t = Instant::now();
    send_signal(up.id(), libc::SIGINT);
    let code = wait_exit(&mut up);
    assert!(
        t.elapsed() < Duration::from_secs(40),
        "forced well before the 50 s stop timeout"
    );
    let log = p.up_output();
    assert!(log.contains("at once"), "{log}");
    assert!(code.code().is_some(), "{log}");
    for m in members {
        assert!(!pid_alive(m), "pid {m} survived the forced stop:\n{log}");
    }
    wait_port_free(api);
}

#[test]
fn a_stale_control_socket_is_replaced() {
    let (api, web) = (free_port(), free_port());
    let p = Project::with_config(&two_services(api, web));
    let first = p.up_detached();
    p.guard_tagged();
    kill_pid(first);
    wait_gone(first);
    let socket = p.state_dir().join("control.sock");
    assert!(socket.exists(), "a killed instance leaves its socket file");
    p.rm().arg("status").assert().code(1);

    // The next up replaces it (and takes over the orphans' ports).
    let out = p.rm().args(["up", "-d"]).output().expect("up -d again");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let second = p.instance_pid().expect("a new instance");
    p.guard.add(second);
    p.guard_tagged();
    assert_ne!(first, second);
    p.wait_ready(&["api", "web"]);
    p.rm().arg("down").assert().code(0);
    wait_gone(second);
    assert!(!socket.exists(), "removed on exit");
    wait_port_free(api);
    wait_port_free(web);
}
