//! `up -d --wait-timeout`: a service that never becomes ready makes `up -d` give up
//! after the timeout with exit 1, naming the service and why (its failing probe);
//! the instance keeps running, and `down` stops it and everything it started.
#![cfg(unix)]

mod cli_support;

use cli_support::*;
use ringmaster_tests::{fake_service, free_port, pid_alive};

#[test]
fn up_d_gives_up_after_the_wait_timeout_and_says_why() {
    let (port, never) = (free_port(), free_port());
    // The probe asks a port nobody listens on: the service runs, but is never ready.
    let toml = format!(
        r#"[services.api]
command = "{fake} --listen {port} --http"
port = {port}
allow = ["fake-service"]
health = {{ http = "http://127.0.0.1:{never}/health" }}
stop = {{ timeout = "5s" }}
"#,
        fake = fake_service().display()
    );
    let p = Project::with_config(&toml);
    let out = p
        .rm()
        .args(["up", "-d", "--wait-timeout", "1s"])
        .output()
        .expect("up -d runs");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("not every service was ready after"), "{all}");
    assert!(all.contains("api: starting (failing:"), "{all}");
    assert!(all.contains("ringmaster down"), "{all}");

    // The instance is still there, and so is the service; down stops both.
    let instance = p.instance_pid().expect("the instance keeps running");
    p.guard.add(instance);
    let tagged = p.guard_tagged();
    assert!(!tagged.is_empty(), "the service runs");
    p.rm().arg("down").assert().code(0);
    wait_gone(instance);
    for pid in tagged {
        assert!(!pid_alive(pid), "{pid} is gone after down");
    }
    wait_port_free(port);
}

#[test]
fn wait_timeout_needs_detach() {
    let p = Project::with_config("[services.a]\ncommand = \"true\"\n");
    p.rm().args(["up", "--wait-timeout", "1s"]).assert().code(2);
}
