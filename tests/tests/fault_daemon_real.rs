//! Real servers that daemonize themselves, run by the real CLI: `redis-server
//! --daemonize yes` and nginx with its default `daemon on`, each a dependency of
//! another service. Both write their process title over their environment, so
//! their tag cannot be read: ringmaster follows them through the subreaper.
//! `up -d` is ready, `status` shows the daemon, killing the daemon is noticed and
//! the service restarted, `down` leaves no process and the ports free.
//!
//! Needs Debian's `redis-server` and `nginx` (`.ci/run` installs them); a test
//! whose server is missing says so and passes without running.
#![cfg(target_os = "linux")]

mod cli_support;

use std::time::Duration;

use cli_support::*;
use ringmaster_tests::{
    comm, fake_service, free_port, kill_pid, pid_alive, port_answers, wait_for, which,
};
use serde_json::Value;

/// `redis-server` on `port`, daemonizing, its files in `dir` (and its own PID file
/// there when `pid_file`).
fn redis(port: u16, dir: &str, pid_file: bool) -> String {
    let own = if pid_file {
        format!(" --pidfile {dir}/redis.pid")
    } else {
        String::new()
    };
    format!("redis-server --port {port} --bind 127.0.0.1 --daemonize yes --save '' --appendonly no --dir {dir} --logfile {dir}/redis.log{own}")
}

/// The stack: `server` (running `command`, probed with `health`, restarted on
/// failure) on `port`, and `app` depending on it.
fn stack(command: &str, port: u16, health: &str, app: u16) -> String {
    format!(
        r#"
[services.server]
command = "{command}"
port = {port}
health = {health}
restart = {{ policy = "on-failure", backoff = "100ms" }}
stop = {{ timeout = "5s" }}

[services.app]
command = "'{fake}' --listen {app} --http"
port = {app}
depends_on = ["server"]
health = {{ http = "http://127.0.0.1:{app}/" }}
"#,
        fake = fake_service().display()
    )
}

fn service<'a>(status: &'a [Value], name: &str) -> &'a Value {
    status
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {status:?}"))
}

fn member_pids(s: &Value) -> Vec<u32> {
    s["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["pid"].as_u64().map(|p| p as u32))
                .collect()
        })
        .unwrap_or_default()
}

/// The common run: `daemon` is the daemonizing service (on `port`), `app` depends on it.
fn run_daemon_stack(p: &Project, port: u16, app_port: u16, daemon_name: &str) {
    p.up_detached();
    p.wait_ready(&["server", "app"]);
    // Ready comes when the daemon's port answers; the launcher's exit is judged
    // (daemonized) a moment later, once its orphans are claimed.
    let mut status = Vec::new();
    wait_for(
        "the server shown daemonized",
        Duration::from_secs(30),
        || {
            status = p.status().unwrap_or_default();
            status
                .iter()
                .any(|s| s["name"] == "server" && s["daemonized"] == true)
        },
    );
    let s = service(&status, "server");
    assert_eq!(s["daemonized"], true, "{s}");
    assert!(s["root_pid"].is_null(), "the launcher is gone: {s}");
    let main = s["pid"].as_u64().expect("the daemon's pid") as u32;
    let members = member_pids(s);
    members.iter().for_each(|m| p.guard.add(*m));
    assert!(
        comm(main).starts_with(daemon_name),
        "{main} is {}",
        comm(main)
    );
    assert!(
        holders(port).contains(&main),
        "the pid shown holds the port: {:?}",
        holders(port)
    );
    assert!(port_answers(app_port));

    // The daemon dies, every process of it: noticed, restarted.
    for m in &members {
        kill_pid(*m);
    }
    let mut last = Value::Null;
    wait_for("the daemon restarted and ready", LONG, || {
        let Some(status) = p.status() else {
            return false;
        };
        last = service(&status, "server").clone();
        last["restarts"] == 1
            && last["state"] == "ready"
            && last["daemonized"] == true
            && last["pid"].as_u64().is_some_and(|n| n as u32 != main)
    });
    let again = last["pid"].as_u64().expect("pid") as u32;
    let members_again = member_pids(&last);
    members_again.iter().for_each(|m| p.guard.add(*m));
    assert!(pid_alive(again) && comm(again).starts_with(daemon_name));
    for m in &members {
        assert!(!pid_alive(*m), "{m} survived its kill");
    }

    p.rm().arg("down").assert().code(0);
    for m in members_again {
        wait_gone(m);
    }
    wait_port_free(port);
    wait_port_free(app_port);
    assert!(p.tagged_pids().is_empty(), "{:?}", p.tagged_pids());
}

#[test]
fn redis_that_daemonizes_is_followed_restarted_and_stopped() {
    if which("redis-server").is_none() {
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
        return;
    }
    let (port, app) = (free_port(), free_port());
    let p = Project::new();
    let dir = p.path().display().to_string();
    let redis = redis(port, &dir, true);
    p.write(
        "ringmaster.toml",
        &stack(&redis, port, &format!("{{ tcp = {port} }}"), app),
    );
    run_daemon_stack(&p, port, app, "redis-server");
}

#[test]
fn nginx_that_daemonizes_is_followed_restarted_and_stopped() {
    if which("nginx").is_none() {
        eprintln!("skipped: nginx is not installed (apt-get install nginx)");
        return;
    }
    let (port, app) = (free_port(), free_port());
    let p = Project::new();
    let dir = p.path().display().to_string();
    p.write(
        "nginx.conf",
        &format!(
            r#"
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
        ),
    );
    let nginx = format!("nginx -c {dir}/nginx.conf -p {dir} -e {dir}/error.log");
    let health = format!("{{ http = \"http://127.0.0.1:{port}/\" }}");
    p.write("ringmaster.toml", &stack(&nginx, port, &health, app));
    run_daemon_stack(&p, port, app, "nginx");
}

/// ringmaster is SIGKILLed while redis runs as its daemon. redis shows no tag, so
/// the next start finds it through the PID file ringmaster wrote for it (its
/// identity, and the timer-slack marker it inherited) and stops it before it
/// starts a new one on the same port; `down` then leaves nothing.
#[test]
fn a_redis_daemon_left_by_a_killed_instance_is_stopped_by_the_next_start() {
    if which("redis-server").is_none() {
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
        return;
    }
    let port = free_port();
    let p = Project::new();
    let dir = p.path().display().to_string();
    let redis = redis(port, &dir, false);
    p.write(
        "ringmaster.toml",
        &format!(
            r#"
[services.server]
command = "{redis}"
port = {port}
health = {{ tcp = {port} }}
"#
        ),
    );
    let instance = p.up_detached();
    let status = p.wait_ready(&["server"]);
    let old = service(&status, "server")["pid"].as_u64().expect("pid") as u32;
    p.guard.add(old);
    // The PID file names the daemon once it daemonized.
    wait_for("the PID file names the daemon", LONG, || {
        matches!(
            ringmaster_os::read_pid_file(&p.state_dir().join("server.pid")),
            Ok(ringmaster_os::PidFileState::Live(r, _)) if r.pid == old
        )
    });
    kill_pid(instance);
    wait_gone(instance);
    assert!(
        pid_alive(old) && holders(port).contains(&old),
        "redis outlived it"
    );

    p.up_detached();
    let status = p.wait_ready(&["server"]);
    let new = service(&status, "server")["pid"].as_u64().expect("pid") as u32;
    p.guard.add(new);
    assert_ne!(new, old);
    assert!(
        !pid_alive(old),
        "the old daemon was stopped by the next start"
    );
    assert_eq!(holders(port), vec![new]);
    p.rm().arg("down").assert().code(0);
    wait_gone(new);
    wait_port_free(port);
}
