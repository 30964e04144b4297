//! Crashes, through the real binary (`up -d`, `status --json`, `down`): a crash loop
//! backs off, fails and stops its dependent, leaves no zombie at any time (a
//! thread samples ringmaster's children for the whole run) and ends with the OS
//! showing nothing of the service; a crash after ready is restarted and the new
//! process holds the port, the old one gone. (The same faults in the library:
//! `fault_crash.rs`. A separate test binary: an orchestrator in the test process
//! is a child subreaper that reaps adopted children, which must not race with the
//! waits on the `ringmaster` commands run here.)
#![cfg(unix)]

mod cli_support;
mod fault_support;

use std::time::Duration;

use cli_support::LONG;
use ringmaster_tests::{free_port, pid_alive};

/// Waits until `status --json` of `p` shows `name` in `state`; returns the status.
fn wait_state(p: &cli_support::Project, name: &str, state: &str) -> Vec<serde_json::Value> {
    let mut last = Vec::new();
    ringmaster_tests::wait_for(&format!("{name} {state}"), LONG, || {
        last = p.status().unwrap_or_default();
        last.iter()
            .any(|s| s["name"] == name && s["state"] == state)
    });
    last
}

#[test]
fn a_crash_loop_backs_off_fails_stops_dependents_and_leaves_no_zombie() {
    use cli_support::{holders, Project};
    let (p, w) = (free_port(), free_port());
    let fake = ringmaster_tests::fake_service();
    let fake = fake.display();
    let project = Project::with_config(&format!(
        r#"[services.crashy]
command = "{fake} --listen {p} --http --exit-after 2000 --exit-code 3"
port = {p}
allow = ["fake-service"]
health = {{ http = "http://127.0.0.1:{p}/", interval = "200ms" }}
restart = {{ policy = "on-failure", max_attempts = 3, backoff = "200ms" }}
stop = {{ timeout = "3s" }}

[services.web]
command = "{fake} --listen {w} --children 1"
port = {w}
allow = ["fake-service"]
depends_on = ["crashy"]
health = {{ tcp = {w} }}
stop = {{ timeout = "3s" }}
"#
    ));
    let instance = project.up_detached();
    let zombies = fault_support::ZombieWatch::start(instance);
    let status = project.wait_ready(&["crashy", "web"]);
    let web_pid = fault_support::pid_in(&status, "web").expect("web runs");
    project.guard_tagged();

    let status = wait_state(&project, "crashy", "failed");
    let crashy = fault_support::entry(&status, "crashy");
    assert_eq!(crashy["restarts"], 3, "{crashy}");
    assert_eq!(crashy["last_exit"], 3, "{crashy}");
    assert!(
        crashy["pid"].is_null(),
        "a failed service shows no pid: {crashy}"
    );
    // The dependent was stopped and waits again.
    let status = wait_state(&project, "web", "waiting");
    assert!(fault_support::pid_in(&status, "web").is_none());
    assert!(!pid_alive(web_pid), "web's old process {web_pid} is gone");

    // The OS agrees: nothing of either service runs, both ports are free, and no
    // child of ringmaster stayed a zombie for more than a moment.
    ringmaster_tests::wait_for("no tagged process left", LONG, || {
        project.tagged_pids().is_empty()
    });
    assert!(holders(p).is_empty() && holders(w).is_empty());
    assert!(
        fault_support::zombie_children(instance).is_empty(),
        "zombies left under ringmaster"
    );
    let lingering = zombies.lingering(Duration::from_secs(1));
    assert!(
        lingering.is_empty(),
        "zombies not reaped within 1 s: {lingering:?}"
    );

    project.rm().arg("down").assert().code(0);
    cli_support::wait_gone(instance);
}

#[test]
fn a_crash_after_ready_is_restarted_and_the_new_process_holds_the_port() {
    use cli_support::{holders, Project};
    let (p, w) = (free_port(), free_port());
    let fake = ringmaster_tests::fake_service();
    let fake = fake.display();
    // The first run crashes 1.5 s after it answers; the runs after it do not.
    let project = Project::with_config(&format!(
        r#"[services.api]
command = "if [ -e crashed ]; then exec {fake} --listen {p} --http; else touch crashed; exec {fake} --listen {p} --http --exit-after 1500 --exit-code 7; fi"
port = {p}
allow = ["fake-service"]
health = {{ http = "http://127.0.0.1:{p}/", interval = "200ms" }}
restart = {{ policy = "on-failure", max_attempts = 3, backoff = "300ms" }}
stop = {{ timeout = "3s" }}

[services.web]
command = "exec {fake} --listen {w}"
port = {w}
allow = ["fake-service"]
depends_on = ["api"]
health = {{ tcp = {w} }}
stop = {{ timeout = "3s" }}
"#
    ));
    let instance = project.up_detached();
    let status = project.wait_ready(&["api", "web"]);
    let first = fault_support::pid_in(&status, "api").expect("api runs");
    let first_web = fault_support::pid_in(&status, "web").expect("web runs");
    project.guard_tagged();
    assert_eq!(holders(p), vec![first], "the first process holds the port");

    let mut status = Vec::new();
    ringmaster_tests::wait_for("api restarted and ready again", LONG, || {
        status = project.status().unwrap_or_default();
        status
            .iter()
            .any(|s| s["name"] == "api" && s["state"] == "ready" && s["restarts"] == 1)
            && status
                .iter()
                .any(|s| s["name"] == "web" && s["state"] == "ready")
    });
    project.guard_tagged();
    let api = fault_support::entry(&status, "api");
    assert_eq!(api["last_exit"], 7, "{api}");
    let second = fault_support::pid_in(&status, "api").expect("api runs again");
    assert_ne!(second, first);
    assert!(!pid_alive(first), "the crashed process {first} is gone");
    assert_eq!(holders(p), vec![second], "the new process holds the port");
    // Its dependent runs on, on its port (a restart of a dependency does not stop
    // what depends on it).
    let web = fault_support::pid_in(&status, "web").expect("web runs");
    assert_eq!(web, first_web);
    assert_eq!(holders(w), vec![web]);

    project.rm().arg("down").assert().code(0);
    cli_support::wait_gone(instance);
    assert!(project.tagged_pids().is_empty());
    assert!(holders(p).is_empty() && holders(w).is_empty());
}
