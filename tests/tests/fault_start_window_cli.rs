//! The start window through the binary: `ringmaster up -d` on a crash loop of a
//! probe-less service exits 1, naming the service and its last exit, and leaves
//! nothing. Kept apart from `fault_start_window.rs`: an in-process orchestrator
//! there makes the test process a subreaper that reaps the CLI's children.
#![cfg(unix)]

mod cli_support;

use ringmaster_tests::{fake_service, wait_for};

#[test]
fn up_detached_on_a_crash_loop_exits_1_naming_the_service_and_its_last_exit() {
    let fake = fake_service();
    let config = format!(
        r#"[services.crash]
command = "'{fake}' --exit-after 20 --exit-code 7"
restart = {{ policy = "on-failure", max_attempts = 2, backoff = "100ms" }}

[services.web]
command = "'{fake}'"
depends_on = ["crash"]
"#,
        fake = fake.display()
    );
    let p = cli_support::Project::with_config(&config);
    let out = p.rm().args(["up", "-d"]).output().expect("up -d");
    let err = cli_support::text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a crash loop is a failed start:\n{}{err}",
        cli_support::text(&out.stdout)
    );
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("startup failed: "), "{err}");
    assert!(first.contains("crash"), "names the service: {err}");
    assert!(
        first.contains("exited with code 7"),
        "names its last exit: {err}"
    );
    wait_for("the detached instance to exit", cli_support::LONG, || {
        p.instance_pid().is_none()
    });
    assert!(p.tagged_pids().is_empty(), "nothing of the project is left");
}
